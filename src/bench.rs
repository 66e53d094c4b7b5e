//! `quarry bench`: benchmarks that print figures (`models`: the model and backend comparison) (never timed tests). Each prints a table,
//! or with `--json` one JSON value, and says what machine it ran on.

pub mod models;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::config::Config;
use crate::llm::llama::{LlamaEngine, LlamaOptions};
use crate::llm::{Backend, Message, Request};
use crate::queue::{DbUrl, Done, NewJob, Queue, QueueOptions};

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Peak resident memory of this process in MB (VmHWM).
pub fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!(
        "{} logical CPUs ({} physical cores), {cpu}",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        crate::config::physical_cores()
    )
}

/// Burns down `jobs` no-op jobs with `workers` concurrent claimers on a fresh database: a
/// SQLite file in a temp dir, or, with `server` (`postgres://…`), a new database on that
/// PostgreSQL server, dropped at the end.
pub async fn queue(
    server: Option<&str>,
    jobs: usize,
    workers: usize,
    batch: usize,
    json: bool,
) -> Result<()> {
    let batch = batch.max(1);
    let dir = tempfile::tempdir()?;
    let db: DbUrl = match server {
        Some(url) => DbUrl::Postgres(
            crate::queue::db::create_scratch(url, "quarry_bench")
                .await
                .context("cannot create a database for the benchmark on the server")?,
        ),
        None => dir.path().join("bench.db").into(),
    };
    let result = queue_on(&db, jobs, workers, batch, json).await;
    if let DbUrl::Postgres(url) = &db {
        crate::queue::db::drop_scratch(url).await?;
    }
    result
}

async fn queue_on(db: &DbUrl, jobs: usize, workers: usize, batch: usize, json: bool) -> Result<()> {
    let q = Queue::open_with(
        db,
        true,
        crate::queue::system_clock(),
        QueueOptions::default(),
    )
    .await?;
    let new_jobs: Vec<NewJob> = (0..jobs)
        .map(|i| NewJob {
            role: "noop".into(),
            stage: "noop".into(),
            input_kind: "kb".into(),
            input_id: None,
            dedup: format!("noop:{i}"),
            priority: 0,
            max_attempts: 3,
            payload: serde_json::json!({}),
            est_tokens: 0,
            depends_on: Vec::new(),
        })
        .collect();
    let t0 = Instant::now();
    for part in new_jobs.chunks(10_000) {
        q.enqueue(part).await?;
    }
    let enqueue_s = t0.elapsed().as_secs_f64();
    let start = Instant::now();
    let mut handles = Vec::new();
    for w in 0..workers {
        let q = q.clone();
        handles.push(tokio::spawn(async move {
            let owner = format!("bench#{w}");
            let mut lat = Vec::new();
            let mut n = 0usize;
            loop {
                let t = Instant::now();
                let leases = q.claim_many(&owner, &[], batch).await?;
                if leases.is_empty() {
                    break;
                }
                lat.push(t.elapsed().as_secs_f64() * 1000.0);
                n += leases.len();
                let done: Vec<_> = leases.into_iter().map(|l| (l, Done::default())).collect();
                q.complete_many(&done).await?;
            }
            anyhow::Ok((lat, n))
        }));
    }
    let mut lat = Vec::new();
    let mut done = 0;
    for h in handles {
        let (l, n) = h.await??;
        lat.extend(l);
        done += n;
    }
    let secs = start.elapsed().as_secs_f64();
    lat.sort_by(f64::total_cmp);
    let rate = done as f64 / secs;
    let p50 = percentile(&lat, 0.5);
    let p99 = percentile(&lat, 0.99);
    let integrity = q.integrity_check().await?;
    if json {
        println!(
            "{}",
            serde_json::json!({
                "database": if db.is_postgres() { "postgres" } else { "sqlite" },
                "jobs": done, "workers": workers, "batch": batch, "seconds": secs, "jobs_per_s": rate,
                "claim_p50_ms": p50, "claim_p99_ms": p99, "enqueue_s": enqueue_s,
                "integrity": integrity, "machine": machine(),
            })
        );
    } else {
        println!(
            "queue bench on {} ({})",
            machine(),
            if db.is_postgres() {
                "PostgreSQL"
            } else {
                "SQLite"
            }
        );
        println!("enqueued {jobs} jobs in {enqueue_s:.2}s");
        println!(
            "{done} jobs by {workers} workers claiming {batch} at a time in {secs:.2}s: {rate:.0} jobs/s · claim p50 {p50:.3} ms · p99 {p99:.3} ms · integrity {integrity}"
        );
    }
    q.close().await;
    Ok(())
}

const BENCH_PROMPTS: &str = include_str!("../bench/prompts.txt");

fn bench_prompts(path: Option<&Path>) -> Result<(String, Vec<String>)> {
    let text = match path {
        Some(p) => {
            std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?
        }
        None => BENCH_PROMPTS.to_string(),
    };
    // The file: a shared preamble, then prompts separated by lines of "---".
    let mut parts = text
        .split("\n---\n")
        .map(str::trim)
        .filter(|s| !s.is_empty());
    let preamble = parts.next().unwrap_or_default().to_string();
    let prompts: Vec<String> = parts.map(str::to_string).collect();
    anyhow::ensure!(
        !prompts.is_empty(),
        "the prompt file holds no prompts after its preamble"
    );
    Ok((preamble, prompts))
}

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct EngineRow {
    mode: String,
    slots: usize,
    /// Contexts serving the slots (one engine thread each).
    #[serde(default)]
    contexts: usize,
    requests: usize,
    seconds: f64,
    prompt_tokens: u64,
    gen_tokens: u64,
    prompt_tps: f64,
    gen_tps: f64,
    total_tps: f64,
    per_seq_gen_tps: f64,
    ttft_p50_ms: f64,
    ttft_p95_ms: f64,
    prefix_tokens_saved: u64,
    peak_rss_mb: f64,
}

/// Runs one mode at one slot count in this process.
async fn engine_row(
    cfg: &Config,
    model: &Path,
    mode: &str,
    slots: usize,
    prompts: Option<&Path>,
    n: usize,
    max_tokens: u32,
) -> Result<EngineRow> {
    let (preamble, prompts) = bench_prompts(prompts)?;
    let m = cfg.model("default")?;
    // The configured threads (`threads = 0`: the physical cores).
    let cores = match m.threads {
        0 => crate::config::physical_cores(),
        t => t,
    };
    let opts = |slots: usize, threads: usize, prefix: bool| {
        let mut o = LlamaOptions::new(model);
        o.slots = slots;
        o.ctx_per_slot = m.ctx_per_slot;
        o.kv_tokens = m.kv_tokens;
        o.batch = m.batch;
        o.threads = threads.max(1) as i32;
        o.memory_budget_mb = m.memory_budget_mb;
        o.prefix_cache = prefix;
        o.kv_type = m.kv_type;
        o.kv_unified = m.kv_unified;
        o.contexts = m.contexts;
        o
    };
    let engines = match mode {
        "sequential" => vec![LlamaEngine::start(opts(1, cores, false))?],
        "per_thread" => (0..slots)
            .map(|_| LlamaEngine::start(opts(1, (cores / slots).max(1), false)))
            .collect::<Result<Vec<_>, _>>()?,
        "batched" => vec![LlamaEngine::start(opts(slots, cores, false))?],
        "batched_prefix" => vec![LlamaEngine::start(opts(slots, cores, true))?],
        other => anyhow::bail!("unknown engine bench mode {other:?}"),
    };
    let concurrent = if mode == "sequential" { 1 } else { slots };
    let contexts = engines.iter().map(|e| e.contexts()).sum();
    let reqs = requests(&preamble, &prompts, n, max_tokens);
    let mut row = drive(mode, slots, engines, reqs, concurrent).await?;
    row.contexts = contexts;
    Ok(row)
}

fn requests(preamble: &str, prompts: &[String], n: usize, max_tokens: u32) -> Vec<Request> {
    (0..n)
        .map(|i| {
            let mut r = Request::new(vec![
                Message::system(preamble),
                Message::user(prompts[i % prompts.len()].clone()),
            ]);
            r.sampling.max_tokens = max_tokens;
            r.timeout = Duration::from_secs(600);
            r
        })
        .collect()
}

async fn drive(
    mode: &str,
    slots: usize,
    engines: Vec<Arc<LlamaEngine>>,
    reqs: Vec<Request>,
    concurrent: usize,
) -> Result<EngineRow> {
    let n = reqs.len();
    let start = Instant::now();
    let sem = Arc::new(tokio::sync::Semaphore::new(concurrent.max(1)));
    let mut handles = Vec::new();
    for (i, r) in reqs.into_iter().enumerate() {
        let e = engines[i % engines.len()].clone();
        let sem = sem.clone();
        handles.push(tokio::spawn(async move {
            let _p = sem.acquire_owned().await?;
            let t = Instant::now();
            let c = e.generate(r).await?;
            anyhow::Ok((c, t.elapsed()))
        }));
    }
    let mut ttft = Vec::new();
    let (mut p, mut g, mut saved, mut gen_ms) = (0u64, 0u64, 0u64, 0f64);
    for h in handles {
        let (c, _) = h.await??;
        ttft.push(c.timings.ttft_ms);
        p += c.timings.prompt_tokens;
        g += c.timings.gen_tokens;
        saved += c.timings.cached_tokens;
        gen_ms += c.timings.gen_ms;
    }
    let secs = start.elapsed().as_secs_f64();
    ttft.sort_by(f64::total_cmp);
    Ok(EngineRow {
        mode: mode.to_string(),
        slots,
        contexts: 0,
        requests: n,
        seconds: secs,
        prompt_tokens: p,
        gen_tokens: g,
        prompt_tps: (p - saved) as f64 / secs,
        gen_tps: g as f64 / secs,
        total_tps: (p + g) as f64 / secs,
        per_seq_gen_tps: crate::llm::rate(g, gen_ms),
        ttft_p50_ms: percentile(&ttft, 0.5),
        ttft_p95_ms: percentile(&ttft, 0.95),
        prefix_tokens_saved: saved,
        peak_rss_mb: peak_rss_mb(),
    })
}

/// The environment variable that makes `bench engine` run one row (`mode:slots`) and print it
/// as JSON: each row runs in a process of its own, so its peak RSS is its own.
const ROW_ENV: &str = "QUARRY_BENCH_ENGINE_ROW";

/// Sequential single sequence vs one context per worker thread vs the batching engine.
pub async fn engine(
    cfg: &Config,
    model: &Path,
    slots: &[usize],
    prompts: Option<&Path>,
    n: usize,
    max_tokens: u32,
    json: bool,
) -> Result<()> {
    if let Ok(row) = std::env::var(ROW_ENV) {
        let (mode, s) = row
            .split_once(':')
            .and_then(|(m, s)| Some((m.to_string(), s.parse::<usize>().ok()?)))
            .with_context(|| format!("{ROW_ENV}={row}: expected MODE:SLOTS"))?;
        let r = engine_row(cfg, model, &mode, s, prompts, n, max_tokens).await?;
        println!("{}", serde_json::to_string(&r)?);
        return Ok(());
    }
    let mut plan = vec![("sequential", 1)];
    for &s in slots {
        if s > 1 {
            plan.push(("per_thread", s));
        }
        plan.push(("batched", s));
        plan.push(("batched_prefix", s));
    }
    let exe = std::env::current_exe().context("cannot find this program to run a bench row")?;
    let mut rows = Vec::new();
    for (mode, s) in plan {
        let out = std::process::Command::new(&exe)
            .args(std::env::args_os().skip(1))
            .env(ROW_ENV, format!("{mode}:{s}"))
            .stderr(std::process::Stdio::inherit())
            .output()
            .with_context(|| format!("cannot run the {mode} row at {s} slots"))?;
        anyhow::ensure!(
            out.status.success(),
            "the {mode} row at {s} slots failed ({})",
            out.status
        );
        let text = String::from_utf8_lossy(&out.stdout);
        let line = text.lines().last().unwrap_or_default();
        rows.push(
            serde_json::from_str::<EngineRow>(line)
                .with_context(|| format!("the {mode} row at {s} slots printed {line:?}"))?,
        );
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    let contexts = match cfg.model("default")?.contexts {
        0 => "one per slot for a model under 300 MB, else one".to_string(),
        k => k.to_string(),
    };
    println!(
        "engine bench on {}; model {}; {n} requests of up to {max_tokens} tokens; \
         batched engine contexts: {contexts}",
        machine(),
        model.display()
    );
    println!(
        "{:<15} {:>5} {:>4} {:>8} {:>10} {:>9} {:>9} {:>9} {:>10} {:>10} {:>8} {:>8}",
        "mode",
        "slots",
        "ctx",
        "secs",
        "prompt t/s",
        "gen t/s",
        "total t/s",
        "seq gen",
        "ttft p50",
        "ttft p95",
        "saved",
        "rss MB"
    );
    for r in &rows {
        println!(
            "{:<15} {:>5} {:>4} {:>8.1} {:>10.1} {:>9.1} {:>9.1} {:>9.1} {:>10.0} {:>10.0} {:>8} {:>8.0}",
            r.mode,
            r.slots,
            r.contexts,
            r.seconds,
            r.prompt_tps,
            r.gen_tps,
            r.total_tps,
            r.per_seq_gen_tps,
            r.ttft_p50_ms,
            r.ttft_p95_ms,
            r.prefix_tokens_saved,
            r.peak_rss_mb
        );
    }
    Ok(())
}

/// Generates a mixed tree and times walk + parse + chunk + insert.
pub async fn ingest(cfg: &Config, files: usize, tree: Option<&Path>, json: bool) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (root, bytes) = match tree {
        Some(t) if t.exists() => (t.to_path_buf(), tree_bytes(t)),
        Some(t) => (t.to_path_buf(), generate_tree(t, files, 20_000)?),
        None => {
            let root = dir.path().join("tree");
            let bytes = generate_tree(&root, files, 20_000)?;
            (root, bytes)
        }
    };
    // A user's folder is not being written while it is enqueued: let the kernel write the
    // generated tree out first, or its writeback competes with the database's (-25 %).
    let _ = std::process::Command::new("sync").status();
    let mut cfg = cfg.clone();
    cfg.db = dir.path().join("bench.db").into();
    cfg.backend.kind = crate::config::BackendKind::Fake; // size chunks by estimate: the tokenizer is not under test
    let start = Instant::now();
    let report = crate::cmd::enqueue(&cfg, &root).await?;
    let secs = start.elapsed().as_secs_f64();
    let mbps = bytes as f64 / 1e6 / secs;
    if json {
        println!(
            "{}",
            serde_json::json!({
                "files": report.files, "bytes": bytes, "seconds": secs, "mb_per_s": mbps,
                "files_per_s": report.files as f64 / secs, "chunks": report.chunks, "machine": machine(),
            })
        );
    } else {
        println!("ingest bench on {}", machine());
        println!(
            "{} files, {:.1} MB in {secs:.2}s: {:.0} files/s, {mbps:.1} MB/s, {} chunks",
            report.files,
            bytes as f64 / 1e6,
            report.files as f64 / secs,
            report.chunks
        );
    }
    Ok(())
}

/// Total size of the regular files under `root`.
fn tree_bytes(root: &Path) -> u64 {
    walkdir::WalkDir::new(root)
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_file())
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum()
}

/// Writes `files` research-like files (markdown, text, JSON, Rust) of about `avg` bytes each
/// under `root`, in nested folders. Returns the bytes written.
pub fn generate_tree(root: &Path, files: usize, avg: usize) -> std::io::Result<u64> {
    let mut total = 0u64;
    for i in 0..files {
        let dir = root.join(format!("d{:02}/e{:02}", i % 37, i % 11));
        std::fs::create_dir_all(&dir)?;
        let mut text = String::with_capacity(avg + 256);
        let (name, ext) = match i % 4 {
            0 => ("note", "md"),
            1 => ("log", "txt"),
            2 => ("dump", "json"),
            _ => ("code", "rs"),
        };
        let mut n = 0;
        match ext {
            "json" => {
                text.push('[');
                while text.len() < avg {
                    if n > 0 {
                        text.push(',');
                    }
                    text.push_str(&format!(
                        "{{\"id\": {n}, \"title\": \"record {n} of file {i}\", \"tags\": [\"rust\", \"ownership\"], \"body\": \"A value has one owner; borrowing lends it out for a while without moving it.\"}}"
                    ));
                    n += 1;
                }
                text.push(']');
            }
            "rs" => {
                while text.len() < avg {
                    text.push_str(&format!(
                        "/// Returns the sum of the first {n} squares.\n///\n/// Iterators compose without allocating.\npub fn squares_{n}(limit: u64) -> u64 {{\n    (1..=limit).map(|x| x * x).sum()\n}}\n\n"
                    ));
                    n += 1;
                }
            }
            "md" => {
                while text.len() < avg {
                    text.push_str(&format!(
                        "## Section {n}\n\nWhen a function only reads a string, take `&str` rather than `&String`; callers keep ownership.\n\n```rust\nfn greet(name: &str) -> String {{\n    format!(\"hello {{name}}\")\n}}\n```\n\n"
                    ));
                    n += 1;
                }
            }
            _ => {
                while text.len() < avg {
                    text.push_str(&format!(
                        "Paragraph {n}: errors are values; propagate them with the question mark operator and add context at module edges.\n\n"
                    ));
                    n += 1;
                }
            }
        }
        std::fs::write(dir.join(format!("{name}{i}.{ext}")), &text)?;
        total += text.len() as u64;
    }
    Ok(total)
}

/// Questions nothing in a folder of Rust notes answers: the threshold below which `ask` says
/// so is set between their nearest similarity and the labelled questions'.
const OFF_TOPIC: &[&str] = &[
    "What is a good recipe for banana bread?",
    "Who won the football world cup in 1998?",
    "How tall is the Eiffel tower?",
    "What should I pack for a week of hiking in the Alps?",
    "How do I repot an orchid?",
    "What is the capital of Australia?",
    "How many moons does Jupiter have?",
    "Which wine goes with grilled fish?",
    "How do I lower my electricity bill in winter?",
    "What are the rules of cricket?",
];

/// A labelled question: its text and the files (relative to the corpus) that answer it.
#[derive(Clone, Debug)]
pub struct Labelled {
    pub question: String,
    pub files: Vec<String>,
}

/// Reads a question file: `question<TAB>file[,file]` lines, `#` comments, and an optional
/// `# corpus: DIR` line (relative to the current folder). Returns the corpus and the rows.
pub fn read_questions(text: &str) -> (Option<String>, Vec<Labelled>) {
    let mut corpus = None;
    let mut rows = Vec::new();
    for line in text.lines() {
        if let Some(c) = line.trim().strip_prefix("# corpus:") {
            corpus = Some(c.trim().to_string());
            continue;
        }
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some((q, files)) = line.split_once('\t') {
            rows.push(Labelled {
                question: q.trim().to_string(),
                files: files
                    .split(',')
                    .map(|f| f.trim().to_string())
                    .filter(|f| !f.is_empty())
                    .collect(),
            });
        }
    }
    (corpus, rows)
}

/// Recall@k and reciprocal rank of one ranking of files (best first, each file once).
pub fn score_ranking(files: &[String], relevant: &[String], k: usize) -> (f64, f64) {
    if relevant.is_empty() {
        return (0.0, 0.0);
    }
    let found = relevant
        .iter()
        .filter(|r| files.iter().take(k).any(|f| f == *r))
        .count();
    let rr = files
        .iter()
        .position(|f| relevant.contains(f))
        .map(|p| 1.0 / (p as f64 + 1.0))
        .unwrap_or(0.0);
    (found as f64 / relevant.len() as f64, rr)
}

/// Retrieval quality on a labelled question set, embedding throughput, and query latency over
/// synthetic indexes of `sizes` chunks.
pub async fn retrieval(
    cfg: &Config,
    questions: &Path,
    corpus: Option<&Path>,
    sizes: &[usize],
    queries: usize,
    json: bool,
) -> Result<()> {
    use crate::search::{self, Mode, Retriever};
    let text = std::fs::read_to_string(questions)
        .with_context(|| format!("cannot read questions {}", questions.display()))?;
    let (named, rows) = read_questions(&text);
    let corpus = corpus
        .map(Path::to_path_buf)
        .or(named.map(std::path::PathBuf::from))
        .context("no corpus: pass --corpus DIR or add a `# corpus: DIR` line")?;
    let embedder =
        crate::search::Embedder::load(&cfg.search.embedding_model, cfg.search.dimensions)?;
    let dir = tempfile::tempdir()?;
    let mut qcfg = cfg.clone();
    qcfg.db = dir.path().join("retrieval.db").into();
    let report = crate::cmd::enqueue(&qcfg, &corpus).await?;
    let queue = Queue::open(&qcfg.db, false).await?;
    let index = search::update_index(&queue, &embedder, cfg.search.batch, |_, _| {}).await?;
    let chunks_per_s = index.embedded as f64 / index.seconds.max(1e-9);
    let retriever = Retriever::open(&queue, &embedder, false, cfg.search.batch, |_, _| {}).await?;

    // Quality: files ranked by their best chunk, per mode.
    let mut quality = Vec::new();
    for mode in [Mode::Text, Mode::Vector, Mode::Hybrid] {
        let (mut recall, mut mrr) = (0.0, 0.0);
        let mut misses = Vec::new();
        for row in &rows {
            let hits = retriever.search(&row.question, 50, mode).await?;
            let mut files: Vec<String> = Vec::new();
            for h in &hits {
                if !files.contains(&h.chunk.rel_path) {
                    files.push(h.chunk.rel_path.clone());
                }
            }
            let (r, rr) = score_ranking(&files, &row.files, 5);
            recall += r;
            mrr += rr;
            if r < 1.0 {
                misses.push(row.question.clone());
            }
        }
        let n = rows.len().max(1) as f64;
        quality.push((mode, recall / n, mrr / n, misses));
    }
    // Calibration of `ask`'s threshold: the nearest chunk's similarity for labelled and for
    // off-topic questions.
    let nearest = |q: &str| -> Result<f32> {
        let v = retriever.embed_query(q)?;
        Ok(retriever_best(&retriever, &v))
    };
    let mut on: Vec<f32> = Vec::new();
    for r in &rows {
        on.push(nearest(&r.question)?);
    }
    let mut off: Vec<f32> = Vec::new();
    for q in OFF_TOPIC {
        off.push(nearest(q)?);
    }
    on.sort_by(f32::total_cmp);
    off.sort_by(f32::total_cmp);

    // Latency over synthetic indexes.
    let mut latency = Vec::new();
    for &n in sizes {
        latency.push(synthetic_latency(&embedder, n, queries).await?);
    }

    if json {
        println!(
            "{}",
            serde_json::json!({
                "machine": machine(),
                "corpus": corpus, "questions": rows.len(), "files": report.files,
                "chunks": index.chunks, "embedded": index.embedded,
                "embed_seconds": index.seconds, "chunks_per_s": chunks_per_s,
                "quality": quality.iter().map(|(m, r, rr, miss)| serde_json::json!({
                    "mode": m, "recall_at_5": r, "mrr": rr, "misses": miss,
                })).collect::<Vec<_>>(),
                "nearest_similarity": {"labelled_min": on.first(), "labelled_median": on.get(on.len() / 2),
                                        "off_topic_max": off.last(), "off_topic_median": off.get(off.len() / 2)},
                "min_similarity": cfg.search.min_similarity,
                "latency": latency,
            })
        );
        return Ok(());
    }
    println!("retrieval bench on {}", machine());
    println!(
        "corpus {}: {} files, {} chunks; {} questions ({})",
        corpus.display(),
        report.files,
        index.chunks,
        rows.len(),
        questions.display()
    );
    println!(
        "embedding ({}): {} chunks in {:.1} s = {chunks_per_s:.1} chunks/s (batch {})",
        embedder.name(),
        index.embedded,
        index.seconds,
        cfg.search.batch
    );
    println!("{:<8} {:>9} {:>6}", "mode", "recall@5", "MRR");
    for (m, r, rr, _) in &quality {
        println!("{:<8} {r:>9.3} {rr:>6.3}", format!("{m:?}").to_lowercase());
    }
    for (m, _, _, miss) in &quality {
        if !miss.is_empty() {
            println!("{m:?} misses ({}):", miss.len());
            for q in miss {
                println!("  {q}");
            }
        }
    }
    println!(
        "nearest-chunk similarity: labelled min {:.3} median {:.3}; off-topic median {:.3} max {:.3} (ask answers from {:.2})",
        on.first().copied().unwrap_or(0.0),
        on.get(on.len() / 2).copied().unwrap_or(0.0),
        off.get(off.len() / 2).copied().unwrap_or(0.0),
        off.last().copied().unwrap_or(0.0),
        cfg.search.min_similarity
    );
    for l in &latency {
        println!(
            "{} synthetic chunks: index {:.1} MB (vectors {:.1} MB); load {:.0} ms; query (embed + BM25 + scan + fuse) p50 {:.1} ms p95 {:.1} ms; vector scan alone p50 {:.1} ms",
            l.chunks, l.db_mb, l.vector_mb, l.load_ms, l.p50_ms, l.p95_ms, l.scan_p50_ms
        );
    }
    Ok(())
}

fn retriever_best(r: &crate::search::Retriever<'_>, v: &[f32]) -> f32 {
    r.nearest(v).map(|(_, s)| s).unwrap_or(-1.0)
}

#[derive(Debug, serde::Serialize)]
pub struct LatencyFigures {
    pub chunks: usize,
    pub db_mb: f64,
    pub vector_mb: f64,
    pub load_ms: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub scan_p50_ms: f64,
}

/// A database of `n` synthetic chunks (words of a made-up vocabulary, Zipf-like) with random
/// unit vectors; times `queries` hybrid searches of a few of its words.
async fn synthetic_latency(
    embedder: &crate::search::Embedder,
    n: usize,
    queries: usize,
) -> Result<LatencyFigures> {
    use crate::queue::store::{self, NewChunk, NewSource};
    use crate::search::{index, Mode, Retriever};
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("synthetic.db");
    let queue = Queue::open(&db, true).await?;
    let mut rng = fastrand::Rng::with_seed(7);
    let vocab: Vec<String> = (0..5000)
        .map(|i| {
            let mut w = String::new();
            let mut x = i + 26 * 26;
            while x > 0 {
                w.push((b'a' + (x % 26) as u8) as char);
                x /= 26;
            }
            w
        })
        .collect();
    let word = |rng: &mut fastrand::Rng| {
        let u = rng.f64();
        vocab[((u * u * u) * vocab.len() as f64) as usize % vocab.len()].clone()
    };
    let per_source = 100;
    let dim = embedder.dim();
    let now = queue.now();
    let mut made = 0;
    while made < n {
        let count = per_source.min(n - made);
        let src = NewSource {
            root: "/synthetic".into(),
            rel_path: format!("s{made}.md"),
            kind: Some("markdown".into()),
            status: crate::queue::SourceStatus::Active,
            ..Default::default()
        };
        let chunks: Vec<NewChunk> = (0..count)
            .map(|i| NewChunk {
                ordinal: i as i64,
                line_start: (i * 10 + 1) as i64,
                line_end: (i * 10 + 10) as i64,
                text: (0..80)
                    .map(|_| word(&mut rng))
                    .collect::<Vec<_>>()
                    .join(" "),
                ..Default::default()
            })
            .collect();
        let mut tx = queue.begin().await?;
        let (sid, _) = store::insert_source(&mut tx, &src, now).await?;
        let pairs: Vec<(i64, &NewChunk)> = chunks.iter().map(|c| (sid, c)).collect();
        let ids = store::insert_chunks(&mut tx, &pairs).await?;
        tx.commit().await?;
        let rows: Vec<(i64, Vec<u8>)> = ids
            .iter()
            .map(|&id| {
                let v: Vec<f32> = (0..dim).map(|_| rng.f32() - 0.5).collect();
                let norm = index::dot(&v, &v).sqrt();
                let v: Vec<f32> = v.iter().map(|x| x / norm).collect();
                (id, index::to_blob(&v))
            })
            .collect();
        queue.store_vectors(embedder.name(), dim, &rows).await?;
        made += count;
    }
    queue.sync_fts().await?;
    queue.checkpoint().await?;
    let db_mb = std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0) as f64 / 1e6;
    let start = Instant::now();
    let retriever = Retriever::open(&queue, embedder, false, 16, |_, _| {}).await?;
    let load_ms = start.elapsed().as_secs_f64() * 1000.0;
    let mut times = Vec::new();
    let mut scans = Vec::new();
    for _ in 0..queries {
        let q = (0..5).map(|_| word(&mut rng)).collect::<Vec<_>>().join(" ");
        let start = Instant::now();
        let hits = retriever.search(&q, 5, Mode::Hybrid).await?;
        times.push(start.elapsed().as_secs_f64() * 1000.0);
        anyhow::ensure!(!hits.is_empty(), "a synthetic query found nothing");
        let v: Vec<f32> = (0..dim).map(|_| rng.f32() - 0.5).collect();
        let start = Instant::now();
        std::hint::black_box(retriever.nearest(&v));
        scans.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    scans.sort_by(f64::total_cmp);
    Ok(LatencyFigures {
        chunks: n,
        db_mb,
        vector_mb: (n * dim * 4) as f64 / 1e6,
        load_ms,
        p50_ms: percentile(&times, 0.5),
        p95_ms: percentile(&times, 0.95),
        scan_p50_ms: percentile(&scans, 0.5),
    })
}
