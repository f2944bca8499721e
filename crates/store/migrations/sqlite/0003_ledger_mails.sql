-- The ledger as the admin sees it: every mail gets an id of its own
-- (`mail_id`, for the API's mails and reprocessing), what the mail is
-- (subject, sender, received), the fingerprint of its content (two mails
-- with one Message-ID are told apart by it), and how often a transient
-- failure left it in the Inbox (`attempts`, `last_error`; state `pending`).
ALTER TABLE import_ledger ADD COLUMN mail_id TEXT;
ALTER TABLE import_ledger ADD COLUMN content_sha256 TEXT;
ALTER TABLE import_ledger ADD COLUMN subject TEXT;
ALTER TABLE import_ledger ADD COLUMN sender TEXT;
ALTER TABLE import_ledger ADD COLUMN received_at BIGINT;
ALTER TABLE import_ledger ADD COLUMN attempts BIGINT NOT NULL DEFAULT 0;
ALTER TABLE import_ledger ADD COLUMN last_error TEXT;
UPDATE import_ledger SET mail_id = lower(hex(randomblob(16))) WHERE mail_id IS NULL;
CREATE UNIQUE INDEX import_ledger_by_mail_id ON import_ledger (mail_id);
CREATE INDEX import_ledger_by_message_id ON import_ledger (importer_id, internet_message_id);
CREATE INDEX import_ledger_by_update ON import_ledger (importer_id, updated_at);
