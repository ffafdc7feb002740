"""The tests: unit/ (core), api/ (Flask test client), storage/ (every backend), system/ (real gunicorn)."""
