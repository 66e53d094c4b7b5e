//! Retrieval over the ingested chunks: BM25 (SQLite FTS5) and sentence-embedding vectors
//! (an in-process BERT, `embed`), fused by reciprocal rank (`index`), and `answer`, which
//! asks the chat model to pick the retrieved sentences that answer a question and checks
//! every citation it makes.
//!
//! Owns: the index's upkeep (FTS rows and vectors are caught up on first use, in batches, with
//! progress) and the ranking. Must not: write SQL (that is `queue::retrieval`), draw on the
//! terminal (callers get progress through a callback), or fetch anything from the network.

pub mod answer;
pub mod embed;
pub mod index;
pub mod pages;
pub mod related;

use std::collections::HashMap;

pub use embed::{EmbedError, Embedder};
pub use index::VectorIndex;

use crate::queue::retrieval::RetrievedChunk;
use crate::queue::{Queue, QueueError};

/// How many of each list's best enter the fusion.
const FUSION_DEPTH: usize = 50;
/// Texts embedded (and stored in one transaction) between two progress reports.
const STORE_EVERY: usize = 256;

/// Why a search cannot run. Each says what to do.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error("the query is empty: say what to look for, e.g. quarry search \"borrowing a String\"")]
    EmptyQuery,
    #[error("the query is {tokens} tokens long, but the embedding model reads at most {limit}: shorten it")]
    QueryTooLong { tokens: usize, limit: usize },
    #[error("the database {db} holds no chunks to search: run `quarry enqueue DIR` first")]
    NoChunks { db: crate::queue::DbUrl },
    #[error("{missing} of {total} chunks in {db} have no {model} vector yet: run `quarry index` (search and ask fill them themselves without --no-index)")]
    NotIndexed {
        db: crate::queue::DbUrl,
        model: String,
        missing: i64,
        total: i64,
    },
    #[error(transparent)]
    Embed(#[from] EmbedError),
    #[error(transparent)]
    Queue(#[from] QueueError),
}

pub type Result<T, E = SearchError> = std::result::Result<T, E>;

/// Which ranking a search uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// BM25 over the chunks' words.
    Text,
    /// Cosine similarity of sentence embeddings.
    Vector,
    /// Both, fused by reciprocal rank.
    Hybrid,
}

/// What catching the index up did.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct IndexReport {
    pub fts_added: u64,
    pub vectors_dropped: u64,
    pub embedded: usize,
    pub chunks: i64,
    pub seconds: f64,
}

impl std::fmt::Display for IndexReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} chunks indexed; {} newly embedded",
            self.chunks, self.embedded
        )?;
        if self.embedded > 0 {
            write!(
                f,
                " in {:.1} s ({:.1} chunks/s)",
                self.seconds,
                self.embedded as f64 / self.seconds.max(1e-9)
            )?;
        }
        if self.vectors_dropped > 0 {
            write!(
                f,
                "; {} vectors of another model dropped",
                self.vectors_dropped
            )?;
        }
        Ok(())
    }
}

/// The text a chunk is embedded as: its headings, then its text.
pub fn embedding_text(heading_path_json: &str, text: &str) -> String {
    let headings: Vec<String> = serde_json::from_str(heading_path_json).unwrap_or_default();
    if headings.is_empty() {
        text.to_string()
    } else {
        format!("{}\n{text}", headings.join(" > "))
    }
}

/// Catches the index up: new chunks into FTS, vectors of another model dropped, every
/// current chunk without a vector embedded (in batches sorted by length, stored every
/// `STORE_EVERY` so an interrupted run keeps what it did). `progress(done, total)`.
pub async fn update_index(
    queue: &Queue,
    embedder: &Embedder,
    batch: usize,
    mut progress: impl FnMut(usize, usize),
) -> Result<IndexReport> {
    let start = std::time::Instant::now();
    let fts_added = queue.sync_fts().await?;
    let vectors_dropped = queue
        .drop_other_vectors(embedder.name(), embedder.dim())
        .await?;
    let missing = queue.chunks_without_vector(embedder.name()).await?;
    let total = missing.len();
    let mut done = 0;
    for group in missing.chunks(STORE_EVERY) {
        let texts: Vec<String> = group.iter().map(|(_, h, t)| embedding_text(h, t)).collect();
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let vectors = embedder.embed_all(&refs, batch, |n| progress(done + n, total))?;
        let rows: Vec<(i64, Vec<u8>)> = group
            .iter()
            .zip(&vectors)
            .map(|((id, _, _), v)| (*id, index::to_blob(v)))
            .collect();
        queue
            .store_vectors(embedder.name(), embedder.dim(), &rows)
            .await?;
        done += group.len();
    }
    let (chunks, _) = queue.vector_coverage(embedder.name()).await?;
    Ok(IndexReport {
        fts_added,
        vectors_dropped,
        embedded: total,
        chunks,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// One retrieved chunk with the scores that ranked it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Hit {
    pub chunk: RetrievedChunk,
    /// The fused score (reciprocal rank), or the one list's score in a single mode.
    pub score: f64,
    /// 1-based rank in the BM25 list, if there.
    pub text_rank: Option<usize>,
    pub bm25: Option<f64>,
    /// 1-based rank in the vector list, if there.
    pub vector_rank: Option<usize>,
    /// Cosine similarity to the query (always known when the chunk has a vector).
    pub similarity: Option<f32>,
}

/// A search over one database with one embedding model; the vectors are held in memory.
pub struct Retriever<'a> {
    queue: &'a Queue,
    embedder: &'a Embedder,
    vectors: VectorIndex,
    position: HashMap<i64, usize>,
}

impl<'a> Retriever<'a> {
    /// Opens the index: with `fill`, catches it up first (see `update_index`); without, an
    /// index that lacks vectors is an error saying which command fills them.
    pub async fn open(
        queue: &'a Queue,
        embedder: &'a Embedder,
        fill: bool,
        batch: usize,
        progress: impl FnMut(usize, usize),
    ) -> Result<Retriever<'a>> {
        if fill {
            update_index(queue, embedder, batch, progress).await?;
        }
        let (total, covered) = queue.vector_coverage(embedder.name()).await?;
        if total == 0 {
            return Err(SearchError::NoChunks {
                db: queue.db().clone(),
            });
        }
        if covered < total {
            return Err(SearchError::NotIndexed {
                db: queue.db().clone(),
                model: embedder.name().to_string(),
                missing: total - covered,
                total,
            });
        }
        let mut vectors = VectorIndex::new(embedder.dim());
        let mut position = HashMap::new();
        for (id, blob) in queue.vectors(embedder.name(), embedder.dim()).await? {
            if let Some(v) = index::from_blob(&blob, embedder.dim()) {
                position.insert(id, vectors.len());
                vectors.push(id, &v);
            }
        }
        Ok(Retriever {
            queue,
            embedder,
            vectors,
            position,
        })
    }

    pub fn embedder(&self) -> &Embedder {
        self.embedder
    }

    pub fn len(&self) -> usize {
        self.vectors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.vectors.is_empty()
    }

    /// The query's vector, after the checks every query passes: not empty, not longer than
    /// the embedding model reads.
    pub fn embed_query(&self, query: &str) -> Result<Vec<f32>> {
        check_query(self.embedder, query)?;
        Ok(self
            .embedder
            .embed_batch(&[query.trim()])?
            .pop()
            .unwrap_or_default())
    }

    /// The `k` best chunks for `query`.
    pub async fn search(&self, query: &str, k: usize, mode: Mode) -> Result<Vec<Hit>> {
        let qv = self.embed_query(query)?;
        let depth = FUSION_DEPTH.max(k);
        let text = match (mode, index::fts_query(query)) {
            (Mode::Text | Mode::Hybrid, Some(expr)) => self.queue.fts_search(&expr, depth).await?,
            _ => Vec::new(),
        };
        let vector = match mode {
            Mode::Vector | Mode::Hybrid => self.vectors.search(&qv, depth),
            Mode::Text => Vec::new(),
        };
        let ranked: Vec<(i64, f64)> = match mode {
            Mode::Text => text.clone(),
            Mode::Vector => vector.iter().map(|&(id, s)| (id, s as f64)).collect(),
            Mode::Hybrid => index::fuse(&[
                text.iter().map(|h| h.0).collect(),
                vector.iter().map(|h| h.0).collect(),
            ]),
        };
        let ranked: Vec<(i64, f64)> = ranked.into_iter().take(k).collect();
        let ids: Vec<i64> = ranked.iter().map(|r| r.0).collect();
        let chunks = self.queue.retrieved_chunks(&ids).await?;
        let mut hits = Vec::with_capacity(chunks.len());
        for (chunk, &(id, score)) in chunks.into_iter().zip(&ranked) {
            let text_pos = text.iter().position(|h| h.0 == id);
            hits.push(Hit {
                text_rank: text_pos.map(|p| p + 1),
                bm25: text_pos.map(|p| text[p].1),
                vector_rank: vector.iter().position(|h| h.0 == id).map(|p| p + 1),
                similarity: self.similarity(id, &qv),
                score,
                chunk,
            });
        }
        Ok(hits)
    }

    /// The chunk nearest `query_vector` and its cosine similarity.
    pub fn nearest(&self, query_vector: &[f32]) -> Option<(i64, f32)> {
        self.vectors.search(query_vector, 1).pop()
    }

    /// Cosine similarity of a chunk's vector to `query_vector`.
    pub fn similarity(&self, id: i64, query_vector: &[f32]) -> Option<f32> {
        self.position
            .get(&id)
            .and_then(|&p| self.vectors.row(p))
            .map(|row| index::dot(row, query_vector))
    }
}

/// The checks every query passes: not empty, not longer than the embedding model reads.
pub fn check_query(embedder: &Embedder, query: &str) -> Result<()> {
    if query.trim().is_empty() {
        return Err(SearchError::EmptyQuery);
    }
    let tokens = embedder.count_tokens(query.trim());
    if tokens > embed::MAX_TOKENS {
        return Err(SearchError::QueryTooLong {
            tokens,
            limit: embed::MAX_TOKENS,
        });
    }
    Ok(())
}

#[cfg(test)]
mod pipeline_tests;
#[cfg(test)]
mod tests;
