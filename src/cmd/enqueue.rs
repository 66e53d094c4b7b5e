//! `quarry enqueue DIR`: walk the folder and store it in the queue.

use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Result};

use super::{load_agents, queue_options};
use crate::config::Config;
use crate::ingest::{self, IngestOptions, TokenCounter};
use crate::queue::Queue;

pub use crate::ingest::pipeline::EnqueueReport;

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
    let q = Queue::open_with(
        &cfg.db,
        true,
        crate::queue::system_clock(),
        queue_options(cfg),
    )
    .await?;
    let chunk_roles: Vec<_> = agents.chunk_roles().cloned().collect();
    let report =
        ingest::pipeline::store_folder(&q, &root, walk, &opts, &chunk_roles, counter).await;
    q.close().await;
    Ok(report?)
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

/// The default model's tokenizer, when its file is there and readable.
fn tokenizer(cfg: &Config) -> Option<Arc<dyn TokenCounter>> {
    if cfg.kind_of("default") != crate::config::BackendKind::Llama {
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
