//! Helpers shared by the integration tests.
#![allow(dead_code)] // each test crate uses its own part

use std::path::PathBuf;

use quarry::queue::store::{self, NewChunk, NewSource};
use quarry::queue::{insert_jobs, NewJob, Queue};

/// The default model, fetched by `make setup`.
pub fn model() -> PathBuf {
    let p = quarry::config::default_model_path();
    assert!(
        p.exists(),
        "run `make setup` first: {} is missing",
        p.display()
    );
    p
}

/// One markdown source whose chunks are inserted directly, with an extract job per chunk.
pub struct Seed<'a> {
    pub root: &'a str,
    pub rel_path: &'a str,
    pub heading: &'a [&'a str],
    /// Text and 1-based line range of each chunk.
    pub chunks: Vec<(String, i64, i64)>,
    pub priority: i64,
    pub max_attempts: i64,
}

impl Seed<'_> {
    pub async fn insert(self, q: &Queue) {
        let paths = vec![self.heading.to_vec(); self.chunks.len()];
        self.insert_with_paths(q, &paths).await
    }

    /// As [`Seed::insert`], each chunk with a heading path of its own.
    pub async fn insert_with_paths(self, q: &Queue, paths: &[Vec<&str>]) {
        assert_eq!(paths.len(), self.chunks.len(), "a path per chunk");
        let mut tx = q.begin().await.unwrap();
        let source = NewSource {
            root: self.root.into(),
            rel_path: self.rel_path.into(),
            kind: Some("markdown".into()),
            status: quarry::queue::SourceStatus::Active,
            content_hash: Some("seed".into()),
            bytes: self.chunks.iter().map(|c| c.0.len() as i64).sum(),
            line_count: self.chunks.iter().map(|c| c.2).max().unwrap_or(0),
            ..NewSource::default()
        };
        let (sid, _) = store::insert_source(&mut tx, &source, q.now())
            .await
            .unwrap();
        let mut jobs = Vec::new();
        for (i, (text, line_start, line_end)) in self.chunks.into_iter().enumerate() {
            let cid = store::insert_chunk(
                &mut tx,
                sid,
                &NewChunk {
                    ordinal: i as i64,
                    line_start,
                    line_end,
                    heading_path: paths[i].iter().map(|h| h.to_string()).collect(),
                    tokens: text.len().div_ceil(4) as i64,
                    text,
                    ..NewChunk::default()
                },
            )
            .await
            .unwrap();
            jobs.push(NewJob {
                role: "extractor".into(),
                stage: "extract".into(),
                input_kind: "chunk".into(),
                input_id: Some(cid),
                dedup: format!("{}#{i}", self.rel_path),
                priority: self.priority,
                max_attempts: self.max_attempts,
                payload: serde_json::json!({}),
                est_tokens: 100,
                depends_on: vec![],
            });
        }
        insert_jobs(&mut tx, &jobs, q.now()).await.unwrap();
        tx.commit().await.unwrap();
    }
}
