//! Deterministic checks that do not trust the model and are not about language: code must be
//! copied from the chunk, evidence is placed on its lines, a page's slug stays in its folder.
//! The checks of names live in [`crate::text::checks`]. Pure functions.

pub use crate::text::checks::{normalise_text, repetitive};

/// Keeps a code example only if it was copied from the chunk.
pub fn checked_code(code: Option<&str>, chunk_text: &str) -> Option<String> {
    let code = code?.trim();
    if code.is_empty() {
        return None;
    }
    let squash = |s: &str| s.split_whitespace().collect::<String>();
    squash(chunk_text)
        .contains(&squash(code))
        .then(|| code.to_string())
}

/// The line range (1-based, inclusive, in the source) of the evidence within a chunk that
/// starts at `line_start`, or the whole chunk's range when it cannot be placed.
pub fn evidence_lines(
    evidence: &str,
    chunk_text: &str,
    line_start: i64,
    line_end: i64,
) -> (i64, i64) {
    let needle = evidence.trim();
    if needle.is_empty() {
        return (line_start, line_end);
    }
    if let Some(pos) = chunk_text.find(needle) {
        let first = line_start + chunk_text[..pos].matches('\n').count() as i64;
        let last = first + needle.matches('\n').count() as i64;
        return (first.min(line_end), last.min(line_end));
    }
    // Whitespace may differ: find the line holding the first words.
    let words: Vec<&str> = needle.split_whitespace().take(4).collect();
    let probe = words.join(" ");
    for (i, line) in chunk_text.lines().enumerate() {
        if normalise_text(line).contains(&normalise_text(&probe)) && !probe.is_empty() {
            let l = line_start + i as i64;
            return (l.min(line_end), l.min(line_end));
        }
    }
    (line_start, line_end)
}

/// A file-system-safe slug: no name from a model can leave its folder or hit a reserved name.
pub fn slug(name: &str) -> String {
    let mut s = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            s.push(c.to_ascii_lowercase());
        } else if !s.ends_with('-') && !s.is_empty() {
            s.push('-');
        }
        if s.len() >= 60 {
            break;
        }
    }
    let s = s.trim_matches('-').to_string();
    let reserved = [
        "con", "prn", "aux", "nul", "com1", "com2", "com3", "com4", "com5", "com6", "com7", "com8",
        "com9", "lpt1", "lpt2", "lpt3", "lpt4", "lpt5", "lpt6", "lpt7", "lpt8", "lpt9", "index",
        "summary", "readme", "sources",
    ];
    if s.is_empty() {
        "pattern".into()
    } else if reserved.contains(&s.as_str()) {
        format!("{s}-pattern")
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invented_code_is_dropped() {
        let chunk = "let x = Foo::new()\n    .bar(1);";
        assert_eq!(
            checked_code(Some("let x = Foo::new() .bar(1);"), chunk).as_deref(),
            Some("let x = Foo::new() .bar(1);")
        );
        assert_eq!(checked_code(Some("unsafe { magic() }"), chunk), None);
        assert_eq!(checked_code(Some("  "), chunk), None);
    }

    #[test]
    fn evidence_is_placed_on_its_lines() {
        let chunk = "a\nb\nthe quote\nc";
        assert_eq!(evidence_lines("the quote", chunk, 10, 13), (12, 12));
        assert_eq!(evidence_lines("not here", chunk, 10, 13), (10, 13));
    }

    #[test]
    fn slugs_stay_inside_the_folder() {
        assert_eq!(slug("../../etc/passwd"), "etc-passwd");
        assert_eq!(slug("CON"), "con-pattern");
        assert_eq!(slug("///"), "pattern");
        assert_eq!(slug("Builder pattern"), "builder-pattern");
        assert!(slug(&"x".repeat(500)).len() <= 60);
    }
}
