//! Markdown splitter: front matter (`---` YAML-ish or `+++` TOML-ish) becomes
//! metadata and is left out of the chunks; the rest is cut into sections by
//! top-level headings (ATX or setext), each chunk carrying its heading path.
//! Small sections under a shared heading are merged; large ones are split at
//! block boundaries (paragraphs, list items, table rows) with overlap. Code
//! blocks are never cut: an oversized one becomes its own chunk.

use pulldown_cmark::{Event, HeadingLevel, Options, Parser, Tag, TagEnd};
use serde_json::{Map, Value};

use super::chunk::{pack, MergeRule, Piece, Unit};
use super::{Chunk, IngestOptions, TokenCounter};

/// Splits markdown into chunks; returns the chunks and the front matter.
pub fn split(
    text: &str,
    opts: &IngestOptions,
    tokens: &dyn TokenCounter,
) -> (Vec<Chunk>, Map<String, Value>) {
    let (body_start, metadata) = match front_matter(text) {
        Some((end, meta)) => (end, meta),
        None => (0, Map::new()),
    };
    let pieces = pieces(text, body_start);
    (
        pack(text, &pieces, MergeRule::Sections, opts, tokens),
        metadata,
    )
}

/// The document's title: its first level-1 heading, else a `title` in its front matter.
pub fn title(text: &str) -> Option<String> {
    let (start, meta) = front_matter(text).unwrap_or((0, Map::new()));
    let mut in_title = false;
    let mut title = String::new();
    for ev in Parser::new_ext(&text[start..], Options::empty()) {
        match ev {
            Event::Start(Tag::Heading {
                level: HeadingLevel::H1,
                ..
            }) => in_title = true,
            Event::End(TagEnd::Heading(HeadingLevel::H1)) => {
                let t = title.split_whitespace().collect::<Vec<_>>().join(" ");
                if !t.is_empty() {
                    return Some(t);
                }
                in_title = false;
            }
            Event::Text(t) | Event::Code(t) if in_title => title.push_str(&t),
            _ => {}
        }
    }
    meta.get("title")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
}

/// Byte offset where the body starts (after front matter), 0 when there is none.
pub fn body_start(text: &str) -> usize {
    front_matter(text).map(|(e, _)| e).unwrap_or(0)
}

/// Lines of `s` with their byte start, without line terminators.
fn lines_with_offsets(s: &str) -> impl Iterator<Item = (usize, &str, usize)> {
    let mut pos = 0;
    s.split_inclusive('\n').map(move |l| {
        let start = pos;
        pos += l.len();
        (start, l.trim_end_matches(['\n', '\r']), pos)
    })
}

/// Detects front matter at the top: returns the body start offset and the
/// parsed key/values.
fn front_matter(text: &str) -> Option<(usize, Map<String, Value>)> {
    let bom = if text.starts_with('\u{feff}') { 3 } else { 0 };
    let rest = &text[bom..];
    let mut lines = lines_with_offsets(rest);
    let (_, first, _) = lines.next()?;
    let (closers, sep): (&[&str], char) = match first.trim_end() {
        "---" => (&["---", "..."], ':'),
        "+++" => (&["+++"], '='),
        _ => return None,
    };
    let mut inner = Vec::new();
    for (_, line, end) in lines {
        if closers.contains(&line.trim_end()) {
            return Some((bom + end, parse_pairs(&inner, sep)));
        }
        inner.push(line);
    }
    None
}

fn scalar(v: &str) -> Value {
    let v = v.trim();
    let unq = v
        .strip_prefix('"')
        .and_then(|x| x.strip_suffix('"'))
        .or_else(|| v.strip_prefix('\'').and_then(|x| x.strip_suffix('\'')));
    if let Some(u) = unq {
        return Value::String(u.to_string());
    }
    match v {
        "true" => return Value::Bool(true),
        "false" => return Value::Bool(false),
        _ => {}
    }
    if let Ok(i) = v.parse::<i64>() {
        return Value::from(i);
    }
    Value::String(v.to_string())
}

fn value(v: &str) -> Value {
    let t = v.trim();
    if let Some(inner) = t.strip_prefix('[').and_then(|x| x.strip_suffix(']')) {
        let items = inner
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(scalar)
            .collect();
        return Value::Array(items);
    }
    scalar(t)
}

/// `key: value` / `key = value` lines; YAML `- item` lines under a key with no
/// value form an array. Anything else is ignored.
fn parse_pairs(lines: &[&str], sep: char) -> Map<String, Value> {
    let mut map = Map::new();
    let mut list_key: Option<String> = None;
    for line in lines {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if let (Some(k), Some(item)) = (&list_key, trimmed.strip_prefix("- ")) {
            if let Some(Value::Array(a)) = map.get_mut(k) {
                a.push(scalar(item));
            }
            continue;
        }
        if line.starts_with([' ', '\t']) {
            continue;
        }
        list_key = None;
        if let Some((k, v)) = line.split_once(sep) {
            let key = k.trim().trim_matches('"').to_string();
            if key.is_empty() || key.contains(' ') {
                continue;
            }
            if v.trim().is_empty() && sep == ':' {
                map.insert(key.clone(), Value::Array(Vec::new()));
                list_key = Some(key);
            } else {
                map.insert(key, value(v));
            }
        }
    }
    // A key announced as a list but never given items is an empty string.
    for v in map.values_mut() {
        if matches!(v, Value::Array(a) if a.is_empty()) {
            *v = Value::String(String::new());
        }
    }
    map
}

fn is_block(tag: &Tag<'_>) -> bool {
    matches!(
        tag,
        Tag::Paragraph
            | Tag::Heading { .. }
            | Tag::BlockQuote(_)
            | Tag::CodeBlock(_)
            | Tag::HtmlBlock
            | Tag::List(_)
            | Tag::Item
            | Tag::FootnoteDefinition(_)
            | Tag::DefinitionList
            | Tag::DefinitionListTitle
            | Tag::DefinitionListDefinition
            | Tag::Table(_)
            | Tag::TableHead
            | Tag::TableRow
            | Tag::MetadataBlock(_)
    )
}

fn level_num(l: HeadingLevel) -> usize {
    match l {
        HeadingLevel::H1 => 1,
        HeadingLevel::H2 => 2,
        HeadingLevel::H3 => 3,
        HeadingLevel::H4 => 4,
        HeadingLevel::H5 => 5,
        HeadingLevel::H6 => 6,
    }
}

struct Heading {
    start: usize,
    end: usize,
    level: usize,
    text: String,
}

/// Builds the section pieces of the body `text[body..]`.
fn pieces(text: &str, body: usize) -> Vec<Piece> {
    let src = &text[body..];
    let mut options = Options::empty();
    options.insert(Options::ENABLE_TABLES);
    options.insert(Options::ENABLE_FOOTNOTES);
    options.insert(Options::ENABLE_STRIKETHROUGH);
    options.insert(Options::ENABLE_TASKLISTS);
    let mut depth = 0usize;
    let mut breaks: Vec<usize> = Vec::new();
    let mut code: Vec<(usize, usize)> = Vec::new();
    let mut headings: Vec<Heading> = Vec::new();
    let mut current: Option<Heading> = None;
    for (ev, range) in Parser::new_ext(src, options).into_offset_iter() {
        let (s, e) = (range.start + body, range.end + body);
        match ev {
            Event::Start(tag) => {
                if is_block(&tag) {
                    breaks.push(s);
                }
                match &tag {
                    Tag::CodeBlock(_) => code.push((s, e)),
                    Tag::Heading { level, .. } if depth == 0 => {
                        current = Some(Heading {
                            start: s,
                            end: e,
                            level: level_num(*level),
                            text: String::new(),
                        });
                    }
                    _ => {}
                }
                depth += 1;
            }
            Event::End(tag) => {
                depth = depth.saturating_sub(1);
                if depth == 0 && matches!(tag, TagEnd::Heading(_)) {
                    if let Some(h) = current.take() {
                        headings.push(h);
                    }
                }
            }
            Event::Text(t) | Event::Code(t) | Event::InlineMath(t) => {
                if let Some(h) = current.as_mut() {
                    h.text.push_str(&t);
                }
            }
            Event::SoftBreak | Event::HardBreak => {
                if let Some(h) = current.as_mut() {
                    h.text.push(' ');
                }
            }
            Event::Rule => breaks.push(s),
            _ => {}
        }
    }

    // Snap breaks to line starts so "> " and list markers stay with their text.
    let snapped: Vec<usize> = breaks
        .iter()
        .map(|&b| text[..b].rfind('\n').map(|i| i + 1).unwrap_or(0).max(body))
        .collect();
    let mut breaks = snapped;
    breaks.sort_unstable();
    breaks.dedup();
    // No break right after a heading: a heading always travels with the
    // block that follows it.
    let heading_starts: std::collections::HashSet<usize> =
        headings.iter().map(|h| h.start).collect();
    let mut drop: std::collections::HashSet<usize> = std::collections::HashSet::new();
    for h in &headings {
        let pos = breaks.partition_point(|&b| b <= h.start);
        if let Some(&b) = breaks.get(pos) {
            if b >= h.end && !heading_starts.contains(&b) {
                drop.insert(b);
            }
        }
    }
    breaks.retain(|b| !drop.contains(b));
    let code_starts: Vec<usize> = {
        let mut v: Vec<usize> = code.iter().map(|&(s, _)| s).collect();
        v.sort_unstable();
        v
    };

    // Section starts: body start, then each top-level heading.
    let mut sections: Vec<(usize, Vec<String>, bool)> = Vec::new();
    let mut stack: Vec<(usize, String)> = Vec::new();
    sections.push((body, Vec::new(), true));
    for (i, h) in headings.iter().enumerate() {
        while stack.last().is_some_and(|(l, _)| *l >= h.level) {
            stack.pop();
        }
        let title = h.text.split_whitespace().collect::<Vec<_>>().join(" ");
        let title = if title.is_empty() {
            "(untitled)".to_string()
        } else {
            title
        };
        stack.push((h.level, title));
        let path = stack.iter().map(|(_, t)| t.clone()).collect();
        let next = headings.get(i + 1).map(|n| n.start).unwrap_or(text.len());
        let has_body = !text[h.end.min(next)..next].trim().is_empty();
        sections.push((h.start, path, has_body));
    }

    // (piece, heading only)
    let mut pieces: Vec<(Piece, bool)> = Vec::new();
    for (i, (start, path, has_body)) in sections.iter().enumerate() {
        let end = sections.get(i + 1).map(|s| s.0).unwrap_or(text.len());
        if end <= *start {
            continue;
        }
        let mut cuts: Vec<usize> = vec![*start];
        let lo = breaks.partition_point(|&b| b <= *start);
        let hi = breaks.partition_point(|&b| b < end);
        cuts.extend_from_slice(&breaks[lo..hi.max(lo)]);
        let mut units = Vec::with_capacity(cuts.len());
        for (k, &s) in cuts.iter().enumerate() {
            let e = cuts.get(k + 1).copied().unwrap_or(end);
            // A code block starts inside this unit?
            let first = code_starts.partition_point(|&c| c < s);
            let atomic = code_starts.get(first).is_some_and(|&c| c < e);
            units.push(Unit {
                start: s,
                end: e,
                atomic,
            });
        }
        let piece = Piece {
            start: *start,
            end,
            heading_path: path.clone(),
            units,
            solo: false,
        };
        pieces.push((piece, !has_body));
    }

    // Fold heading-only sections into a following descendant section.
    let mut i = pieces.len();
    while i >= 2 {
        i -= 1;
        let prev = i - 1;
        let (ref pp, only) = pieces[prev];
        if only
            && !pp.heading_path.is_empty()
            && pieces[i].0.heading_path.starts_with(&pp.heading_path)
        {
            let (p, _) = pieces.remove(prev);
            let next = &mut pieces[prev].0;
            next.start = p.start;
            let mut units = p.units;
            units.append(&mut next.units);
            next.units = units;
        }
    }
    pieces.into_iter().map(|(p, _)| p).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::ApproxTokens;

    fn opts(limit: usize, overlap: usize) -> IngestOptions {
        IngestOptions {
            chunk_tokens: limit,
            overlap_tokens: overlap,
            ..IngestOptions::default()
        }
    }

    fn paths(c: &[Chunk]) -> Vec<Vec<String>> {
        c.iter().map(|c| c.heading_path.clone()).collect()
    }

    fn p(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn nested_headings_paths() {
        let s = "# A\n\nintro a\n\n## B\n\ntext b\n\n### C\n\ntext c\n\n## D\n\ntext d\n\n# E\n\ntext e\n";
        let c = split(s, &opts(5, 0), &ApproxTokens).0;
        assert_eq!(
            paths(&c),
            vec![
                p(&["A"]),
                p(&["A", "B"]),
                p(&["A", "B", "C"]),
                p(&["A", "D"]),
                p(&["E"])
            ]
        );
        assert_eq!(c[2].text, "### C\n\ntext c");
        assert_eq!((c[2].line_start, c[2].line_end), (9, 11));
    }

    #[test]
    fn small_sections_merge_under_parent() {
        let s = "# A\n\nintro\n\n## Example\n\nb\n\n## Notes\n\nc\n\n# D\n\nd\n";
        let c = split(s, &opts(12, 0), &ApproxTokens).0;
        assert_eq!(paths(&c), vec![p(&["A"]), p(&["D"])]);
        assert!(c[0].text.starts_with("# A") && c[0].text.ends_with("c"));
    }

    #[test]
    fn sections_on_topics_of_their_own_start_chunks() {
        // Notes of many topics: a section named for a topic starts a chunk once the chunk
        // holds more than a few lines; one that only structures the topic ("Example") joins.
        let body = "word ".repeat(60);
        let s =
            format!("# Log\n\n## Monday\n\n{body}\n\n## Example\n\nx\n\n## Tuesday\n\n{body}\n");
        let c = split(&s, &opts(384, 0), &ApproxTokens).0;
        assert_eq!(paths(&c), vec![p(&["Log"]), p(&["Log", "Tuesday"])]);
        assert!(c[0].text.starts_with("# Log") && c[0].text.ends_with("x"));
    }

    #[test]
    fn small_top_level_sections_merge_and_name_their_span() {
        let s = "# A\n\nintro\n\n## B\n\nb\n\n# D\n\nd\n\n# E\n\ne\n";
        let c = split(s, &IngestOptions::default(), &ApproxTokens).0;
        assert_eq!(paths(&c), vec![p(&["A … E"])]);
        assert_eq!(c[0].text, s.trim());
        let two = split(
            "## One\n\nx\n\n## Two\n\ny\n",
            &IngestOptions::default(),
            &ApproxTokens,
        )
        .0;
        assert_eq!(paths(&two), vec![p(&["One, Two"])]);
    }

    #[test]
    fn fence_with_hash_lines_is_not_a_heading() {
        let s = "# Top\n\n```sh\n# not a heading\n## nor this\n```\n\nafter\n";
        let c = split(s, &opts(4, 0), &ApproxTokens).0;
        assert!(c.iter().all(|c| c.heading_path == p(&["Top"])));
        assert!(c
            .iter()
            .any(|c| c.text.contains("# not a heading\n## nor this\n```")));
    }

    #[test]
    fn setext_headings() {
        let s = "Title\n=====\n\nintro\n\nSub\n---\n\nbody\n";
        let c = split(s, &opts(6, 0), &ApproxTokens).0;
        assert_eq!(paths(&c), vec![p(&["Title"]), p(&["Title", "Sub"])]);
        assert_eq!(c[1].text, "Sub\n---\n\nbody");
        assert_eq!(c[1].line_start, 6);
    }

    #[test]
    fn crlf_and_no_trailing_newline() {
        let s = "# A\r\n\r\ntext one\r\n\r\n## B\r\n\r\ntext two";
        let c = split(s, &opts(6, 0), &ApproxTokens).0;
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].text, "# A\r\n\r\ntext one");
        assert_eq!((c[0].line_start, c[0].line_end), (1, 3));
        assert_eq!(c[1].text, "## B\r\n\r\ntext two");
        assert_eq!((c[1].line_start, c[1].line_end), (5, 7));
    }

    #[test]
    fn huge_code_block_is_one_oversized_chunk() {
        let code: String = (0..200).map(|i| format!("let x{i} = {i};\n")).collect();
        let s = format!("# Code\n\nBefore.\n\n```rust\n{code}```\n\nAfter.\n");
        let c = split(&s, &opts(30, 5), &ApproxTokens).0;
        let block = format!("```rust\n{code}```");
        assert!(c.iter().any(|c| c.text.ends_with(&block)), "{c:#?}");
        for ch in &c {
            let opens = ch.text.matches("```").count();
            assert!(opens % 2 == 0, "fence cut in chunk {ch:?}");
        }
    }

    #[test]
    fn heading_travels_with_code_block() {
        let code = "x\n".repeat(300);
        let s = format!("## Example\n\n```\n{code}```\n");
        let c = split(&s, &opts(20, 0), &ApproxTokens).0;
        assert_eq!(c.len(), 1);
        assert!(c[0].text.starts_with("## Example"));
    }

    #[test]
    fn huge_paragraph_splits_with_overlap() {
        let para = "alpha beta gamma delta ".repeat(200);
        let s = format!("# P\n\n{para}\n");
        let c = split(&s, &opts(40, 6), &ApproxTokens).0;
        assert!(c.len() > 5);
        assert!(c.iter().all(|c| c.heading_path == p(&["P"])));
        for w in c.windows(2) {
            assert!(w[1].byte_start < w[0].byte_end, "overlap");
        }
    }

    #[test]
    fn unicode_near_boundaries() {
        let para = "données über straße 日本語 🦀 ".repeat(80);
        let s = format!("# Ü\n\n{para}\n\n## Ö\n\n{para}");
        let c = split(&s, &opts(25, 5), &ApproxTokens).0;
        for ch in &c {
            assert_eq!(ch.text, &s[ch.byte_start..ch.byte_end]);
        }
        assert_eq!(c[0].heading_path, p(&["Ü"]));
        assert_eq!(
            c.last().map(|c| c.heading_path.clone()),
            Some(p(&["Ü", "Ö"]))
        );
    }

    #[test]
    fn front_matter_is_metadata() {
        let s = "---\ntitle: \"Builder\"\ntags: [creational, api]\ndraft: false\nauthors:\n  - ann\n  - bob\n---\n# Builder\n\ntext\n";
        let (c, m) = split(s, &IngestOptions::default(), &ApproxTokens);
        assert_eq!(m["title"], "Builder");
        assert_eq!(m["tags"], serde_json::json!(["creational", "api"]));
        assert_eq!(m["draft"], false);
        assert_eq!(m["authors"], serde_json::json!(["ann", "bob"]));
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].text, "# Builder\n\ntext");
        assert_eq!(c[0].line_start, 9);
    }

    #[test]
    fn toml_front_matter() {
        let s = "+++\ntitle = \"X\"\nweight = 3\n+++\nbody\n";
        let (c, m) = split(s, &IngestOptions::default(), &ApproxTokens);
        assert_eq!(m["title"], "X");
        assert_eq!(m["weight"], 3);
        assert_eq!(c[0].text, "body");
    }

    #[test]
    fn unclosed_front_matter_is_text() {
        let s = "---\ntitle: x\nno end\n";
        let (c, m) = split(s, &IngestOptions::default(), &ApproxTokens);
        assert!(m.is_empty());
        assert_eq!(c[0].byte_start, 0);
    }

    #[test]
    fn heading_only_chain_folds_into_child() {
        let s = "# A\n\n## B\n\n### C\n\nbody\n\n# D\n";
        let c = split(s, &opts(2, 0), &ApproxTokens).0;
        assert_eq!(c[0].heading_path, p(&["A", "B", "C"]));
        assert!(c[0].text.starts_with("# A"));
        assert_eq!(c.last().map(|c| c.text.as_str()), Some("# D"));
    }

    #[test]
    fn code_in_list_item_not_cut() {
        let code = "line\n".repeat(100);
        let s = format!(
            "# L\n\n- item one\n- item two\n\n  ```\n{}  ```\n- item three\n",
            code.replace("line", "  line")
        );
        let c = split(&s, &opts(15, 0), &ApproxTokens).0;
        for ch in &c {
            assert!(ch.text.matches("```").count() % 2 == 0, "{ch:?}");
        }
    }
}
