-- The scheduler: a job's free-text description, and what an execution needs
-- so that another instance can tell a live run from one whose instance died
-- (heartbeat) and show why a run failed (error).
ALTER TABLE jobs ADD COLUMN description TEXT NOT NULL DEFAULT '';
ALTER TABLE executions ADD COLUMN heartbeat_at BIGINT;
ALTER TABLE executions ADD COLUMN error TEXT;
CREATE INDEX jobs_by_client ON jobs (client_id);
CREATE INDEX executions_by_job ON executions (job_id, started_at);
CREATE INDEX executions_running ON executions (status, heartbeat_at);
