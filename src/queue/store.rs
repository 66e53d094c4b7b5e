//! What quarry knows besides jobs: source files, chunks, findings, patterns.
//! Reads go to the reader pool; writes take the caller's transaction so they commit
//! together with the job that produced them.

use std::collections::HashMap;

use sqlx::Row;

use super::db::{on_pool, on_tx, params};
use super::{FindingStatus, JobId, Queue, Result, SourceStatus, Tx};

/// A version of a file as stored.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SourceRow {
    pub id: i64,
    pub root: String,
    pub rel_path: String,
    pub version: i64,
    pub kind: Option<String>,
    pub status: SourceStatus,
    pub content_hash: Option<String>,
    pub bytes: i64,
    pub line_count: i64,
    pub refusal_kind: Option<String>,
    pub refusal_message: Option<String>,
    pub notes: Vec<String>,
}

/// A new source version to record.
#[derive(Clone, Debug, Default)]
pub struct NewSource {
    pub root: String,
    pub rel_path: String,
    pub kind: Option<String>,
    pub status: SourceStatus,
    pub content_hash: Option<String>,
    pub bytes: i64,
    pub line_count: i64,
    pub refusal_kind: Option<String>,
    pub refusal_message: Option<String>,
    pub notes: Vec<String>,
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// What ingest learned about the whole file (JSON; see the `source_facts` migration).
    pub facts: Option<String>,
}

#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct ChunkRow {
    pub id: i64,
    pub source_id: i64,
    pub rel_path: String,
    pub root: String,
    pub kind: String,
    pub ordinal: i64,
    pub line_start: i64,
    pub line_end: i64,
    pub byte_start: i64,
    pub heading_path: Vec<String>,
    pub text: String,
    pub tokens: i64,
    /// Its source's facts as stored by ingest (JSON), `None` for a source recorded before
    /// they were.
    pub facts: Option<String>,
}

#[derive(Clone, Debug, Default)]
pub struct NewChunk {
    pub ordinal: i64,
    pub byte_start: i64,
    pub byte_end: i64,
    pub line_start: i64,
    pub line_end: i64,
    pub heading_path: Vec<String>,
    pub text: String,
    pub tokens: i64,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NewFinding {
    pub pattern: String,
    pub pattern_key: String,
    pub category: String,
    pub summary: String,
    pub evidence: String,
    pub code: Option<String>,
    pub line_start: i64,
    pub line_end: i64,
    /// `Pending` for the validator, or `Rejected` by a deterministic check.
    pub status: FindingStatus,
    pub reason: Option<String>,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct FindingRow {
    pub id: i64,
    pub job_id: i64,
    pub chunk_id: i64,
    pub source_id: i64,
    pub rel_path: String,
    pub pattern: String,
    pub pattern_key: String,
    pub category: String,
    pub summary: String,
    pub evidence: String,
    pub code: Option<String>,
    pub line_start: i64,
    pub line_end: i64,
    pub status: FindingStatus,
    pub reason: Option<String>,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct PatternRow {
    pub id: i64,
    pub key: String,
    pub name: String,
    pub category: String,
    pub slug: String,
}

const CHUNK_COLUMNS: &str =
    "SELECT c.id, c.source_id, s.rel_path, s.root, COALESCE(s.kind, 'text'), c.ordinal,
            c.line_start, c.line_end, c.byte_start, c.heading_path, c.text, c.tokens, s.facts
     FROM chunks c JOIN sources s ON s.id = c.source_id";

/// A `ChunkRow` from a row of `CHUNK_COLUMNS` (a macro: rows of either database).
macro_rules! chunk_row {
    ($r:expr) => {{
        let r = $r;
        ChunkRow {
            id: r.get(0),
            source_id: r.get(1),
            rel_path: r.get(2),
            root: r.get(3),
            kind: r.get(4),
            ordinal: r.get(5),
            line_start: r.get(6),
            line_end: r.get(7),
            byte_start: r.get(8),
            heading_path: json_vec(&r.get::<String, _>(9)),
            text: r.get(10),
            tokens: r.get(11),
            facts: r.get(12),
        }
    }};
}

fn json_vec(s: &str) -> Vec<String> {
    serde_json::from_str(s).unwrap_or_default()
}

const FINDING_COLS: &str =
    "f.id, f.job_id, f.chunk_id, f.source_id, s.rel_path, f.pattern, f.pattern_key,
    f.category, f.summary, f.evidence, f.code, f.line_start, f.line_end, f.status, f.reason";

/// A `FindingRow` from a row of `FINDING_COLS` (a macro: rows of either database).
macro_rules! finding {
    ($r:expr) => {{
        let r = $r;
        FindingRow {
            id: r.get(0),
            job_id: r.get(1),
            chunk_id: r.get(2),
            source_id: r.get(3),
            rel_path: r.get(4),
            pattern: r.get(5),
            pattern_key: r.get(6),
            category: r.get(7),
            summary: r.get(8),
            evidence: r.get(9),
            code: r.get(10),
            line_start: r.get(11),
            line_end: r.get(12),
            status: r.get(13),
            reason: r.get(14),
        }
    }};
}

const SOURCE_COLS: &str = "id, root, rel_path, version, kind, status, content_hash, bytes,
    line_count, refusal_kind, refusal_message, notes";

/// A `SourceRow` from a row of `SOURCE_COLS` (a macro: rows of either database).
macro_rules! source {
    ($r:expr) => {{
        let r = $r;
        SourceRow {
            id: r.get(0),
            root: r.get(1),
            rel_path: r.get(2),
            version: r.get(3),
            kind: r.get(4),
            status: r.get(5),
            content_hash: r.get(6),
            bytes: r.get(7),
            line_count: r.get(8),
            refusal_kind: r.get(9),
            refusal_message: r.get(10),
            notes: json_vec(&r.get::<String, _>(11)),
        }
    }};
}

impl Queue {
    /// The newest version of every file seen under `root`.
    pub async fn latest_sources(&self, root: &str) -> Result<Vec<SourceRow>> {
        let sql = format!(
            "SELECT {SOURCE_COLS} FROM sources s
             WHERE root = $1 AND version = (SELECT MAX(version) FROM sources t
                                            WHERE t.root = s.root AND t.rel_path = s.rel_path)
             ORDER BY rel_path"
        );
        Ok(on_pool!(self.reader(), p => sqlx::query(&sql)
            .bind(root)
            .fetch_all(p)
            .await?
            .iter()
            .map(|r| source!(r))
            .collect()))
    }

    /// Every file's newest version, across all roots, that is not superseded.
    pub async fn current_sources(&self) -> Result<Vec<SourceRow>> {
        let sql = format!(
            "SELECT {SOURCE_COLS} FROM sources s
             WHERE status IN ('active', 'refused') AND version = (SELECT MAX(version) FROM sources t
                   WHERE t.root = s.root AND t.rel_path = s.rel_path)
             ORDER BY rel_path, root"
        );
        Ok(on_pool!(self.reader(), p => sqlx::query(&sql)
            .fetch_all(p)
            .await?
            .iter()
            .map(|r| source!(r))
            .collect()))
    }

    pub async fn chunk(&self, id: i64) -> Result<ChunkRow> {
        let sql = format!("{CHUNK_COLUMNS} WHERE c.id = $1");
        Ok(on_pool!(self.reader(), p => {
            let r = sqlx::query(&sql).bind(id).fetch_one(p).await?;
            chunk_row!(&r)
        }))
    }

    /// The chunks of a source, in order.
    pub async fn source_chunks(&self, source_id: i64) -> Result<Vec<ChunkRow>> {
        let sql = format!("{CHUNK_COLUMNS} WHERE c.source_id = $1 ORDER BY c.ordinal");
        Ok(on_pool!(self.reader(), p => sqlx::query(&sql)
            .bind(source_id)
            .fetch_all(p)
            .await?
            .iter()
            .map(|r| chunk_row!(r))
            .collect()))
    }

    /// The texts of all chunks of a source, in order: the whole file as ingested.
    pub async fn source_text(&self, source_id: i64) -> Result<String> {
        let texts: Vec<String> = on_pool!(self.reader(), p => sqlx::query_scalar(
            "SELECT text FROM chunks WHERE source_id = $1 ORDER BY ordinal",
        )
        .bind(source_id)
        .fetch_all(p)
        .await?);
        Ok(texts.join("\n"))
    }

    /// Stores the facts of a source recorded before ingest stored them (JSON).
    pub async fn set_source_facts(&self, source_id: i64, facts: &str) -> Result<()> {
        let mut tx = self.begin().await?;
        on_tx!(&mut tx, c => sqlx::query("UPDATE sources SET facts = $1 WHERE id = $2")
            .bind(facts)
            .bind(source_id)
            .execute(&mut **c)
            .await?
            .rows_affected());
        tx.commit().await?;
        Ok(())
    }

    /// Chunk count per source id.
    pub async fn chunk_counts(&self) -> Result<Vec<(i64, i64)>> {
        Ok(on_pool!(self.reader(), p => sqlx::query_as(
            "SELECT source_id, COUNT(*) FROM chunks GROUP BY source_id",
        )
        .fetch_all(p)
        .await?))
    }

    /// Findings of one extract job.
    pub async fn findings_of_job(&self, job: JobId) -> Result<Vec<FindingRow>> {
        let sql = format!(
            "SELECT {FINDING_COLS} FROM findings f JOIN sources s ON s.id = f.source_id
             WHERE f.job_id = $1 ORDER BY f.ordinal"
        );
        Ok(on_pool!(self.reader(), p => sqlx::query(&sql)
            .bind(job.0)
            .fetch_all(p)
            .await?
            .iter()
            .map(|r| finding!(r))
            .collect()))
    }

    /// Every finding of the sources that are current.
    pub async fn current_findings(&self) -> Result<Vec<FindingRow>> {
        let sql = format!(
            "SELECT {FINDING_COLS} FROM findings f JOIN sources s ON s.id = f.source_id
             WHERE s.status = 'active' ORDER BY s.rel_path, f.line_start, f.id"
        );
        Ok(on_pool!(self.reader(), p => sqlx::query(&sql)
            .fetch_all(p)
            .await?
            .iter()
            .map(|r| finding!(r))
            .collect()))
    }

    /// Accepted findings of current sources that belong to no pattern yet.
    pub async fn ungrouped_findings(&self) -> Result<Vec<FindingRow>> {
        let sql = format!(
            "SELECT {FINDING_COLS} FROM findings f JOIN sources s ON s.id = f.source_id
             WHERE s.status = 'active' AND f.status = 'accepted'
               AND NOT EXISTS (SELECT 1 FROM pattern_findings pf WHERE pf.finding_id = f.id)
             ORDER BY f.id"
        );
        Ok(on_pool!(self.reader(), p => sqlx::query(&sql)
            .fetch_all(p)
            .await?
            .iter()
            .map(|r| finding!(r))
            .collect()))
    }

    pub async fn patterns(&self) -> Result<Vec<PatternRow>> {
        let rows: Vec<(i64, String, String, String, String)> = on_pool!(self.reader(), p => sqlx::query_as(
            "SELECT id, key, name, category, slug FROM patterns ORDER BY name",
        )
        .fetch_all(p)
        .await?);
        Ok(rows.into_iter().map(pattern_row).collect())
    }

    pub async fn pattern(&self, id: i64) -> Result<PatternRow> {
        let row: (i64, String, String, String, String) = on_pool!(self.reader(), p => sqlx::query_as(
            "SELECT id, key, name, category, slug FROM patterns WHERE id = $1",
        )
        .bind(id)
        .fetch_one(p)
        .await?);
        Ok(pattern_row(row))
    }

    /// Accepted findings of current sources that belong to the pattern.
    pub async fn pattern_findings(&self, pattern: i64) -> Result<Vec<FindingRow>> {
        let sql = format!(
            "SELECT {FINDING_COLS} FROM findings f JOIN sources s ON s.id = f.source_id
             JOIN pattern_findings pf ON pf.finding_id = f.id
             WHERE pf.pattern_id = $1 AND s.status = 'active' AND f.status = 'accepted'
             ORDER BY s.rel_path, f.line_start, f.id"
        );
        Ok(on_pool!(self.reader(), p => sqlx::query(&sql)
            .bind(pattern)
            .fetch_all(p)
            .await?
            .iter()
            .map(|r| finding!(r))
            .collect()))
    }

    /// The result of the newest done job of `stage` for `input_id` (None: kb-wide).
    pub async fn latest_result(
        &self,
        stage: &str,
        input_id: Option<i64>,
    ) -> Result<Option<serde_json::Value>> {
        let row: Option<String> = on_pool!(self.reader(), p => sqlx::query_scalar(
            "SELECT result FROM jobs
             WHERE stage = $1 AND input_id IS NOT DISTINCT FROM $2 AND state = 'done'
             ORDER BY finished_at DESC, id DESC LIMIT 1",
        )
        .bind(stage)
        .bind(input_id)
        .fetch_optional(p)
        .await?
        .flatten());
        Ok(row.and_then(|s| serde_json::from_str(&s).ok()))
    }

    /// Done results of jobs of a custom per-chunk stage for one source: (chunk lines, result).
    pub async fn chunk_results(
        &self,
        stage: &str,
        source_id: i64,
    ) -> Result<Vec<(i64, i64, serde_json::Value)>> {
        let rows: Vec<(i64, i64, Option<String>)> = on_pool!(self.reader(), p => sqlx::query_as(
            "SELECT c.line_start, c.line_end, j.result FROM jobs j JOIN chunks c ON c.id = j.input_id
             WHERE j.stage = $1 AND j.input_kind = 'chunk' AND c.source_id = $2 AND j.state = 'done'
             ORDER BY c.ordinal",
        )
        .bind(stage)
        .bind(source_id)
        .fetch_all(p)
        .await?);
        Ok(rows
            .into_iter()
            .filter_map(|(a, b, res)| Some((a, b, serde_json::from_str(&res?).ok()?)))
            .collect())
    }

    /// Distinct stages that exist in the queue, in order of first appearance.
    pub async fn stages(&self) -> Result<Vec<String>> {
        Ok(on_pool!(self.reader(), p => sqlx::query_scalar(
            "SELECT stage FROM jobs GROUP BY stage ORDER BY MIN(id)",
        )
        .fetch_all(p)
        .await?))
    }
}

fn pattern_row(
    (id, key, name, category, slug): (i64, String, String, String, String),
) -> PatternRow {
    PatternRow {
        id,
        key,
        name,
        category,
        slug,
    }
}

/// The latest stored version of a file.
#[derive(Clone, Debug)]
pub struct LatestSource {
    pub id: i64,
    pub version: i64,
    pub status: SourceStatus,
    pub content_hash: Option<String>,
    pub refusal_message: Option<String>,
}

/// The latest version of each of `rel_paths` under `root` that has one (one statement).
pub async fn latest_versions(
    tx: &mut Tx,
    root: &str,
    rel_paths: &[&str],
) -> Result<HashMap<String, LatestSource>> {
    let mut out = HashMap::with_capacity(rel_paths.len());
    for part in rel_paths.chunks(500) {
        let sql = format!(
            "SELECT s.rel_path, s.id, s.version, s.status, s.content_hash, s.refusal_message
             FROM sources s
             JOIN (SELECT rel_path, MAX(version) AS v FROM sources
                   WHERE root = $1 AND rel_path IN ({})
                   GROUP BY rel_path) m
               ON s.root = $1 AND s.rel_path = m.rel_path AND s.version = m.v",
            params(2, part.len())
        );
        let rows: Vec<(String, LatestSource)> = on_tx!(&mut *tx, c => {
            let mut q = sqlx::query(&sql).bind(root);
            for path in part {
                q = q.bind(*path);
            }
            q.fetch_all(&mut **c)
                .await?
                .iter()
                .map(|r| {
                    let latest = LatestSource {
                        id: r.get(1),
                        version: r.get(2),
                        status: r.get(3),
                        content_hash: r.get(4),
                        refusal_message: r.get(5),
                    };
                    (r.get(0), latest)
                })
                .collect()
        });
        out.extend(rows);
    }
    Ok(out)
}

/// Records a new version of one file; returns its id and version.
pub async fn insert_source(tx: &mut Tx, s: &NewSource, now: i64) -> Result<(i64, i64)> {
    let latest = latest_versions(tx, &s.root, &[s.rel_path.as_str()]).await?;
    let ids = insert_sources(tx, std::slice::from_ref(s), &latest, now).await?;
    Ok(ids[0])
}

/// Records new versions of files (each path at most once), superseding the versions in
/// `latest` (from [`latest_versions`] in the same transaction). Returns (id, version) per
/// source, in order.
pub async fn insert_sources(
    tx: &mut Tx,
    sources: &[NewSource],
    latest: &HashMap<String, LatestSource>,
    now: i64,
) -> Result<Vec<(i64, i64)>> {
    let previous: Vec<i64> = sources
        .iter()
        .filter_map(|s| latest.get(&s.rel_path).map(|l| l.id))
        .collect();
    for part in previous.chunks(500) {
        let sql = format!(
            "UPDATE sources SET status = 'superseded'
             WHERE id IN ({}) AND status IN ('active', 'refused', 'gone')",
            params(1, part.len())
        );
        on_tx!(&mut *tx, c => {
            let mut q = sqlx::query(&sql);
            for id in part {
                q = q.bind(*id);
            }
            q.execute(&mut **c).await?;
        });
    }
    let mut out = Vec::with_capacity(sources.len());
    for part in sources.chunks(200) {
        let versions: Vec<i64> = part
            .iter()
            .map(|s| latest.get(&s.rel_path).map_or(1, |l| l.version + 1))
            .collect();
        let mut ids: Vec<i64> = on_tx!(&mut *tx, c, Db => {
            let mut qb = sqlx::QueryBuilder::<Db>::new(
                "INSERT INTO sources (root, rel_path, version, kind, status, content_hash, bytes,
                                      line_count, refusal_kind, refusal_message, notes, metadata,
                                      facts, created_at) ",
            );
            qb.push_values(part.iter().zip(&versions), |mut b, (s, version)| {
                b.push_bind(s.root.clone())
                    .push_bind(s.rel_path.clone())
                    .push_bind(*version)
                    .push_bind(s.kind.clone())
                    .push_bind(s.status)
                    .push_bind(s.content_hash.clone())
                    .push_bind(s.bytes)
                    .push_bind(s.line_count)
                    .push_bind(s.refusal_kind.clone())
                    .push_bind(s.refusal_message.clone())
                    .push_bind(serde_json::to_string(&s.notes).unwrap_or_else(|_| "[]".into()))
                    .push_bind(serde_json::Value::Object(s.metadata.clone()).to_string())
                    .push_bind(s.facts.clone())
                    .push_bind(now);
            });
            qb.push(" RETURNING id");
            qb.build_query_scalar().fetch_all(&mut **c).await?
        });
        // Row ids of one statement are assigned in insertion order.
        ids.sort_unstable();
        out.extend(ids.into_iter().zip(versions));
    }
    Ok(out)
}

/// Marks a file as gone from its folder.
pub async fn mark_gone(tx: &mut Tx, source_id: i64) -> Result<()> {
    on_tx!(tx, c => sqlx::query("UPDATE sources SET status = 'gone' WHERE id = $1")
        .bind(source_id)
        .execute(&mut **c)
        .await?
        .rows_affected());
    Ok(())
}

pub async fn insert_chunk(tx: &mut Tx, source_id: i64, c: &NewChunk) -> Result<i64> {
    Ok(insert_chunks(tx, &[(source_id, c)]).await?[0])
}

/// Inserts chunks, each with its source id, with multi-row statements; returns their ids
/// in order.
pub async fn insert_chunks(tx: &mut Tx, chunks: &[(i64, &NewChunk)]) -> Result<Vec<i64>> {
    let mut ids = Vec::with_capacity(chunks.len());
    for part in chunks.chunks(300) {
        let paths: Vec<String> = part
            .iter()
            .map(|(_, c)| serde_json::to_string(&c.heading_path).unwrap_or_else(|_| "[]".into()))
            .collect();
        let mut got: Vec<i64> = on_tx!(&mut *tx, conn, Db => {
            let mut qb = sqlx::QueryBuilder::<Db>::new(
                "INSERT INTO chunks (source_id, ordinal, byte_start, byte_end, line_start, line_end,
                                     heading_path, text, tokens) ",
            );
            qb.push_values(part.iter().zip(&paths), |mut b, ((source_id, c), path)| {
                b.push_bind(*source_id)
                    .push_bind(c.ordinal)
                    .push_bind(c.byte_start)
                    .push_bind(c.byte_end)
                    .push_bind(c.line_start)
                    .push_bind(c.line_end)
                    .push_bind(path.as_str())
                    .push_bind(c.text.as_str())
                    .push_bind(c.tokens);
            });
            qb.push(" RETURNING id");
            qb.build_query_scalar().fetch_all(&mut **conn).await?
        });
        // Row ids of one statement are assigned in insertion order.
        got.sort_unstable();
        ids.extend(got);
    }
    Ok(ids)
}

pub async fn insert_findings(
    tx: &mut Tx,
    job: JobId,
    chunk: &ChunkRow,
    findings: &[NewFinding],
) -> Result<()> {
    for (i, f) in findings.iter().enumerate() {
        on_tx!(&mut *tx, c => sqlx::query(
            "INSERT INTO findings (job_id, chunk_id, source_id, ordinal, pattern, pattern_key,
                                   category, summary, evidence, code, line_start, line_end, status, reason)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
             ON CONFLICT (job_id, ordinal) DO NOTHING",
        )
        .bind(job.0)
        .bind(chunk.id)
        .bind(chunk.source_id)
        .bind(i as i64)
        .bind(&f.pattern)
        .bind(&f.pattern_key)
        .bind(&f.category)
        .bind(&f.summary)
        .bind(&f.evidence)
        .bind(&f.code)
        .bind(f.line_start)
        .bind(f.line_end)
        .bind(f.status)
        .bind(&f.reason)
        .execute(&mut **c)
        .await?
        .rows_affected());
    }
    Ok(())
}

pub async fn set_finding_status(
    tx: &mut Tx,
    id: i64,
    status: FindingStatus,
    reason: &str,
) -> Result<()> {
    on_tx!(tx, c => sqlx::query("UPDATE findings SET status = $1, reason = $2 WHERE id = $3")
        .bind(status)
        .bind(reason)
        .bind(id)
        .execute(&mut **c)
        .await?
        .rows_affected());
    Ok(())
}

/// Finds or creates the pattern with this key; returns its id.
pub async fn upsert_pattern(
    tx: &mut Tx,
    key: &str,
    name: &str,
    category: &str,
    slug: &str,
    now: i64,
) -> Result<i64> {
    Ok(on_tx!(tx, c => {
        if let Some(id) = sqlx::query_scalar::<_, i64>("SELECT id FROM patterns WHERE key = $1")
            .bind(key)
            .fetch_optional(&mut **c)
            .await?
        {
            return Ok(id);
        }
        // Two names may sanitise to one slug: make it unique with a suffix.
        let mut candidate = slug.to_string();
        let mut n = 2;
        while sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM patterns WHERE slug = $1")
            .bind(&candidate)
            .fetch_one(&mut **c)
            .await?
            > 0
        {
            candidate = format!("{slug}-{n}");
            n += 1;
        }
        sqlx::query_scalar(
            "INSERT INTO patterns (key, name, category, slug, created_at) VALUES ($1, $2, $3, $4, $5)
             RETURNING id",
        )
        .bind(key)
        .bind(name)
        .bind(category)
        .bind(&candidate)
        .bind(now)
        .fetch_one(&mut **c)
        .await?
    }))
}

pub async fn link_finding(tx: &mut Tx, pattern: i64, finding: i64) -> Result<()> {
    on_tx!(tx, c => sqlx::query(
        "INSERT INTO pattern_findings (pattern_id, finding_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
    )
    .bind(pattern)
    .bind(finding)
    .execute(&mut **c)
    .await?
        .rows_affected());
    Ok(())
}

/// Ids of done-or-pending jobs of a stage (for dependencies of a later stage).
pub async fn jobs_of_stage(tx: &mut Tx, stage: &str) -> Result<Vec<JobId>> {
    let ids: Vec<i64> = on_tx!(tx, c => sqlx::query_scalar(
        "SELECT id FROM jobs WHERE stage = $1 AND state NOT IN ('cancelled') ORDER BY id",
    )
    .bind(stage)
    .fetch_all(&mut **c)
    .await?);
    Ok(ids.into_iter().map(JobId).collect())
}

/// Accepted findings of current sources linked to a pattern (ids only).
pub async fn pattern_finding_ids(tx: &mut Tx, pattern: i64) -> Result<Vec<i64>> {
    Ok(on_tx!(tx, c => sqlx::query_scalar(
        "SELECT f.id FROM pattern_findings pf JOIN findings f ON f.id = pf.finding_id
         JOIN sources s ON s.id = f.source_id
         WHERE pf.pattern_id = $1 AND s.status = 'active' AND f.status = 'accepted' ORDER BY f.id",
    )
    .bind(pattern)
    .fetch_all(&mut **c)
    .await?))
}
