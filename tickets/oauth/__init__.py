"""OAuth2 with authlib: the token endpoint's grants, introspection, bearer protection, keys and clients."""
