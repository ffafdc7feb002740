"""The two scopes of our tokens, named once."""

MANAGE = "global"  # staff software: the management API and introspection
TICKET = "ticket"  # a customer's token, exchanged from a ticket: reserved, no client may hold it
ALL = (MANAGE, TICKET)
