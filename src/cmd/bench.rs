//! `quarry bench queue|engine|models|ingest|retrieval|pipeline`: figures, printed (never
//! asserted by tests).

use std::path::Path;
use std::time::Instant;

use anyhow::Result;

use crate::cli::{BenchCommand, ProgressArg, RunArgs};
use crate::config::Config;
use crate::queue::{DbUrl, Queue, StageBill};

pub async fn bench(cfg: &Config, what: BenchCommand) -> Result<u8> {
    match what {
        BenchCommand::Queue {
            jobs,
            workers,
            batch,
            json,
        } => {
            // `--db postgres://…` benchmarks that server (on a database of its own); otherwise
            // a SQLite file in a temp dir.
            let server = match &cfg.db {
                crate::queue::DbUrl::Postgres(url) => Some(url.as_str()),
                crate::queue::DbUrl::Sqlite(_) => None,
            };
            crate::bench::queue(server, jobs, workers, batch, json).await?;
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
                cfg,
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
        BenchCommand::Models {
            models,
            levels,
            chunks,
            rounds,
            server_pid,
            out,
            json,
        } => {
            let b = crate::bench::models::ModelsBench {
                models,
                levels,
                chunks,
                rounds,
                server_pids: server_pid,
                out,
                json,
            };
            crate::bench::models::models(cfg, &b).await?;
            Ok(0)
        }
        BenchCommand::Retrieval {
            questions,
            corpus,
            sizes,
            queries,
            json,
        } => {
            crate::bench::retrieval(cfg, &questions, corpus.as_deref(), &sizes, queries, json)
                .await?;
            Ok(0)
        }
        BenchCommand::Pipeline {
            dir,
            workers,
            keep,
            json,
        } => pipeline(cfg, &dir, workers, keep.as_deref(), json).await,
        BenchCommand::Ingest { files, dir, json } => {
            crate::bench::ingest(cfg, files, dir.as_deref(), json).await?;
            Ok(0)
        }
    }
}

/// What one pipeline run cost: the bill per stage, the corpus it read, the wall time.
#[derive(serde::Serialize)]
struct PipelineFigures {
    dir: String,
    machine: String,
    workers: usize,
    chunks: usize,
    corpus_tokens: i64,
    /// Prompt tokens computed (not served from a KV cache) plus tokens generated.
    computed_tokens: i64,
    /// `computed_tokens / corpus_tokens`.
    ratio: f64,
    wall_seconds: f64,
    exit_code: u8,
    stages: Vec<StageBill>,
}

/// `quarry bench pipeline DIR`: enqueue, run and render in a queue of its own, then the bill.
async fn pipeline(
    cfg: &Config,
    dir: &Path,
    workers: Option<usize>,
    keep: Option<&Path>,
    json: bool,
) -> Result<u8> {
    let tmp = tempfile::tempdir()?;
    let work = keep.unwrap_or(tmp.path()).to_path_buf();
    std::fs::create_dir_all(&work)?;
    let mut cfg = cfg.clone();
    cfg.db = DbUrl::Sqlite(work.join("queue.db"));
    cfg.output = work.join("output");
    let workers = workers.unwrap_or(cfg.workers);
    let started = Instant::now();
    let report = super::enqueue(&cfg, dir).await?;
    let args = RunArgs {
        workers: Some(workers),
        model: None,
        output: None,
        force: true,
        progress: ProgressArg::Plain,
        quiet: true,
    };
    let exit_code = super::run::run(cfg.clone(), args).await?;
    let wall_seconds = started.elapsed().as_secs_f64();
    let queue = Queue::open(&cfg.db, false).await?;
    let stages = queue.bill().await?;
    let corpus_tokens = queue.corpus_tokens().await?;
    queue.close().await;
    let computed_tokens = stages
        .iter()
        .map(|b| b.computed_tokens + b.gen_tokens)
        .sum::<i64>();
    let figures = PipelineFigures {
        dir: dir.display().to_string(),
        machine: crate::bench::machine(),
        workers,
        chunks: report.chunks,
        corpus_tokens,
        computed_tokens,
        ratio: computed_tokens as f64 / corpus_tokens.max(1) as f64,
        wall_seconds,
        exit_code,
        stages,
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&figures)?);
    } else {
        println!(
            "\npipeline on {} ({} chunks, {} corpus tokens), {} workers, {}",
            figures.dir, figures.chunks, figures.corpus_tokens, workers, figures.machine
        );
        super::status::print_bill(&figures.stages);
        println!(
            "computed {} tokens = {:.2}x the corpus; wall {:.1} s (enqueue, run, render)",
            figures.computed_tokens, figures.ratio, figures.wall_seconds
        );
    }
    Ok(exit_code)
}
