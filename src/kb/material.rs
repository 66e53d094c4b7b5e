//! The author's own material for a pattern's page, read from the chunks its findings come
//! from: the parts of the topic's section (the paragraphs under its heading and under the
//! headings that structure its discussion, such as "Motivation" or "Disadvantages"), as whole
//! sentences with their lines, and the author's whole example (a fenced block, or a Rust item
//! with its doc comment). Markdown is read with pulldown-cmark and Rust with the item scanner,
//! the parsers ingest uses. Pure: chunk rows in, material out.

use pulldown_cmark::{CodeBlockKind, Event, Options, Parser, Tag, TagEnd};
use serde::Serialize;

use crate::ingest::FileKind;
use crate::queue::store::ChunkRow;
use crate::text::words::is_structure_heading;

/// At most this many lines of an example are shown (the first ones; the citation gives the
/// whole range).
pub const EXAMPLE_LINES: usize = 40;
/// At most this many sentences of one part are shown.
pub const PART_SENTENCES: usize = 5;

/// A code block of a source: a fenced block of markdown or an item of Rust source.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Block {
    pub source_id: i64,
    pub rel_path: String,
    pub line_start: i64,
    pub line_end: i64,
    /// The fence's language, `rust` for a Rust item, `text` when the fence names none.
    pub lang: String,
    pub code: String,
}

impl Block {
    fn lines(&self) -> usize {
        self.code.lines().filter(|l| !l.trim().is_empty()).count()
    }
}

/// A stretch of a source under one heading: its whole sentences (outside code) and its code
/// blocks, with the lines it spans.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part {
    pub source_id: i64,
    pub rel_path: String,
    /// The heading the part stands under (the chunk's last heading for its first part).
    pub heading: Option<String>,
    pub line_start: i64,
    pub line_end: i64,
    pub sentences: Vec<String>,
    pub blocks: Vec<Block>,
}

/// What a page shows of its sources: the example and the parts with something to say.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Material {
    pub example: Option<Block>,
    pub parts: Vec<Part>,
}

/// The parts of a chunk, in order.
pub fn parts_of(chunk: &ChunkRow) -> Vec<Part> {
    match chunk.kind.parse::<FileKind>() {
        Ok(FileKind::Markdown) | Ok(FileKind::Text) => markdown_parts(chunk),
        Ok(FileKind::Rust) => vec![rust_part(chunk)],
        _ => Vec::new(),
    }
}

/// Line number (1-based, in the file) of byte `at` of the chunk's text. Counted in bytes:
/// `at` may fall inside a character (the byte before an item's end, when an emoji ends it).
fn line_at(chunk: &ChunkRow, at: usize) -> i64 {
    let at = at.min(chunk.text.len());
    let lines = chunk.text.as_bytes()[..at].iter().filter(|&&b| b == b'\n');
    chunk.line_start + lines.count() as i64
}

fn markdown_parts(chunk: &ChunkRow) -> Vec<Part> {
    let text = chunk.text.as_str();
    let new_part = |heading: Option<String>, at: usize| Part {
        source_id: chunk.source_id,
        rel_path: chunk.rel_path.clone(),
        heading,
        line_start: line_at(chunk, at),
        line_end: line_at(chunk, at),
        sentences: Vec::new(),
        blocks: Vec::new(),
    };
    let mut parts = vec![new_part(chunk.heading_path.last().cloned(), 0)];
    let mut heading: Option<String> = None;
    let mut paragraph: Option<String> = None;
    // Whether the open paragraph has words of its own, outside its links' text: a list item
    // that is only a link ("- [Intro](#intro)", a table of contents, a reading list) points
    // somewhere; it is not the author's sentence.
    let mut own_words = false;
    let mut in_link = 0usize;
    let mut code: Option<(String, usize)> = None;
    let mut code_text = String::new();
    for (ev, range) in Parser::new_ext(text, Options::empty()).into_offset_iter() {
        let part = parts.last_mut().expect("one part at least");
        match ev {
            Event::Start(Tag::Heading { .. }) => heading = Some(String::new()),
            Event::End(TagEnd::Heading(_)) => {
                let h = heading.take().unwrap_or_default();
                let h = h.split_whitespace().collect::<Vec<_>>().join(" ");
                let first_is_this =
                    parts.len() == 1 && parts[0].sentences.is_empty() && parts[0].blocks.is_empty();
                if first_is_this {
                    parts[0].heading = Some(h);
                    parts[0].line_start = line_at(chunk, range.start);
                } else {
                    parts.push(new_part(Some(h), range.start));
                }
                let last = parts.last_mut().expect("a part");
                last.line_end = line_at(chunk, range.end.saturating_sub(1));
            }
            // An item of a nested list ends the item around it: each item is sentences of
            // its own, never run into its parent's.
            Event::Start(Tag::Item) if code.is_none() && paragraph.is_some() => {
                if let Some(p) = paragraph.replace(String::new()).filter(|_| own_words) {
                    part.sentences.extend(sentences(&p));
                }
                own_words = false;
            }
            Event::Start(Tag::Paragraph) | Event::Start(Tag::Item)
                if code.is_none() && paragraph.is_none() =>
            {
                paragraph = Some(String::new());
                own_words = false;
            }
            Event::Start(Tag::Link { .. }) => in_link += 1,
            Event::End(TagEnd::Link) => in_link = in_link.saturating_sub(1),
            Event::End(TagEnd::Paragraph) | Event::End(TagEnd::Item) => {
                if let Some(p) = paragraph.take().filter(|_| own_words) {
                    part.sentences.extend(sentences(&p));
                }
                part.line_end = part
                    .line_end
                    .max(line_at(chunk, range.end.saturating_sub(1)));
            }
            Event::Start(Tag::CodeBlock(kind)) => {
                let lang = match kind {
                    CodeBlockKind::Fenced(info) => info
                        .split([',', ' '])
                        .next()
                        .unwrap_or_default()
                        .to_string(),
                    CodeBlockKind::Indented => String::new(),
                };
                code = Some((lang, range.start));
                code_text.clear();
            }
            Event::End(TagEnd::CodeBlock) => {
                if let Some((lang, start)) = code.take() {
                    let body = std::mem::take(&mut code_text);
                    // The fence lines are not the code: the block's lines are inside them.
                    let first = line_at(chunk, start);
                    let last = line_at(chunk, range.end.saturating_sub(1));
                    let n = body.lines().count() as i64;
                    let fenced = text[start..range.end].trim_start().starts_with(['`', '~']);
                    let line_start = if fenced { first + 1 } else { first };
                    part.blocks.push(Block {
                        source_id: chunk.source_id,
                        rel_path: chunk.rel_path.clone(),
                        line_start,
                        line_end: (line_start + n - 1).max(line_start).min(last),
                        lang: block_lang(&lang, &body),
                        code: body.trim_end_matches('\n').to_string(),
                    });
                    part.line_end = part.line_end.max(last);
                }
            }
            Event::Text(t) => {
                if code.is_some() {
                    code_text.push_str(&t);
                } else if let Some(h) = heading.as_mut() {
                    h.push_str(&t);
                } else if let Some(p) = paragraph.as_mut() {
                    p.push_str(&t);
                    own_words |= in_link == 0 && t.chars().any(char::is_alphanumeric);
                }
            }
            Event::Code(t) => {
                let span = format!("`{t}`");
                if let Some(h) = heading.as_mut() {
                    h.push_str(&t);
                } else if let Some(p) = paragraph.as_mut() {
                    p.push_str(&span);
                    own_words |= in_link == 0;
                }
            }
            Event::SoftBreak | Event::HardBreak => {
                if let Some(p) = paragraph.as_mut() {
                    p.push(' ');
                }
            }
            _ => {}
        }
    }
    parts.retain(|p| !p.sentences.is_empty() || !p.blocks.is_empty());
    parts
}

/// The language a block is shown with: the fence's, else `rust` when it reads as Rust.
fn block_lang(fence: &str, body: &str) -> String {
    let fence = fence.trim();
    if !fence.is_empty() {
        return fence.to_string();
    }
    let rusty = ["fn ", "let ", "impl ", "struct ", "enum ", "use ", "pub "];
    if body
        .lines()
        .any(|l| rusty.iter().any(|k| l.trim_start().starts_with(k)))
    {
        "rust".into()
    } else {
        "text".into()
    }
}

/// A chunk of Rust source: its doc and plain comments as sentences, each top-level item (with
/// the comments and attributes before it) as a block. A chunk the scanner cannot read alone
/// (the inside of an impl) is one block.
fn rust_part(chunk: &ChunkRow) -> Part {
    let text = chunk.text.as_str();
    let comments: String = text
        .lines()
        .map(|l| {
            let t = l.trim_start();
            if let Some(c) = t
                .strip_prefix("//!")
                .or_else(|| t.strip_prefix("///"))
                .or_else(|| t.strip_prefix("//"))
            {
                c.trim().to_string()
            } else {
                String::new()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let sentences = comments
        .split("\n\n")
        .flat_map(|p| sentences(&p.replace('\n', " ")))
        .collect();
    let mut spans: Vec<(usize, usize)> = Vec::new();
    if let Ok(tree) = crate::ingest::rust_scan::parse_tree(text) {
        let mut start = tree.start;
        for item in &tree.items {
            spans.push((start, item.end));
            start = item.end;
        }
    }
    if spans.is_empty() {
        spans.push((0, text.len()));
    }
    let blocks = spans
        .into_iter()
        .filter_map(|(s, e)| {
            let piece = &text[s..e];
            let lead = piece.len() - piece.trim_start().len();
            let code = piece.trim();
            (!code.is_empty()).then(|| Block {
                source_id: chunk.source_id,
                rel_path: chunk.rel_path.clone(),
                line_start: line_at(chunk, s + lead),
                line_end: line_at(chunk, s + lead + code.len().saturating_sub(1)),
                lang: "rust".into(),
                code: code.to_string(),
            })
        })
        .collect();
    Part {
        source_id: chunk.source_id,
        rel_path: chunk.rel_path.clone(),
        heading: chunk.heading_path.last().cloned(),
        line_start: chunk.line_start,
        line_end: chunk.line_end,
        sentences,
        blocks,
    }
}

/// The sentences of a paragraph (its text on one line): split after `.`, `?` or `!` followed
/// by a space and a capital, a digit, a code span or an opening quote; not inside a code span.
pub fn sentences(paragraph: &str) -> Vec<String> {
    let p = paragraph.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out = Vec::new();
    let mut start = 0;
    let mut in_code = false;
    let bytes = p.as_bytes();
    for (i, c) in p.char_indices() {
        if c == '`' {
            in_code = !in_code;
        }
        if in_code || !matches!(c, '.' | '?' | '!') {
            continue;
        }
        let next = bytes.get(i + 1).copied();
        let after = p[i + 1..].chars().nth(1);
        let ends = next == Some(b' ')
            && after
                .is_some_and(|a| a.is_uppercase() || a.is_ascii_digit() || "`\"“(*".contains(a));
        // "e.g. Foo", "i.e. Bar": a period after a one-letter abbreviation ends nothing.
        let abbreviation = p[..i]
            .rsplit(' ')
            .next()
            .is_some_and(|w| w.len() <= 3 && w.contains('.'));
        if ends && !abbreviation {
            out.push(p[start..=i].trim().to_string());
            start = i + 1;
        }
    }
    let rest = p[start..].trim();
    if !rest.is_empty() {
        out.push(rest.to_string());
    }
    out
}

/// The heading path a chunk's topic stands under: its own, without the headings that only
/// structure a discussion ("Example", "Advantages").
fn topic_of(path: &[String]) -> &[String] {
    let keep = path
        .iter()
        .rposition(|h| !is_structure_heading(h))
        .map_or(0, |i| i + 1);
    &path[..keep]
}

/// True when `chunk` belongs to the topic at `topic`: the same heading path, or below it only
/// under headings that structure a discussion. A topic without a heading is its chunk alone.
fn in_topic(chunk: &ChunkRow, topic: &[String]) -> bool {
    !topic.is_empty()
        && chunk.heading_path.starts_with(topic)
        && chunk.heading_path[topic.len()..]
            .iter()
            .all(|h| is_structure_heading(h))
}

/// The material of a page whose findings stand at `(chunk id, line)` of `chunks` (the chunks of
/// their sources, in order, the findings' own first). The parts of each finding's topic come
/// once, in source order; the example is the author's whole block: one of at least 3 lines
/// under an example heading first, then the one holding a finding's line, then the first of
/// at least 3 lines, then any.
pub fn material(chunks: &[ChunkRow], at: &[(i64, i64)]) -> Material {
    let mut taken: Vec<i64> = Vec::new();
    let mut parts: Vec<Part> = Vec::new();
    for &(chunk_id, _) in at {
        let Some(home) = chunks.iter().find(|c| c.id == chunk_id) else {
            continue;
        };
        let topic = topic_of(&home.heading_path);
        for c in chunks
            .iter()
            .filter(|c| c.source_id == home.source_id && (c.id == home.id || in_topic(c, topic)))
        {
            if !taken.contains(&c.id) {
                taken.push(c.id);
                parts.extend(parts_of(c));
            }
        }
    }
    parts.sort_by_key(|p| (p.source_id, p.line_start));
    parts.dedup_by(|a, b| a.source_id == b.source_id && a.line_start == b.line_start);
    let whole = |b: &&Block| b.lines() >= 3;
    let is_example = |p: &Part| {
        p.heading
            .as_deref()
            .is_some_and(|h| h.to_lowercase().contains("example"))
    };
    let holds_finding = |b: &Block| {
        at.iter()
            .any(|&(_, line)| b.line_start <= line && line <= b.line_end)
    };
    let blocks = || parts.iter().flat_map(|p| p.blocks.iter());
    let example = parts
        .iter()
        .filter(|p| is_example(p))
        .flat_map(|p| p.blocks.iter())
        .find(whole)
        .or_else(|| blocks().find(|b| holds_finding(b)))
        .or_else(|| blocks().find(whole))
        .or_else(|| blocks().next())
        .cloned()
        .map(|mut b| {
            let lines: Vec<&str> = b.code.lines().collect();
            if lines.len() > EXAMPLE_LINES {
                b.code = lines[..EXAMPLE_LINES].join("\n");
                b.line_end = b.line_start + EXAMPLE_LINES as i64 - 1;
            }
            b
        });
    Material { example, parts }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(id: i64, kind: &str, line_start: i64, path: &[&str], text: &str) -> ChunkRow {
        ChunkRow {
            id,
            source_id: 1,
            rel_path: "guide/builder.md".into(),
            kind: kind.into(),
            line_start,
            line_end: line_start + text.lines().count() as i64 - 1,
            heading_path: path.iter().map(|s| s.to_string()).collect(),
            text: text.into(),
            ..ChunkRow::default()
        }
    }

    #[test]
    fn sentences_split_at_stops_before_capitals_not_inside_code_or_abbreviations() {
        assert_eq!(
            sentences(
                "A builder collects options. It then `builds. Now` the value, e.g. Foo. Done!"
            ),
            [
                "A builder collects options.",
                "It then `builds. Now` the value, e.g. Foo.",
                "Done!"
            ]
        );
    }

    /// A blog post's list item that ends in an emoji, the chunk's last byte: the byte before
    /// the item's end is inside the emoji (this panicked a whole run's final render).
    #[test]
    fn an_item_that_ends_in_an_emoji_gives_its_lines() {
        let text =
            "# Lifetimes\n\n- elision is not always right\n- Rust does not know more \u{1f937}";
        let parts = parts_of(&chunk(3, "markdown", 40, &["Lifetimes"], text));
        assert_eq!(parts.len(), 1, "{parts:#?}");
        assert_eq!((parts[0].line_start, parts[0].line_end), (40, 43));
        assert_eq!(parts[0].sentences.len(), 2, "{parts:#?}");
    }

    /// A table of contents (items that are only links) is no sentence of the author's; an
    /// item with words of its own beside its link is; a nested item is a sentence of its own,
    /// not run into its parent's.
    #[test]
    fn items_that_are_only_links_are_not_sentences_and_nested_items_stand_alone() {
        let text = "# Misconceptions\n\n_19 May 2020_\n\n**Contents**\n- [Intro](#intro)\n- [The list](#the-list)\n    - [1) `T` is owned](#1-t-is-owned)\n    - [2) boxes are slow](#2-boxes)\n\n- [Rustlings](https://example.org) is a set of small exercises\n- Lifetimes\n    - can grow\n    - can shrink\n";
        let parts = parts_of(&chunk(3, "markdown", 1, &["Misconceptions"], text));
        assert_eq!(parts.len(), 1, "{parts:#?}");
        assert_eq!(
            parts[0].sentences,
            [
                "19 May 2020",
                "Contents",
                "Rustlings is a set of small exercises",
                "Lifetimes",
                "can grow",
                "can shrink"
            ]
        );
    }

    #[test]
    fn a_markdown_chunk_gives_its_parts_with_whole_sentences_and_fenced_blocks() {
        let text = "# Builder\n\nA builder collects the options of a value\nstep by step. It ends with `build`.\n\n## Example\n\n```rust\nlet c = ConfigBuilder::new()\n    .port(80)\n    .build();\n```\n\n## Disadvantages\n\n- More code than a constructor\n  for small types.\n";
        let parts = parts_of(&chunk(7, "markdown", 10, &["Builder"], text));
        assert_eq!(parts.len(), 3, "{parts:#?}");
        assert_eq!(parts[0].heading.as_deref(), Some("Builder"));
        assert_eq!(
            parts[0].sentences,
            [
                "A builder collects the options of a value step by step.",
                "It ends with `build`."
            ]
        );
        assert_eq!((parts[0].line_start, parts[0].line_end), (10, 13));
        let b = &parts[1].blocks[0];
        assert_eq!(parts[1].heading.as_deref(), Some("Example"));
        assert_eq!(
            (b.line_start, b.line_end, b.lang.as_str()),
            (18, 20, "rust")
        );
        assert_eq!(
            b.code,
            "let c = ConfigBuilder::new()\n    .port(80)\n    .build();"
        );
        assert_eq!(
            parts[2].sentences,
            ["More code than a constructor for small types."]
        );
        assert_eq!(parts[2].heading.as_deref(), Some("Disadvantages"));
    }

    #[test]
    fn a_rust_chunk_gives_its_items_with_their_doc_comments() {
        let text = "/// Restores the indent when dropped. Use it around nested output.\npub struct Indent<'a> {\n    depth: &'a mut usize,\n}\n\nimpl Drop for Indent<'_> {\n    fn drop(&mut self) { *self.depth -= 1; }\n}\n";
        let mut c = chunk(3, "rust", 5, &[], text);
        c.rel_path = "src/indent.rs".into();
        let parts = parts_of(&c);
        assert_eq!(
            parts[0].sentences,
            [
                "Restores the indent when dropped.",
                "Use it around nested output."
            ]
        );
        let b = &parts[0].blocks;
        assert_eq!(b.len(), 2);
        assert_eq!((b[0].line_start, b[0].line_end), (5, 8));
        assert!(b[0].code.starts_with("/// Restores"), "{}", b[0].code);
        assert_eq!((b[1].line_start, b[1].line_end), (10, 12));
        let m = material(std::slice::from_ref(&c), &[(3, 11)]);
        assert_eq!(
            m.example.map(|b| b.line_start),
            Some(10),
            "the item holding the finding"
        );
        let m = material(&[c], &[(3, 6)]);
        assert_eq!(m.example.map(|b| b.line_start), Some(5));
    }

    #[test]
    fn a_topic_takes_its_structure_sections_not_the_next_topic_and_prefers_the_example_section() {
        let chunks = vec![
            chunk(1, "markdown", 1, &["Guards"], "# Guards\n\nA guard restores state when it is dropped, even on a panic.\n\n```rust\nlet a = 1;\nlet b = 2;\nlet c = 3;\n```\n"),
            chunk(2, "markdown", 10, &["Guards", "Example"], "## Example\n\n```rust\nlet g = Guard::new(&mut state);\ng.step();\ndrop(g);\n```\n"),
            chunk(3, "markdown", 20, &["Guards", "Newtypes"], "## Newtypes\n\nA newtype wraps one value to give it a meaning of its own.\n"),
            chunk(4, "markdown", 30, &["Guards", "Newtypes", "Advantages"], "### Advantages\n\nThe compiler keeps the two meanings apart for free.\n"),
        ];
        let m = material(&chunks, &[(1, 3)]);
        let headings: Vec<_> = m.parts.iter().map(|p| p.heading.clone().unwrap()).collect();
        assert_eq!(headings, ["Guards", "Example"]);
        let ex = m.example.expect("an example");
        assert_eq!(
            (ex.line_start, ex.line_end),
            (13, 15),
            "the Example section's block"
        );
        let m = material(&chunks, &[(3, 22)]);
        let headings: Vec<_> = m.parts.iter().map(|p| p.heading.clone().unwrap()).collect();
        assert_eq!(headings, ["Newtypes", "Advantages"]);
        assert_eq!(m.example, None, "no block of three lines in the topic");
    }

    #[test]
    fn a_chunk_without_headings_is_its_own_topic_and_long_examples_are_cut() {
        let code: String = (0..60).map(|i| format!("let x{i} = {i};\n")).collect();
        let text = format!("Notes on shadowing.\n\n```\n{code}```\n");
        let chunks = vec![
            chunk(1, "text", 1, &[], &text),
            chunk(
                2,
                "text",
                70,
                &[],
                "Unrelated notes about something else entirely.\n",
            ),
        ];
        let m = material(&chunks, &[(1, 1)]);
        assert_eq!(m.parts.len(), 1);
        let ex = m.example.unwrap();
        assert_eq!(ex.lang, "rust");
        assert_eq!(ex.code.lines().count(), EXAMPLE_LINES);
        assert_eq!(
            (ex.line_start, ex.line_end),
            (4, 4 + EXAMPLE_LINES as i64 - 1)
        );
    }
}
