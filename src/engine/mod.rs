//! The worker pool and the pipeline's stage logic. Workers claim jobs, render the role's
//! prompt, ask the backend, check the reply, and write results and follow-up jobs in the
//! transaction that completes the job. A planner turns validated findings into patterns and
//! write jobs once extraction is over, and adds the synthesize job behind every write.

pub mod checks;
mod stages;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tracing::Instrument;

use crate::agent::{Agents, InputKind};
use crate::llm::GenProgress;
use crate::progress::Event;
use crate::queue::{Done, FailOutcome, Failure, Lease, Queue, QueueError};

#[cfg(test)]
pub(crate) use stages::name_finding;
pub use stages::plan;

/// The backends by model name (`default`, or what roles name), loaded on demand.
pub type Backends = Arc<crate::llm::registry::Registry>;

/// What a run needs.
#[derive(Clone)]
pub struct RunContext {
    pub queue: Queue,
    pub agents: Arc<Agents>,
    pub backends: Backends,
    pub workers: usize,
    /// Identity of this process in leases: host:pid.
    pub owner: String,
    pub timeout: Duration,
    pub events: Option<mpsc::Sender<Event>>,
    /// The embedding model and floor for the chunks of other files near each pattern (the
    /// planner looks them up for the writer); None: pages are written without them (no
    /// embedding model, PostgreSQL).
    pub related: Option<Arc<crate::search::related::Related>>,
}

/// How a run ended.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct RunSummary {
    pub jobs_done: u64,
    pub jobs_failed: u64,
    pub jobs_dead: u64,
    pub jobs_lost: u64,
    pub prompt_tokens: u64,
    pub gen_tokens: u64,
    pub seconds: f64,
    /// True when the run was stopped before the queue drained.
    pub interrupted: bool,
}

/// How far a run has been asked to stop. Ordered: each level includes the one before.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stop {
    /// Keep going.
    #[default]
    Run,
    /// Stop claiming; running jobs may finish (first Ctrl-C).
    Drain,
    /// Put running jobs back now (second Ctrl-C, or the grace period is over).
    Now,
}

/// Where a run learns that it should stop.
pub type Shutdown = watch::Receiver<Stop>;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error("no backend for model {0:?}")]
    NoBackend(String),
}

/// An error of one job, with what the queue should know.
#[derive(Debug)]
pub struct JobError {
    pub kind: &'static str,
    pub message: String,
    pub reply: Option<String>,
    pub retryable: bool,
}

impl JobError {
    pub fn new(kind: &'static str, message: impl Into<String>, retryable: bool) -> Self {
        JobError {
            kind,
            message: message.into(),
            reply: None,
            retryable,
        }
    }
}

impl From<crate::llm::LlmError> for JobError {
    fn from(e: crate::llm::LlmError) -> Self {
        JobError::new(e.kind(), e.to_string(), e.retryable())
    }
}

impl From<QueueError> for JobError {
    fn from(e: QueueError) -> Self {
        JobError::new("database", e.to_string(), true)
    }
}

/// Token counts of one job's model calls.
#[derive(Clone, Copy, Debug, Default)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub gen_tokens: u64,
    /// Of `prompt_tokens`, those served from a KV cache.
    pub cached_tokens: u64,
    /// Of `gen_tokens`, those the grammar forced.
    pub forced_tokens: u64,
}

/// Runs workers until the queue is drained (every job settled and nothing left to plan) or
/// shutdown is asked for.
pub async fn run(ctx: RunContext, shutdown: Shutdown) -> Result<RunSummary, EngineError> {
    let started = Instant::now();
    let mut failures = 0;
    while let Err(e) = reclaim_dead_owners(&ctx, true).await {
        failures += 1;
        if !e.is_transient() || failures > 12 {
            return Err(e.into());
        }
        tracing::warn!(error = %e, "the database is unreachable; trying again");
        tokio::time::sleep(db_backoff(failures)).await;
    }
    let (done_tx, mut done_rx) = mpsc::channel::<WorkerReport>(ctx.workers.max(1) * 4);
    let (idle_tx, idle_rx) = watch::channel(false);
    let mut handles = Vec::new();
    for w in 0..ctx.workers.max(1) {
        let ctx = ctx.clone();
        let shutdown = shutdown.clone();
        let done_tx = done_tx.clone();
        let idle_rx = idle_rx.clone();
        handles.push(tokio::spawn(async move {
            worker(w, ctx, shutdown, idle_rx, done_tx).await
        }));
    }
    drop(done_tx);
    // The coordinator: rescue expired leases, plan the next stages, checkpoint the WAL, and
    // say when there is nothing left to do.
    let mut summary = RunSummary::default();
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let mut last_checkpoint = Instant::now();
    let mut last_reclaim = Instant::now();
    let (mut db_failures, mut db_retry_at) = (0u32, Instant::now());
    let mut shutdown_c = shutdown.clone();
    loop {
        tokio::select! {
            report = done_rx.recv() => match report {
                Some(r) => summary.add(&r),
                None => break,
            },
            _ = tick.tick() => {
                if *shutdown_c.borrow() > Stop::Run || Instant::now() < db_retry_at { continue; }
                match coordinate(&ctx, &mut last_reclaim, &mut last_checkpoint).await {
                    Ok(drained) => {
                        db_failures = 0;
                        let _ = idle_tx.send(drained);
                    }
                    // The database went away (a server restarting, the network): the workers
                    // wait too; nothing is lost, since leases are fenced and expire.
                    Err(e) if e.is_transient() => {
                        db_failures += 1;
                        let wait = db_backoff(db_failures);
                        tracing::warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "the database is unreachable; trying again");
                        db_retry_at = Instant::now() + wait;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            _ = shutdown_c.changed() => {}
        }
    }
    for h in handles {
        let _ = h.await;
    }
    summary.interrupted =
        *shutdown.borrow() > Stop::Run && !ctx.queue.is_drained().await.unwrap_or(false);
    summary.seconds = started.elapsed().as_secs_f64();
    let _ = ctx.queue.checkpoint().await;
    Ok(summary)
}

/// One round of the coordinator: rescue expired leases (and, every 2 s, those of dead
/// processes on this host), checkpoint now and then, plan the next stages. True when
/// nothing is left to do.
async fn coordinate(
    ctx: &RunContext,
    last_reclaim: &mut Instant,
    last_checkpoint: &mut Instant,
) -> Result<bool, QueueError> {
    if last_reclaim.elapsed() > Duration::from_secs(2) {
        reclaim_dead_owners(ctx, false).await?;
        *last_reclaim = Instant::now();
    } else {
        ctx.queue.rescue_expired().await?;
    }
    if last_checkpoint.elapsed() > Duration::from_secs(30) {
        ctx.queue.checkpoint().await?;
        *last_checkpoint = Instant::now();
    }
    // Drained is read before planning: read after, a job finishing in between (its findings
    // not yet planned, since `plan` saw it pending) made the run end without its pages.
    let drained = ctx.queue.is_drained().await?;
    let planned = plan(&ctx.queue, &ctx.agents, ctx.related.as_deref()).await?;
    Ok(planned == 0 && drained)
}

/// The wait before trying the database again after `failures` failures in a row: 250 ms
/// doubling to 8 s, with jitter so that the workers of many machines do not return at once.
pub fn db_backoff(failures: u32) -> Duration {
    crate::queue::Backoff {
        base: Duration::from_millis(250),
        max: Duration::from_secs(8),
    }
    .delay(i64::from(failures), fastrand::f64())
}

/// Takes back now, not when they time out, the leases of processes on this host that died
/// (kill -9, OOM) or, `at_start`, of a previous process with our identity (a reused pid),
/// then every expired lease; each counts as a crash of its job, not an attempt.
async fn reclaim_dead_owners(ctx: &RunContext, at_start: bool) -> Result<(), QueueError> {
    for owner in ctx.queue.lease_owners().await? {
        if (at_start && owner == ctx.owner) || owner_is_dead(&owner, &ctx.owner) {
            let n = ctx.queue.expire_owner(&owner).await?;
            tracing::info!(owner, jobs = n, "taking back the leases of a dead process");
        }
    }
    ctx.queue.rescue_expired().await?;
    Ok(())
}

/// True when `owner` ("host:pid") ran on our host and that process is gone.
fn owner_is_dead(owner: &str, me: &str) -> bool {
    let (Some((host, pid)), Some((my_host, _))) = (owner.rsplit_once(':'), me.rsplit_once(':'))
    else {
        return false;
    };
    host == my_host
        && owner != me
        && pid
            .parse::<u32>()
            .is_ok_and(|p| !std::path::Path::new(&format!("/proc/{p}")).exists())
}

struct WorkerReport {
    outcome: Outcome,
    usage: Usage,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Done,
    Retry,
    Dead,
    Lost,
    Released,
}

impl RunSummary {
    fn add(&mut self, r: &WorkerReport) {
        match r.outcome {
            Outcome::Done => self.jobs_done += 1,
            Outcome::Retry => self.jobs_failed += 1,
            Outcome::Dead => self.jobs_dead += 1,
            Outcome::Lost => self.jobs_lost += 1,
            Outcome::Released => {}
        }
        self.prompt_tokens += r.usage.prompt_tokens;
        self.gen_tokens += r.usage.gen_tokens;
    }
}

async fn worker(
    w: usize,
    ctx: RunContext,
    mut shutdown: Shutdown,
    mut idle: watch::Receiver<bool>,
    done: mpsc::Sender<WorkerReport>,
) {
    let name = format!("{}#{w}", ctx.owner);
    let mut failures = 0;
    loop {
        if *shutdown.borrow() > Stop::Run {
            return;
        }
        let lease = match ctx.queue.claim(&ctx.owner, &[]).await {
            Ok(l) => {
                failures = 0;
                l
            }
            Err(e) => {
                failures += 1;
                let wait = db_backoff(failures);
                tracing::warn!(worker = %name, error = %e, retry_in_ms = wait.as_millis() as u64, "claim failed; trying again");
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = shutdown.changed() => {}
                }
                continue;
            }
        };
        let Some(lease) = lease else {
            if *idle.borrow() {
                return;
            }
            let wait = ctx
                .queue
                .next_wakeup()
                .await
                .ok()
                .flatten()
                .unwrap_or(250)
                .clamp(20, 250);
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(wait as u64)) => {}
                _ = idle.changed() => {}
                _ = shutdown.changed() => {}
            }
            continue;
        };
        let report = run_one(w, &ctx, lease, &mut shutdown).await;
        if done.send(report).await.is_err() {
            return;
        }
    }
}

/// Runs one leased job with a heartbeat, and records its outcome.
async fn run_one(
    w: usize,
    ctx: &RunContext,
    lease: Lease,
    shutdown: &mut Shutdown,
) -> WorkerReport {
    let span =
        tracing::info_span!("job", id = %lease.id, role = %lease.role, attempt = lease.attempt);
    let progress = Arc::new(GenProgress::default());
    ctx.emit(Event::JobStarted {
        worker: w,
        job: lease.id,
        role: lease.role.clone(),
        stage: lease.stage.clone(),
        input: InputKind::from_name(&lease.input_kind).unwrap_or(InputKind::Kb),
        input_id: lease.input_id,
        progress: progress.clone(),
    });
    let heartbeat_every = ctx.queue.options().lease / 3;
    let work = {
        let ctx = ctx.clone();
        let lease = lease.clone();
        let progress = progress.clone();
        // A panic in a handler becomes a failed attempt, never a crashed run.
        tokio::spawn(
            async move { stages::handle(&ctx, &lease, progress).await }.instrument(span.clone()),
        )
    };
    tokio::pin!(work);
    let mut beat = tokio::time::interval(heartbeat_every.max(Duration::from_millis(100)));
    beat.tick().await;
    let mut last_renewed = Instant::now();
    let result = loop {
        tokio::select! {
            res = &mut work => break Some(res),
            _ = beat.tick() => {
                match ctx.queue.heartbeat(&lease).await {
                    Ok(true) => last_renewed = Instant::now(),
                    Ok(false) => {
                        tracing::warn!("lease lost while running; abandoning the job");
                        work.abort();
                        break None;
                    }
                    // Unrenewed this long, the lease has expired: another worker may hold
                    // the job now. Its result could not be saved anyway (fenced by token).
                    Err(e) if last_renewed.elapsed() >= ctx.queue.options().lease => {
                        tracing::warn!(error = %e, "heartbeats failed for a whole lease; abandoning the job");
                        work.abort();
                        break None;
                    }
                    Err(e) => tracing::warn!(error = %e, "heartbeat failed"),
                }
            }
            _ = shutdown.changed() => {
                if *shutdown.borrow() == Stop::Now {
                    work.abort();
                    let _ = ctx.queue.release(&lease).await;
                    ctx.emit(Event::JobFinished { worker: w, job: lease.id, outcome: "released".into(), error: None });
                    return WorkerReport { outcome: Outcome::Released, usage: Usage::default() };
                }
            }
        }
    };
    let (outcome, usage, error) = match result {
        None => (
            Outcome::Lost,
            Usage::default(),
            Some(format!(
                "lease lost: job {} ({}) was taken back while it ran (its lease expired, e.g. \
                 the database was busy or unreachable for {} s); gave it up, it runs again",
                lease.id,
                lease.role,
                ctx.queue.options().lease.as_secs()
            )),
        ),
        Some(Ok(Ok(usage))) => (Outcome::Done, usage, None),
        Some(Ok(Err((err, usage)))) => {
            let outcome = record_failure(ctx, &lease, &err, usage).await;
            (
                outcome,
                usage,
                Some(format!("{}: {}", err.kind, err.message)),
            )
        }
        Some(Err(join)) => {
            let err = JobError::new("panic", format!("the handler panicked: {join}"), true);
            let outcome = record_failure(ctx, &lease, &err, Usage::default()).await;
            (outcome, Usage::default(), Some(err.message))
        }
    };
    let label = match outcome {
        Outcome::Done => "done",
        Outcome::Retry => "failed",
        Outcome::Dead => "dead",
        Outcome::Lost => "lost",
        Outcome::Released => "released",
    };
    if let Some(e) = &error {
        tracing::warn!(outcome = label, error = %e, "job failed");
    }
    ctx.emit(Event::JobFinished {
        worker: w,
        job: lease.id,
        outcome: label.into(),
        error,
    });
    WorkerReport { outcome, usage }
}

async fn record_failure(ctx: &RunContext, lease: &Lease, err: &JobError, usage: Usage) -> Outcome {
    let failure = Failure {
        kind: err.kind.to_string(),
        message: err.message.clone(),
        reply: err.reply.clone(),
        retryable: err.retryable,
    };
    let tokens = Done {
        prompt_tokens: usage.prompt_tokens as i64,
        gen_tokens: usage.gen_tokens as i64,
        cached_tokens: usage.cached_tokens as i64,
        forced_tokens: usage.forced_tokens as i64,
        ..Done::default()
    };
    match ctx.queue.fail(lease, &failure, &tokens).await {
        Ok(FailOutcome::Retry) => Outcome::Retry,
        Ok(FailOutcome::Dead) => Outcome::Dead,
        Ok(FailOutcome::Lost) => {
            tracing::warn!("the lease was lost before the failure was recorded; dropped");
            Outcome::Lost
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot record the failure; the lease will expire");
            Outcome::Lost
        }
    }
}

impl RunContext {
    fn emit(&self, e: Event) {
        if let Some(tx) = &self.events {
            let _ = tx.try_send(e);
        }
    }

    async fn backend(
        &self,
        model: &str,
    ) -> Result<crate::llm::registry::ModelHandle<'_>, JobError> {
        self.backends.get(model).await.map_err(JobError::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_dead_processes_on_this_host_are_dead_owners() {
        let me = format!("h:{}", std::process::id());
        assert!(!owner_is_dead(&me, &me));
        assert!(owner_is_dead("h:4294967", &me));
        assert!(
            !owner_is_dead("other:4294967", &me),
            "another machine's process"
        );
        assert!(!owner_is_dead("h:1", &me), "pid 1 is alive");
        assert!(!owner_is_dead("garbage", &me));
    }
}
