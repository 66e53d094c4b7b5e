//! Whether a text can teach a Rust pattern at all. Two rules, both read off the text's own
//! structure, neither from a list of titles or file names:
//!
//! - a file with no mark of Rust syntax anywhere (no path `a::b`, no `&mut`, no generic
//!   `Vec<T>`, no attribute, no macro call, no `fn`/`impl` item...) teaches no Rust pattern:
//!   a preface, a provenance note, a list of translations, a table of contents;
//! - a chunk without Rust of its own whose lines mostly carry links is a list of references
//!   (a reading list, "Further reading"): it points at teaching elsewhere.
//!
//! The extractor is not asked about such a chunk, and the source page says why.

use crate::ingest::FileKind;
use crate::text::quotes::{fenced_lines, replace_links};

/// Why a chunk is not read for patterns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Silence {
    /// The whole file holds no Rust.
    NoRust,
    /// The chunk is a list of references.
    References,
}

impl Silence {
    pub fn reason(self) -> &'static str {
        match self {
            Silence::NoRust => "no Rust in the file (no code, no Rust syntax in its text)",
            Silence::References => "a list of references: most of its lines are links",
        }
    }
}

/// Whether a chunk of a file can teach a pattern: `None`, or why not. `file_rust_marks` is
/// [`rust_marks`] of the whole file (`terms::FileFacts`).
pub fn silence(chunk: &str, kind: FileKind, file_rust_marks: usize) -> Option<Silence> {
    if kind == FileKind::Rust {
        return None;
    }
    if file_rust_marks == 0 {
        return Some(Silence::NoRust);
    }
    (rust_marks_outside_links(chunk) == 0 && is_reference_list(chunk))
        .then_some(Silence::References)
}

/// How many marks of Rust syntax a text holds, in its prose, code spans and code blocks
/// alike (link targets and bare URLs are not read: `https://docs.rs/a::b` is no Rust).
pub fn rust_marks(text: &str) -> usize {
    text.lines()
        .map(|l| marks_in(&without_urls(&replace_links(l, true))))
        .sum()
}

/// [`rust_marks`] without the links' text: a list of links to chapters named
/// `#[non_exhaustive]` holds no Rust of its own.
fn rust_marks_outside_links(text: &str) -> usize {
    text.lines()
        .map(|l| marks_in(&without_urls(&replace_links(l, false))))
        .sum()
}

/// A line with its bare URLs (`https://…`, `www.…`) removed.
fn without_urls(line: &str) -> String {
    line.split_whitespace()
        .filter(|w| {
            let w = w.trim_start_matches(['(', '<', '[']);
            !(w.starts_with("http://") || w.starts_with("https://") || w.starts_with("www."))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

// Keywords alone are no mark: `let`, `use`, `match`, `type`, `struct`, `mod`, `unsafe` also
// occur in prose about anything. They count when what follows makes them code.
/// Keywords that open an item when a type name follows (`fn` is handled on its own: a name
/// and `(` follow it).
const ITEM_KEYWORDS: &[&str] = &["impl", "struct", "enum", "dyn", "trait"];
/// Keyword pairs that are Rust whatever the prose around them.
const KEYWORD_PAIRS: &[&str] = &[
    "let mut ",
    "pub fn ",
    "pub struct ",
    "pub enum ",
    "pub trait ",
    "pub mod ",
    "pub use ",
    "pub(crate) ",
    "unsafe fn ",
    "unsafe impl ",
    "unsafe {",
    "async fn ",
    "impl<",
    "fn main(",
];
/// Rust's primitive numeric types: as words, they are Rust.
const NUMERIC_TYPES: &[&str] = &[
    "u8", "u16", "u32", "u64", "u128", "usize", "i8", "i16", "i32", "i64", "i128", "isize", "f32",
    "f64",
];

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The marks of Rust syntax in one line.
fn marks_in(line: &str) -> usize {
    let b = line.as_bytes();
    let mut n = KEYWORD_PAIRS
        .iter()
        .map(|k| line.matches(k).count())
        .sum::<usize>();
    let at = |i: usize| b.get(i).copied().map(char::from);
    for (i, c) in line.char_indices() {
        let prev = i.checked_sub(1).and_then(at);
        let next = at(i + 1);
        let ident_before = prev.is_some_and(is_ident_char);
        n += match c {
            // A path: `mem::take`, `Vec::new`.
            ':' if next == Some(':') && ident_before && at(i + 2).is_some_and(is_ident_char) => 1,
            // A return type or a match arm: `-> T`, `=> x`.
            '>' if matches!(prev, Some('-') | Some('=')) && !matches!(next, Some('>')) => 1,
            // A borrow: `&mut`, `&self`, `&str`, `&'a`, `&[T]`, `&T`.
            '&' if !ident_before && prev != Some('&') => {
                let rest = &line[i + 1..];
                usize::from(
                    ["mut ", "self", "str", "'", "["]
                        .iter()
                        .any(|p| rest.starts_with(p))
                        || rest.chars().next().is_some_and(|c| c.is_ascii_uppercase())
                            && rest.chars().nth(1).is_none_or(|c| !c.is_ascii_lowercase()),
                )
            }
            // An attribute: `#[derive(…)]`, `#![deny(…)]`.
            '#' => {
                let rest = &line[i + 1..];
                let rest = rest.strip_prefix('!').unwrap_or(rest);
                usize::from(
                    rest.strip_prefix('[')
                        .is_some_and(|r| r.starts_with(|c: char| c.is_ascii_lowercase())),
                )
            }
            // A macro call: `println!(`, `vec![`.
            '!' if ident_before && matches!(next, Some('(') | Some('[') | Some('{')) => {
                let word: String = line[..i]
                    .chars()
                    .rev()
                    .take_while(|c| is_ident_char(*c))
                    .collect();
                usize::from(
                    word.chars()
                        .all(|c| c.is_lowercase() || c == '_' || c.is_numeric()),
                )
            }
            // A generic type: `Vec<T>`, `Arc<Mutex<…>>`, `Option<&str>`.
            '<' if ident_before => {
                let word: String = line[..i]
                    .chars()
                    .rev()
                    .take_while(|c| is_ident_char(*c))
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect();
                let upper = word.starts_with(|c: char| c.is_ascii_uppercase());
                usize::from(
                    upper
                        && next.is_some_and(|c| {
                            c.is_ascii_alphabetic() || matches!(c, '&' | '\'' | '(' | '[' | '_')
                        }),
                )
            }
            // A method call: `stats.lock()`, `iter.map(`.
            '.' if ident_before => {
                let rest = &line[i + 1..];
                let name: String = rest.chars().take_while(|c| is_ident_char(*c)).collect();
                let before = line[..i].chars().next_back();
                usize::from(
                    !name.is_empty()
                        && name.starts_with(|c: char| c.is_ascii_lowercase())
                        && rest[name.len()..].starts_with('(')
                        && before.is_some_and(|c| c.is_ascii_lowercase() || c == ')' || c == '_'),
                )
            }
            _ => 0,
        };
    }
    for word in line.split(|c: char| !is_ident_char(c)) {
        // A primitive numeric type, or a snake_case identifier (`into_iter`, `MAX_LEN`):
        // prose has no underscores between letters.
        let snake = word.contains('_')
            && word.starts_with(char::is_alphabetic)
            && word.ends_with(|c: char| c.is_alphanumeric())
            && word.chars().any(char::is_alphabetic);
        if NUMERIC_TYPES.contains(&word) || snake {
            n += 1;
        }
    }
    // A code span naming a type in CamelCase of two humps or more (`HashMap`, `RefCell`).
    for (i, span) in line.split('`').enumerate() {
        let humps = span.chars().filter(char::is_ascii_uppercase).count();
        let camel = i % 2 == 1
            && humps >= 2
            && span.starts_with(|c: char| c.is_ascii_uppercase())
            && span.chars().all(|c| c.is_ascii_alphanumeric())
            && span.chars().any(|c| c.is_ascii_lowercase());
        n += usize::from(camel);
    }
    // An item: `fn parse(`, `impl Display`, `impl<T>`, `struct Meters`, `dyn Error`.
    let words: Vec<&str> = line.split_whitespace().collect();
    for pair in words.windows(2) {
        let keyword = pair[0].trim_start_matches(['`', '(']);
        let name = pair[1];
        let is_item = match keyword {
            "fn" => {
                let ident: String = name.chars().take_while(|c| is_ident_char(*c)).collect();
                !ident.is_empty() && name[ident.len()..].starts_with(['(', '<'])
            }
            k if ITEM_KEYWORDS.contains(&k) => name.starts_with(|c: char| c.is_ascii_uppercase()),
            _ => false,
        };
        n += usize::from(is_item);
    }
    n
}

/// A list of references: at least three lines that are links and nothing much else (a list
/// item whose words, its links' text removed, are at most three; a bare URL), and these are
/// at least half of the chunk's lines of text (headings, blank lines and code aside).
pub fn is_reference_list(text: &str) -> bool {
    let mut lines = 0usize;
    let mut links = 0usize;
    for (line, in_code) in fenced_lines(text) {
        let t = line.trim();
        if in_code || t.is_empty() || t.starts_with('#') || t.starts_with("```") {
            continue;
        }
        lines += 1;
        let had_link = t.contains("](") || t.contains("http://") || t.contains("https://");
        let item = t
            .strip_prefix(['-', '*', '+'])
            .or_else(|| {
                let digits = t.trim_start_matches(|c: char| c.is_ascii_digit());
                (digits.len() < t.len())
                    .then(|| digits.strip_prefix(['.', ')']))
                    .flatten()
            })
            .unwrap_or(t);
        let rest = without_urls(&replace_links(item, false));
        let words = rest
            .split_whitespace()
            .filter(|w| w.chars().any(char::is_alphanumeric))
            .count();
        if had_link && words <= 3 {
            links += 1;
        }
    }
    links >= 3 && links * 2 >= lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_syntax_is_counted_in_prose_spans_and_code() {
        for rust in [
            "Call `mem::take` to leave a default behind.",
            "wrap them in Arc<Mutex<Stats>> and clone",
            "a worker calls stats.lock().unwrap(), gets a guard",
            "takes &mut self",
            "prefer &str to &String",
            "accept &[T] rather than &Vec<T>",
            "#[non_exhaustive] on public enums",
            "#![deny(warnings)] in the crate root",
            "use vec![1, 2] here",
            "fn parse(input: &str) -> Result<Config, Error>",
            "impl Display for Meters",
            "a count in a u64",
            "    let mut total = 0;",
            "match x { Some(v) => v, None => 0 }",
            "call into_iter on it",
            "keep the `HashMap` behind a `RefCell`",
        ] {
            assert!(rust_marks(rust) > 0, "{rust}");
        }
    }

    #[test]
    fn prose_urls_and_links_hold_no_rust() {
        for prose in [
            "Things to read when I have a quiet afternoon. Not sorted.",
            "- https://doc.rust-lang.org/std/sync/index.html",
            "See [the docs](https://docs.rs/tokio/latest/tokio/sync/struct.Mutex.html).",
            "Let me know what you think: is it fair? Use it where you want.",
            "Score with `../../eval/kbscore.py --kb output --corpus .`",
            "Watching this repo's releases (click `Watch` → click `Custom`)",
            "Translations: we use mdbook-i18n-helpers. Read the guide!",
            "A & B went to the match; the trait they share is patience.",
            "I'm dumb. Super smart people write super smart articles (30 - 60 mins)",
            "The struct of the book follows the chapters.",
            "_02 May 2020 · #blogging_ on GitHub and StackOverflow",
        ] {
            assert_eq!(rust_marks(prose), 0, "{prose}");
        }
    }

    #[test]
    fn a_list_of_links_is_a_reference_list_and_a_section_with_links_is_not() {
        let reading = "## Further reading\n\n- [Common misconceptions](./a.md)\n- [Sizedness](./b.md)\n- [A tour of traits](https://example.org/t)\n- https://doc.rust-lang.org/nomicon/\n";
        assert!(is_reference_list(reading));
        let toc = "**Table of contents**\n- [TL;DR](#tldr)\n- [1\\) Read a book](#1)\n- [2\\) Write code](#2)\n";
        assert!(is_reference_list(toc));
        let teaching = "## Builder\n\nA builder collects optional settings; see [the docs](x.md).\n\
                        It ends with `build`, which returns the value.\nSee also [Default](d.md) and [Ctor](c.md).\n";
        assert!(!is_reference_list(teaching));
        // Items with a sentence each are notes, not references.
        let notes = "- [Rc](a.md) counts references within one thread and is cheap to clone\n\
                     - [Arc](b.md) counts them atomically so it can cross threads safely\n\
                     - [Mutex](c.md) guards the data and hands out one guard at a time\n";
        assert!(!is_reference_list(notes));
    }

    #[test]
    fn silence_follows_the_file_and_the_chunk() {
        let links = "- [One](a.md)\n- [Two](b.md)\n- [Three](c.md)\n";
        assert_eq!(silence(links, FileKind::Markdown, 0), Some(Silence::NoRust));
        assert_eq!(
            silence(links, FileKind::Markdown, 5),
            Some(Silence::References)
        );
        // A Rust source always speaks Rust; a chunk with Rust of its own is read.
        assert_eq!(silence(links, FileKind::Rust, 0), None);
        let with_rust = format!("{links}Each returns `Option<T>`.\n");
        assert_eq!(silence(&with_rust, FileKind::Markdown, 5), None);
        assert_eq!(
            silence("Plain prose about a topic.", FileKind::Text, 3),
            None
        );
    }
}
