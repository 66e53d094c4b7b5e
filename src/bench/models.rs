//! `quarry bench models`: one extraction workload (the built-in extractor's prompts and
//! grammars over the labelled chunks of `bench/models/`) on every configured model and
//! backend at several numbers of concurrent agents. Speed (time to first token, prefill and
//! decode rates, total throughput, wall time, prompt tokens served from cache), memory (peak
//! RSS of quarry, and of a server process given its pid) and correctness (the share of replies
//! valid against the schema, the share of chunks whose technique was named). Each row runs in
//! a child process of its own, as `bench engine`'s do, so its peak RSS is its own.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::{machine, peak_rss_mb, percentile};
use crate::agent::context::{ChunkCtx, ChunkPrompt};
use crate::agent::{Agents, OutputKind};
use crate::config::{BackendKind, Config};
use crate::ingest::FileKind;
use crate::llm::{Backend, Request};

/// The labelled chunks: what each teaches, by the names a correct extraction may give it.
#[derive(Debug, Deserialize)]
pub struct LabelledSet {
    pub chunks: Vec<LabelledChunk>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct LabelledChunk {
    pub file: String,
    pub heading: Vec<String>,
    pub text: String,
    pub names: Vec<String>,
}

/// A name as compared: lowercase, single spaces, without a leading "the" or a trailing
/// "pattern".
fn norm(name: &str) -> String {
    let s = name.to_lowercase();
    let s = s.split_whitespace().collect::<Vec<_>>().join(" ");
    let s = s.strip_prefix("the ").unwrap_or(&s).to_string();
    s.strip_suffix(" pattern").unwrap_or(&s).trim().to_string()
}

/// Whether a reply's name is one of the labels (or one contains the other).
pub fn name_matches(found: &str, labels: &[String]) -> bool {
    let f = norm(found);
    !f.is_empty()
        && labels
            .iter()
            .map(|l| norm(l))
            .any(|l| f == l || (f.len() >= 3 && l.contains(&f)) || (l.len() >= 3 && f.contains(&l)))
}

/// One model at one concurrency.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ModelRow {
    pub model: String,
    pub backend: String,
    pub concurrency: usize,
    pub requests: usize,
    pub errors: usize,
    pub wall_s: f64,
    pub ttft_p50_ms: f64,
    pub ttft_p95_ms: f64,
    /// Prompt tokens computed per second of each request's prefill (cached ones excluded).
    pub prefill_tps: f64,
    /// Tokens generated per second of each request's decoding.
    pub decode_tps: f64,
    /// All prompt and generated tokens over the wall time: what the machine delivered.
    pub total_tps: f64,
    pub prompt_tokens: u64,
    pub cached_tokens: u64,
    pub gen_tokens: u64,
    /// Replies that parse and validate against the extractor's schema.
    pub valid_share: f64,
    /// Chunks whose reply names their technique.
    pub accuracy: f64,
    pub quarry_peak_rss_mb: f64,
    pub server_peak_rss_mb: Option<f64>,
}

/// Peak resident memory (VmHWM) of process `pid` in MB.
pub fn peak_rss_of(pid: u32) -> Option<f64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
}

/// Requests, each with the labels its reply is scored by.
type Work = Vec<(Request, Vec<String>)>;

/// The workload: the extractor's request for each chunk, with the labels to score it by,
/// and the schema replies must follow.
fn workload(cfg: &Config, set: &LabelledSet) -> Result<(serde_json::Value, Work)> {
    let agents = Agents::load(Some(&cfg.agents_dir), Some(&cfg.prompts_dir))?;
    let role = agents
        .by_output(OutputKind::Findings)
        .context("no role outputs findings: the benchmark needs an extractor")?;
    let mut out = Vec::new();
    for c in &set.chunks {
        let facts = crate::text::terms::FileFacts::of_chunks(
            [(c.heading.as_slice(), c.text.as_str())],
            FileKind::Markdown,
        );
        let terms = role.usable_terms(crate::text::terms::terms(
            &c.text,
            &c.heading,
            FileKind::Markdown,
            &facts,
        ));
        let (_, grammar) = role.constrained(&c.text, &terms)?;
        let prompt = ChunkPrompt {
            chunk: ChunkCtx {
                file: c.file.clone(),
                kind: "markdown".into(),
                line_start: 1,
                line_end: c.text.lines().count() as i64,
                heading: c.heading.join(" > "),
                text: c.text.clone(),
                terms,
            },
        };
        let mut r = Request::new(agents.messages(role, &prompt)?);
        r.sampling = role.sampling();
        r.grammar = Some(grammar);
        r.timeout = Duration::from_secs(900);
        out.push((r, c.names.clone()));
    }
    Ok((role.schema.clone(), out))
}

/// Runs the workload on `backend` with `concurrency` requests in flight.
async fn drive(
    model: &str,
    backend: Arc<dyn Backend>,
    schema: &serde_json::Value,
    work: Work,
    concurrency: usize,
    server_pid: Option<u32>,
) -> Result<ModelRow> {
    let n = work.len();
    let sem = Arc::new(tokio::sync::Semaphore::new(concurrency.max(1)));
    let start = Instant::now();
    let mut handles = Vec::new();
    for (req, labels) in work {
        let (b, sem) = (backend.clone(), sem.clone());
        handles.push(tokio::spawn(async move {
            let _permit = sem.acquire_owned().await?;
            anyhow::Ok((b.generate(req).await, labels))
        }));
    }
    let (mut ttft, mut errors, mut valid, mut right) = (Vec::new(), 0, 0, 0);
    let (mut p, mut c, mut g, mut prompt_ms, mut gen_ms) = (0u64, 0u64, 0u64, 0f64, 0f64);
    for h in handles {
        let (result, labels) = h.await??;
        let done = match result {
            Ok(done) => done,
            Err(e) => {
                tracing::warn!(error = %e, model, "a bench request failed");
                errors += 1;
                continue;
            }
        };
        let t = &done.timings;
        ttft.push(t.ttft_ms);
        p += t.prompt_tokens;
        c += t.cached_tokens;
        g += t.gen_tokens;
        prompt_ms += t.prompt_ms;
        gen_ms += t.gen_ms;
        let Ok(v) = serde_json::from_str::<serde_json::Value>(done.text.trim()) else {
            continue;
        };
        if crate::llm::grammar::validate(schema, &v).is_err() {
            continue;
        }
        valid += 1;
        let names = v["findings"].as_array().into_iter().flatten();
        if names
            .filter_map(|f| f["name"].as_str())
            .any(|name| name_matches(name, &labels))
        {
            right += 1;
        }
    }
    let wall = start.elapsed().as_secs_f64();
    ttft.sort_by(f64::total_cmp);
    Ok(ModelRow {
        model: model.to_string(),
        backend: backend.name(),
        concurrency,
        requests: n,
        errors,
        wall_s: wall,
        ttft_p50_ms: percentile(&ttft, 0.5),
        ttft_p95_ms: percentile(&ttft, 0.95),
        prefill_tps: crate::llm::rate(p.saturating_sub(c), prompt_ms),
        decode_tps: crate::llm::rate(g, gen_ms),
        total_tps: (p + g) as f64 / wall.max(1e-9),
        prompt_tokens: p,
        cached_tokens: c,
        gen_tokens: g,
        valid_share: valid as f64 / n.max(1) as f64,
        accuracy: right as f64 / n.max(1) as f64,
        quarry_peak_rss_mb: peak_rss_mb(),
        server_peak_rss_mb: server_pid.and_then(peak_rss_of),
    })
}

/// What `quarry bench models` was asked.
#[derive(Clone, Debug)]
pub struct ModelsBench {
    /// Models of quarry.toml to run (empty: all).
    pub models: Vec<String>,
    pub levels: Vec<usize>,
    pub chunks: PathBuf,
    /// Times the labelled set is sent per row.
    pub rounds: usize,
    /// Server pids whose peak RSS is read: `PID` for every server model, `MODEL=PID` for one.
    pub server_pids: Vec<ServerPid>,
    pub out: Option<PathBuf>,
    pub json: bool,
}

/// `--server-pid`: a server process whose peak RSS goes beside the rows of one model
/// (`MODEL=PID`) or of every server model (`PID`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerPid {
    pub model: Option<String>,
    pub pid: u32,
}

impl std::str::FromStr for ServerPid {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (model, pid) = match s.rsplit_once('=') {
            Some((m, p)) if !m.is_empty() => (Some(m.to_string()), p),
            _ => (None, s),
        };
        let pid = pid
            .trim()
            .parse()
            .map_err(|_| format!("{s:?}: expected PID or MODEL=PID"))?;
        Ok(ServerPid { model, pid })
    }
}

impl ServerPid {
    /// The pid given for `model`, else the one given for every model.
    pub fn of(pids: &[ServerPid], model: &str) -> Option<u32> {
        pids.iter()
            .find(|p| p.model.as_deref() == Some(model))
            .or_else(|| pids.iter().find(|p| p.model.is_none()))
            .map(|p| p.pid)
    }
}

/// The environment variable that makes the bench run one row (`MODEL@CONCURRENCY`) and
/// print it as JSON.
const ROW_ENV: &str = "QUARRY_BENCH_MODELS_ROW";

async fn one_row(cfg: &Config, b: &ModelsBench, model: &str, level: usize) -> Result<ModelRow> {
    let text = std::fs::read_to_string(&b.chunks)
        .with_context(|| format!("cannot read the labelled chunks {}", b.chunks.display()))?;
    let set: LabelledSet = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a labelled set", b.chunks.display()))?;
    let (schema, work) = workload(cfg, &set)?;
    let work: Vec<_> = (0..b.rounds.max(1)).flat_map(|_| work.clone()).collect();
    let backend = crate::llm::factory::load_model(cfg, model, level).await?;
    let pid = match cfg.kind_of(model) {
        BackendKind::Openai => ServerPid::of(&b.server_pids, model),
        _ => None,
    };
    drive(model, backend, &schema, work, level, pid).await
}

pub async fn models(cfg: &Config, b: &ModelsBench) -> Result<()> {
    if let Ok(row) = std::env::var(ROW_ENV) {
        let (model, level) = row
            .rsplit_once('@')
            .and_then(|(m, l)| Some((m.to_string(), l.parse::<usize>().ok()?)))
            .with_context(|| format!("{ROW_ENV}={row}: expected MODEL@CONCURRENCY"))?;
        let r = one_row(cfg, b, &model, level).await?;
        println!("{}", serde_json::to_string(&r)?);
        return Ok(());
    }
    let models: Vec<String> = if b.models.is_empty() {
        cfg.models.keys().cloned().collect()
    } else {
        b.models.clone()
    };
    for m in &models {
        cfg.model(m)?;
    }
    let exe = std::env::current_exe().context("cannot find this program to run a bench row")?;
    let mut rows = Vec::new();
    for m in &models {
        for &level in &b.levels {
            eprintln!("bench models: {m} at {level} concurrent");
            let out = std::process::Command::new(&exe)
                .args(std::env::args_os().skip(1))
                .env(ROW_ENV, format!("{m}@{level}"))
                .stderr(std::process::Stdio::inherit())
                .output()
                .with_context(|| format!("cannot run the row of {m} at {level}"))?;
            anyhow::ensure!(
                out.status.success(),
                "the row of {m} at {level} failed ({})",
                out.status
            );
            let text = String::from_utf8_lossy(&out.stdout);
            let line = text.lines().last().unwrap_or_default();
            rows.push(
                serde_json::from_str::<ModelRow>(line)
                    .with_context(|| format!("the row of {m} at {level} printed {line:?}"))?,
            );
        }
    }
    let report = markdown(&rows, &b.chunks, b.rounds);
    if let Some(dir) = &b.out {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        std::fs::write(dir.join("models.md"), &report)?;
        std::fs::write(
            dir.join("models.json"),
            serde_json::to_string_pretty(&rows)?,
        )?;
        chart(&rows, &dir.join("models.svg"))?;
        eprintln!(
            "bench models: wrote models.md, models.json and models.svg in {}",
            dir.display()
        );
    }
    if b.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        print!("{report}");
    }
    Ok(())
}

/// The rows as a markdown table, with what they ran on.
pub fn markdown(rows: &[ModelRow], chunks: &Path, rounds: usize) -> String {
    let mut s = format!(
        "`quarry bench models` on {}; workload: the extractor over {} ({} round(s)).\n\n",
        machine(),
        chunks.display(),
        rounds
    );
    s.push_str("| model | backend | agents | wall s | TTFT p50 ms | TTFT p95 ms | prefill t/s | decode t/s | total t/s | cached / prompt tokens | valid | accuracy | quarry RSS MB | server RSS MB | errors |\n");
    s.push_str("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for r in rows {
        s.push_str(&format!(
            "| {} | {} | {} | {:.1} | {:.0} | {:.0} | {:.1} | {:.1} | {:.1} | {} / {} | {:.0}% | {:.0}% | {:.0} | {} | {} |\n",
            r.model,
            r.backend,
            r.concurrency,
            r.wall_s,
            r.ttft_p50_ms,
            r.ttft_p95_ms,
            r.prefill_tps,
            r.decode_tps,
            r.total_tps,
            r.cached_tokens,
            r.prompt_tokens,
            r.valid_share * 100.0,
            r.accuracy * 100.0,
            r.quarry_peak_rss_mb,
            r.server_peak_rss_mb.map(|m| format!("{m:.0}")).unwrap_or_else(|| "-".into()),
            r.errors
        ));
    }
    s
}

/// Throughput and accuracy against concurrency, a line per model, as an SVG file.
pub fn chart(rows: &[ModelRow], path: &Path) -> Result<()> {
    use plotters::prelude::*;
    let err = |e: &dyn std::fmt::Display| anyhow::anyhow!("drawing {}: {e}", path.display());
    let mut models: Vec<&str> = rows.iter().map(|r| r.model.as_str()).collect();
    models.dedup();
    let max_c = rows.iter().map(|r| r.concurrency).max().unwrap_or(1) as f64;
    let max_tps = rows.iter().map(|r| r.total_tps).fold(1.0, f64::max) * 1.15;
    let root = SVGBackend::new(path, (960, 420)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let (left, right) = root.split_horizontally(480);
    let colours = [BLUE, RED, GREEN, MAGENTA, CYAN, BLACK];
    type Pick = fn(&ModelRow) -> f64;
    let panels: [(&DrawingArea<_, _>, &str, f64, Pick); 2] = [
        (&left, "total tokens/s", max_tps, |r| r.total_tps),
        (&right, "accuracy (%)", 100.0, |r| r.accuracy * 100.0),
    ];
    for (area, title, top, pick) in panels {
        let mut chart = ChartBuilder::on(area)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(32)
            .y_label_area_size(48)
            .build_cartesian_2d(0.5..max_c + 0.5, 0.0..top)
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .x_desc("concurrent agents")
            .draw()
            .map_err(|e| err(&e))?;
        for (i, m) in models.iter().enumerate() {
            let colour = colours[i % colours.len()];
            let pts: Vec<(f64, f64)> = rows
                .iter()
                .filter(|r| r.model == *m)
                .map(|r| (r.concurrency as f64, pick(r)))
                .collect();
            chart
                .draw_series(LineSeries::new(pts.clone(), colour.stroke_width(2)))
                .map_err(|e| err(&e))?
                .label(*m)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], colour));
            chart
                .draw_series(pts.into_iter().map(|p| Circle::new(p, 4, colour.filled())))
                .map_err(|e| err(&e))?;
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| err(&e))?;
    }
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_pid_goes_to_its_model_or_to_every_server_model() {
        let pids: Vec<ServerPid> = ["llama-server=41", "7"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        assert_eq!(ServerPid::of(&pids, "llama-server"), Some(41));
        assert_eq!(ServerPid::of(&pids, "llama-cpp-python"), Some(7));
        assert_eq!(ServerPid::of(&pids[..1], "llama-cpp-python"), None);
        assert!("llama-server=abc".parse::<ServerPid>().is_err());
        assert!("".parse::<ServerPid>().is_err());
    }

    #[test]
    fn names_match_by_their_words_not_their_case_or_article() {
        let labels = vec!["builder pattern".to_string(), "builder".to_string()];
        assert!(name_matches("The Builder Pattern", &labels));
        assert!(name_matches("builder", &labels));
        assert!(!name_matches("newtype", &labels));
        assert!(!name_matches("", &labels));
    }

    #[test]
    fn the_shipped_labelled_set_reads_and_every_chunk_has_labels() {
        let text = include_str!("../../bench/models/extraction.json");
        let set: LabelledSet = serde_json::from_str(text).unwrap();
        assert!(set.chunks.len() >= 12);
        for c in &set.chunks {
            assert!(!c.names.is_empty() && c.text.contains(&c.heading[c.heading.len() - 1]));
        }
        // The workload is the extractor's: every chunk offers terms, among them a label.
        let cfg = Config::default();
        let (schema, work) = workload(&cfg, &set).unwrap();
        assert!(schema["properties"]["findings"].is_object());
        let mut unoffered = Vec::new();
        for ((req, labels), c) in work.iter().zip(&set.chunks) {
            let prompt = &req.messages.last().unwrap().content;
            assert!(prompt.contains(c.text.lines().nth(2).unwrap()), "{prompt}");
            let g = req.grammar.as_deref().unwrap().to_lowercase();
            if !labels.iter().any(|l| g.contains(&l.to_lowercase())) {
                unoffered.push(c.file.as_str());
            }
        }
        // A label the grammar never offers cannot be chosen: nearly every chunk must offer one.
        assert!(
            unoffered.len() * 8 <= set.chunks.len(),
            "no label offered by the grammar of {unoffered:?}"
        );
    }

    #[test]
    fn the_report_and_chart_carry_every_row() {
        let row = |model: &str, c: usize, tps: f64| ModelRow {
            model: model.into(),
            backend: format!("{model}-backend"),
            concurrency: c,
            requests: 16,
            errors: 0,
            wall_s: 10.0,
            ttft_p50_ms: 100.0,
            ttft_p95_ms: 200.0,
            prefill_tps: 150.0,
            decode_tps: 30.0,
            total_tps: tps,
            prompt_tokens: 6400,
            cached_tokens: 1200,
            gen_tokens: 800,
            valid_share: 1.0,
            accuracy: 0.75,
            quarry_peak_rss_mb: 300.0,
            server_peak_rss_mb: None,
        };
        let rows = vec![
            row("embedded", 1, 120.0),
            row("embedded", 3, 170.0),
            row("server", 1, 110.0),
        ];
        let md = markdown(&rows, Path::new("x.json"), 1);
        assert_eq!(
            md.lines().filter(|l| l.starts_with("| embedded")).count(),
            2
        );
        assert!(md.contains("1200 / 6400") && md.contains("75%"));
        let dir = tempfile::tempdir().unwrap();
        let svg = dir.path().join("c.svg");
        chart(&rows, &svg).unwrap();
        let text = std::fs::read_to_string(&svg).unwrap();
        assert!(text.starts_with("<svg") && text.contains("embedded") && text.contains("server"));
        assert!(
            text.matches("<polyline").count() >= 4,
            "a line per model per panel"
        );
    }
}
