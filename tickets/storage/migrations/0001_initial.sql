-- Records are JSON text, not jsonb: jsonb cannot hold a \u0000 that a caller's properties may contain,
-- and the service never queries inside them. The columns beside a ticket serve purging only.
CREATE TABLE tickets (
    id text PRIMARY KEY,
    record text NOT NULL,
    expires_at timestamptz NOT NULL,
    consumed_at timestamptz
);
CREATE INDEX tickets_expires_at ON tickets (expires_at);
CREATE INDEX tickets_consumed_at ON tickets (consumed_at) WHERE consumed_at IS NOT NULL;

CREATE TABLE oauth_clients (id text PRIMARY KEY, record text NOT NULL);
CREATE TABLE signing_keys (id text PRIMARY KEY, record text NOT NULL);

-- Failed ticket exchanges of the last minute, per client address (the throttle).
CREATE TABLE exchange_failures (address text NOT NULL, at double precision NOT NULL);
CREATE INDEX exchange_failures_address_at ON exchange_failures (address, at);
CREATE INDEX exchange_failures_at ON exchange_failures (at);
