-- An import-emails run's work, one row per mailbox (its importers, one
-- after another): any instance may claim a row, so the importers of one
-- slot are spread over every running instance. A claim lasts until
-- `claim_until` and is renewed while the work goes on; a crashed holder's
-- row is taken over once the claim lapses.
CREATE TABLE import_work (
    execution_id TEXT NOT NULL,
    -- the mailbox lease's name (`mailbox:{client}:{key}`)
    unit TEXT NOT NULL,
    client_id TEXT NOT NULL,
    -- JSON array of importer ids, worked in this order
    importer_ids TEXT NOT NULL,
    claimed_by TEXT,
    claim_until BIGINT,
    done_at BIGINT,
    -- JSON: the worker's log lines and failures, read by the run's owner
    log TEXT NOT NULL DEFAULT '[]',
    failures TEXT NOT NULL DEFAULT '[]',
    -- importers whose mailbox could be opened
    worked BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (execution_id, unit)
);
CREATE INDEX import_work_open ON import_work (done_at, claim_until);
