//! The checks of a finding's name and evidence against its chunk: evidence must be in the
//! chunk, names must be concepts the text teaches, and names that mean the same pattern meet
//! under one key. Pure functions.

use super::quotes::{
    first_sentence, heading_words, lead_clause, markdown_lines, replace_links, strip_line_markers,
    LineKind,
};
use super::words::{
    is_generic, is_stopword, ARTICLES, EVIDENCE_STOPWORDS, PATTERN_WORDS, STRUCTURE_WORDS,
};

/// A name the model took from a file name ("mem-replace.md", "src/guard.rs") becomes the
/// file's stem ("mem-replace"): a page title must not read as a path. A name in plain words
/// starts with a capital, as a title does ("builder" → "Builder"; `mem::take` is left alone).
pub fn clean_name(name: &str) -> String {
    let n = name.trim();
    let n = match crate::ingest::without_extension(n) {
        Some(stem) => stem.rsplit('/').next().unwrap_or(stem).to_string(),
        None => n.to_string(),
    };
    let plain = n.chars().all(|c| c.is_alphanumeric() || c == ' ');
    let mut chars = n.chars();
    match chars.next() {
        Some(first) if plain && first.is_lowercase() => first.to_uppercase().chain(chars).collect(),
        _ => n,
    }
}

/// Lower-case, letters and digits only, single spaces.
pub fn normalise_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut space = true;
    for c in s.chars() {
        if c.is_alphanumeric() {
            out.extend(c.to_lowercase());
            space = false;
        } else if !space {
            out.push(' ');
            space = true;
        }
    }
    out.trim_end().to_string()
}

/// The grouping key of a pattern name: "Builder", "builder pattern" and "The Builder" meet.
pub fn pattern_key(name: &str) -> String {
    let n = normalise_text(name);
    let mut words: Vec<&str> = n.split(' ').filter(|w| !w.is_empty()).collect();
    while words.len() > 1 && (ARTICLES.contains(&words[0]) || matches!(words[0], "using" | "use")) {
        words.remove(0);
    }
    // "Implementing Drop" is the "Drop implementation".
    if words.len() > 1 && matches!(words[0], "implementing" | "implement") {
        words.remove(0);
        words.push("implementation");
    }
    if words.len() > 2 && words[words.len() - 2..] == ["design", "pattern"] {
        words.truncate(words.len() - 2);
    }
    while words.len() > 1
        && (PATTERN_WORDS.contains(&words[words.len() - 1])
            || matches!(words[words.len() - 1], "in" | "rust"))
    {
        words.pop();
    }
    let mut key: Vec<String> = words.iter().map(|w| w.to_string()).collect();
    if let Some(last) = key.last_mut() {
        if last.len() > 4 && last.ends_with('s') && !last.ends_with("ss") {
            last.pop();
        }
    }
    key.join(" ")
}

/// The significant words of a pattern key, each singular: what two names are compared by.
fn key_words(key: &str) -> Vec<String> {
    key.split(' ')
        .filter(|w| !w.is_empty() && !crate::text::words::is_stopword(w))
        .map(|w| {
            let plural = w.len() > 4 && w.ends_with('s') && !w.ends_with("ss");
            w[..w.len() - usize::from(plural)].to_string()
        })
        .collect()
}

/// True when every significant word of the key `part` is one of `whole`'s: "mem take" is
/// within "mem take replace to keep owned values in changed enums".
pub fn key_within(part: &str, whole: &str) -> bool {
    let (part, whole) = (key_words(part), key_words(whole));
    !part.is_empty() && part.iter().all(|w| whole.contains(w))
}

/// True when the keys `a` and `b` name one subject in two ways: one is made of the other's
/// words ("default constructor" and "constructor"), or they share two significant words
/// ("alternative private fields for struct" and "non exhaustive and private fields").
pub fn variant_of(a: &str, b: &str) -> bool {
    let (wa, wb) = (key_words(a), key_words(b));
    key_within(a, b) || key_within(b, a) || wa.iter().filter(|w| wb.contains(w)).count() >= 2
}

/// Why a finding fails the checks, if it does.
pub fn check_finding(
    name: &str,
    evidence: &str,
    chunk_text: &str,
    is_rendered: bool,
) -> Result<(), String> {
    let key = pattern_key(name);
    let structure = |k: &str| STRUCTURE_WORDS.contains(&k);
    if key.chars().count() < 3
        || is_generic(&key)
        || structure(&key)
        || structure(&normalise_text(name))
        || name_words(name).is_empty()
    {
        return Err(format!(
            "the name {name:?} is empty or too generic to look up"
        ));
    }
    // A name is a few words, or a heading of the chunk that states its rule whole (the terms
    // offer no other: a numbered item's claim may be in the first person).
    let rule_heading = super::terms::is_rule_sized(name)
        && markdown_lines(chunk_text).any(|(l, kind)| {
            kind.heading().is_some()
                && super::words::without_numbering(heading_words(l))
                    .replace('`', "")
                    .eq_ignore_ascii_case(&name.replace('`', ""))
        });
    if name.split_whitespace().count() > super::terms::MAX_WORDS && !rule_heading {
        return Err(format!("the name {name:?} is a sentence, not a name"));
    }
    if !grounded(name, chunk_text) {
        return Err(format!(
            "the name {name:?} is not grounded: most of its words are not in the text"
        ));
    }
    if is_code_identifier(name, chunk_text) {
        return Err(format!(
            "the name {name:?} is an identifier defined in the code, not a pattern"
        ));
    }
    let ev = normalise_text(evidence);
    if ev.len() < 4 {
        return Err("the evidence quote is empty".into());
    }
    let hay = normalise_text(chunk_text);
    if !hay.contains(&ev) && !is_rendered {
        return Err(format!(
            "the evidence {evidence:?} does not occur in the chunk"
        ));
    }
    if is_rendered && !hay.contains(&ev) {
        return Err(format!(
            "the evidence {evidence:?} does not occur in the record"
        ));
    }
    Ok(())
}

/// True when `name` is a function, variable or module identifier that the chunk's code
/// defines (`fn parse_config`, `let total`): small models reading source tend to name its
/// functions. Type names (`struct Builder`, `trait Visitor`) are left alone: they are often
/// named after the very pattern they implement.
fn is_code_identifier(name: &str, chunk_text: &str) -> bool {
    let name = name.trim().trim_matches('`').trim_end_matches("()");
    if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == '_') {
        return false;
    }
    if name.chars().next().is_some_and(|c| c.is_uppercase()) && !name.contains('_') {
        return false;
    }
    ["fn ", "let ", "let mut ", "mod ", "const ", "static "]
        .iter()
        .any(|kw| {
            chunk_text
                .match_indices(&format!("{kw}{name}"))
                .any(|(i, m)| {
                    let after = chunk_text[i + m.len()..].chars().next();
                    !after.is_some_and(|c| c.is_alphanumeric() || c == '_')
                })
        })
}

/// True when at least half of the name's significant words occur in `text`: a name the model
/// made up from nothing in the text fails.
pub fn grounded(name: &str, text: &str) -> bool {
    mentions(&name_words(name), text)
}

/// The significant words of a name: no stopwords, no bare numbers ("Pattern 2" has none),
/// `CamelCase` split into its words.
fn name_words(name: &str) -> Vec<String> {
    normalise_text(&split_camel(name))
        .split(' ')
        .filter(|w| w.len() >= 2 && !is_stopword(w) && !w.chars().all(|c| c.is_ascii_digit()))
        .map(str::to_string)
        .collect()
}

/// `CamelCase` words apart: "FooBuilder" → "Foo Builder".
fn split_camel(text: &str) -> String {
    let mut split = String::with_capacity(text.len() + 8);
    let mut prev_lower = false;
    for c in text.chars() {
        if c.is_uppercase() && prev_lower {
            split.push(' ');
        }
        prev_lower = c.is_lowercase() || c.is_ascii_digit();
        split.push(c);
    }
    split
}

/// True when at least half of `words` occur in `text` (matching on a 5-letter stem at a word
/// start, so "builders" finds "builder"; `CamelCase` identifiers count as their words).
fn mentions(words: &[String], text: &str) -> bool {
    if words.is_empty() {
        return true;
    }
    let hay = format!(" {} ", normalise_text(&split_camel(text)));
    let found = words
        .iter()
        .filter(|w| {
            let stem: String = w.chars().take(5).collect();
            hay.contains(&format!(" {stem}"))
        })
        .count();
    found * 2 >= words.len()
}

/// A prose line without its links and URLs: a name met only as a link to elsewhere is not
/// taught here.
fn without_links(line: &str) -> String {
    let out = replace_links(line, false);
    out.split_whitespace()
        .filter(|w| !w.contains("://"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The text a line introduces a term with, if any: `**Term**`, `` `Term` `` at the start,
/// the lead before a colon or dash, which may be a clause (`- Term: …`, `Most importantly
/// this is a surprising idiom - …`; [`lead_clause`]), or a short first sentence
/// (`Term. It …`; [`first_sentence`]).
fn lead_term(line: &str) -> Option<&str> {
    let t = strip_line_markers(line);
    for marker in ["**", "__", "`"] {
        if let Some(rest) = t.strip_prefix(marker) {
            return rest.find(marker).map(|end| &rest[..end]);
        }
    }
    // A line that is one short sentence mentions a name; only a sentence followed by more
    // introduces it.
    let lead = first_sentence(t).filter(|s| s.len() < t.trim_end_matches('.').len());
    lead_clause(t).or(lead)
}

/// Whether the chunk teaches the named pattern rather than mentioning it in passing: the name
/// is in the chunk's heading path or a heading inside it, is the term a line introduces, or
/// is met on at least two lines.
/// Markdown and text count prose only (not code blocks, links or URLs); source code and
/// rendered JSON count in full, since their ideas live in comments, identifiers and values.
pub fn discussed(
    name: &str,
    heading_path: &[String],
    text: &str,
    prose_only: bool,
) -> Result<(), String> {
    let words = name_words(super::paths::tail(name));
    if words.is_empty() {
        return Ok(()); // symbols only (e.g. "?"), judged by the other checks
    }
    if heading_path.iter().any(|h| mentions(&words, h)) {
        return Ok(());
    }
    // A name whose own mark is a symbol ("? operator") is taught under a heading that shows it
    // ("Propagating errors with `?`").
    let symbols: Vec<&str> = name
        .split_whitespace()
        .filter(|w| !w.chars().any(char::is_alphanumeric))
        .collect();
    let shows_symbol = |h: &str| symbols.iter().any(|s| h.contains(s));
    if heading_path.iter().any(|h| shows_symbol(h))
        || prose_only && inner_headings(text).any(|h| shows_symbol(&h))
    {
        return Ok(());
    }
    let mut lines = 0;
    let mut check = |line: &str, heading: bool| {
        if heading && mentions(&words, line) {
            lines += 2; // a heading inside the chunk (sections merged into one chunk)
        } else if lead_term(line).is_some_and(|t| !t.trim().is_empty() && mentions(&words, t)) {
            lines += 2;
        } else if !line.trim().is_empty() && mentions(&words, line) {
            lines += 1;
        }
    };
    // Markdown and text: the prose lines; elsewhere every line. Walked once to count, and
    // joined only when the count did not decide, so a phrase wrapped over two lines is read whole.
    let (prose, headings): (Vec<String>, Vec<bool>) = if prose_only {
        markdown_lines(text)
            .filter(|&(_, kind)| kind != LineKind::Code)
            .map(|(line, kind)| (without_links(line), kind.heading().is_some()))
            .unzip()
    } else {
        text.lines().map(|l| (l.to_string(), false)).unzip()
    };
    prose.iter().zip(&headings).for_each(|(l, &h)| check(l, h));
    if lines < 2 && prose_only && sole_api_of_a_paragraph(name, &prose) {
        lines += 2;
    }
    if lines < 2 {
        let joined: Vec<&str> = if prose_only {
            prose.iter().map(String::as_str).collect()
        } else {
            prose.iter().map(|l| strip_line_markers(l)).collect()
        };
        if names_a_thing(name, &joined.join(" ")) {
            lines += 2;
        }
    }
    if lines >= 2 {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is only mentioned in passing: not in the heading, not introduced, on {lines} line(s) of the text"
        ))
    }
}

/// Whether `name` is the one API a paragraph of [`PARAGRAPH_SENTENCES`] sentences or more
/// names ("Also put `#[must_use]` on … Now the compiler warns … It works on functions"): the
/// paragraph is about it. `prose`: the chunk's prose lines.
fn sole_api_of_a_paragraph(name: &str, prose: &[String]) -> bool {
    let key = normalise_text(name);
    prose
        .split(|l| l.trim().is_empty())
        .map(|p| p.join("\n"))
        .any(|p| {
            let apis = super::terms::apis_named(&p);
            matches!(apis.as_slice(), [only] if normalise_text(only) == key)
                && super::prose::sentences(&p).len() >= PARAGRAPH_SENTENCES
        })
}

/// A paragraph of this many sentences discusses what it names (see
/// [`sole_api_of_a_paragraph`]); a shorter one may name it in passing.
const PARAGRAPH_SENTENCES: usize = 3;

/// True when the text introduces `name` as a thing, whole, a determiner before it ("This is
/// the strategy pattern", "its `Drop` implementation"), or makes it a sentence's subject led
/// by a gerund ("Cloning to satisfy the borrow checker hides …"), even on one line or wrapped
/// over two. What names a thing is `terms::named_phrases` and `terms::gerund_subjects`, the
/// rules the extractor's terms come from.
fn names_a_thing(name: &str, text: &str) -> bool {
    // A name of one word once its symbols are gone ("? operator") is not a phrase.
    let key = normalise_text(name);
    key.contains(' ')
        && (super::terms::named_phrases(text)
            .iter()
            .any(|p| p.opened && normalise_text(&p.phrase) == key)
            || super::terms::gerund_subjects(text)
                .iter()
                .any(|g| normalise_text(g) == key))
}

/// The headings inside a markdown chunk (sections merged into it), without their `#`s.
fn inner_headings(text: &str) -> impl Iterator<Item = String> + '_ {
    markdown_lines(text)
        .filter(|&(_, kind)| kind.heading().is_some())
        .map(|(line, _)| heading_words(line).to_string())
}

/// The author's term for a pattern the model named by a fragment of it: when the name's
/// words run, in order, inside a short heading of the chunk ("Deref" under "Deref
/// polymorphism"), the shortest such heading (the deepest among equals) becomes the name,
/// without its numbering ("2) Boxes are slow" names "Boxes are slow"). Markdown and text
/// only: elsewhere the "headings" are item and key paths.
pub fn complete_name(name: &str, heading_path: &[String], text: &str, prose_only: bool) -> String {
    const MAX_WORDS: usize = 6;
    let key = normalise_text(name);
    let n = key.split(' ').filter(|w| !w.is_empty()).count();
    if !prose_only || n == 0 {
        return name.to_string();
    }
    let inner = inner_headings(text);
    let needle = format!(" {key} ");
    let mut best: Option<(usize, String)> = None;
    for heading in heading_path.iter().cloned().chain(inner) {
        let heading = super::words::without_numbering(&heading).to_string();
        let h = normalise_text(&heading);
        let words = h.split(' ').filter(|w| !w.is_empty()).count();
        let contains = format!(" {h} ").contains(&needle);
        if contains
            && words > n
            && words <= MAX_WORDS
            && !heading.contains('…')
            && best.as_ref().is_none_or(|(w, _)| words <= *w)
        {
            best = Some((words, heading));
        }
    }
    best.map_or_else(|| name.to_string(), |(_, h)| clean_name(&h))
}

/// The share of a text's 3-word windows that also occur in `prompt` (1.0: pure echo).
pub fn echo_ratio(text: &str, prompt: &str) -> f64 {
    let words: Vec<&str> = text.split_whitespace().collect();
    if words.len() < 3 {
        return 0.0;
    }
    let hay = format!(" {} ", normalise_text(prompt));
    let windows: Vec<String> = words
        .windows(3)
        .map(|w| normalise_text(&w.join(" ")))
        .collect();
    let hits = windows
        .iter()
        .filter(|w| !w.is_empty() && hay.contains(&format!(" {w} ")))
        .count();
    hits as f64 / windows.len() as f64
}

/// True when a text loops: some 4-word run comes back three times or more (small models
/// caught in a repetition: "used to create a design pattern that is used to create …").
pub fn repetitive(text: &str) -> bool {
    let words: Vec<String> = normalise_text(text)
        .split(' ')
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect();
    let mut counts: std::collections::HashMap<&[String], usize> = std::collections::HashMap::new();
    words.windows(4).any(|w| {
        let n = counts.entry(w).or_insert(0);
        *n += 1;
        *n >= 3
    })
}

/// True when the name copies three or more consecutive words of the role's instructions
/// (small models echo the task instead of answering it).
pub fn echoes(name: &str, instructions: &str) -> bool {
    let words: Vec<String> = normalise_text(name)
        .split(' ')
        .map(str::to_string)
        .collect();
    if words.len() < 3 {
        return false;
    }
    let hay = format!(" {} ", normalise_text(instructions));
    words
        .windows(3)
        .any(|w| hay.contains(&format!(" {} ", w.join(" "))))
}

/// The sentence a finding should cite when the model's evidence does not mention its name (a
/// small model often quotes a sentence that has nothing to do with the name it chose): the
/// sentence of `text` that holds most of the name's words, or None to keep the evidence.
pub fn evidence_naming(name: &str, evidence: &str, text: &str) -> Option<String> {
    let norm = normalise_text(name);
    let words: Vec<&str> = norm
        .split(' ')
        .filter(|w| w.len() >= 3 && !EVIDENCE_STOPWORDS.contains(w))
        .collect();
    let hits = |s: &str| {
        let n = normalise_text(s);
        let have: Vec<&str> = n.split(' ').collect();
        words.iter().filter(|w| have.contains(w)).count()
    };
    if words.is_empty() || hits(evidence) > 0 {
        return None;
    }
    let mut best: Option<(usize, String)> = None;
    for s in super::quotes::sentences(text) {
        let h = hits(&s);
        if h > 0 && best.as_ref().is_none_or(|(b, _)| h > *b) {
            best = Some((h, s));
        }
    }
    best.map(|(_, s)| s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variants_of_a_title_are_made_of_its_words_or_share_two() {
        let key = |s: &str| pattern_key(s);
        let title = key("`mem::{take(_), replace(_)}` to keep owned values in changed enums");
        assert!(key_within(&key("mem::take"), &title));
        assert!(key_within(&key("mem::replace"), &title));
        assert!(!key_within(&key("Option::take"), &title));
        assert!(variant_of(
            &key("Default Constructors"),
            &key("Constructors")
        ));
        assert!(variant_of(
            &key("Alternative: Private fields for structs"),
            &key("#[non_exhaustive] and private fields for extensibility")
        ));
        // A rule in a chapter shares at most a word with the chapter's title.
        assert!(!variant_of(
            &key("Error types are meaningful and well-behaved"),
            &key("Error handling")
        ));
        assert!(!variant_of(
            &key("Declarative"),
            &key("Programming paradigms")
        ));
        // Stop words never make two names one.
        assert!(!variant_of(
            &key("Builder for a config"),
            &key("Iterator for a tree")
        ));
    }

    #[test]
    fn a_fragment_of_a_heading_becomes_the_heading() {
        let path = vec![
            "Anti-patterns".to_string(),
            "Deref polymorphism".to_string(),
        ];
        let text = "Misusing `Deref` to emulate inheritance.\n\n## Example\n\nSome code.";
        for (name, prose, expected) in [
            ("Deref", true, "Deref polymorphism"),
            // A whole word sequence only, in order.
            ("Polymorphism deref", true, "Polymorphism deref"),
            ("Der", true, "Der"),
            // Already the heading, or no heading holds it.
            ("Deref polymorphism", true, "Deref polymorphism"),
            ("Inheritance", true, "Inheritance"),
            // Source code's paths are items, not the author's terms.
            ("Deref", false, "Deref"),
        ] {
            assert_eq!(complete_name(name, &path, text, prose), expected, "{name}");
        }
        // Headings inside the chunk count; the shortest holding the name wins.
        let text = "# Scoped threads and their joins\n\ntext\n\n## Scoped threads in std\n\nmore";
        assert_eq!(
            complete_name("scoped", &[], text, true),
            "Scoped threads in std"
        );
        // Long headings are sentences, not names; merged spans are not headings.
        let path =
            vec!["Why you should never share a mutable reference across await points".into()];
        assert_eq!(
            complete_name("Mutable reference", &path, "", true),
            "Mutable reference"
        );
        let path = vec!["Tip 1 … Tip 9".to_string()];
        assert_eq!(complete_name("Tip", &path, "", true), "Tip");
        // A heading's numbering is no part of a name.
        let path = vec!["Misconceptions".into(), "2) Boxes are slow".into()];
        assert_eq!(
            complete_name("Boxes are slow", &path, "", true),
            "Boxes are slow"
        );
        assert_eq!(complete_name("boxes", &path, "", true), "Boxes are slow");
    }

    #[test]
    fn a_pattern_is_discussed_not_mentioned_in_passing() {
        let md = "Wrap the value to give it a meaning of its own.\n\nSee also [the visitor pattern](visitor.md) and https://example.org/typestate.\n\n```rust\nstruct Meters(f64);\nlet foo = Meters(1.0);\n```\nA newtype costs nothing at run time.\nA newtype also keeps units apart.\n";
        let path = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        // In the heading: taught here.
        assert!(discussed("Newtype pattern", &path(&["Units", "Newtype"]), md, true).is_ok());
        // Twice in the prose.
        assert!(discussed("The newtype", &path(&["Units"]), md, true).is_ok());
        // Only a link, only code, a number: not taught here.
        let e = discussed("Visitor pattern", &path(&["Units"]), md, true).unwrap_err();
        assert!(e.contains("in passing"), "{e}");
        assert!(discussed("Typestate", &path(&["Units"]), md, true).is_err());
        assert!(discussed("Foo", &path(&["Units"]), md, true).is_err());
        assert!(discussed("Meters", &path(&["Units"]), md, true).is_err());
        // Introduced as a term on one line.
        for line in [
            "- **Sealed trait**: a trait no one else can implement.",
            "Sealed trait — only this crate implements it.",
            "/// Sealed trait: no downstream impls.",
            "Sealed trait. No one else can implement it.",
        ] {
            assert!(discussed("Sealed trait", &[], line, true).is_ok(), "{line}");
        }
        // A lead may be a clause that holds the name; a path's `::` ends no lead.
        for (name, line) in [
            (
                "surprising idiom",
                "Most importantly this is a surprising idiom - readers will not expect it.",
            ),
            (
                "struct update syntax",
                "Then what they change with struct update syntax:\n- the port\n",
            ),
        ] {
            assert!(discussed(name, &[], line, true).is_ok(), "{line}");
        }
        assert!(discussed(
            "must_use",
            &[],
            "Also put `#[must_use]` on `S::new`, which returns.",
            true
        )
        .is_err());
        // The one API a paragraph of three sentences names is what the paragraph is about;
        // beside a second API, or in a shorter paragraph, it is a mention.
        let about = "Also put `#[must_use]` on `S::new`, which returns a copy.\nTwice I \
                     dropped it. Now the compiler warns. It works on types too.\n";
        assert!(discussed("#[must_use]", &[], about, true).is_ok());
        let two = about.replace("types too", "types, as `mem::take` does");
        assert!(discussed("#[must_use]", &[], &two, true).is_err());
        // A sentence whose subject is a phrase led by a gerund is about it.
        let gerund = "5. **Four clones.** Cloning to satisfy the borrow checker hides the real \
                      problem.\n";
        assert!(discussed("Cloning to satisfy the borrow checker", &[], gerund, true).is_ok());
        assert!(discussed(
            "The worst part",
            &[],
            "The worst part about this bug? It is silent.",
            true
        )
        .is_err());
        // The author's phrase that names a thing introduces it, even wrapped over two lines;
        // a name of code (`impl Trait`) said once is still a mention.
        let wrapped = "Each rule is a `Box<dyn Rule>`. This is the strategy\npattern with boxes.\n";
        assert!(discussed("strategy pattern", &[], wrapped, true).is_ok());
        let rs = "//! Releasing it is that value's\n//! `Drop` implementation.\nstruct Lock;\n";
        assert!(discussed("Drop implementation", &[], rs, false).is_ok());
        assert!(discussed("impl Trait", &[], "It takes an `impl Trait` once.", true).is_err());
        // Only a phrase a determiner opens introduces: a head that ends a clause may have
        // read a verb into the name.
        let verb = "Derives fall short. For that you need procedural macros.\n";
        assert!(discussed("need procedural macro", &[], verb, true).is_err());
        let opened = "Derives fall short. For that you need a procedural macro.\n";
        assert!(discussed("procedural macro", &[], opened, true).is_ok());
        // A path is discussed where its module and item are, not its crate.
        let ch = "Use a channel.\nstd::sync::mpsc::channel() gives a Sender.\nOne Receiver (the mc in mpsc).\n";
        assert!(discussed("std::sync::mpsc::channel", &[], ch, true).is_ok());
        // A symbol's name is taught under a heading that shows the symbol.
        let q = "## Propagating errors with `?`\n\nUse it: the `?` operator returns early.\n";
        assert!(discussed("? operator", &path(&["Errors"]), q, true).is_ok());
        assert!(discussed(
            "? operator",
            &path(&["Errors"]),
            "The `?` operator, once.",
            true
        )
        .is_err());
        // Source code counts in full, identifiers by their words.
        let rs = "/// Collects options step by step.\npub struct ConfigBuilder { port: u16 }\nimpl ConfigBuilder {\n    pub fn build(self) -> Config { Config { port: self.port } }\n}\n";
        assert!(discussed("Builder", &[], rs, false).is_ok());
        assert!(
            discussed("Builder", &[], rs, true).is_ok(),
            "not fenced: all prose"
        );
    }

    #[test]
    fn looping_prose_is_repetitive() {
        assert!(repetitive("The pattern is a design pattern that is used to create a design pattern that is used to create a design pattern that is used to"));
        assert!(!repetitive("A builder collects optional settings, then builds the value in one call; use it when a type has many optional fields."));
    }

    #[test]
    fn numbers_do_not_ground_a_name() {
        assert!(!grounded("Pattern fantasy 1", "pattern 1 of the text"));
        assert!(grounded("Builder 2", "a builder"));
    }

    #[test]
    fn links_and_urls_are_dropped_from_prose() {
        assert_eq!(
            without_links(
                "See [the book](https://x.org/a) or [ref][1], https://y.org and [x] then."
            ),
            "See or , and [x] then."
        );
    }

    #[test]
    fn names_of_one_pattern_meet() {
        for n in [
            "Builder",
            "builder pattern",
            "The Builder",
            "Builders",
            "BUILDER  Pattern",
        ] {
            assert_eq!(pattern_key(n), "builder", "{n}");
        }
        assert_eq!(pattern_key("The Default trait"), "default trait");
        assert_eq!(pattern_key("Strategy design pattern"), "strategy");
        assert_eq!(
            pattern_key("Implementing Drop"),
            pattern_key("Drop implementation")
        );
        assert_ne!(pattern_key("Visitor"), pattern_key("Builder"));
    }

    #[test]
    fn evidence_must_be_in_the_chunk() {
        let chunk = "Use a *builder* when a type has\nmany optional fields.";
        assert!(check_finding("Builder", "a builder when a type has many", chunk, false).is_ok());
        let err = check_finding("Builder", "builders are always slow", chunk, false).unwrap_err();
        assert!(err.contains("does not occur"), "{err}");
    }

    #[test]
    fn generic_names_and_code_identifiers_are_refused() {
        let chunk = "fn parse_config(s: &str) {}\ntrait Visitor {}\nThe example shows parsing.";
        assert!(check_finding("Rust", "The example shows", chunk, false).is_err());
        assert!(check_finding("pattern", "The example shows", chunk, false).is_err());
        assert!(check_finding("Pattern 2", "The example shows", chunk, false).is_err());
        assert!(grounded("FooBuilder", "a builder for foo"));
        let err = check_finding("parse_config", "The example shows", chunk, false).unwrap_err();
        assert!(err.contains("identifier"), "{err}");
        assert!(check_finding("Config parsing", "The example shows", chunk, false).is_ok());
        assert!(
            check_finding("Visitor", "The example shows", chunk, false).is_ok(),
            "types may name patterns"
        );
        let long = "a very long name that is really a whole sentence about things";
        assert!(check_finding(long, "The example shows", chunk, false).is_err());
    }

    #[test]
    fn file_names_become_their_stem() {
        assert_eq!(clean_name("mem-replace.md"), "mem-replace");
        assert_eq!(clean_name(" src/guard.RS "), "Guard");
        assert_eq!(clean_name("builder pattern"), "Builder pattern");
        assert_eq!(clean_name("mem::take"), "mem::take");
        assert_eq!(clean_name("Builder"), "Builder");
        assert_eq!(clean_name(".md"), ".md");
    }

    #[test]
    fn echo_ratio_spots_copied_prose() {
        let prompt = "Pattern: Builder. What the notes say: collects settings before build.";
        assert!(
            echo_ratio(
                "What the notes say: collects settings before build.",
                prompt
            ) > 0.9
        );
        assert!(
            echo_ratio(
                "A builder separates configuration from construction.",
                prompt
            ) < 0.3
        );
    }

    #[test]
    fn names_must_come_from_the_text() {
        let text = "Builders collect options.\nConstructors are associated functions.";
        assert!(grounded("Builder", text));
        assert!(grounded("The constructor idiom", text));
        assert!(!grounded("Templates and the Cypher language", text));
        assert!(grounded("?", text));
        assert!(
            check_finding("Visitor pattern", "Builders collect options.", text, false).is_err()
        );
    }

    #[test]
    fn names_that_echo_the_instructions_are_caught() {
        let task =
            "Task: list the Rust programming patterns or idioms that the text above explains";
        assert!(echoes("List of Rust programming patterns", task));
        assert!(!echoes("Rust patterns", task), "two words are not an echo");
        assert!(!echoes("Builder with typestate", task));
    }

    #[test]
    fn evidence_that_does_not_mention_the_name_gives_way_to_a_sentence_that_does() {
        let text = "## Misc\n\nI returned `Result<(), Box<dyn Error>>` from main.\n\n\
                    - the API guidelines checklist (not read yet)\n";
        assert_eq!(
            evidence_naming(
                "Box<dyn Error>",
                "the API guidelines checklist (not read yet)",
                text
            )
            .as_deref(),
            Some("I returned `Result<(), Box<dyn Error>>` from main.")
        );
        assert_eq!(
            evidence_naming(
                "Box<dyn Error>",
                "I returned `Result<(), Box<dyn Error>>` from main.",
                text
            ),
            None,
            "evidence that names it stays"
        );
        assert_eq!(
            evidence_naming("Typestate", "the API guidelines checklist", text),
            None
        );
    }
}
