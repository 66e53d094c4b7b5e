//! The index's upkeep and the three rankings on a real SQLite file, with the tiny random
//! BERT of `embed::tests` (its vectors mean nothing; BM25 and the bookkeeping are real).

use super::*;
use crate::queue::store::{self, NewChunk, NewSource};
use crate::queue::SourceStatus;

async fn seed(q: &Queue, rel: &str, texts: &[&str]) -> Vec<i64> {
    let mut tx = q.begin().await.unwrap();
    let src = NewSource {
        root: "/notes".into(),
        rel_path: rel.into(),
        kind: Some("markdown".into()),
        status: SourceStatus::Active,
        content_hash: Some(format!("{rel}{}", texts.len())),
        ..Default::default()
    };
    let (sid, _) = store::insert_source(&mut tx, &src, q.now()).await.unwrap();
    let chunks: Vec<NewChunk> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| NewChunk {
            ordinal: i as i64,
            line_start: i as i64 * 10 + 1,
            line_end: i as i64 * 10 + 5,
            heading_path: vec![format!("Section {i}")],
            text: t.to_string(),
            ..Default::default()
        })
        .collect();
    let pairs: Vec<(i64, &NewChunk)> = chunks.iter().map(|c| (sid, c)).collect();
    let ids = store::insert_chunks(&mut tx, &pairs).await.unwrap();
    tx.commit().await.unwrap();
    ids
}

async fn db() -> (tempfile::TempDir, Queue) {
    let dir = tempfile::tempdir().unwrap();
    let q = Queue::open(&dir.path().join("q.db"), true).await.unwrap();
    (dir, q)
}

#[tokio::test]
async fn bm25_ranks_the_chunk_holding_the_rare_words_and_skips_old_versions() {
    let (_d, q) = db().await;
    let ids = seed(
        &q,
        "a.md",
        &[
            "The guard releases the lock when it is dropped.",
            "A builder collects optional fields before build.",
            "Strings and slices: take a str slice when you only read.",
        ],
    )
    .await;
    assert_eq!(q.sync_fts().await.unwrap(), 3);
    assert_eq!(q.sync_fts().await.unwrap(), 0, "a second sync adds nothing");
    let hits = q
        .fts_search(&index::fts_query("when is the lock released?").unwrap(), 10)
        .await
        .unwrap();
    assert_eq!(hits.first().map(|h| h.0), Some(ids[0]), "{hits:?}");
    assert!(hits.iter().all(|h| h.1 > 0.0), "higher is better: {hits:?}");
    // Porter stemming: "builders" finds "builder".
    let hits = q.fts_search("\"builders\"", 10).await.unwrap();
    assert_eq!(hits.iter().map(|h| h.0).collect::<Vec<_>>(), [ids[1]]);
    // A new version of the file supersedes the old chunks: they are no longer found.
    let new = seed(
        &q,
        "a.md",
        &["Nothing about locks any more, only builders."],
    )
    .await;
    assert_eq!(q.sync_fts().await.unwrap(), 1);
    let hits = q.fts_search("\"guard\"", 10).await.unwrap();
    assert!(hits.is_empty(), "{hits:?}");
    let hits = q.fts_search("\"builders\"", 10).await.unwrap();
    assert_eq!(hits.iter().map(|h| h.0).collect::<Vec<_>>(), [new[0]]);
}

#[tokio::test]
async fn the_index_fills_once_and_a_changed_model_embeds_again() {
    let (_d, q) = db().await;
    let (e, _) = embed::tests::tiny();
    // An empty database: nothing to search, and it says which command fills it.
    let err = Retriever::open(&q, &e, true, 4, |_, _| {})
        .await
        .err()
        .unwrap();
    assert!(matches!(err, SearchError::NoChunks { .. }), "{err}");
    assert!(err.to_string().contains("quarry enqueue"), "{err}");

    seed(
        &q,
        "a.md",
        &["the guard drops", "the builder pattern", "a string slice"],
    )
    .await;
    let err = Retriever::open(&q, &e, false, 4, |_, _| {})
        .await
        .err()
        .unwrap();
    assert!(
        matches!(
            err,
            SearchError::NotIndexed {
                missing: 3,
                total: 3,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("quarry index"), "{err}");

    let mut seen = Vec::new();
    let r = update_index(&q, &e, 2, |d, t| seen.push((d, t)))
        .await
        .unwrap();
    assert_eq!((r.embedded, r.chunks, r.fts_added), (3, 3, 3));
    assert_eq!(
        seen.last(),
        Some(&(3, 3)),
        "progress reaches the total: {seen:?}"
    );
    let again = update_index(&q, &e, 2, |_, _| {}).await.unwrap();
    assert_eq!(again.embedded, 0, "vectors are kept");

    let retriever = Retriever::open(&q, &e, false, 4, |_, _| {}).await.unwrap();
    assert_eq!(retriever.len(), 3);
    drop(retriever);

    // Another model (another name): the old vectors go, every chunk is embedded again.
    let (other, _) = embed::tests::tiny();
    let other = other.with_name("other");
    let r = update_index(&q, &other, 2, |_, _| {}).await.unwrap();
    assert_eq!((r.vectors_dropped, r.embedded), (3, 3));
    assert_eq!(q.vector_coverage("tiny").await.unwrap(), (3, 0));
}

#[tokio::test]
async fn the_three_modes_rank_and_hybrid_holds_both_lists() {
    let (_d, q) = db().await;
    let ids = seed(
        &q,
        "a.md",
        &[
            "the guard drops the lock",
            "the builder pattern",
            "a string slice",
            "the iterator and the lifetime",
        ],
    )
    .await;
    let (e, _) = embed::tests::tiny();
    let r = Retriever::open(&q, &e, true, 4, |_, _| {}).await.unwrap();
    let text = r.search("builder", 4, Mode::Text).await.unwrap();
    assert_eq!(
        text.iter().map(|h| h.chunk.id).collect::<Vec<_>>(),
        [ids[1]]
    );
    assert_eq!(text[0].text_rank, Some(1));
    assert!(text[0].similarity.is_some(), "a similarity is always known");
    let vector = r.search("builder", 4, Mode::Vector).await.unwrap();
    assert_eq!(vector.len(), 4, "every chunk has a vector");
    let sims: Vec<f32> = vector.iter().map(|h| h.similarity.unwrap()).collect();
    assert!(sims.windows(2).all(|w| w[0] >= w[1]), "{sims:?}");
    let hybrid = r.search("builder", 4, Mode::Hybrid).await.unwrap();
    assert_eq!(hybrid.len(), 4);
    // The chunk in both lists is first: it adds two reciprocal ranks.
    assert_eq!(hybrid[0].chunk.id, ids[1], "{hybrid:?}");
    assert!(hybrid[0].text_rank.is_some() && hybrid[0].vector_rank.is_some());
    assert_eq!(hybrid[0].chunk.rel_path, "a.md");
    assert_eq!(hybrid[0].chunk.line_start, 11);

    // Bad queries: one clear error each, before anything is searched.
    let err = r.search("   ", 4, Mode::Hybrid).await.err().unwrap();
    assert!(matches!(err, SearchError::EmptyQuery), "{err}");
    let long = "guard ".repeat(300);
    let err = r.search(&long, 4, Mode::Hybrid).await.err().unwrap();
    assert!(matches!(err, SearchError::QueryTooLong { .. }), "{err}");
}
