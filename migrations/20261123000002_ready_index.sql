-- Claims scan runnable jobs in priority order and stop at LIMIT: a partial index over just
-- those rows keeps a claim fast however many jobs are done.
CREATE INDEX jobs_ready ON jobs (priority DESC, id) WHERE state IN ('queued', 'failed');
