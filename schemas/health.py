"""The health answer."""

from marshmallow import Schema, fields


class HealthSchema(Schema):
    """`ok`, or why storage is unavailable."""

    status = fields.String(required=True)
    message = fields.String()
