//! Pure parts of retrieval: vectors as blobs, the in-memory vector scan, the FTS5 query built
//! from a user's words, and reciprocal-rank fusion. No I/O.
//!
//! The vector scan is exhaustive: one dot product per chunk over L2-normalised f32 vectors.
//! At 384 dimensions that is about 17-20 ms per 100k chunks on one core (see
//! `docs/benchmarks.md`), so no approximate index is needed below a few hundred thousand
//! chunks.

use std::collections::HashMap;

/// The constant of reciprocal-rank fusion (Cormack et al.): a document at rank r (1-based) in
/// a list adds `1 / (RRF_K + r)`.
pub const RRF_K: f64 = 60.0;

/// Question words and function words left out of the full-text query: every chunk holds them,
/// so they only slow BM25 down (an OR over them matches everything) without ranking anything.
const QUERY_STOPWORDS: &[&str] = &[
    "a", "about", "an", "and", "are", "as", "at", "be", "by", "can", "do", "does", "did", "for",
    "from", "how", "i", "if", "in", "into", "is", "it", "its", "me", "my", "of", "on", "or",
    "should", "so", "that", "the", "their", "then", "there", "these", "this", "to", "use", "was",
    "we", "what", "when", "where", "which", "who", "why", "will", "with", "would", "you", "your",
];

/// A vector as stored: little-endian f32s.
pub fn to_blob(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// A stored vector, if it has `dim` values.
pub fn from_blob(b: &[u8], dim: usize) -> Option<Vec<f32>> {
    if b.len() != dim * 4 {
        return None;
    }
    Some(
        b.chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
    )
}

pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Vectors of one model held in one contiguous matrix, scanned exhaustively.
#[derive(Debug, Default)]
pub struct VectorIndex {
    dim: usize,
    ids: Vec<i64>,
    data: Vec<f32>,
}

impl VectorIndex {
    pub fn new(dim: usize) -> Self {
        VectorIndex {
            dim,
            ids: Vec::new(),
            data: Vec::new(),
        }
    }

    /// Adds a vector; one of another dimension is refused (false).
    pub fn push(&mut self, id: i64, v: &[f32]) -> bool {
        if v.len() != self.dim {
            return false;
        }
        self.ids.push(id);
        self.data.extend_from_slice(v);
        true
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The vector at position `i` (in the order pushed).
    pub fn row(&self, i: usize) -> Option<&[f32]> {
        self.data.get(i * self.dim..(i + 1) * self.dim)
    }

    /// The `k` ids nearest `query` by cosine similarity (dot product of unit vectors), best
    /// first; ties by id.
    pub fn search(&self, query: &[f32], k: usize) -> Vec<(i64, f32)> {
        if query.len() != self.dim || self.dim == 0 || k == 0 {
            return Vec::new();
        }
        let mut scored: Vec<(i64, f32)> = self
            .data
            .chunks_exact(self.dim)
            .zip(&self.ids)
            .map(|(row, &id)| (id, dot(row, query)))
            .collect();
        let by_score = |a: &(i64, f32), b: &(i64, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
        if scored.len() > k {
            scored.select_nth_unstable_by(k - 1, by_score);
            scored.truncate(k);
        }
        scored.sort_by(by_score);
        scored
    }
}

/// The words of a query as an FTS5 expression: each word quoted (so no word is read as FTS5
/// syntax), joined by OR so BM25 ranks chunks by how many and how rare the words they hold
/// are. Function words are left out unless nothing else is left. None: no word at all.
pub fn fts_query(query: &str) -> Option<String> {
    let words: Vec<String> = query
        .split(|c: char| !c.is_alphanumeric() && c != '_')
        .filter(|w| !w.is_empty())
        .map(|w| w.to_lowercase())
        .collect();
    let content: Vec<&String> = words
        .iter()
        .filter(|w| !QUERY_STOPWORDS.contains(&w.as_str()))
        .collect();
    let chosen: Vec<&String> = if content.is_empty() {
        words.iter().collect()
    } else {
        content
    };
    let mut seen = Vec::new();
    for w in chosen {
        if !seen.contains(&w) {
            seen.push(w);
        }
    }
    if seen.is_empty() {
        return None;
    }
    Some(
        seen.iter()
            .map(|w| format!("\"{w}\""))
            .collect::<Vec<_>>()
            .join(" OR "),
    )
}

/// Reciprocal-rank fusion of ranked id lists (best first): each id's score is the sum of
/// `1 / (RRF_K + rank)` over the lists holding it. Best first; ties by first appearance.
pub fn fuse(lists: &[Vec<i64>]) -> Vec<(i64, f64)> {
    let mut score: HashMap<i64, (f64, usize)> = HashMap::new();
    let mut order = 0usize;
    for list in lists {
        for (rank, &id) in list.iter().enumerate() {
            let e = score.entry(id).or_insert_with(|| {
                order += 1;
                (0.0, order)
            });
            e.0 += 1.0 / (RRF_K + rank as f64 + 1.0);
        }
    }
    let mut out: Vec<(i64, f64, usize)> =
        score.into_iter().map(|(id, (s, o))| (id, s, o)).collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.2.cmp(&b.2)));
    out.into_iter().map(|(id, s, _)| (id, s)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(v: &[f32]) -> Vec<f32> {
        let n = dot(v, v).sqrt();
        v.iter().map(|x| x / n).collect()
    }

    #[test]
    fn blobs_round_trip_and_refuse_another_dimension() {
        let v = vec![0.5f32, -1.25, 3.0e-7];
        let b = to_blob(&v);
        assert_eq!(b.len(), 12);
        assert_eq!(from_blob(&b, 3), Some(v));
        assert_eq!(from_blob(&b, 4), None);
    }

    #[test]
    fn the_scan_returns_the_nearest_first_and_refuses_other_dimensions() {
        let mut idx = VectorIndex::new(3);
        assert!(idx.push(1, &unit(&[1.0, 0.0, 0.0])));
        assert!(idx.push(2, &unit(&[0.0, 1.0, 0.0])));
        assert!(idx.push(3, &unit(&[1.0, 1.0, 0.0])));
        assert!(!idx.push(4, &[1.0, 0.0]));
        assert_eq!(idx.len(), 3);
        let hits = idx.search(&unit(&[1.0, 0.2, 0.0]), 2);
        assert_eq!(hits.iter().map(|h| h.0).collect::<Vec<_>>(), [1, 3]);
        assert!(hits[0].1 > hits[1].1);
        assert!(idx.search(&[1.0, 0.0], 2).is_empty());
        assert_eq!(idx.search(&unit(&[0.0, 0.0, 1.0]), 10).len(), 3);
    }

    #[test]
    fn the_fts_query_quotes_words_and_drops_question_words() {
        assert_eq!(
            fts_query("When should I take &str instead of String?").as_deref(),
            Some("\"take\" OR \"str\" OR \"instead\" OR \"string\"")
        );
        // FTS5 syntax in the query is only words.
        assert_eq!(
            fts_query("NEAR(a b) OR \"x* -y").as_deref(),
            Some("\"near\" OR \"b\" OR \"x\" OR \"y\"")
        );
        // Only function words: they are all there is to search.
        assert_eq!(
            fts_query("what is it").as_deref(),
            Some("\"what\" OR \"is\" OR \"it\"")
        );
        assert_eq!(fts_query("  ?! "), None);
    }

    #[test]
    fn fusion_rewards_agreement_between_lists() {
        // 7 is second in both lists and beats 1 and 9, each first in one list only.
        let fused = fuse(&[vec![1, 7, 3], vec![9, 7, 4]]);
        assert_eq!(fused[0].0, 7, "{fused:?}");
        assert_eq!(
            fused[1..3].iter().map(|x| x.0).collect::<Vec<_>>(),
            [1, 9],
            "a tie goes to the first seen: {fused:?}"
        );
        assert_eq!(fused.len(), 5);
        let expected = 2.0 / (RRF_K + 2.0);
        assert!((fused[0].1 - expected).abs() < 1e-12);
        // One list alone keeps its order.
        let one = fuse(&[vec![5, 4, 3]]);
        assert_eq!(one.iter().map(|x| x.0).collect::<Vec<_>>(), [5, 4, 3]);
        assert!(fuse(&[]).is_empty());
    }
}
