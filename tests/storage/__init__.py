"""The stores: the Protocol contract on every backend, and what is particular to TinyDB and PostgreSQL."""
