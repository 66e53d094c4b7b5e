//! JSON and JSONL splitter. Documents are validated strictly with serde_json,
//! then a small scanner finds the byte spans of records (top-level array
//! elements or object members, descending into containers that are larger
//! than twice the limit). Each record is rendered as readable key-path lines
//! (`name: Builder`, `tags[0]: creational`, `details.summary: ...`); small
//! neighbouring records are grouped up to the limit. Malformed JSON falls back
//! to the plain-text splitter with a note; in JSONL only the bad line does.

use serde::de::IgnoredAny;

use super::chunk::{chunk_with_text, finish};
use super::{text, Chunk, IngestOptions, TokenCounter};

/// Splits a JSON document; returns chunks and notes.
pub fn split(
    src: &str,
    opts: &IngestOptions,
    tokens: &dyn TokenCounter,
) -> (Vec<Chunk>, Vec<String>) {
    let off = if src.starts_with('\u{feff}') { 3 } else { 0 };
    if let Err(e) = serde_json::from_str::<IgnoredAny>(&src[off..]) {
        let note = format!(
            "malformed JSON at line {}, column {}: {}; read as plain text",
            e.line(),
            e.column(),
            error_message(&e)
        );
        return (text::split(src, opts, tokens), vec![note]);
    }
    let limit = opts.chunk_tokens.max(1);
    let b = src.as_bytes();
    let start = skip_ws(b, off);
    let Some(end) = value_end(b, start) else {
        // Cannot happen for validated input; stay safe anyway.
        return (text::split(src, opts, tokens), Vec::new());
    };
    let mut records = Vec::new();
    match b.get(start) {
        Some(b'[') | Some(b'{') => {
            if !descend(src, start, None, &[], limit, tokens, &mut records, 0) {
                records.push(leaf(
                    src,
                    start,
                    start,
                    end,
                    Vec::new(),
                    RenderAs::Relative,
                    tokens,
                ));
            }
        }
        _ => records.push(leaf(
            src,
            start,
            start,
            end,
            Vec::new(),
            RenderAs::Relative,
            tokens,
        )),
    }
    let mut chunks = group(&records, limit, "\n");
    finish(src, &mut chunks);
    (chunks, Vec::new())
}

/// Splits JSON Lines: one record per non-blank line, grouped up to the limit.
/// A malformed line gets a note and is kept as its own raw-text chunk.
pub fn split_lines(
    src: &str,
    opts: &IngestOptions,
    tokens: &dyn TokenCounter,
) -> (Vec<Chunk>, Vec<String>) {
    let limit = opts.chunk_tokens.max(1);
    let mut notes = Vec::new();
    let mut records: Vec<Record> = Vec::new();
    let mut pos = 0;
    for (n, line) in src.split_inclusive('\n').enumerate() {
        let line_start = pos;
        pos += line.len();
        let content = line.trim_end_matches(['\n', '\r']);
        let lead = content.len()
            - content
                .trim_start_matches(|c: char| c.is_whitespace() || c == '\u{feff}')
                .len();
        let trimmed = content.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
        if trimmed.trim().is_empty() {
            continue;
        }
        let s = line_start + lead;
        let e = s + trimmed.len();
        let label = format!("line {}", n + 1);
        match serde_json::from_str::<IgnoredAny>(trimmed) {
            Ok(_) => {
                let mut r = leaf(src, s, s, e, vec![label], RenderAs::Relative, tokens);
                r.label = (n + 1).to_string();
                records.push(r);
            }
            Err(err) => {
                notes.push(format!(
                    "malformed JSON on line {}, column {}: {}; kept as plain text",
                    n + 1,
                    err.column(),
                    error_message(&err)
                ));
                let text = src[s..e].to_string();
                records.push(Record {
                    start: s,
                    end: e,
                    path: vec![label],
                    label: (n + 1).to_string(),
                    tokens: tokens.count(&text),
                    text: text.clone(),
                    grouped_text: text,
                    raw: true,
                });
            }
        }
    }
    let mut chunks = group(&records, limit, "\n\n");
    finish(src, &mut chunks);
    (chunks, notes)
}

/// serde_json's message without its " at line L column C" suffix.
fn error_message(e: &serde_json::Error) -> String {
    let full = e.to_string();
    match full.rfind(" at line ") {
        Some(i) => full[..i].to_string(),
        None => full,
    }
}

/// One record: a byte span of the source and its rendering.
#[derive(Debug)]
struct Record {
    start: usize,
    end: usize,
    /// Key path of the record from the document root.
    path: Vec<String>,
    /// Short label for group headings ("[3]", "name", "7" for JSONL line 7).
    label: String,
    text: String,
    /// Rendering used when grouped with siblings (self-describing lines).
    grouped_text: String,
    tokens: usize,
    /// Malformed JSONL line kept as raw text: never grouped.
    raw: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum RenderAs {
    /// Lines relative to the value itself (`name: x`).
    Relative,
    /// Lines prefixed with the record's own key (`details.summary: x`).
    Keyed,
}

fn leaf(
    src: &str,
    span_start: usize,
    vs: usize,
    ve: usize,
    path: Vec<String>,
    how: RenderAs,
    tokens: &dyn TokenCounter,
) -> Record {
    let last = path.last().cloned().unwrap_or_default();
    let keyed_prefix = last.clone();
    let scalar = !matches!(src.as_bytes().get(vs), Some(b'[') | Some(b'{'));
    let prefix = if how == RenderAs::Keyed || scalar {
        keyed_prefix.clone()
    } else {
        String::new()
    };
    let raw = src.get(span_start..ve).unwrap_or("").trim();
    let or_raw = |t: String| {
        if t.trim().is_empty() {
            raw.to_string()
        } else {
            t
        }
    };
    let text = or_raw(render_value(src, vs, ve, &prefix));
    let grouped_text = or_raw(render_value(src, vs, ve, &keyed_prefix));
    Record {
        start: span_start,
        end: ve,
        tokens: tokens.count(&grouped_text),
        label: last,
        path,
        text,
        grouped_text,
        raw: false,
    }
}

/// Adds the members of the container opening at `vs` as records, descending into
/// members that are too large. Returns false when the container is empty.
#[allow(clippy::too_many_arguments)]
fn descend(
    src: &str,
    vs: usize,
    first_start: Option<usize>,
    path: &[String],
    limit: usize,
    tokens: &dyn TokenCounter,
    out: &mut Vec<Record>,
    depth: usize,
) -> bool {
    let Some(members) = members(src.as_bytes(), vs) else {
        return false;
    };
    if members.is_empty() {
        return false;
    }
    let is_array = src.as_bytes()[vs] == b'[';
    for (i, m) in members.iter().enumerate() {
        let key = match m.key {
            Some((ks, ke)) => format_key(&decode_string(src, ks, ke)),
            None => format!("[{i}]"),
        };
        // The first member's span reaches back to the parent's start (e.g.
        // its key), so descending leaves only brackets and commas uncovered.
        let span_start = match (i, first_start) {
            (0, Some(fs)) => fs,
            _ => m.start,
        };
        let mut child_path = path.to_vec();
        child_path.push(key);
        let child_is_container = matches!(src.as_bytes().get(m.vs), Some(b'[') | Some(b'{'));
        if child_is_container && depth < 64 {
            let rendered = render_value(src, m.vs, m.ve, "");
            if tokens.count(&rendered) > limit.saturating_mul(2)
                && descend(
                    src,
                    m.vs,
                    Some(span_start),
                    &child_path,
                    limit,
                    tokens,
                    out,
                    depth + 1,
                )
            {
                continue;
            }
        }
        let how = if is_array {
            RenderAs::Relative
        } else {
            RenderAs::Keyed
        };
        out.push(leaf(src, span_start, m.vs, m.ve, child_path, how, tokens));
    }
    true
}

/// Groups consecutive sibling records up to the limit into chunks.
fn group(records: &[Record], limit: usize, sep: &str) -> Vec<Chunk> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < records.len() {
        let r = &records[i];
        let parent = &r.path[..r.path.len().saturating_sub(1)];
        let mut j = i + 1;
        let mut total = r.tokens;
        if !r.raw && !r.path.is_empty() {
            while j < records.len() {
                let q = &records[j];
                if q.raw
                    || q.path.is_empty()
                    || &q.path[..q.path.len() - 1] != parent
                    || total + q.tokens > limit
                {
                    break;
                }
                total += q.tokens;
                j += 1;
            }
        }
        if j == i + 1 {
            out.push(chunk_with_text(r.start, r.end, &r.path, r.text.clone()));
        } else {
            let members = &records[i..j];
            let mut path = parent.to_vec();
            let is_jsonl = r.path.len() == 1 && r.path[0].starts_with("line ");
            let label = if is_jsonl {
                format!(
                    "lines {}-{}",
                    members[0].label,
                    members[members.len() - 1].label
                )
            } else if r.label.starts_with('[') {
                format!("{}..{}", members[0].label, members[members.len() - 1].label)
            } else {
                members
                    .iter()
                    .map(|m| m.label.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            path.push(label);
            let text = members
                .iter()
                .map(|m| {
                    if is_jsonl {
                        m.text.as_str()
                    } else {
                        m.grouped_text.as_str()
                    }
                })
                .collect::<Vec<_>>()
                .join(sep);
            let end = members[members.len() - 1].end;
            out.push(chunk_with_text(r.start, end, &path, text));
        }
        i = j;
    }
    out
}

/// Appends a key to a path: bare when simple, JSON-quoted in brackets otherwise.
fn push_key(path: &mut String, key: &str) {
    let simple = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '-' || c == '$' || c == '@');
    if simple {
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(key);
    } else {
        path.push('[');
        path.push_str(&serde_json::Value::String(key.to_string()).to_string());
        path.push(']');
    }
}

/// A key rendered inside a path, as [`push_key`] appends it to an empty path.
fn format_key(key: &str) -> String {
    let mut s = String::new();
    push_key(&mut s, key);
    s
}

/// Renders the value at `vs..ve` as `path: value` lines under `prefix`.
pub(crate) fn render_value(src: &str, vs: usize, ve: usize, prefix: &str) -> String {
    let mut out = String::new();
    let mut path = prefix.to_string();
    render_into(src, vs, ve, &mut path, &mut out, 0);
    out.pop(); // the last line's newline
    out
}

fn push_line(out: &mut String, path: &str, value: &str) {
    if !path.is_empty() {
        out.push_str(path);
        out.push_str(": ");
    }
    out.push_str(value);
    out.push('\n');
}

/// Renders the value at `vs..ve` as lines under `path`; `path` is restored on return.
fn render_into(src: &str, vs: usize, ve: usize, path: &mut String, out: &mut String, depth: usize) {
    let b = src.as_bytes();
    match b.get(vs) {
        Some(b'{') | Some(b'[') if depth < 200 => {
            let is_array = b[vs] == b'[';
            let members = members(b, vs).unwrap_or_default();
            if members.is_empty() {
                push_line(out, path, if is_array { "[]" } else { "{}" });
                return;
            }
            let len = path.len();
            for (i, m) in members.iter().enumerate() {
                match m.key {
                    Some((ks, ke)) => push_key(path, &decode_string(src, ks, ke)),
                    None => {
                        use std::fmt::Write;
                        let _ = write!(path, "[{i}]");
                    }
                }
                render_into(src, m.vs, m.ve, path, out, depth + 1);
                path.truncate(len);
            }
        }
        Some(b'"') => push_line(out, path, &decode_string(src, vs, ve)),
        _ => push_line(out, path, src.get(vs..ve).unwrap_or("").trim()),
    }
}

/// The text of the JSON string at `s..e` (quotes included): sliced when it holds no
/// escape, decoded by serde_json otherwise.
fn decode_string(src: &str, s: usize, e: usize) -> std::borrow::Cow<'_, str> {
    let raw = src.get(s..e).unwrap_or("");
    match raw
        .strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .filter(|inner| !inner.contains('\\'))
    {
        Some(inner) => inner.into(),
        None => serde_json::from_str::<String>(raw)
            .unwrap_or_else(|_| raw.trim_matches('"').to_string())
            .into(),
    }
}

/// A member of an array (no key) or object (key span), with its full span
/// (`start` is the key for object members) and its value span.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Member {
    pub start: usize,
    pub key: Option<(usize, usize)>,
    pub vs: usize,
    pub ve: usize,
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | b'\r') {
        i += 1;
    }
    i
}

/// End (exclusive) of the string starting with the quote at `i`.
fn string_end(b: &[u8], i: usize) -> Option<usize> {
    let mut j = i + 1;
    while j < b.len() {
        match b[j] {
            b'\\' => j += 2,
            b'"' => return Some(j + 1),
            _ => j += 1,
        }
    }
    None
}

/// End (exclusive) of the JSON value starting at `i`, tracking strings,
/// escapes and nesting.
pub(crate) fn value_end(b: &[u8], i: usize) -> Option<usize> {
    match *b.get(i)? {
        b'"' => string_end(b, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            while j < b.len() {
                match b[j] {
                    b'"' => {
                        j = string_end(b, j)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth = depth.checked_sub(1)?;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            None
        }
        _ => {
            let mut j = i;
            while j < b.len() && !matches!(b[j], b',' | b']' | b'}' | b' ' | b'\t' | b'\n' | b'\r')
            {
                j += 1;
            }
            (j > i).then_some(j)
        }
    }
}

/// Members of the container opening at `open`; `None` if it is not well formed.
pub(crate) fn members(b: &[u8], open: usize) -> Option<Vec<Member>> {
    let close = match b.get(open)? {
        b'[' => b']',
        b'{' => b'}',
        _ => return None,
    };
    let is_obj = close == b'}';
    let mut out = Vec::new();
    let mut i = skip_ws(b, open + 1);
    if b.get(i) == Some(&close) {
        return Some(out);
    }
    loop {
        let start = i;
        let key = if is_obj {
            if b.get(i) != Some(&b'"') {
                return None;
            }
            let ke = string_end(b, i)?;
            i = skip_ws(b, ke);
            if b.get(i) != Some(&b':') {
                return None;
            }
            i = skip_ws(b, i + 1);
            Some((start, ke))
        } else {
            None
        };
        let vs = i;
        let ve = value_end(b, vs)?;
        out.push(Member { start, key, vs, ve });
        i = skip_ws(b, ve);
        match b.get(i) {
            Some(b',') => i = skip_ws(b, i + 1),
            Some(c) if *c == close => return Some(out),
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::ApproxTokens;

    fn opts(limit: usize) -> IngestOptions {
        IngestOptions {
            chunk_tokens: limit,
            ..IngestOptions::default()
        }
    }

    #[test]
    fn scanner_finds_member_spans() {
        let s = r#"[ {"a": "x,]}\"y"}, 2 , "s" ]"#;
        let m = members(s.as_bytes(), 0).unwrap_or_default();
        let spans: Vec<&str> = m.iter().map(|m| &s[m.vs..m.ve]).collect();
        assert_eq!(spans, vec![r#"{"a": "x,]}\"y"}"#, "2", r#""s""#]);
    }

    #[test]
    fn array_of_records_one_chunk_each_when_large() {
        let s = r#"[
  {"name": "Builder", "tags": ["creational", "api"], "details": {"summary": "Step by step"}},
  {"name": "Visitor", "tags": ["behavioural"]}
]"#;
        let (c, notes) = split(s, &opts(12), &ApproxTokens);
        assert!(notes.is_empty());
        assert_eq!(c.len(), 2);
        assert_eq!(
            c[0].text,
            "name: Builder\ntags[0]: creational\ntags[1]: api\ndetails.summary: Step by step"
        );
        assert_eq!(c[0].heading_path, vec!["[0]".to_string()]);
        assert_eq!((c[0].line_start, c[0].line_end), (2, 2));
        assert!(s[c[1].byte_start..c[1].byte_end].starts_with("{\"name\": \"Visitor\""));
        assert_eq!(c[1].line_start, 3);
    }

    #[test]
    fn small_records_are_grouped() {
        let s = r#"[{"a":1},{"a":2},{"a":3}]"#;
        let (c, _) = split(s, &opts(100), &ApproxTokens);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].heading_path, vec!["[0]..[2]".to_string()]);
        assert_eq!(c[0].text, "[0].a: 1\n[1].a: 2\n[2].a: 3");
        assert_eq!((c[0].byte_start, c[0].byte_end), (1, s.len() - 1));
    }

    #[test]
    fn object_keys_grouped_and_descended() {
        let big: Vec<String> = (0..40).map(|i| format!("\"item number {i}\"")).collect();
        let s = format!(
            "{{\"title\": \"T\", \"n\": 3, \"list\": [{}]}}",
            big.join(", ")
        );
        let (c, _) = split(&s, &opts(20), &ApproxTokens);
        assert_eq!(c[0].heading_path, vec!["title, n".to_string()]);
        assert_eq!(c[0].text, "title: T\nn: 3");
        assert!(c[1].heading_path[0] == "list");
        assert!(c[1].text.starts_with("[0]: item number 0"));
        assert!(c.len() > 2);
    }

    #[test]
    fn malformed_json_falls_back_to_text() {
        let s = "{\n  \"a\": 1,\n  \"b\": ,\n}\n";
        let (c, notes) = split(s, &opts(100), &ApproxTokens);
        assert_eq!(notes.len(), 1);
        assert!(
            notes[0].starts_with("malformed JSON at line 3, column 8: "),
            "{}",
            notes[0]
        );
        assert!(notes[0].ends_with("; read as plain text"));
        assert_eq!(c[0].text, s.trim());
    }

    #[test]
    fn top_level_scalar_and_empty_containers() {
        let (c, _) = split("  \"hello\"  ", &opts(100), &ApproxTokens);
        assert_eq!(c[0].text, "hello");
        assert_eq!((c[0].byte_start, c[0].byte_end), (2, 9));
        let (c, _) = split("[]", &opts(100), &ApproxTokens);
        assert_eq!(c[0].text, "[]");
        let (c, _) = split("{\"a\": {}, \"b\": []}", &opts(100), &ApproxTokens);
        assert_eq!(c[0].text, "a: {}\nb: []");
    }

    #[test]
    fn odd_keys_are_quoted() {
        let s = r#"{"a b": {"c.d": 1}}"#;
        let (c, _) = split(s, &opts(100), &ApproxTokens);
        assert_eq!(c[0].text, r#"["a b"]["c.d"]: 1"#);
    }

    #[test]
    fn jsonl_lines_and_bad_line() {
        let s = "{\"a\":1}\n{\"a\":2}\r\n\nnot json\n{\"b\":[true]}";
        let (c, notes) = split_lines(s, &opts(100), &ApproxTokens);
        assert_eq!(notes.len(), 1);
        assert!(
            notes[0].starts_with("malformed JSON on line 4, column 2"),
            "{}",
            notes[0]
        );
        assert_eq!(c.len(), 3);
        assert_eq!(c[0].heading_path, vec!["lines 1-2".to_string()]);
        assert_eq!(c[0].text, "a: 1\n\na: 2");
        assert_eq!((c[0].line_start, c[0].line_end), (1, 2));
        assert_eq!(c[1].text, "not json");
        assert_eq!(c[1].line_start, 4);
        assert_eq!(c[2].text, "b[0]: true");
        assert_eq!(c[2].heading_path, vec!["line 5".to_string()]);
        assert_eq!(
            c.iter().map(|c| c.ordinal).collect::<Vec<_>>(),
            vec![0, 1, 2]
        );
    }
}
