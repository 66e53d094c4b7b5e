//! The terms of an input that could name what it teaches, offered as the only values of a
//! role's term fields (`term_fields`): a small model chooses among the author's own words
//! better than it names a pattern from nothing. Pure functions; no list of known patterns:
//! every term comes from the input's structure (headings, emphasis, introduced terms, "the X
//! pattern" phrases, API names in code spans) and, in source code, from what the code does
//! (the traits it implements, the attributes and macros it uses).

use super::quotes::{
    after_generics, bold_line, fenced_lines, first_sentence, heading_words, lead_name,
    looks_like_code, markdown_lines, replace_links, strip_line_markers as strip_markers, LineKind,
};
use super::words::{
    after_number, breaks_a_name, is_everyday_name, is_structure_heading, without_article,
    without_numbering, ARTICLES, CALENDAR_WORDS, CLAUSE_WORDS, COMMON_MACROS, DETERMINERS,
    EFFECT_VERBS, EVERYDAY_TRAITS, EVERYDAY_TYPES, FIRST_PERSON, FUNCTION_WORDS, HEAD_NOUNS,
    NOT_A_NAME_START, NOT_GERUNDS, PLACE_WORDS, PLUMBING_ATTRIBUTES, RUST_KEYWORDS,
    STRUCTURE_WORDS,
};
use crate::ingest::FileKind;

/// At most this many terms are offered (strongest first).
pub const MAX_TERMS: usize = 30;
/// A term, and so a name, has at most this many words.
pub const MAX_WORDS: usize = 8;
const MAX_CHARS: usize = 60;
/// A section heading that states a rule ("Functions that can fail return Result") is a name
/// of up to this many words and characters.
pub const RULE_MAX_WORDS: usize = 16;
pub const RULE_MAX_CHARS: usize = 110;
/// A heading of at least this many words states something about its section rather than
/// naming a thing ("Borrow slices for read-only parameters"; "Builder", "Entry API" name).
const RULE_MIN_WORDS: usize = 5;

/// The heading of a section that states its rule or claim as a sentence: long enough to say
/// something, not a date or label, not the author's diary ("What I learned today"). Such a
/// heading names what its section teaches; the APIs the section mentions are its examples.
pub fn states_a_rule(heading: &str) -> bool {
    is_rule_sized(heading) && names_a_topic(heading)
}

/// Whether a heading is as long as a rule stated as a sentence: long enough to say
/// something, short enough to be a heading (see [`states_a_rule`]).
pub fn is_rule_sized(heading: &str) -> bool {
    let h = without_numbering(heading.trim_start_matches('#').trim());
    let words = h.split_whitespace().count();
    (RULE_MIN_WORDS..=RULE_MAX_WORDS).contains(&words) && h.len() <= RULE_MAX_CHARS
}

/// Whether a heading names the topic of its section: not a part every topic has
/// ("Motivation", "Example"), not a date or label ("Week 3"), not the author's diary ("What I
/// tried"). The headings above a topic name what it belongs to (a post of "Common
/// misconceptions" above "1) `T` only contains owned types"), not what it teaches.
pub fn names_a_topic(heading: &str) -> bool {
    let h = without_numbering(heading.trim_start_matches('#').trim());
    !h.is_empty() && !is_first_person(h) && !is_label_heading(h) && !is_structure_heading(h)
}

/// Whether a numbered heading whose section shows Rust code names an item of its own: as
/// [`names_a_topic`], but a claim in the first person is the author's point, not a diary
/// ("4) my code isn't generic and doesn't have lifetimes").
fn names_an_item(heading: &str) -> bool {
    let h = without_numbering(heading.trim_start_matches('#').trim());
    !h.is_empty() && !is_label_heading(h) && !is_structure_heading(h)
}

/// The numbered heading a chunk is an item of ("2) if `T: 'static` then …"), as an index into
/// its heading path: the deepest of the file's items ([`FileFacts::items`], numbered headings
/// that name a topic and whose sections show Rust code). Such a chunk is about its item, not
/// the list above it or the file's title, and its item is a subject of its own. A numbered
/// step whose section shows no Rust code ("3) Spend ten hours coding") is a part of its
/// document, as an unnumbered section is.
pub fn item_heading(headings: &[String], file: &FileFacts) -> Option<usize> {
    headings.iter().rposition(|h| file.items.contains(h))
}

/// The heading a chunk under `headings` is about, as an index into it: its last, unless that
/// states no rule and a heading above it states one or is an item: a section below a rule
/// ("Exceptions", "Why this matters" under "Functions that can fail return Result") is part
/// of that rule's discussion, as a section below an item is part of the item's.
pub fn own_heading(headings: &[String], file: &FileFacts) -> usize {
    let last = headings.len().saturating_sub(1);
    if headings.get(last).is_some_and(|h| states_a_rule(h)) {
        return last;
    }
    // The title of a file of topics names the collection, never a rule of its sections.
    let first = usize::from(file.sections_are_topics).min(last);
    let rule = headings[first..last]
        .iter()
        .rposition(|h| states_a_rule(h))
        .map(|i| first + i);
    let item = item_heading(&headings[..last], file);
    rule.max(item).unwrap_or(last)
}

/// A heading numbered as an item of a list or a book: "2) …", "3. Builders", "2.1 Builder".
fn is_numbered(heading: &str) -> bool {
    after_number(heading.trim().trim_start_matches('#').trim_start()).is_some()
}

/// A heading in the first person: the author's diary, not a name.
fn is_first_person(h: &str) -> bool {
    h.split_whitespace().any(|w| {
        let w = w.to_lowercase();
        FIRST_PERSON.contains(&w.trim_matches(|c: char| !c.is_alphanumeric()))
    })
}

/// A clause, not a name: a verb that makes a sentence of it ("Some may ask", "Works with
/// guards too", "Tidied up the public API"), or a first word no name starts with ("By the
/// user", "Still porting the scheduler").
fn is_clause(s: &str) -> bool {
    let words: Vec<String> = s
        .split_whitespace()
        .map(|w| w.to_lowercase())
        .skip_while(|w| ARTICLES.contains(&w.as_str()))
        .collect();
    let first = words.first().map(String::as_str).unwrap_or_default();
    // A verb in the past tense and its object or particle: "Tidied up", "Added the".
    let past = first.len() > 4
        && first.ends_with("ed")
        && words
            .get(1)
            .is_some_and(|w| FUNCTION_WORDS.contains(&w.as_str()));
    past || NOT_A_NAME_START.contains(&first)
        || words.iter().any(|w| {
            let w = w.trim_matches(|c: char| !c.is_alphanumeric());
            CLAUSE_WORDS.contains(&w) || FIRST_PERSON.contains(&w)
        })
}

/// A heading that dates or labels a part of a notes file rather than naming its topic:
/// "Week 3 log", "Wed / Thu", "March 2024", "Day 12".
fn is_label_heading(h: &str) -> bool {
    let words: Vec<String> = h
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    !words.is_empty()
        && words
            .iter()
            .all(|w| w.chars().all(|c| c.is_ascii_digit()) || CALENDAR_WORDS.contains(&w.as_str()))
}

/// How a kind of file is read for terms: prose (markdown, text) by its structure, source code
/// by its comments and what its code does, rendered records (JSON) by their values.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Reading {
    Prose,
    Code,
    Records,
}

impl Reading {
    fn of(kind: FileKind) -> Reading {
        match kind {
            FileKind::Markdown | FileKind::Text => Reading::Prose,
            FileKind::Rust => Reading::Code,
            FileKind::Json | FileKind::Jsonl => Reading::Records,
        }
    }
}

/// What the whole file tells about each of its chunks' terms and pages, worked out once by
/// ingest when it reads the file and stored with it (`sources.facts`), so no later stage
/// re-reads the whole source.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct FileFacts {
    /// The version of the rules that worked the facts out ([`FileFacts::VERSION`]): facts
    /// stored by an older quarry are worked out again.
    pub version: u32,
    /// The identifiers the file defines anywhere ([`defined_names`]).
    pub defined: Vec<String>,
    /// A markdown file of two sections or more, none of them a structure section
    /// ("Example", "See also"): each section is a topic of its own ("Iterator tricks" with
    /// `zip`, `peekable`), and the title names the collection, not a pattern.
    pub sections_are_topics: bool,
    /// A markdown file of two sections or more whose headings each state a rule ("Functions
    /// that can fail return Result"): a chapter of rules, whose opening introduces them.
    pub sections_are_rules: bool,
    /// Whether the whole file holds a mark of Rust syntax (`teaching::has_rust`; a Rust
    /// source always does): without one, the file teaches no Rust pattern.
    pub has_rust: bool,
    /// The types and traits the file brings in from the standard library (`use
    /// std::cell::{Cell, RefCell};`): a text that imports one and names it is about it.
    pub imported: Vec<String>,
    /// A markdown file's title (its first level-1 heading): the planner gathers a file's
    /// variants of it on one page.
    pub title: Option<String>,
    /// The numbered headings ("2) if `T: 'static` then …", "3. Builders") that name a topic
    /// and whose sections show Rust code: each is a subject of its own (see
    /// [`item_heading`]), as chunks' heading paths spell them.
    pub items: Vec<String>,
    /// The words of lines wholly in bold (`**Key takeaways**`) that the file repeats: labels
    /// that structure it, like a heading every section has, not names.
    pub labels: Vec<String>,
}

impl FileFacts {
    /// Raised whenever a fact is added or worked out differently.
    pub const VERSION: u32 = 4;

    /// Whether these facts were worked out by the rules of this build.
    pub fn are_current(&self) -> bool {
        self.version == Self::VERSION
    }

    /// The facts of a file whose stored text (its chunks' texts joined by newlines) is `text`.
    pub fn of(text: &str, kind: FileKind) -> FileFacts {
        let markdown = kind == FileKind::Markdown;
        FileFacts {
            version: Self::VERSION,
            defined: defined_names(text),
            sections_are_topics: markdown && sections_are_topics(text),
            sections_are_rules: markdown && sections_are_rules(text),
            has_rust: kind == FileKind::Rust || crate::text::teaching::has_rust(text),
            imported: std_imports(text),
            title: markdown
                .then(|| crate::ingest::markdown::title(text))
                .flatten(),
            items: Vec::new(),
            labels: if markdown {
                repeated_labels(text)
            } else {
                Vec::new()
            },
        }
    }

    /// The facts of a file from its chunks (heading path and text), in order: what
    /// [`FileFacts::of`] finds in the text the database keeps of it, and the items its
    /// sections are.
    pub fn of_chunks<'a>(
        chunks: impl IntoIterator<Item = (&'a [String], &'a str)>,
        kind: FileKind,
    ) -> FileFacts {
        let chunks: Vec<(&[String], &str)> = chunks.into_iter().collect();
        let text: Vec<&str> = chunks.iter().map(|(_, t)| *t).collect();
        let mut facts = FileFacts::of(&text.join("\n"), kind);
        if Reading::of(kind) == Reading::Prose {
            for (path, text) in chunks {
                if crate::text::teaching::shows_rust_code(text) {
                    for h in path.iter().filter(|h| is_numbered(h) && names_an_item(h)) {
                        if !facts.items.contains(h) {
                            facts.items.push(h.clone());
                        }
                    }
                }
            }
        }
        facts
    }
}

/// The texts of lines wholly in bold (`**Key takeaways**`, `__Note__`) that occur twice or
/// more outside code (see [`FileFacts::labels`]).
fn repeated_labels(markdown: &str) -> Vec<String> {
    let mut seen: std::collections::BTreeMap<&str, usize> = Default::default();
    for (line, in_code) in fenced_lines(markdown) {
        if let Some(inner) = bold_line(line).filter(|_| !in_code) {
            *seen.entry(inner).or_default() += 1;
        }
    }
    seen.into_iter()
        .filter(|&(_, n)| n >= 2)
        .map(|(l, _)| l.to_string())
        .collect()
}

/// The capitalised names `use std::…` (or `core::`, `alloc::`) lines bring in, in a source or
/// in a text's code blocks: `use std::cell::{Cell, RefCell};` → `Cell`, `RefCell`.
pub fn std_imports(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in text.lines() {
        let Some(rest) = super::paths::std_use(line) else {
            continue;
        };
        let names: Vec<&str> = match rest.split_once('{') {
            Some((_, group)) => group.trim_end_matches('}').split(',').collect(),
            None => vec![rest],
        };
        for n in names {
            let n = n.split(" as ").next().unwrap_or("").trim();
            let last = super::paths::last(n);
            if last.starts_with(|c: char| c.is_ascii_uppercase())
                && last.chars().all(|c| c.is_ascii_alphanumeric())
                && !out.iter().any(|o| o == last)
            {
                out.push(last.to_string());
            }
        }
    }
    out
}

/// True for markdown of two sections or more, none a structure section (see
/// [`FileFacts::sections_are_topics`]).
pub fn sections_are_topics(markdown: &str) -> bool {
    let mut sections = 0;
    for (line, kind) in markdown_lines(markdown) {
        if kind.heading().is_some_and(|level| level >= 2) {
            if is_structure_heading(heading_words(line)) {
                return false;
            }
            sections += 1;
        }
    }
    sections >= 2
}

/// True for markdown of two level-2 sections or more whose headings each state a rule (see
/// [`FileFacts::sections_are_rules`]).
pub fn sections_are_rules(markdown: &str) -> bool {
    let mut sections = 0;
    for (line, kind) in markdown_lines(markdown) {
        if kind.heading() != Some(2) {
            continue;
        }
        if !states_a_rule(heading_words(line)) {
            return false;
        }
        sections += 1;
    }
    sections >= 2
}

/// The candidate terms of a chunk, strongest first, without duplicates (by normalised form).
/// `file` is what the chunk's whole file tells (stored by ingest): the names it defines name
/// the example, wherever in the file they are defined.
pub fn terms(text: &str, headings: &[String], kind: FileKind, file: &FileFacts) -> Vec<String> {
    let defined = &file.defined;
    let reading = Reading::of(kind);
    let prose = reading == Reading::Prose;
    let mut out = Terms::default();
    // A chunk that holds sections of its own (merged small sections of a notes file) is about
    // them, not about the title above them: its heading path is offered only when none of its
    // inner headings is a term.
    let in_path = |h: &str| headings.iter().any(|p| p.trim() == h.trim());
    let inner = if prose {
        let mut inner = Terms::default();
        for (line, kind) in markdown_lines(text) {
            if kind.heading().is_some() {
                let h = heading_words(line);
                if !in_path(h) {
                    inner.heading(Rank::Type, h);
                }
            }
        }
        inner.list.len()
    } else {
        0
    };
    let own = own_heading(headings, file);
    let item = item_heading(headings, file);
    if prose && inner == 0 && !headings.is_empty() {
        for (i, h) in headings[..=own].iter().enumerate().rev() {
            let rank = if i == own { Rank::Heading } else { Rank::Title };
            // In a file of topics, a topic's chunk is about the topic, not the collection.
            if rank == Rank::Heading || !file.sections_are_topics {
                out.heading(rank, h);
            }
            if item == Some(i) {
                break;
            }
        }
    }
    let mut lines: Vec<(String, bool)> = Vec::new(); // (prose, starts a paragraph)
    let mut code: Vec<&str> = Vec::new();
    let mut blank = true;
    if reading == Reading::Code {
        let mut documented = false; // the lines above are a doc comment (and attributes)
        for line in text.lines() {
            let t = line.trim();
            match comment_text(t) {
                Some(c) => {
                    lines.push((c.to_string(), blank || c.is_empty()));
                    blank = c.trim().is_empty();
                    documented = t.starts_with("///");
                }
                None if t.starts_with("#[") && documented => {
                    code.push(t);
                    blank = true;
                }
                None => {
                    if documented {
                        if let Some(name) = declared_name(t) {
                            out.push(Rank::Named, &name);
                        }
                        if let Some(kind) = error_type(t) {
                            out.push(Rank::Api, kind);
                        }
                    }
                    documented = false;
                    code.push(t);
                    blank = true;
                }
            }
        }
    } else if reading == Reading::Records {
        for line in text.lines() {
            let Some((key, value)) = line.split_once(": ") else {
                continue; // a continued multi-line value: code or prose of the line above
            };
            let key_path = !key.is_empty()
                && key
                    .chars()
                    .all(|c| c.is_alphanumeric() || "_-.[]".contains(c));
            if key_path {
                out.record_value(value);
                lines.push((value.to_string(), true));
            }
        }
    } else {
        for (line, kind) in markdown_lines(text) {
            if kind == LineKind::Code {
                code.push(line.trim());
                blank = true;
                continue;
            }
            let t = line.trim();
            if kind.heading().is_some() {
                let h = heading_words(line);
                if inner == 0 || !in_path(h) {
                    out.heading(Rank::Heading, h);
                }
                blank = true;
                continue;
            }
            lines.push((t.to_string(), blank));
            blank = t.is_empty();
        }
    }
    // Whether each line starts a sentence: a line of wrapped prose that goes on with the
    // sentence above ("that painful: you cannot …") introduces nothing at its start.
    let sentence_starts: Vec<bool> = lines
        .iter()
        .enumerate()
        .map(|(i, (l, para_start))| {
            *para_start
                || i == 0
                || strip_markers(l).len() < l.trim().len()
                || lines[i - 1]
                    .0
                    .trim_end()
                    .ends_with(['.', '!', '?', ':', ';'])
        })
        .collect();
    let lines: Vec<(String, bool)> = lines
        .into_iter()
        .map(|(l, p)| (replace_links(strip_markers(&l), true), p))
        .collect();
    for (i, (line, para_start)) in lines.iter().enumerate() {
        out.emphasis(line);
        out.code_spans(line);
        out.introduced(line, sentence_starts[i], *para_start && prose, text);
    }
    // Phrases and gerund subjects are read across the lines a sentence is wrapped over
    // ("… the strategy\npattern with trait objects").
    let mut sentence = String::new();
    let mut paragraph = String::new();
    for (i, (line, _)) in lines.iter().enumerate() {
        sentence.push_str(line);
        sentence.push(' ');
        paragraph.push_str(line);
        paragraph.push(' ');
        if sentence_starts.get(i + 1).is_none_or(|s| *s) {
            for named in named_phrases(&sentence) {
                out.push(Rank::Named, &named.phrase);
            }
            sentence.clear();
        }
        if lines.get(i + 1).is_none_or(|(_, starts)| *starts) {
            out.gerund_subjects(&paragraph);
            paragraph.clear();
        }
    }
    out.repeated_words(&lines, text);
    out.repeated_types(&lines, &file.imported);
    if reading == Reading::Code {
        // A test module's code checks the techniques above it; its macros (`matches!` in an
        // assertion) are not what the file teaches.
        for line in code.iter().take_while(|l| !l.starts_with("#[cfg(test)]")) {
            out.code_line(line);
        }
    }
    let mut out = out.without_defined(defined);
    // A label the file repeats ("**Key takeaways**" after every section) structures it.
    out.list.retain(|(_, t)| !file.labels.contains(t));
    // A section whose heading states a rule is about that rule: the heading is its first
    // name, and the APIs and code it mentions are examples of it, not names of their own
    // (unless the heading names them too). A section, not a document: a title says what a
    // whole file is about ("Review comments on the ingest service").
    let rule = headings.get(own).filter(|h| {
        prose && inner == 0 && headings.len() >= 2 && (states_a_rule(h) || item == Some(own))
    });
    if let Some(rule) = rule {
        let lower = rule.to_lowercase();
        out.list.retain(|(r, t)| {
            !matches!(r, Rank::Api | Rank::Repeated | Rank::Type | Rank::Heading)
                || lower.contains(&t.to_lowercase())
        });
        out.push_rule(without_numbering(rule.trim()));
    } else if prose && out.list.iter().any(|(r, _)| *r <= Rank::Api) {
        // A section heading is the weaker name of a prose chunk that names something itself:
        // "Tuesday" holds the `matches!` macro, "Flat enums" is a case of the chapter's topic.
        out.list.retain(|(r, _)| *r != Rank::Heading);
    }
    out.into_list()
}

/// Identifiers the text itself defines (`fn parse`, `struct Celsius`, `trait State`), sorted
/// and without repeats.
pub fn defined_names(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    for kw in ["fn ", "struct ", "enum ", "trait ", "type ", "mod "] {
        for (i, _) in text.match_indices(kw) {
            if i > 0 && text[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_') {
                continue; // "self.fn " or a longer word
            }
            let rest = &text[i + kw.len()..];
            let end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            if end > 0 {
                names.push(rest[..end].to_string());
            }
        }
    }
    names.sort_unstable();
    names.dedup();
    names
}

/// The name a macro invocation declares under a doc comment, in words: a line that starts
/// with a constant's name and no item keyword (`pub NEEDLESS_COLLECT, Warn, "…"` or
/// `MANUAL_SWAP: Warn, …` inside `declare_lints! { … }`) → "needless collect". What the doc
/// comment explains is the thing so declared; its name, not the macro, names it.
fn declared_name(line: &str) -> Option<String> {
    let t = line.strip_prefix("pub ").unwrap_or(line).trim_start();
    let end = t
        .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
        .unwrap_or(t.len());
    let (name, after) = t.split_at(end);
    let words: Vec<&str> = name.split('_').filter(|w| !w.is_empty()).collect();
    let ends = after.is_empty() || after.starts_with([':', ',', ' ', '(', '{']);
    (words.len() >= 2
        && ends
        && name.starts_with(|c: char| c.is_ascii_uppercase())
        && words
            .iter()
            .all(|w| w.chars().any(|c| c.is_ascii_uppercase())))
    .then(|| words.join(" ").to_lowercase())
}

/// What a documented declaration of an error type is ("pub enum ConfigError {" → "Error
/// enum"): by Rust's naming convention a type named `…Error` is the error its module
/// returns, and the doc comment above it explains how it is built (variants, conversions).
fn error_type(line: &str) -> Option<&'static str> {
    let t = line
        .trim_start_matches("pub(crate) ")
        .trim_start_matches("pub ");
    let (kind, rest) = t
        .strip_prefix("enum ")
        .map(|r| ("Error enum", r))
        .or_else(|| t.strip_prefix("struct ").map(|r| ("Error type", r)))?;
    let name: String = rest
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    (name.len() > "Error".len()
        && name.ends_with("Error")
        && name.starts_with(|c: char| c.is_ascii_uppercase()))
    .then_some(kind)
}

/// A comment's text without its markers, or None for a line of code.
fn comment_text(line: &str) -> Option<&str> {
    let rest = line.strip_prefix("//")?;
    Some(rest.trim_start_matches(['/', '!']).trim())
}

/// How strongly each kind of term suggests a technique; lower is offered first.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Rank {
    Rule,
    Named,
    Emphasis,
    Api,
    Heading,
    Introduced,
    Title,
    Repeated,
    Type,
}

#[derive(Default)]
struct Terms {
    list: Vec<(Rank, String)>,
    keys: Vec<String>,
}

impl Terms {
    /// Drops the API and code terms that name the text's own items (`Celsius::new`,
    /// `Connection<Hacked>`, `State trait` where `trait State` is defined): they name the
    /// example, not the technique.
    fn without_defined(mut self, defined: &[String]) -> Self {
        self.list.retain(|(rank, term)| {
            *rank < Rank::Api
                || *rank == Rank::Heading
                || *rank == Rank::Introduced
                || *rank == Rank::Title
                || !term
                    .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                    .any(|w| {
                        !w.is_empty() && defined.binary_search_by(|d| d.as_str().cmp(w)).is_ok()
                    })
        });
        self
    }

    fn into_list(mut self) -> Vec<String> {
        // "the `matches!` macro" names what `matches!` alone only shows.
        let phrases: Vec<String> = self
            .list
            .iter()
            .filter(|(r, _)| *r == Rank::Named)
            .filter_map(|(_, t)| t.rsplit_once(' ').map(|(head, _)| head.to_lowercase()))
            .collect();
        self.list.retain(|(r, t)| {
            !matches!(r, Rank::Api | Rank::Repeated | Rank::Type)
                || !phrases.contains(&t.to_lowercase())
        });
        self.list.sort_by_key(|(r, _)| *r);
        self.list
            .into_iter()
            .take(MAX_TERMS)
            .map(|(_, t)| t)
            .collect()
    }

    /// Offers `term`, ranked `rank`, unless it is no name or is offered already.
    fn push(&mut self, rank: Rank, term: &str) {
        let t = term
            .trim()
            .trim_matches(|c: char| c == '*' || c == '_' || c == '"' || c == '\'')
            .trim_end_matches([':', '.', ',', ';', '?'])
            .trim();
        let t = without_article(t).unwrap_or(t);
        let words = t.split_whitespace().count();
        let key = t.to_lowercase().replace('`', "");
        if self.list.len() >= 4 * MAX_TERMS
            || STRUCTURE_WORDS.contains(&key.as_str())
            || words == 0
            || words > MAX_WORDS
            || t.len() > MAX_CHARS
            || t.len() < 2
            || !t.chars().any(|c| c.is_alphabetic())
            || t.contains("://")
            || t.contains('…')
        {
            return;
        }
        if !self.keys.contains(&key) {
            self.keys.push(key);
            self.list.push((rank, t.replace('`', "")));
        }
    }

    /// A heading that states a rule, offered first and whole (see [`states_a_rule`]).
    fn push_rule(&mut self, h: &str) {
        let key = h.to_lowercase().replace('`', "");
        self.list.retain(|(_, t)| t.to_lowercase() != key);
        self.keys.retain(|k| *k != key);
        self.keys.push(key);
        self.list.insert(0, (Rank::Rule, h.replace('`', "")));
    }

    /// A short heading names its section; numbering is dropped ("3. Builders" → "Builders").
    fn heading(&mut self, rank: Rank, h: &str) {
        let h = without_numbering(h);
        if h.split_whitespace().count() <= MAX_WORDS && !is_first_person(h) && !is_label_heading(h)
        {
            self.push(rank, h);
        }
    }

    /// A term a sentence introduces: the words before a colon or dash that a sentence
    /// starts with (at a line's start when the line starts a sentence, or after a period
    /// inside it: "A report format. Sealed: only this crate implements it"), or a short
    /// first sentence of a paragraph ("Shadowing to freeze a value. Build it …"). A lead of
    /// a word or two that the text never comes back to labels what follows ("Third:",
    /// "TODO tomorrow:"; see [`labels`]).
    fn introduced(&mut self, line: &str, sentence_start: bool, para_start: bool, text: &str) {
        let starts = line
            .match_indices(". ")
            .map(|(i, m)| i + m.len())
            .filter(|&i| line[i..].starts_with(|c: char| c.is_uppercase() || c == '`'));
        let sentences = sentence_start.then_some(0).into_iter().chain(starts);
        for at in sentences {
            let Some(lead) = lead_name(&line[at..]) else {
                continue;
            };
            let lead_plain = lead.trim_matches(|c| c == '*' || c == '_' || c == '`');
            let short = lead_plain.split_whitespace().count() <= 2;
            if wordy(lead_plain) && !is_clause(lead) && !(short && labels(lead_plain, text)) {
                self.push(Rank::Introduced, lead);
            }
        }
        if para_start && sentence_start {
            if let Some(first) = first_sentence(line) {
                let n = first.split_whitespace().count();
                let article = without_article(first).is_some();
                if n >= 2 && wordy(first) && !is_clause(first) && !article {
                    self.push(Rank::Introduced, first);
                }
            }
        }
    }

    /// Sentence subjects led by a gerund (see [`gerund_subjects`]).
    fn gerund_subjects(&mut self, paragraph: &str) {
        for subject in gerund_subjects(paragraph) {
            self.push(Rank::Introduced, &subject);
        }
    }

    /// `**bold**`, `__bold__`, `*Emphasis*` of a few words; a single lower-case word in
    /// emphasis is stress, not a term.
    fn emphasis(&mut self, line: &str) {
        for marker in ["**", "__", "*"] {
            let mut rest = line;
            while let Some(open) = rest.find(marker) {
                let after = &rest[open + marker.len()..];
                let Some(close) = after.find(marker) else {
                    break;
                };
                let inner = &after[..close];
                let n = inner.split_whitespace().count();
                let capital = inner
                    .trim_start_matches('`')
                    .starts_with(char::is_uppercase);
                let stress =
                    marker == "*" && !capital || n == 1 && !capital && !inner.contains('`');
                if !inner.is_empty() && !inner.starts_with(' ') && n <= 5 && !stress {
                    self.push(Rank::Emphasis, inner);
                }
                rest = &after[close + marker.len()..];
            }
        }
    }

    /// Code spans that name an API or a language feature: paths (`mem::take`), macros
    /// (`matches!`), attributes (`#[must_use]`), `impl Trait`, types (`RefCell<T>`).
    /// Code spans that name an API (see `api_name`).
    fn code_spans(&mut self, line: &str) {
        let mut parts = line.split('`');
        let mut before = parts.next().unwrap_or_default();
        while let (Some(span), Some(after)) = (parts.next(), parts.next()) {
            // "calls in `Router::dispatch`", "put it on `Schedule::new`": a place in the
            // author's code, where a technique is used, not the technique.
            let place = before
                .split_whitespace()
                .next_back()
                .is_some_and(|w| PLACE_WORDS.contains(&w.to_lowercase().as_str()));
            if let Some((t, rank)) = api_name(span).filter(|_| !place) {
                self.push(rank, &t);
            }
            self.bare_code(before);
            before = after;
        }
        self.bare_code(before);
    }

    /// Code written without backticks, as notes in plain text do ("wrap them in
    /// Arc<Mutex<Stats>>", "call Rc::downgrade(&parent)"): a path or a generic type is code
    /// by its syntax alone, and names an API as a code span would (see `api_name`).
    fn bare_code(&mut self, prose: &str) {
        let mut previous = "";
        for word in prose.split_whitespace() {
            // "in Router::dispatch": a place in the author's code (as in `code_spans`); a
            // type is what a value is wrapped in ("in Arc<Mutex<Stats>>").
            let place = PLACE_WORDS.contains(&previous.to_lowercase().as_str());
            previous = word;
            if place && !word.contains('<') {
                continue;
            }
            let w = word
                .trim_start_matches(['(', '[', '"', '\''])
                .trim_end_matches(['.', ',', ';', ':', ')', ']', '"', '\'', '?', '!']);
            // "use let-else", "an if-let chain": keywords joined by hyphens name a construct.
            let parts: Vec<&str> = w.split('-').collect();
            if parts.len() >= 2 && parts.iter().all(|p| RUST_KEYWORDS.contains(p)) {
                self.push(Rank::Api, w);
                continue;
            }
            let path = w.contains("::") && !w.starts_with("::");
            let generic = w.starts_with(|c: char| c.is_ascii_uppercase())
                && w.contains('<')
                && w.matches('<').count() == w.matches('>').count();
            if path || generic {
                if let Some((t, rank)) = api_name(w) {
                    self.push(rank, &t);
                }
            }
        }
    }

    /// A type the text keeps coming back to by its bare name (`RefCell`, `Weak`, `Reverse`):
    /// in code spans on two lines or more (or once, imported from std), not an everyday type
    /// or trait, in a chunk that names no API or stronger term. Types the text
    /// defines itself are dropped later with the rest of its own items.
    fn repeated_types(&mut self, lines: &[(String, bool)], imported: &[String]) {
        // A fallback: beside an API the text names as code (`#[non_exhaustive]`), a bare
        // trait it also mentions (`Deref`) is one more choice a small model takes wrongly.
        if self.list.iter().any(|(r, _)| *r <= Rank::Api) {
            return;
        }
        let seen = spans_by_lines(lines, |span| {
            let span = span.trim();
            // A construction names its type: `Reverse(x)`.
            let name = span.split_once('(').map_or(span, |(head, _)| head);
            let bare = name.len() >= 3
                && name.starts_with(|c: char| c.is_ascii_uppercase())
                && name.chars().any(|c| c.is_ascii_lowercase())
                && name.chars().all(|c| c.is_ascii_alphanumeric());
            (bare && !EVERYDAY_TYPES.contains(&name) && !EVERYDAY_TRAITS.contains(&name))
                .then_some(name)
        });
        for (w, n) in seen {
            if n >= 2 || imported.iter().any(|i| i == w) {
                self.push(Rank::Type, w);
            }
        }
    }

    /// What a line of source code does: the trait it implements, the trait a function's
    /// opaque return type names, an attribute, a macro.
    fn code_line(&mut self, line: &str) {
        // `fn leaves(&self) -> impl Iterator<Item = Id>`: the function hides its concrete
        // type behind the trait it returns.
        if let Some((_, ret)) = line.split_once("-> impl ").filter(|_| line.contains("fn ")) {
            let tr = ret
                .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .next()
                .unwrap_or("");
            let name = last_segment(tr);
            if name.starts_with(|c: char| c.is_ascii_uppercase()) {
                self.push(Rank::Api, &format!("Returning impl {name}"));
            }
        }
        if let Some(rest) = line.strip_prefix("impl") {
            if let Some((tr, _)) = rest.split_once(" for ") {
                let tr = after_generics(tr.trim()).trim();
                let name = last_segment(tr);
                if name.chars().next().is_some_and(char::is_uppercase)
                    && !EVERYDAY_TRAITS.contains(&name)
                {
                    // The code shows the technique of implementing the trait for its own
                    // type, not the trait itself.
                    self.push(Rank::Api, &format!("Implementing {name}"));
                }
            }
        }
        if let Some(attr) = line.strip_prefix("#[").and_then(|a| a.strip_suffix(']')) {
            let name = attr.split(['(', ' ', '=']).next().unwrap_or("");
            if !name.is_empty() && !PLUMBING_ATTRIBUTES.contains(&name) {
                self.push(Rank::Api, &format!("#[{name}]"));
            }
        }
        for (i, _) in line.match_indices("!(") {
            let name: String = line[..i]
                .chars()
                .rev()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            if !name.is_empty() && !COMMON_MACROS.contains(&name.as_str()) {
                self.push(Rank::Api, &format!("{name}!"));
            }
        }
    }

    /// A function or method the text keeps coming back to: a bare lower-case name in code
    /// spans on two lines or more (`fold`), not a keyword, and called somewhere in the text.
    fn repeated_words(&mut self, lines: &[(String, bool)], text: &str) {
        let seen = spans_by_lines(lines, |span| {
            let bare = span.starts_with(|c: char| c.is_ascii_lowercase())
                && span.len() >= 3
                && span
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c == '_' || c.is_ascii_digit());
            (bare && !is_everyday_name(span)).then_some(span)
        });
        // Called somewhere in the text (`.fold(`), so a function, not a word of another
        // language (`void`) or a setting (`no_run`).
        let called = |w: &str| {
            text.match_indices(&format!("{w}("))
                .any(|(i, _)| !text[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_'))
        };
        for (w, n) in seen {
            if n >= 2 && called(w) {
                self.push(Rank::Repeated, w);
            }
        }
    }

    /// A record's value that reads as a title (a few words, not a number or a sentence).
    fn record_value(&mut self, value: &str) {
        let v = value.trim();
        let n = v.split_whitespace().count();
        if (1..=MAX_WORDS).contains(&n)
            && !looks_like_code(v)
            && !v.ends_with('.')
            && v.parse::<f64>().is_err()
            && !matches!(v, "true" | "false" | "null")
        {
            self.push(Rank::Heading, v);
        }
    }
}

/// "Cloning to satisfy the borrow checker hides the real problem": a sentence whose
/// subject is a phrase led by a gerund names a technique by what it does.
pub fn gerund_subjects(paragraph: &str) -> Vec<String> {
    let mut out = Vec::new();
    let plain = paragraph
        .replace("**", "")
        .replace("__", "")
        .replace('`', "");
    for sentence in plain.split([':', ';']).flat_map(|p| p.split(". ")) {
        let words: Vec<&str> = sentence.split_whitespace().collect();
        let Some(first) = words.first() else {
            continue;
        };
        let gerund = first.len() >= 6
            && first.ends_with("ing")
            && first.starts_with(|c: char| c.is_ascii_uppercase())
            && first.chars().all(char::is_alphabetic)
            && !NOT_GERUNDS.contains(&first.to_lowercase().as_str());
        if !gerund {
            continue;
        }
        // The verb that says what the technique does: "… hides the real problem".
        let verb = (2..words.len().min(7))
            .find(|&i| EFFECT_VERBS.contains(&words[i].to_lowercase().as_str()));
        if let Some(v) = verb {
            let subject = &words[..v];
            let last = subject[v - 1].to_lowercase();
            if !subject
                .iter()
                .any(|w| w.ends_with(',') || w.contains(['(', '"', '=']))
                && !FUNCTION_WORDS.contains(&last.as_str())
                && !breaks_a_name(&last)
                && !last.ends_with("ly")
            {
                out.push(subject.join(" "));
            }
        }
    }
    out
}

/// The APIs a paragraph names as code (`mem::take`, `#[must_use]`, `Rc::downgrade` written
/// bare), as the terms offer them, in order; places in the author's code ("on
/// `Schedule::new`") are not among them.
pub fn apis_named(paragraph: &str) -> Vec<String> {
    let mut terms = Terms::default();
    for line in paragraph.lines() {
        terms.code_spans(line);
    }
    terms
        .list
        .into_iter()
        .filter(|(r, _)| *r == Rank::Api)
        .map(|(_, t)| t)
        .collect()
}

/// For each name `pick` finds in a line's code spans, on how many lines it is found, in the
/// order first seen.
fn spans_by_lines<'a>(
    lines: &'a [(String, bool)],
    pick: impl Fn(&'a str) -> Option<&'a str>,
) -> Vec<(&'a str, usize)> {
    let mut seen: Vec<(&str, usize)> = Vec::new();
    for (line, _) in lines {
        let mut on_line: Vec<&str> = Vec::new();
        for span in line.split('`').skip(1).step_by(2) {
            if let Some(name) = pick(span).filter(|n| !on_line.contains(n)) {
                on_line.push(name);
            }
        }
        for w in on_line {
            match seen.iter_mut().find(|(s, _)| *s == w) {
                Some((_, n)) => *n += 1,
                None => seen.push((w, 1)),
            }
        }
    }
    seen
}

/// True when `lead` only labels what follows it ("Third", "TODO tomorrow", "Another
/// thing"): none of its words (of three letters or more, by a 5-letter stem) comes back
/// anywhere else in `text`. A term a sentence introduces is one the text talks about.
fn labels(lead: &str, text: &str) -> bool {
    let stem = |w: &str| -> String {
        w.chars()
            .filter(|c| c.is_alphanumeric())
            .flat_map(char::to_lowercase)
            .take(5)
            .collect()
    };
    let text = text.to_lowercase();
    let words: Vec<&str> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    !lead
        .split_whitespace()
        .map(stem)
        .filter(|w| w.chars().count() >= 3 && !super::words::is_stopword(w))
        .any(|w| words.iter().filter(|t| t.starts_with(&w)).count() >= 2)
}

/// The noun after a trait's name in code that names the trait's implementation.
pub const IMPLEMENTATION: &str = "implementation";

/// The trait a code span names, `Drop` in "`Drop`": a capitalised identifier, not an
/// everyday trait (a `Debug` implementation is plumbing).
fn implemented_trait(word: &str) -> Option<&str> {
    let w = word.strip_prefix('`')?.strip_suffix('`')?;
    (w.starts_with(|c: char| c.is_ascii_uppercase())
        && w.chars().all(|c| c.is_ascii_alphanumeric())
        && !EVERYDAY_TRAITS.contains(&w))
    .then_some(w)
}

/// Only words: no code, paths or punctuation beyond hyphens and apostrophes.
fn wordy(s: &str) -> bool {
    !looks_like_code(s)
        && s.chars()
            .all(|c| c.is_alphanumeric() || c == ' ' || c == '-' || c == '\'')
}

/// The API a code span names, if it names one, and how strongly: a path, macro, attribute or
/// `impl Trait` names a technique more often than a type name does. A bare type name is
/// left out: it is most often the text's own type (`Celsius`, `ParserOptions`); a generic one
/// is more often a standard wrapper (`RefCell<String>`, `Cow<str>`).
fn api_name(span: &str) -> Option<(String, Rank)> {
    let s = span.trim();
    if s.is_empty() || s.len() > 40 {
        return None;
    }
    // A call: the callee (`mem::take(&mut x)` → `mem::take`).
    let s = match s.find('(') {
        Some(i) if !s.starts_with("#[") && i > 0 && !s[..i].contains('<') => &s[..i],
        _ => s,
    };
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    let value = s.contains('.') || s.contains('=') || s.contains(';') || s.contains('"');
    if value {
        return None;
    }
    if let Some(inner) = dyn_type_inside(s) {
        return Some((inner.to_string(), Rank::Api));
    }
    let api = s.contains("::")
        || (s.ends_with('!') && s[..s.len() - 1].chars().all(ident))
        || s.starts_with("#[")
        || s.starts_with("impl ")
        || s.starts_with("dyn ");
    let type_name = s.chars().next().is_some_and(char::is_uppercase)
        && s.len() >= 3
        && s.contains('<')
        && s.chars().all(|c| ident(c) || "<>&', ".contains(c))
        && !everyday_type(s);
    if api {
        Some((s.to_string(), Rank::Api))
    } else if type_name {
        Some((s.to_string(), Rank::Type))
    } else {
        None
    }
}

/// The `Box<dyn Error>` inside `Result<(), Box<dyn Error>>`: a type over a trait object or
/// an `impl Trait` names a technique even where an everyday container holds it.
fn dyn_type_inside(s: &str) -> Option<&str> {
    let i = ["<dyn ", "<impl "].iter().filter_map(|m| s.find(m)).min()?;
    let start = s[..i]
        .char_indices()
        .rev()
        .find(|(_, c)| !(c.is_alphanumeric() || *c == '_' || *c == ':'))
        .map_or(0, |(j, c)| j + c.len_utf8());
    let mut depth = 0;
    for (k, c) in s[i..].char_indices() {
        match c {
            '<' => depth += 1,
            '>' => {
                depth -= 1;
                if depth == 0 {
                    return (start < i).then_some(&s[start..i + k + 1]);
                }
            }
            _ => {}
        }
    }
    None
}

/// A generic type that names no technique: an everyday container of plain types
/// (`Vec<char>`, `Option<Job>`; `Box<dyn Error>` is kept), or any type over placeholders
/// only (`Foo<T>`, `Rc<T>`, `Connection<S>`), which is how a text writes a type in general.
fn everyday_type(s: &str) -> bool {
    let Some((head, args)) = s.split_once('<') else {
        return false;
    };
    let args = args.trim_end_matches('>');
    let placeholders = args
        .split(',')
        .map(str::trim)
        .all(|a| a.len() == 1 && a.chars().all(|c| c.is_ascii_uppercase()));
    let plain = !args.contains("dyn ") && !args.contains("impl ");
    placeholders || plain && EVERYDAY_TYPES.contains(&head.trim_start_matches('&').trim())
}

/// `fmt::Display` → `Display`, `From<io::Error>` → `From`.
fn last_segment(path: &str) -> &str {
    let base = path.split('<').next().unwrap_or(path);
    base.rsplit("::").next().unwrap_or(base).trim()
}

/// The quotes an author puts around a word: double, single, typographic.
const QUOTES: &[(char, char)] = &[
    ('"', '"'),
    ('\'', '\''),
    ('\u{201c}', '\u{201d}'),
    ('\u{2018}', '\u{2019}'),
];

/// `w` without the quotes around it: a quote it only opens or only closes stays (`'a`, a
/// lifetime; `authors'`, a possessive) unless it is a double quote, which words never hold.
fn unquote(w: &str, open: char, close: char) -> &str {
    match w.strip_prefix(open).and_then(|w| w.strip_suffix(close)) {
        Some(inner) => inner,
        None if open == '"' || open == '\u{201c}' => w.trim_matches([open, close]),
        None => w,
    }
}

/// A phrase that names a thing, read back from its head noun.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamedPhrase {
    pub phrase: String,
    /// A determiner opens it ("the strategy pattern", "its `Drop` implementation"): the
    /// author introduces the thing. Else only its head ends it ("… need procedural macros."),
    /// which may have read a verb or a clause into the name: a candidate, not an introduction.
    pub opened: bool,
}

/// The things a sentence names: "the newtype pattern", "an extension trait", "the `matches!`
/// macro"; and a trait's implementation the text points at by the trait's name in code ("its
/// `Drop` implementation puts the depth back"). The one definition of a named phrase: the
/// extractor is offered these, and a name the text gives this way is discussed there
/// (`checks::discussed`) when a determiner opens the phrase ([`NamedPhrase::opened`]).
pub fn named_phrases(line: &str) -> Vec<NamedPhrase> {
    let mut out = Vec::new();
    let words: Vec<&str> = line.split_whitespace().collect();
    for (i, w) in words.iter().enumerate() {
        let bare = w
            .trim_end_matches(|c: char| !c.is_alphanumeric())
            .to_lowercase();
        if let Some(tr) = i
            .checked_sub(1)
            .and_then(|p| implemented_trait(words[p]))
            .filter(|_| bare == IMPLEMENTATION)
        {
            out.push(NamedPhrase {
                phrase: format!("{tr} {IMPLEMENTATION}"),
                opened: true,
            });
            continue;
        }
        let head = bare.strip_suffix('s').filter(|b| HEAD_NOUNS.contains(b));
        // A head noun in code is the code's own word (`impl Trait`), not a name's head.
        if !HEAD_NOUNS.contains(&bare.as_str()) && head.is_none() || w.contains('`') {
            continue;
        }
        let mut start = i;
        let mut delimited = false;
        while start > 0 && i - start < 3 {
            let prev = words[start - 1];
            let lower = prev.to_lowercase();
            let bare = lower.trim_matches(|c: char| !c.is_alphanumeric());
            if breaks_a_name(bare)
                || prev.ends_with([',', '.', ';', ':', ')'])
                || lower.ends_with("'s")
                || prev.starts_with('(')
            {
                delimited = DETERMINERS.contains(&bare);
                break;
            }
            start -= 1;
        }
        // The head ends its noun phrase when punctuation, the line's end or a function
        // word follows it; a content word after it makes it a modifier ("pattern
        // matching", "trait implementations"). A phrase is read only when a determiner
        // opens it or its head ends it.
        let next = words.get(i + 1).map(|n| n.to_lowercase());
        let ends = w.ends_with(|c: char| !c.is_alphanumeric() && c != '`')
            || next.as_deref().is_none_or(|n| {
                let n = n.trim_matches(|c: char| !c.is_alphanumeric());
                n.is_empty()
                    || !n.starts_with(|c: char| c.is_alphabetic())
                    || FUNCTION_WORDS.contains(&n)
                    || breaks_a_name(n)
            });
        if start < i && (delimited || ends) {
            // The head noun as written, singular: "traits" → "trait", "`Trait`" → "Trait".
            let written = w.trim_matches(|c: char| !c.is_alphanumeric() && c != '-');
            let written = match head {
                Some(_) => &written[..written.len() - 1],
                None => written,
            };
            // Quotes around a word of the name are the author's, not the name's:
            // `which "observation" pattern` → "observation pattern", `'functional' approach`
            // → "functional approach".
            let mut phrase = words[start..i]
                .iter()
                .map(|w| {
                    QUOTES
                        .iter()
                        .fold(*w, |w, &(open, close)| unquote(w, open, close))
                })
                .collect::<Vec<_>>()
                .join(" ");
            phrase.push(' ');
            phrase.push_str(written);
            out.push(NamedPhrase {
                phrase,
                opened: delimited,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::teaching::silence;

    /// The facts of a file that is only `text`, its sections not counted.
    fn own(text: &str) -> FileFacts {
        FileFacts {
            defined: defined_names(text),
            sections_are_topics: false,
            has_rust: crate::text::teaching::has_rust(text),
            imported: std_imports(text),
            title: None,
            ..FileFacts::default()
        }
    }

    fn has(list: &[String], t: &str) -> bool {
        list.iter().any(|x| x == t)
    }

    #[test]
    fn a_section_heading_that_states_a_rule_is_its_name_and_its_apis_are_examples() {
        let text = "## Functions that can fail return Result instead of panicking\n\nCall `str::parse` and pass its error up with `?`; `Option::ok_or` turns a missing value into an error.\n";
        let headings = vec![
            "Errors".to_string(),
            "Functions that can fail return Result instead of panicking".to_string(),
        ];
        let t = terms(text, &headings, FileKind::Markdown, &own(text));
        assert_eq!(
            t.first().map(String::as_str),
            Some("Functions that can fail return Result instead of panicking")
        );
        assert!(!t.iter().any(|t| t.contains("str::parse")), "{t:?}");
        assert!(check_rule_name(text).is_ok());
        // A document's title is not a section's rule, and a short heading names a thing.
        let t = terms(text, &headings[1..], FileKind::Markdown, &own(text));
        assert!(t.iter().any(|t| t.contains("str::parse")), "{t:?}");
        assert!(!states_a_rule("Entry API"));
        assert!(!states_a_rule("What I learned about lifetimes this week"));
        assert!(states_a_rule("2. Borrow slices for read-only parameters"));
    }

    fn check_rule_name(text: &str) -> Result<(), String> {
        crate::text::checks::check_finding(
            "Functions that can fail return Result instead of panicking",
            "Functions that can fail return Result instead of panicking",
            text,
            false,
        )
    }

    #[test]
    fn code_without_backticks_and_types_the_text_keeps_naming_are_terms() {
        // Plain-text notes write code bare: a path or a generic type is code by its syntax.
        let text = "Wrap the stats in Arc<Mutex<Stats>> and call Arc::clone(&stats) per worker.\n\
                    A place is not a name: the bug was in Pool::run.\n\
                    Plain words, a ratio 3:2 and https://example.org/a::b are not code.\n";
        let t = terms(text, &[], FileKind::Text, &own(text));
        assert!(has(&t, "Arc<Mutex<Stats>>"), "{t:?}");
        assert!(has(&t, "Arc::clone"), "{t:?}");
        assert!(
            !t.iter()
                .any(|t| t.contains("Pool::run") || t.contains("example")),
            "{t:?}"
        );
        // A bare type named on two lines, or once when the file imports it from std.
        let text = "The parent link is a `Weak`.\nTo use a `Weak` you call `upgrade`.\nThe `Stats` struct.\n";
        let t = terms(text, &[], FileKind::Text, &own(text));
        assert!(has(&t, "Weak"), "{t:?}");
        assert!(!has(&t, "Stats"), "named once: {t:?}");
        // Beside an API named as code, a bare type is not offered (a fallback only).
        let text = "Mark it `#[non_exhaustive]`.\nThe `Weak` link and the `Weak` count.\n";
        let t = terms(text, &[], FileKind::Text, &own(text));
        assert!(has(&t, "#[non_exhaustive]") && !has(&t, "Weak"), "{t:?}");
        let source = "//! Lookups mutate through `&self`: the counters are a `Cell`.\nuse std::cell::{Cell, RefCell};\nuse std::fmt;\npub struct Book { hits: Cell<u64> }\n";
        assert_eq!(std_imports(source), ["Cell", "RefCell"]);
        let t = terms(source, &[], FileKind::Rust, &own(source));
        assert!(has(&t, "Cell"), "{t:?}");
        // The text's own types are its example, not a name; everyday types never are.
        let text =
            "A `Book` holds a `String`.\nEach `Book` and each `String` is cloned.\nstruct Book;\n";
        let t = terms(text, &[], FileKind::Text, &own(text));
        assert!(!has(&t, "Book") && !has(&t, "String"), "{t:?}");
    }

    #[test]
    fn prose_offers_headings_phrases_emphasis_and_api_spans() {
        let text = "## Monday\n\nThe answer is `Option::take`: it moves the value.\n\n\
                    Shadowing to freeze a value. Build it, then rebind it.\n\n\
                    - **A scope guard**: undoes a change when dropped.\n\n\
                    This is the newtype pattern, and **interior mutability** helps.\n\
                    Other useful traits such as `Default` exist.\n\
                    Call `self.run(job)` or use `matches!` and `#[must_use]`.\n\
                    Return `Box<dyn Error>` from a function that takes `impl Trait`.\n\
                    Derive it on `Options`, see [the `Cow<str>` docs](https://x.y/z).\n\
                    A `Vec<char>` or a `Foo<T>` is data, not a technique.\n\
                    ```rust\nimpl Drop for Guard {}\n```\n";
        let t = terms(text, &["Week 3 log".into()], FileKind::Markdown, &own(text));
        for want in [
            "Shadowing to freeze a value",
            "newtype pattern",
            "interior mutability",
            "Option::take",
            "matches!",
            "#[must_use]",
            "Box<dyn Error>",
            "impl Trait",
            "Cow<str>",
        ] {
            assert!(has(&t, want), "{want:?} missing from {t:?}");
        }
        assert_eq!(
            t.last().map(String::as_str),
            Some("Cow<str>"),
            "type names come last"
        );
        // A method call on a value, a bare type name named once, a link's address are not
        // terms; code blocks of prose are not read.
        // The section heading gives way to the names the text gives.
        for absent in [
            "useful trait",
            "Monday",
            "self.run",
            "Drop",
            "Default",
            "Options",
            "x.y",
            "Vec<char>",
            "Foo<T>",
        ] {
            assert!(
                !t.iter().any(|x| x.contains(absent)),
                "{absent:?} offered in {t:?}"
            );
        }
    }

    #[test]
    fn labels_of_notes_and_clauses_are_not_names() {
        let text = "Found out about the `matches!` macro.\n\n\
                    Works with guards too: `matches!(n, Some(x) if x > 3)`.\n\n\
                    Tidied up the public API. Scripts return `Result<(), Box<dyn Error>>`.\n";
        let t = terms(
            text,
            &["Week 3 log".into(), "Tuesday".into()],
            FileKind::Markdown,
            &FileFacts::default(),
        );
        assert!(has(&t, "matches! macro"), "{t:?}");
        assert!(has(&t, "Box<dyn Error>"), "inside an everyday type: {t:?}");
        for absent in [
            "matches!",
            "Week 3 log",
            "Tuesday",
            "Works with guards too",
            "Tidied up the public API",
        ] {
            assert!(!has(&t, absent), "{absent:?} offered in {t:?}");
        }
        let only = |h: &str| {
            terms(
                "Some text.\n",
                &[h.to_string()],
                FileKind::Markdown,
                &FileFacts::default(),
            )
        };
        assert!(only("Thing I learned").is_empty());
        assert!(only("Wed / Thu").is_empty());
        assert!(only("March 2024 notes").is_empty());
        assert_eq!(only("Structured enums"), ["Structured enums"]);
        assert_eq!(
            only("Collections are smart pointers"),
            ["Collections are smart pointers"]
        );
    }

    #[test]
    fn a_gerund_phrase_that_is_a_sentences_subject_is_a_term() {
        let text = "1. **Four clones here.** Cloning to satisfy the\n   borrow checker hides the real problem.\n\n\
                    Nothing is copied. Returning `impl Trait` lets callers stay generic.\n\
                    Adding a field later then does not break every caller.\n\
                    Reading `key = value` configuration files with sections.\n";
        let t = terms(text, &[], FileKind::Markdown, &FileFacts::default());
        assert!(has(&t, "Cloning to satisfy the borrow checker"), "{t:?}");
        assert!(has(&t, "Returning impl Trait"), "{t:?}");
        // Keywords joined by hyphens name a construct of the language; other compounds not.
        let t = terms(
            "Instead of a `match`, use let-else:\nIt keeps the happy path at the left margin, \
             a well-known trick.\n",
            &[],
            FileKind::Text,
            &FileFacts::default(),
        );
        assert!(has(&t, "let-else"), "{t:?}");
        assert!(!t.iter().any(|x| x.contains("well-known")), "{t:?}");
        assert!(
            !t.iter().any(|x| x.starts_with("Nothing")
                || x.starts_with("Adding")
                || x.starts_with("Reading")),
            "{t:?}"
        );
    }

    #[test]
    fn a_code_span_after_in_or_on_is_a_place_not_a_technique() {
        let text = "Four clones in `Router::dispatch` go. Put `#[must_use]` on `Schedule::new`.\n";
        let t = terms(text, &[], FileKind::Markdown, &FileFacts::default());
        assert_eq!(t, ["#[must_use]"]);
    }

    #[test]
    fn in_a_file_of_topics_a_topics_chunk_is_not_offered_the_title() {
        let file = "# Iterator tricks\n\n## zip\n\nPairs.\n\n## Collecting into a map\n\nPairs collect into a map.\n";
        let facts = FileFacts::of(file, FileKind::Markdown);
        assert!(facts.sections_are_topics);
        let chunk = "## Collecting into a map\n\nPairs collect into a map.\n";
        let path = [
            "Iterator tricks".to_string(),
            "Collecting into a map".to_string(),
        ];
        let t = terms(chunk, &path, FileKind::Markdown, &facts);
        assert!(
            has(&t, "Collecting into a map") && !has(&t, "Iterator tricks"),
            "{t:?}"
        );
        // A chapter's sections include structure ones: its title is still offered.
        let chapter = "# Builder\n\n## Description\n\nA builder.\n\n## Flat builders\n\nx\n";
        let facts = FileFacts::of(chapter, FileKind::Markdown);
        assert!(!facts.sections_are_topics);
        let path = ["Builder".to_string(), "Flat builders".to_string()];
        assert!(has(
            &terms("x\n", &path, FileKind::Markdown, &facts),
            "Builder"
        ));
    }

    /// A chapter of rules, each a section whose heading states it: a section below a rule
    /// ("Exceptions") is part of the rule's discussion, and the chapter's opening introduces
    /// the rules, each taught in its own section.
    #[test]
    fn a_section_below_a_rule_is_about_the_rule_and_a_chapters_opening_is_not_read() {
        let chapter = "# Errors\n\nThe rules in this chapter are about handing problems back.\n\n\
                       ## Functions that can fail return Result instead of panicking\n\nA `Result<T, E>` lets the caller decide.\n\n\
                       ### Exceptions\n\nPanicking is right when only a bug of ours can fail, as in `v[i]`.\n\n\
                       ## Error messages start in lowercase and end without a period\n\nMessages get glued together by `Display`.\n";
        let facts = FileFacts::of(chapter, FileKind::Markdown);
        assert!(facts.sections_are_topics && facts.sections_are_rules);
        let path = |hs: &[&str]| hs.iter().map(|h| h.to_string()).collect::<Vec<_>>();
        let rule = "Functions that can fail return Result instead of panicking";
        let below = path(&["Errors", rule, "Exceptions"]);
        let t = terms(
            "### Exceptions\n\nPanicking is right when only a bug of ours can fail, as in `v[i]`.\n",
            &below,
            FileKind::Markdown,
            &facts,
        );
        assert_eq!(t.first().map(String::as_str), Some(rule), "{t:?}");
        assert!(!has(&t, "Exceptions"), "{t:?}");
        let opening = "# Errors\n\nThe rules in this chapter are about handing problems back.\n";
        assert_eq!(
            silence(opening, &path(&["Errors"]), FileKind::Markdown, &facts),
            Some(crate::text::teaching::Silence::Introduction)
        );
        assert_eq!(
            silence(
                "A `Result<T, E>` lets the caller decide.\n",
                &path(&["Errors", rule]),
                FileKind::Markdown,
                &facts
            ),
            None
        );
        // A document that is one topic ("Builder" and its "Example") reads its opening.
        let one = "# Builder\n\nA builder collects settings with `Foo::builder()`.\n\n## Example\n\n`let f = Foo::builder().build();`\n";
        let facts = FileFacts::of(one, FileKind::Markdown);
        assert_eq!(
            silence(one, &path(&["Builder"]), FileKind::Markdown, &facts),
            None
        );
    }

    /// A label in bold that the file repeats after every section structures it: it is no
    /// name, and no sentence to quote.
    #[test]
    fn a_repeated_bold_label_is_no_term_and_no_quote() {
        let post = "# Lifetimes\n\n## `T` only holds owned types\n\nIt holds `&'a T` too.\n\n**Key takeaways**\n\n- `T` is a superset of `&T`\n\n\
                    ## Boxes are slow\n\nA `Box<u8>` is one allocation.\n\n**Key takeaways**\n\n- boxes cost one allocation\n\n**Once only**\n";
        let facts = FileFacts::of(post, FileKind::Markdown);
        assert_eq!(facts.labels, ["Key takeaways"]);
        let path = ["Lifetimes".to_string(), "Boxes are slow".to_string()];
        let chunk = "A `Box<u8>` is one allocation.\n\n**Key takeaways**\n\n- boxes cost one allocation\n\n**Once only**\n";
        let t = terms(chunk, &path, FileKind::Markdown, &facts);
        assert!(!has(&t, "Key takeaways") && has(&t, "Once only"), "{t:?}");
        let quotes = crate::text::quotes::sentences(chunk);
        assert!(
            !quotes
                .iter()
                .any(|q| q.contains("Key takeaways") || q.contains("Once only")),
            "{quotes:?}"
        );
    }

    #[test]
    fn a_numbered_headings_chunk_is_about_its_item_not_the_list_above_it() {
        let path = |item: &str| {
            [
                "Common misconceptions",
                "The misconceptions",
                item,
                "Example",
            ]
            .map(String::from)
            .to_vec()
        };
        // A post of misconceptions, one numbered section each; the second holds Rust in its
        // example, not in the chunk below ("Example" is a part of the item's section); the
        // third is a step with no Rust anywhere in its section.
        let body = "A box costs one allocation:\n\n```rust\nlet b: Box<u8> = Box::new(1);\n```\n";
        let prose = "Each of them costs less than you think.\n";
        let step =
            "Pick a project, set `APP_MODE`, and run:\n\n```sh\nexport PATH=$HOME/bin\n```\n";
        let boxes = [
            "Common misconceptions",
            "The misconceptions",
            "2) boxes are slow",
        ]
        .map(String::from)
        .to_vec();
        let (item, example, steps) = (
            boxes.clone(),
            path("2) boxes are slow"),
            path("3) Spend ten hours coding"),
        );
        let facts = FileFacts::of_chunks(
            [
                (item.as_slice(), body),
                (example.as_slice(), prose),
                (steps.as_slice(), step),
            ],
            FileKind::Markdown,
        );
        assert_eq!(facts.items, ["2) boxes are slow"]);
        let t = terms(
            prose,
            &path("2) boxes are slow"),
            FileKind::Markdown,
            &facts,
        );
        assert!(has(&t, "boxes are slow"), "{t:?}");
        assert!(
            !has(&t, "The misconceptions") && !has(&t, "Common misconceptions"),
            "{t:?}"
        );
        assert_eq!(item_heading(&example, &facts), Some(2));
        // Unnumbered, the same section is still offered the headings above it.
        let t = terms(body, &path("Boxes are slow"), FileKind::Markdown, &facts);
        assert!(has(&t, "Common misconceptions"), "{t:?}");
        // A numbered step with no Rust in its section is a part of its document, not a subject.
        let t = terms(step, &steps, FileKind::Markdown, &facts);
        assert!(has(&t, "Common misconceptions"), "{t:?}");
        assert_eq!(item_heading(&steps, &facts), None);
        // A claim in the first person is the author's point once its section shows Rust.
        let mine = path("4) my code isn't generic");
        let facts = FileFacts::of_chunks([(mine.as_slice(), body)], FileKind::Markdown);
        assert_eq!(facts.items, ["4) my code isn't generic"]);
        let t = terms(prose, &mine, FileKind::Markdown, &facts);
        assert_eq!(
            t.first().map(String::as_str),
            Some("my code isn't generic"),
            "{t:?}"
        );
        // A year is not a numbering.
        assert!(is_numbered("2) boxes") && is_numbered("2.1 Builder") && is_numbered("0\\) Setup"));
        assert!(!is_numbered("2021 edition") && !is_numbered("Builder"));
    }

    #[test]
    fn a_documented_error_type_offers_what_it_is() {
        let text = "/// Everything that can go wrong, one variant per cause.\n#[derive(Debug)]\n\
                    pub enum ConfigError {\n    Io(io::Error),\n}\n\
                    /// A parsed value.\npub struct Item { v: u8 }\n";
        let t = terms(text, &[], FileKind::Rust, &own(text));
        assert!(has(&t, "Error enum"), "{t:?}");
        assert!(!has(&t, "Error type"), "{t:?}");
        let undocumented = "pub enum ParseError { Eof }\n";
        let t = terms(undocumented, &[], FileKind::Rust, &own(undocumented));
        assert!(!has(&t, "Error enum"), "{t:?}");
    }

    #[test]
    fn a_test_modules_macros_are_not_the_files_techniques() {
        let text = "/// Parses a port.\npub fn port(s: &str) -> u16 { s.parse().unwrap_or(80) }\n\
                    #[cfg(test)]\nmod tests {\n    #[test]\n    fn p() { assert!(matches!(port(\"1\"), 1)); }\n}\n";
        let t = terms(text, &[], FileKind::Rust, &own(text));
        assert!(!has(&t, "matches!"), "{t:?}");
    }

    #[test]
    fn source_code_offers_comments_traits_attributes_and_macros() {
        let text = "//! A wrapper that restores the depth: the guard pattern.\n\
                    /// Goes deeper until the returned `Indent` is dropped.\n\
                    #[must_use]\n#[derive(Debug)]\npub struct Indent<'a> { p: &'a Printer }\n\
                    impl<'a> Drop for Indent<'a> { fn drop(&mut self) {} }\n\
                    impl From<io::Error> for ConfigError {}\n\
                    impl fmt::Display for Celsius {}\n\
                    pub struct Celsius(f64);\ntrait State {}\nimpl State for Celsius {}\n\
                    /// Build one with `Celsius::new`.\n\
                    let idle = matches!(s, State::Idle);\nprintln!(\"x\");\n";
        let t = terms(text, &[], FileKind::Rust, &own(text));
        for want in [
            "guard pattern",
            "#[must_use]",
            "Implementing Drop",
            "Implementing From",
            "matches!",
        ] {
            assert!(has(&t, want), "{want:?} missing from {t:?}");
        }
        // Plumbing, everyday macros and the code's own bare type names are not offered.
        for absent in [
            "Implementing Display",
            "#[derive]",
            "println!",
            "Indent",
            "State trait",
            "Celsius::new",
        ] {
            assert!(!has(&t, absent), "{absent:?} offered in {t:?}");
        }
    }

    #[test]
    fn a_lead_that_labels_its_paragraph_or_continues_a_sentence_is_no_term() {
        let text = "Second try: wrap the pool with `Arc<Mutex<Pool>>` and clone the Arc.\n\n\
                    Memoization trades memory for time: a repeated call is a lookup.\n\n\
                    A pool of workers. Scoped threads: `std::thread::scope` lets them borrow.\n\n\
                    Then the borrow checker made the whole\n\
                    thing painful: the `Rc` could not cross threads.\n";
        let t = terms(text, &[], FileKind::Text, &FileFacts::default());
        assert!(
            has(&t, "Scoped threads"),
            "a sentence's lead inside a line: {t:?}"
        );
        assert!(has(&t, "Arc<Mutex<Pool>>"), "{t:?}");
        assert!(has(&t, "Memoization trades memory for time"), "{t:?}");
        for absent in ["Second try", "thing painful"] {
            assert!(!has(&t, absent), "{absent:?} offered in {t:?}");
        }
    }

    #[test]
    fn a_named_phrase_is_read_across_wrapped_lines() {
        let text = "The engine holds a `Vec<Box<dyn Rule>>`. This is the strategy\n\
                    pattern: the engine calls each rule through the trait.\n";
        let t = terms(text, &[], FileKind::Text, &FileFacts::default());
        assert!(has(&t, "strategy pattern"), "{t:?}");
        assert!(!has(&t, "pattern"), "{t:?}");
    }

    #[test]
    fn a_head_noun_that_modifies_the_next_word_names_nothing() {
        let text = "Rust performs pattern matching on `T`. Users cannot add trait\n\
                    implementations to your types. But which \"observation\" pattern is\n\
                    expected? The builder pattern lets you name each field. Extension traits\n\
                    are how a crate adds methods.\n";
        let t = terms(text, &[], FileKind::Markdown, &FileFacts::default());
        assert!(!t.iter().any(|x| x.contains("performs")), "{t:?}");
        assert!(!t.iter().any(|x| x.contains("add trait")), "{t:?}");
        let has_any_case = |name: &str| t.iter().any(|x| x.eq_ignore_ascii_case(name));
        assert!(has_any_case("observation pattern"), "{t:?}");
        assert!(has_any_case("builder pattern"), "{t:?}");
        assert!(has_any_case("extension trait"), "{t:?}");
    }

    /// An author's quotes around the word before the head are not part of the name, single
    /// or double; a lifetime's quote is the code's own.
    #[test]
    fn quotes_around_a_named_phrase_word_are_left_out() {
        for (line, name) in [
            (
                "The 'functional' approach is common.",
                "functional approach",
            ),
            (
                "The \u{2018}typestate\u{2019} approach fits.",
                "typestate approach",
            ),
            ("We use the \"newtype\" pattern here.", "newtype pattern"),
        ] {
            let got: Vec<String> = named_phrases(line).into_iter().map(|p| p.phrase).collect();
            assert_eq!(got, [name], "{line}");
        }
        assert_eq!(unquote("'a", '\'', '\''), "'a");
        assert_eq!(unquote("authors'", '\'', '\''), "authors'");
    }

    #[test]
    fn a_traits_implementation_named_in_prose_is_a_term() {
        let text = "/// Restores the depth when dropped: its\n/// `Drop` implementation puts the old depth back.\n\
                    /// The `Debug` implementation is derived.\npub struct Indent;\n";
        let t = terms(text, &[], FileKind::Rust, &own(text));
        assert!(has(&t, "Drop implementation"), "{t:?}");
        assert!(!has(&t, "Debug implementation"), "{t:?}");
    }

    #[test]
    fn a_name_declared_under_a_doc_comment_in_a_macro_is_offered_in_words() {
        let text = "declare_rules! {\n    /// Flags `.clone()` on a value that is moved right after.\n    ///\n\
                    /// The clone copies what a move would hand over for free.\n\
                    pub REDUNDANT_CLONE, Warn, \"clone of a value moved next\";\n\
                    /// Flags a manual loop.\n    MANUAL_FILL: Allow;\n}\n\
                    /// The default limit.\npub const MAX_DEPTH: usize = 8;\n";
        let t = terms(text, &[], FileKind::Rust, &own(text));
        assert!(has(&t, "redundant clone"), "{t:?}");
        assert!(has(&t, "manual fill"), "{t:?}");
        // A constant item is the code's own value, not a declaration a macro reads.
        assert!(!has(&t, "max depth"), "{t:?}");
        assert_eq!(declared_name("Warn, \"x\""), None);
        assert_eq!(declared_name("ALL: &[&Check] = &[];").as_deref(), None);
    }

    #[test]
    fn a_function_returning_impl_trait_offers_that_technique() {
        let text = "/// Ids of the leaves.\npub fn leaves(&self) -> impl Iterator<Item = Id> + '_ {\n    self.ids.iter().copied()\n}\n";
        let t = terms(text, &[], FileKind::Rust, &own(text));
        assert!(has(&t, "Returning impl Iterator"), "{t:?}");
    }

    #[test]
    fn items_defined_anywhere_in_the_file_are_not_offered() {
        let chunk = "impl State for Idle {}\nimpl Iterator for Items {}\n";
        let file = format!("trait State {{}}\nstruct Idle;\n{chunk}");
        let t = terms(chunk, &[], FileKind::Rust, &own(&file));
        assert_eq!(t, ["Implementing Iterator"]);
    }

    #[test]
    fn a_chunk_of_several_sections_is_about_them_not_the_title_above() {
        let title = ["Week 3 log".to_string()];
        let merged = "# Week 3 log\n\n## Monday\n\nUse `Option::take`.\n\n## Tuesday\n\nThe `matches!` macro.\n";
        let t = terms(merged, &title, FileKind::Markdown, &own(merged));
        assert!(!has(&t, "Week 3 log") && has(&t, "matches! macro"), "{t:?}");
        // Headings name the sections of a chunk that names nothing itself.
        let plain = "# Reading notes\n\n## Closures\n\nA quiet day.\n\n## Lifetimes\n\nAnother.\n";
        let t = terms(
            plain,
            &["Reading notes".into()],
            FileKind::Markdown,
            &own(plain),
        );
        assert!(!has(&t, "Reading notes") && has(&t, "Closures"), "{t:?}");
        // Sections that only structure the text (Description, Example) leave the title.
        let chapter = "# Builder\n\n## Description\n\nA builder.\n\n## Example\n\ncode\n";
        assert!(has(
            &terms(
                chapter,
                &["Builder".into()],
                FileKind::Markdown,
                &own(chapter)
            ),
            "Builder"
        ));
    }

    #[test]
    fn a_function_the_text_keeps_using_is_a_term() {
        let text = "That is what `fold` is for: `xs.iter().fold(0, f)`.\n\
                    The closure gets the running value; `fold` returns the last one.\n\
                    Use `mut` once, `mut` again, and `helper` once.\n\
                    In C it is `void`; `void` again, never called.\n";
        let t = terms(text, &[], FileKind::Text, &own(text));
        assert!(has(&t, "fold"), "{t:?}");
        for absent in ["mut", "helper", "void"] {
            assert!(!has(&t, absent), "{absent:?} offered in {t:?}");
        }
        let asides = "Some may ask: why not clone?\n\nStill porting the parser. More later.\n\n\
                      By the user: a note.\n\nThe same holds for slices: take them.\n\nShadowing to freeze a value. Then rebind it.\n";
        let t = terms(asides, &[], FileKind::Text, &own(asides));
        assert!(has(&t, "Shadowing to freeze a value"), "{t:?}");
        for absent in [
            "Some may ask",
            "Still porting the parser",
            "By the user",
            "same holds for slices",
        ] {
            assert!(!has(&t, absent), "{absent:?} offered in {t:?}");
        }
    }

    #[test]
    fn records_offer_short_values() {
        let text =
            "[0].topic: Scoped threads\n[0].notes: Threads may borrow locals. They end first.\n\
                    [0].year: 2021\n[0].code: use std::thread;\n    fn f(x: u32) -> u32 {";
        let t = terms(text, &["[0]".into()], FileKind::Json, &own(text));
        assert!(has(&t, "Scoped threads"), "{t:?}");
        for absent in ["2021", "[0]", "use std::thread", "u32) -> u32 {", "u32"] {
            assert!(!has(&t, absent), "{absent:?} offered in {t:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn any_text_gives_bounded_terms(
            text in "(\\PC|[`*_#\\[\\]():!<>\n-]){0,400}",
            heading in "\\PC{0,40}",
            kind in "(markdown|text|rust|json)",
        ) {
            let kind: FileKind = kind.parse().unwrap();
            let t = terms(&text, &[heading], kind, &own(&text));
            proptest::prop_assert!(t.len() <= MAX_TERMS);
            for term in &t {
                proptest::prop_assert!(!term.is_empty() && term.len() <= MAX_CHARS, "{term:?}");
            }
        }
    }

    #[test]
    fn terms_are_bounded_and_unique() {
        let text: String = (0..100)
            .map(|i| format!("**Term {i}** and **term {i}**\n"))
            .collect();
        let t = terms(&text, &[], FileKind::Markdown, &own(&text));
        assert_eq!(t.len(), MAX_TERMS);
        assert_eq!(t[0], "Term 0");
        assert_eq!(t[1], "Term 1");
    }
}
