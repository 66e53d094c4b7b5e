//! The input's own sentences and code lines, offered as the only values of quote fields.
//! Pure functions.

const MAX_OPTIONS: usize = 40;
const MAX_LEN: usize = 150;
const MIN_LEN: usize = 12;

/// What a line of a markdown text is, as CommonMark reads it (pulldown-cmark).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LineKind {
    /// Words, list items, quotes, tables, blank lines: anything but the two below.
    Prose,
    /// A line inside a fenced code block.
    Code,
    /// A heading's line, with its level (`## Usage` and `Usage` over `-----` are level 2).
    Heading(u8),
    /// Markup alone: a code block's fence, a heading's underline.
    Markup,
}

/// The lines of a markdown text with what each is, but for the markup lines ([`line_kinds`]).
pub fn markdown_lines(text: &str) -> impl Iterator<Item = (&str, LineKind)> {
    line_kinds(text).filter(|&(_, kind)| kind != LineKind::Markup)
}

/// Every line of a markdown text with what it is. A fence closes only with its own kind and
/// at least its length, a "```" inside a `~~~` block or a code span of three backticks starts
/// nothing, a block left open runs to the end of the text; `#[derive(Debug)]` or `#3` at the
/// start of a line of prose is no heading.
pub fn line_kinds(text: &str) -> impl Iterator<Item = (&str, LineKind)> {
    let blocks = blocks(text);
    let (mut at, mut next) = (0usize, 0usize);
    text.split_inclusive('\n').map(move |raw| {
        let (start, end) = (at, at + raw.len());
        at = end;
        let line = raw.strip_suffix('\n').unwrap_or(raw);
        let line = line.strip_suffix('\r').unwrap_or(line);
        while blocks.get(next).is_some_and(|b| b.end <= start) {
            next += 1;
        }
        match blocks.get(next) {
            Some(b) if b.start < end => match b.kind {
                Block::Fence { closed } if b.start >= start || (closed && b.end <= end) => {
                    (line, LineKind::Markup)
                }
                Block::Fence { .. } => (line, LineKind::Code),
                Block::Heading { setext: true, .. } if b.end <= end => (line, LineKind::Markup),
                Block::Heading { level, .. } => (line, LineKind::Heading(level)),
            },
            _ => (line, LineKind::Prose),
        }
    })
}

impl LineKind {
    /// The level of a heading's line.
    pub fn heading(self) -> Option<u8> {
        match self {
            LineKind::Heading(level) => Some(level),
            _ => None,
        }
    }
}

/// A heading line's words, without its marks (`## Usage` → `Usage`; a setext heading's line
/// is its words).
pub fn heading_words(line: &str) -> &str {
    line.trim().trim_start_matches('#').trim()
}

/// The lines of a markdown text with whether each is inside a fenced code block; fences and
/// headings' underlines are left out ([`markdown_lines`]).
pub fn fenced_lines(text: &str) -> impl Iterator<Item = (&str, bool)> {
    markdown_lines(text).map(|(line, kind)| (line, kind == LineKind::Code))
}

/// A block of a markdown text that its lines are told by: its bytes (a fenced block's from
/// the opening fence to the end of the closing one) and what it is.
struct Span {
    start: usize,
    end: usize,
    kind: Block,
}

enum Block {
    /// `closed`: a closing fence ends it (else the text or its container does).
    Fence {
        closed: bool,
    },
    Heading {
        level: u8,
        setext: bool,
    },
}

/// The fenced code blocks and headings of `text`, in order (none nests in another).
fn blocks(text: &str) -> Vec<Span> {
    use pulldown_cmark::{CodeBlockKind, Event, Options, Parser, Tag};
    // Cheap test first: most chunks hold no fence and no line a heading could be.
    let may_hold = |l: &str| {
        let t = l.trim_start_matches(|c: char| c == '>' || c.is_whitespace());
        t.starts_with(['#', '`', '~'])
            || (!t.is_empty() && t.trim_end().chars().all(|c| c == '=' || c == '-'))
    };
    if !text.lines().any(may_hold) {
        return Vec::new();
    }
    Parser::new_ext(text, Options::empty())
        .into_offset_iter()
        .filter_map(|(ev, range)| {
            let kind = match ev {
                Event::Start(Tag::CodeBlock(CodeBlockKind::Fenced(_))) => {
                    // The block's bytes end after its closing fence's line; the closing fence
                    // is that last line when it is a run of the opening's mark, as long.
                    let body = text[range.clone()].trim_end();
                    let open = body.trim_start();
                    let mark = open.chars().next().unwrap_or('`');
                    let opening = open.len() - open.trim_start_matches(mark).len();
                    let last = body.rsplit('\n').next().unwrap_or("");
                    let last = last.trim_start_matches(|c: char| c == '>' || c.is_whitespace());
                    let closed = body.contains('\n')
                        && last.len() >= opening.max(3)
                        && last.chars().all(|c| c == mark);
                    Block::Fence { closed }
                }
                Event::Start(Tag::Heading { level, .. }) => Block::Heading {
                    level: level as u8,
                    setext: !text[range.clone()].trim_start().starts_with('#'),
                },
                _ => return None,
            };
            Some(Span {
                start: range.start,
                end: range.end,
                kind,
            })
        })
        .collect()
}

/// A markdown link reference definition (`[label]: https://…`): where a link of the text
/// goes, not something the author says.
pub fn is_link_definition(line: &str) -> bool {
    let t = line.trim();
    // The label's `]` (a label may hold a code span with brackets: "[`Vec<[u8]>`]: …").
    matching_close(t, '[', ']').is_some_and(|close| {
        close > 1
            && t[close + 1..]
                .strip_prefix(':')
                .is_some_and(|d| d.is_empty() || d.starts_with([' ', '\t']))
    })
}

/// The byte index of the `close` that closes the `open` that `s` starts with, nested pairs
/// counted (`[`#[deny(warnings)]`](…)`, `<T: Into<U>>`); None when `s` does not start with
/// `open` or never closes it.
pub fn matching_close(s: &str, open: char, close: char) -> Option<usize> {
    if !s.starts_with(open) {
        return None;
    }
    let mut depth = 0usize;
    for (i, c) in s.char_indices() {
        if c == open {
            depth += 1;
        } else if c == close {
            depth -= 1;
            if depth == 0 {
                return Some(i);
            }
        }
    }
    None
}

/// `s` past the generics list it starts with (`<T: Bound> Trait<X>` → ` Trait<X>`), else `s`.
pub fn after_generics(s: &str) -> &str {
    matching_close(s, '<', '>').map_or(s, |close| &s[close + 1..])
}

/// Whether a line opens a list item (`- `, `* `, `+ `, `1. `, `2) `).
pub fn opens_list_item(line: &str) -> bool {
    after_list_marker(line.trim_start()).is_some()
}

/// A text past the list marker it starts with (`- `, `* `, `+ `, `1. `, `2) `), if any.
fn after_list_marker(t: &str) -> Option<&str> {
    if let Some(rest) = ["- ", "* ", "+ "].iter().find_map(|m| t.strip_prefix(m)) {
        return Some(rest);
    }
    // An ordered item: a number closed by `.` or `)` and a space (not "2.1 Builder").
    let (rest, closed) = super::words::after_number(t)?;
    (closed && rest.len() < t.len() && t[..t.len() - rest.len()].ends_with(' ')).then_some(rest)
}

/// A line past its list markers (`-`, `+`, `* `, `1.`, `2)`), quote and heading marks and
/// comment slashes.
pub fn strip_line_markers(line: &str) -> &str {
    let mut t = line.trim();
    loop {
        let before = t.len();
        t = t
            .trim_start_matches(['#', '>', '-', '+', '/', '!'])
            .trim_start();
        if let Some(r) = after_list_marker(t) {
            t = r.trim_start();
        }
        if t.len() == before {
            return t;
        }
    }
}

/// A markdown link found in a line: where it starts and ends, its text and its target (a
/// URL or path for `[text](target)`, a label for `[text][label]`).
struct Link<'a> {
    start: usize,
    end: usize,
    text: &'a str,
    target: &'a str,
    inline: bool,
}

/// The first link of `line` at or after byte `from`, if any; brackets that are not links
/// are passed over.
fn next_link(line: &str, mut from: usize) -> Option<Link<'_>> {
    while let Some(open) = line[from..].find('[').map(|i| from + i) {
        let after = &line[open..];
        // Link text may hold brackets (`[`#[deny(warnings)]`](…)`).
        let close = open + matching_close(after, '[', ']')?;
        let tail = &line[close + 1..];
        let closer = match tail.chars().next() {
            Some('(') => ')',
            Some('[') => ']',
            _ => {
                from = close + 1;
                continue;
            }
        };
        let Some(end) = tail.find(closer) else {
            from = close + 1;
            continue;
        };
        return Some(Link {
            start: open,
            end: close + 1 + end + 1,
            text: &line[open + 1..close],
            target: tail[1..end].trim(),
            inline: closer == ')',
        });
    }
    None
}

/// A line with its markdown links (`[text](url)`, `[text][ref]`) replaced by their text
/// (`keep_text`) or by nothing; brackets that are not links are left as they are.
pub fn replace_links(line: &str, keep_text: bool) -> String {
    let mut out = String::with_capacity(line.len());
    let mut at = 0;
    while let Some(link) = next_link(line, at) {
        out.push_str(&line[at..link.start]);
        if keep_text {
            out.push_str(link.text);
        }
        at = link.end;
    }
    out.push_str(&line[at..]);
    out
}

/// The targets of a text's inline links (`[text](target)`), as written: URLs, paths,
/// anchors.
pub fn link_targets(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(link) = next_link(text, at) {
        if link.inline {
            out.push(link.target);
        }
        at = link.end;
    }
    out
}

/// The words of a line wholly in bold (`**Key takeaways**`, `__Note__`): a heading in
/// disguise, a label of what follows.
pub fn bold_line(line: &str) -> Option<&str> {
    let t = line.trim();
    ["**", "__"].iter().find_map(|m| {
        let inner = t.strip_prefix(m)?.strip_suffix(m)?.trim();
        (!inner.is_empty() && !inner.contains(m)).then_some(inner)
    })
}

/// Sentences and prose lines of a text (not its headings), stripped of markdown markers,
/// shortened at a word boundary, without duplicates.
pub fn sentences(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (line, kind) in markdown_lines(text) {
        // A heading (or a line wholly in bold, a heading in disguise) names a section; it is
        // not evidence of what the section says.
        let heading = kind.heading().is_some() || bold_line(line).is_some();
        // A link definition (`[x]: https://…`) is where a link goes, not what the author says.
        if kind == LineKind::Code || heading || is_link_definition(line) {
            continue;
        }
        let t = line
            .trim()
            .trim_start_matches(['#', '>', '-', '*', '+', '/', '!'])
            .trim_start_matches(|c: char| c.is_ascii_digit() || c == '.' || c == ')')
            .trim();
        for part in split_sentences(t) {
            push(&mut out, part);
        }
    }
    out.truncate(MAX_OPTIONS);
    out
}

/// Lines of code: inside fenced blocks of markdown, or the non-comment lines of source code.
pub fn code_lines(text: &str) -> Vec<String> {
    let fenced = text.contains("```") || text.contains("~~~");
    let mut out: Vec<String> = Vec::new();
    for (line, in_code) in fenced_lines(text) {
        let t = line.trim();
        let is_code = if fenced { in_code } else { looks_like_code(t) };
        if is_code && !t.starts_with("//") && t.len() >= 8 {
            push(&mut out, t);
        }
    }
    out.truncate(MAX_OPTIONS);
    out
}

/// A line of code rather than words: `let x = …;`, `impl Foo {`, `use a::b;`. Where a text
/// has no fences, its code lines are told from its prose by this; a record's value that looks
/// so is no name.
pub fn looks_like_code(s: &str) -> bool {
    let s = s.trim();
    s.ends_with([';', '{', '}'])
        || s.contains(" = ")
        || [
            "let ", "fn ", "impl ", "use ", "pub ", "struct ", "enum ", "mod ", "match ",
        ]
        .iter()
        .any(|k| s.starts_with(k))
}

/// A lead that is itself a term has at most this many words: more are a clause, not a term.
pub const LEAD_WORDS: usize = 5;
/// A lead that introduces a name may be a clause ("what they change with struct update
/// syntax:") of at most this many characters: past it, the colon or dash is mid-sentence.
pub const LEAD_CHARS: usize = 60;
/// A first sentence that introduces a term has at most this many words.
pub const FIRST_SENTENCE_WORDS: usize = 6;

/// A line's lead: the text before the mark that introduces the rest, and that rest.
pub struct Lead<'a> {
    pub text: &'a str,
    /// What follows the mark on the line; empty when a colon ends the line.
    pub rest: &'a str,
}

/// The lead of a line, past its markers: the text before the first `": "` or dash
/// (`" — "`, `" – "`, `" - "`) that introduces the rest, or before a colon ending the line
/// (`Term:` over a list). A colon inside a path (`Schedule::with_deadline`) ends no lead.
/// The one definition of a lead: [`lead_name`] and [`lead_clause`] bound it.
pub fn introduced_lead(line: &str) -> Option<Lead<'_>> {
    let t = strip_line_markers(line).trim_end();
    let at_end = t
        .strip_suffix(':')
        .filter(|s| !s.ends_with(':'))
        .map(|s| (s.len(), 1));
    let (cut, mark) = [": ", " — ", " – ", " - "]
        .iter()
        .filter_map(|m| t.find(m).map(|i| (i, m.len())))
        .chain(at_end)
        .min()?;
    Some(Lead {
        text: &t[..cut],
        rest: t[cut + mark..].trim(),
    })
}

/// For the terms offered: a lead that is itself a term, told on its line (`- Term: …`), of
/// at most [`LEAD_WORDS`] words.
pub fn lead_name(line: &str) -> Option<&str> {
    introduced_lead(line)
        .filter(|l| !l.rest.is_empty() && l.text.split_whitespace().count() <= LEAD_WORDS)
        .map(|l| l.text)
}

/// For the check that a name is introduced: a lead the name may sit inside, a clause ("Most
/// importantly this is a surprising idiom - …"), of at most [`LEAD_CHARS`] characters.
pub fn lead_clause(line: &str) -> Option<&str> {
    introduced_lead(line)
        .filter(|l| l.text.chars().count() <= LEAD_CHARS)
        .map(|l| l.text)
}

/// A text up to its first sentence's period ("Collects settings. Then builds." → "Collects
/// settings."), or the whole text when it has one sentence.
pub fn lead_sentence(text: &str) -> &str {
    match text.find(". ") {
        Some(end) => &text[..=end],
        None => text,
    }
}

/// A short first sentence of a line, past its markers ("Shadowing to freeze a value. Build
/// it …"), of at most [`FIRST_SENTENCE_WORDS`] words.
pub fn first_sentence(line: &str) -> Option<&str> {
    let t = strip_line_markers(line);
    let end = t
        .find(". ")
        .or_else(|| t.ends_with('.').then(|| t.len() - 1))?;
    let first = &t[..end];
    (first.split_whitespace().count() <= FIRST_SENTENCE_WORDS).then_some(first)
}

fn split_sentences(t: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let bytes = t.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if matches!(b, b'.' | b'?' | b'!' | b';') && bytes.get(i + 1) == Some(&b' ') {
            parts.push(&t[start..=i]);
            start = i + 2;
        }
    }
    if start < t.len() {
        parts.push(&t[start..]);
    }
    parts
}

fn push(out: &mut Vec<String>, s: &str) {
    let s = s.trim();
    if s.len() < MIN_LEN || !s.chars().any(|c| c.is_alphabetic()) {
        return;
    }
    let s = shorten(s);
    if !out.contains(&s) {
        out.push(s);
    }
}

fn shorten(s: &str) -> String {
    if s.len() <= MAX_LEN {
        return s.to_string();
    }
    let mut end = MAX_LEN;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    match s[..end].rfind(' ') {
        Some(i) if i > MIN_LEN => s[..i].to_string(),
        _ => s[..end].to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code_of(text: &str) -> Vec<(&str, bool)> {
        fenced_lines(text).collect()
    }

    #[test]
    fn fenced_lines_leave_out_the_fences_and_mark_the_code() {
        let text = "Use it:\n\n```rust\nlet x = 1;\n```\nAfter.\n";
        assert_eq!(
            code_of(text),
            [
                ("Use it:", false),
                ("", false),
                ("let x = 1;", true),
                ("After.", false)
            ]
        );
    }

    /// The old reading toggled on any line starting with three backticks: a backtick line
    /// inside a `~~~` block, or a shorter run inside a four-backtick block, ended the block
    /// there and read the rest of the code as prose (and the prose after it as code).
    #[test]
    fn a_fence_closes_only_with_its_own_mark_and_length() {
        let text = "~~~\n```\nlet a = 1;\n~~~\nProse.\n````md\n```\ninner\n````\nMore prose.\n";
        assert_eq!(
            code_of(text),
            [
                ("```", true),
                ("let a = 1;", true),
                ("Prose.", false),
                ("```", true),
                ("inner", true),
                ("More prose.", false)
            ]
        );
    }

    #[test]
    fn three_backticks_inside_a_line_open_no_block_and_an_open_block_runs_to_the_end() {
        let text = "```x``` is a code span.\nProse.\n  ```\n  code\nstill code\r\n";
        assert_eq!(
            code_of(text),
            [
                ("```x``` is a code span.", false),
                ("Prose.", false),
                ("  code", true),
                ("still code", true)
            ]
        );
    }

    /// Read by line, any line starting with `#` was a heading: an attribute at the start of
    /// a sentence, an issue number. And a heading underlined with `---` was prose.
    #[test]
    fn headings_are_commonmark_headings() {
        use LineKind::{Heading, Prose};
        let text = "#[derive(Debug)] goes first,\n#3 says so.\n## Usage ##\nSub\n---\ntext\n";
        assert_eq!(
            markdown_lines(text).collect::<Vec<_>>(),
            [
                ("#[derive(Debug)] goes first,", Prose),
                ("#3 says so.", Prose),
                ("## Usage ##", Heading(2)),
                ("Sub", Heading(2)),
                ("text", Prose)
            ]
        );
    }

    #[test]
    fn a_fence_inside_a_list_item_or_a_quote_is_code() {
        let text = "- step:\n  ```rust\n  f();\n  ```\n- next\n\n> ```\n> g();\n> ```\nend\n";
        assert_eq!(
            code_of(text),
            [
                ("- step:", false),
                ("  f();", true),
                ("- next", false),
                ("", false),
                ("> g();", true),
                ("end", false)
            ]
        );
    }

    #[test]
    fn a_bracket_is_closed_by_its_own_pair() {
        assert_eq!(matching_close("[a [b] c] d", '[', ']'), Some(8));
        assert_eq!(matching_close("<T: Into<U>> X", '<', '>'), Some(11));
        assert_eq!(matching_close("[never", '[', ']'), None);
        assert_eq!(matching_close("x[a]", '[', ']'), None);
        assert_eq!(after_generics("<T: Into<U>> Trait<T>"), " Trait<T>");
        assert_eq!(after_generics("Trait<T>"), "Trait<T>");
    }

    #[test]
    fn link_definitions_and_list_items_are_told_by_their_line() {
        assert!(is_link_definition(
            "[`Default`]: https://doc.rust-lang.org/std/default/"
        ));
        assert!(is_link_definition("  [ctor]: ctor.md \"Constructors\""));
        assert!(is_link_definition("[`Vec<[u8]>`]: https://x"));
        assert!(!is_link_definition(
            "[`Default`] is a trait: it makes a value."
        ));
        assert!(!is_link_definition("[]: x") && !is_link_definition("Note: [a]: b"));
        assert!(opens_list_item("- a") && opens_list_item("  2) b") && opens_list_item("* c"));
        assert!(
            !opens_list_item("*emphasis* here")
                && !opens_list_item("2021 was")
                && !opens_list_item("text")
                && !opens_list_item("2.1 Builder")
                && !opens_list_item("1.foo")
        );
    }

    #[test]
    fn sentences_come_from_prose_not_code() {
        let text = "## Builders with many optional fields\n\nA builder collects options. It ends with build.\n\n```rust\nlet x = B::new().build();\n```\n- short\n";
        assert_eq!(
            sentences(text),
            ["A builder collects options.", "It ends with build."]
        );
        assert_eq!(code_lines(text), ["let x = B::new().build();"]);
    }

    #[test]
    fn links_are_replaced_even_when_their_text_holds_brackets() {
        let line = "- [`#[deny(warnings)]`](./deny.md) and [Builder](b.md), [not a link] here";
        assert_eq!(
            replace_links(line, true),
            "- `#[deny(warnings)]` and Builder, [not a link] here"
        );
        assert_eq!(replace_links(line, false), "-  and , [not a link] here");
        assert_eq!(replace_links("[open [b](x)", true), "[open [b](x)");
        assert_eq!(link_targets(line), ["./deny.md", "b.md"]);
        assert_eq!(
            link_targets("[ref][label], [site]( https://x.org/a ) and [(b)](#b)"),
            ["https://x.org/a", "#b"]
        );
    }

    #[test]
    fn source_code_lines_are_code() {
        let text = "/// Adds one.\npub fn inc(x: u32) -> u32 {\n    x + 1\n}\n";
        assert_eq!(code_lines(text), ["pub fn inc(x: u32) -> u32 {"]);
        assert_eq!(sentences(text), ["pub fn inc(x: u32) -> u32 {"]);
    }

    #[test]
    fn a_lead_ends_at_an_introducing_colon_or_dash() {
        fn lead(l: &str) -> Option<(&str, &str)> {
            introduced_lead(l).map(|l| (l.text, l.rest))
        }
        assert_eq!(
            lead("- **Sealed trait**: no one else"),
            Some(("**Sealed trait**", "no one else"))
        );
        assert_eq!(lead("Newtype — a wrapper"), Some(("Newtype", "a wrapper")));
        assert_eq!(
            lead("what they change with struct update syntax:"),
            Some(("what they change with struct update syntax", ""))
        );
        // A path's `::` is no colon of a lead.
        assert_eq!(
            lead("Also put `#[must_use]` on `Schedule::with_deadline`, which"),
            None
        );
        // A term is a short lead told on its line; a clause may hold a name.
        assert_eq!(lead_name("Sealed trait: only here"), Some("Sealed trait"));
        assert_eq!(lead_name("Sealed trait:"), None);
        let clause = "Most importantly this is a surprising idiom - future readers";
        assert_eq!(lead_name(clause), None);
        assert_eq!(
            lead_clause(clause),
            Some("Most importantly this is a surprising idiom")
        );
        let long = format!("{} - more", "word ".repeat(13).trim());
        assert_eq!(lead_clause(&long), None);
    }

    #[test]
    fn long_lines_are_shortened_on_a_word_boundary() {
        let long = "word ".repeat(100);
        let s = sentences(&long);
        assert!(s[0].len() <= MAX_LEN && !s[0].ends_with(' '));
        let text: String = (0..100)
            .map(|i| format!("Sentence number {i} is here.\n"))
            .collect();
        assert_eq!(sentences(&text).len(), MAX_OPTIONS);
    }
}
