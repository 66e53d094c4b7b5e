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
use crate::text::prose::sentences;
use crate::text::quotes::line_kinds;
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

/// What a sentence opens in the author's text: a paragraph, an item of a list, or nothing (it
/// goes on from the sentence before).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Opens {
    Nothing,
    Paragraph,
    Item,
}

/// A whole sentence of the author's, and where it stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sentence {
    pub text: String,
    pub opens: Opens,
}

/// The sentences of one paragraph (or list item), the first opening it.
fn opening(paragraph: &str, opens: Opens) -> impl Iterator<Item = Sentence> {
    sentences(paragraph)
        .into_iter()
        .enumerate()
        .map(move |(i, text)| Sentence {
            text,
            opens: if i == 0 { opens } else { Opens::Nothing },
        })
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
    pub sentences: Vec<Sentence>,
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
    // Whether the open paragraph is an item of a list.
    let mut item = false;
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
                    part.sentences.extend(opening(&p, opens(item)));
                }
                own_words = false;
                item = true;
            }
            Event::Start(tag @ (Tag::Paragraph | Tag::Item))
                if code.is_none() && paragraph.is_none() =>
            {
                paragraph = Some(String::new());
                own_words = false;
                item = matches!(tag, Tag::Item);
            }
            Event::Start(Tag::Link { .. }) => in_link += 1,
            Event::End(TagEnd::Link) => in_link = in_link.saturating_sub(1),
            Event::End(TagEnd::Paragraph) | Event::End(TagEnd::Item) => {
                if let Some(p) = paragraph.take().filter(|_| own_words) {
                    part.sentences.extend(opening(&p, opens(item)));
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

fn opens(item: bool) -> Opens {
    if item {
        Opens::Item
    } else {
        Opens::Paragraph
    }
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
        .flat_map(|p| opening(&p.replace('\n', " "), Opens::Paragraph))
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

/// A source's text read back from its chunks. Chunks overlap (each starts a few words before
/// the previous one ends, often mid-line) and the whitespace between two chunks was trimmed;
/// it is restored with its line breaks, so that bytes and lines stay those of the file.
struct SourceText<'a> {
    first: &'a ChunkRow,
    /// Byte of the file where `text` starts.
    byte_start: usize,
    text: String,
    /// Where in `text` the lines that are headings start ([`line_kinds`]).
    headings: std::collections::BTreeSet<usize>,
}

/// A chunk's stretch grows to the paragraph it starts or ends in by at most this many bytes.
const PARAGRAPH_REACH: usize = 600;

impl<'a> SourceText<'a> {
    /// `chunks`: all the chunks of one source. `None` when they do not fit together (none,
    /// or ranges whose texts disagree where they overlap).
    fn of(chunks: &[&'a ChunkRow]) -> Option<SourceText<'a>> {
        let mut sorted = chunks.to_vec();
        sorted.sort_by_key(|c| c.byte_start);
        let first = *sorted.first()?;
        let byte_start = usize::try_from(first.byte_start).unwrap_or(0);
        let mut text = String::new();
        let mut last_line = first.line_start;
        for c in sorted {
            let start = usize::try_from(c.byte_start).unwrap_or(0);
            let end = byte_start + text.len();
            if start > end {
                let gap = start - end;
                let breaks = usize::try_from(c.line_start - last_line)
                    .unwrap_or(0)
                    .min(gap);
                text.push_str(&"\n".repeat(breaks));
                text.push_str(&" ".repeat(gap - breaks));
            }
            let overlap = text.get(start.checked_sub(byte_start)?..)?;
            if !(c.text.starts_with(overlap) || overlap.starts_with(c.text.as_str())) {
                return None;
            }
            if let Some(rest) = c.text.get(overlap.len()..) {
                text.push_str(rest);
                last_line = c.line_end;
            }
        }
        let headings = line_kinds(&text)
            .filter(|(_, kind)| kind.heading().is_some())
            .map(|(line, _)| line.as_ptr() as usize - text.as_ptr() as usize)
            .collect();
        Some(SourceText {
            first,
            byte_start,
            text,
            headings,
        })
    }

    fn line_of(&self, at: usize) -> i64 {
        let newlines = self.text.as_bytes()[..at.min(self.text.len())]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        self.first.line_start + newlines as i64
    }

    /// Where the paragraph holding byte `at` (of `text`) starts: after a blank line, or at a
    /// heading line, at most `PARAGRAPH_REACH` bytes back (else `at`): a chunk that starts
    /// in the middle of a sentence then reads from its start.
    fn paragraph_start(&self, at: usize) -> usize {
        let t = &self.text;
        let mut line = t[..at].rfind('\n').map_or(0, |i| i + 1);
        loop {
            if line == 0 || self.headings.contains(&line) {
                return line;
            }
            let prev = t[..line - 1].rfind('\n').map_or(0, |i| i + 1);
            if t[prev..line].trim().is_empty() {
                return line;
            }
            if at - prev > PARAGRAPH_REACH {
                return at;
            }
            line = prev;
        }
    }

    /// Where the paragraph holding the byte before `at` ends: before the next blank line or
    /// heading, at most `PARAGRAPH_REACH` bytes on (else `at`).
    fn paragraph_end(&self, at: usize) -> usize {
        let t = &self.text;
        let mut end = t[at..].find('\n').map_or(t.len(), |i| at + i);
        loop {
            if end >= t.len() {
                return t.len();
            }
            let next = t[end + 1..].find('\n').map_or(t.len(), |i| end + 1 + i);
            let line = &t[end + 1..next];
            if line.trim().is_empty() || self.headings.contains(&(end + 1)) {
                return end;
            }
            if next - at > PARAGRAPH_REACH {
                return at;
            }
            end = next;
        }
    }

    /// Where the sentence holding byte `at` starts: after the last sentence end (`.`, `?`
    /// or `!` before a capital, a digit, a code span or a quote, as [`sentences`] reads them)
    /// or at the last list item between the start of its paragraph and `at`; the paragraph's
    /// start when there is none, `at` when that is out of reach.
    fn sentence_start(&self, at: usize) -> usize {
        let floor = self.paragraph_start(at);
        let mut start = floor;
        for (i, c) in self.text[floor..at].char_indices() {
            let here = floor + i;
            let rest = &self.text[here + c.len_utf8()..];
            let begins = self.text.len() - rest.trim_start().len();
            let ends = crate::text::prose::ends_sentence(&self.text[floor..here], c, rest);
            let item = c == '\n' && crate::text::quotes::opens_list_item(rest);
            if (ends || item) && begins <= at {
                start = begins;
            }
        }
        start
    }

    /// Where the sentence holding the byte before `at` ends: at its stop, within the rest of
    /// its paragraph (else the paragraph's end).
    fn sentence_end(&self, at: usize) -> usize {
        let end = self.paragraph_end(at);
        let window = &self.text[at.min(end)..end];
        let stop = window.char_indices().find(|&(i, c)| {
            let rest = &window[i + c.len_utf8()..];
            crate::text::prose::ends_sentence(&window[..i], c, rest)
                || (matches!(c, '.' | '?' | '!') && rest.trim().is_empty())
        });
        match stop {
            Some((i, _)) => at + i + 1,
            None => end,
        }
    }

    /// The stretches of text the chunks `mine` cover, each grown to whole paragraphs and
    /// starting where the one before it ends: each sentence is read once, from its start,
    /// and each chunk stays a part of its own.
    fn stretches(&self, mine: &[&ChunkRow]) -> Vec<ChunkRow> {
        let mut spans: Vec<(usize, usize, &ChunkRow)> = mine
            .iter()
            .filter_map(|c| {
                let s = usize::try_from(c.byte_start)
                    .ok()?
                    .checked_sub(self.byte_start)?;
                let e = (s + c.text.len()).min(self.text.len());
                let (s, e) = (floor_char(&self.text, s), floor_char(&self.text, e));
                Some((self.sentence_start(s), self.sentence_end(e), *c))
            })
            .collect();
        spans.sort_by_key(|&(s, _, _)| s);
        let mut apart: Vec<(usize, usize, &ChunkRow)> = Vec::new();
        for (s, e, c) in spans {
            let s = apart.last().map_or(s, |last| s.max(last.1));
            if self.text[s..e.max(s)].trim().is_empty() {
                continue;
            }
            apart.push((s, e, c));
        }
        apart
            .into_iter()
            .map(|(s, e, c)| ChunkRow {
                line_start: self.line_of(s),
                line_end: self.line_of(e.saturating_sub(1).max(s)),
                byte_start: (self.byte_start + s) as i64,
                text: self.text[s..e].to_string(),
                ..c.clone()
            })
            .collect()
    }
}

/// The top-level items of the lists in `text`, as byte ranges, read with pulldown-cmark: an
/// item runs to the next item of its list (the blank lines between go with it), or to its
/// list's end.
fn list_items(text: &str) -> Vec<(usize, usize)> {
    let mut items: Vec<(usize, usize)> = Vec::new();
    let mut depth = 0usize;
    // Where the open top-level list's items stop joining the next one's start.
    let mut in_list_from = 0usize;
    for (ev, range) in Parser::new_ext(text, Options::empty()).into_offset_iter() {
        match ev {
            Event::Start(Tag::List(_)) => {
                depth += 1;
                if depth == 1 {
                    in_list_from = items.len();
                }
            }
            Event::End(TagEnd::List(_)) => depth = depth.saturating_sub(1),
            Event::Start(Tag::Item) if depth == 1 => {
                if items.len() > in_list_from {
                    if let Some(last) = items.last_mut() {
                        last.1 = last.1.max(range.start);
                    }
                }
                items.push((range.start, range.end));
            }
            _ => {}
        }
    }
    items
}

/// The paragraphs of `text` with no list, as byte ranges: its top-level blocks (CommonMark's,
/// read by pulldown-cmark), a code block going with the block before it (the sentence it
/// shows), a heading with the block after it (the one it titles). Each runs to the next one's
/// start, so the blank lines between them belong to the one before.
fn paragraphs(text: &str) -> Vec<(usize, usize)> {
    let mut starts: Vec<usize> = Vec::new();
    let (mut depth, mut titles_next) = (0usize, false);
    for (ev, range) in Parser::new_ext(text, Options::empty()).into_offset_iter() {
        match ev {
            Event::Start(tag) => {
                if depth == 0 {
                    let code = matches!(tag, Tag::CodeBlock(_));
                    if starts.is_empty() || !(code || titles_next) {
                        starts.push(range.start);
                    }
                    titles_next = matches!(tag, Tag::Heading { .. });
                }
                depth += 1;
            }
            Event::End(_) => depth = depth.saturating_sub(1),
            // A block with no inner events at the top level (a rule, an HTML block's lines).
            _ if depth == 0 => {
                if starts.is_empty() || !titles_next {
                    starts.push(range.start);
                }
                titles_next = false;
            }
            _ => {}
        }
    }
    let ends = starts.iter().skip(1).copied().chain([text.len()]);
    starts.iter().copied().zip(ends).collect()
}

/// `stretches` (of one source) cut to the list items the page's findings (`mine`, lines of
/// the source) stand in, when every one of them stands in an item and other pages' findings
/// (`others`) stand in other items: the list is then a list of subjects, divided among its
/// pages, and the page shows its own items (and those no page claims that stand nearest to
/// one of them), not its neighbours' or the words around the list. Else the stretches whole.
///
/// Items and paragraphs are read once over the whole source (`text`), so a stretch that
/// starts inside a list item reads it as the item it is.
fn items_cited(
    text: &SourceText,
    stretches: &[ChunkRow],
    mine: &[i64],
    others: &[i64],
) -> Vec<ChunkRow> {
    let (all_items, all_paragraphs) = (list_items(&text.text), paragraphs(&text.text));
    // The units of `all` that overlap the stretch `st`, cut to it, in its own bytes.
    let within = |all: &[(usize, usize)], st: &ChunkRow| -> Vec<(usize, usize)> {
        let off = usize::try_from(st.byte_start)
            .unwrap_or(0)
            .saturating_sub(text.byte_start);
        let end = off + st.text.len();
        all.iter()
            .filter(|&&(a, b)| a < end && b > off)
            .map(|&(a, b)| {
                (
                    floor_char(&st.text, a.max(off) - off),
                    floor_char(&st.text, b.min(end) - off),
                )
            })
            .filter(|&(a, b)| !st.text[a..b].trim().is_empty())
            .collect()
    };
    // Every item of every stretch: (stretch, byte range, first line, last line).
    let items: Vec<(usize, (usize, usize), i64, i64)> = stretches
        .iter()
        .enumerate()
        .flat_map(|(n, st)| {
            let items = within(&all_items, st);
            let units = if items.is_empty() {
                within(&all_paragraphs, st)
            } else {
                items
            };
            units.into_iter().map(move |(a, b)| {
                let last = line_at(st, b.saturating_sub(1).max(a));
                (n, (a, b), line_at(st, a), last)
            })
        })
        .collect();
    let item_of = |l: i64| items.iter().position(|&(_, _, a, b)| a <= l && l <= b);
    let mut kept: Vec<usize> = Vec::new();
    for &l in mine {
        match item_of(l) {
            Some(i) if !kept.contains(&i) => kept.push(i),
            Some(_) => {}
            None => return stretches.to_vec(), // a finding outside the items: about the list
        }
    }
    let theirs: Vec<usize> = others
        .iter()
        .filter_map(|&l| item_of(l))
        .filter(|i| !kept.contains(i))
        .collect();
    if kept.is_empty() || theirs.is_empty() {
        return stretches.to_vec();
    }
    // An item no page's finding stands in goes with the nearest item one does (the earlier
    // on a tie), so the list is divided among its pages and no item is lost or shown twice.
    let claimed: Vec<usize> = kept.iter().chain(&theirs).copied().collect();
    for i in 0..items.len() {
        let nearest = claimed.iter().min_by_key(|&&j| (i.abs_diff(j), j));
        if !claimed.contains(&i) && nearest.is_some_and(|j| kept.contains(j)) {
            kept.push(i);
        }
    }
    kept.sort_unstable();
    // Items next to each other in one stretch make one piece: one list on the page.
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for i in kept {
        match runs.last_mut() {
            Some((_, last)) if *last + 1 == i && items[*last].0 == items[i].0 => *last = i,
            _ => runs.push((i, i)),
        }
    }
    runs.into_iter()
        .map(|(first, last)| {
            let (n, (a, _), line_start, _) = items[first];
            let (_, (_, b), _, line_end) = items[last];
            let st = &stretches[n];
            ChunkRow {
                line_start,
                line_end,
                byte_start: st.byte_start + a as i64,
                text: st.text[a..b].to_string(),
                ..st.clone()
            }
        })
        .collect()
}

/// The char boundary at or before byte `at` of `s`.
fn floor_char(s: &str, mut at: usize) -> usize {
    at = at.min(s.len());
    while !s.is_char_boundary(at) {
        at -= 1;
    }
    at
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
///
/// `others` are the `(chunk id, line)` of the other pages' findings: a list whose items feed
/// several pages (review comments, numbered tips) is a list of subjects, and each page shows
/// only the items its own findings stand in ([`items_cited`]).
pub fn material(chunks: &[ChunkRow], at: &[(i64, i64)], others: &[(i64, i64)]) -> Material {
    let mut taken: Vec<&ChunkRow> = Vec::new();
    for &(chunk_id, _) in at {
        let Some(home) = chunks.iter().find(|c| c.id == chunk_id) else {
            continue;
        };
        let topic = topic_of(&home.heading_path);
        for c in chunks
            .iter()
            .filter(|c| c.source_id == home.source_id && (c.id == home.id || in_topic(c, topic)))
        {
            if !taken.iter().any(|t| t.id == c.id) {
                taken.push(c);
            }
        }
    }
    let mut parts: Vec<Part> = Vec::new();
    let mut prose_sources: Vec<i64> = Vec::new();
    for c in &taken {
        if matches!(
            c.kind.parse::<FileKind>(),
            Ok(FileKind::Markdown) | Ok(FileKind::Text)
        ) {
            if !prose_sources.contains(&c.source_id) {
                prose_sources.push(c.source_id);
            }
        } else if at.iter().any(|&(id, _)| id == c.id) || !others.iter().any(|&(id, _)| id == c.id)
        {
            // A chunk of the topic that only other pages' findings come from (one entry of a
            // macro's list of declarations, each with its own page) is theirs.
            parts.extend(parts_of(c));
        }
    }
    for source_id in prose_sources {
        let of_source: Vec<&ChunkRow> =
            chunks.iter().filter(|c| c.source_id == source_id).collect();
        let mine: Vec<&ChunkRow> = taken
            .iter()
            .copied()
            .filter(|c| c.source_id == source_id)
            .collect();
        let lines_in = |found: &[(i64, i64)]| -> Vec<i64> {
            found
                .iter()
                .filter(|(id, _)| of_source.iter().any(|c| c.id == *id))
                .map(|&(_, line)| line)
                .collect()
        };
        let (my_lines, other_lines) = (lines_in(at), lines_in(others));
        match SourceText::of(&of_source) {
            Some(text) => {
                // A part (under a heading of its own) that another page's finding stands in
                // and none of this page's is that page's subject, not this one's: a log's
                // Monday on the page of its Friday.
                let stands_in = |lines: &[i64], p: &Part| {
                    lines.iter().any(|&l| p.line_start <= l && l <= p.line_end)
                };
                let pieces = items_cited(&text, &text.stretches(&mine), &my_lines, &other_lines);
                parts.extend(
                    pieces
                        .iter()
                        .flat_map(markdown_parts)
                        .filter(|p| stands_in(&my_lines, p) || !stands_in(&other_lines, p)),
                );
            }
            None => parts.extend(mine.into_iter().flat_map(parts_of)),
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

    fn texts(part: &Part) -> Vec<&str> {
        part.sentences.iter().map(|s| s.text.as_str()).collect()
    }

    /// Every sentence a page's material shows, in order.
    fn said(m: &Material) -> String {
        m.parts
            .iter()
            .flat_map(|p| p.sentences.iter().map(|s| s.text.clone()))
            .collect::<Vec<_>>()
            .join(" | ")
    }

    /// A list of review comments, each feeding its own page: a page keeps the items its
    /// findings stand in, not its neighbours' subjects or the words around the list.
    #[test]
    fn a_list_whose_items_feed_several_pages_is_cut_to_each_pages_items() {
        let text = "# Review comments\n\nCollected from my reviews.\n\n1. **Collect into a `Result`.** It stops at the first error.\n   Same trick works for `Option`.\n\n2. **Mark public enums `#[non_exhaustive]`.** Adding a variant\n   is then no breaking change.\n\n   ```rust\n   #[non_exhaustive]\n   pub enum Event { Start }\n   ```\n\n3. **Use `mem::take`.** It swaps in the default.\n\nNot a pattern: rebase before review.\n";
        let c = chunk(1, "markdown", 1, &["Review comments"], text);
        // Findings at line 8 (item 2); other pages' at lines 5 (item 1) and 16 (item 3).
        let m = material(std::slice::from_ref(&c), &[(1, 8)], &[(1, 5), (1, 16)]);
        let shown = said(&m);
        assert!(
            shown.contains("non_exhaustive") && shown.contains("breaking change"),
            "{shown}"
        );
        for other in ["Collect into", "mem::take", "Collected from", "rebase"] {
            assert!(!shown.contains(other), "{other} in {shown}");
        }
        // An item no page claims goes with the nearest claimed one: item 1 with item 2.
        let m = material(std::slice::from_ref(&c), &[(1, 8)], &[(1, 16)]);
        assert!(said(&m).contains("Collect into"), "{}", said(&m));
        assert_eq!(
            m.parts.len(),
            1,
            "items 1 and 2 are one list: {:#?}",
            m.parts
        );
        let m = material(std::slice::from_ref(&c), &[(1, 16)], &[(1, 8)]);
        assert!(!said(&m).contains("Collect into"), "{}", said(&m));
        let m = material(std::slice::from_ref(&c), &[(1, 8)], &[(1, 5), (1, 16)]);
        let example = m.example.expect("the item's own block");
        assert_eq!((example.line_start, example.line_end), (12, 13));
        // No other page shares the list: the page shows it whole.
        assert!(said(&material(std::slice::from_ref(&c), &[(1, 8)], &[])).contains("mem::take"));
        // A finding of the page outside the items: the page is about the list.
        let m = material(std::slice::from_ref(&c), &[(1, 8), (1, 3)], &[(1, 5)]);
        assert!(said(&m).contains("Collect into"));
        // The list in two chunks of one topic: the page's item is in the second, another
        // page's in the first; the first chunk's items and words are not shown.
        let cut = text.find("2. **Mark").expect("item 2");
        let head = &text[..cut];
        let mut second = chunk(2, "markdown", 8, &["Review comments"], &text[cut..]);
        second.byte_start = cut as i64;
        let first = chunk(1, "markdown", 1, &["Review comments"], head);
        let m = material(&[first, second], &[(2, 16)], &[(1, 5), (2, 8)]);
        let shown = said(&m);
        assert!(shown.contains("mem::take"), "{shown}");
        for other in ["Collect into", "non_exhaustive", "Collected from", "rebase"] {
            assert!(!shown.contains(other), "{other} in {shown}");
        }
    }

    /// A log's days under one topic, each day feeding its own page: a page does not show the
    /// day another page's finding stands in and none of its own does.
    #[test]
    fn a_part_only_another_pages_findings_stand_in_is_left_to_that_page() {
        let text = "# Week log\n\nPorting the scheduler this week.\n\n## Monday\n\nThe answer is `Option::take`: it moves the value out and leaves `None` behind.\n\n## Misc\n\nFor scripts I return `Box<dyn Error>` from everything, main included.\n";
        let c = chunk(1, "markdown", 1, &["Week log"], text);
        // This page's finding at line 11 (Misc), another's at line 7 (Monday).
        let shown = said(&material(std::slice::from_ref(&c), &[(1, 11)], &[(1, 7)]));
        assert!(shown.contains("Box<dyn Error>"), "{shown}");
        // The opening goes with the nearest day that has a page: Monday.
        assert!(!shown.contains("Porting the scheduler"), "{shown}");
        assert!(!shown.contains("Option::take"), "{shown}");
        // Alone on the file, the page shows every day.
        let shown = said(&material(std::slice::from_ref(&c), &[(1, 11)], &[]));
        assert!(shown.contains("Option::take"), "{shown}");
    }

    /// Entries of one Rust item, one chunk each, each feeding its own page: a page does not
    /// show the chunk only another page's findings come from.
    #[test]
    fn a_rust_chunk_only_another_pages_findings_come_from_is_left_to_that_page() {
        let entry = |id: i64, line: i64, doc: &str| {
            let mut c = chunk(id, "rust", line, &["declare_checks!"], doc);
            c.rel_path = "src/checks.rs".into();
            c
        };
        let chunks = [
            entry(
                1,
                1,
                "/// Swap with `std::mem::swap` instead of a temporary.\nMANUAL_SWAP: Warn,\n",
            ),
            entry(
                2,
                3,
                "/// Count the iterator instead of collecting it first.\nNEEDLESS_COLLECT: Warn,\n",
            ),
        ];
        let shown = |m: &Material| format!("{:?}", m.parts);
        let m = material(&chunks, &[(2, 4)], &[(1, 2)]);
        assert!(shown(&m).contains("NEEDLESS_COLLECT"), "{}", shown(&m));
        assert!(!shown(&m).contains("MANUAL_SWAP"), "{}", shown(&m));
        let m = material(&chunks, &[(2, 4)], &[]);
        assert!(shown(&m).contains("MANUAL_SWAP"), "{}", shown(&m));
    }

    /// A chunk that starts inside a list item (chunks overlap mid-line): the item is read as
    /// the whole source's item, so the page of the next item does not show its neighbour's
    /// last sentences.
    #[test]
    fn a_stretch_that_starts_inside_an_item_leaves_that_item_to_its_page() {
        let file = "Notes from pairing.\n\n- Take `impl AsRef<Path>` for paths.\n  Callers pass a `&str`.\n  Keep the generic part tiny.\n\n- Sort with `Reverse` for descending keys.\n  It composes in tuples.\n\n- Ask about caching.\n";
        let cut = file.find("Keep the generic").unwrap();
        let first_end = file.find("\n\n- Sort").unwrap();
        let line_of = |at: usize| 1 + file[..at].matches('\n').count() as i64;
        let mut a = chunk(1, "text", 1, &[], &file[..first_end]);
        let mut b = chunk(2, "text", line_of(cut), &[], &file[cut..]);
        (a.byte_start, b.byte_start) = (0, cut as i64);
        (a.rel_path, b.rel_path) = ("pairing.txt".into(), "pairing.txt".into());
        let m = material(&[a, b], &[(2, 7)], &[(1, 5)]);
        let shown = said(&m);
        assert!(shown.contains("Sort with `Reverse`"), "{shown}");
        assert!(!shown.contains("generic part"), "{shown}");
    }

    #[test]
    fn paragraphs_keep_the_code_block_that_follows_them() {
        let text = "## Habits\n\nFirst, use `fold`:\n\n```rust\nlet n = xs.iter().fold(0, f);\n\nn\n```\n\nSecond, let-else.\nIt diverges.\n";
        let got: Vec<&str> = paragraphs(text).iter().map(|&(a, b)| &text[a..b]).collect();
        assert_eq!(
            got,
            [
                "## Habits\n\nFirst, use `fold`:\n\n```rust\nlet n = xs.iter().fold(0, f);\n\nn\n```\n\n",
                "Second, let-else.\nIt diverges.\n"
            ]
        );
    }

    /// Read by line, a heading with no blank line before it ran into the paragraph above,
    /// and a `~~~` block holding a line of backticks ended there.
    #[test]
    fn paragraphs_are_commonmark_blocks() {
        let text = "Para one.\n## Next\nPara two.\n\n~~~\n```\n\nx\n~~~\n\nLast.\n";
        let got: Vec<&str> = paragraphs(text).iter().map(|&(a, b)| &text[a..b]).collect();
        assert_eq!(
            got,
            [
                "Para one.\n",
                "## Next\nPara two.\n\n~~~\n```\n\nx\n~~~\n\n",
                "Last.\n"
            ]
        );
    }

    #[test]
    fn list_items_run_to_the_next_item_a_heading_or_an_unindented_paragraph() {
        let text = "Intro.\n\n- one\n  more of one\n\n  still one\n- two\n\nAfter.\n## H\n";
        let items: Vec<&str> = list_items(text).iter().map(|&(a, b)| &text[a..b]).collect();
        assert_eq!(
            items,
            ["- one\n  more of one\n\n  still one\n", "- two\n\n"]
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
            texts(&parts[0]),
            [
                "19 May 2020",
                "Contents",
                "Rustlings is a set of small exercises",
                "Lifetimes",
                "can grow",
                "can shrink"
            ]
        );
        let opens: Vec<Opens> = parts[0].sentences.iter().map(|s| s.opens).collect();
        assert_eq!(
            opens,
            [
                Opens::Paragraph,
                Opens::Paragraph,
                Opens::Item,
                Opens::Item,
                Opens::Item,
                Opens::Item
            ]
        );
    }

    /// A chunk of `src` from byte `start` to `end`, with its lines, as ingest stores it.
    fn cut(id: i64, kind: &str, src: &str, start: usize, end: usize) -> ChunkRow {
        let line = |at: usize| 1 + src[..at].matches('\n').count() as i64;
        ChunkRow {
            id,
            source_id: 1,
            rel_path: "notes/borrowing.txt".into(),
            kind: kind.into(),
            line_start: line(start),
            line_end: line(end - 1),
            byte_start: start as i64,
            text: src[start..end].into(),
            ..ChunkRow::default()
        }
    }

    /// The chunks of a long paragraph overlap: the second starts a few words before the first
    /// ends, in the middle of a line. A page reads each sentence once and whole, from its
    /// start: a chunk's stretch grows to the sentences it cuts, and starts where the stretch
    /// before it ends.
    #[test]
    fn overlapping_chunks_give_each_sentence_once_and_from_its_start() {
        let src = "Notes on borrowing.\n\nA lifetime is a region of code where a reference is valid.\nThe borrow checker rejects a reference that outlives its value.\n\nElision fills in the lifetimes of simple signatures.\n";
        let mid = src.find("rejects").unwrap() + "rejects".len();
        let first = cut(1, "text", src, 0, mid);
        let second = cut(
            2,
            "text",
            src,
            src.find("borrow checker").unwrap(),
            src.len() - 1,
        );
        let chunks = [first, second];
        let m = material(&chunks, &[(2, 4)], &[]);
        assert_eq!(m.parts.len(), 1, "{m:#?}");
        assert_eq!(
            texts(&m.parts[0]),
            [
                "The borrow checker rejects a reference that outlives its value.",
                "Elision fills in the lifetimes of simple signatures."
            ],
            "from the start of the sentence the chunk starts in"
        );
        assert_eq!((m.parts[0].line_start, m.parts[0].line_end), (4, 6));
        let opens: Vec<Opens> = m.parts[0].sentences.iter().map(|s| s.opens).collect();
        assert_eq!(opens, [Opens::Paragraph, Opens::Paragraph]);
        // A chunk that starts a sentence starts there.
        let third = cut(
            3,
            "text",
            src,
            src.find("The borrow").unwrap(),
            src.len() - 1,
        );
        let m = material(&[chunks[0].clone(), third], &[(3, 4)], &[]);
        assert_eq!(
            texts(&m.parts[0])[0],
            "The borrow checker rejects a reference that outlives its value."
        );
        let m = material(&chunks, &[(1, 1), (2, 4)], &[]);
        assert_eq!(m.parts.len(), 2, "a part per chunk: {m:#?}");
        let all: Vec<&str> = m.parts.iter().flat_map(texts).collect();
        assert_eq!(all.len(), 4, "each sentence once: {m:#?}");
        assert_eq!(
            all[1],
            "A lifetime is a region of code where a reference is valid."
        );
        assert_eq!((m.parts[0].line_start, m.parts[1].line_end), (1, 6));
    }

    #[test]
    fn a_markdown_chunk_gives_its_parts_with_whole_sentences_and_fenced_blocks() {
        let text = "# Builder\n\nA builder collects the options of a value\nstep by step. It ends with `build`.\n\n## Example\n\n```rust\nlet c = ConfigBuilder::new()\n    .port(80)\n    .build();\n```\n\n## Disadvantages\n\n- More code than a constructor\n  for small types.\n";
        let parts = parts_of(&chunk(7, "markdown", 10, &["Builder"], text));
        assert_eq!(parts.len(), 3, "{parts:#?}");
        assert_eq!(parts[0].heading.as_deref(), Some("Builder"));
        assert_eq!(
            texts(&parts[0]),
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
            texts(&parts[2]),
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
            texts(&parts[0]),
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
        let m = material(std::slice::from_ref(&c), &[(3, 11)], &[]);
        assert_eq!(
            m.example.map(|b| b.line_start),
            Some(10),
            "the item holding the finding"
        );
        let m = material(&[c], &[(3, 6)], &[]);
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
        let m = material(&chunks, &[(1, 3)], &[]);
        let headings: Vec<_> = m.parts.iter().map(|p| p.heading.clone().unwrap()).collect();
        assert_eq!(headings, ["Guards", "Example"]);
        let ex = m.example.expect("an example");
        assert_eq!(
            (ex.line_start, ex.line_end),
            (13, 15),
            "the Example section's block"
        );
        let m = material(&chunks, &[(3, 22)], &[]);
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
        let m = material(&chunks, &[(1, 1)], &[]);
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
