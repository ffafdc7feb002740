"""The HTTP layer: flask-smorest blueprints, error handling, request logs and metrics."""
