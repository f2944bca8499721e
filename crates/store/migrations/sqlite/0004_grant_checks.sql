-- Checks on a delegated grant beyond its tokens.
--
-- oauth_grants.state may now also be 'mailbox_denied': the tokens are valid
-- but the signed-in account cannot open the configured mailbox. The reason
-- (with its fix) is kept in mailbox_error as well as in last_error, because
-- a failed refresh overwrites last_error and a later successful one must
-- restore the denial rather than report the grant authorized.
ALTER TABLE oauth_grants ADD COLUMN mailbox_error TEXT;

-- A sign-in by another account than the one an own-mailbox importer was
-- authorized as waits here until the admin confirms the switch: the new
-- grant with the columns of oauth_grants (tokens sealed, bound to this row),
-- under the SHA-256 of a random single-use confirmation token, for 10 minutes.
CREATE TABLE pending_grants (
    token_sha256 TEXT PRIMARY KEY,
    client_id TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    importer_id TEXT NOT NULL REFERENCES importers(id) ON DELETE CASCADE,
    started_by TEXT NOT NULL,
    previous_account TEXT NOT NULL,     -- the account the importer was authorized as when asked
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    consumed_at BIGINT,
    state TEXT NOT NULL,
    account TEXT,
    scopes TEXT NOT NULL,
    access_token_sealed BLOB,
    access_token_expires_at BIGINT,
    refresh_token_sealed BLOB,
    refresh_token_issued_at BIGINT,
    last_refresh_at BIGINT,
    last_error TEXT,
    consecutive_failures BIGINT NOT NULL,
    version BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX pending_grants_by_expiry ON pending_grants (expires_at);
