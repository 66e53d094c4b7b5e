//! `quarry bench queue|engine|models|ingest|retrieval`: figures, printed (never asserted by tests).

use anyhow::Result;

use crate::cli::BenchCommand;
use crate::config::Config;

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
                server_pid,
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
        BenchCommand::Ingest { files, dir, json } => {
            crate::bench::ingest(cfg, files, dir.as_deref(), json).await?;
            Ok(0)
        }
    }
}
