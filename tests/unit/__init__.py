"""Unit tests of tickets/core and the settings: no Flask app, no files."""
