-- quarry's database: the source of truth. output/ is rendered from it.
-- Append-only: change the schema with a new, later-dated migration.

-- One row per version of a file seen under an enqueued folder.
CREATE TABLE sources (
    id              INTEGER PRIMARY KEY,
    root            TEXT    NOT NULL,              -- absolute folder given to `enqueue`
    rel_path        TEXT    NOT NULL,              -- '/'-separated, relative to root
    version         INTEGER NOT NULL,              -- 1, 2, ... per (root, rel_path)
    kind            TEXT,                          -- markdown|text|json|jsonl|rust; NULL if refused early
    status          TEXT    NOT NULL,              -- active|refused|superseded|gone
    content_hash    TEXT,                          -- sha256 of the raw bytes
    bytes           INTEGER NOT NULL DEFAULT 0,
    line_count      INTEGER NOT NULL DEFAULT 0,
    refusal_kind    TEXT,                          -- binary|invalid_utf8|empty|too_large|unreadable|vanished
    refusal_message TEXT,
    notes           TEXT    NOT NULL DEFAULT '[]', -- JSON array of remarks (fallbacks)
    metadata        TEXT    NOT NULL DEFAULT '{}', -- JSON object (front matter)
    created_at      INTEGER NOT NULL,
    UNIQUE (root, rel_path, version)
);
CREATE INDEX sources_current ON sources (root, rel_path, status);

CREATE TABLE chunks (
    id           INTEGER PRIMARY KEY,
    source_id    INTEGER NOT NULL REFERENCES sources (id),
    ordinal      INTEGER NOT NULL,
    byte_start   INTEGER NOT NULL,
    byte_end     INTEGER NOT NULL,
    line_start   INTEGER NOT NULL,
    line_end     INTEGER NOT NULL,
    heading_path TEXT    NOT NULL DEFAULT '[]',    -- JSON array of headings
    text         TEXT    NOT NULL,
    tokens       INTEGER NOT NULL DEFAULT 0,       -- estimated model tokens
    UNIQUE (source_id, ordinal)
);

-- The job queue. See ARCHITECTURE.md for its invariants.
CREATE TABLE jobs (
    id               INTEGER PRIMARY KEY,
    role             TEXT    NOT NULL,             -- agent role name, or a built-in stage (group)
    stage            TEXT    NOT NULL,             -- extract|validate|group|write|synthesize|<custom>
    input_kind       TEXT    NOT NULL,             -- chunk|findings|pattern|kb
    input_id         INTEGER,                      -- chunk id / pattern id; NULL for kb
    dedup_key        TEXT    NOT NULL UNIQUE,      -- role | input | input version
    state            TEXT    NOT NULL DEFAULT 'queued',
    priority         INTEGER NOT NULL DEFAULT 0,   -- higher first
    attempts         INTEGER NOT NULL DEFAULT 0,
    max_attempts     INTEGER NOT NULL DEFAULT 3,
    run_after        INTEGER NOT NULL DEFAULT 0,   -- unix ms; backoff
    lease_token      TEXT,
    lease_owner      TEXT,
    lease_expires_at INTEGER,
    payload          TEXT    NOT NULL DEFAULT '{}',
    result           TEXT,                         -- parsed output (JSON)
    last_reply       TEXT,                         -- last raw model reply, kept when dead
    last_error_kind  TEXT,
    last_error       TEXT,
    est_tokens       INTEGER NOT NULL DEFAULT 0,   -- tokens to process, for the ETA
    prompt_tokens    INTEGER NOT NULL DEFAULT 0,
    gen_tokens       INTEGER NOT NULL DEFAULT 0,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    started_at       INTEGER,
    finished_at      INTEGER
);
CREATE INDEX jobs_claim ON jobs (state, priority DESC, run_after, id);
CREATE INDEX jobs_lease ON jobs (state, lease_expires_at);

-- A job is claimable only when every job it depends on is done.
CREATE TABLE job_deps (
    job_id     INTEGER NOT NULL REFERENCES jobs (id),
    depends_on INTEGER NOT NULL REFERENCES jobs (id),
    PRIMARY KEY (job_id, depends_on)
);
CREATE INDEX job_deps_rev ON job_deps (depends_on);

-- Every attempt of every job, with its error and raw reply.
CREATE TABLE attempts (
    id            INTEGER PRIMARY KEY,
    job_id        INTEGER NOT NULL REFERENCES jobs (id),
    attempt       INTEGER NOT NULL,
    worker        TEXT    NOT NULL,
    started_at    INTEGER NOT NULL,
    finished_at   INTEGER,
    outcome       TEXT,                             -- done|failed|dead|lost|released
    error_kind    TEXT,
    error         TEXT,
    reply         TEXT,
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    gen_tokens    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX attempts_job ON attempts (job_id);

-- What the extractor found, and what the checks and the validator made of it.
CREATE TABLE findings (
    id          INTEGER PRIMARY KEY,
    job_id      INTEGER NOT NULL REFERENCES jobs (id),
    chunk_id    INTEGER NOT NULL REFERENCES chunks (id),
    source_id   INTEGER NOT NULL REFERENCES sources (id),
    ordinal     INTEGER NOT NULL,
    pattern     TEXT    NOT NULL,
    pattern_key TEXT    NOT NULL,                  -- normalised name, for grouping
    category    TEXT    NOT NULL,
    summary     TEXT    NOT NULL,
    evidence    TEXT    NOT NULL,
    code        TEXT,
    line_start  INTEGER NOT NULL,
    line_end    INTEGER NOT NULL,
    status      TEXT    NOT NULL DEFAULT 'pending', -- pending|accepted|rejected
    reason      TEXT,
    UNIQUE (job_id, ordinal)
);
CREATE INDEX findings_key ON findings (pattern_key);

CREATE TABLE patterns (
    id         INTEGER PRIMARY KEY,
    key        TEXT    NOT NULL UNIQUE,
    name       TEXT    NOT NULL,
    category   TEXT    NOT NULL,
    slug       TEXT    NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);

CREATE TABLE pattern_findings (
    pattern_id INTEGER NOT NULL REFERENCES patterns (id),
    finding_id INTEGER NOT NULL REFERENCES findings (id),
    PRIMARY KEY (pattern_id, finding_id)
);
