-- Where a client's alerts go (JSON settings; the SMTP password sealed) and
-- the problems alerted about: one row per open problem, kept once resolved
-- so a dashboard can show what cleared.
CREATE TABLE alert_settings (
    client_id TEXT PRIMARY KEY,
    settings TEXT NOT NULL,
    smtp_password_sealed BLOB,
    updated_at BIGINT NOT NULL
);
CREATE TABLE alerts (
    client_id TEXT NOT NULL,
    -- the problem's key, e.g. `reauth_required:{importer id}`
    problem_key TEXT NOT NULL,
    importer_id TEXT NOT NULL,
    problem TEXT NOT NULL,
    raised_at BIGINT NOT NULL,
    -- NULL until an alert about it reached at least one target
    last_sent_at BIGINT,
    resolved_at BIGINT,
    PRIMARY KEY (client_id, problem_key)
);
