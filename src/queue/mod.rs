//! The durable job queue and the store of everything quarry learns: the only module with SQL.
//!
//! Invariants (see ARCHITECTURE.md and docs/internals.md):
//! - a claim is one short `BEGIN IMMEDIATE` transaction that sets a fresh lease token;
//! - completion, failure and release are fenced by `id AND lease_token`: a worker whose lease
//!   expired cannot overwrite what another worker did;
//! - no transaction is ever held across a model call;
//! - a job's follow-up rows (findings, new jobs) are written in the same transaction that marks
//!   it done, so a crash leaves either both or neither;
//! - a dedup key makes enqueueing idempotent.

pub mod db;
pub mod retrieval;
mod state;
pub mod store;

pub use db::{DbUrl, Tx};
pub use state::{FindingStatus, JobId, JobState, SourceStatus, UnknownState};

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{
    SqliteAutoVacuum, SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};

use db::{on_pool, on_tx, params, Dialect, Pool};

/// Errors at the queue's edge. Each names the database or job it is about.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("cannot open the queue database {db}: {source}")]
    Open {
        db: DbUrl,
        #[source]
        source: sqlx::Error,
    },
    #[error("the queue database {db} does not exist yet: run `quarry enqueue DIR` first")]
    Missing { db: DbUrl },
    #[error("cannot migrate the queue database {db}: {source}")]
    Migrate {
        db: DbUrl,
        #[source]
        source: sqlx::migrate::MigrateError,
    },
    #[error("no job {0}")]
    NoSuchJob(JobId),
    #[error("database error: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("corrupt row: {0}")]
    Corrupt(String),
    #[error("{0} needs a SQLite database (its full-text index is SQLite's FTS5); this queue is on PostgreSQL: run it against a SQLite copy")]
    SqliteOnly(&'static str),
}

impl QueueError {
    /// True for an error that waiting can cure: the database server unreachable or
    /// restarting, a connection dropped, the pool waiting for a connection; on PostgreSQL
    /// also a serialization failure or a deadlock. The run retries those with backoff
    /// instead of stopping.
    pub fn is_transient(&self) -> bool {
        match self {
            QueueError::Sql(e) | QueueError::Open { source: e, .. } => is_transient(e),
            _ => false,
        }
    }
}

/// See [`QueueError::is_transient`].
pub fn is_transient(e: &sqlx::Error) -> bool {
    {
        match e {
            sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::Protocol(_)
            | sqlx::Error::WorkerCrashed => true,
            sqlx::Error::Database(d) => d.code().is_some_and(|code| {
                // 08: connection exceptions; 57P01-57P03: the server shutting down or
                // starting; 40001, 40P01: serialization failure, deadlock.
                code.starts_with("08")
                    || matches!(&*code, "57P01" | "57P02" | "57P03" | "40001" | "40P01")
            }),
            _ => false,
        }
    }
}

pub type Result<T, E = QueueError> = std::result::Result<T, E>;

/// Milliseconds since the Unix epoch; injectable so tests can move time.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

pub fn system_clock() -> Clock {
    Arc::new(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    })
}

/// Retry policy: exponential backoff with jitter.
#[derive(Clone, Debug)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_secs(2),
            max: Duration::from_secs(120),
        }
    }
}

impl Backoff {
    /// Delay before attempt `attempt + 1`, given `attempt` attempts so far (1-based).
    /// `base * 2^(attempt-1)`, capped, then scaled by a jitter factor in [0.5, 1.0].
    pub fn delay(&self, attempt: i64, jitter: f64) -> Duration {
        let exp = (attempt - 1).clamp(0, 20) as u32;
        let raw = self.base.saturating_mul(1u32 << exp).min(self.max);
        raw.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
    }
}

/// A job handed to a worker. The `lease_token` fences everything the worker writes back.
#[derive(Clone, Debug)]
pub struct Lease {
    pub id: JobId,
    pub role: String,
    pub stage: String,
    pub input_kind: String,
    pub input_id: Option<i64>,
    pub payload: serde_json::Value,
    pub attempt: i64,
    pub max_attempts: i64,
    pub token: String,
    pub owner: String,
}

/// A job to be created.
#[derive(Clone, Debug)]
pub struct NewJob {
    pub role: String,
    pub stage: String,
    pub input_kind: String,
    pub input_id: Option<i64>,
    /// What makes this job unique besides its role: the input and its version.
    pub dedup: String,
    pub priority: i64,
    pub max_attempts: i64,
    pub payload: serde_json::Value,
    pub est_tokens: i64,
    pub depends_on: Vec<JobId>,
}

/// What a failed attempt says about itself.
#[derive(Clone, Debug)]
pub struct Failure {
    pub kind: String,
    pub message: String,
    pub reply: Option<String>,
    /// False for errors that another attempt cannot fix (a missing model, say).
    pub retryable: bool,
}

/// What happened to a failure report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailOutcome {
    /// Will be retried after the backoff.
    Retry,
    /// Attempts used up, or not retryable.
    Dead,
    /// The lease was lost: someone else owns the job now; nothing was written.
    Lost,
}

/// A job whose holder died under it this many times is a suspect: it runs alone.
pub const SUSPECT_CRASHES: i64 = 2;

/// Where the queue lives and how it behaves.
#[derive(Clone, Debug)]
pub struct QueueOptions {
    pub lease: Duration,
    pub backoff: Backoff,
}

impl Default for QueueOptions {
    fn default() -> Self {
        QueueOptions {
            lease: Duration::from_secs(120),
            backoff: Backoff::default(),
        }
    }
}

/// The queue. On SQLite: one writer connection (SQLite allows one writer at a time anyway)
/// and a pool of readers, both in WAL mode. On PostgreSQL: one pool for both.
#[derive(Clone)]
pub struct Queue {
    writer: Pool,
    reader: Pool,
    db: DbUrl,
    clock: Clock,
    opts: QueueOptions,
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue").field("db", &self.db).finish()
    }
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");
static MIGRATOR_PG: sqlx::migrate::Migrator = sqlx::migrate!("./migrations_pg");

/// Landed migrations whose text was edited afterwards, with the checksum (SHA-384 of the
/// earlier text) that databases made before the edit recorded: sqlx refuses to open those
/// ("previously applied but has been modified"). `source_facts` had a comment reworded
/// (19eecf9); its earlier checksum is replaced by the current one before migrating. A landed
/// migration is not edited again: `landed_migrations_keep_their_text` pins every one.
const EDITED_MIGRATIONS: &[(i64, &str)] = &[(
    20261201000001,
    "a07ed3c00977ccd6eb261d561487aedec03657d9f3a71e22e5df9b175584e8077406040b4907d0449087104416c801c1",
)];

/// Applies the pending migrations of the database's kind, after mending the checksums of
/// [`EDITED_MIGRATIONS`] in a database that recorded the earlier text.
async fn migrate(pool: &Pool, db: &DbUrl) -> Result<()> {
    let err = |source| QueueError::Migrate {
        db: db.clone(),
        source,
    };
    let migrator = match pool {
        Pool::Sqlite(_) => &MIGRATOR,
        Pool::Postgres(_) => &MIGRATOR_PG,
    };
    let recorded: i64 = match pool {
        Pool::Sqlite(p) => sqlx::query_scalar(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
        )
        .fetch_one(p)
        .await,
        Pool::Postgres(p) => sqlx::query_scalar(
            "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema() AND tablename = '_sqlx_migrations'",
        )
        .fetch_one(p)
        .await,
    }
    .map_err(|e| err(sqlx::migrate::MigrateError::Execute(e)))?;
    if recorded > 0 {
        for (version, earlier) in EDITED_MIGRATIONS {
            let Some(now) = migrator.iter().find(|m| m.version == *version) else {
                continue;
            };
            let earlier = hex::decode(earlier).expect("a hex checksum");
            on_pool!(pool, p => sqlx::query(
                "UPDATE _sqlx_migrations SET checksum = $1 WHERE version = $2 AND checksum = $3",
            )
            .bind(now.checksum.as_ref())
            .bind(version)
            .bind(earlier.as_slice())
            .execute(p)
            .await
            .map(|_| ()))
            .map_err(|e| err(sqlx::migrate::MigrateError::Execute(e)))?;
        }
    }
    on_pool!(pool, p => migrator.run(p).await).map_err(err)
}

/// Connections to a PostgreSQL queue per process: the workers' claims and completions, the
/// coordinator and a reader or two.
const PG_CONNECTIONS: u32 = 12;

impl Queue {
    /// Opens (and with `create`, creates) the database and applies pending migrations.
    pub async fn open(db: impl Into<DbUrl>, create: bool) -> Result<Queue> {
        Self::open_with(db, create, system_clock(), QueueOptions::default()).await
    }

    pub async fn open_with(
        db: impl Into<DbUrl>,
        create: bool,
        clock: Clock,
        opts: QueueOptions,
    ) -> Result<Queue> {
        let db = db.into();
        let (writer, reader) = match &db {
            DbUrl::Sqlite(path) => open_sqlite(path, create).await?,
            DbUrl::Postgres(url) => {
                let pool = open_postgres(url)
                    .await
                    .map_err(|source| QueueError::Open {
                        db: db.clone(),
                        source,
                    })?;
                let pool = Pool::Postgres(pool);
                migrate(&pool, &db).await?;
                (pool.clone(), pool)
            }
        };
        Ok(Queue {
            writer,
            reader,
            db,
            clock,
            opts,
        })
    }

    /// Where the database is.
    pub fn db(&self) -> &DbUrl {
        &self.db
    }

    /// The SQLite file (None on PostgreSQL).
    pub fn path(&self) -> Option<&Path> {
        self.db.path()
    }

    pub fn dialect(&self) -> Dialect {
        self.writer.dialect()
    }

    pub fn now(&self) -> i64 {
        (self.clock)()
    }

    pub fn options(&self) -> &QueueOptions {
        &self.opts
    }

    pub(crate) fn reader(&self) -> &Pool {
        &self.reader
    }

    /// A short write transaction, one at a time: on SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE`), so two processes never deadlock upgrading a read lock; on
    /// PostgreSQL it takes the store's advisory lock (see [`Pool::begin`]).
    pub async fn begin(&self) -> Result<Tx> {
        Ok(self.writer.begin().await?)
    }

    /// Enqueues jobs; those whose dedup key exists already are skipped. Returns the ids of
    /// the jobs created.
    pub async fn enqueue(&self, jobs: &[NewJob]) -> Result<Vec<JobId>> {
        let mut tx = self.begin().await?;
        let ids = insert_jobs(&mut tx, jobs, self.now()).await?;
        tx.commit().await?;
        Ok(ids)
    }

    /// Claims the most urgent runnable job, if any: queued or failed past its backoff, with
    /// every dependency settled. `stages`, when not empty, limits what this worker takes.
    pub async fn claim(&self, owner: &str, stages: &[String]) -> Result<Option<Lease>> {
        Ok(self.claim_many(owner, stages, 1).await?.pop())
    }

    /// Claims up to `limit` jobs in one transaction (one lease token for the batch; every
    /// write back is still fenced per job).
    ///
    /// On PostgreSQL the rows taken are locked and rows other claimers hold are skipped
    /// (`FOR UPDATE SKIP LOCKED`), and the claims of one owner (one process) take turns on an
    /// advisory lock of the owner's name, so that "a suspect runs alone" holds there too.
    pub async fn claim_many(
        &self,
        owner: &str,
        stages: &[String],
        limit: usize,
    ) -> Result<Vec<Lease>> {
        let now = self.now();
        let token = new_token();
        let expires = now + self.opts.lease.as_millis() as i64;
        let stage_filter = if stages.is_empty() {
            String::new()
        } else {
            format!(" AND j.stage IN ({})", params(5, stages.len()))
        };
        let lock = self.dialect().skip_locked();
        // A suspect (a job whose holder died under it twice) runs alone in its process: it
        // is taken only when nothing else is runnable and this owner holds no lease, and
        // while an owner holds one it takes nothing else. If the process dies then, the
        // death is the suspect's (see `rescue_expired`).
        let claim_sql = |filter: &str, order: &str, limit: usize| {
            format!(
                "UPDATE jobs SET state = 'leased', lease_token = $1, lease_owner = $2,
                     lease_expires_at = $3, attempts = attempts + 1, started_at = $4, updated_at = $4
                 WHERE id IN (
                     SELECT j.id FROM jobs j
                     WHERE j.state IN ('queued', 'failed') AND j.run_after <= $4 {stage_filter}
                       AND {filter}
                       AND NOT EXISTS (
                           SELECT 1 FROM job_deps d JOIN jobs p ON p.id = d.depends_on
                           WHERE d.job_id = j.id AND p.state NOT IN ('done', 'dead', 'cancelled'))
                     ORDER BY {order}
                     LIMIT {limit}{lock})
                 RETURNING id, role, stage, input_kind, input_id, payload, attempts, max_attempts"
            )
        };
        let held = |cond: &str| {
            format!(
                "NOT EXISTS (SELECT 1 FROM jobs o WHERE o.state = 'leased' AND o.lease_owner = $2 {cond})"
            )
        };
        let plain = claim_sql(
            &format!(
                "j.crashes < {SUSPECT_CRASHES} AND {}",
                held(&format!("AND o.crashes >= {SUSPECT_CRASHES}"))
            ),
            "j.priority DESC, j.id",
            limit,
        );
        let suspect = claim_sql(
            &format!("j.crashes >= {SUSPECT_CRASHES} AND {}", held("")),
            "j.solo_crashes, j.priority DESC, j.id",
            1,
        );
        let mut tx = self.writer.begin_rows().await?;
        // id, role, stage, input_kind, input_id, payload, attempts, max_attempts
        type Claimed = (i64, String, String, String, Option<i64>, String, i64, i64);
        let rows: Vec<Claimed> = on_tx!(&mut tx, c => {
            if let Dialect::Postgres = self.dialect() {
                sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
                    .bind(owner)
                    .execute(&mut **c)
                    .await?;
            }
            let mut rows = Vec::new();
            for sql in [&plain, &suspect] {
                let mut q = sqlx::query_as(sql)
                    .bind(&token)
                    .bind(owner)
                    .bind(expires)
                    .bind(now);
                for s in stages {
                    q = q.bind(s);
                }
                rows = q.fetch_all(&mut **c).await?;
                if !rows.is_empty() {
                    break;
                }
            }
            if !rows.is_empty() {
                sqlx::query(
                    "INSERT INTO attempts (job_id, attempt, worker, started_at)
                     SELECT id, attempts, $1, $2 FROM jobs WHERE lease_token = $3 AND state = 'leased'",
                )
                .bind(owner)
                .bind(now)
                .bind(&token)
                .execute(&mut **c)
                .await?;
            }
            rows
        });
        tx.commit().await?;
        let mut leases = rows
            .into_iter()
            .map(
                |(id, role, stage, input_kind, input_id, payload, attempt, max_attempts)| {
                    let id = JobId(id);
                    Ok(Lease {
                        id,
                        role,
                        stage,
                        input_kind,
                        input_id,
                        payload: serde_json::from_str(&payload)
                            .map_err(|e| QueueError::Corrupt(format!("job {id} payload: {e}")))?,
                        attempt,
                        max_attempts,
                        token: token.clone(),
                        owner: owner.to_string(),
                    })
                },
            )
            .collect::<Result<Vec<_>>>()?;
        leases.sort_by_key(|l| l.id);
        Ok(leases)
    }

    /// Completes several jobs (no follow-ups) in one transaction with two statements; says
    /// which were still ours (fenced per job like `complete`).
    pub async fn complete_many(&self, done: &[(Lease, Done)]) -> Result<Vec<bool>> {
        let now = self.now();
        let mut tx = self.writer.begin_rows().await?;
        let mut ours = std::collections::HashSet::new();
        for part in done.chunks(100) {
            let ids: Vec<i64> = on_tx!(&mut tx, c, Db => {
                let mut qb = sqlx::QueryBuilder::<Db>::new(
                    "UPDATE jobs SET state = 'done', result = v.column3, last_reply = v.column4,
                         lease_token = NULL, lease_expires_at = NULL,
                         prompt_tokens = prompt_tokens + v.column5, gen_tokens = gen_tokens + v.column6,
                         cached_tokens = cached_tokens + v.column7,
                         forced_tokens = forced_tokens + v.column8, finished_at = ",
                );
                qb.push_bind(now)
                    .push(", updated_at = ")
                    .push_bind(now)
                    .push(" FROM (");
                qb.push_values(part, |mut b, (lease, d)| {
                    b.push_bind(lease.id.0)
                        .push_bind(lease.token.clone())
                        .push_bind(d.result.to_string())
                        .push_bind(d.reply.clone())
                        .push_bind(d.prompt_tokens)
                        .push_bind(d.gen_tokens)
                        .push_bind(d.cached_tokens)
                        .push_bind(d.forced_tokens);
                });
                qb.push(
                    ") AS v WHERE jobs.id = v.column1 AND jobs.lease_token = v.column2
                     AND jobs.state = 'leased' RETURNING jobs.id",
                );
                let ids: Vec<i64> = qb.build_query_scalar().fetch_all(&mut **c).await?;
                let done_part: Vec<&(Lease, Done)> =
                    part.iter().filter(|(l, _)| ids.contains(&l.id.0)).collect();
                if !done_part.is_empty() {
                    let mut qb = sqlx::QueryBuilder::<Db>::new("UPDATE attempts SET finished_at = ");
                    qb.push_bind(now).push(", outcome = 'done' FROM (");
                    qb.push_values(done_part, |mut b, (lease, _)| {
                        b.push_bind(lease.id.0).push_bind(lease.attempt);
                    });
                    qb.push(
                        ") AS v WHERE attempts.job_id = v.column1 AND attempts.attempt = v.column2
                         AND attempts.finished_at IS NULL",
                    );
                    qb.build().execute(&mut **c).await?;
                }
                ids
            });
            ours.extend(ids);
        }
        tx.commit().await?;
        Ok(done.iter().map(|(l, _)| ours.contains(&l.id.0)).collect())
    }

    /// Renews a lease. False when it was lost (expired and taken back).
    pub async fn heartbeat(&self, lease: &Lease) -> Result<bool> {
        let now = self.now();
        let expires = now + self.opts.lease.as_millis() as i64;
        let done = on_pool!(&self.writer, p => sqlx::query(
            "UPDATE jobs SET lease_expires_at = $1, updated_at = $2
             WHERE id = $3 AND lease_token = $4 AND state = 'leased'",
        )
        .bind(expires)
        .bind(now)
        .bind(lease.id.0)
        .bind(&lease.token)
        .execute(p)
        .await?
        .rows_affected());
        Ok(done == 1)
    }

    /// Marks the job done inside `tx` (fenced). False when the lease was lost: the caller
    /// must then roll back everything it wrote in `tx`.
    pub async fn complete_in(&self, tx: &mut Tx, lease: &Lease, done: &Done) -> Result<bool> {
        let now = self.now();
        let n = on_tx!(&mut *tx, c => sqlx::query(
            "UPDATE jobs SET state = 'done', result = $1, last_reply = $2, lease_token = NULL,
                 lease_expires_at = NULL, prompt_tokens = prompt_tokens + $3,
                 gen_tokens = gen_tokens + $4, finished_at = $5, updated_at = $5,
                 cached_tokens = cached_tokens + $8, forced_tokens = forced_tokens + $9
             WHERE id = $6 AND lease_token = $7 AND state = 'leased'",
        )
        .bind(done.result.to_string())
        .bind(&done.reply)
        .bind(done.prompt_tokens)
        .bind(done.gen_tokens)
        .bind(now)
        .bind(lease.id.0)
        .bind(&lease.token)
        .bind(done.cached_tokens)
        .bind(done.forced_tokens)
        .execute(&mut **c)
        .await?
        .rows_affected());
        if n != 1 {
            return Ok(false);
        }
        finish_attempt(tx, lease, now, "done", None, done.reply.as_deref(), done).await?;
        Ok(true)
    }

    /// Completes a job that has no follow-ups.
    pub async fn complete(&self, lease: &Lease, done: &Done) -> Result<bool> {
        let mut tx = self.writer.begin_rows().await?;
        let ok = self.complete_in(&mut tx, lease, done).await?;
        if ok {
            tx.commit().await?;
        } else {
            tx.rollback().await?;
        }
        Ok(ok)
    }

    /// Records a failed attempt: back to the queue after a backoff, or dead.
    pub async fn fail(
        &self,
        lease: &Lease,
        failure: &Failure,
        tokens: &Done,
    ) -> Result<FailOutcome> {
        let now = self.now();
        let mut tx = self.writer.begin_rows().await?;
        let sql = format!(
            "SELECT attempts, max_attempts FROM jobs
             WHERE id = $1 AND lease_token = $2 AND state = 'leased'{}",
            self.dialect().for_update()
        );
        let row: Option<(i64, i64)> = on_tx!(&mut tx, c => sqlx::query_as(&sql)
            .bind(lease.id.0)
            .bind(&lease.token)
            .fetch_optional(&mut **c)
            .await?);
        let Some((attempts, max)) = row else {
            tx.rollback().await?;
            return Ok(FailOutcome::Lost);
        };
        let outcome = if failure.retryable && attempts < max {
            FailOutcome::Retry
        } else {
            FailOutcome::Dead
        };
        let (state, run_after) = match outcome {
            FailOutcome::Retry => (
                JobState::Failed,
                now + self
                    .opts
                    .backoff
                    .delay(attempts, fastrand::f64())
                    .as_millis() as i64,
            ),
            _ => (JobState::Dead, now),
        };
        on_tx!(&mut tx, c => sqlx::query(
            "UPDATE jobs SET state = $1, run_after = $2, lease_token = NULL, lease_expires_at = NULL,
                 last_error_kind = $3, last_error = $4, last_reply = COALESCE($5, last_reply),
                 prompt_tokens = prompt_tokens + $6, gen_tokens = gen_tokens + $7,
                 cached_tokens = cached_tokens + $10, forced_tokens = forced_tokens + $11,
                 updated_at = $8, finished_at = CASE WHEN $1 = 'dead' THEN $8 ELSE finished_at END
             WHERE id = $9",
        )
        .bind(state.as_str())
        .bind(run_after)
        .bind(&failure.kind)
        .bind(&failure.message)
        .bind(&failure.reply)
        .bind(tokens.prompt_tokens)
        .bind(tokens.gen_tokens)
        .bind(now)
        .bind(lease.id.0)
        .bind(tokens.cached_tokens)
        .bind(tokens.forced_tokens)
        .execute(&mut **c)
        .await?
        .rows_affected());
        let label = if outcome == FailOutcome::Dead {
            "dead"
        } else {
            "failed"
        };
        finish_attempt(
            &mut tx,
            lease,
            now,
            label,
            Some(failure),
            failure.reply.as_deref(),
            tokens,
        )
        .await?;
        tx.commit().await?;
        Ok(outcome)
    }

    /// Puts a leased job back at once without counting the attempt (graceful shutdown).
    pub async fn release(&self, lease: &Lease) -> Result<bool> {
        let now = self.now();
        let mut tx = self.writer.begin_rows().await?;
        let ok = on_tx!(&mut tx, c => {
            let res = sqlx::query(
                "UPDATE jobs SET state = 'queued',
                     attempts = CASE WHEN attempts > 0 THEN attempts - 1 ELSE 0 END,
                     lease_token = NULL, lease_expires_at = NULL, run_after = 0, updated_at = $1
                 WHERE id = $2 AND lease_token = $3 AND state = 'leased'",
            )
            .bind(now)
            .bind(lease.id.0)
            .bind(&lease.token)
            .execute(&mut **c)
            .await?;
            let ok = res.rows_affected() == 1;
            if ok {
                sqlx::query(
                    "DELETE FROM attempts WHERE job_id = $1 AND attempt = $2 AND finished_at IS NULL",
                )
                .bind(lease.id.0)
                .bind(lease.attempt)
                .execute(&mut **c)
                .await?;
            }
            ok
        });
        tx.commit().await?;
        Ok(ok)
    }

    /// Takes back every expired lease. A lease expires when its holder stopped renewing it:
    /// the process was killed, crashed, froze or lost the database. That is not the job's
    /// fault, so it does not count as an attempt; it counts as a crash, apart. A job whose
    /// holder died under it twice is a suspect and runs alone (see `claim_many`), so that a
    /// later death while it ran alone can be blamed on it: a job whose holder died under it
    /// alone `max_attempts` times is a poison input and dies, saying so. Returns how many
    /// leases were taken back.
    pub async fn rescue_expired(&self) -> Result<u64> {
        let now = self.now();
        let mut tx = self.begin().await?;
        // On PostgreSQL the expired rows are locked as they are read, so that a heartbeat
        // renewing one meanwhile either lands first (and the row is not expired) or waits.
        let sql = format!(
            "SELECT j.id, j.solo_crashes, j.max_attempts,
                    (SELECT COUNT(*) FROM jobs o WHERE o.state = 'leased' AND o.lease_owner = j.lease_owner)
             FROM jobs j WHERE j.state = 'leased' AND j.lease_expires_at < $1{}",
            self.dialect().for_update()
        );
        let n = on_tx!(&mut tx, c => {
            // For each expired lease: how many leases its owner held (all of them, expired or
            // not), to tell a job that ran alone from one that ran beside others.
            let expired: Vec<(i64, i64, i64, i64)> = sqlx::query_as(&sql)
            .bind(now)
            .fetch_all(&mut **c)
            .await?;
            for &(id, solo_crashes, max, held) in &expired {
                let alone = held <= 1;
                let solo = solo_crashes + i64::from(alone);
                let dead = alone && solo >= max;
                let kind = "crashed";
                let message = if dead {
                    format!(
                        "the process died each time this job ran alone ({solo} times): its input \
                         likely crashes quarry or the model; `quarry retry {id}` tries it again"
                    )
                } else {
                    "the process running this job stopped (killed, crashed, or lost the database) \
                     before it finished; not counted as an attempt"
                        .to_string()
                };
                sqlx::query(
                    "UPDATE attempts SET finished_at = $1, outcome = 'crashed', error_kind = $2, error = $3
                     WHERE job_id = $4 AND finished_at IS NULL",
                )
                .bind(now)
                .bind(kind)
                .bind(&message)
                .bind(id)
                .execute(&mut **c)
                .await?;
                sqlx::query(
                    "UPDATE jobs SET state = $1, lease_token = NULL, lease_expires_at = NULL,
                         attempts = CASE WHEN $1 = 'dead' OR attempts = 0 THEN attempts ELSE attempts - 1 END,
                         crashes = crashes + 1, solo_crashes = $2, run_after = $3,
                         last_error_kind = $4, last_error = $5, updated_at = $3,
                         finished_at = CASE WHEN $1 = 'dead' THEN $3 ELSE finished_at END
                     WHERE id = $6",
                )
                .bind(if dead { "dead" } else { "queued" })
                .bind(solo)
                .bind(now)
                .bind(kind)
                .bind(&message)
                .bind(id)
                .execute(&mut **c)
                .await?;
            }
            expired.len() as u64
        });
        tx.commit().await?;
        Ok(n)
    }

    /// Owners of the leases held now.
    pub async fn lease_owners(&self) -> Result<Vec<String>> {
        Ok(on_pool!(&self.reader, p => sqlx::query_scalar(
            "SELECT DISTINCT lease_owner FROM jobs WHERE state = 'leased' AND lease_owner IS NOT NULL",
        )
        .fetch_all(p)
        .await?))
    }

    /// Expires at once the leases of an owner known to be dead, so `rescue_expired` takes
    /// them back now instead of when they time out.
    pub async fn expire_owner(&self, owner: &str) -> Result<u64> {
        Ok(on_pool!(&self.writer, p => sqlx::query(
            "UPDATE jobs SET lease_expires_at = 0 WHERE state = 'leased' AND lease_owner = $1",
        )
        .bind(owner)
        .execute(p)
        .await?
        .rows_affected()))
    }

    /// Sends dead (or, with `job`, that one failed/dead/cancelled) jobs back to the queue with
    /// fresh attempts. Returns how many.
    pub async fn retry(&self, job: Option<JobId>) -> Result<u64> {
        let now = self.now();
        let n = match job {
            Some(id) => {
                let n = on_pool!(&self.writer, p => sqlx::query(
                    "UPDATE jobs SET state = 'queued', attempts = 0, run_after = 0, updated_at = $1
                     WHERE id = $2 AND state IN ('dead', 'failed', 'cancelled')",
                )
                .bind(now)
                .bind(id.0)
                .execute(p)
                .await?
                .rows_affected());
                if n == 0 && self.job_state(id).await?.is_none() {
                    return Err(QueueError::NoSuchJob(id));
                }
                n
            }
            None => on_pool!(&self.writer, p => sqlx::query(
                "UPDATE jobs SET state = 'queued', attempts = 0, run_after = 0, updated_at = $1
                 WHERE state = 'dead'",
            )
            .bind(now)
            .execute(p)
            .await?
            .rows_affected()),
        };
        Ok(n)
    }

    /// Cancels a job that has not finished. False if it was already settled.
    pub async fn cancel(&self, id: JobId) -> Result<bool> {
        let now = self.now();
        let n = on_pool!(&self.writer, p => sqlx::query(
            "UPDATE jobs SET state = 'cancelled', lease_token = NULL, lease_expires_at = NULL,
                 updated_at = $1, finished_at = $1
             WHERE id = $2 AND state IN ('queued', 'failed', 'leased')",
        )
        .bind(now)
        .bind(id.0)
        .execute(p)
        .await?
        .rows_affected());
        if n == 0 && self.job_state(id).await?.is_none() {
            return Err(QueueError::NoSuchJob(id));
        }
        Ok(n == 1)
    }

    pub async fn job_state(&self, id: JobId) -> Result<Option<JobState>> {
        let state: Option<String> = on_pool!(&self.reader, p => sqlx::query_scalar(
            "SELECT state FROM jobs WHERE id = $1",
        )
        .bind(id.0)
        .fetch_optional(p)
        .await?);
        state.map(parse_state).transpose()
    }

    /// Jobs per (stage, state).
    pub async fn counts(&self) -> Result<Vec<StageCount>> {
        let rows: Vec<(String, String, i64, i64, i64, i64)> = on_pool!(&self.reader, p => sqlx::query_as(
            "SELECT stage, state, COUNT(*), CAST(COALESCE(SUM(est_tokens), 0) AS BIGINT),
                    CAST(COALESCE(SUM(prompt_tokens), 0) AS BIGINT),
                    CAST(COALESCE(SUM(gen_tokens), 0) AS BIGINT)
             FROM jobs GROUP BY stage, state ORDER BY MIN(id)",
        )
        .fetch_all(p)
        .await?);
        rows.into_iter()
            .map(
                |(stage, state, jobs, est_tokens, prompt_tokens, gen_tokens)| {
                    Ok(StageCount {
                        stage,
                        state: parse_state(state)?,
                        jobs,
                        est_tokens,
                        prompt_tokens,
                        gen_tokens,
                    })
                },
            )
            .collect()
    }

    /// The token bill per stage, in pipeline order (the order stages were first enqueued).
    pub async fn bill(&self) -> Result<Vec<StageBill>> {
        type Row = (
            String,
            i64,
            i64,
            i64,
            i64,
            i64,
            i64,
            i64,
            Option<i64>,
            Option<i64>,
        );
        let rows: Vec<Row> = on_pool!(&self.reader, p => sqlx::query_as(
            "SELECT j.stage, COUNT(*), CAST(SUM(CASE WHEN j.state = 'done' THEN 1 ELSE 0 END) AS BIGINT),
                    CAST(COALESCE(SUM(j.prompt_tokens), 0) AS BIGINT),
                    CAST(COALESCE(SUM(j.cached_tokens), 0) AS BIGINT),
                    CAST(COALESCE(SUM(j.gen_tokens), 0) AS BIGINT),
                    CAST(COALESCE(SUM(j.forced_tokens), 0) AS BIGINT),
                    CAST(COALESCE(SUM((SELECT SUM(a.finished_at - a.started_at) FROM attempts a
                                       WHERE a.job_id = j.id AND a.finished_at IS NOT NULL)), 0) AS BIGINT),
                    CAST(MIN((SELECT MIN(a.started_at) FROM attempts a WHERE a.job_id = j.id)) AS BIGINT),
                    CAST(MAX((SELECT MAX(a.finished_at) FROM attempts a WHERE a.job_id = j.id)) AS BIGINT)
             FROM jobs j GROUP BY j.stage ORDER BY MIN(j.id)",
        )
        .fetch_all(p)
        .await?);
        Ok(rows
            .into_iter()
            .map(
                |(stage, jobs, done, prompt, cached, gen_tokens, forced, ms, first, last)| {
                    StageBill {
                        stage,
                        jobs,
                        done,
                        prompt_tokens: prompt,
                        cached_tokens: cached,
                        computed_tokens: prompt - cached,
                        gen_tokens,
                        forced_tokens: forced,
                        attempt_seconds: ms as f64 / 1000.0,
                        span_seconds: match (first, last) {
                            (Some(a), Some(b)) if b >= a => (b - a) as f64 / 1000.0,
                            _ => 0.0,
                        },
                    }
                },
            )
            .collect())
    }

    /// The tokens of every chunk stored: the size of the corpus, as the model counts it.
    pub async fn corpus_tokens(&self) -> Result<i64> {
        Ok(on_pool!(&self.reader, p => sqlx::query_scalar(
            "SELECT CAST(COALESCE(SUM(tokens), 0) AS BIGINT) FROM chunks",
        )
        .fetch_one(p)
        .await?))
    }

    /// True when no job could still run (all settled).
    pub async fn is_drained(&self) -> Result<bool> {
        let n: i64 = on_pool!(&self.reader, p => sqlx::query_scalar(
            "SELECT COUNT(*) FROM jobs WHERE state IN ('queued', 'leased', 'failed')",
        )
        .fetch_one(p)
        .await?);
        Ok(n == 0)
    }

    /// Number of jobs of these stages that may still run.
    pub async fn pending_in(&self, stages: &[&str]) -> Result<i64> {
        let sql = format!(
            "SELECT COUNT(*) FROM jobs WHERE state IN ('queued', 'leased', 'failed') AND stage IN ({})",
            params(1, stages.len().max(1))
        );
        Ok(on_pool!(&self.reader, p => {
            let mut q = sqlx::query_scalar(&sql);
            if stages.is_empty() {
                q = q.bind("");
            }
            for s in stages {
                q = q.bind(*s);
            }
            q.fetch_one(p).await?
        }))
    }

    /// Milliseconds until the next backoff ends, if some job waits for one.
    pub async fn next_wakeup(&self) -> Result<Option<i64>> {
        let at: Option<i64> = on_pool!(&self.reader, p => sqlx::query_scalar(
            "SELECT MIN(run_after) FROM jobs WHERE state IN ('queued', 'failed')",
        )
        .fetch_one(p)
        .await?);
        Ok(at.map(|t| (t - self.now()).max(0)))
    }

    /// Failed, dead and cancelled jobs with their last error, for `status --failed`.
    pub async fn failures(&self) -> Result<Vec<FailedJob>> {
        type FailedRow = (
            i64,
            String,
            String,
            String,
            i64,
            i64,
            String,
            String,
            Option<String>,
            Option<i64>,
            Option<i64>,
        );
        let rows: Vec<FailedRow> = on_pool!(&self.reader, p => sqlx::query_as(
            "SELECT j.id, j.role, j.stage, j.state, j.attempts, j.max_attempts,
                    COALESCE(j.last_error_kind, ''), COALESCE(j.last_error, ''),
                    s.rel_path, c.line_start, c.line_end
             FROM jobs j
             LEFT JOIN chunks c ON j.input_kind = 'chunk' AND c.id = j.input_id
             LEFT JOIN sources s ON s.id = c.source_id
             WHERE j.state IN ('failed', 'dead', 'cancelled')
             ORDER BY j.id",
        )
        .fetch_all(p)
        .await?);
        rows.into_iter()
            .map(|r| {
                Ok(FailedJob {
                    id: JobId(r.0),
                    role: r.1,
                    stage: r.2,
                    state: parse_state(r.3)?,
                    attempts: r.4,
                    max_attempts: r.5,
                    error_kind: r.6,
                    error: r.7,
                    file: r.8,
                    lines: match (r.9, r.10) {
                        (Some(a), Some(b)) => Some((a, b)),
                        _ => None,
                    },
                })
            })
            .collect()
    }

    /// Jobs being worked on now, with the worker (`host:pid`) holding each.
    pub async fn running(&self) -> Result<Vec<RunningJob>> {
        type RunningRow = (
            i64,
            String,
            String,
            String,
            Option<i64>,
            Option<String>,
            Option<String>,
        );
        let rows: Vec<RunningRow> = on_pool!(&self.reader, p => sqlx::query_as(
            "SELECT j.id, j.role, j.stage, COALESCE(j.lease_owner, ''), j.started_at, s.rel_path,
                    c.heading_path
             FROM jobs j
             LEFT JOIN chunks c ON j.input_kind = 'chunk' AND c.id = j.input_id
             LEFT JOIN sources s ON s.id = c.source_id
             WHERE j.state = 'leased' ORDER BY j.id",
        )
        .fetch_all(p)
        .await?);
        Ok(rows
            .into_iter()
            .map(|r| RunningJob {
                id: JobId(r.0),
                role: r.1,
                stage: r.2,
                host: owner_host(&r.3).to_string(),
                owner: r.3,
                started_at: r.4.unwrap_or(0),
                file: r.5,
                heading: r
                    .6
                    .and_then(|h| serde_json::from_str::<Vec<String>>(&h).ok())
                    .map(|h| h.join(" > ")),
            })
            .collect())
    }

    /// Truncates the WAL file; called now and then so it stays bounded. Nothing to do on
    /// PostgreSQL, whose server manages its own log.
    pub async fn checkpoint(&self) -> Result<()> {
        if let Pool::Sqlite(p) = &self.writer {
            sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
                .execute(p)
                .await?;
        }
        Ok(())
    }

    /// SQLite's integrity check ("ok" when sound); on PostgreSQL, "ok" when the server
    /// answers.
    pub async fn integrity_check(&self) -> Result<String> {
        Ok(match &self.writer {
            Pool::Sqlite(p) => {
                sqlx::query_scalar("PRAGMA integrity_check")
                    .fetch_one(p)
                    .await?
            }
            Pool::Postgres(p) => {
                sqlx::query("SELECT 1").execute(p).await?;
                "ok".to_string()
            }
        })
    }

    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }
}

/// The outcome of a successful attempt.
#[derive(Clone, Debug, Default)]
pub struct Done {
    pub result: serde_json::Value,
    pub reply: Option<String>,
    pub prompt_tokens: i64,
    pub gen_tokens: i64,
    /// Of `prompt_tokens`, those whose KV came from a cache instead of being computed.
    pub cached_tokens: i64,
    /// Of `gen_tokens`, those the grammar forced (appended in one batch, not sampled).
    pub forced_tokens: i64,
}

/// What one stage has cost so far: the token bill of its jobs (every attempt, failed ones
/// too) and the time its attempts took (summed over workers, so it can exceed the wall time).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct StageBill {
    pub stage: String,
    pub jobs: i64,
    pub done: i64,
    pub prompt_tokens: i64,
    /// Prompt tokens served from a KV cache.
    pub cached_tokens: i64,
    /// Prompt tokens computed: `prompt_tokens - cached_tokens`.
    pub computed_tokens: i64,
    pub gen_tokens: i64,
    /// Of `gen_tokens`, those the grammar forced (appended in one batch, not sampled).
    pub forced_tokens: i64,
    pub attempt_seconds: f64,
    /// From the stage's first attempt starting to its last one finishing (stages overlap).
    pub span_seconds: f64,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct StageCount {
    pub stage: String,
    pub state: JobState,
    pub jobs: i64,
    pub est_tokens: i64,
    pub prompt_tokens: i64,
    pub gen_tokens: i64,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct FailedJob {
    pub id: JobId,
    pub role: String,
    pub stage: String,
    pub state: JobState,
    pub attempts: i64,
    pub max_attempts: i64,
    pub error_kind: String,
    pub error: String,
    pub file: Option<String>,
    pub lines: Option<(i64, i64)>,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct RunningJob {
    pub id: JobId,
    pub role: String,
    pub stage: String,
    /// The worker holding the lease: `host:pid`.
    pub owner: String,
    /// The machine it runs on.
    pub host: String,
    pub started_at: i64,
    pub file: Option<String>,
    pub heading: Option<String>,
}

fn parse_state(s: String) -> Result<JobState> {
    s.parse()
        .map_err(|e: UnknownState| QueueError::Corrupt(e.to_string()))
}

/// The SQLite pools: one writer, four read-only readers; creates and migrates the file under
/// `<db>.lock`.
async fn open_sqlite(path: &Path, create: bool) -> Result<(Pool, Pool)> {
    let db = DbUrl::Sqlite(path.to_path_buf());
    if !create && !path.exists() {
        return Err(QueueError::Missing { db });
    }
    let open_err = |source| QueueError::Open {
        db: db.clone(),
        source,
    };
    let base = SqliteConnectOptions::from_str("sqlite://")
        .map_err(open_err)?
        .filename(path)
        .create_if_missing(create)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(Duration::from_secs(30))
        .foreign_keys(true)
        .auto_vacuum(SqliteAutoVacuum::None)
        .pragma("journal_size_limit", "67108864")
        .pragma("wal_autocheckpoint", "1000")
        .pragma("cache_size", "-32768")
        // Chunks are 1-2 KB rows: 4 KB pages hold two and waste a third of the file;
        // 16 KB pages cut the database (and what enqueue writes) by a sixth. Applies
        // when the database is created.
        .page_size(16384);
    // Creating a database (its WAL mode, its page size) and migrating it take no lock of
    // SQLite's that waits: two processes opening a new database at once would both
    // create its tables, or one would find it locked. One process sets up at a time.
    let guard = setup_lock(path).await;
    let writer = SqlitePoolOptions::new()
        .max_connections(1)
        .acquire_timeout(Duration::from_secs(60))
        .connect_with(base.clone())
        .await
        .map_err(open_err)?;
    let writer = Pool::Sqlite(writer);
    migrate(&writer, &db).await?;
    drop(guard);
    let reader = SqlitePoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_secs(60))
        .connect_with(base.read_only(true))
        .await
        .map_err(open_err)?;
    Ok((writer, Pool::Sqlite(reader)))
}

/// The PostgreSQL pool. Connections are checked before use, so after the server restarts
/// a broken one is replaced instead of failing a statement; acquiring gives up after 10 s
/// and the caller retries with backoff. PostgreSQL's own migration lock makes concurrent
/// first opens safe.
async fn open_postgres(url: &str) -> Result<sqlx::PgPool, sqlx::Error> {
    let opts = PgConnectOptions::from_str(url)?.application_name("quarry");
    PgPoolOptions::new()
        .max_connections(PG_CONNECTIONS)
        .acquire_timeout(Duration::from_secs(10))
        .test_before_acquire(true)
        .connect_with(opts)
        .await
}

/// An exclusive lock on `<db>.lock` for as long as the file is held, so that one process at
/// a time creates and migrates the database. Best effort: where the lock file cannot be made (a read-only
/// folder), nobody can be creating the database there either.
async fn setup_lock(db: &Path) -> Option<std::fs::File> {
    let mut name = db.as_os_str().to_owned();
    name.push(".lock");
    let path = PathBuf::from(name);
    tokio::task::spawn_blocking(move || {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .ok()?;
        file.lock().ok()?;
        Some(file)
    })
    .await
    .ok()
    .flatten()
}

fn new_token() -> String {
    format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..))
}

/// The host part of a lease owner (`host:pid`).
pub fn owner_host(owner: &str) -> &str {
    owner.rsplit_once(':').map_or(owner, |(host, _)| host)
}

async fn finish_attempt(
    tx: &mut Tx,
    lease: &Lease,
    now: i64,
    outcome: &str,
    failure: Option<&Failure>,
    reply: Option<&str>,
    tokens: &Done,
) -> Result<()> {
    on_tx!(tx, c => sqlx::query(
        "UPDATE attempts SET finished_at = $1, outcome = $2, error_kind = $3, error = $4, reply = $5,
             prompt_tokens = $6, gen_tokens = $7, cached_tokens = $10, forced_tokens = $11
         WHERE job_id = $8 AND attempt = $9 AND finished_at IS NULL",
    )
    .bind(now)
    .bind(outcome)
    .bind(failure.map(|f| f.kind.as_str()))
    .bind(failure.map(|f| f.message.as_str()))
    .bind(reply)
    .bind(tokens.prompt_tokens)
    .bind(tokens.gen_tokens)
    .bind(lease.id.0)
    .bind(lease.attempt)
    .bind(tokens.cached_tokens)
    .bind(tokens.forced_tokens)
    .execute(&mut **c)
    .await?
        .rows_affected());
    Ok(())
}

/// Inserts jobs in `tx`, skipping existing dedup keys; returns the new ids.
pub async fn insert_jobs(tx: &mut Tx, jobs: &[NewJob], now: i64) -> Result<Vec<JobId>> {
    let mut ids = Vec::new();
    // Jobs without dependencies go in multi-row statements; the others one by one, since
    // their new id is needed for `job_deps`.
    let (plain, with_deps): (Vec<&NewJob>, Vec<&NewJob>) =
        jobs.iter().partition(|j| j.depends_on.is_empty());
    for part in plain.chunks(250) {
        let got: Vec<i64> = on_tx!(&mut *tx, c, Db => {
            let mut qb = sqlx::QueryBuilder::<Db>::new(
                "INSERT INTO jobs (role, stage, input_kind, input_id, dedup_key, priority, max_attempts,
                                   payload, est_tokens, created_at, updated_at) ",
            );
            qb.push_values(part, |mut b, job| {
                b.push_bind(job.role.clone())
                    .push_bind(job.stage.clone())
                    .push_bind(job.input_kind.clone())
                    .push_bind(job.input_id)
                    .push_bind(format!("{}|{}", job.role, job.dedup))
                    .push_bind(job.priority)
                    .push_bind(job.max_attempts)
                    .push_bind(job.payload.to_string())
                    .push_bind(job.est_tokens)
                    .push_bind(now)
                    .push_bind(now);
            });
            qb.push(" ON CONFLICT (dedup_key) DO NOTHING RETURNING id");
            qb.build_query_scalar().fetch_all(&mut **c).await?
        });
        ids.extend(got.into_iter().map(JobId));
    }
    for job in with_deps {
        let key = format!("{}|{}", job.role, job.dedup);
        let id: Option<i64> = on_tx!(&mut *tx, c => {
            let id: Option<i64> = sqlx::query_scalar(
                "INSERT INTO jobs (role, stage, input_kind, input_id, dedup_key, priority, max_attempts,
                                   payload, est_tokens, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)
                 ON CONFLICT (dedup_key) DO NOTHING
                 RETURNING id",
            )
            .bind(&job.role)
            .bind(&job.stage)
            .bind(&job.input_kind)
            .bind(job.input_id)
            .bind(&key)
            .bind(job.priority)
            .bind(job.max_attempts)
            .bind(job.payload.to_string())
            .bind(job.est_tokens)
            .bind(now)
            .fetch_optional(&mut **c)
            .await?;
            if let Some(id) = id {
                for dep in &job.depends_on {
                    sqlx::query(
                        "INSERT INTO job_deps (job_id, depends_on) VALUES ($1, $2)
                         ON CONFLICT DO NOTHING",
                    )
                    .bind(id)
                    .bind(dep.0)
                    .execute(&mut **c)
                    .await?;
                }
            }
            id
        });
        ids.extend(id.map(JobId));
    }
    Ok(ids)
}

#[cfg(test)]
mod tests;
