-- What an importer's health needs from its runs beyond the counts:
-- failure_kind says why a failed run failed (folders | mailbox_denied |
-- transient | other), so "folder problem" is told from "mailbox denied"
-- without reading the error's words; throttled_until is when Microsoft's
-- last Retry-After of the run ends (UTC millis), kept when it outlasts the
-- run, so the overview can say "throttled until…".
ALTER TABLE import_runs ADD COLUMN failure_kind TEXT;
ALTER TABLE import_runs ADD COLUMN throttled_until BIGINT;
