//! The SQL of retrieval: the FTS5 index over chunks (BM25) and the chunks' embedding
//! vectors, both caught up on first use by `search` (ingest never writes them); the chunks of
//! other files the planner found near each pattern (`pattern_related`, read on both
//! databases); and the pattern pages' vectors (`page_vectors`). Only the chunks of current
//! (active) sources are searched.

use sqlx::{Row, Sqlite, SqlitePool, Transaction};

use super::db::{on_pool, on_tx, Pool, Tx};
use super::{Queue, QueueError, Result};

/// A chunk of another file near a pattern, to store (see `set_related`).
#[derive(Clone, Debug, PartialEq)]
pub struct NewRelated {
    pub chunk_id: i64,
    pub similarity: f32,
    /// The chunk discusses the pattern by name: its page cites `line_start`-`line_end`.
    pub cited: bool,
    pub line_start: i64,
    pub line_end: i64,
    /// The sentence that names the pattern (or the chunk's first), what the writer is shown.
    pub excerpt: String,
}

/// A stored related chunk of a pattern, with its file.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct RelatedRow {
    pub pattern_id: i64,
    pub chunk_id: i64,
    pub source_id: i64,
    pub rel_path: String,
    pub rank: i64,
    pub similarity: f64,
    pub cited: bool,
    pub line_start: i64,
    pub line_end: i64,
    pub excerpt: String,
}

/// A pattern page's stored vector.
#[derive(Clone, Debug)]
pub struct PageVector {
    pub pattern_id: i64,
    pub path: String,
    pub title: String,
    pub text_hash: String,
    pub vector: Vec<u8>,
}

/// Replaces the related chunks of `pattern` by `rows` (best first), in the planner's
/// transaction.
pub async fn set_related(tx: &mut Tx, pattern: i64, rows: &[NewRelated]) -> Result<()> {
    on_tx!(tx, c => sqlx::query("DELETE FROM pattern_related WHERE pattern_id = $1")
        .bind(pattern)
        .execute(&mut **c)
        .await?
        .rows_affected());
    for (rank, r) in rows.iter().enumerate() {
        on_tx!(tx, c => sqlx::query(
            "INSERT INTO pattern_related
               (pattern_id, chunk_id, rank, similarity, cited, line_start, line_end, excerpt)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(pattern)
        .bind(r.chunk_id)
        .bind(rank as i64 + 1)
        .bind(f64::from(r.similarity))
        .bind(i64::from(r.cited))
        .bind(r.line_start)
        .bind(r.line_end)
        .bind(&r.excerpt)
        .execute(&mut **c)
        .await?
        .rows_affected());
    }
    Ok(())
}

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

    /// The related chunks of `pattern` (all patterns when None) whose file is current, best
    /// first. Both databases (PostgreSQL's table stays empty: retrieval runs on SQLite).
    pub async fn related(&self, pattern: Option<i64>) -> Result<Vec<RelatedRow>> {
        Ok(on_pool!(self.reader(), p => sqlx::query(
            "SELECT r.pattern_id, r.chunk_id, c.source_id, s.rel_path, r.rank, r.similarity,
                    r.cited, r.line_start, r.line_end, r.excerpt
             FROM pattern_related r
             JOIN chunks c ON c.id = r.chunk_id
             JOIN sources s ON s.id = c.source_id
             WHERE r.pattern_id BETWEEN $1 AND $2 AND s.status = 'active'
             ORDER BY r.pattern_id, r.rank",
        )
        .bind(pattern.unwrap_or(i64::MIN))
        .bind(pattern.unwrap_or(i64::MAX))
        .fetch_all(p)
        .await?
        .iter()
        .map(|r| RelatedRow {
            pattern_id: r.get(0),
            chunk_id: r.get(1),
            source_id: r.get(2),
            rel_path: r.get(3),
            rank: r.get(4),
            similarity: r.get(5),
            cited: r.get::<i64, _>(6) != 0,
            line_start: r.get(7),
            line_end: r.get(8),
            excerpt: r.get(9),
        })
        .collect()))
    }

    /// The id of the pattern of `key`, if there is one.
    pub async fn pattern_id(&self, key: &str) -> Result<Option<i64>> {
        Ok(on_pool!(self.reader(), p => sqlx::query_scalar(
            "SELECT id FROM patterns WHERE key = $1",
        )
        .bind(key)
        .fetch_optional(p)
        .await?))
    }

    /// The stored page vectors of `model` and `dim` (SQLite only, like the chunks' vectors).
    pub async fn page_vectors(&self, model: &str, dim: usize) -> Result<Vec<PageVector>> {
        let rows = sqlx::query(
            "SELECT pattern_id, path, title, text_hash, vector FROM page_vectors
             WHERE model = ?1 AND dim = ?2 ORDER BY pattern_id",
        )
        .bind(model)
        .bind(dim as i64)
        .fetch_all(self.fts_reader()?)
        .await?;
        Ok(rows
            .iter()
            .map(|r| PageVector {
                pattern_id: r.get(0),
                path: r.get(1),
                title: r.get(2),
                text_hash: r.get(3),
                vector: r.get(4),
            })
            .collect())
    }

    /// Makes the page vectors those of `pages` (one transaction): vectors of another model or
    /// dimension and of patterns not in `keep` are dropped, `pages` are stored or replaced.
    pub async fn store_page_vectors(
        &self,
        model: &str,
        dim: usize,
        keep: &[i64],
        pages: &[PageVector],
    ) -> Result<()> {
        let mut tx = self.fts_begin().await?;
        let kept = serde_json::to_string(keep).unwrap_or_else(|_| "[]".into());
        sqlx::query(
            "DELETE FROM page_vectors WHERE model <> ?1 OR dim <> ?2
               OR pattern_id NOT IN (SELECT value FROM json_each(?3))",
        )
        .bind(model)
        .bind(dim as i64)
        .bind(kept)
        .execute(&mut *tx)
        .await?;
        for p in pages {
            sqlx::query(
                "INSERT INTO page_vectors (pattern_id, path, title, text_hash, model, dim, vector)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (pattern_id) DO UPDATE
                 SET path = excluded.path, title = excluded.title, text_hash = excluded.text_hash,
                     model = excluded.model, dim = excluded.dim, vector = excluded.vector",
            )
            .bind(p.pattern_id)
            .bind(&p.path)
            .bind(&p.title)
            .bind(&p.text_hash)
            .bind(model)
            .bind(dim as i64)
            .bind(&p.vector)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
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
