"""The health answer."""

from marshmallow import Schema, fields, validate


class HealthSchema(Schema):
    """`ok`, or `unavailable` (the reason goes to the log only)."""

    status = fields.String(required=True, validate=validate.OneOf(["ok", "unavailable"]))
