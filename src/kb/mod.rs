//! The knowledge base: a pure projection of the database into markdown pages (an mdBook):
//! the snapshot becomes views whose strings are escaped (`view.rs`), rendered by tera
//! templates the user can override (`templates.rs`). And the one writer of `output/`: every
//! page is written atomically, only when its text changed; `output/.quarry-manifest` lists
//! the files quarry wrote, and only those are ever removed (pages that no longer follow from
//! the database). A non-empty folder without a manifest is not quarry's: it is refused
//! unless forced.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Component, Path, PathBuf};

use crate::agent::{Agents, OutputKind};
use crate::queue::store::{FindingRow, PatternRow, SourceRow};
use crate::queue::{FailedJob, Queue, QueueError};

mod material;
mod paths;
use crate::text::prose::{passage, prose_of};
mod templates;
mod view;
pub use paths::{pattern_path, source_path, Paths};
pub use templates::{write_defaults as write_default_templates, TemplateError, Templates};

/// Where the code a finding quoted stands in its chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quoted {
    /// Code: in a code block of a markdown or text chunk, or a Rust chunk; its lines.
    Code(i64, i64),
    /// A line of the author's prose, outside any code block: not an example.
    Prose,
}

/// Everything the knowledge base is rendered from.
#[derive(Clone, Debug, Default)]
pub struct Kb {
    pub sources: Vec<SourceRow>,
    pub chunks: BTreeMap<i64, i64>,
    pub findings: Vec<FindingRow>,
    pub patterns: Vec<(PatternRow, Vec<FindingRow>, Option<serde_json::Value>)>,
    pub overview: Option<String>,
    pub failures: Vec<FailedJob>,
    /// Per source id: (stage, lines, result) of custom per-chunk roles.
    pub notes: BTreeMap<i64, Vec<(String, i64, i64, serde_json::Value)>>,
    /// Per finding id of a pattern: the author's whole sentence around its evidence.
    pub passages: BTreeMap<i64, String>,
    /// Per finding id: where the code it quoted stands in its chunk (the model's code line is
    /// not always at the finding's own lines), when found.
    pub code_at: BTreeMap<i64, Quoted>,
    /// Per pattern id: the author's own material for its page (the topic's parts, the example).
    pub material: BTreeMap<i64, material::Material>,
    /// Per source id: the line ranges the extractor was not asked about, and why (no Rust in
    /// the file, a list of references, no term), adjacent ranges of one reason joined.
    pub unread: BTreeMap<i64, Vec<(i64, i64, String)>>,
    /// Per pattern id: the chunks of other files that discuss it by name (found by the
    /// planner's search, `search::related`), which its page cites beside its findings.
    pub related: BTreeMap<i64, Vec<crate::queue::retrieval::RelatedRow>>,
    /// Per pattern id: the nearest other pattern pages, nearest first (`search::pages`,
    /// filled by the caller from the stored page vectors; empty without them).
    pub see_also: BTreeMap<i64, Vec<i64>>,
}

/// The queue stages whose results the knowledge base shows. Users rename stages in
/// `agents/*.toml`, so they are found from the roles by what they output, never by name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stages {
    /// The writer's (`output = "page"`): the prose of a pattern's page.
    pub page: Option<String>,
    /// The synthesizer's (`output = "overview"`): the index's overview.
    pub overview: Option<String>,
    /// Custom per-chunk roles' (`input = "chunk"`, not findings): notes on source pages.
    pub notes: Vec<String>,
    /// The extractor's (`output = "findings"`): the chunks it was not asked about.
    pub extract: Option<String>,
}

impl Stages {
    pub fn of(agents: &Agents) -> Stages {
        Stages {
            page: agents.stage_of(OutputKind::Page).map(str::to_string),
            overview: agents.stage_of(OutputKind::Overview).map(str::to_string),
            notes: agents
                .chunk_roles()
                .filter(|r| r.spec.output != OutputKind::Findings)
                .map(|r| r.spec.stage.clone())
                .collect(),
            extract: agents.stage_of(OutputKind::Findings).map(str::to_string),
        }
    }
}

impl Kb {
    /// Reads the knowledge base from the database: the results of `stages`.
    pub async fn load(queue: &Queue, stages: &Stages) -> Result<Kb, QueueError> {
        let sources = queue.current_sources().await?;
        let chunks = queue.chunk_counts().await?.into_iter().collect();
        let findings = queue.current_findings().await?;
        let mut patterns = Vec::new();
        let mut passages = BTreeMap::new();
        let mut code_at = BTreeMap::new();
        let mut material = BTreeMap::new();
        let mut read: BTreeMap<i64, ChunkRead> = BTreeMap::new();
        let mut chunks_by_source: BTreeMap<i64, Vec<crate::queue::store::ChunkRow>> =
            BTreeMap::new();
        let mut grouped = Vec::new();
        for p in queue.patterns().await? {
            let fs = queue.pattern_findings(p.id).await?;
            if !fs.is_empty() {
                grouped.push((p, fs));
            }
        }
        // Where each page's findings stand, (chunk id, line), for the pages that share a list.
        let found: Vec<Vec<(i64, i64)>> = grouped
            .iter()
            .map(|(_, fs)| fs.iter().map(|f| (f.chunk_id, f.line_start)).collect())
            .collect();
        for (n, (p, fs)) in grouped.into_iter().enumerate() {
            // The author's material comes from the pattern's own findings (an aspect's topic is
            // its own), their chunks first.
            let mut own: Vec<&crate::queue::store::FindingRow> =
                fs.iter().filter(|f| f.pattern_key == p.key).collect();
            if own.is_empty() {
                own = fs.iter().collect();
            }
            let mut chunks = Vec::new();
            for f in &own {
                if let std::collections::btree_map::Entry::Vacant(e) =
                    chunks_by_source.entry(f.source_id)
                {
                    e.insert(queue.source_chunks(f.source_id).await?);
                }
                if !chunks
                    .iter()
                    .any(|c: &crate::queue::store::ChunkRow| c.source_id == f.source_id)
                {
                    chunks.extend(chunks_by_source[&f.source_id].iter().cloned());
                }
            }
            let at: Vec<(i64, i64)> = own.iter().map(|f| (f.chunk_id, f.line_start)).collect();
            let others: Vec<(i64, i64)> = found
                .iter()
                .enumerate()
                .filter(|&(m, _)| m != n)
                .flat_map(|(_, f)| f.iter().copied())
                .collect();
            material.insert(p.id, material::material(&chunks, &at, &others));
            for f in &fs {
                // A chunk often holds several findings: it is read once.
                if let std::collections::btree_map::Entry::Vacant(e) = read.entry(f.chunk_id) {
                    e.insert(ChunkRead::of(queue.chunk(f.chunk_id).await?));
                }
                let chunk = &read[&f.chunk_id];
                let code = f.code.as_deref().filter(|c| !c.trim().is_empty());
                if let Some(quoted) = code.and_then(|c| chunk.quoted(c, f.line_start)) {
                    code_at.insert(f.id, quoted);
                }
                if let Some(text) = chunk.prose.as_deref().and_then(|t| passage(t, &f.evidence)) {
                    passages.insert(f.id, text);
                }
            }
            let page = match &stages.page {
                Some(stage) => queue.latest_result(stage, Some(p.id)).await?,
                None => None,
            };
            patterns.push((p, fs, page));
        }
        // The related chunks a page cites: those that name the pattern, in files its findings
        // do not already cite.
        let mut related: BTreeMap<i64, Vec<_>> = BTreeMap::new();
        for r in queue.related(None).await? {
            let elsewhere = patterns
                .iter()
                .find(|(p, _, _)| p.id == r.pattern_id)
                .is_some_and(|(_, fs, _)| !fs.iter().any(|f| f.source_id == r.source_id));
            if r.cited && elsewhere {
                related.entry(r.pattern_id).or_insert_with(Vec::new).push(r);
            }
        }
        let overview = match &stages.overview {
            Some(stage) => queue.latest_result(stage, None).await?,
            None => None,
        };
        let overview = overview.and_then(|v| {
            v.get("overview")
                .and_then(|o| o.as_str())
                .filter(|o| !o.trim().is_empty() && !crate::engine::checks::repetitive(o))
                .map(str::to_string)
        });
        let mut notes: BTreeMap<i64, Vec<_>> = BTreeMap::new();
        let mut unread: BTreeMap<i64, Vec<(i64, i64, String)>> = BTreeMap::new();
        for s in &sources {
            if let Some(stage) = &stages.extract {
                for (a, b, v) in queue.chunk_results(stage, s.id).await? {
                    let Some(why) = v.get("not_asked").and_then(|w| w.as_str()) else {
                        continue;
                    };
                    let ranges = unread.entry(s.id).or_default();
                    match ranges.last_mut() {
                        Some((_, end, w)) if w == why && *end + 1 >= a => *end = b.max(*end),
                        _ => ranges.push((a, b, why.to_string())),
                    }
                }
            }
            for stage in &stages.notes {
                for (a, b, v) in queue.chunk_results(stage, s.id).await? {
                    notes
                        .entry(s.id)
                        .or_default()
                        .push((stage.clone(), a, b, v));
                }
            }
        }
        Ok(Kb {
            sources,
            chunks,
            findings,
            patterns,
            overview,
            failures: queue.failures().await?,
            notes,
            passages,
            code_at,
            material,
            unread,
            related,
            see_also: BTreeMap::new(),
        })
    }
}

/// A rendered page: path relative to `output/`, and its text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page {
    pub path: PathBuf,
    pub text: String,
}

/// A field of the writer's reply, when informative (small models repeat themselves, or talk
/// about "the text").
fn text_field<'a>(page: &'a Option<serde_json::Value>, key: &str) -> Option<&'a str> {
    page.as_ref()?
        .get(key)?
        .as_str()
        .map(str::trim)
        .filter(|s| informative(s))
}

/// Renders every page with `templates`. Pure: the same `Kb` gives the same pages. The only
/// error is a template that cannot render (a user's, naming its file).
pub fn render(kb: &Kb, templates: &Templates) -> Result<Vec<Page>, TemplateError> {
    use self::templates::{BOOK, INDEX, PATTERN, SOURCE, SUMMARY};
    let paths = Paths::new(&kb.sources, kb.patterns.iter().map(|(p, _, _)| p));
    let by_category = view::categories(kb);
    let mut pages = Vec::new();
    let mut definitions = BTreeMap::new();
    for (p, findings, reply) in &kb.patterns {
        let v = view::pattern(
            p,
            findings,
            reply,
            &kb.passages,
            &kb.code_at,
            kb.material.get(&p.id),
            &paths,
        )
        .with_related(kb, p.id, &paths);
        if let Some(lead) = &v.lead {
            definitions.insert(p.id, view::one_line(lead));
        }
        pages.push(page(templates, PATTERN, paths.pattern(p), &v)?);
    }
    for s in &kb.sources {
        let path = paths.source(s.id, &s.rel_path);
        let v = view::source(s, kb, &path, &paths);
        pages.push(page(templates, SOURCE, path, &v)?);
    }
    let index = view::index(kb, &by_category, &paths, &definitions);
    pages.push(page(templates, INDEX, "index.md".into(), &index)?);
    let summary = view::summary(kb, &by_category, &paths);
    pages.push(page(templates, SUMMARY, "SUMMARY.md".into(), &summary)?);
    pages.push(page(templates, BOOK, "book.toml".into(), &view::Book {})?);
    Ok(pages)
}

/// One page: `template` rendered with `view`.
fn page(
    templates: &Templates,
    template: &str,
    path: String,
    view: &impl serde::Serialize,
) -> Result<Page, TemplateError> {
    let text = templates.render(template, &path, view)?;
    Ok(Page {
        path: PathBuf::from(path),
        text,
    })
}

/// Model-written prose and quoted text, made safe to render: markdown links keep only their
/// text, words that look like file paths lose their extension, so that only quarry's own
/// citations point at files (a reader would take `other.md` in prose for a source), and a
/// `<` outside code spans is written `&lt;` so that `Box<dyn Error>` is not read as a tag.
pub fn prose(s: &str) -> String {
    // [text](target) -> text
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(open) = rest.find('[') {
        let (before, after) = rest.split_at(open);
        out.push_str(before);
        let link = after.find("](").and_then(|mid| {
            let close = after[mid..].find(')')? + mid;
            (!after[1..mid].contains('[')).then_some((mid, close))
        });
        match link {
            Some((mid, close)) => {
                out.push_str(&after[1..mid]);
                rest = &after[close + 1..];
            }
            None => {
                out.push('[');
                rest = &after[1..];
            }
        }
    }
    out.push_str(rest);
    // `<` outside code spans would open an HTML tag and hide the text (`Box<dyn Error>`).
    let out: String = out
        .split('`')
        .enumerate()
        .map(|(i, part)| {
            if i % 2 == 0 {
                part.replace('<', "&lt;")
            } else {
                part.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("`");
    let mut result = String::with_capacity(out.len());
    for (i, word) in out.split(' ').enumerate() {
        if i > 0 {
            result.push(' ');
        }
        let core_end = word
            .trim_end_matches(|c: char| ".,;:!?)`'\"".contains(c))
            .len();
        let (core, tail) = word.split_at(core_end);
        match crate::ingest::without_extension(core) {
            Some(stem) => {
                result.push_str(stem);
                result.push_str(tail);
            }
            None => result.push_str(word),
        }
    }
    result
}

fn title_case(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

/// Prose worth showing: not empty, not looping, not talk about "the text" or the task (what a
/// small model writes when it has nothing to say).
fn informative(s: &str) -> bool {
    let lower = s.trim().to_lowercase();
    let meta = [
        "this text",
        "the text",
        "this is a list",
        "this section",
        "the following",
    ]
    .iter()
    .any(|m| lower.starts_with(m))
        || [
            "the text above",
            "explains or demonstrates",
            "idioms or techniques",
            "[pattern]",
        ]
        .iter()
        .any(|m| lower.contains(m));
    lower.split_whitespace().count() >= 3 && !meta && !crate::engine::checks::repetitive(s)
}

/// What some findings say: the first informative summary a model wrote for them that the
/// author's text `backs` (the check all model prose passes), else the first of their
/// passages long enough to say something (a heading quoted as evidence is not), quoted; with
/// the finding it comes from.
fn say<'a>(
    findings: &[&'a FindingRow],
    passages: &BTreeMap<i64, String>,
    backs: &dyn Fn(&str) -> bool,
) -> Option<(String, &'a FindingRow)> {
    if let Some(f) = findings
        .iter()
        .find(|f| informative(&f.summary) && backs(&f.summary))
    {
        return Some((f.summary.clone(), f));
    }
    // Passages are prose; a line of code quoted as a sentence reads as noise.
    findings.iter().find_map(|f| {
        let quote = passages.get(&f.id)?;
        (quote.split_whitespace().count() >= 6).then(|| (format!("“{quote}”"), *f))
    })
}

/// A pattern's category: the one most of its own findings give (a small model's category is
/// noisy; the first finding's was often the odd one out), the stored one on a tie.
fn category_of(p: &PatternRow, findings: &[FindingRow]) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for f in findings.iter().filter(|f| f.pattern_key == p.key) {
        *counts.entry(f.category.as_str()).or_default() += 1;
    }
    let most = counts.values().copied().max().unwrap_or(0);
    if counts.get(p.category.as_str()) == Some(&most) || most == 0 {
        return p.category.clone();
    }
    counts
        .into_iter()
        .find(|(_, n)| *n == most)
        .map_or_else(|| p.category.clone(), |(c, _)| c.to_string())
}

/// A chunk that findings quote, read once however many findings it holds.
struct ChunkRead {
    chunk: crate::queue::store::ChunkRow,
    /// Its prose (markdown reduced to sentences), where the passages around evidence are found.
    prose: Option<String>,
    /// The line ranges of its code blocks (markdown and text chunks).
    blocks: Vec<(i64, i64)>,
}

impl ChunkRead {
    fn of(chunk: crate::queue::store::ChunkRow) -> ChunkRead {
        let prose = chunk
            .kind
            .parse()
            .ok()
            .and_then(|k| prose_of(k, &chunk.text));
        let blocks = material::parts_of(&chunk)
            .iter()
            .flat_map(|p| &p.blocks)
            .map(|b| (b.line_start, b.line_end))
            .collect();
        ChunkRead {
            chunk,
            prose,
            blocks,
        }
    }

    /// Where the code a finding quoted stands: the lines of the chunk holding its first line
    /// (the nearest to line `near` when there are several), code when they are in a code
    /// block or a Rust chunk, prose otherwise. Markdown, text and Rust only: a JSON finding
    /// keeps its own lines.
    fn quoted(&self, code: &str, near: i64) -> Option<Quoted> {
        let (a, b) = code_lines(&self.chunk, code, near)?;
        let in_block = self.blocks.iter().any(|&(s, e)| s <= a && a <= e);
        let rust = self.chunk.kind.parse() == Ok(crate::ingest::FileKind::Rust);
        Some(if rust || in_block {
            Quoted::Code(a, b)
        } else {
            Quoted::Prose
        })
    }
}

/// The lines of `chunk` that `code` (a model's quote of it) stands at: where its first line
/// occurs, the occurrence nearest line `near` on a tie; `None` when it does not occur, or the
/// chunk's lines are not the source's (a JSON chunk is its fields flattened).
fn code_lines(chunk: &crate::queue::store::ChunkRow, code: &str, near: i64) -> Option<(i64, i64)> {
    use crate::ingest::FileKind;
    if !matches!(
        chunk.kind.parse::<FileKind>(),
        Ok(FileKind::Markdown | FileKind::Text | FileKind::Rust)
    ) {
        return None;
    }
    let mut lines = code.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines.next()?;
    let more = lines.count() as i64;
    chunk
        .text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.contains(first))
        .map(|(i, _)| chunk.line_start + i as i64)
        .min_by_key(|l| (l - near).abs())
        .map(|l| (l, (l + more).min(chunk.line_end)))
}

/// The finding whose code line best shows the pattern: one of its own findings before an
/// aspect's, a line naming the pattern's words before one that does not, a longer line
/// before a shorter one (`fn new() -> Self {` shows little); only the findings `usable` keeps.
fn example<'a>(
    p: &PatternRow,
    findings: &'a [FindingRow],
    usable: impl Fn(&FindingRow) -> bool,
) -> Option<&'a FindingRow> {
    let words: Vec<String> = crate::engine::checks::normalise_text(&p.name)
        .split(' ')
        .filter(|w| w.len() >= 3)
        .map(str::to_string)
        .collect();
    findings
        .iter()
        .filter(|f| usable(f))
        .filter_map(|f| {
            let code = f.code.as_deref().filter(|c| !c.trim().is_empty())?;
            let norm = crate::engine::checks::normalise_text(code);
            let named = words
                .iter()
                .filter(|w| norm.split(' ').any(|n| n == w.as_str()))
                .count();
            Some(((f.pattern_key == p.key, named, code.trim().len()), f))
        })
        .fold(
            None,
            |best: Option<((bool, usize, usize), &FindingRow)>, (k, f)| match best {
                Some((bk, _)) if bk >= k => best,
                _ => Some((k, f)),
            },
        )
        .map(|(_, f)| f)
}

/// The file listing, one per line, what quarry wrote in its output folder (relative paths).
pub const MANIFEST: &str = ".quarry-manifest";
/// Temporary files of the writer: `.quarry-tmp-PID-N`, short whatever the page's name.
const TEMP_PREFIX: &str = ".quarry-tmp-";

#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("refusing to write {0:?}: not a plain path inside the output folder")]
    Escape(PathBuf),
    #[error("not writing {0}: another page has that path")]
    Duplicate(PathBuf),
    #[error("{} is not empty and quarry did not create it (no {MANIFEST}): pass --force to write the knowledge base there (quarry removes only files it wrote)", .0.display())]
    NotOurs(PathBuf),
}

/// What `write_pages` did. A page that could not be written is in `failed` (and logged with
/// its path); it never stops the others.
#[derive(Debug, Default)]
pub struct WriteReport {
    pub written: usize,
    pub unchanged: usize,
    pub removed: usize,
    pub failed: Vec<RenderError>,
}

impl std::fmt::Display for WriteReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} page(s) written, {} unchanged, {} removed",
            self.written, self.unchanged, self.removed
        )?;
        if !self.failed.is_empty() {
            write!(f, ", {} could not be written", self.failed.len())?;
        }
        Ok(())
    }
}

/// Whether quarry may write into `dir`: it does not exist, is empty, holds quarry's manifest,
/// or `force` says so.
pub fn check_output(dir: &Path, force: bool) -> Result<(), RenderError> {
    let mut entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(RenderError::Io {
                path: dir.to_path_buf(),
                source,
            })
        }
    };
    if force || dir.join(MANIFEST).is_file() || entries.next().is_none() {
        Ok(())
    } else {
        Err(RenderError::NotOurs(dir.to_path_buf()))
    }
}

/// Writes pages under `dir` atomically (temp file, then rename), skips pages whose text is
/// unchanged, and removes the files of the previous manifest that no page produces any more.
/// Files quarry did not write are never removed. Errors: the folder is not quarry's (see
/// `check_output`), or cannot be created, or its manifest cannot be written.
pub fn write_pages(dir: &Path, pages: &[Page], force: bool) -> Result<WriteReport, RenderError> {
    check_output(dir, force)?;
    std::fs::create_dir_all(dir).map_err(|source| RenderError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    remove_orphan_temp_files(dir);
    let old = read_manifest(dir);
    let mut report = WriteReport::default();
    let mut produced = BTreeSet::new();
    let mut todo = Vec::new();
    for page in pages {
        if !plain_relative(&page.path) {
            report.failed.push(RenderError::Escape(page.path.clone()));
        } else if !produced.insert(page.path.clone()) {
            report
                .failed
                .push(RenderError::Duplicate(page.path.clone()));
        } else {
            todo.push(page);
        }
    }
    // Listed before it is written, so that a writer killed half-way still owns what it wrote.
    write_manifest(dir, &old.union(&produced).cloned().collect())?;
    let mut owned = BTreeSet::new();
    for page in todo {
        match write_page(dir, page) {
            Ok(changed) => {
                if changed {
                    report.written += 1;
                } else {
                    report.unchanged += 1;
                }
                owned.insert(page.path.clone());
            }
            Err(e) => {
                if old.contains(&page.path) {
                    owned.insert(page.path.clone());
                }
                report.failed.push(e);
            }
        }
    }
    for stale in old.difference(&produced) {
        let path = dir.join(stale);
        match std::fs::remove_file(&path) {
            Ok(()) => {
                report.removed += 1;
                // Folders left empty go too (never `dir` itself, never one still holding
                // anything).
                for parent in path.ancestors().skip(1) {
                    if parent == dir || std::fs::remove_dir(parent).is_err() {
                        break;
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                owned.insert(stale.clone());
                report.failed.push(RenderError::Io { path, source });
            }
        }
    }
    write_manifest(dir, &owned)?;
    for e in &report.failed {
        tracing::warn!("{e}");
    }
    Ok(report)
}

/// Relative, only normal parts, no control characters (a manifest line each).
fn plain_relative(path: &Path) -> bool {
    !path.as_os_str().is_empty()
        && path.components().all(|c| matches!(c, Component::Normal(_)))
        && path
            .to_str()
            .is_some_and(|s| !s.chars().any(char::is_control))
}

/// Writes one page unless its text is already there; true when it wrote.
fn write_page(dir: &Path, page: &Page) -> Result<bool, RenderError> {
    let target = dir.join(&page.path);
    if std::fs::read(&target).ok().as_deref() == Some(page.text.as_bytes()) {
        return Ok(false);
    }
    write_atomic(&target, page.text.as_bytes())?;
    Ok(true)
}

/// Temp file next to `target`, then rename: a reader sees the old text or the new one.
fn write_atomic(target: &Path, text: &[u8]) -> Result<(), RenderError> {
    static SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| RenderError::Io { path, source }
    };
    let parent = target.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(io(target))?;
    let n = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = parent.join(format!("{TEMP_PREFIX}{}-{n}", std::process::id()));
    let written = std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, target));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written.map_err(io(target))
}

fn read_manifest(dir: &Path) -> BTreeSet<PathBuf> {
    std::fs::read_to_string(dir.join(MANIFEST))
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(PathBuf::from)
        .filter(|p| plain_relative(p) && p != Path::new(MANIFEST))
        .collect()
}

fn write_manifest(dir: &Path, paths: &BTreeSet<PathBuf>) -> Result<(), RenderError> {
    let mut text = String::from("# Files quarry wrote in this folder; it removes only these.\n");
    for p in paths {
        let _ = writeln!(text, "{}", p.display());
    }
    write_atomic(&dir.join(MANIFEST), text.as_bytes())
}

/// Temp files of writers that were killed between write and rename (`.quarry-tmp-PID-N`
/// whose process is gone).
fn remove_orphan_temp_files(dir: &Path) {
    for entry in walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(Result::ok)
    {
        let name = entry.file_name().to_string_lossy();
        let Some(pid) = name
            .strip_prefix(TEMP_PREFIX)
            .and_then(|rest| rest.split('-').next())
        else {
            continue;
        };
        let alive = pid
            .parse::<u32>()
            .is_ok_and(|p| Path::new(&format!("/proc/{p}")).exists());
        if !alive && entry.file_type().is_file() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests;
