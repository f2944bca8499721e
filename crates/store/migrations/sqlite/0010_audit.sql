-- Who changed what and when: importer, job and client changes, sign-ins
-- and their failures, Microsoft authorizations. Never a secret's value.
CREATE TABLE audit_events (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    at BIGINT NOT NULL,
    -- `user:ID`, `token:ID`, `cli`, or the e-mail a failed sign-in gave
    actor TEXT NOT NULL,
    -- e.g. `importer.updated`, `signin.failed`, `grant.authorized`
    action TEXT NOT NULL,
    target TEXT,
    detail TEXT NOT NULL
);
CREATE INDEX audit_events_client_at ON audit_events (client_id, at);
