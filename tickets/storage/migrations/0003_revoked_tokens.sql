-- Tokens revoked before their time (RFC 7009), by jti, kept until they would have expired.
CREATE TABLE revoked_tokens (jti text PRIMARY KEY, expires_at double precision NOT NULL);
CREATE INDEX revoked_tokens_expires_at ON revoked_tokens (expires_at);
