//! The author's prose in a chunk, and the whole sentence around a quote of it: what a page
//! can cite in the author's words. Pure functions.

use super::quotes::{fenced_lines, is_link_definition, opens_list_item, strip_line_markers};
use crate::ingest::FileKind;

/// The prose of a chunk: all of a markdown or text chunk, the comments of source code (its
/// code lines become paragraph breaks); None for records, whose lines are not sentences.
pub fn prose_of(kind: FileKind, text: &str) -> Option<String> {
    match kind {
        FileKind::Markdown | FileKind::Text => Some(text.to_string()),
        FileKind::Rust => Some(
            text.lines()
                .map(|l| {
                    if l.trim_start().starts_with("//") {
                        l
                    } else {
                        ""
                    }
                })
                .collect::<Vec<_>>()
                .join("\n"),
        ),
        FileKind::Json | FileKind::Jsonl => None,
    }
}

/// The sentences of a paragraph (its text on one line): split after `.`, `?` or `!` followed
/// by a space and a capital, a digit, a code span or an opening quote; not inside a code span.
pub fn sentences(paragraph: &str) -> Vec<String> {
    let p = paragraph.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out = Vec::new();
    let mut start = 0;
    let mut in_code = false;
    for (i, c) in p.char_indices() {
        if c == '`' {
            in_code = !in_code;
        }
        if !in_code && ends_sentence(&p[..i], c, &p[i + c.len_utf8()..]) {
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

/// Whether `c`, between `before` and `rest`, ends a sentence: a `.`, `?` or `!` followed by
/// white space and a capital, a digit, a code span, an opening quote or emphasis; not the
/// period of a short abbreviation ("e.g. Foo", "i.e. Bar"). The one rule [`sentences`] and
/// `kb::material`'s source text read sentences by.
pub fn ends_sentence(before: &str, c: char, rest: &str) -> bool {
    if !matches!(c, '.' | '?' | '!') || !rest.starts_with(char::is_whitespace) {
        return false;
    }
    let capital = rest
        .trim_start()
        .chars()
        .next()
        .is_some_and(|n| n.is_uppercase() || n.is_ascii_digit() || "`\"“(*".contains(n));
    let abbreviation = before
        .rsplit(char::is_whitespace)
        .next()
        .is_some_and(|w| w.len() <= 3 && w.contains('.'));
    capital && !abbreviation
}

/// The whole sentence of `text` around `evidence` (a line's part, as the grammar lets a model
/// quote it), joined across line breaks and list markers: what the author says. None when the
/// evidence is not found in the text's prose or the sentence is too long to quote.
pub fn passage(text: &str, evidence: &str) -> Option<String> {
    let evidence = one_line(evidence);
    if evidence.len() < 8 {
        return None;
    }
    // The text's paragraphs, each read as one line when it ends: a list item is a paragraph
    // of its own, and a link definition (`[x]: https://…`) is not prose.
    let mut paragraph = String::new();
    let lines = fenced_lines(text).map(Some).chain([None]);
    for line in lines {
        let prose = line
            .filter(|&(l, in_code)| !in_code && !is_link_definition(l))
            .map(|(l, _)| (strip_line_markers(l), opens_list_item(l)))
            .filter(|(t, _)| !t.is_empty());
        if prose.is_none_or(|(_, item)| item) {
            if let Some(found) = sentence_around(&one_line(&paragraph), &evidence) {
                return found;
            }
            paragraph.clear();
        }
        if let Some((t, _)) = prose {
            paragraph.push_str(t);
            paragraph.push(' ');
        }
    }
    None
}

/// A text's words joined by one space.
fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The sentence of a paragraph (on one line) around `evidence`: None when the evidence is not
/// in it, `Some(None)` when it is but its sentence is too long to quote.
fn sentence_around(para: &str, evidence: &str) -> Option<Option<String>> {
    let at = para.find(evidence)?;
    let stops = |c: char| matches!(c, '.' | '?' | '!');
    let start = para[..at]
        .char_indices()
        .rfind(|&(i, c)| stops(c) && para[i + 1..].starts_with(' '))
        .map_or(0, |(i, _)| i + 2);
    let from = at + evidence.len();
    let end = para[from..]
        .char_indices()
        .find(|&(i, c)| {
            stops(c) && (para[from + i + 1..].is_empty() || para[from + i + 1..].starts_with(' '))
        })
        .map_or(para.len(), |(i, c)| from + i + c.len_utf8());
    let sentence = para[start.min(at)..end].trim();
    Some((sentence.len() <= 400).then(|| sentence.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn a_passage_is_the_authors_whole_sentence_around_the_evidence() {
        let text = "## Guards\n\nSome intro. A guard value restores the old state\nwhen it is dropped, even on panic. More text.\n\n```rust\nlet g = Guard::new();\n```\n";
        assert_eq!(
            passage(text, "A guard value restores the old state").as_deref(),
            Some("A guard value restores the old state when it is dropped, even on panic.")
        );
        assert_eq!(
            passage(text, "let g = Guard::new();"),
            None,
            "code is not prose"
        );
        let list = "- **Cow**: borrows when it can\n  and owns when it must.\n";
        assert_eq!(
            passage(list, "and owns when it must.").as_deref(),
            Some("**Cow**: borrows when it can and owns when it must.")
        );
    }

    #[test]
    fn a_passage_stays_in_its_list_item_and_never_quotes_a_link_definition() {
        let text = "## See also\n\n- The constructor idiom is another way to make instances\n\
                    - The [`Default`] documentation lists its implementors\n\n\
                    [constructor]: ctor.md\n[`Default`]: https://doc.rust-lang.org/std/default/\n";
        assert_eq!(
            passage(text, "The constructor idiom is another way").as_deref(),
            Some("The constructor idiom is another way to make instances")
        );
        assert_eq!(
            passage(text, "https://doc.rust-lang.org/std/default/"),
            None
        );
        assert_eq!(passage(text, "[constructor]: ctor.md"), None);
        // Nor is one offered as a quote.
        let quoted = crate::text::quotes::sentences(text);
        assert!(quoted.iter().all(|s| !s.contains("https://")), "{quoted:?}");
        assert!(quoted.iter().any(|s| s.contains("constructor idiom")));
    }

    #[test]
    fn only_prose_is_quoted_comments_of_code_and_no_records() {
        let code = "/// Restores the depth\n/// when dropped.\nimpl Drop for Indent { fn drop(&mut self) {} }\n";
        let prose = prose_of(FileKind::Rust, code).unwrap();
        assert_eq!(
            passage(&prose, "Restores the depth").as_deref(),
            Some("Restores the depth when dropped.")
        );
        assert_eq!(passage(&prose, "impl Drop for Indent"), None);
        assert_eq!(prose_of(FileKind::Json, "[0].name: x"), None);
    }
}
