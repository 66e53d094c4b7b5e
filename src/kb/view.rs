//! What the page templates see: the `Kb` snapshot made into plain values, one struct per
//! page kind. Every string is ready to print as markdown: names escaped, model prose passed
//! through `prose`, links percent-encoded, citations built here. Templates only place these
//! values; the escaping never leaves Rust. Pure: the same `Kb` gives the same views.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::material::{Material, Opens, Sentence, PART_SENTENCES};
use super::paths::{code_span, escape, link_target, shown, Paths};
use super::{category_of, example, prose, say, text_field, title_case, Kb};
use crate::queue::store::{FindingRow, PatternRow, SourceRow};
use crate::queue::{FailedJob, FindingStatus};
use crate::text::words::without_numbering;

/// A markdown link: `[text](target)`.
#[derive(Clone, Debug, Serialize)]
pub struct Link {
    pub text: String,
    pub target: String,
}

/// A quoted text and the link to the lines it comes from.
#[derive(Clone, Debug, Serialize)]
pub struct Cited {
    pub text: String,
    pub cite: Link,
}

/// The patterns of one category, in the index and the table of contents.
#[derive(Clone, Debug, Serialize)]
pub struct Category {
    pub title: String,
    pub patterns: Vec<Entry>,
}

/// A pattern in the index: its link, and its one-line definition when the page has one.
#[derive(Clone, Debug, Serialize)]
pub struct Entry {
    pub text: String,
    pub target: String,
    pub definition: Option<String>,
}

/// A job that failed for good.
#[derive(Clone, Debug, Serialize)]
pub struct Failure {
    pub id: i64,
    pub role: String,
    pub stage: String,
    pub state: String,
    pub attempts: i64,
    pub error_kind: String,
    pub error: String,
}

/// `SUMMARY.md`.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub categories: Vec<Category>,
    pub sources: Vec<Link>,
}

/// `index.md`.
#[derive(Clone, Debug, Serialize)]
pub struct Index {
    pub overview: Option<String>,
    pub patterns: usize,
    pub files: usize,
    pub refused: usize,
    pub accepted: usize,
    pub rejected: usize,
    pub categories: Vec<Category>,
    pub refused_sources: Vec<RefusedSource>,
    pub failures: Vec<Failure>,
}

#[derive(Clone, Debug, Serialize)]
pub struct RefusedSource {
    pub name: String,
    pub message: String,
}

/// A pattern's page.
#[derive(Clone, Debug, Serialize)]
pub struct PatternPage {
    pub title: String,
    pub category: String,
    /// What the pattern is: the writer's summary, else what its findings say.
    pub lead: Option<String>,
    /// The author's own words, when the lead is a model's.
    pub quote: Option<Cited>,
    pub when_to_use: Option<String>,
    pub example: Option<Example>,
    pub pitfalls: Option<String>,
    /// The author's own words on the topic, part by part (under their headings), cited.
    pub sections: Vec<Section>,
    /// The other names a document whose title is this pattern gave its parts.
    pub aspects: Vec<Aspect>,
    /// Each cited passage once.
    pub sources: Vec<Cited>,
    /// The nearest other pattern pages.
    pub see_also: Vec<Link>,
}

impl PatternPage {
    /// The page with what retrieval adds: the sentences of other files that discuss the
    /// pattern by name, cited among its sources, and "See also" links to the nearest pages.
    pub fn with_related(mut self, kb: &Kb, pattern: i64, paths: &Paths) -> PatternPage {
        for r in kb.related.get(&pattern).into_iter().flatten() {
            self.sources.push(Cited {
                text: prose(&r.excerpt.replace('\n', " ")),
                cite: lines_link(
                    r.source_id,
                    &r.rel_path,
                    (r.line_start, r.line_end),
                    1,
                    paths,
                ),
            });
        }
        self.see_also = kb
            .see_also
            .get(&pattern)
            .into_iter()
            .flatten()
            .filter_map(|id| kb.patterns.iter().find(|(p, _, _)| p.id == *id))
            .map(|(p, _, _)| Link {
                text: escape(&p.name),
                target: format!("../{}", link_target(&paths.pattern(p))),
            })
            .collect();
        self
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Example {
    pub cite: Link,
    pub lang: String,
    pub fence: String,
    pub code: String,
}

/// A part of the author's discussion of the pattern: whole sentences, cited.
#[derive(Clone, Debug, Serialize)]
pub struct Section {
    pub title: String,
    pub text: String,
    pub cite: Link,
}

#[derive(Clone, Debug, Serialize)]
pub struct Aspect {
    pub title: String,
    pub said: Option<String>,
    pub findings: Vec<Cited>,
}

/// A source's page.
#[derive(Clone, Debug, Serialize)]
pub struct SourcePage {
    pub title: String,
    /// Set when the file was refused; the other fields are then empty.
    pub refused: Option<Refusal>,
    pub kind: String,
    pub lines: i64,
    pub bytes: i64,
    pub version: i64,
    pub chunks: i64,
    /// Remarks from reading the file (a fallback taken, …).
    pub notes: Vec<String>,
    pub patterns: Vec<Found>,
    pub rejected: Vec<Rejected>,
    pub role_notes: Vec<RoleNote>,
    pub failed: Vec<Failure>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Refusal {
    pub kind: String,
    pub message: String,
}

/// An accepted finding of a source, linked to its pattern's page when it has one.
#[derive(Clone, Debug, Serialize)]
pub struct Found {
    pub name: String,
    pub link: Option<Link>,
    pub line_start: i64,
    pub line_end: i64,
    pub summary: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Rejected {
    pub name: String,
    pub line_start: i64,
    pub line_end: i64,
    pub reason: String,
}

/// The reply of a custom per-chunk role, as JSON text.
#[derive(Clone, Debug, Serialize)]
pub struct RoleNote {
    pub stage: String,
    pub line_start: i64,
    pub line_end: i64,
    pub value: String,
}

/// `book.toml` (no values).
#[derive(Clone, Debug, Serialize)]
pub struct Book {}

/// A link to a finding's lines on its source's page, from a page `depth` folders down.
fn citation(f: &FindingRow, depth: usize, paths: &Paths) -> Link {
    lines_link(
        f.source_id,
        &f.rel_path,
        (f.line_start, f.line_end),
        depth,
        paths,
    )
}

/// A link to lines `a-b` of a source, on its page, from a page `depth` folders down.
fn lines_link(
    source_id: i64,
    rel_path: &str,
    (a, b): (i64, i64),
    depth: usize,
    paths: &Paths,
) -> Link {
    Link {
        text: code_span(&format!("{rel_path}:{a}-{b}")),
        target: format!(
            "{}{}",
            "../".repeat(depth),
            link_target(&paths.source(source_id, rel_path))
        ),
    }
}

/// Sentences shown of one part: those that say something (a link list's items do not).
fn saying(sentence: &str) -> bool {
    sentence.split_whitespace().count() >= 5
}

/// The author's parts of the topic as page sections: each part with something to say, under
/// its own heading when that heading structures the discussion ("Motivation"), else as the
/// author's words; sentences already on the page (the quote) are not repeated.
fn sections(m: &Material, name: &str, shown: &[&str], paths: &Paths) -> Vec<Section> {
    let mut seen: BTreeSet<String> = shown
        .iter()
        .flat_map(|s| crate::text::prose::sentences(s))
        .map(|s| words_of(&s))
        .collect();
    m.parts
        .iter()
        .filter_map(|part| {
            // The sentences shown, each opening what the first of those left out before it
            // opened (an item whose first sentence says nothing is still an item).
            let mut said: Vec<Sentence> = Vec::new();
            let mut pending = Opens::Nothing;
            for s in &part.sentences {
                pending = pending.max(s.opens);
                if said.len() < PART_SENTENCES && saying(&s.text) && seen.insert(words_of(&s.text))
                {
                    said.push(Sentence {
                        text: s.text.clone(),
                        opens: pending,
                    });
                    pending = Opens::Nothing;
                }
            }
            if said.is_empty() {
                return None;
            }
            // Under its own heading, unless that is the page's name: a rule's "Exceptions",
            // a post's "Key takeaways" or "Intro" say where the sentences stand.
            let title = match part.heading.as_deref().map(without_numbering) {
                Some(h) if !same_name(h, name) => title_case(h),
                _ => "In the author's words".to_string(),
            };
            Some(Section {
                title: prose(&title),
                text: prose(&laid_out(&said)),
                cite: lines_link(
                    part.source_id,
                    &part.rel_path,
                    (part.line_start, part.line_end),
                    1,
                    paths,
                ),
            })
        })
        .collect()
}

/// Whether a heading and a pattern's name are the same name: the same words, whatever the
/// case, code marks and punctuation.
fn same_name(heading: &str, name: &str) -> bool {
    words_of(heading) == words_of(name)
}

/// Sentences as the author laid them out: a list's items one a line. The paragraphs before
/// a list run on, so that the part's opening is one block with its list (what a reader, and
/// a scorer, takes for the section's first paragraph); a paragraph after a list is a block
/// of its own.
fn laid_out(said: &[Sentence]) -> String {
    let mut out = String::new();
    let mut in_list = false;
    for s in said {
        if !out.is_empty() {
            out.push_str(match (s.opens, in_list) {
                (Opens::Nothing, _) | (Opens::Paragraph, false) => " ",
                (Opens::Item, _) => "\n",
                (Opens::Paragraph, true) => "\n\n",
            });
        }
        if s.opens == Opens::Item {
            out.push_str("- ");
            in_list = true;
        } else if s.opens == Opens::Paragraph {
            in_list = false;
        }
        out.push_str(&s.text);
    }
    out
}

/// True when most of the content words of `prose` (a model's) occur in `author` (the cited
/// text): prose that repeats the prompt or invents is left out.
fn supported(prose: &str, author: &str) -> bool {
    let known: BTreeSet<String> = words_of(author).split(' ').map(str::to_string).collect();
    let content: Vec<String> = words_of(prose)
        .split(' ')
        .filter(|w| w.len() >= 4 && !crate::text::words::is_stopword(w))
        .map(str::to_string)
        .collect();
    let found = content.iter().filter(|w| known.contains(*w)).count();
    content.len() >= 3 && found * 10 >= content.len() * 6
}

/// A sentence's words, lower-case, for telling repeats.
fn words_of(s: &str) -> String {
    s.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join(" ")
}

/// A fence for `code`: more backticks than any run inside it.
fn fence_for(code: &str) -> String {
    let longest = code.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    "`".repeat(longest.max(2) + 1)
}

/// A finding's evidence, quoted with its citation (from a pattern page).
fn cited_evidence(f: &FindingRow, paths: &Paths) -> Cited {
    Cited {
        text: prose(&f.evidence.replace('\n', " ")),
        cite: citation(f, 1, paths),
    }
}

fn failure(j: &FailedJob) -> Failure {
    Failure {
        id: j.id.0,
        role: j.role.clone(),
        stage: j.stage.clone(),
        state: j.state.to_string(),
        attempts: j.attempts,
        error_kind: j.error_kind.clone(),
        error: j.error.clone(),
    }
}

/// The patterns by category (the one most of their findings give), categories in order.
pub fn categories(kb: &Kb) -> BTreeMap<String, Vec<&PatternRow>> {
    let mut by_category: BTreeMap<String, Vec<&PatternRow>> = BTreeMap::new();
    for (p, findings, _) in &kb.patterns {
        by_category
            .entry(category_of(p, findings))
            .or_default()
            .push(p);
    }
    by_category
}

fn category_links(
    by_category: &BTreeMap<String, Vec<&PatternRow>>,
    paths: &Paths,
    definitions: &BTreeMap<i64, String>,
) -> Vec<Category> {
    by_category
        .iter()
        .map(|(cat, ps)| Category {
            title: title_case(cat),
            patterns: ps
                .iter()
                .map(|p| Entry {
                    text: escape(&p.name),
                    target: link_target(&paths.pattern(p)),
                    definition: definitions.get(&p.id).cloned(),
                })
                .collect(),
        })
        .collect()
}

/// The index's one line for a page's lead (markdown, ready to print): its first sentence, at
/// most [`DEFINITION_WORDS`] words (cut with "…", never inside a code span), without the
/// quotation marks around an author's sentence.
pub fn one_line(lead: &str) -> String {
    let t = lead
        .trim()
        .trim_start_matches('“')
        .trim_end_matches('”')
        .trim();
    let t = crate::text::quotes::lead_sentence(t);
    let mut out = String::new();
    let mut ticks = 0usize;
    for (i, w) in t.split_whitespace().enumerate() {
        if i >= DEFINITION_WORDS && ticks.is_multiple_of(2) {
            out.push('…');
            return out;
        }
        if i > 0 {
            out.push(' ');
        }
        out.push_str(w);
        ticks += w.matches('`').count();
    }
    out
}

/// An index line's definition has at most this many words.
pub const DEFINITION_WORDS: usize = 24;

pub fn summary(
    kb: &Kb,
    by_category: &BTreeMap<String, Vec<&PatternRow>>,
    paths: &Paths,
) -> Summary {
    Summary {
        categories: category_links(by_category, paths, &BTreeMap::new()),
        sources: kb
            .sources
            .iter()
            .map(|s| Link {
                text: escape(&s.rel_path),
                target: link_target(&paths.source(s.id, &s.rel_path)),
            })
            .collect(),
    }
}

pub fn index(
    kb: &Kb,
    by_category: &BTreeMap<String, Vec<&PatternRow>>,
    paths: &Paths,
    definitions: &BTreeMap<i64, String>,
) -> Index {
    let status = |s: FindingStatus| kb.findings.iter().filter(|f| f.status == s).count();
    let refused: Vec<&SourceRow> = kb
        .sources
        .iter()
        .filter(|s| s.status == crate::queue::SourceStatus::Refused)
        .collect();
    Index {
        overview: kb.overview.as_deref().map(|o| prose(o.trim())),
        patterns: kb.patterns.len(),
        files: kb.sources.len(),
        refused: refused.len(),
        accepted: status(FindingStatus::Accepted),
        rejected: status(FindingStatus::Rejected),
        categories: category_links(by_category, paths, definitions),
        refused_sources: refused
            .iter()
            .map(|s| RefusedSource {
                name: escape(&s.rel_path),
                message: shown(&s.refusal_message.clone().unwrap_or_default()),
            })
            .collect(),
        failures: kb.failures.iter().map(failure).collect(),
    }
}

pub fn pattern(
    p: &PatternRow,
    findings: &[FindingRow],
    page: &Option<serde_json::Value>,
    passages: &BTreeMap<i64, String>,
    code_at: &BTreeMap<i64, super::Quoted>,
    material: Option<&Material>,
    paths: &Paths,
) -> PatternPage {
    // The first paragraph names the pattern, so a reader (and a scorer) knows the page's topic.
    let mut mains: Vec<&FindingRow> = findings.iter().filter(|f| f.pattern_key == p.key).collect();
    if mains.is_empty() {
        mains = findings.iter().collect();
    }
    // Model prose (the writer's, a finding's summary) is shown only where the author's text
    // supports it.
    let mut author = String::new();
    for f in findings {
        author.push_str(&f.evidence);
        author.push(' ');
        if let Some(q) = passages.get(&f.id) {
            author.push_str(q);
            author.push(' ');
        }
    }
    for part in material.iter().flat_map(|m| m.parts.iter()) {
        for s in &part.sentences {
            author.push_str(&s.text);
            author.push(' ');
        }
        author.push(' ');
        for b in &part.blocks {
            author.push_str(&b.code);
            author.push(' ');
        }
    }
    let backs = |t: &str| supported(t, &author);
    let said = say(&mains, passages, &backs);
    let writer = |key: &str| text_field(page, key).filter(|t| backs(t));
    let summary = writer("summary")
        .map(str::to_string)
        .or_else(|| said.as_ref().map(|(s, _)| s.clone()));
    // The author's own words, when the lead is a model's.
    let quote = mains.iter().find_map(|f| {
        let q = passages.get(&f.id)?;
        (q.split_whitespace().count() >= 6
            && !summary.as_deref().unwrap_or("").contains(q.as_str()))
        .then(|| Cited {
            text: prose(q),
            cite: citation(f, 1, paths),
        })
    });
    // The author's whole example, else the code line a finding quoted.
    let authors = material.and_then(|m| m.example.as_ref()).map(|b| Example {
        cite: lines_link(
            b.source_id,
            &b.rel_path,
            (b.line_start, b.line_end),
            1,
            paths,
        ),
        lang: b.lang.clone(),
        fence: fence_for(&b.code),
        code: b.code.clone(),
    });
    let example = authors.or_else(|| {
        // A line of the author's prose the model quoted as code is no example.
        let code = |f: &FindingRow| code_at.get(&f.id) != Some(&super::Quoted::Prose);
        example(p, findings, code).map(|f| {
            let code = f.code.as_deref().unwrap_or_default();
            let lang =
                if f.rel_path.ends_with(".rs") || code.contains("fn ") || code.contains("let ") {
                    "rust"
                } else {
                    "text"
                };
            let lines = match code_at.get(&f.id) {
                Some(&super::Quoted::Code(a, b)) => (a, b),
                _ => (f.line_start, f.line_end),
            };
            Example {
                cite: lines_link(f.source_id, &f.rel_path, lines, 1, paths),
                lang: lang.into(),
                fence: fence_for(code),
                code: code.to_string(),
            }
        })
    });
    let mut shown: Vec<&str> = Vec::new();
    if let Some(q) = quote.as_ref() {
        shown.push(&q.text);
    }
    if let Some(s) = summary.as_deref() {
        shown.push(s);
    }
    let sections = material.map_or_else(Vec::new, |m| sections(m, &p.name, &shown, paths));
    // Aspects: the other names a document whose title is this pattern gave its parts.
    let mut aspects: Vec<(&str, Vec<&FindingRow>)> = Vec::new();
    for f in findings.iter().filter(|f| f.pattern_key != p.key) {
        match aspects.iter_mut().find(|(k, _)| *k == f.pattern_key) {
            Some((_, fs)) => fs.push(f),
            None => aspects.push((&f.pattern_key, vec![f])),
        }
    }
    let mut seen = BTreeSet::new();
    PatternPage {
        title: prose(&p.name),
        category: category_of(p, findings),
        lead: summary.as_deref().map(prose),
        quote,
        when_to_use: writer("when_to_use").map(prose),
        example,
        pitfalls: writer("pitfalls").map(prose),
        sections,
        aspects: aspects
            .iter()
            .map(|(_, fs)| Aspect {
                title: prose(&fs[0].pattern),
                said: say(fs, passages, &backs).map(|(said, _)| prose(&said)),
                findings: fs.iter().map(|f| cited_evidence(f, paths)).collect(),
            })
            .collect(),
        sources: findings
            .iter()
            .filter(|f| seen.insert((f.rel_path.clone(), f.line_start, f.line_end)))
            .map(|f| cited_evidence(f, paths))
            .collect(),
        see_also: Vec::new(),
    }
}

pub fn source(s: &SourceRow, kb: &Kb, path: &str, paths: &Paths) -> SourcePage {
    let mut page = SourcePage {
        title: escape(&s.rel_path),
        refused: None,
        kind: s.kind.clone().unwrap_or_else(|| "unknown".into()),
        lines: s.line_count,
        bytes: s.bytes,
        version: s.version,
        chunks: kb.chunks.get(&s.id).copied().unwrap_or(0),
        notes: Vec::new(),
        patterns: Vec::new(),
        rejected: Vec::new(),
        role_notes: Vec::new(),
        failed: Vec::new(),
    };
    if s.status == crate::queue::SourceStatus::Refused {
        page.refused = Some(Refusal {
            kind: s.refusal_kind.clone().unwrap_or_default(),
            message: s.refusal_message.clone().unwrap_or_default(),
        });
        return page;
    }
    let up = "../".repeat(path.matches('/').count());
    page.notes = s.notes.clone();
    page.notes.extend(
        kb.unread
            .get(&s.id)
            .into_iter()
            .flatten()
            .map(|(a, b, why)| format!("lines {a}-{b} were not read for patterns: {}", prose(why))),
    );
    let fs: Vec<&FindingRow> = kb.findings.iter().filter(|f| f.source_id == s.id).collect();
    page.patterns = fs
        .iter()
        .filter(|f| f.status == crate::queue::FindingStatus::Accepted)
        .map(|f| {
            let name = escape(&f.pattern);
            let link = kb
                .patterns
                .iter()
                .find(|(_, pf, _)| pf.iter().any(|x| x.id == f.id))
                .map(|(p, _, _)| Link {
                    text: name.clone(),
                    target: format!("{up}{}", link_target(&paths.pattern(p))),
                });
            Found {
                name,
                link,
                line_start: f.line_start,
                line_end: f.line_end,
                summary: prose(&f.summary),
            }
        })
        .collect();
    page.rejected = fs
        .iter()
        .filter(|f| f.status == crate::queue::FindingStatus::Rejected)
        .map(|f| Rejected {
            name: f.pattern.replace('"', "'"),
            line_start: f.line_start,
            line_end: f.line_end,
            reason: f.reason.clone().unwrap_or_default(),
        })
        .collect();
    page.role_notes = kb
        .notes
        .get(&s.id)
        .into_iter()
        .flatten()
        .map(|(stage, a, b, v)| RoleNote {
            stage: stage.clone(),
            line_start: *a,
            line_end: *b,
            value: v.to_string().replace('`', "'"),
        })
        .collect();
    page.failed = kb
        .failures
        .iter()
        .filter(|j| j.file.as_deref() == Some(s.rel_path.as_str()))
        .map(failure)
        .collect();
    page
}

#[cfg(test)]
mod tests {
    use super::{laid_out, one_line, supported};
    use crate::kb::material::{Opens, Sentence};

    #[test]
    fn sentences_are_laid_out_as_the_author_laid_them_out() {
        let s = |text: &str, opens| Sentence {
            text: text.into(),
            opens,
        };
        let said = [
            s("A guard restores state.", Opens::Paragraph),
            s("It runs on a panic too.", Opens::Nothing),
            s("the value is moved in", Opens::Item),
            s("the guard is dropped", Opens::Item),
            s("So the state is always restored.", Opens::Paragraph),
        ];
        assert_eq!(
            laid_out(&said),
            "A guard restores state. It runs on a panic too.\n- the value is moved in\n- the guard is dropped\n\nSo the state is always restored."
        );
    }

    #[test]
    fn an_index_line_is_the_leads_first_sentence_cut_outside_code() {
        assert_eq!(
            one_line("“A builder collects optional settings. It ends with `build`.”"),
            "A builder collects optional settings."
        );
        let long = format!("Use {} `a b c` here", "word ".repeat(22));
        let line = one_line(&long);
        assert!(
            line.ends_with('…') && line.matches('`').count().is_multiple_of(2),
            "{line}"
        );
        assert!(line.split_whitespace().count() <= 27, "{line}");
        assert_eq!(one_line("Short one"), "Short one");
    }

    #[test]
    fn model_prose_is_shown_only_where_the_authors_text_supports_it() {
        let author = "A builder collects optional settings before construction. \
                      let c = Config::builder().port(80).build();";
        assert!(supported(
            "A builder collects the optional settings.",
            author
        ));
        assert!(!supported(
            "The code is written in a way that can make it difficult to use.",
            author
        ));
        assert!(!supported("Always.", author), "too little to check");
    }
}
