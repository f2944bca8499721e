-- Instants are BIGINT milliseconds since the Unix epoch, UTC by construction:
-- nothing here can be read in the server's local time zone.
CREATE TABLE clients (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    hosts TEXT NOT NULL,                -- JSON array of host names; [] answers any host
    created_at BIGINT NOT NULL
);

CREATE TABLE users (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    email TEXT NOT NULL,
    password_hash TEXT NOT NULL,        -- argon2id PHC string
    created_at BIGINT NOT NULL,
    UNIQUE (client_id, email)
);

CREATE TABLE api_tokens (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    label TEXT NOT NULL,
    token_sha256 TEXT NOT NULL UNIQUE,  -- the token itself is shown once and never stored
    created_at BIGINT NOT NULL,
    last_used_at BIGINT
);

CREATE TABLE importers (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    protocol TEXT NOT NULL,
    settings TEXT NOT NULL,             -- JSON, no secrets
    secret_kind TEXT,
    secret_sealed BYTEA,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX importers_by_client ON importers (client_id);

CREATE TABLE oauth_grants (
    importer_id TEXT PRIMARY KEY REFERENCES importers(id) ON DELETE CASCADE,
    state TEXT NOT NULL,                -- authorized | reauth_required
    account TEXT,
    scopes TEXT NOT NULL,
    access_token_sealed BYTEA,
    access_token_expires_at BIGINT,
    refresh_token_sealed BYTEA,
    refresh_token_issued_at BIGINT,     -- Microsoft's 90-day inactivity window starts here
    last_refresh_at BIGINT,
    last_error TEXT,
    consecutive_failures BIGINT NOT NULL DEFAULT 0,
    version BIGINT NOT NULL,            -- compare-and-set between overlapping refresh runs
    updated_at BIGINT NOT NULL
);

CREATE TABLE oauth_states (
    state_sha256 TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    importer_id TEXT NOT NULL REFERENCES importers(id) ON DELETE CASCADE,
    started_by TEXT NOT NULL,
    pkce_verifier_sealed BYTEA NOT NULL,
    redirect_uri TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    consumed_at BIGINT
);

CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    script TEXT NOT NULL,
    cron TEXT NOT NULL,
    timezone TEXT NOT NULL,
    enabled BOOLEAN NOT NULL,
    params TEXT NOT NULL,               -- JSON object
    next_run_at BIGINT,
    last_run_at BIGINT,
    lease_owner TEXT,
    lease_until BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX jobs_due ON jobs (next_run_at);

CREATE TABLE executions (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    script TEXT NOT NULL,
    job_id TEXT,
    trigger_kind TEXT NOT NULL,         -- scheduled | manual | cli
    status TEXT NOT NULL,               -- running | succeeded | failed
    params TEXT NOT NULL,
    scheduled_for BIGINT,               -- the cron slot: one execution per job and slot
    started_at BIGINT NOT NULL,
    finished_at BIGINT,
    log TEXT NOT NULL,
    owner TEXT,
    UNIQUE (job_id, scheduled_for)
);
CREATE INDEX executions_by_client ON executions (client_id, started_at);

CREATE TABLE documents (
    id TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    importer_id TEXT NOT NULL,
    subject TEXT,
    sender TEXT,
    received_at BIGINT,
    imported_at BIGINT NOT NULL,
    sink TEXT NOT NULL,
    location TEXT NOT NULL,
    metadata TEXT NOT NULL              -- JSON, as written to metadata.json
);
CREATE INDEX documents_by_client ON documents (client_id, imported_at);

CREATE TABLE import_ledger (
    importer_id TEXT NOT NULL,
    source_key TEXT NOT NULL,           -- Graph immutable id, or IMAP uidvalidity:uid
    internet_message_id TEXT,
    mime_sha256 TEXT,
    document_id TEXT,
    state TEXT NOT NULL,                -- stored | moved | moved_to_error
    reason TEXT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (importer_id, source_key)
);
CREATE INDEX import_ledger_by_mime ON import_ledger (importer_id, mime_sha256);

CREATE TABLE leases (
    name TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    until_at BIGINT NOT NULL
);

CREATE TABLE sessions (
    id_sha256 TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    client_id TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
