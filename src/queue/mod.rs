//! The durable job queue and the store of everything quarry learns: the only module with SQL.
//!
//! Invariants (see ARCHITECTURE.md):
//! - a claim is one short `BEGIN IMMEDIATE` transaction that sets a fresh lease token;
//! - completion, failure and release are fenced by `id AND lease_token`: a worker whose lease
//!   expired cannot overwrite what another worker did;
//! - no transaction is ever held across a model call;
//! - a job's follow-up rows (findings, new jobs) are written in the same transaction that marks
//!   it done, so a crash leaves either both or neither;
//! - a dedup key makes enqueueing idempotent.

pub mod retrieval;
mod state;
pub mod store;

pub use state::{FindingStatus, JobId, JobState, SourceStatus, UnknownState};

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteAutoVacuum, SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Row, Sqlite, SqlitePool, Transaction};

/// Errors at the queue's edge. Each names the database or job it is about.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("cannot open the queue database {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: sqlx::Error,
    },
    #[error("the queue database {path} does not exist yet: run `quarry enqueue DIR` first")]
    Missing { path: PathBuf },
    #[error("cannot migrate the queue database {path}: {source}")]
    Migrate {
        path: PathBuf,
        #[source]
        source: sqlx::migrate::MigrateError,
    },
    #[error("no job {0}")]
    NoSuchJob(JobId),
    #[error("database error: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("corrupt row: {0}")]
    Corrupt(String),
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

/// The queue: one writer connection (SQLite allows one writer at a time anyway) and a pool
/// of readers, both in WAL mode.
#[derive(Clone)]
pub struct Queue {
    writer: SqlitePool,
    reader: SqlitePool,
    path: PathBuf,
    clock: Clock,
    opts: QueueOptions,
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Queue").field("path", &self.path).finish()
    }
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

impl Queue {
    /// Opens (and with `create`, creates) the database and applies pending migrations.
    pub async fn open(path: &Path, create: bool) -> Result<Queue> {
        Self::open_with(path, create, system_clock(), QueueOptions::default()).await
    }

    pub async fn open_with(
        path: &Path,
        create: bool,
        clock: Clock,
        opts: QueueOptions,
    ) -> Result<Queue> {
        if !create && !path.exists() {
            return Err(QueueError::Missing {
                path: path.to_path_buf(),
            });
        }
        let open_err = |source| QueueError::Open {
            path: path.to_path_buf(),
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
        MIGRATOR
            .run(&writer)
            .await
            .map_err(|source| QueueError::Migrate {
                path: path.to_path_buf(),
                source,
            })?;
        drop(guard);
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(60))
            .connect_with(base.read_only(true))
            .await
            .map_err(open_err)?;
        Ok(Queue {
            writer,
            reader,
            path: path.to_path_buf(),
            clock,
            opts,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn now(&self) -> i64 {
        (self.clock)()
    }

    pub fn options(&self) -> &QueueOptions {
        &self.opts
    }

    pub(crate) fn reader(&self) -> &SqlitePool {
        &self.reader
    }

    /// A short write transaction that takes the write lock at once (`BEGIN IMMEDIATE`),
    /// so two processes never deadlock upgrading a read lock.
    pub async fn begin(&self) -> Result<Transaction<'static, Sqlite>> {
        Ok(self.writer.begin_with("BEGIN IMMEDIATE").await?)
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
            format!(
                " AND j.stage IN ({})",
                std::iter::repeat_n("?", stages.len())
                    .collect::<Vec<_>>()
                    .join(",")
            )
        };
        // A suspect (a job whose holder died under it twice) runs alone in its process: it
        // is taken only when nothing else is runnable and this owner holds no lease, and
        // while an owner holds one it takes nothing else. If the process dies then, the
        // death is the suspect's (see `rescue_expired`).
        let claim_sql = |filter: &str, order: &str, limit: usize| {
            format!(
                "UPDATE jobs SET state = 'leased', lease_token = ?1, lease_owner = ?2,
                     lease_expires_at = ?3, attempts = attempts + 1, started_at = ?4, updated_at = ?4
                 WHERE id IN (
                     SELECT j.id FROM jobs j
                     WHERE j.state IN ('queued', 'failed') AND j.run_after <= ?4 {stage_filter}
                       AND {filter}
                       AND NOT EXISTS (
                           SELECT 1 FROM job_deps d JOIN jobs p ON p.id = d.depends_on
                           WHERE d.job_id = j.id AND p.state NOT IN ('done', 'dead', 'cancelled'))
                     ORDER BY {order}
                     LIMIT {limit})
                 RETURNING id, role, stage, input_kind, input_id, payload, attempts, max_attempts"
            )
        };
        let held = |cond: &str| {
            format!(
                "NOT EXISTS (SELECT 1 FROM jobs o WHERE o.state = 'leased' AND o.lease_owner = ?2 {cond})"
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
        let mut tx = self.begin().await?;
        let mut rows = Vec::new();
        for sql in [&plain, &suspect] {
            let mut q = sqlx::query(sql)
                .bind(&token)
                .bind(owner)
                .bind(expires)
                .bind(now);
            for s in stages {
                q = q.bind(s);
            }
            rows = q.fetch_all(&mut *tx).await?;
            if !rows.is_empty() {
                break;
            }
        }
        if rows.is_empty() {
            tx.commit().await?;
            return Ok(Vec::new());
        }
        sqlx::query(
            "INSERT INTO attempts (job_id, attempt, worker, started_at)
             SELECT id, attempts, ?1, ?2 FROM jobs WHERE lease_token = ?3 AND state = 'leased'",
        )
        .bind(owner)
        .bind(now)
        .bind(&token)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        let mut leases = rows
            .into_iter()
            .map(|row| {
                let id = JobId(row.get("id"));
                let payload: String = row.get("payload");
                Ok(Lease {
                    id,
                    role: row.get("role"),
                    stage: row.get("stage"),
                    input_kind: row.get("input_kind"),
                    input_id: row.get("input_id"),
                    payload: serde_json::from_str(&payload)
                        .map_err(|e| QueueError::Corrupt(format!("job {id} payload: {e}")))?,
                    attempt: row.get("attempts"),
                    max_attempts: row.get("max_attempts"),
                    token: token.clone(),
                    owner: owner.to_string(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        leases.sort_by_key(|l| l.id);
        Ok(leases)
    }

    /// Completes several jobs (no follow-ups) in one transaction with two statements; says
    /// which were still ours (fenced per job like `complete`).
    pub async fn complete_many(&self, done: &[(Lease, Done)]) -> Result<Vec<bool>> {
        let now = self.now();
        let mut tx = self.begin().await?;
        let mut ours = std::collections::HashSet::new();
        for part in done.chunks(100) {
            let mut qb = sqlx::QueryBuilder::<Sqlite>::new(
                "UPDATE jobs SET state = 'done', result = v.column3, last_reply = v.column4,
                     lease_token = NULL, lease_expires_at = NULL,
                     prompt_tokens = prompt_tokens + v.column5, gen_tokens = gen_tokens + v.column6,
                     cached_tokens = cached_tokens + v.column7, finished_at = ",
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
                    .push_bind(d.cached_tokens);
            });
            qb.push(
                ") AS v WHERE jobs.id = v.column1 AND jobs.lease_token = v.column2
                 AND jobs.state = 'leased' RETURNING jobs.id",
            );
            let ids: Vec<i64> = qb.build_query_scalar().fetch_all(&mut *tx).await?;
            let mut qb = sqlx::QueryBuilder::<Sqlite>::new("UPDATE attempts SET finished_at = ");
            qb.push_bind(now).push(", outcome = 'done' FROM (");
            let done_part: Vec<&(Lease, Done)> =
                part.iter().filter(|(l, _)| ids.contains(&l.id.0)).collect();
            if !done_part.is_empty() {
                qb.push_values(done_part, |mut b, (lease, _)| {
                    b.push_bind(lease.id.0).push_bind(lease.attempt);
                });
                qb.push(
                    ") AS v WHERE attempts.job_id = v.column1 AND attempts.attempt = v.column2
                     AND attempts.finished_at IS NULL",
                );
                qb.build().execute(&mut *tx).await?;
            }
            ours.extend(ids);
        }
        tx.commit().await?;
        Ok(done.iter().map(|(l, _)| ours.contains(&l.id.0)).collect())
    }

    /// Renews a lease. False when it was lost (expired and taken back).
    pub async fn heartbeat(&self, lease: &Lease) -> Result<bool> {
        let now = self.now();
        let expires = now + self.opts.lease.as_millis() as i64;
        let done = sqlx::query(
            "UPDATE jobs SET lease_expires_at = ?1, updated_at = ?2
             WHERE id = ?3 AND lease_token = ?4 AND state = 'leased'",
        )
        .bind(expires)
        .bind(now)
        .bind(lease.id.0)
        .bind(&lease.token)
        .execute(&self.writer)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Marks the job done inside `tx` (fenced). False when the lease was lost: the caller
    /// must then roll back everything it wrote in `tx`.
    pub async fn complete_in(
        &self,
        tx: &mut Transaction<'static, Sqlite>,
        lease: &Lease,
        done: &Done,
    ) -> Result<bool> {
        let now = self.now();
        let res = sqlx::query(
            "UPDATE jobs SET state = 'done', result = ?1, last_reply = ?2, lease_token = NULL,
                 lease_expires_at = NULL, prompt_tokens = prompt_tokens + ?3,
                 gen_tokens = gen_tokens + ?4, finished_at = ?5, updated_at = ?5,
                 cached_tokens = cached_tokens + ?8
             WHERE id = ?6 AND lease_token = ?7 AND state = 'leased'",
        )
        .bind(done.result.to_string())
        .bind(&done.reply)
        .bind(done.prompt_tokens)
        .bind(done.gen_tokens)
        .bind(now)
        .bind(lease.id.0)
        .bind(&lease.token)
        .bind(done.cached_tokens)
        .execute(&mut **tx)
        .await?;
        if res.rows_affected() != 1 {
            return Ok(false);
        }
        finish_attempt(tx, lease, now, "done", None, done.reply.as_deref(), done).await?;
        Ok(true)
    }

    /// Completes a job that has no follow-ups.
    pub async fn complete(&self, lease: &Lease, done: &Done) -> Result<bool> {
        let mut tx = self.begin().await?;
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
        let mut tx = self.begin().await?;
        let row = sqlx::query("SELECT attempts, max_attempts FROM jobs WHERE id = ?1 AND lease_token = ?2 AND state = 'leased'")
            .bind(lease.id.0)
            .bind(&lease.token)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else {
            tx.rollback().await?;
            return Ok(FailOutcome::Lost);
        };
        let attempts: i64 = row.get(0);
        let max: i64 = row.get(1);
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
        sqlx::query(
            "UPDATE jobs SET state = ?1, run_after = ?2, lease_token = NULL, lease_expires_at = NULL,
                 last_error_kind = ?3, last_error = ?4, last_reply = COALESCE(?5, last_reply),
                 prompt_tokens = prompt_tokens + ?6, gen_tokens = gen_tokens + ?7,
                 cached_tokens = cached_tokens + ?10,
                 updated_at = ?8, finished_at = CASE WHEN ?1 = 'dead' THEN ?8 ELSE finished_at END
             WHERE id = ?9",
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
        .execute(&mut *tx)
        .await?;
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
        let mut tx = self.begin().await?;
        let res = sqlx::query(
            "UPDATE jobs SET state = 'queued', attempts = MAX(attempts - 1, 0), lease_token = NULL,
                 lease_expires_at = NULL, run_after = 0, updated_at = ?1
             WHERE id = ?2 AND lease_token = ?3 AND state = 'leased'",
        )
        .bind(now)
        .bind(lease.id.0)
        .bind(&lease.token)
        .execute(&mut *tx)
        .await?;
        let ok = res.rows_affected() == 1;
        if ok {
            sqlx::query(
                "DELETE FROM attempts WHERE job_id = ?1 AND attempt = ?2 AND finished_at IS NULL",
            )
            .bind(lease.id.0)
            .bind(lease.attempt)
            .execute(&mut *tx)
            .await?;
        }
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
        // For each expired lease: how many leases its owner held (all of them, expired or
        // not), to tell a job that ran alone from one that ran beside others.
        let expired: Vec<(i64, i64, i64, i64)> = sqlx::query_as(
            "SELECT j.id, j.solo_crashes, j.max_attempts,
                    (SELECT COUNT(*) FROM jobs o WHERE o.state = 'leased' AND o.lease_owner = j.lease_owner)
             FROM jobs j WHERE j.state = 'leased' AND j.lease_expires_at < ?1",
        )
        .bind(now)
        .fetch_all(&mut *tx)
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
                "UPDATE attempts SET finished_at = ?1, outcome = 'crashed', error_kind = ?2, error = ?3
                 WHERE job_id = ?4 AND finished_at IS NULL",
            )
            .bind(now)
            .bind(kind)
            .bind(&message)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE jobs SET state = ?1, lease_token = NULL, lease_expires_at = NULL,
                     attempts = CASE WHEN ?1 = 'dead' THEN attempts ELSE MAX(attempts - 1, 0) END,
                     crashes = crashes + 1, solo_crashes = ?2, run_after = ?3,
                     last_error_kind = ?4, last_error = ?5, updated_at = ?3,
                     finished_at = CASE WHEN ?1 = 'dead' THEN ?3 ELSE finished_at END
                 WHERE id = ?6",
            )
            .bind(if dead { "dead" } else { "queued" })
            .bind(solo)
            .bind(now)
            .bind(kind)
            .bind(&message)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(expired.len() as u64)
    }

    /// Owners of the leases held now.
    pub async fn lease_owners(&self) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT DISTINCT lease_owner FROM jobs WHERE state = 'leased' AND lease_owner IS NOT NULL",
        )
        .fetch_all(&self.reader)
        .await?)
    }

    /// Expires at once the leases of an owner known to be dead, so `rescue_expired` takes
    /// them back now instead of when they time out.
    pub async fn expire_owner(&self, owner: &str) -> Result<u64> {
        let res = sqlx::query(
            "UPDATE jobs SET lease_expires_at = 0 WHERE state = 'leased' AND lease_owner = ?1",
        )
        .bind(owner)
        .execute(&self.writer)
        .await?;
        Ok(res.rows_affected())
    }

    /// Sends dead (or, with `job`, that one failed/dead/cancelled) jobs back to the queue with
    /// fresh attempts. Returns how many.
    pub async fn retry(&self, job: Option<JobId>) -> Result<u64> {
        let now = self.now();
        let res =
            match job {
                Some(id) => {
                    let res = sqlx::query(
                    "UPDATE jobs SET state = 'queued', attempts = 0, run_after = 0, updated_at = ?1
                     WHERE id = ?2 AND state IN ('dead', 'failed', 'cancelled')",
                )
                .bind(now)
                .bind(id.0)
                .execute(&self.writer)
                .await?;
                    if res.rows_affected() == 0 && self.job_state(id).await?.is_none() {
                        return Err(QueueError::NoSuchJob(id));
                    }
                    res
                }
                None => sqlx::query(
                    "UPDATE jobs SET state = 'queued', attempts = 0, run_after = 0, updated_at = ?1
                     WHERE state = 'dead'",
                )
                .bind(now)
                .execute(&self.writer)
                .await?,
            };
        Ok(res.rows_affected())
    }

    /// Cancels a job that has not finished. False if it was already settled.
    pub async fn cancel(&self, id: JobId) -> Result<bool> {
        let now = self.now();
        let res = sqlx::query(
            "UPDATE jobs SET state = 'cancelled', lease_token = NULL, lease_expires_at = NULL,
                 updated_at = ?1, finished_at = ?1
             WHERE id = ?2 AND state IN ('queued', 'failed', 'leased')",
        )
        .bind(now)
        .bind(id.0)
        .execute(&self.writer)
        .await?;
        if res.rows_affected() == 0 && self.job_state(id).await?.is_none() {
            return Err(QueueError::NoSuchJob(id));
        }
        Ok(res.rows_affected() == 1)
    }

    pub async fn job_state(&self, id: JobId) -> Result<Option<JobState>> {
        let row = sqlx::query("SELECT state FROM jobs WHERE id = ?1")
            .bind(id.0)
            .fetch_optional(&self.reader)
            .await?;
        row.map(|r| parse_state(r.get::<String, _>(0))).transpose()
    }

    /// Jobs per (stage, state).
    pub async fn counts(&self) -> Result<Vec<StageCount>> {
        let rows = sqlx::query(
            "SELECT stage, state, COUNT(*), COALESCE(SUM(est_tokens), 0),
                    COALESCE(SUM(prompt_tokens), 0), COALESCE(SUM(gen_tokens), 0)
             FROM jobs GROUP BY stage, state ORDER BY MIN(id)",
        )
        .fetch_all(&self.reader)
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(StageCount {
                    stage: r.get(0),
                    state: parse_state(r.get::<String, _>(1))?,
                    jobs: r.get(2),
                    est_tokens: r.get(3),
                    prompt_tokens: r.get(4),
                    gen_tokens: r.get(5),
                })
            })
            .collect()
    }

    /// The token bill per stage, in pipeline order (the order stages were first enqueued).
    pub async fn bill(&self) -> Result<Vec<StageBill>> {
        let rows = sqlx::query(
            "SELECT j.stage, COUNT(*), SUM(j.state = 'done'), COALESCE(SUM(j.prompt_tokens), 0),
                    COALESCE(SUM(j.cached_tokens), 0), COALESCE(SUM(j.gen_tokens), 0),
                    COALESCE(SUM((SELECT SUM(a.finished_at - a.started_at) FROM attempts a
                                  WHERE a.job_id = j.id AND a.finished_at IS NOT NULL)), 0)
             FROM jobs j GROUP BY j.stage ORDER BY MIN(j.id)",
        )
        .fetch_all(&self.reader)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let (prompt, cached): (i64, i64) = (r.get(3), r.get(4));
                StageBill {
                    stage: r.get(0),
                    jobs: r.get(1),
                    done: r.get(2),
                    prompt_tokens: prompt,
                    cached_tokens: cached,
                    computed_tokens: prompt - cached,
                    gen_tokens: r.get(5),
                    attempt_seconds: r.get::<i64, _>(6) as f64 / 1000.0,
                }
            })
            .collect())
    }

    /// True when no job could still run (all settled).
    pub async fn is_drained(&self) -> Result<bool> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM jobs WHERE state IN ('queued', 'leased', 'failed')",
        )
        .fetch_one(&self.reader)
        .await?;
        Ok(n == 0)
    }

    /// Number of jobs of these stages that may still run.
    pub async fn pending_in(&self, stages: &[&str]) -> Result<i64> {
        let sql = format!(
            "SELECT COUNT(*) FROM jobs WHERE state IN ('queued', 'leased', 'failed') AND stage IN ({})",
            std::iter::repeat_n("?", stages.len()).collect::<Vec<_>>().join(",")
        );
        let mut q = sqlx::query_scalar(&sql);
        for s in stages {
            q = q.bind(*s);
        }
        Ok(q.fetch_one(&self.reader).await?)
    }

    /// Milliseconds until the next backoff ends, if some job waits for one.
    pub async fn next_wakeup(&self) -> Result<Option<i64>> {
        let at: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(run_after) FROM jobs WHERE state IN ('queued', 'failed')",
        )
        .fetch_one(&self.reader)
        .await?;
        Ok(at.map(|t| (t - self.now()).max(0)))
    }

    /// Failed, dead and cancelled jobs with their last error, for `status --failed`.
    pub async fn failures(&self) -> Result<Vec<FailedJob>> {
        let rows = sqlx::query(
            "SELECT j.id, j.role, j.stage, j.state, j.attempts, j.max_attempts,
                    COALESCE(j.last_error_kind, ''), COALESCE(j.last_error, ''),
                    s.rel_path, c.line_start, c.line_end
             FROM jobs j
             LEFT JOIN chunks c ON j.input_kind = 'chunk' AND c.id = j.input_id
             LEFT JOIN sources s ON s.id = c.source_id
             WHERE j.state IN ('failed', 'dead', 'cancelled')
             ORDER BY j.id",
        )
        .fetch_all(&self.reader)
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(FailedJob {
                    id: JobId(r.get(0)),
                    role: r.get(1),
                    stage: r.get(2),
                    state: parse_state(r.get::<String, _>(3))?,
                    attempts: r.get(4),
                    max_attempts: r.get(5),
                    error_kind: r.get(6),
                    error: r.get(7),
                    file: r.get(8),
                    lines: match (r.get::<Option<i64>, _>(9), r.get::<Option<i64>, _>(10)) {
                        (Some(a), Some(b)) => Some((a, b)),
                        _ => None,
                    },
                })
            })
            .collect()
    }

    /// Jobs being worked on now.
    pub async fn running(&self) -> Result<Vec<RunningJob>> {
        let rows = sqlx::query(
            "SELECT j.id, j.role, j.stage, COALESCE(j.lease_owner, ''), j.started_at, s.rel_path,
                    c.heading_path
             FROM jobs j
             LEFT JOIN chunks c ON j.input_kind = 'chunk' AND c.id = j.input_id
             LEFT JOIN sources s ON s.id = c.source_id
             WHERE j.state = 'leased' ORDER BY j.id",
        )
        .fetch_all(&self.reader)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| RunningJob {
                id: JobId(r.get(0)),
                role: r.get(1),
                stage: r.get(2),
                owner: r.get(3),
                started_at: r.get::<Option<i64>, _>(4).unwrap_or(0),
                file: r.get(5),
                heading: r
                    .get::<Option<String>, _>(6)
                    .and_then(|h| serde_json::from_str::<Vec<String>>(&h).ok())
                    .map(|h| h.join(" > ")),
            })
            .collect())
    }

    /// Truncates the WAL file; called now and then so it stays bounded.
    pub async fn checkpoint(&self) -> Result<()> {
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    pub async fn integrity_check(&self) -> Result<String> {
        Ok(sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_one(&self.writer)
            .await?)
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
    pub attempt_seconds: f64,
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
    pub owner: String,
    pub started_at: i64,
    pub file: Option<String>,
    pub heading: Option<String>,
}

fn parse_state(s: String) -> Result<JobState> {
    s.parse()
        .map_err(|e: UnknownState| QueueError::Corrupt(e.to_string()))
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

async fn finish_attempt(
    tx: &mut Transaction<'static, Sqlite>,
    lease: &Lease,
    now: i64,
    outcome: &str,
    failure: Option<&Failure>,
    reply: Option<&str>,
    tokens: &Done,
) -> Result<()> {
    sqlx::query(
        "UPDATE attempts SET finished_at = ?1, outcome = ?2, error_kind = ?3, error = ?4, reply = ?5,
             prompt_tokens = ?6, gen_tokens = ?7, cached_tokens = ?10
         WHERE job_id = ?8 AND attempt = ?9 AND finished_at IS NULL",
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
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Inserts jobs in `tx`, skipping existing dedup keys; returns the new ids.
pub async fn insert_jobs(
    tx: &mut Transaction<'static, Sqlite>,
    jobs: &[NewJob],
    now: i64,
) -> Result<Vec<JobId>> {
    let mut ids = Vec::new();
    // Jobs without dependencies go in multi-row statements; the others one by one, since
    // their new id is needed for `job_deps`.
    let (plain, with_deps): (Vec<&NewJob>, Vec<&NewJob>) =
        jobs.iter().partition(|j| j.depends_on.is_empty());
    for part in plain.chunks(250) {
        let mut qb = sqlx::QueryBuilder::<Sqlite>::new(
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
        let got: Vec<i64> = qb.build_query_scalar().fetch_all(&mut **tx).await?;
        ids.extend(got.into_iter().map(JobId));
    }
    for job in with_deps {
        let key = format!("{}|{}", job.role, job.dedup);
        let row = sqlx::query(
            "INSERT INTO jobs (role, stage, input_kind, input_id, dedup_key, priority, max_attempts,
                               payload, est_tokens, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10)
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
        .fetch_optional(&mut **tx)
        .await?;
        if let Some(row) = row {
            let id = JobId(row.get(0));
            for dep in &job.depends_on {
                sqlx::query("INSERT OR IGNORE INTO job_deps (job_id, depends_on) VALUES (?1, ?2)")
                    .bind(id.0)
                    .bind(dep.0)
                    .execute(&mut **tx)
                    .await?;
            }
            ids.push(id);
        }
    }
    Ok(ids)
}

#[cfg(test)]
mod tests;
