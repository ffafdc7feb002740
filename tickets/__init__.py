"""The ticket service, in layers: core (the domain), storage, oauth, http; config and context wire them."""
