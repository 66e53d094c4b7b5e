//! The enqueue pipeline: reader threads read and split the listed files of a folder in
//! parallel, and one task stores them in walk order, in batches of whole files, each batch
//! one transaction (new source versions, their chunks, a job per chunk and per-chunk role).
//! Unchanged files add nothing; files that are gone are marked so.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::agent::{InputKind, Role};
use crate::ingest::{self, Entry, IngestOptions, TokenCounter, WalkReport};
use crate::queue::store::{self, NewChunk, NewSource};
use crate::queue::{insert_jobs, NewJob, Queue, QueueError};

/// Why a folder could not be stored (its files' own problems are refusals, not errors).
#[derive(Debug, thiserror::Error)]
pub enum EnqueueError {
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error("reading {} failed: a reader thread panicked", root.display())]
    ReaderPanicked { root: PathBuf },
}

impl From<sqlx::Error> for EnqueueError {
    fn from(e: sqlx::Error) -> Self {
        EnqueueError::Queue(QueueError::from(e))
    }
}

type Result<T, E = EnqueueError> = std::result::Result<T, E>;

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

/// Stores the walked folder `root` in `q`: every listed file read and split (by `opts`,
/// chunks sized by `counter`), new or changed ones stored with a job per chunk for each of
/// `chunk_roles`, refusals and skipped paths recorded, files no longer there marked gone.
pub async fn store_folder(
    q: &Queue,
    root: &Path,
    walk: WalkReport,
    opts: &IngestOptions,
    chunk_roles: &[Role],
    counter: Arc<dyn TokenCounter>,
) -> Result<EnqueueReport> {
    let opts = opts.clone();
    let start = std::time::Instant::now();
    // Reading and splitting is CPU work on every core; the entries come back in walk order
    // while this task stores them, so both overlap. Readers may run ahead of the store (and
    // keep the cores busy while a commit waits for the disk) by up to READ_AHEAD_KB of files.
    let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel();
    let reader = {
        let root = root.to_path_buf();
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
            store_batch(q, &root_s, chunk_roles, &mut batch, &mut report).await?;
            permits.clear(); // stored: the readers may read as much again
            batch_bytes = 0;
        }
        if done {
            break;
        }
    }
    if reader.join().is_err() {
        return Err(EnqueueError::ReaderPanicked {
            root: root.to_path_buf(),
        });
    }
    // Files that were here before and are not any more.
    for s in q.latest_sources(&root_s).await? {
        if !seen.contains(&s.rel_path)
            && matches!(
                s.status,
                crate::queue::SourceStatus::Active | crate::queue::SourceStatus::Refused
            )
        {
            let mut tx = q.begin().await?;
            store::mark_gone(&mut tx, s.id).await?;
            tx.commit().await?;
            report.gone += 1;
        }
    }
    tracing::info!(seconds = start.elapsed().as_secs_f64(), "enqueued");
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
                    l.status == crate::queue::SourceStatus::Active
                        && l.content_hash.as_deref() == Some(&file.content_hash)
                }) {
                    report.unchanged += 1;
                    continue;
                }
                sources.push(NewSource {
                    root: root.to_string(),
                    rel_path: file.rel_path.clone(),
                    kind: Some(file.kind.as_str().to_string()),
                    status: crate::queue::SourceStatus::Active,
                    content_hash: Some(file.content_hash.clone()),
                    bytes: file.bytes as i64,
                    line_count: file.text.lines().count() as i64,
                    notes: file.notes.clone(),
                    metadata: file.metadata.clone(),
                    facts: serde_json::to_string(&file.facts).ok(),
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
                    l.status == crate::queue::SourceStatus::Refused
                        && l.refusal_message.as_deref() == Some(&message)
                }) {
                    continue;
                }
                sources.push(NewSource {
                    root: root.to_string(),
                    rel_path,
                    kind: kind.map(|k| k.as_str().to_string()),
                    status: crate::queue::SourceStatus::Refused,
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
