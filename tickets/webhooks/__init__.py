"""Webhooks (SPEC section 10): endpoints, signed Standard Webhooks messages, delivery off the request path."""
