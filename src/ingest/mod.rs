//! Ingestion of a notes folder: the public types ([`Chunk`], [`SourceFile`],
//! [`Entry`], [`Refusal`], [`IngestOptions`]), the directory walk ([`walk`],
//! [`walk_report`]) and the reading/classification of one file
//! ([`read_file`]). This module owns all file-system I/O; the splitters in the
//! submodules are pure `&str -> Vec<Chunk>` functions dispatched by [`split`].

mod chunk;
pub mod json;
pub mod markdown;
pub mod pipeline;
pub mod rust;
pub(crate) mod rust_scan;
pub mod text;

#[cfg(test)]
mod tests;

use std::fmt;
use std::io::ErrorKind;
use std::path::{Component, Path, PathBuf};
use std::str::FromStr;

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};
use serde::Serialize;
use sha2::{Digest, Sha256};
use walkdir::WalkDir;

/// Counts model tokens in a text. Implementations must be cheap and should
/// grow (weakly) with the text: the packer relies on that to find split points.
pub trait TokenCounter: Send + Sync {
    fn count(&self, text: &str) -> usize;
}

/// Cheap token estimate: `max(ceil(bytes / 4), whitespace-separated words)`.
#[derive(Clone, Copy, Debug, Default)]
pub struct ApproxTokens;

impl TokenCounter for ApproxTokens {
    fn count(&self, text: &str) -> usize {
        text.len().div_ceil(4).max(count_words(text.as_bytes()))
    }
}

/// ASCII-whitespace-separated runs, as `str::split_ascii_whitespace` counts them. A word
/// starts at a non-space byte after a space (or at the start): bytes are read 64 at a time
/// into a bit mask of spaces, so the loop vectorises; the packer calls this often.
fn count_words(b: &[u8]) -> usize {
    fn spaces(bytes: &[u8]) -> u64 {
        let mut m = 0u64;
        for (j, &c) in bytes.iter().enumerate() {
            let space = c == b' ' || ((b'\t'..=b'\r').contains(&c) && c != 0x0B);
            m |= u64::from(space) << j;
        }
        m
    }
    let mut words = 0;
    let mut before = 1u64; // the start counts as after a space
    let mut blocks = b.chunks_exact(64);
    for block in &mut blocks {
        let m = spaces(block);
        words += (!m & ((m << 1) | before)).count_ones() as usize;
        before = m >> 63;
    }
    let rest = blocks.remainder();
    if !rest.is_empty() {
        let m = spaces(rest);
        let valid = u64::MAX >> (64 - rest.len());
        words += (!m & valid & ((m << 1) | before)).count_ones() as usize;
    }
    words
}

/// What to ingest and how large chunks may be.
#[derive(Clone, Debug)]
pub struct IngestOptions {
    /// File extensions to consider (case-insensitive, without the dot).
    pub extensions: Vec<String>,
    /// Glob patterns relative to the root; when non-empty a file must match one.
    pub include: Vec<String>,
    /// Glob patterns relative to the root; matching files and folders are skipped.
    pub exclude: Vec<String>,
    /// Files larger than this are refused with [`Refusal::TooLarge`].
    pub max_file_bytes: u64,
    /// Target maximum tokens per chunk (atomic blocks may exceed it).
    pub chunk_tokens: usize,
    /// Tokens of overlap between consecutive chunks cut from one section.
    pub overlap_tokens: usize,
}

impl Default for IngestOptions {
    fn default() -> Self {
        IngestOptions {
            extensions: EXTENSIONS.iter().map(|(e, _)| e.to_string()).collect(),
            include: Vec::new(),
            exclude: Vec::new(),
            max_file_bytes: 5 * 1024 * 1024,
            chunk_tokens: 256,
            overlap_tokens: 32,
        }
    }
}

/// The extensions of the files quarry reads, and the kind each marks: the one list (the
/// default `extensions` to walk, a file's kind, a name or word that reads as a file path).
pub const EXTENSIONS: &[(&str, FileKind)] = &[
    ("md", FileKind::Markdown),
    ("markdown", FileKind::Markdown),
    ("mdown", FileKind::Markdown),
    ("mkd", FileKind::Markdown),
    ("txt", FileKind::Text),
    ("text", FileKind::Text),
    ("json", FileKind::Json),
    ("jsonl", FileKind::Jsonl),
    ("ndjson", FileKind::Jsonl),
    ("rs", FileKind::Rust),
];

/// A word that ends in the extension of a file quarry reads, without it ("guard.rs" →
/// "guard"); None for any other word.
pub fn without_extension(word: &str) -> Option<&str> {
    let (stem, ext) = word.rsplit_once('.')?;
    (!stem.is_empty() && FileKind::from_extension(ext).is_some()).then_some(stem)
}

/// The kind of a source file, decided by its extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileKind {
    Markdown,
    Text,
    Json,
    Jsonl,
    Rust,
}

impl FileKind {
    /// All kinds, in a stable order.
    pub const ALL: [FileKind; 5] = [
        FileKind::Markdown,
        FileKind::Text,
        FileKind::Json,
        FileKind::Jsonl,
        FileKind::Rust,
    ];

    /// Stable lowercase name: "markdown", "text", "json", "jsonl", "rust".
    pub fn as_str(self) -> &'static str {
        match self {
            FileKind::Markdown => "markdown",
            FileKind::Text => "text",
            FileKind::Json => "json",
            FileKind::Jsonl => "jsonl",
            FileKind::Rust => "rust",
        }
    }

    /// Kind for a file extension (case-insensitive, without the dot; see [`EXTENSIONS`]).
    pub fn from_extension(ext: &str) -> Option<FileKind> {
        EXTENSIONS
            .iter()
            .find(|(e, _)| e.eq_ignore_ascii_case(ext))
            .map(|(_, kind)| *kind)
    }

    /// Prose read by its structure: markdown and plain text.
    pub fn is_prose(self) -> bool {
        matches!(self, FileKind::Markdown | FileKind::Text)
    }

    /// Records rendered as key-path lines: JSON and JSON Lines.
    pub fn is_record(self) -> bool {
        matches!(self, FileKind::Json | FileKind::Jsonl)
    }

    /// Kind for a path, by its extension.
    pub fn from_path(path: &Path) -> Option<FileKind> {
        path.extension()
            .and_then(|e| e.to_str())
            .and_then(FileKind::from_extension)
    }
}

impl fmt::Display for FileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error of [`FileKind::from_str`].
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
#[error("unknown file kind `{0}`; use one of: markdown, text, json, jsonl, rust")]
pub struct UnknownFileKind(pub String);

impl FromStr for FileKind {
    type Err = UnknownFileKind;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let l = s.trim().to_ascii_lowercase();
        FileKind::ALL
            .into_iter()
            .find(|k| k.as_str() == l)
            .ok_or_else(|| UnknownFileKind(s.to_string()))
    }
}

/// One piece of a source file, sized for a small model.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Chunk {
    /// Position of the chunk in its file, from 0.
    pub ordinal: u32,
    /// Byte range in the source file (end exclusive).
    pub byte_start: usize,
    pub byte_end: usize,
    /// 1-based inclusive line range in the source file.
    pub line_start: u32,
    pub line_end: u32,
    /// Markdown heading path, Rust item path, or JSON key path.
    pub heading_path: Vec<String>,
    /// What the model reads: the exact source slice for markdown, text and
    /// Rust; the rendered key-path lines of the records for JSON/JSONL.
    pub text: String,
    /// Size of `text` by the counter the file was split with.
    #[serde(skip)]
    pub tokens: usize,
}

/// A file that was read, decoded and split.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SourceFile {
    /// '/'-separated path relative to the root.
    pub rel_path: String,
    pub kind: FileKind,
    /// Size in bytes.
    pub bytes: u64,
    /// SHA-256 of the raw bytes, lowercase hex.
    pub content_hash: String,
    /// The decoded file content.
    pub text: String,
    /// Front matter key/values (markdown) or other per-file facts.
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// Non-fatal remarks, e.g. a JSON parse error and the fallback taken.
    pub notes: Vec<String>,
    pub chunks: Vec<Chunk>,
    /// What the whole file tells its chunks' terms and pages, worked out here once.
    pub facts: crate::text::terms::FileFacts,
}

/// Why a file was not ingested.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Refusal {
    #[error("binary file (NUL byte at offset {offset}); not a text note, skipped")]
    Binary { offset: u64 },
    #[error(
        "not valid UTF-8 at line {line}, column {column} (byte offset {byte_offset}); re-save the file as UTF-8"
    )]
    InvalidUtf8 {
        line: u32,
        column: u32,
        byte_offset: u64,
    },
    #[error("empty file (nothing but whitespace); nothing to ingest")]
    Empty,
    #[error(
        "file is {size} bytes, over the {limit}-byte limit; raise max_file_bytes or split the file"
    )]
    TooLarge { size: u64, limit: u64 },
    #[error("cannot read file: {message}; check its permissions")]
    Unreadable { message: String },
    #[error("file disappeared between listing and reading; run the ingest again")]
    Vanished,
    /// A path the walk could not take (an unreadable folder, a link loop, a broken or
    /// folder link, a bad ignore rule): recorded so that `status --failed` still shows it.
    #[error("{message}")]
    Skipped { message: String },
}

impl Refusal {
    /// Stable short kind: "binary", "invalid_utf8", "empty", "too_large",
    /// "unreadable", "vanished", "skipped".
    pub fn kind(&self) -> &'static str {
        match self {
            Refusal::Binary { .. } => "binary",
            Refusal::InvalidUtf8 { .. } => "invalid_utf8",
            Refusal::Empty => "empty",
            Refusal::TooLarge { .. } => "too_large",
            Refusal::Unreadable { .. } => "unreadable",
            Refusal::Vanished => "vanished",
            Refusal::Skipped { .. } => "skipped",
        }
    }
}

/// The outcome of reading one listed file.
#[derive(Clone, Debug, PartialEq)]
pub enum Entry {
    File(Box<SourceFile>),
    Refused {
        rel_path: String,
        kind: Option<FileKind>,
        refusal: Refusal,
    },
}

impl Entry {
    /// The '/'-separated relative path of the entry.
    pub fn rel_path(&self) -> &str {
        match self {
            Entry::File(f) => &f.rel_path,
            Entry::Refused { rel_path, .. } => rel_path,
        }
    }
}

/// Root-level failures: nothing can be ingested.
#[derive(thiserror::Error, Debug)]
pub enum IngestError {
    #[error("notes folder {} does not exist; check the path", path.display())]
    NotFound { path: PathBuf },
    #[error("{} is not a folder; pass the folder that holds the notes", path.display())]
    NotADirectory { path: PathBuf },
    #[error("cannot open notes folder {}: {message}; check its permissions", path.display())]
    RootUnreadable { path: PathBuf, message: String },
    #[error("invalid {option} glob `{pattern}`: {message}; fix or remove the pattern")]
    BadPattern {
        option: &'static str,
        pattern: String,
        message: String,
    },
}

/// Something the walk could not look into (not fatal).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WalkProblem {
    /// '/'-separated path relative to the root ("" for the root itself).
    pub rel_path: String,
    pub message: String,
}

impl WalkProblem {
    /// The problem as an entry to store: a path that was skipped, with its reason.
    pub fn into_entry(self) -> Entry {
        Entry::Refused {
            rel_path: if self.rel_path.is_empty() {
                ".".into()
            } else {
                self.rel_path
            },
            kind: None,
            refusal: Refusal::Skipped {
                message: self.message,
            },
        }
    }
}

/// The result of [`walk_report`]: candidate files and what was skipped with a problem.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WalkReport {
    /// Sorted relative paths of candidate files.
    pub files: Vec<PathBuf>,
    pub problems: Vec<WalkProblem>,
}

/// Sorted candidate files (relative to `root`). See [`walk_report`].
pub fn walk(root: &Path, opts: &IngestOptions) -> Result<Vec<PathBuf>, IngestError> {
    walk_report(root, opts).map(|r| r.files)
}

/// '/'-separated form of a relative path.
pub fn rel_string(rel: &Path) -> String {
    let parts: Vec<String> = rel
        .components()
        .filter_map(|c| match c {
            Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect();
    parts.join("/")
}

struct IgnoreRules {
    any: GlobSet,
    dir_only: GlobSet,
}

impl IgnoreRules {
    fn matches(&self, rel: &str, is_dir: bool) -> bool {
        self.any.is_match(rel) || (is_dir && self.dir_only.is_match(rel))
    }
}

/// Reads `.gitignore` and `.quarryignore` of the root into a simple subset of
/// gitignore semantics: comments, blank lines, `/`-anchoring, trailing `/`
/// (folders only), `*`/`?`/`**`. Negations (`!`) are not supported and are
/// reported as problems.
fn ignore_rules(root: &Path, problems: &mut Vec<WalkProblem>) -> IgnoreRules {
    let mut any = GlobSetBuilder::new();
    let mut dir_only = GlobSetBuilder::new();
    for name in [".gitignore", ".quarryignore"] {
        let path = root.join(name);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) => {
                problems.push(WalkProblem {
                    rel_path: name.to_string(),
                    message: format!("cannot read ignore file: {e}; its rules are not applied"),
                });
                continue;
            }
        };
        for (n, line) in text.lines().enumerate() {
            let line = line.trim_end();
            let trimmed = line.trim_start();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            if trimmed.starts_with('!') {
                problems.push(WalkProblem {
                    rel_path: name.to_string(),
                    message: format!(
                        "line {}: negated pattern `{trimmed}` is not supported; ignored",
                        n + 1
                    ),
                });
                continue;
            }
            let (pat, is_dir) = match trimmed.strip_suffix('/') {
                Some(p) => (p, true),
                None => (trimmed, false),
            };
            let anchored = pat.starts_with('/') || pat.contains('/');
            let pat = pat.trim_start_matches('/');
            if pat.is_empty() {
                continue;
            }
            let full = if anchored || pat.starts_with("**/") {
                pat.to_string()
            } else {
                format!("**/{pat}")
            };
            match GlobBuilder::new(&full).literal_separator(true).build() {
                Ok(g) => {
                    if is_dir {
                        dir_only.add(g);
                    } else {
                        any.add(g);
                    }
                }
                Err(e) => problems.push(WalkProblem {
                    rel_path: name.to_string(),
                    message: format!("line {}: bad pattern `{trimmed}`: {e}; ignored", n + 1),
                }),
            }
        }
    }
    IgnoreRules {
        any: any.build().unwrap_or_else(|_| GlobSet::empty()),
        dir_only: dir_only.build().unwrap_or_else(|_| GlobSet::empty()),
    }
}

fn user_globs(option: &'static str, patterns: &[String]) -> Result<GlobSet, IngestError> {
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        let g = Glob::new(p).map_err(|e| IngestError::BadPattern {
            option,
            pattern: p.clone(),
            message: e.kind().to_string(),
        })?;
        b.add(g);
    }
    b.build().map_err(|e| IngestError::BadPattern {
        option,
        pattern: patterns.join(", "),
        message: e.to_string(),
    })
}

/// Lists candidate files under `root`, sorted, as paths relative to `root`.
///
/// Skips hidden files and folders, `target/` and `node_modules/`, whatever the
/// root's `.gitignore` / `.quarryignore` ignore, files not matching `include`
/// (when given), anything matching `exclude`, and files whose extension is not
/// in `extensions`. Symbolic links to files are listed; symbolic links to
/// folders are not followed (so link loops cannot trap the walk) and are
/// reported as problems, as are folders that cannot be read.
pub fn walk_report(root: &Path, opts: &IngestOptions) -> Result<WalkReport, IngestError> {
    match std::fs::metadata(root) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(IngestError::NotADirectory {
                path: root.to_path_buf(),
            })
        }
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return Err(IngestError::NotFound {
                path: root.to_path_buf(),
            })
        }
        Err(e) => {
            return Err(IngestError::RootUnreadable {
                path: root.to_path_buf(),
                message: e.to_string(),
            })
        }
    }
    if let Err(e) = std::fs::read_dir(root) {
        return Err(IngestError::RootUnreadable {
            path: root.to_path_buf(),
            message: e.to_string(),
        });
    }
    let include = user_globs("include", &opts.include)?;
    let exclude = user_globs("exclude", &opts.exclude)?;
    let exts: Vec<String> = opts
        .extensions
        .iter()
        .map(|e| e.trim_start_matches('.').to_ascii_lowercase())
        .collect();
    let mut report = WalkReport::default();
    let ignore = ignore_rules(root, &mut report.problems);

    let walker = WalkDir::new(root)
        .follow_links(false)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| {
            if e.depth() == 0 {
                return true;
            }
            let name = e.file_name().to_string_lossy();
            if name.starts_with('.') {
                return false;
            }
            let is_dir = e.file_type().is_dir();
            if is_dir && (name == "target" || name == "node_modules") {
                return false;
            }
            let rel = e
                .path()
                .strip_prefix(root)
                .map(rel_string)
                .unwrap_or_default();
            if ignore.matches(&rel, is_dir) {
                return false;
            }
            !(is_dir && exclude.is_match(&rel))
        });
    for item in walker {
        let entry = match item {
            Ok(e) => e,
            Err(err) => {
                let rel = err
                    .path()
                    .and_then(|p| p.strip_prefix(root).ok())
                    .map(rel_string)
                    .unwrap_or_default();
                let message = match err.io_error() {
                    Some(io) => format!("cannot read: {io}; check its permissions"),
                    None => err.to_string(),
                };
                report.problems.push(WalkProblem {
                    rel_path: rel,
                    message,
                });
                continue;
            }
        };
        if entry.depth() == 0 {
            continue;
        }
        let rel_path = match entry.path().strip_prefix(root) {
            Ok(r) => r.to_path_buf(),
            Err(_) => continue,
        };
        let rel = rel_string(&rel_path);
        let ft = entry.file_type();
        if ft.is_dir() {
            continue;
        }
        if ft.is_symlink() {
            match std::fs::metadata(entry.path()) {
                Ok(m) if m.is_file() => {}
                Ok(m) if m.is_dir() => {
                    report.problems.push(WalkProblem {
                        rel_path: rel,
                        message:
                            "symbolic link to a folder is not followed; link the files instead"
                                .to_string(),
                    });
                    continue;
                }
                Ok(_) => continue,
                Err(e) => {
                    report.problems.push(WalkProblem {
                        rel_path: rel,
                        message: format!("broken symbolic link: {e}"),
                    });
                    continue;
                }
            }
        } else if !ft.is_file() {
            continue;
        }
        let ext_ok = rel_path
            .extension()
            .and_then(|e| e.to_str())
            .map(|e| exts.iter().any(|x| x.eq_ignore_ascii_case(e)))
            .unwrap_or(false);
        if !ext_ok {
            continue;
        }
        if !opts.include.is_empty() && !include.is_match(&rel) {
            continue;
        }
        if exclude.is_match(&rel) {
            continue;
        }
        report.files.push(rel_path);
    }
    report.files.sort();
    Ok(report)
}

fn io_refusal(e: &std::io::Error) -> Refusal {
    match e.kind() {
        ErrorKind::NotFound => Refusal::Vanished,
        _ => Refusal::Unreadable {
            message: e.to_string(),
        },
    }
}

/// Strictly classifies raw bytes: NUL → binary, bad UTF-8 → invalid, blank → empty.
pub fn decode(bytes: &[u8]) -> Result<&str, Refusal> {
    let nul = memchr::memchr(0, bytes);
    if let Some(offset) = nul {
        return Err(Refusal::Binary {
            offset: offset as u64,
        });
    }
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let valid = e.valid_up_to();
        // Valid prefix: safe to view as str.
        let prefix = std::str::from_utf8(&bytes[..valid]).unwrap_or("");
        let line = prefix.matches('\n').count() + 1;
        let line_start = prefix.rfind('\n').map(|i| i + 1).unwrap_or(0);
        let column = prefix[line_start..].chars().count() + 1;
        Refusal::InvalidUtf8 {
            line: u32::try_from(line).unwrap_or(u32::MAX),
            column: u32::try_from(column).unwrap_or(u32::MAX),
            byte_offset: valid as u64,
        }
    })?;
    if text
        .trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}')
        .is_empty()
    {
        return Err(Refusal::Empty);
    }
    Ok(text)
}

/// Reads, classifies, decodes and splits one file (`root.join(rel)`).
/// Never fails: problems become [`Entry::Refused`].
pub fn read_file(
    root: &Path,
    rel: &Path,
    opts: &IngestOptions,
    tokens: &dyn TokenCounter,
) -> Entry {
    let rel_path = rel_string(rel);
    let kind = FileKind::from_path(rel);
    let refused = |refusal: Refusal| Entry::Refused {
        rel_path: rel_path.clone(),
        kind,
        refusal,
    };
    let abs = root.join(rel);
    let meta = match std::fs::metadata(&abs) {
        Ok(m) => m,
        Err(e) => return refused(io_refusal(&e)),
    };
    if !meta.is_file() {
        return refused(Refusal::Unreadable {
            message: "not a regular file".to_string(),
        });
    }
    if meta.len() > opts.max_file_bytes {
        return refused(Refusal::TooLarge {
            size: meta.len(),
            limit: opts.max_file_bytes,
        });
    }
    let bytes = match std::fs::read(&abs) {
        Ok(b) => b,
        Err(e) => return refused(io_refusal(&e)),
    };
    let size = bytes.len() as u64;
    if size > opts.max_file_bytes {
        // Grew between stat and read.
        return refused(Refusal::TooLarge {
            size,
            limit: opts.max_file_bytes,
        });
    }
    if bytes.is_empty() {
        return refused(Refusal::Empty);
    }
    let text = match decode(&bytes) {
        Ok(t) => t,
        Err(r) => return refused(r),
    };
    let kind = kind.unwrap_or(FileKind::Text);
    let (chunks, mut notes, metadata) = split(kind, text, opts, tokens);
    if chunks.is_empty() {
        notes.push("no content to chunk (only front matter or structure); nothing to index".into());
    }
    let facts = crate::text::terms::FileFacts::of_chunks(
        chunks
            .iter()
            .map(|c| (c.heading_path.as_slice(), c.text.as_str())),
        kind,
    );
    Entry::File(Box::new(SourceFile {
        facts,
        rel_path,
        kind,
        bytes: size,
        content_hash: hex::encode(Sha256::digest(&bytes)),
        text: text.to_string(),
        metadata,
        notes,
        chunks,
    }))
}

/// Splits decoded text of the given kind into chunks, notes and metadata.
pub fn split(
    kind: FileKind,
    text: &str,
    opts: &IngestOptions,
    tokens: &dyn TokenCounter,
) -> (
    Vec<Chunk>,
    Vec<String>,
    serde_json::Map<String, serde_json::Value>,
) {
    let (mut chunks, notes, metadata) = match kind {
        FileKind::Markdown => {
            let (chunks, metadata) = markdown::split(text, opts, tokens);
            (chunks, Vec::new(), metadata)
        }
        FileKind::Text => (
            text::split(text, opts, tokens),
            Vec::new(),
            Default::default(),
        ),
        FileKind::Json => {
            let (chunks, notes) = json::split(text, opts, tokens);
            (chunks, notes, Default::default())
        }
        FileKind::Jsonl => {
            let (chunks, notes) = json::split_lines(text, opts, tokens);
            (chunks, notes, Default::default())
        }
        FileKind::Rust => {
            let (chunks, notes) = rust::split(text, opts, tokens);
            (chunks, notes, Default::default())
        }
    };
    for c in &mut chunks {
        c.tokens = tokens.count(&c.text);
    }
    (chunks, notes, metadata)
}
