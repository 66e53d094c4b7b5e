//! `quarry run` (the worker pool with its live view, then the knowledge base) and `quarry
//! render` (the knowledge base again from the database).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use tokio::sync::{mpsc, watch};

use super::{load_agents, open_queue, progress_mode, set_default_model};
use crate::agent::Agents;
use crate::cli::RunArgs;
use crate::config::Config;
use crate::engine::{self, RunContext};
use crate::kb;
use crate::progress;
use crate::queue::{JobState, Queue};

pub use crate::llm::factory::start_backends;

pub async fn run(mut cfg: Config, args: RunArgs) -> Result<u8> {
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
    let queue = open_queue(&cfg).await?;
    let templates = kb::Templates::load(Some(&cfg.templates_dir))?;
    let backends = start_backends(&cfg, &agents, cfg.workers).await?;
    // Retrieval in the pipeline (related chunks for the writer, "See also"): the embedding
    // model is loaded now; without it, or on PostgreSQL, the run goes on without (said once).
    let embedder = pipeline_embedder(&cfg);
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
    let related = embedder
        .as_ref()
        .filter(|_| cfg.search.related > 0)
        .map(|e| {
            Arc::new(crate::search::related::Related {
                embedder: e.clone(),
                batch: cfg.search.batch,
                per_pattern: cfg.search.related,
                min_similarity: cfg.search.related_min_similarity,
                events: Some(events_tx.clone()),
            })
        });
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
        related,
    };
    let summary = engine::run(ctx, shutdown_rx).await;
    let _ = stop_tx.send(true);
    let _ = view.await;
    signals.abort();
    let summary = summary?;
    // The knowledge base and the summary are read from the database: again, if its server
    // is restarting.
    let (r, counts, kb, bill) = super::retry_transient(|| async {
        let r = render_with(
            &queue,
            &agents,
            &templates,
            &cfg.output,
            args.force,
            see_also(&cfg, embedder.as_deref()),
        )
        .await?;
        let counts = queue.counts().await?;
        let kb = kb::Kb::load(&queue, &kb::Stages::default()).await?;
        let bill = queue.bill().await?;
        Ok((r, counts, kb, bill))
    })
    .await?;
    let dead: i64 = counts
        .iter()
        .filter(|c| c.state == JobState::Dead)
        .map(|c| c.jobs)
        .sum();
    let refused = kb
        .sources
        .iter()
        .filter(|s| s.status == crate::queue::SourceStatus::Refused)
        .count();
    let accepted = kb
        .findings
        .iter()
        .filter(|f| f.status == crate::queue::FindingStatus::Accepted)
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
    super::status::print_bill(&bill);
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

/// This process's name in the leases it takes: `host:pid`. The host part must tell the
/// machines sharing a queue apart: a run takes back at once the leases of dead pids on its
/// own host, so two machines of one name would take each other's.
fn owner_id() -> String {
    let host = ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|p| {
            let h = std::fs::read_to_string(p).ok()?;
            let h = h.trim();
            (!h.is_empty()).then(|| h.to_string())
        })
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()))
        .unwrap_or_else(|| "localhost".into());
    format!("{host}:{}", std::process::id())
}

/// The embedding model for retrieval inside the pipeline, when the queue is SQLite's and the
/// model loads; otherwise None, with one warning saying what the pages lack and why.
pub fn pipeline_embedder(cfg: &Config) -> Option<Arc<crate::search::Embedder>> {
    if !matches!(cfg.db, crate::queue::DbUrl::Sqlite(_)) {
        tracing::info!("retrieval runs on SQLite only: pages are written without related passages from other files and without \"See also\"");
        return None;
    }
    match crate::search::Embedder::load(&cfg.search.embedding_model, cfg.search.dimensions) {
        Ok(e) => Some(Arc::new(e)),
        Err(e) => {
            tracing::warn!("pages are written without related passages from other files and without \"See also\": {e}");
            None
        }
    }
}

/// "See also" with `embedder` and the configured floor.
pub fn see_also<'a>(
    cfg: &Config,
    embedder: Option<&'a crate::search::Embedder>,
) -> Option<crate::search::pages::SeeAlso<'a>> {
    embedder.map(|embedder| crate::search::pages::SeeAlso {
        embedder,
        batch: cfg.search.batch,
        k: crate::search::pages::SEE_ALSO,
        min_similarity: cfg.search.see_also_min_similarity,
    })
}

/// Renders into `output` with the built-in templates, refusing a non-empty folder quarry
/// did not create.
pub async fn render(queue: &Queue, agents: &Agents, output: &Path) -> Result<kb::WriteReport> {
    render_with(
        queue,
        agents,
        &kb::Templates::builtin(),
        output,
        false,
        None,
    )
    .await
}

/// Renders into `output`; `force` writes into a non-empty folder quarry did not create. With
/// `see_also`, every pattern page is embedded (when it changed) and links its nearest pages;
/// a failure there leaves the pages without the links, said once.
pub async fn render_with(
    queue: &Queue,
    agents: &Agents,
    templates: &kb::Templates,
    output: &Path,
    force: bool,
    see_also: Option<crate::search::pages::SeeAlso<'_>>,
) -> Result<kb::WriteReport> {
    let mut kb = kb::Kb::load(queue, &kb::Stages::of(agents)).await?;
    if let Some(see) = see_also {
        let paths = kb::Paths::new(&kb.sources, kb.patterns.iter().map(|(p, _, _)| p));
        let linked = async {
            crate::search::pages::update(queue, &see, &kb, &paths).await?;
            crate::search::pages::see_also(queue, &see, &kb).await
        }
        .await;
        match linked {
            Ok(links) => kb.see_also = links,
            Err(e) => tracing::warn!("pages are rendered without \"See also\": {e}"),
        }
    }
    let pages = kb::render(&kb, templates)?;
    Ok(kb::write_pages(output, &pages, force)?)
}
