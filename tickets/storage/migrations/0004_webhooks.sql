-- The webhooks (SPEC section 10): endpoints (records like clients'), events stored in the same transaction
-- as the ticket change they report, one delivery row per event and endpoint once the event is expanded,
-- and each endpoint's last outcome.
CREATE TABLE webhook_endpoints (id text PRIMARY KEY, record text NOT NULL);
CREATE TABLE webhook_events (
    id text PRIMARY KEY,
    record text NOT NULL,
    happened_at timestamptz NOT NULL,
    expanded boolean NOT NULL DEFAULT false
);
CREATE INDEX webhook_events_to_expand ON webhook_events (happened_at) WHERE NOT expanded;
CREATE TABLE webhook_deliveries (
    event_id text NOT NULL REFERENCES webhook_events (id) ON DELETE CASCADE,
    endpoint_id text NOT NULL,
    attempts integer NOT NULL DEFAULT 0,
    next_at double precision NOT NULL,
    done text,
    status integer,
    at double precision,
    lease_until double precision NOT NULL DEFAULT 0,
    PRIMARY KEY (event_id, endpoint_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_at) WHERE done IS NULL;
CREATE TABLE webhook_results (
    endpoint_id text PRIMARY KEY,
    result text NOT NULL,
    status integer,
    at double precision NOT NULL
);
