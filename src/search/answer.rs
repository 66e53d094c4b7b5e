//! `quarry ask`: retrieve, then let the chat model choose, under a grammar, the retrieved
//! sentences that answer the question (an extractive answer: a 135M model chooses far better
//! than it writes). The grammar lets each quote name only a retrieved passage and only that
//! passage's sentences; every citation is still checked against the passages after the reply,
//! and printed as `path:line`. When nothing retrieved is near enough, no model is asked.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

use super::{Hit, Mode, Retriever, SearchError};
use crate::llm::{grammar, Backend, LlmError, Message, Request};
use crate::queue::retrieval::RetrievedChunk;
use crate::text::quotes::{line_kinds, LineKind};

/// Sentences offered to the model, the nearest the question among the retrieved passages.
pub const MAX_CANDIDATES: usize = 8;
/// Sentences an answer may quote.
pub const MAX_QUOTES: usize = 3;

#[derive(Debug, thiserror::Error)]
pub enum AskError {
    #[error(transparent)]
    Search(#[from] SearchError),
    #[error("the chat model {model} failed: {source}")]
    Model {
        model: String,
        #[source]
        source: LlmError,
    },
    #[error("cannot build the answer grammar: {0}")]
    Grammar(String),
}

/// A sentence of a passage, with the file line it is on.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Sentence {
    pub text: String,
    pub line_start: i64,
    pub line_end: i64,
    pub similarity: f32,
}

/// A retrieved chunk as the model sees it: a label (`C1`) and its candidate sentences.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Passage {
    pub label: String,
    pub chunk: RetrievedChunk,
    pub similarity: Option<f32>,
    pub sentences: Vec<Sentence>,
}

impl Passage {
    /// `path:first-last` of the whole passage.
    pub fn location(&self) -> String {
        format!(
            "{}:{}-{}",
            display_path(&self.chunk).display(),
            self.chunk.line_start,
            self.chunk.line_end
        )
    }
}

/// A quote that passed the checks.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Quote {
    pub label: String,
    pub chunk_id: i64,
    pub path: PathBuf,
    pub line_start: i64,
    pub line_end: i64,
    pub sentence: String,
}

impl Quote {
    fn new(p: &Passage, s: &Sentence) -> Quote {
        Quote {
            label: p.label.clone(),
            chunk_id: p.chunk.id,
            path: display_path(&p.chunk),
            line_start: s.line_start,
            line_end: s.line_end,
            sentence: s.text.clone(),
        }
    }

    /// `path:line`, or `path:first-last` for a sentence over several lines.
    pub fn location(&self) -> String {
        if self.line_end > self.line_start {
            format!(
                "{}:{}-{}",
                self.path.display(),
                self.line_start,
                self.line_end
            )
        } else {
            format!("{}:{}", self.path.display(), self.line_start)
        }
    }
}

/// A quote the checks refused, with why.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Refused {
    pub label: String,
    pub sentence: String,
    pub reason: String,
}

/// What kind of answer this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AnswerKind {
    /// Sentences of the notes chosen by the model, each citation checked.
    Extractive,
    /// The model's choice did not check out: the sentence nearest the question instead.
    Nearest,
    /// Nothing retrieved is near enough the question; no model was asked.
    NothingRelevant,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct Answer {
    pub question: String,
    pub kind: AnswerKind,
    pub quotes: Vec<Quote>,
    pub refused: Vec<Refused>,
    pub passages: Vec<Passage>,
    /// The nearest chunk's cosine similarity, and the least that is answered.
    pub best_similarity: f32,
    pub min_similarity: f32,
    pub model: String,
    pub reply: String,
}

#[derive(Clone, Debug)]
pub struct AskOptions {
    pub top_k: usize,
    pub min_similarity: f32,
    /// A quote after the first needs at least this similarity of its own sentence to the
    /// question (`weak_quotes`).
    pub min_sentence_similarity: f32,
    pub timeout: Duration,
    pub max_tokens: u32,
}

impl Default for AskOptions {
    fn default() -> Self {
        AskOptions {
            top_k: 5,
            min_similarity: 0.2,
            min_sentence_similarity: 0.2,
            timeout: Duration::from_secs(300),
            max_tokens: 400,
        }
    }
}

/// The file of a chunk as a user finds it: under the current folder when it is there.
pub fn display_path(chunk: &RetrievedChunk) -> PathBuf {
    let full = Path::new(&chunk.root).join(&chunk.rel_path);
    std::env::current_dir()
        .ok()
        .and_then(|cwd| full.strip_prefix(&cwd).ok().map(Path::to_path_buf))
        .unwrap_or(full)
}

/// Longest sentence offered, in bytes; a longer one is cut at a word boundary.
const MAX_SENTENCE: usize = 400;
/// Shortest sentence offered: shorter ones ("See below.") answer nothing.
const MIN_SENTENCE: usize = 20;

/// The prose sentences of a chunk, each with the file lines it spans. Wrapped lines of a
/// paragraph are read as one text, so a sentence is whole wherever the author broke the line;
/// headings, code (fenced blocks, and the code lines of a source file) and blank lines end a
/// paragraph; comment markers, list markers and quote markers are not part of a sentence.
/// A chunk without prose (a JSON record, say) offers its lines as `text::quotes` reads them.
pub fn sentences_of(chunk: &RetrievedChunk) -> Vec<(String, i64, i64)> {
    let source_code = chunk.rel_path.ends_with(".rs");
    let records = chunk.rel_path.ends_with(".json") || chunk.rel_path.ends_with(".jsonl");
    let mut out: Vec<(String, i64, i64)> = Vec::new();
    let mut words: Vec<(&str, i64)> = Vec::new();
    for (i, (raw, kind)) in line_kinds(&chunk.text).enumerate() {
        let line_no = chunk.line_start + i as i64;
        let t = raw.trim();
        let prose = if records || matches!(kind, LineKind::Code | LineKind::Markup) {
            None
        } else if let Some(c) = t.strip_prefix("//") {
            Some(c.trim_start_matches(['/', '!']).trim())
        } else if source_code || kind.heading().is_some() || t.starts_with('|') {
            None
        } else {
            Some(t)
        };
        let Some(mut p) = prose.filter(|p| !p.is_empty()) else {
            flush(&mut words, &mut out);
            continue;
        };
        // A list item or a quote starts a paragraph of its own.
        for marker in ["- ", "* ", "+ ", "> "] {
            if let Some(rest) = p.strip_prefix(marker) {
                flush(&mut words, &mut out);
                p = rest.trim();
            }
        }
        let numbered = p
            .split_once(". ")
            .filter(|(n, _)| !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()));
        if let Some((_, rest)) = numbered {
            flush(&mut words, &mut out);
            p = rest.trim();
        }
        words.extend(p.split_whitespace().map(|w| (w, line_no)));
    }
    flush(&mut words, &mut out);
    if out.is_empty() {
        let lines: Vec<&str> = chunk.text.lines().collect();
        for s in crate::text::quotes::sentences(&chunk.text) {
            if let Some(i) = lines.iter().position(|l| l.contains(s.as_str())) {
                let line = chunk.line_start + i as i64;
                out.push((s, line, line));
            }
        }
    }
    out
}

/// Splits a paragraph's words into sentences (ended by `.`, `?` or `!`) and empties it.
fn flush(words: &mut Vec<(&str, i64)>, out: &mut Vec<(String, i64, i64)>) {
    let mut start = 0;
    for i in 0..words.len() {
        let w = words[i].0;
        let last = i + 1 == words.len();
        if last || (w.ends_with(['.', '?', '!']) && !w.ends_with("..") && w.len() > 2) {
            let part = &words[start..=i];
            start = i + 1;
            let mut text = String::new();
            let mut end_line = part[0].1;
            for (w, l) in part {
                if text.len() + w.len() + 1 > MAX_SENTENCE {
                    break;
                }
                if !text.is_empty() {
                    text.push(' ');
                }
                text.push_str(w);
                end_line = *l;
            }
            if text.len() >= MIN_SENTENCE
                && text.chars().any(char::is_alphabetic)
                && !out.iter().any(|o| o.0 == text)
            {
                out.push((text, part[0].1, end_line));
            }
        }
    }
    words.clear();
}

/// The passages offered to the model: the hits, labelled `C1`.., with the `MAX_CANDIDATES`
/// sentences nearest the question among them all.
pub fn passages(
    hits: &[Hit],
    question_vector: &[f32],
    embed: impl Fn(&[&str]) -> Result<Vec<Vec<f32>>, SearchError>,
) -> Result<Vec<Passage>, SearchError> {
    let all: Vec<(usize, String, i64, i64)> = hits
        .iter()
        .enumerate()
        .flat_map(|(i, h)| {
            sentences_of(&h.chunk)
                .into_iter()
                .map(move |(s, a, b)| (i, s, a, b))
        })
        .collect();
    let texts: Vec<&str> = all.iter().map(|(_, s, _, _)| s.as_str()).collect();
    let vectors = embed(&texts)?;
    let mut scored: Vec<(usize, f32)> = vectors
        .iter()
        .enumerate()
        .map(|(i, v)| (i, super::index::dot(v, question_vector)))
        .collect();
    scored.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    scored.truncate(MAX_CANDIDATES);
    scored.sort_by_key(|s| s.0); // back in passage and line order
    let mut out: Vec<Passage> = hits
        .iter()
        .enumerate()
        .map(|(i, h)| Passage {
            label: format!("C{}", i + 1),
            chunk: h.chunk.clone(),
            similarity: h.similarity,
            sentences: Vec::new(),
        })
        .collect();
    for (i, sim) in scored {
        let (p, s, a, b) = &all[i];
        out[*p].sentences.push(Sentence {
            text: s.clone(),
            line_start: *a,
            line_end: *b,
            similarity: sim,
        });
    }
    Ok(out)
}

/// The reply's schema: `{"answer": [{"source": label, "sentence": one of its sentences}]}`,
/// where each label allows only its own passage's sentences. None: no passage has one.
pub fn schema(passages: &[Passage]) -> Option<Value> {
    let items: Vec<Value> = passages
        .iter()
        .filter(|p| !p.sentences.is_empty())
        .map(|p| {
            json!({
                "type": "object",
                "properties": {
                    "source": {"const": p.label},
                    "sentence": {"enum": p.sentences.iter().map(|s| s.text.clone()).collect::<Vec<_>>()},
                },
                "required": ["source", "sentence"],
                "additionalProperties": false,
            })
        })
        .collect();
    let item = match items.len() {
        0 => return None,
        1 => items.into_iter().next()?,
        _ => json!({"anyOf": items}),
    };
    Some(json!({
        "type": "object",
        "properties": {
            "answer": {"type": "array", "minItems": 1, "maxItems": MAX_QUOTES, "items": item},
        },
        "required": ["answer"],
        "additionalProperties": false,
    }))
}

/// The messages: the passages' sentences under their labels, then the question.
pub fn messages(question: &str, passages: &[Passage]) -> Vec<Message> {
    let mut notes = String::new();
    for p in passages.iter().filter(|p| !p.sentences.is_empty()) {
        notes.push_str(&format!(
            "[{}] {} (lines {}-{})\n",
            p.label, p.chunk.rel_path, p.chunk.line_start, p.chunk.line_end
        ));
        for s in &p.sentences {
            notes.push_str(&format!("- {}\n", s.text));
        }
        notes.push('\n');
    }
    vec![
        Message::system(
            "You answer questions about the user's notes by choosing sentences from them. \
             Reply with JSON only.",
        ),
        Message::user(format!(
            "Notes:\n{notes}Question: {question}\n\nChoose the one to {MAX_QUOTES} sentences \
             above that best answer the question, copied exactly, each with the label of its \
             notes. Reply as {{\"answer\": [{{\"source\": \"C1\", \"sentence\": \"...\"}}]}}."
        )),
    ]
}

/// Checks a reply's citations against the passages: each quote must name a passage that was
/// retrieved and copy one of that passage's sentences. Repeated quotes count once.
pub fn check(reply: &str, passages: &[Passage]) -> (Vec<Quote>, Vec<Refused>) {
    let mut quotes: Vec<Quote> = Vec::new();
    let mut refused = Vec::new();
    let items = match serde_json::from_str::<Value>(reply.trim()) {
        Ok(v) => v
            .get("answer")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default(),
        Err(e) => {
            refused.push(Refused {
                label: String::new(),
                sentence: String::new(),
                reason: format!("the reply is not JSON: {e}"),
            });
            return (quotes, refused);
        }
    };
    for item in items {
        let label = item
            .get("source")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let sentence = item
            .get("sentence")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let refuse = |reason: String| Refused {
            label: label.clone(),
            sentence: sentence.clone(),
            reason,
        };
        let Some(p) = passages.iter().find(|p| p.label == label) else {
            refused.push(refuse(format!("cites {label:?}, which was not retrieved")));
            continue;
        };
        let Some(s) = p.sentences.iter().find(|s| s.text == sentence) else {
            let elsewhere = passages
                .iter()
                .find(|o| o.sentences.iter().any(|s| s.text == sentence));
            refused.push(refuse(match elsewhere {
                Some(o) => format!("the sentence is in {}, not in {label}", o.label),
                None => format!("the sentence is not one of {label}'s"),
            }));
            continue;
        };
        if quotes.iter().any(|q| q.sentence == s.text) {
            continue;
        }
        quotes.push(Quote::new(p, s));
    }
    (quotes, refused)
}

/// The second floor, per sentence: the first quote stands (the passage passed
/// `min_similarity`), each later one is kept only when its own sentence is at least `floor`
/// near the question. A model asked for up to three quotes often adds a weak one (a record
/// line of a near passage); it is refused, with its similarity.
pub fn weak_quotes(
    quotes: Vec<Quote>,
    passages: &[Passage],
    floor: f32,
) -> (Vec<Quote>, Vec<Refused>) {
    let similarity = |q: &Quote| {
        passages
            .iter()
            .filter(|p| p.label == q.label)
            .flat_map(|p| p.sentences.iter())
            .find(|s| s.text == q.sentence)
            .map_or(f32::MIN, |s| s.similarity)
    };
    let mut kept = Vec::new();
    let mut refused = Vec::new();
    for (i, q) in quotes.into_iter().enumerate() {
        let s = similarity(&q);
        if i == 0 || s >= floor {
            kept.push(q);
        } else {
            refused.push(Refused {
                label: q.label.clone(),
                sentence: q.sentence.clone(),
                reason: format!(
                    "a further quote only {s:.2} near the question (at least {floor:.2}, [search] min_sentence_similarity)"
                ),
            });
        }
    }
    (kept, refused)
}

/// Answers `question` from the retrieved chunks with `backend`. `stream` receives the reply's
/// text as it is generated.
pub async fn ask(
    retriever: &Retriever<'_>,
    backend: &dyn Backend,
    question: &str,
    opts: &AskOptions,
    stream: Option<tokio::sync::mpsc::UnboundedSender<String>>,
) -> Result<Answer, AskError> {
    let question = question.trim();
    let qv = retriever.embed_query(question)?;
    let hits = retriever.search(question, opts.top_k, Mode::Hybrid).await?;
    let best = hits
        .iter()
        .filter_map(|h| h.similarity)
        .fold(f32::MIN, f32::max);
    let mut answer = Answer {
        question: question.to_string(),
        kind: AnswerKind::NothingRelevant,
        quotes: Vec::new(),
        refused: Vec::new(),
        passages: Vec::new(),
        best_similarity: best.max(-1.0),
        min_similarity: opts.min_similarity,
        model: backend.name(),
        reply: String::new(),
    };
    if hits.is_empty() || best < opts.min_similarity {
        return Ok(answer);
    }
    let embedder = retriever.embedder();
    answer.passages = passages(&hits, &qv, |t| Ok(embedder.embed_all(t, 32, |_| {})?))?;
    let Some(schema) = schema(&answer.passages) else {
        return Ok(answer);
    };
    let gbnf = grammar::schema_to_gbnf(&schema).map_err(|e| AskError::Grammar(e.to_string()))?;
    let mut req = Request::new(messages(question, &answer.passages));
    req.grammar = Some(gbnf);
    req.sampling.max_tokens = opts.max_tokens;
    req.timeout = opts.timeout;
    req.stream = stream;
    let done = backend
        .generate(req)
        .await
        .map_err(|source| AskError::Model {
            model: backend.name(),
            source,
        })?;
    answer.reply = done.text;
    let (quotes, mut refused) = check(&answer.reply, &answer.passages);
    let (quotes, weak) = weak_quotes(quotes, &answer.passages, opts.min_sentence_similarity);
    refused.extend(weak);
    answer.quotes = quotes;
    answer.refused = refused;
    if answer.quotes.is_empty() {
        // The nearest sentence, so the user still sees where to read.
        let nearest = answer
            .passages
            .iter()
            .flat_map(|p| p.sentences.iter().map(move |s| (p, s)))
            .max_by(|a, b| a.1.similarity.total_cmp(&b.1.similarity));
        if let Some((p, s)) = nearest {
            answer.kind = AnswerKind::Nearest;
            answer.quotes.push(Quote::new(p, s));
        }
    } else {
        answer.kind = AnswerKind::Extractive;
    }
    Ok(answer)
}

/// Finds the quotes of a reply that is still being generated: each complete `"sentence"`
/// value, once, with the `"source"` before it. For printing an answer as it streams.
#[derive(Debug, Default)]
pub struct QuoteStream {
    buf: String,
    cursor: usize,
}

impl QuoteStream {
    /// Adds a piece of the reply; returns the quotes completed by it: (source, sentence).
    pub fn push(&mut self, piece: &str) -> Vec<(String, String)> {
        self.buf.push_str(piece);
        let mut out = Vec::new();
        while let Some(rel) = self.buf[self.cursor..].find("\"sentence\"") {
            let key = self.cursor + rel;
            let Some((sentence, end)) = string_value(&self.buf, key + "\"sentence\"".len()) else {
                break; // not complete yet
            };
            let source = self.buf[..key]
                .rfind("\"source\"")
                .and_then(|k| string_value(&self.buf, k + "\"source\"".len()))
                .map(|(s, _)| s)
                .unwrap_or_default();
            out.push((source, sentence));
            self.cursor = end;
        }
        out
    }
}

/// The JSON string after `: ` at `at` in `buf`, and the index after it, when it is complete.
fn string_value(buf: &str, at: usize) -> Option<(String, usize)> {
    let rest = &buf[at..];
    let colon = rest.find(':')?;
    if !rest[..colon].trim().is_empty() {
        return None;
    }
    let after = &rest[colon + 1..];
    let open = after.find('"')?;
    if !after[..open].trim().is_empty() {
        return None;
    }
    let body = &after[open + 1..];
    let mut escaped = false;
    for (i, c) in body.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => {
                let lit = &after[open..open + 1 + i + 1];
                let s: String = serde_json::from_str(lit).ok()?;
                return Some((s, at + colon + 1 + open + 1 + i + 1));
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(id: i64, rel: &str, line_start: i64, text: &str) -> RetrievedChunk {
        RetrievedChunk {
            id,
            root: "/notes".into(),
            rel_path: rel.into(),
            line_start,
            line_end: line_start + text.lines().count() as i64 - 1,
            heading_path: Vec::new(),
            text: text.into(),
        }
    }

    fn passage(label: &str, c: RetrievedChunk) -> Passage {
        let sentences = sentences_of(&c)
            .into_iter()
            .map(|(text, line_start, line_end)| Sentence {
                text,
                line_start,
                line_end,
                similarity: 0.5,
            })
            .collect();
        Passage {
            label: label.into(),
            chunk: c,
            similarity: Some(0.5),
            sentences,
        }
    }

    fn two() -> Vec<Passage> {
        vec![
            passage(
                "C1",
                chunk(
                    10,
                    "own.md",
                    4,
                    "## Borrowing\n\nTake &str when you only read the text. Take String when you keep it.\n",
                ),
            ),
            passage(
                "C2",
                chunk(11, "guard.rs", 20, "/// A guard releases the lock when dropped.\npub struct Guard;\n"),
            ),
        ]
    }

    #[test]
    fn a_weak_further_quote_is_dropped_and_the_first_always_stands() {
        let mut p = two();
        p[0].sentences[0].similarity = 0.25; // the first quote: stands below the floor too
        p[0].sentences[1].similarity = 0.55;
        p[1].sentences[0].similarity = 0.12; // a weak second citation
        let q = |p: &Passage, i: usize| Quote::new(p, &p.sentences[i]);
        let quotes = vec![q(&p[0], 0), q(&p[1], 0), q(&p[0], 1)];
        let (kept, refused) = weak_quotes(quotes, &p, 0.3);
        assert_eq!(
            kept.iter().map(|k| k.sentence.as_str()).collect::<Vec<_>>(),
            [
                "Take &str when you only read the text.",
                "Take String when you keep it."
            ]
        );
        assert_eq!(refused.len(), 1);
        assert_eq!(refused[0].label, "C2");
        assert!(refused[0].reason.contains("0.12"), "{}", refused[0].reason);
        let (kept, refused) = weak_quotes(Vec::new(), &p, 0.3);
        assert!(kept.is_empty() && refused.is_empty());
    }

    #[test]
    fn sentences_know_their_file_lines() {
        let p = two();
        let lines = |p: &Passage| {
            p.sentences
                .iter()
                .map(|s| (s.text.clone(), s.line_start, s.line_end))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            lines(&p[0]),
            [
                ("Take &str when you only read the text.".to_string(), 6, 6),
                ("Take String when you keep it.".to_string(), 6, 6)
            ]
        );
        // A doc comment is prose; the code under it is not.
        assert_eq!(
            lines(&p[1]),
            [(
                "A guard releases the lock when dropped.".to_string(),
                20,
                20
            )]
        );
    }

    /// Read by line, `#[derive(Debug)]` opening a sentence made it a heading, and a line of
    /// backticks inside a `~~~` block ended the block and read its code as prose.
    #[test]
    fn sentences_follow_the_markdown_blocks() {
        let text = "#[derive(Debug)] prints a struct field by field.\n~~~\n```\nlet shown = format!(\"{x:?}\");\n~~~\nUsage\n-----\nA tail sentence of some length.\n";
        let c = chunk(1, "notes.md", 1, text);
        assert_eq!(
            sentences_of(&c),
            [
                (
                    "#[derive(Debug)] prints a struct field by field.".to_string(),
                    1,
                    1
                ),
                ("A tail sentence of some length.".to_string(), 8, 8)
            ]
        );
    }

    #[test]
    fn a_wrapped_sentence_is_read_whole_and_spans_its_lines() {
        let text = "# Title\n\nLibrary functions should return `Result` and let the caller\ndecide. The `?` operator returns\nearly with the error.\n\n```rust\nlet x = f()?;\n```\n- A list item that is a sentence.\n- Another item, long enough to count.\n";
        let c = chunk(1, "notes.md", 10, text);
        assert_eq!(
            sentences_of(&c),
            [
                (
                    "Library functions should return `Result` and let the caller decide."
                        .to_string(),
                    12,
                    13
                ),
                (
                    "The `?` operator returns early with the error.".to_string(),
                    13,
                    14
                ),
                ("A list item that is a sentence.".to_string(), 19, 19),
                ("Another item, long enough to count.".to_string(), 20, 20),
            ]
        );
    }

    #[test]
    fn the_grammar_lets_a_label_name_only_its_own_sentences() {
        let p = two();
        let schema = schema(&p).unwrap();
        let ok = json!({"answer": [{"source": "C1", "sentence": "Take String when you keep it."}]});
        assert!(grammar::validate(&schema, &ok).is_ok());
        let crossed =
            json!({"answer": [{"source": "C2", "sentence": "Take String when you keep it."}]});
        assert!(grammar::validate(&schema, &crossed).is_err());
        let unknown =
            json!({"answer": [{"source": "C9", "sentence": "Take String when you keep it."}]});
        assert!(grammar::validate(&schema, &unknown).is_err());
        let gbnf = grammar::schema_to_gbnf(&schema).unwrap();
        assert!(gbnf.contains("C1") && gbnf.contains("C2"), "{gbnf}");
        assert!(!gbnf.contains("C3"));
        // No passage with a sentence: no schema, no question to the model.
        let mut empty = two();
        empty.iter_mut().for_each(|p| p.sentences.clear());
        assert!(super::schema(&empty).is_none());
    }

    #[test]
    fn every_citation_is_checked_against_the_passages() {
        let p = two();
        let reply = json!({"answer": [
            {"source": "C1", "sentence": "Take &str when you only read the text."},
            {"source": "C1", "sentence": "Take &str when you only read the text."},
            {"source": "C2", "sentence": "Take String when you keep it."},
            {"source": "C7", "sentence": "A guard releases the lock when dropped."},
            {"source": "C2", "sentence": "Made up by the model."},
            {"source": "C2", "sentence": "A guard releases the lock when dropped."}
        ]})
        .to_string();
        let (quotes, refused) = check(&reply, &p);
        assert_eq!(
            quotes.iter().map(|q| q.location()).collect::<Vec<_>>(),
            ["/notes/own.md:6", "/notes/guard.rs:20"]
        );
        assert_eq!(quotes[0].line_end, 6);
        assert_eq!(refused.len(), 3, "{refused:?}");
        assert!(refused[0].reason.contains("in C1, not in C2"));
        assert!(refused[1].reason.contains("not retrieved"));
        assert!(refused[2].reason.contains("not one of C2's"));
        let (quotes, refused) = check("not json", &p);
        assert!(quotes.is_empty());
        assert!(refused[0].reason.contains("not JSON"));
    }

    #[test]
    fn the_stream_yields_each_quote_once_when_it_is_complete() {
        let reply = r#"{"answer": [{"source": "C2", "sentence": "A \"guard\" drops."}, {"source":"C1","sentence":"Take it."}]}"#;
        let mut s = QuoteStream::default();
        let mut got = Vec::new();
        // Fed in pieces of 3 bytes (ASCII), as a model would stream it.
        for piece in reply.as_bytes().chunks(3) {
            got.extend(s.push(std::str::from_utf8(piece).unwrap()));
        }
        assert_eq!(
            got,
            [
                ("C2".to_string(), "A \"guard\" drops.".to_string()),
                ("C1".to_string(), "Take it.".to_string())
            ]
        );
    }
}
