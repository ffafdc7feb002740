"""Marshmallow schemas of the HTTP API; they import nothing of the app."""
