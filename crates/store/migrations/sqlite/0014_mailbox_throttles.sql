-- Mailboxes Microsoft Graph asked to be left alone (429 or 503 with a
-- Retry-After longer than a run waits out): every instance skips them until
-- then, instead of each asking again and prolonging the throttle. Keyed by
-- the mailbox's lease name, so importers of one mailbox share it.
CREATE TABLE mailbox_throttles (
    mailbox TEXT PRIMARY KEY,
    client_id TEXT NOT NULL,
    until BIGINT NOT NULL,
    reason TEXT NOT NULL
);
