//! The commands: turn parsed arguments into a `Config`, wire the modules together and report.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use tokio::sync::{mpsc, watch};

use crate::agent::{Agents, InputKind};
use crate::cli::{BenchCommand, Cli, Command, ProgressArg, RunArgs};
use crate::config::Config;
use crate::engine::{self, Backends, RunContext};
use crate::ingest::{self, Entry, IngestOptions, TokenCounter};
use crate::kb;
use crate::llm::fake::FakeBackend;
use crate::llm::llama::{LlamaEngine, LlamaOptions};
use crate::llm::registry::{Loader, Registry};
use crate::llm::{gguf, Backend, LlmError};
use crate::progress::{self, Mode};
use crate::queue::store::{self, NewChunk, NewSource};
use crate::queue::{insert_jobs, JobId, JobState, NewJob, Queue, QueueOptions};

pub async fn main(cli: Cli) -> Result<u8> {
    let mut cfg = Config::load(cli.global.config.as_deref())?;
    if let Some(db) = &cli.global.db {
        cfg.db = db.clone();
    }
    let db = cfg.db.clone();
    dispatch(cli, cfg)
        .await
        .map_err(|e| with_database_hint(e, &db))
}

/// A database error names the database and says what to do; SQLite's own text ("attempt
/// to write a readonly database") names neither.
fn with_database_hint(e: anyhow::Error, db: &Path) -> anyhow::Error {
    let Some(sql) = e.chain().find_map(|c| c.downcast_ref::<sqlx::Error>()) else {
        return e;
    };
    let cause = sql.to_string().to_lowercase();
    let hint = if cause.contains("readonly") || cause.contains("read-only") {
        "the file or its folder is read-only: make both writable, or pass --db with a writable path"
    } else if cause.contains("locked") || cause.contains("busy") {
        "another process holds its write lock: wait for it, or stop it"
    } else if cause.contains("not a database") || cause.contains("malformed") {
        "the file is damaged or is not a quarry database: move it aside and run `quarry enqueue` again"
    } else if cause.contains("disk") || cause.contains("full") {
        "check the free space and health of its disk"
    } else if cause.contains("unable to open") {
        "check that its folder exists and is writable"
    } else {
        ""
    };
    let text = one_line(&e);
    let named = text.contains(&db.display().to_string());
    anyhow::anyhow!(
        "{}{text}{}",
        if named {
            String::new()
        } else {
            format!("queue database {}: ", db.display())
        },
        if hint.is_empty() {
            String::new()
        } else {
            format!("; {hint}")
        }
    )
}

/// An error and its causes on one line, each cause once: a cause whose text the message
/// already holds (thiserror messages often embed their source) is not repeated.
pub fn one_line(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        if text.is_empty() || out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

async fn dispatch(cli: Cli, mut cfg: Config) -> Result<u8> {
    match cli.command {
        Command::Init { dir } => init(&dir),
        Command::Enqueue {
            dir,
            include,
            exclude,
            model,
        } => {
            cfg.ingest.include.extend(include);
            cfg.ingest.exclude.extend(exclude);
            if let Some(m) = model {
                set_default_model(&mut cfg, m);
            }
            let report = enqueue(&cfg, &dir).await?;
            println!("{report}");
            Ok(0)
        }
        Command::Run(args) => run(cfg, args).await,
        Command::Status { json, failed } => status(&cfg, json, failed).await,
        Command::Watch { progress } => watch_cmd(&cfg, progress).await,
        Command::Retry { job, dead } => {
            let q = open_queue(&cfg).await?;
            if job.is_none() && !dead {
                bail!("say which job to retry, or --dead for every dead job");
            }
            let n = q.retry(job.map(JobId)).await?;
            println!("{n} job(s) sent back to the queue; `quarry run` picks them up");
            Ok(0)
        }
        Command::Cancel { job } => {
            let q = open_queue(&cfg).await?;
            if q.cancel(JobId(job)).await? {
                println!("job {job} cancelled");
            } else {
                println!("job {job} had already finished; nothing to cancel");
            }
            Ok(0)
        }
        Command::Render { output, force } => {
            if let Some(o) = output {
                cfg.output = o;
            }
            let q = open_queue(&cfg).await?;
            let agents = load_agents(&cfg)?;
            let templates = kb::Templates::load(Some(&cfg.templates_dir))?;
            let r = render_with(&q, &agents, &templates, &cfg.output, force).await?;
            println!("{}: {r}", cfg.output.join("index.md").display());
            Ok(if r.failed.is_empty() { 0 } else { 1 })
        }
        Command::Models => models(&cfg),
        Command::Bench { what } => match what {
            BenchCommand::Queue {
                jobs,
                workers,
                batch,
                json,
            } => {
                crate::bench::queue(jobs, workers, batch, json).await?;
                Ok(0)
            }
            BenchCommand::Engine {
                model,
                slots,
                prompts,
                requests,
                max_tokens,
                json,
            } => {
                let model = model.unwrap_or_else(|| {
                    cfg.model("default")
                        .map(|m| m.path.clone())
                        .unwrap_or_default()
                });
                crate::bench::engine(
                    &cfg,
                    &model,
                    &slots,
                    prompts.as_deref(),
                    requests,
                    max_tokens,
                    json,
                )
                .await?;
                Ok(0)
            }
            BenchCommand::Ingest { files, dir, json } => {
                crate::bench::ingest(&cfg, files, dir.as_deref(), json).await?;
                Ok(0)
            }
        },
    }
}

fn set_default_model(cfg: &mut Config, path: PathBuf) {
    cfg.models.entry("default".into()).or_default().path = path;
}

fn init(dir: &Path) -> Result<u8> {
    let mut written = crate::agent::write_defaults(dir)?;
    written.extend(kb::write_default_templates(dir)?);
    let cfg_path = dir.join("quarry.toml");
    if !cfg_path.exists() {
        let text = toml::to_string_pretty(&Config::default())?;
        std::fs::write(
            &cfg_path,
            format!("# quarry settings; every key is optional.\n{text}"),
        )
        .with_context(|| format!("cannot write {}", cfg_path.display()))?;
        println!("wrote {}", cfg_path.display());
    }
    for p in written {
        println!("wrote {}", p.display());
    }
    println!("edit agents/*.toml and prompts/*.tera to change or add roles, templates/*.tera to change the pages; no recompiling needed");
    Ok(0)
}

pub fn load_agents(cfg: &Config) -> Result<Agents> {
    Ok(Agents::load(Some(&cfg.agents_dir), Some(&cfg.prompts_dir))?)
}

async fn open_queue(cfg: &Config) -> Result<Queue> {
    Ok(Queue::open_with(
        &cfg.db,
        false,
        crate::queue::system_clock(),
        queue_options(cfg),
    )
    .await?)
}

fn queue_options(cfg: &Config) -> QueueOptions {
    QueueOptions {
        lease: cfg.lease(),
        backoff: crate::queue::Backoff {
            base: Duration::from_millis(cfg.queue.backoff_base_ms),
            max: Duration::from_millis(cfg.queue.backoff_max_ms),
        },
    }
}

pub fn ingest_options(cfg: &Config) -> IngestOptions {
    IngestOptions {
        extensions: cfg.ingest.extensions.clone(),
        include: cfg.ingest.include.clone(),
        exclude: cfg.ingest.exclude.clone(),
        max_file_bytes: cfg.ingest.max_file_bytes,
        chunk_tokens: cfg.ingest.chunk_tokens,
        overlap_tokens: cfg.ingest.overlap_tokens,
    }
}

/// What `enqueue` did.
#[derive(Debug, Default, serde::Serialize)]
pub struct EnqueueReport {
    pub root: String,
    pub files: usize,
    pub new_or_changed: usize,
    pub unchanged: usize,
    pub refused: usize,
    pub gone: usize,
    pub chunks: usize,
    pub jobs: usize,
    pub problems: Vec<String>,
}

impl std::fmt::Display for EnqueueReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} files ({} new or changed, {} unchanged, {} refused, {} gone), {} chunks, {} jobs queued",
            self.root, self.files, self.new_or_changed, self.unchanged, self.refused, self.gone, self.chunks, self.jobs
        )?;
        for p in &self.problems {
            write!(f, "\n  skipped: {p}")?;
        }
        if self.refused > 0 {
            write!(f, "\n  see `quarry status --failed` for the refused files")?;
        }
        Ok(())
    }
}

/// Reads a folder into the queue: one new source version per new or changed file, its chunks,
/// and one job per chunk for every per-chunk role. Unchanged files add nothing.
pub async fn enqueue(cfg: &Config, dir: &Path) -> Result<EnqueueReport> {
    let agents = load_agents(cfg)?;
    let opts = ingest_options(cfg);
    let root = dir.canonicalize().map_err(|e| {
        anyhow::anyhow!(
            "cannot read folder {}: {e}; give the path of a folder of research files",
            dir.display()
        )
    })?;
    let walk = ingest::walk_report(&root, &opts)?;
    if walk.files.is_empty() {
        bail!(
            "no research files under {} (looked for {}); nothing was enqueued",
            root.display(),
            opts.extensions.join(", ")
        );
    }
    let counter: Arc<dyn TokenCounter> = match tokenizer(cfg) {
        Some(t) => t,
        None => Arc::new(ingest::ApproxTokens),
    };
    let start = std::time::Instant::now();
    // Reading and splitting is CPU work on every core; the entries come back in walk order
    // while this task stores them, so both overlap. Readers may run ahead of the store (and
    // keep the cores busy while a commit waits for the disk) by up to READ_AHEAD_KB of files.
    let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel();
    let reader = {
        let root = root.clone();
        let files = walk.files.clone();
        let counter = counter.clone();
        let ahead = ReadAhead {
            budget: Arc::new(tokio::sync::Semaphore::new(READ_AHEAD_KB as usize)),
            runtime: tokio::runtime::Handle::current(),
        };
        std::thread::spawn(move || {
            read_in_order(&root, &files, &opts, counter.as_ref(), &ahead, sender)
        })
    };
    let q = Queue::open_with(
        &cfg.db,
        true,
        crate::queue::system_clock(),
        queue_options(cfg),
    )
    .await?;
    let root_s = root.display().to_string();
    let mut report = EnqueueReport {
        root: root_s.clone(),
        files: walk.files.len(),
        problems: walk
            .problems
            .iter()
            .map(|p| format!("{}: {}", p.rel_path, p.message))
            .collect(),
        ..EnqueueReport::default()
    };
    let chunk_roles: Vec<_> = agents.chunk_roles().cloned().collect();
    let mut seen = std::collections::BTreeSet::new();
    // Files are stored in batches: one transaction holds many whole files (all or none).
    // Paths the walk skipped are stored too, so `status --failed` keeps showing them.
    let mut skipped: std::collections::BTreeMap<String, ingest::WalkProblem> = Default::default();
    for p in &walk.problems {
        skipped
            .entry(p.rel_path.clone())
            .and_modify(|q| q.message = format!("{}; {}", q.message, p.message))
            .or_insert_with(|| p.clone());
    }
    let mut batch: Vec<Entry> = skipped
        .into_values()
        .map(|p| {
            seen.insert(p.rel_path.clone());
            p.into_entry()
        })
        .collect();
    let mut permits = Vec::new();
    let mut batch_bytes = 0usize;
    loop {
        let entry = receiver.recv().await;
        let done = entry.is_none();
        if let Some((entries, permit)) = entry {
            for entry in entries {
                seen.insert(entry.rel_path().to_string());
                if let Entry::File(f) = &entry {
                    batch_bytes += f.bytes as usize;
                }
                batch.push(entry);
            }
            permits.push(permit);
        }
        if batch.len() >= 512 || batch_bytes >= 16 << 20 || (done && !batch.is_empty()) {
            store_batch(&q, &root_s, &chunk_roles, &mut batch, &mut report).await?;
            permits.clear(); // stored: the readers may read as much again
            batch_bytes = 0;
        }
        if done {
            break;
        }
    }
    if reader.join().is_err() {
        bail!(
            "reading {} failed: a reader thread panicked",
            root.display()
        );
    }
    // Files that were here before and are not any more.
    for s in q.latest_sources(&root_s).await? {
        if !seen.contains(&s.rel_path) && matches!(s.status.as_str(), "active" | "refused") {
            let mut tx = q.begin().await?;
            store::mark_gone(&mut tx, s.id).await?;
            tx.commit().await?;
            report.gone += 1;
        }
    }
    tracing::info!(seconds = start.elapsed().as_secs_f64(), "enqueued");
    q.close().await;
    Ok(report)
}

/// How far (in KB of file content) reading may run ahead of storing.
const READ_AHEAD_KB: u32 = 64 * 1024;

/// Files a reader thread reads before handing them on: one hand-off (and wake-up) per
/// block, not per file.
const READ_BLOCK: usize = 32;

/// The read-ahead budget: a permit per block of entries, held until they are stored.
struct ReadAhead {
    budget: Arc<tokio::sync::Semaphore>,
    runtime: tokio::runtime::Handle,
}

type Permit = tokio::sync::OwnedSemaphorePermit;

/// Reads and splits `files` on every core and sends the entries, in blocks, in the order
/// given.
fn read_in_order(
    root: &Path,
    files: &[PathBuf],
    opts: &IngestOptions,
    counter: &dyn TokenCounter,
    ahead: &ReadAhead,
    sender: tokio::sync::mpsc::UnboundedSender<(Vec<Entry>, Permit)>,
) {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    // Each thread takes the next block of files; the merger below restores the order.
    let next_block = std::sync::atomic::AtomicUsize::new(0);
    let (tx, rx) = std::sync::mpsc::sync_channel::<(usize, Vec<Entry>)>(4);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            let (tx, next_block) = (tx.clone(), &next_block);
            scope.spawn(move || loop {
                let k = next_block.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let start = k.saturating_mul(READ_BLOCK);
                if start >= files.len() {
                    return;
                }
                let block = &files[start..(start + READ_BLOCK).min(files.len())];
                let entries = block
                    .iter()
                    .map(|f| ingest::read_file(root, f, opts, counter))
                    .collect();
                if tx.send((k, entries)).is_err() {
                    return; // the storing side has given up
                }
            });
        }
        drop(tx);
        let mut pending = std::collections::BTreeMap::new();
        let mut next = 0;
        for (k, entries) in rx {
            pending.insert(k, entries);
            while let Some(entries) = pending.remove(&next) {
                let kb: u64 = entries
                    .iter()
                    .map(|e| match e {
                        Entry::File(f) => f.bytes / 1024 + 1,
                        Entry::Refused { .. } => 1,
                    })
                    .sum();
                let kb = kb.min(u64::from(READ_AHEAD_KB)) as u32;
                let permit = ahead
                    .runtime
                    .block_on(ahead.budget.clone().acquire_many_owned(kb));
                // Either error means the storing side has given up.
                let Ok(permit) = permit else { return };
                if sender.send((entries, permit)).is_err() {
                    return;
                }
                next += 1;
            }
        }
    });
}

/// Stores one batch of read files in one transaction: new or changed files with their
/// chunks and one job per chunk and per-chunk role; refusals; unchanged files are skipped.
async fn store_batch(
    q: &Queue,
    root: &str,
    chunk_roles: &[crate::agent::Role],
    batch: &mut Vec<Entry>,
    report: &mut EnqueueReport,
) -> Result<()> {
    let mut tx = q.begin().await?;
    let now = q.now();
    let paths: Vec<&str> = batch.iter().map(|e| e.rel_path()).collect();
    let latest = store::latest_versions(&mut tx, root, &paths).await?;
    let mut sources = Vec::new();
    let mut files = Vec::new();
    for entry in batch.drain(..) {
        let previous = latest.get(entry.rel_path());
        match entry {
            Entry::File(file) => {
                if previous.is_some_and(|l| {
                    l.status == "active" && l.content_hash.as_deref() == Some(&file.content_hash)
                }) {
                    report.unchanged += 1;
                    continue;
                }
                sources.push(NewSource {
                    root: root.to_string(),
                    rel_path: file.rel_path.clone(),
                    kind: Some(file.kind.as_str().to_string()),
                    status: "active".into(),
                    content_hash: Some(file.content_hash.clone()),
                    bytes: file.bytes as i64,
                    line_count: file.text.lines().count() as i64,
                    notes: file.notes.clone(),
                    metadata: file.metadata.clone(),
                    ..NewSource::default()
                });
                files.push(Some(file));
            }
            Entry::Refused {
                rel_path,
                kind,
                refusal,
            } => {
                report.refused += 1;
                let message = refusal.to_string();
                if previous.is_some_and(|l| {
                    l.status == "refused" && l.refusal_message.as_deref() == Some(&message)
                }) {
                    continue;
                }
                sources.push(NewSource {
                    root: root.to_string(),
                    rel_path,
                    kind: kind.map(|k| k.as_str().to_string()),
                    status: "refused".into(),
                    refusal_kind: Some(refusal.kind().to_string()),
                    refusal_message: Some(message),
                    ..NewSource::default()
                });
                files.push(None);
            }
        }
    }
    let ids = store::insert_sources(&mut tx, &sources, &latest, now).await?;
    let mut chunks = Vec::new();
    // (file, version) per chunk row, to name its jobs.
    let mut owners = Vec::new();
    for (file, (source_id, version)) in files.into_iter().zip(ids) {
        let Some(file) = file else { continue };
        report.new_or_changed += 1;
        report.chunks += file.chunks.len();
        for c in file.chunks {
            chunks.push((
                source_id,
                NewChunk {
                    ordinal: c.ordinal as i64,
                    byte_start: c.byte_start as i64,
                    byte_end: c.byte_end as i64,
                    line_start: c.line_start as i64,
                    line_end: c.line_end as i64,
                    heading_path: c.heading_path,
                    text: c.text,
                    tokens: c.tokens as i64,
                },
            ));
            owners.push((file.rel_path.clone(), version));
        }
    }
    let rows: Vec<(i64, &NewChunk)> = chunks.iter().map(|(s, c)| (*s, c)).collect();
    let chunk_ids = store::insert_chunks(&mut tx, &rows).await?;
    let mut jobs = Vec::with_capacity(chunk_ids.len() * chunk_roles.len());
    for ((chunk_id, (_, c)), (rel_path, version)) in chunk_ids.iter().zip(&chunks).zip(owners) {
        for role in chunk_roles {
            jobs.push(NewJob {
                role: role.spec.name.clone(),
                stage: role.spec.stage.clone(),
                input_kind: InputKind::Chunk.as_str().into(),
                input_id: Some(*chunk_id),
                dedup: format!("{root}|{rel_path}|v{version}|chunk{}", c.ordinal),
                priority: role.spec.priority,
                max_attempts: role.spec.max_attempts,
                payload: serde_json::json!({}),
                est_tokens: c.tokens + 200 + role.spec.max_tokens as i64 / 2,
                depends_on: Vec::new(),
            });
        }
    }
    report.jobs += insert_jobs(&mut tx, &jobs, now).await?.len();
    tx.commit().await?;
    Ok(())
}

/// The default model's tokenizer, when its file is there and readable.
fn tokenizer(cfg: &Config) -> Option<Arc<dyn TokenCounter>> {
    if cfg.backend.kind != "llama" {
        return None;
    }
    let m = cfg.model("default").ok()?;
    if !m.path.exists() {
        return None;
    }
    crate::llm::llama::Tokenizer::load(&m.path)
        .map(|t| Arc::new(t) as Arc<dyn TokenCounter>)
        .map_err(
            |e| tracing::warn!(error = %e, "cannot load the tokenizer; estimating chunk sizes"),
        )
        .ok()
}

/// Loads the models of `quarry.toml` by name, for the registry.
struct ConfigLoader {
    cfg: Config,
    slots: usize,
}

impl ConfigLoader {
    fn llama_options(&self, name: &str) -> Result<LlamaOptions, LlmError> {
        let m = self.model(name)?;
        let mut o = LlamaOptions::new(&m.path);
        o.slots = self.slots;
        o.ctx_per_slot = m.ctx_per_slot;
        o.kv_tokens = m.kv_tokens;
        o.batch = m.batch;
        if m.threads > 0 {
            o.threads = m.threads as i32;
        }
        o.memory_budget_mb = m.memory_budget_mb;
        o.fallback_template = m.chat_template.clone();
        o.prefix_cache = m.prefix_cache;
        o.kv_type = m.kv_type;
        o.kv_unified = m.kv_unified;
        o.contexts = m.contexts;
        Ok(o)
    }

    fn model(&self, name: &str) -> Result<&crate::config::ModelConfig, LlmError> {
        self.cfg
            .model(name)
            .map_err(|e| LlmError::Inference(e.to_string()))
    }
}

impl Loader for ConfigLoader {
    fn estimate_mb(&self, name: &str) -> Result<u64, LlmError> {
        if self.cfg.backend.kind != "llama" {
            return Ok(0);
        }
        let o = self.llama_options(name)?;
        let info = crate::llm::llama::read_info(&o.path)?;
        Ok(crate::llm::llama::estimate_mb(&info, &o))
    }

    fn load(&self, name: &str) -> Result<Arc<dyn Backend>, LlmError> {
        let m = self.model(name)?;
        Ok(match self.cfg.backend.kind.as_str() {
            "fake" => FakeBackend::with_delay(
                self.cfg.backend.fake_reply.clone(),
                Duration::from_millis(self.cfg.backend.fake_delay_ms[0]),
                Duration::from_millis(self.cfg.backend.fake_delay_ms[1]),
                &self.cfg.backend.fake_abort_marker,
            ),
            "openai" => {
                let key = (!m.api_key_env.is_empty())
                    .then(|| std::env::var(&m.api_key_env).ok())
                    .flatten();
                Arc::new(crate::llm::openai::OpenAiBackend::new(
                    &m.url,
                    &m.remote_model,
                    key,
                    m.grammar_mode,
                )?)
            }
            _ => LlamaEngine::start(self.llama_options(name)?)?,
        })
    }
}

/// The model registry of a run: each model loads when a role first needs it. Every model an
/// enabled role names is checked first (file, header, memory estimate) and the default one
/// is loaded, so a missing or broken model stops the run before any job.
pub async fn start_backends(cfg: &Config, agents: &Agents, slots: usize) -> Result<Backends> {
    let loader = Arc::new(ConfigLoader {
        cfg: cfg.clone(),
        slots,
    });
    let mut names: Vec<&str> = agents.roles().map(|r| r.spec.model.as_str()).collect();
    names.sort();
    names.dedup();
    for name in names {
        loader
            .estimate_mb(name)
            .with_context(|| format!("model {name:?}"))?;
    }
    let registry = Arc::new(Registry::new(loader, cfg.backend.memory_budget_mb));
    registry
        .get("default")
        .await
        .map(drop)
        .context("model \"default\"")?;
    Ok(registry)
}

fn progress_mode(arg: ProgressArg, quiet: bool) -> Mode {
    use std::io::IsTerminal;
    if quiet {
        return Mode::Quiet;
    }
    match arg {
        ProgressArg::Live => Mode::Live,
        ProgressArg::Plain => Mode::Plain,
        ProgressArg::Auto => {
            if std::io::stdout().is_terminal() && std::env::var_os("CI").is_none() {
                Mode::Live
            } else {
                Mode::Plain
            }
        }
    }
}

async fn run(mut cfg: Config, args: RunArgs) -> Result<u8> {
    if let Some(w) = args.workers {
        cfg.workers = w;
    }
    if let Some(m) = args.model {
        set_default_model(&mut cfg, m);
    }
    if let Some(o) = args.output {
        cfg.output = o;
    }
    cfg.validate()?;
    kb::check_output(&cfg.output, args.force)?;
    let agents = Arc::new(load_agents(&cfg)?);
    let templates = kb::Templates::load(Some(&cfg.templates_dir))?;
    let queue = open_queue(&cfg).await?;
    let backends = start_backends(&cfg, &agents, cfg.workers).await?;
    let mode = progress_mode(args.progress, args.quiet);
    let (shutdown_tx, shutdown_rx) = watch::channel(engine::Stop::Run);
    // First Ctrl-C drains (running jobs finish within the grace period, then are put back);
    // a second one stops at once.
    let signals = {
        let shutdown_tx = shutdown_tx.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_err() {
                return;
            }
            let _ = shutdown_tx.send(engine::Stop::Drain);
            eprintln!("\nquarry: draining: running jobs may finish; Ctrl-C again to stop now");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = tokio::time::sleep(Duration::from_secs(30)) => {}
            }
            let _ = shutdown_tx.send(engine::Stop::Now);
        })
    };
    let (events_tx, events_rx) = mpsc::channel(256);
    let (stop_tx, stop_rx) = watch::channel(false);
    let view = tokio::spawn(progress::show(
        queue.clone(),
        Some(events_rx),
        mode,
        cfg.workers,
        stop_rx,
        shutdown_rx.clone(),
    ));
    let ctx = RunContext {
        queue: queue.clone(),
        agents: agents.clone(),
        backends,
        workers: cfg.workers,
        owner: owner_id(),
        timeout: Duration::from_secs(cfg.model("default")?.timeout_s),
        events: Some(events_tx),
        defined: Default::default(),
    };
    let summary = engine::run(ctx, shutdown_rx).await;
    let _ = stop_tx.send(true);
    let _ = view.await;
    signals.abort();
    let summary = summary?;
    let r = render_with(&queue, &agents, &templates, &cfg.output, args.force).await?;
    let counts = queue.counts().await?;
    let dead: i64 = counts
        .iter()
        .filter(|c| c.state == JobState::Dead)
        .map(|c| c.jobs)
        .sum();
    let kb = kb::Kb::load(&queue, &kb::Stages::default()).await?;
    let refused = kb.sources.iter().filter(|s| s.status == "refused").count();
    let accepted = kb
        .findings
        .iter()
        .filter(|f| f.status == "accepted")
        .count();
    let rejected = kb.findings.len() - accepted;
    let tps = (summary.prompt_tokens + summary.gen_tokens) as f64 / summary.seconds.max(0.001);
    println!(
        "{} {:.1}s · files {} read, {} refused · chunks {} · findings {} accepted, {} rejected · patterns {} · pages {} written · jobs {} done, {} dead · tokens {} prompt + {} generated ({:.0} tok/s)",
        if summary.interrupted { "interrupted after" } else { "finished in" },
        summary.seconds,
        kb.sources.len() - refused,
        refused,
        kb.chunks.values().sum::<i64>(),
        accepted,
        rejected,
        kb.patterns.len(),
        r.written,
        summary.jobs_done,
        dead,
        summary.prompt_tokens,
        summary.gen_tokens,
        tps
    );
    println!("knowledge base: {}", cfg.output.join("index.md").display());
    if dead > 0 {
        println!("{dead} job(s) dead: `quarry status --failed` says why, `quarry retry --dead` tries again");
    }
    if summary.jobs_lost > 0 {
        println!(
            "{} job(s) given up after their lease was lost (taken back while they ran); they run again",
            summary.jobs_lost
        );
    }
    if !r.failed.is_empty() {
        println!(
            "{} page(s) could not be written (see the log)",
            r.failed.len()
        );
    }
    queue.close().await;
    Ok(if summary.interrupted {
        130
    } else if dead > 0 || !r.failed.is_empty() {
        1
    } else {
        0
    })
}

fn owner_id() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    format!("{host}:{}", std::process::id())
}

/// Renders into `output` with the built-in templates, refusing a non-empty folder quarry
/// did not create.
pub async fn render(queue: &Queue, agents: &Agents, output: &Path) -> Result<kb::WriteReport> {
    render_with(queue, agents, &kb::Templates::builtin(), output, false).await
}

/// Renders into `output`; `force` writes into a non-empty folder quarry did not create.
pub async fn render_with(
    queue: &Queue,
    agents: &Agents,
    templates: &kb::Templates,
    output: &Path,
    force: bool,
) -> Result<kb::WriteReport> {
    let kb = kb::Kb::load(queue, &kb::Stages::of(agents)).await?;
    let pages = kb::render(&kb, templates)?;
    Ok(kb::write_pages(output, &pages, force)?)
}

async fn status(cfg: &Config, json: bool, failed: bool) -> Result<u8> {
    let q = open_queue(cfg).await?;
    let counts = q.counts().await?;
    let lines = progress::stage_lines(&counts);
    let failures = q.failures().await?;
    let sources = q.current_sources().await?;
    let refused: Vec<_> = sources.iter().filter(|s| s.status == "refused").collect();
    // Files read all the same, with a fallback or remark (malformed JSON read as text, …).
    let warnings: Vec<(&str, &str)> = sources
        .iter()
        .filter(|s| s.status == "active")
        .flat_map(|s| s.notes.iter().map(|n| (s.rel_path.as_str(), n.as_str())))
        .collect();
    let running = q.running().await?;
    if json {
        let v = serde_json::json!({
            "db": cfg.db,
            "stages": lines,
            "running": running,
            "failed": failures,
            "refused": refused.iter().map(|s| serde_json::json!({"file": s.rel_path, "kind": s.refusal_kind, "reason": s.refusal_message})).collect::<Vec<_>>(),
            "warnings": warnings.iter().map(|(file, note)| serde_json::json!({"file": file, "warning": note})).collect::<Vec<_>>(),
            "remaining_tokens": progress::remaining_tokens(&counts),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(0);
    }
    println!(
        "{:<12} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7}",
        "stage", "queued", "running", "done", "retry", "dead", "total"
    );
    for l in &lines {
        println!(
            "{:<12} {:>7} {:>7} {:>7} {:>7} {:>7} {:>7}",
            l.stage, l.waiting, l.running, l.done, l.failed, l.dead, l.total
        );
    }
    println!(
        "files: {} read, {} refused or skipped, {} warning(s){}",
        sources.len() - refused.len(),
        refused.len(),
        warnings.len(),
        if (refused.is_empty() && warnings.is_empty()) || failed {
            ""
        } else {
            " (see --failed)"
        }
    );
    for r in &running {
        println!(
            "running: job {} {} {} {}",
            r.id,
            r.role,
            r.file.clone().unwrap_or_default(),
            r.heading.clone().unwrap_or_default()
        );
    }
    if failed {
        for s in &refused {
            println!(
                "refused  {}  {}: {}",
                s.rel_path,
                s.refusal_kind.clone().unwrap_or_default(),
                s.refusal_message.clone().unwrap_or_default()
            );
        }
        for (file, note) in &warnings {
            println!("warning  {file}: {note}");
        }
        for j in &failures {
            let place = match (&j.file, j.lines) {
                (Some(f), Some((a, b))) => format!("{f}:{a}-{b}"),
                (Some(f), None) => f.clone(),
                _ => "-".into(),
            };
            println!(
                "{:<9} job {} {} {} attempts {}/{}  {}: {}",
                j.state.as_str(),
                j.id,
                j.role,
                place,
                j.attempts,
                j.max_attempts,
                j.error_kind,
                j.error
            );
        }
        if refused.is_empty() && failures.is_empty() && warnings.is_empty() {
            println!("nothing failed");
        }
    }
    Ok(0)
}

async fn watch_cmd(cfg: &Config, arg: ProgressArg) -> Result<u8> {
    let q = open_queue(cfg).await?;
    let mode = progress_mode(arg, false);
    let (stop_tx, stop_rx) = watch::channel(false);
    let (_shutdown_tx, shutdown_rx) = watch::channel(engine::Stop::Run);
    let view = tokio::spawn(progress::show(
        q.clone(),
        None,
        mode,
        0,
        stop_rx,
        shutdown_rx,
    ));
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {
                if q.is_drained().await? { break; }
            }
        }
    }
    let _ = stop_tx.send(true);
    let _ = view.await;
    Ok(0)
}

fn models(cfg: &Config) -> Result<u8> {
    for (name, m) in &cfg.models {
        match gguf::read(&m.path) {
            Ok(info) => {
                let params = info
                    .str("general.size_label")
                    .map(str::to_string)
                    .or_else(|| {
                        info.metadata
                            .get("general.parameter_count")
                            .map(|v| format!("{v:?}"))
                    })
                    .unwrap_or_else(|| "?".into());
                println!(
                    "{name}: {} · {} · {} params · {} · context {} · chat template {} · {:.0} MB",
                    m.path.display(),
                    info.architecture(),
                    params,
                    info.quantisation(),
                    info.context_length()
                        .map(|c| c.to_string())
                        .unwrap_or_else(|| "?".into()),
                    if info.has_chat_template() {
                        "yes"
                    } else {
                        "no (set chat_template)"
                    },
                    info.file_bytes as f64 / 1e6
                );
            }
            Err(e) => println!("{name}: {e}"),
        }
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_read_only_database_error_is_one_line_naming_the_file_and_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("queue.db");
        Queue::open(&db, true).await.unwrap().close().await;
        // A real SQLite refusal: the database opened read-only, then written.
        let opts = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(&db)
            .read_only(true);
        let pool = sqlx::SqlitePool::connect_with(opts).await.unwrap();
        let err = sqlx::query("DELETE FROM jobs")
            .execute(&pool)
            .await
            .unwrap_err();
        let err = anyhow::Error::from(crate::queue::QueueError::from(err));
        let msg = one_line(&with_database_hint(err, &db));
        assert!(msg.contains(&db.display().to_string()), "{msg}");
        assert!(msg.contains("readonly"), "{msg}");
        assert!(msg.contains("writable"), "says what to do: {msg}");
        assert_eq!(msg.matches("readonly").count(), 1, "the cause once: {msg}");
        assert!(!msg.contains('\n'));
    }

    #[test]
    fn one_line_says_each_cause_once() {
        #[derive(Debug, thiserror::Error)]
        #[error("cannot open x.db: {source}")]
        struct Outer {
            source: std::io::Error,
        }
        let e = anyhow::Error::from(Outer {
            source: std::io::Error::other("disk on fire"),
        })
        .context("enqueue failed");
        assert_eq!(
            one_line(&e),
            "enqueue failed: cannot open x.db: disk on fire"
        );
    }
}
