-- A lease lost because the process holding it died is not the job's fault: it is counted
-- apart from attempts. `crashes`: the holder died while the job ran beside others;
-- `solo_crashes`: the holder died while this was its only job. A job that crashed twice runs
-- alone (a suspect); one whose holder died under it alone max_attempts times is dead.
ALTER TABLE jobs ADD COLUMN crashes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN solo_crashes INTEGER NOT NULL DEFAULT 0;
CREATE INDEX jobs_suspect ON jobs (solo_crashes, id)
    WHERE crashes >= 2 AND state IN ('queued', 'failed');
