-- Lists filter and order inside the database (SPEC section 3): the fields they look at, as columns,
-- filled from the records already stored, and an index that serves an organization's page in order.
ALTER TABLE tickets
    ADD COLUMN organization_id text,
    ADD COLUMN ticket_type text,
    ADD COLUMN created_at timestamptz,
    ADD COLUMN disabled boolean NOT NULL DEFAULT false,
    ADD COLUMN revoked boolean NOT NULL DEFAULT false;
-- A record's properties may hold an escaped NUL, which PostgreSQL's JSON functions refuse to read even
-- in a field they do not return: it is blanked in the copy that is read (never in the record itself).
UPDATE tickets SET
    organization_id = fields ->> 'organizationId',
    ticket_type = fields ->> 'type',
    created_at = (fields ->> 'createdAt')::timestamptz,
    disabled = (fields ->> 'disabled') IS NOT NULL,
    revoked = (fields ->> 'revoked') IS NOT NULL
FROM (SELECT id AS row_id, replace(record, '\u0000', '\u0020')::json AS fields FROM tickets) AS parsed
WHERE tickets.id = parsed.row_id;
ALTER TABLE tickets
    ALTER COLUMN organization_id SET NOT NULL,
    ALTER COLUMN ticket_type SET NOT NULL,
    ALTER COLUMN created_at SET NOT NULL;
CREATE INDEX tickets_organization_created ON tickets (organization_id, created_at, id);
CREATE INDEX tickets_created ON tickets (created_at, id);
