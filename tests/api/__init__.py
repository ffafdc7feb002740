"""The HTTP API, the OAuth endpoints and the CLI, through the Flask test client and CLI runner."""
