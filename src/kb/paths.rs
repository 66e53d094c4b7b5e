//! Where each page lives, and how names are written into links.
//!
//! The map from patterns and sources to page paths is injective by construction. A name is
//! kept as it is when it is already a plain file name: lowercase ASCII letters, digits, `.`,
//! `_` and `-`, not hidden, not a Windows device name, at most `PLAIN_MAX` bytes. Any other
//! name (upper case, other characters, `..`, too long) becomes a readable prefix of at most
//! `PREFIX_MAX` bytes, `~` and `HASH_HEX` hex digits of the SHA-256 of the exact original
//! identity (a pattern's slug; a source's root and path). A plain name never holds `~`, so a
//! kept name never meets a hashed one, and two hashed names meet only if their hashes do.
//! Every path is lowercase (distinct on case-insensitive file systems too) and its parts are
//! far below 255 bytes, temporary names included.

use std::collections::{BTreeMap, BTreeSet};

use sha2::{Digest, Sha256};

use crate::queue::store::{PatternRow, SourceRow};

/// Longest name kept as it is (a stored slug is at most 61 bytes plus a `-N` suffix).
const PLAIN_MAX: usize = 64;
/// Longest readable prefix of a hashed name.
const PREFIX_MAX: usize = 40;
/// Hex digits of the identity's hash in a hashed name (48 bits).
const HASH_HEX: usize = 12;

/// The page of every source and pattern of one knowledge base.
#[derive(Clone, Debug, Default)]
pub struct Paths {
    sources: BTreeMap<i64, String>,
    patterns: BTreeMap<i64, String>,
}

impl Paths {
    /// Sources of one enqueued folder live under `sources/`; when the database holds several
    /// folders, each has a folder of its own there (its name and the hash of its root).
    pub fn new<'a>(
        sources: &[SourceRow],
        patterns: impl IntoIterator<Item = &'a PatternRow>,
    ) -> Paths {
        let roots: BTreeSet<&str> = sources.iter().map(|s| s.root.as_str()).collect();
        let several = roots.len() > 1;
        Paths {
            sources: sources
                .iter()
                .map(|s| (s.id, source_path(&s.root, &s.rel_path, several)))
                .collect(),
            patterns: patterns
                .into_iter()
                .map(|p| (p.id, pattern_path(&p.slug)))
                .collect(),
        }
    }

    /// The page of a source (by id; by its path alone for a source the snapshot lacks).
    pub fn source(&self, id: i64, rel_path: &str) -> String {
        self.sources
            .get(&id)
            .cloned()
            .unwrap_or_else(|| source_path("", rel_path, false))
    }

    /// The page of a pattern.
    pub fn pattern(&self, p: &PatternRow) -> String {
        self.patterns
            .get(&p.id)
            .cloned()
            .unwrap_or_else(|| pattern_path(&p.slug))
    }
}

/// A pattern's page: `patterns/<slug>.md`, the slug being unique in the database.
pub fn pattern_path(slug: &str) -> String {
    let plain = plain_common(slug)
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    let stem = if plain {
        slug.to_string()
    } else {
        hashed(slug, "pattern", &hash(&["pattern", slug]))
    };
    format!("patterns/{stem}.md")
}

/// A source's page: `sources/<path>` for a plain markdown path, `sources/<path>.md` for
/// another plain path with an extension, otherwise the directories made plain and a hashed
/// file name. With `root_dir`, under a folder named for the root.
pub fn source_path(root: &str, rel: &str, root_dir: bool) -> String {
    let mut out = String::from("sources/");
    if root_dir {
        let name = root.rsplit('/').find(|p| !p.is_empty()).unwrap_or("root");
        out.push_str(&hashed(name, "root", &hash(&["root", root])));
        out.push('/');
    }
    let parts: Vec<&str> = rel.split('/').collect();
    let (file, dirs) = parts.split_last().expect("split yields one part at least");
    if dirs.iter().all(|d| plain_dir(d)) && plain_file(file) {
        out.push_str(rel);
        if !kept_file(file) {
            out.push_str(".md");
        }
        return out;
    }
    for d in dirs {
        if d.is_empty() || *d == "." || *d == ".." {
            continue;
        }
        if plain_dir(d) {
            out.push_str(d);
        } else {
            // Never holds a dot, so never ends in `.md` like a page.
            let s = sanitise(d, PREFIX_MAX);
            out.push_str(if s.is_empty() { "_" } else { &s });
        }
        out.push('/');
    }
    // `README.md`'s page is `readme~<hash>.md`, not `readme-md~<hash>.md`.
    let md = file.len() > 3 && file.is_char_boundary(file.len() - 3) && {
        file[file.len() - 3..].eq_ignore_ascii_case(".md")
    };
    let name = if md { &file[..file.len() - 3] } else { file };
    out.push_str(&hashed(name, "source", &hash(&["source", root, rel])));
    out.push_str(".md");
    out
}

/// Plain in any position: lowercase ASCII letters, digits, `.`, `_`, `-`; starts with a
/// letter, digit or `_`, does not end with `.`, not a Windows device name, short.
fn plain_common(c: &str) -> bool {
    let b = c.as_bytes();
    !b.is_empty()
        && b.len() <= PLAIN_MAX
        && b.iter().all(|&x| {
            x.is_ascii_lowercase() || x.is_ascii_digit() || matches!(x, b'.' | b'_' | b'-')
        })
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && !c.ends_with('.')
        && !c.ends_with('-')
        && !device_name(c.split('.').next().unwrap_or(c))
}

/// A plain directory: never ends in `.md`, so no directory is named like a page.
fn plain_dir(c: &str) -> bool {
    plain_common(c) && !c.ends_with(".md")
}

/// A markdown file whose name is its page's name: `notes.md`, not `x.txt.md` (whose page is
/// `x.txt.md.md`, as `x.txt`'s is `x.txt.md`).
fn kept_file(c: &str) -> bool {
    c.strip_suffix(".md")
        .is_some_and(|stem| !stem.contains('.'))
}

/// A plain file: a kept markdown name or a name with an extension (`Makefile`'s page would
/// meet `makefile.md`'s, so a name without a dot is hashed).
fn plain_file(c: &str) -> bool {
    plain_common(c) && (kept_file(c) || c.contains('.'))
}

fn device_name(stem: &str) -> bool {
    matches!(stem, "con" | "prn" | "aux" | "nul")
        || (stem.len() == 4
            && (stem.starts_with("com") || stem.starts_with("lpt"))
            && matches!(stem.as_bytes()[3], b'1'..=b'9'))
}

/// Lowercase ASCII letters and digits of `s`, every other run of characters one `-`, at most
/// `max` bytes, no `-` at either end.
fn sanitise(s: &str, max: usize) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if out.len() >= max {
            break;
        }
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_string()
}

fn hashed(name: &str, fallback: &str, hash: &str) -> String {
    let prefix = sanitise(name, PREFIX_MAX);
    let prefix = if prefix.is_empty() { fallback } else { &prefix };
    format!("{prefix}~{hash}")
}

/// The first `HASH_HEX` hex digits of the SHA-256 of the parts, each length-prefixed (so
/// that no two lists of parts hash the same bytes).
fn hash(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(format!("{}:", p.len()).as_bytes());
        h.update(p.as_bytes());
    }
    let mut hex = hex::encode(h.finalize());
    hex.truncate(HASH_HEX);
    hex
}

/// A name as a reader should see it: control characters (a newline in a file name) written
/// as escapes, so that no name can end a line of markdown.
pub fn shown(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// A name as markdown text (a link's text, a heading): shown, with the characters that
/// could end a link, open a code span, tag or emphasis, or close a heading escaped.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in shown(s).chars() {
        match c {
            '\\' | '[' | ']' | '`' | '*' => {
                out.push('\\');
                out.push(c);
            }
            '<' => out.push_str("&lt;"),
            '&' => out.push_str("&amp;"),
            c => out.push(c),
        }
    }
    // A heading's trailing `#`s would be read as its closing sequence.
    if out.ends_with('#') {
        out.pop();
        out.push_str("\\#");
    }
    out
}

/// `s` as a code span that shows it exactly: fenced by more backticks than it holds in a row,
/// padded when it starts or ends with a backtick or a space.
pub fn code_span(s: &str) -> String {
    let s = shown(s);
    let longest = s.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest + 1);
    let pad = s.starts_with(['`', ' ']) || s.ends_with(['`', ' ']);
    let sp = if pad { " " } else { "" };
    format!("{fence}{sp}{s}{sp}{fence}")
}

/// A page path as a link target: every byte outside `[A-Za-z0-9._~/-]` percent-encoded (page
/// paths hold none, but a link stays valid whatever it is given).
pub fn link_target(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'~' | b'/' | b'-') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
