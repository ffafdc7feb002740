"""The ticket service: domain, storage, OAuth2 and HTTP routes."""
