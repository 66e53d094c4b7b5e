//! Whether a text can teach a Rust pattern at all. Two rules, both read off the text's own
//! structure, neither from a list of titles or file names:
//!
//! - a file with no mark of Rust syntax anywhere (no path `a::b`, no `&mut`, no generic
//!   `Vec<T>`, no attribute, no macro call, no `fn`/`impl` item...) teaches no Rust pattern:
//!   a preface, a provenance note, a list of translations, a table of contents;
//! - a chunk without Rust of its own whose lines mostly carry links is a list of references
//!   (a reading list, "Further reading"): it points at teaching elsewhere;
//! - the opening of a chapter whose sections each state a rule, under its title alone,
//!   introduces them (a chapter's "The rules in this chapter are about…"): each is taught in its section.
//!
//! The extractor is not asked about such a chunk, and the source page says why.

use crate::ingest::FileKind;
use crate::text::quotes::{fenced_lines, markdown_lines, replace_links, LineKind};
use crate::text::terms::FileFacts;
use crate::text::words::NUMERIC_TYPES;

/// Why a chunk is not read for patterns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Silence {
    /// The whole file holds no Rust.
    NoRust,
    /// The chunk is a list of references.
    References,
    /// The chunk opens a chapter of rules, before its first section.
    Introduction,
}

impl Silence {
    pub fn reason(self) -> &'static str {
        match self {
            Silence::NoRust => "no Rust in the file (no code, no Rust syntax in its text)",
            Silence::References => "a list of references: most of its lines are links",
            Silence::Introduction => {
                "the introduction of a chapter whose sections each state a rule: each rule is read in its section"
            }
        }
    }
}

/// Whether a chunk of a file, under `headings`, can teach a pattern: `None`, or why not.
/// `file` is what the whole file tells (`terms::FileFacts`, stored by ingest).
pub fn silence(
    chunk: &str,
    headings: &[String],
    kind: FileKind,
    file: &FileFacts,
) -> Option<Silence> {
    if kind == FileKind::Rust {
        return None;
    }
    if !file.has_rust {
        return Some(Silence::NoRust);
    }
    // A chapter of rules opens with what they are about, under its title alone and before
    // its first section.
    let under_title_alone = matches!(headings, [h] if file.title.as_deref() == Some(h.as_str()));
    let has_sections =
        markdown_lines(chunk).any(|(_, kind)| kind.heading().is_some_and(|level| level >= 2));
    if file.sections_are_rules && under_title_alone && !has_sections {
        return Some(Silence::Introduction);
    }
    (!has_rust_outside_links(chunk) && is_reference_list(chunk)).then_some(Silence::References)
}

/// Whether a text holds a mark of Rust syntax, in its prose, code spans and code blocks
/// alike (link targets and bare URLs are not read: `https://docs.rs/a::b` is no Rust). It
/// stops at the first line that has one.
pub fn has_rust(text: &str) -> bool {
    any_marks(text, true)
}

/// Whether a markdown text shows Rust code: a line of a fenced code block with a mark of
/// Rust syntax (a shell block of `export PATH=…` shows none; a word in backticks in the prose
/// is no code).
pub fn shows_rust_code(text: &str) -> bool {
    fenced_lines(text).any(|(l, in_code)| in_code && has_mark(&marks_line(l, false)))
}

/// Whether a text holds a mark of Rust syntax outside its links' text (see [`has_rust`]): a
/// list of links to chapters named `#[non_exhaustive]` holds no Rust of its own.
fn has_rust_outside_links(text: &str) -> bool {
    any_marks(text, false)
}

/// Whether a line of `text` holds a mark, its links read as their text or not at all.
fn any_marks(text: &str, link_text: bool) -> bool {
    text.lines().any(|l| has_mark(&marks_line(l, link_text)))
}

/// A line as the marks read it: its links replaced (by their text, or by nothing), its bare
/// URLs dropped, its words joined by one space. Most lines have no link, no URL and no run of
/// spaces: they are read as they are, trimmed, without a copy.
fn marks_line(line: &str, link_text: bool) -> std::borrow::Cow<'_, str> {
    // What makes the full reading differ from the trimmed line: a link, a URL, a tab or a run
    // of spaces; and any other space (below `' '` in ASCII, or a non-ASCII one).
    static NOT_PLAIN: std::sync::LazyLock<aho_corasick::AhoCorasick> =
        std::sync::LazyLock::new(|| {
            aho_corasick::AhoCorasick::new(["http", "www.", "[", "  ", "\t"])
                .expect("plain strings")
        });
    let t = line.trim();
    let plain = !NOT_PLAIN.is_match(t)
        && t.bytes().all(|b| b >= b' ' || b == b'\t')
        && (t.is_ascii() || !t.chars().any(|c| c.is_whitespace() && c != ' '));
    if plain {
        std::borrow::Cow::Borrowed(t)
    } else {
        std::borrow::Cow::Owned(without_urls(&replace_links(line, link_text)))
    }
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

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Whether one line holds a mark of Rust syntax (it returns at the first it sees: most lines
/// of a folder about Rust have one, and a file of prose is read whole).
fn has_mark(line: &str) -> bool {
    let b = line.as_bytes();
    static PAIRS: std::sync::LazyLock<aho_corasick::AhoCorasick> = std::sync::LazyLock::new(|| {
        aho_corasick::AhoCorasick::new(KEYWORD_PAIRS).expect("keyword pairs are plain strings")
    });
    if PAIRS.is_match(line) {
        return true;
    }
    let at = |i: usize| b.get(i).copied().map(char::from);
    // Every mark below starts at an ASCII byte; `at` reads bytes, so a byte walk is the same
    // as a walk over chars.
    for (i, c) in b.iter().enumerate().map(|(i, &b)| (i, char::from(b))) {
        if !matches!(c, ':' | '>' | '&' | '#' | '!' | '<' | '.') {
            continue;
        }
        let prev = i.checked_sub(1).and_then(at);
        let next = at(i + 1);
        let ident_before = prev.is_some_and(is_ident_char);
        let mark = match c {
            // A path: `mem::take`, `Vec::new`.
            ':' if next == Some(':') && ident_before && at(i + 2).is_some_and(is_ident_char) => {
                true
            }
            // A return type or a match arm: `-> T`, `=> x`. An arrow between two code spans
            // is prose's ("choose `File` -> `New project`"): a menu path, no Rust.
            '>' if matches!(prev, Some('-') | Some('=')) && !matches!(next, Some('>')) => {
                !line[i + 1..].trim_start().starts_with('`')
            }
            // A borrow: `&mut`, `&self`, `&str`, `&'a`, `&[T]`, `&T`.
            '&' if !ident_before && prev != Some('&') => {
                let rest = &line[i + 1..];
                ["mut ", "self", "str", "'", "["]
                    .iter()
                    .any(|p| rest.starts_with(p))
                    || rest.chars().next().is_some_and(|c| c.is_ascii_uppercase())
                        && rest.chars().nth(1).is_none_or(|c| !c.is_ascii_lowercase())
            }
            // An attribute: `#[derive(…)]`, `#![deny(…)]`.
            '#' => {
                let rest = &line[i + 1..];
                let rest = rest.strip_prefix('!').unwrap_or(rest);
                rest.strip_prefix('[')
                    .is_some_and(|r| r.starts_with(|c: char| c.is_ascii_lowercase()))
            }
            // A macro call: `println!(`, `vec![`.
            '!' if ident_before && matches!(next, Some('(') | Some('[') | Some('{')) => {
                let word: String = line[..i]
                    .chars()
                    .rev()
                    .take_while(|c| is_ident_char(*c))
                    .collect();
                word.chars()
                    .all(|c| c.is_lowercase() || c == '_' || c.is_numeric())
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
                upper
                    && next.is_some_and(|c| {
                        c.is_ascii_alphabetic() || matches!(c, '&' | '\'' | '(' | '[' | '_')
                    })
            }
            // A method call: `stats.lock()`, `iter.map(`.
            '.' if ident_before => {
                let rest = &line[i + 1..];
                let name: String = rest.chars().take_while(|c| is_ident_char(*c)).collect();
                let before = line[..i].chars().next_back();
                !name.is_empty()
                    && name.starts_with(|c: char| c.is_ascii_lowercase())
                    && rest[name.len()..].starts_with('(')
                    && before.is_some_and(|c| c.is_ascii_lowercase() || c == ')' || c == '_')
            }
            _ => false,
        };
        if mark {
            return true;
        }
    }
    // A word below holds a `_`, a digit or "size" (`usize`): most lines of prose have none.
    let maybe_words =
        line.contains('_') || b.iter().any(u8::is_ascii_digit) || line.contains("size");
    for word in line.split(|c: char| !is_ident_char(c)) {
        if !maybe_words {
            break;
        }
        // A primitive numeric type, or a snake_case identifier (`into_iter`, `len_utf8`):
        // prose has no underscores between letters. A word in capitals alone (`RUST_LOG`,
        // `DATABASE_URL`) is a shell's or a config's variable as often as a Rust constant: a
        // constant shows itself by what is around it (`const MAX: usize`).
        let snake = word.contains('_')
            && word.starts_with(char::is_alphabetic)
            && word.ends_with(|c: char| c.is_alphanumeric())
            && word.chars().any(char::is_lowercase);
        if NUMERIC_TYPES.contains(&word) || snake {
            return true;
        }
    }
    // A code span naming a type in CamelCase of two humps or more (`HashMap`, `RefCell`).
    for span in line.split('`').skip(1).step_by(2) {
        let humps = span.chars().filter(char::is_ascii_uppercase).count();
        let camel = humps >= 2
            && span.starts_with(|c: char| c.is_ascii_uppercase())
            && span.chars().all(|c| c.is_ascii_alphanumeric())
            && span.chars().any(|c| c.is_ascii_lowercase());
        if camel {
            return true;
        }
    }
    // An item: `fn parse(`, `impl Display`, `impl<T>`, `struct Meters`, `dyn Error`.
    for (first, name) in line.split_whitespace().zip(line.split_whitespace().skip(1)) {
        let keyword = first.trim_start_matches(['`', '(']);
        let is_item = match keyword {
            "fn" => {
                let ident: String = name.chars().take_while(|c| is_ident_char(*c)).collect();
                !ident.is_empty() && name[ident.len()..].starts_with(['(', '<'])
            }
            k if ITEM_KEYWORDS.contains(&k) => name.starts_with(|c: char| c.is_ascii_uppercase()),
            _ => false,
        };
        if is_item {
            return true;
        }
    }
    false
}

/// A list of references: at least three lines that are links and nothing much else (a list
/// item whose words, its links' text removed, are at most three; a bare URL), and these are
/// at least half of the chunk's lines of text (headings, blank lines and code aside).
pub fn is_reference_list(text: &str) -> bool {
    let mut lines = 0usize;
    let mut links = 0usize;
    for (line, kind) in markdown_lines(text) {
        let t = line.trim();
        if kind != LineKind::Prose || t.is_empty() {
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

    proptest::proptest! {
        /// The copy-free reading of a plain line is the reading of any line, on lines of
        /// links, URLs, tabs, runs of spaces and Rust.
        #[test]
        fn a_plain_line_reads_as_the_full_reading(
            line in r"([ \t\u{a0}]|\[|\]|\(|\)|http://a|www\.b|&mut |let  mut |fn f\(|a_b|x)*",
            link_text: bool,
        ) {
            let fast = marks_line(&line, link_text).into_owned();
            let full = without_urls(&replace_links(&line, link_text));
            proptest::prop_assert_eq!(fast, full);
        }
    }

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
            "const MAX_LEN: usize = 64;",
            "returns `fn len(&self) -> usize` for each",
            "fn parse() -> Config",
        ] {
            assert!(has_rust(rust), "{rust}");
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
            // A variable of the shell or a config, and a menu path between code spans.
            "set `APP_MODE` to `dev` in `.env` first",
            "run it with RUST_LOG=debug to see more",
            "choose `File` -> `New project`, then name it",
        ] {
            assert!(!has_rust(prose), "{prose}");
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
        let file = |has_rust| FileFacts {
            has_rust,
            ..FileFacts::default()
        };
        let none: &[String] = &[];
        assert_eq!(
            silence(links, none, FileKind::Markdown, &file(false)),
            Some(Silence::NoRust)
        );
        assert_eq!(
            silence(links, none, FileKind::Markdown, &file(true)),
            Some(Silence::References)
        );
        // A Rust source always speaks Rust; a chunk with Rust of its own is read.
        assert_eq!(silence(links, none, FileKind::Rust, &file(false)), None);
        let with_rust = format!("{links}Each returns `Option<T>`.\n");
        assert_eq!(
            silence(&with_rust, none, FileKind::Markdown, &file(true)),
            None
        );
        assert_eq!(
            silence(
                "Plain prose about a topic.",
                none,
                FileKind::Text,
                &file(true)
            ),
            None
        );
    }
}
