//! The SQL of retrieval: the FTS5 index over chunks (BM25) and the chunks' embedding
//! vectors. Both are caught up on first use by `search`; ingest never writes them. Only the
//! chunks of current (active) sources are searched.

use sqlx::{Row, Sqlite, SqlitePool, Transaction};

use super::db::{Pool, Tx};
use super::{Queue, QueueError, Result};

/// A chunk as retrieval needs it: where it is and what it says.
#[derive(Clone, Debug, serde::Serialize)]
pub struct RetrievedChunk {
    pub id: i64,
    pub root: String,
    pub rel_path: String,
    pub line_start: i64,
    pub line_end: i64,
    pub heading_path: Vec<String>,
    pub text: String,
}

/// The watermark key of chunks_fts: the highest chunk id indexed.
const FTS_WATERMARK: &str = "fts_chunk";

impl Queue {
    /// The SQLite pool: retrieval's FTS5 index exists only there.
    fn fts_reader(&self) -> Result<&SqlitePool> {
        match self.reader() {
            Pool::Sqlite(p) => Ok(p),
            Pool::Postgres(_) => Err(QueueError::SqliteOnly("search")),
        }
    }

    /// A write transaction on the SQLite database (see `fts_reader`).
    async fn fts_begin(&self) -> Result<Transaction<'static, Sqlite>> {
        if let Pool::Postgres(_) = self.reader() {
            return Err(QueueError::SqliteOnly("search"));
        }
        match self.begin().await? {
            Tx::Sqlite(t) => Ok(t),
            Tx::Postgres(t) => {
                t.rollback().await?;
                Err(QueueError::SqliteOnly("search"))
            }
        }
    }

    /// Indexes the chunks added since the last call in chunks_fts, in one transaction.
    /// Returns how many were added.
    pub async fn sync_fts(&self) -> Result<u64> {
        let mut tx = self.fts_begin().await?;
        let mark: i64 = sqlx::query_scalar(
            "SELECT COALESCE(MAX(value), 0) FROM retrieval_state WHERE key = ?1",
        )
        .bind(FTS_WATERMARK)
        .fetch_one(&mut *tx)
        .await?;
        let added = sqlx::query(
            "INSERT INTO chunks_fts (rowid, heading_path, text)
             SELECT id, heading_path, text FROM chunks WHERE id > ?1 ORDER BY id",
        )
        .bind(mark)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if added > 0 {
            sqlx::query(
                "INSERT INTO retrieval_state (key, value)
                 VALUES (?1, (SELECT COALESCE(MAX(id), 0) FROM chunks))
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            )
            .bind(FTS_WATERMARK)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(added)
    }

    /// The best `limit` current chunks for an FTS5 match expression (see
    /// `search::index::fts_query`), best first, with their BM25 score (higher is better;
    /// SQLite's `bm25()` is negated).
    pub async fn fts_search(&self, expr: &str, limit: usize) -> Result<Vec<(i64, f64)>> {
        let rows = sqlx::query(
            "SELECT chunks_fts.rowid, -bm25(chunks_fts) AS score
             FROM chunks_fts
             JOIN chunks c ON c.id = chunks_fts.rowid
             JOIN sources s ON s.id = c.source_id
             WHERE chunks_fts MATCH ?1 AND s.status = 'active'
             ORDER BY bm25(chunks_fts) LIMIT ?2",
        )
        .bind(expr)
        .bind(limit as i64)
        .fetch_all(self.fts_reader()?)
        .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// Chunks of current sources: how many there are, and how many have a vector of `model`.
    pub async fn vector_coverage(&self, model: &str) -> Result<(i64, i64)> {
        let r = sqlx::query(
            "SELECT COUNT(*), COUNT(v.chunk_id)
             FROM chunks c JOIN sources s ON s.id = c.source_id
             LEFT JOIN chunk_vectors v ON v.chunk_id = c.id AND v.model = ?1
             WHERE s.status = 'active'",
        )
        .bind(model)
        .fetch_one(self.fts_reader()?)
        .await?;
        Ok((r.get(0), r.get(1)))
    }

    /// Current chunks without a vector of `model`: (id, heading path as JSON, text).
    pub async fn chunks_without_vector(&self, model: &str) -> Result<Vec<(i64, String, String)>> {
        let rows = sqlx::query(
            "SELECT c.id, c.heading_path, c.text
             FROM chunks c JOIN sources s ON s.id = c.source_id
             LEFT JOIN chunk_vectors v ON v.chunk_id = c.id AND v.model = ?1
             WHERE s.status = 'active' AND v.chunk_id IS NULL
             ORDER BY c.id",
        )
        .bind(model)
        .fetch_all(self.fts_reader()?)
        .await?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect())
    }

    /// Drops the vectors made by another model or of another dimension; returns how many.
    pub async fn drop_other_vectors(&self, model: &str, dim: usize) -> Result<u64> {
        let mut tx = self.fts_begin().await?;
        let n = sqlx::query("DELETE FROM chunk_vectors WHERE model <> ?1 OR dim <> ?2")
            .bind(model)
            .bind(dim as i64)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(n)
    }

    /// Stores one batch of vectors (little-endian f32 blobs) in one transaction.
    pub async fn store_vectors(
        &self,
        model: &str,
        dim: usize,
        rows: &[(i64, Vec<u8>)],
    ) -> Result<()> {
        let mut tx = self.fts_begin().await?;
        for (id, blob) in rows {
            sqlx::query(
                "INSERT INTO chunk_vectors (chunk_id, model, dim, vector) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (chunk_id) DO UPDATE
                 SET model = excluded.model, dim = excluded.dim, vector = excluded.vector",
            )
            .bind(id)
            .bind(model)
            .bind(dim as i64)
            .bind(blob)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Every vector of `model` and `dim` of a current chunk, by chunk id.
    pub async fn vectors(&self, model: &str, dim: usize) -> Result<Vec<(i64, Vec<u8>)>> {
        let rows = sqlx::query(
            "SELECT v.chunk_id, v.vector
             FROM chunk_vectors v
             JOIN chunks c ON c.id = v.chunk_id
             JOIN sources s ON s.id = c.source_id
             WHERE v.model = ?1 AND v.dim = ?2 AND s.status = 'active'
             ORDER BY v.chunk_id",
        )
        .bind(model)
        .bind(dim as i64)
        .fetch_all(self.fts_reader()?)
        .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// The chunks of these ids, in the order given (unknown ids are left out).
    pub async fn retrieved_chunks(&self, ids: &[i64]) -> Result<Vec<RetrievedChunk>> {
        let mut out = Vec::with_capacity(ids.len());
        for &id in ids {
            let row = sqlx::query(
                "SELECT c.id, s.root, s.rel_path, c.line_start, c.line_end, c.heading_path, c.text
                 FROM chunks c JOIN sources s ON s.id = c.source_id WHERE c.id = ?1",
            )
            .bind(id)
            .fetch_optional(self.fts_reader()?)
            .await?;
            if let Some(r) = row {
                out.push(RetrievedChunk {
                    id: r.get(0),
                    root: r.get(1),
                    rel_path: r.get(2),
                    line_start: r.get(3),
                    line_end: r.get(4),
                    heading_path: serde_json::from_str(&r.get::<String, _>(5)).unwrap_or_default(),
                    text: r.get(6),
                });
            }
        }
        Ok(out)
    }
}
