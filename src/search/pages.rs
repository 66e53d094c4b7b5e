//! Pattern pages in the embedding space: each page is embedded at render (its title and what
//! it says; an unchanged page is not embedded again), its vector stored with the model's name
//! and dimension like a chunk's; "See also" on a page links the nearest other pages, and
//! `quarry search` returns pages beside chunks.
//!
//! Must not: write SQL (that is `queue::retrieval`), render (the `Kb` gets the links, `kb`
//! renders them).

use std::collections::{BTreeMap, HashMap};

use sha2::{Digest, Sha256};

use super::index::{self, VectorIndex};
use super::{Embedder, Result};
use crate::kb::{Kb, Paths};
use crate::queue::retrieval::PageVector;
use crate::queue::Queue;

/// What "See also" needs: the embedding model, how many links, and the floor.
#[derive(Clone, Copy, Debug)]
pub struct SeeAlso<'a> {
    pub embedder: &'a Embedder,
    pub batch: usize,
    /// Links per page at most.
    pub k: usize,
    /// Least cosine similarity of a linked page.
    pub min_similarity: f32,
}

/// Links per page at most.
pub const SEE_ALSO: usize = 3;

/// A page found by a search.
#[derive(Clone, Debug, serde::Serialize)]
pub struct PageHit {
    pub pattern_id: i64,
    /// The page's path in the output folder.
    pub path: String,
    pub title: String,
    pub similarity: f32,
}

/// The text a pattern page is embedded as: its name, the writer's summary when there is one,
/// then what its first findings say.
pub fn page_text(
    name: &str,
    findings: &[crate::queue::store::FindingRow],
    reply: &Option<serde_json::Value>,
) -> String {
    let own: Vec<&crate::queue::store::FindingRow> = findings.iter().collect();
    let mut text = super::related::query_of(name, &own);
    if let Some(summary) = reply
        .as_ref()
        .and_then(|r| r.get("summary"))
        .and_then(|s| s.as_str())
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        text.push(' ');
        text.push_str(summary);
    }
    text
}

fn hash(text: &str) -> String {
    hex::encode(&Sha256::digest(text.as_bytes())[..8])
}

/// Embeds the pages of `kb` whose text (or path, or title) changed since they were stored,
/// and drops the vectors of pages that are gone. Returns how many were embedded.
pub async fn update(queue: &Queue, see: &SeeAlso<'_>, kb: &Kb, paths: &Paths) -> Result<usize> {
    let e = see.embedder;
    let stored: HashMap<i64, PageVector> = queue
        .page_vectors(e.name(), e.dim())
        .await?
        .into_iter()
        .map(|v| (v.pattern_id, v))
        .collect();
    let mut todo: Vec<(PageVector, String)> = Vec::new();
    for (p, findings, reply) in &kb.patterns {
        let text = page_text(&p.name, findings, reply);
        let (h, path) = (hash(&text), paths.pattern(p));
        let same = stored
            .get(&p.id)
            .is_some_and(|v| v.text_hash == h && v.path == path && v.title == p.name);
        if !same {
            let page = PageVector {
                pattern_id: p.id,
                path,
                title: p.name.clone(),
                text_hash: h,
                vector: Vec::new(),
            };
            todo.push((page, text));
        }
    }
    let texts: Vec<&str> = todo.iter().map(|(_, t)| t.as_str()).collect();
    let vectors = e.embed_all(&texts, see.batch, |_| {})?;
    let pages: Vec<PageVector> = todo
        .into_iter()
        .zip(vectors)
        .map(|((mut page, _), v)| {
            page.vector = index::to_blob(&v);
            page
        })
        .collect();
    let keep: Vec<i64> = kb.patterns.iter().map(|(p, _, _)| p.id).collect();
    queue
        .store_page_vectors(e.name(), e.dim(), &keep, &pages)
        .await?;
    Ok(pages.len())
}

/// The stored page vectors as an index, with each page's stored row.
async fn load(queue: &Queue, e: &Embedder) -> Result<(VectorIndex, HashMap<i64, PageVector>)> {
    let mut idx = VectorIndex::new(e.dim());
    let mut rows = HashMap::new();
    for v in queue.page_vectors(e.name(), e.dim()).await? {
        if let Some(x) = index::from_blob(&v.vector, e.dim()) {
            idx.push(v.pattern_id, &x);
            rows.insert(v.pattern_id, v);
        }
    }
    Ok((idx, rows))
}

/// Per page of `kb`: the nearest other pages (at most `k`, each at least `min_similarity`
/// near), nearest first. Pages without a stored vector have none.
pub async fn see_also(
    queue: &Queue,
    see: &SeeAlso<'_>,
    kb: &Kb,
) -> Result<BTreeMap<i64, Vec<i64>>> {
    let (idx, rows) = load(queue, see.embedder).await?;
    let dim = see.embedder.dim();
    let mut out = BTreeMap::new();
    for (p, _, _) in &kb.patterns {
        let Some(v) = rows
            .get(&p.id)
            .and_then(|r| index::from_blob(&r.vector, dim))
        else {
            continue;
        };
        let near: Vec<i64> = idx
            .search(&v, see.k + 1)
            .into_iter()
            .filter(|&(id, s)| id != p.id && s >= see.min_similarity)
            .map(|(id, _)| id)
            .take(see.k)
            .collect();
        if !near.is_empty() {
            out.insert(p.id, near);
        }
    }
    Ok(out)
}

/// The `k` pages nearest `query_vector`, at least `min_similarity` near, nearest first.
pub async fn search(
    queue: &Queue,
    e: &Embedder,
    query_vector: &[f32],
    k: usize,
    min_similarity: f32,
) -> Result<Vec<PageHit>> {
    let (idx, rows) = load(queue, e).await?;
    Ok(idx
        .search(query_vector, k)
        .into_iter()
        .filter(|&(_, s)| s >= min_similarity)
        .filter_map(|(id, s)| {
            let r = rows.get(&id)?;
            Some(PageHit {
                pattern_id: id,
                path: r.path.clone(),
                title: r.title.clone(),
                similarity: s,
            })
        })
        .collect())
}
