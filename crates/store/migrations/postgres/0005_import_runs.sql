-- What each importer's part of an import-emails execution did, as data
-- (the importer status's `last_import`, `GET …/{id}/runs`): one row per
-- importer per execution, written when the importer's work ends, whether
-- it succeeded or failed. Dry runs write none.
--
-- execution_id links to executions without a foreign key: executions are
-- pruned sooner (Retention) than these rows, which are kept per importer.
-- outcome is succeeded | failed; a failed row has zero counts and its
-- error (the reason, with the fix). to_error is the sum of
-- to_error_by_reason, a JSON object of reason code → mails.
CREATE TABLE import_runs (
    id TEXT PRIMARY KEY,
    execution_id TEXT NOT NULL,
    client_id TEXT NOT NULL REFERENCES clients(id) ON DELETE CASCADE,
    importer_id TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    finished_at BIGINT NOT NULL,
    outcome TEXT NOT NULL,
    imported BIGINT NOT NULL,
    completed BIGINT NOT NULL,          -- documents of an interrupted run, moved on
    moves_confirmed BIGINT NOT NULL,    -- moves of an interrupted run, found done
    to_error BIGINT NOT NULL,
    to_error_by_reason TEXT NOT NULL,
    left_for_retry BIGINT NOT NULL,
    bytes BIGINT NOT NULL,
    stopped_early BOOLEAN NOT NULL,     -- mailferry was shutting down
    error TEXT,
    UNIQUE (execution_id, importer_id)
);
CREATE INDEX import_runs_by_importer ON import_runs (importer_id, started_at);
