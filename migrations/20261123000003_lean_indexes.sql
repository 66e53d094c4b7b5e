-- Every index on jobs is rewritten when a job changes state: keep only what claims and
-- rescues read, and only over the rows they read.
DROP INDEX jobs_claim;
DROP INDEX jobs_lease;
CREATE INDEX jobs_leased ON jobs (lease_expires_at) WHERE state = 'leased';
