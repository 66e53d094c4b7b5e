//! Retrieval inside the pipeline: the chunks of other files near a pattern. When the planner
//! enqueues a pattern's write job it searches the chunks (hybrid, the same `Retriever` as
//! `quarry search`) with the pattern's name and what its findings say, keeps the best few of
//! other files above a similarity floor, and stores them (`queue::retrieval::set_related`).
//! Whether a page may cite one is a deterministic check, not the similarity: the chunk must
//! name the pattern by its whole name and discuss it (`text::checks::discussed`), so a page
//! never cites a file that is only near in meaning.
//!
//! Must not: write SQL, fail the run (a missing embedding model or a failed search leaves the
//! pipeline without related chunks, said once).

use std::collections::BTreeSet;
use std::sync::Arc;

use super::{answer, Embedder, Mode, Retriever, SearchError};
use crate::ingest::FileKind;
use crate::queue::retrieval::{NewRelated, RetrievedChunk};
use crate::queue::store::FindingRow;
use crate::text::checks::{discussed, normalise_text, pattern_key};

/// Hits read before other files' chunks are picked from them.
const SEARCH_DEPTH: usize = 20;
/// Longest excerpt shown to the writer, in bytes (cut at a word boundary).
pub const MAX_EXCERPT: usize = 240;
/// Longest query, in bytes: a name and a finding's summary and evidence.
const MAX_QUERY: usize = 600;

/// What the planner needs to find related chunks: the embedding model and the floor.
#[derive(Debug)]
pub struct Related {
    pub embedder: Arc<Embedder>,
    /// Texts embedded per batch when the index is caught up.
    pub batch: usize,
    /// Chunks of other files looked up per pattern.
    pub per_pattern: usize,
    /// Least cosine similarity of a related chunk to the pattern's query.
    pub min_similarity: f32,
    /// Where embedding progress goes (the run's live view), if anywhere.
    pub events: Option<tokio::sync::mpsc::Sender<crate::progress::Event>>,
}

impl Related {
    /// Tells the live view how far embedding is (never waits for it).
    pub fn progress(&self, done: usize, total: usize) {
        if let Some(tx) = &self.events {
            let _ = tx.try_send(crate::progress::Event::Embedding { done, total });
        }
    }
}

/// The query a pattern is searched with: its name, then what its first findings say.
pub fn query_of(name: &str, findings: &[&FindingRow]) -> String {
    let mut q = name.trim().to_string();
    for f in findings.iter().take(2) {
        for part in [&f.summary, &f.evidence] {
            let part = part.split_whitespace().collect::<Vec<_>>().join(" ");
            if q.len() + part.len() + 2 > MAX_QUERY {
                return q;
            }
            if !part.is_empty() && !q.contains(&part) {
                if !q.ends_with(['.', '!', '?']) {
                    q.push('.');
                }
                q.push(' ');
                q.push_str(&part);
            }
        }
    }
    q
}

/// The kind of file a retrieved chunk comes from, by its extension (plain text if unknown).
fn kind_of(chunk: &RetrievedChunk) -> FileKind {
    std::path::Path::new(&chunk.rel_path)
        .extension()
        .and_then(|e| FileKind::from_extension(&e.to_string_lossy()))
        .unwrap_or(FileKind::Text)
}

/// True when `text` holds the pattern's whole name (its key: "the Builder pattern" is
/// "builder"), as words, a plural too.
pub fn names(name: &str, text: &str) -> bool {
    let key = pattern_key(name);
    if key.trim().is_empty() {
        return false;
    }
    let hay = format!(" {} ", normalise_text(text));
    ["", "s", "es"]
        .iter()
        .any(|suffix| hay.contains(&format!(" {key}{suffix} ")))
}

/// Cut at a word boundary to at most `max` bytes, with an ellipsis when cut.
fn cut(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    let head = &s[..end];
    let head = head.rsplit_once(' ').map_or(head, |(h, _)| h);
    format!("{}…", head.trim_end())
}

/// A retrieved chunk as related to the pattern `name`: cited when it names the pattern in a
/// sentence and discusses it (heading, introduced term, or two lines); the excerpt is that
/// sentence with its lines, else the chunk's first sentence and all its lines.
pub fn judge(name: &str, chunk: &RetrievedChunk, similarity: f32) -> NewRelated {
    let sentences = answer::sentences_of(chunk);
    let kind = kind_of(chunk);
    let naming = sentences.iter().find(|(s, _, _)| names(name, s));
    let about = naming.is_some()
        && discussed(name, &chunk.heading_path, &chunk.text, kind.is_prose()).is_ok();
    match naming {
        Some((s, a, b)) if about => NewRelated {
            chunk_id: chunk.id,
            similarity,
            cited: true,
            line_start: *a,
            line_end: *b,
            excerpt: cut(s, MAX_EXCERPT),
        },
        _ => NewRelated {
            chunk_id: chunk.id,
            similarity,
            cited: false,
            line_start: chunk.line_start,
            line_end: chunk.line_end,
            excerpt: sentences
                .first()
                .map(|(s, _, _)| cut(s, MAX_EXCERPT))
                .unwrap_or_default(),
        },
    }
}

/// The `k` chunks nearest the pattern `name` (searched with `query`) that are not in
/// `own_files` (relative paths) and at least `min_similarity` near, best first, each judged
/// (`judge`).
pub async fn related_chunks(
    retriever: &Retriever<'_>,
    name: &str,
    query: &str,
    own_files: &BTreeSet<String>,
    k: usize,
    min_similarity: f32,
) -> Result<Vec<NewRelated>, SearchError> {
    if k == 0 {
        return Ok(Vec::new());
    }
    // A query the embedding model cannot read whole is cut to the name alone.
    let query = match super::check_query(retriever.embedder(), query) {
        Ok(()) => query,
        Err(SearchError::QueryTooLong { .. }) => name,
        Err(e) => return Err(e),
    };
    let hits = retriever
        .search(query, SEARCH_DEPTH.max(k), Mode::Hybrid)
        .await?;
    Ok(hits
        .iter()
        .filter(|h| !own_files.contains(&h.chunk.rel_path))
        .filter_map(|h| {
            let s = h.similarity.filter(|s| *s >= min_similarity)?;
            let mut r = judge(name, &h.chunk, s);
            // A sentence that links to the pattern's own file ("see the [default
            // idiom](default.md)") points the reader there: the page is that file's, so the
            // pointer teaches it nothing.
            r.cited &= !points_into(&h.chunk, (r.line_start, r.line_end), own_files);
            Some(r)
        })
        .take(k)
        .collect())
}

/// Whether the lines `lines` of `chunk` link to one of `files` (paths relative to the
/// folder, as the chunk's own).
fn points_into(chunk: &RetrievedChunk, lines: (i64, i64), files: &BTreeSet<String>) -> bool {
    let skip = usize::try_from(lines.0 - chunk.line_start).unwrap_or(0);
    let take = usize::try_from(lines.1 - lines.0 + 1).unwrap_or(0);
    chunk
        .text
        .lines()
        .skip(skip)
        .take(take)
        .flat_map(crate::text::quotes::link_targets)
        .filter_map(|t| resolve(&chunk.rel_path, t))
        .any(|path| files.contains(&path))
}

/// The folder-relative path a link `target` written in the file `from` leads to; `None` for
/// a URL, an anchor in the same file or a path that leaves the folder.
fn resolve(from: &str, target: &str) -> Option<String> {
    let path = target.split_whitespace().next()?; // `[x](a.md "title")`
    let path = path.split(['#', '?']).next()?;
    if path.is_empty() || path.contains(':') || path.starts_with('/') {
        return None;
    }
    let mut parts: Vec<&str> = from.split('/').collect();
    parts.pop(); // the file itself
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            s => parts.push(s),
        }
    }
    Some(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(rel: &str, heading: &[&str], text: &str) -> RetrievedChunk {
        RetrievedChunk {
            id: 7,
            root: "/n".into(),
            rel_path: rel.into(),
            line_start: 10,
            line_end: 10 + text.lines().count() as i64,
            heading_path: heading.iter().map(|h| h.to_string()).collect(),
            text: text.into(),
        }
    }

    #[test]
    fn a_link_target_is_read_from_the_file_it_is_written_in() {
        assert_eq!(
            resolve("idioms/ctor.md", "default.md").as_deref(),
            Some("idioms/default.md")
        );
        assert_eq!(
            resolve("idioms/ctor.md", "../patterns/builder.md#usage").as_deref(),
            Some("patterns/builder.md")
        );
        assert_eq!(resolve("a.md", "./b.md \"B\"").as_deref(), Some("b.md"));
        for away in ["https://x.org/a.md", "#usage", "../../up.md", "/abs.md"] {
            assert_eq!(resolve("docs/a.md", away), None, "{away}");
        }
    }

    #[test]
    fn a_sentence_that_points_to_the_pages_own_file_is_not_cited() {
        let pointer = chunk(
            "idioms/ctor.md",
            &["Constructors", "See also"],
            "## See also\n\n- The [default idiom](default.md) for a more in-depth description of\n  the `Default` trait.\n",
        );
        let own: BTreeSet<String> = ["idioms/default.md".to_string()].into();
        assert!(points_into(&pointer, (12, 13), &own));
        assert!(!points_into(
            &pointer,
            (12, 13),
            &["idioms/other.md".to_string()].into()
        ));
        assert!(
            !points_into(&pointer, (10, 10), &own),
            "the heading line links nowhere"
        );
    }

    #[test]
    fn a_name_is_found_whole_and_in_the_plural() {
        assert!(names(
            "The Builder pattern",
            "Use builders for many options."
        ));
        assert!(names("Newtype", "A newtype wraps a type."));
        assert!(names("RAII guards", "An RAII guard releases the lock."));
        assert!(
            !names("RAII guards", "A guard releases the lock."),
            "half a name"
        );
        assert!(
            !names("Builder", "The rebuilder runs."),
            "inside another word"
        );
        assert!(!names("", "anything"));
    }

    #[test]
    fn a_chunk_is_cited_only_when_it_names_and_discusses_the_pattern() {
        let about = chunk(
            "b.md",
            &["Notes", "Builders"],
            "# Builders\n\nA builder collects optional settings.\nThe builder then builds the value.\n",
        );
        let r = judge("Builder", &about, 0.6);
        assert!(r.cited, "{r:?}");
        assert_eq!(
            (r.line_start, r.line_end),
            (12, 12),
            "the naming sentence's line"
        );
        assert_eq!(r.excerpt, "A builder collects optional settings.");
        // Near in meaning, but the name is not there: related, never cited.
        let near = chunk(
            "c.md",
            &["Options"],
            "Collect the optional settings first, then construct the value once.\n",
        );
        let r = judge("Builder", &near, 0.7);
        assert!(!r.cited, "{r:?}");
        assert_eq!((r.line_start, r.line_end), (10, 11));
        // Named once in passing under another heading: not discussed there.
        let passing = chunk(
            "d.md",
            &["Iterators"],
            "Iterators are lazy and compose well with adapters.\nLike a builder, an adapter chain reads well.\n",
        );
        assert!(!judge("Builder", &passing, 0.5).cited);
    }

    #[test]
    fn the_query_is_the_name_then_what_the_findings_say_within_bounds() {
        let f = |summary: &str, evidence: &str| FindingRow {
            id: 1,
            job_id: 1,
            chunk_id: 1,
            source_id: 1,
            rel_path: "a.md".into(),
            pattern: "Builder".into(),
            pattern_key: "builder".into(),
            category: "idiom".into(),
            summary: summary.into(),
            evidence: evidence.into(),
            code: None,
            line_start: 1,
            line_end: 2,
            status: crate::queue::FindingStatus::Accepted,
            reason: None,
        };
        let a = f("Collects settings.", "A builder collects options.");
        assert_eq!(
            query_of("Builder", &[&a]),
            "Builder. Collects settings. A builder collects options."
        );
        let long = f(&"word ".repeat(200), "x");
        assert!(query_of("Builder", &[&long]).len() <= MAX_QUERY);
        assert_eq!(cut("one two three", 8), "one two…");
    }
}
