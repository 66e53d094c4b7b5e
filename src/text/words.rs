//! The word lists the rules about language use, each once, with the case it exists for; and
//! the look-ups made of them. Everything else in `text` reads a text's structure.

/// Section and document words that name no technique: the headings that structure one
/// topic's discussion ("Description", "Example", "See also") rather than start a new topic.
pub const STRUCTURE_WORDS: &[&str] = &[
    "todo",
    "fixme",
    "note",
    "notes",
    "links",
    "link",
    "references",
    "see also",
    "changelog",
    "misc",
    "example",
    "examples",
    "summary",
    "overview",
    "introduction",
    "intro",
    "motivation",
    "discussion",
    "advantages",
    "disadvantages",
    "conclusion",
    "contents",
    "credits",
    "license",
    "description",
    "usage",
    "tests",
    "test",
    "module docs",
    "use",
    "related",
    "further reading",
    "subject",
    "reading list",
    "downside",
    "upside",
    "problem",
    "solution",
    "fix",
    "bug",
    "drawbacks",
    "drawback",
    "alternatives",
    "alternative",
    "hint",
    "hints",
    "tip",
    "tips",
    "code example",
    "code examples",
    "talks",
    "repository",
    "faq",
    "warning",
    "caveats",
    "limitations",
    "details",
    "background",
    "appendix",
    "history",
    "acknowledgements",
];

/// True when a heading only structures a discussion (see [`STRUCTURE_WORDS`]); numbering and
/// a closing colon are ignored ("2. Examples:").
/// A grab-bag section ("Misc") names nothing, but it does not continue the topic above it
/// either.
pub fn is_structure_heading(heading: &str) -> bool {
    let h = without_numbering(heading)
        .trim_end_matches(':')
        .to_lowercase();
    STRUCTURE_WORDS.contains(&h.as_str()) && !GRAB_BAGS.contains(&h.as_str())
}

/// A heading without its numbering: "3. Builders" → "Builders"; a heading that opens with a
/// number that numbers nothing ("2021 edition") is kept whole.
pub fn without_numbering(heading: &str) -> &str {
    let h = heading.trim();
    after_number(h).map_or(h, |(rest, _)| rest)
}

/// The text past the number that opens `s` as an item of a list or a book, and whether the
/// number is closed by a `.` or `)` ("3. Builders", "2) boxes", "0\\) Setup": closed; "2.1
/// Builder": a section number, not closed). A number that numbers nothing ("2021 edition",
/// "1.5x faster") is `None`. The one reading of numbering: headings' (`terms::is_numbered`,
/// [`without_numbering`]) and list items' (`quotes::opens_list_item`).
pub fn after_number(s: &str) -> Option<(&str, bool)> {
    let digits = |t: &str| t.len() - t.trim_start_matches(|c: char| c.is_ascii_digit()).len();
    let first = digits(s);
    if first == 0 {
        return None;
    }
    let mut rest = &s[first..];
    let mut sections = false; // "2.1": dotted groups of digits
    while let Some(t) = rest.strip_prefix('.').filter(|t| digits(t) > 0) {
        rest = &t[digits(t)..];
        sections = true;
    }
    let unescaped = rest.strip_prefix('\\').unwrap_or(rest);
    let closed = unescaped.starts_with(['.', ')']);
    if closed {
        rest = &unescaped[1..];
    }
    let ends = rest.is_empty() || rest.starts_with(char::is_whitespace);
    ((closed || sections) && ends).then(|| (rest.trim_start(), closed))
}

/// Headings of sections that gather unrelated things.
const GRAB_BAGS: &[&str] = &["misc", "miscellaneous", "other", "odds and ends", "random"];

/// Nouns that close a named technique: "the newtype pattern", "an extension trait", "the
/// typestate approach".
pub const HEAD_NOUNS: &[&str] = &[
    "pattern",
    "idiom",
    "anti-pattern",
    "antipattern",
    "trait",
    "macro",
    "operator",
    "syntax",
    "technique",
    "approach",
];

/// Words that open a noun phrase: a name read back from its head noun is a phrase of its
/// own when one stands before it ("the strategy pattern", "which observation pattern"),
/// whatever word follows the head.
pub const DETERMINERS: &[&str] = &[
    "the", "a", "an", "this", "that", "these", "those", "its", "our", "your", "my", "their", "his",
    "her", "which", "what", "each", "every", "some", "any", "no", "such", "same",
];

/// True for a word that ends a name read backwards from its head noun: a determiner, a
/// verb, a preposition ("the strategy pattern", "uses builder pattern").
pub fn breaks_a_name(word: &str) -> bool {
    DETERMINERS.contains(&word) || BREAK_WORDS.contains(&word)
}

/// Words besides the determiners that end a name read backwards from its head noun (see
/// [`breaks_a_name`]).
pub const BREAK_WORDS: &[&str] = &[
    "is",
    "are",
    "was",
    "be",
    "of",
    "to",
    "in",
    "on",
    "for",
    "with",
    "and",
    "or",
    "as",
    "by",
    "it",
    "one",
    "not",
    "use",
    "uses",
    "using",
    "used",
    "call",
    "called",
    "named",
    "like",
    "from",
    "into",
    "via",
    "than",
    "then",
    "so",
    "but",
    "if",
    "when",
    "we",
    "you",
    "i",
    "they",
    "have",
    "has",
    "rust",
    "takes",
    "take",
    "public",
    "private",
    "new",
    "own",
    "whole",
    "common",
    "particular",
    "other",
    "different",
    "similar",
    "custom",
    "general",
    "simple",
    "specific",
    "certain",
    "more",
    "most",
    "less",
    "slightly",
    "rich",
    "good",
    "bad",
    "best",
    "better",
    "usual",
    "known",
    "well",
    "basic",
    "main",
    "useful",
    "important",
    "nice",
    "powerful",
    "typical",
    "various",
    "helpful",
    "handy",
    "following",
    "above",
    "below",
    "previous",
    "next",
    "single",
    "many",
    "several",
    "all",
    "both",
    "only",
    "just",
    "also",
    "very",
    "makes",
    "make",
    "allow",
    "allows",
    "expose",
    "identify",
    "facilitate",
    "including",
    "designing",
    "implement",
    "implements",
    "implementing",
    "write",
    "writing",
    "do",
    "does",
];

/// Words that start a clause or an aside, never a name.
pub const NOT_A_NAME_START: &[&str] = &[
    "by", "in", "on", "at", "for", "with", "from", "to", "of", "and", "but", "or", "so", "if",
    "when", "while", "still", "also", "just", "mostly", "then", "now", "here", "there", "some",
    "many", "most", "all", "not", "no", "yes", "maybe", "perhaps", "again", "same", "such",
];

/// Words that follow a verb rather than an adjective: "Tidied up …", "Moved the …".
pub const FUNCTION_WORDS: &[&str] = &[
    "up", "out", "off", "down", "over", "away", "back", "the", "a", "an", "to", "with", "on", "in",
    "into", "about", "my", "our", "it", "that", "this", "some", "all",
];

/// Verbs that say what a technique does to a program, after a subject led by a gerund.
pub const EFFECT_VERBS: &[&str] = &[
    "hides",
    "makes",
    "lets",
    "helps",
    "keeps",
    "gives",
    "avoids",
    "costs",
    "saves",
    "prevents",
    "causes",
    "allows",
    "breaks",
    "removes",
    "reduces",
    "turns",
    "guarantees",
    "ensures",
];

/// Words in -ing that lead no technique: "Nothing is copied", "String slices".
pub const NOT_GERUNDS: &[&str] = &[
    "nothing",
    "something",
    "anything",
    "everything",
    "thing",
    "things",
    "string",
    "strings",
    "during",
    "morning",
    "evening",
    "spring",
    "padding",
    "setting",
    "settings",
    "warning",
    "warnings",
    "meaning",
    "building",
    "ceiling",
];

/// Prepositions that make the code span after them a place: "in `load_all`".
pub const PLACE_WORDS: &[&str] = &["in", "on", "inside", "within", "at"];

/// Words of dates and of note-keeping.
pub const CALENDAR_WORDS: &[&str] = &[
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
    "mon",
    "tue",
    "tues",
    "wed",
    "thu",
    "thur",
    "thurs",
    "fri",
    "sat",
    "sun",
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
    "jan",
    "feb",
    "mar",
    "apr",
    "jun",
    "jul",
    "aug",
    "sep",
    "sept",
    "oct",
    "nov",
    "dec",
    "week",
    "weeks",
    "weekly",
    "weekend",
    "day",
    "days",
    "daily",
    "month",
    "monthly",
    "year",
    "today",
    "yesterday",
    "tomorrow",
    "morning",
    "afternoon",
    "evening",
    "night",
    "log",
    "journal",
    "diary",
    "notes",
    "note",
    "entry",
    "entries",
    "update",
    "updates",
    "standup",
    "retro",
    "til",
    "and",
    "to",
    "of",
    "the",
    "st",
    "nd",
    "rd",
    "th",
    "am",
    "pm",
    "q1",
    "q2",
    "q3",
    "q4",
];

/// Macros every program uses; naming one says nothing about a technique.
pub const COMMON_MACROS: &[&str] = &[
    "println",
    "print",
    "eprintln",
    "eprint",
    "assert",
    "assert_eq",
    "assert_ne",
    "debug_assert",
    "debug_assert_eq",
    "panic",
    "unreachable",
    "todo",
    "unimplemented",
    "dbg",
    "vec",
    "include_str",
    "concat",
    "env",
    "write",
    "writeln",
    "format",
];

/// Rust's strict keywords (the language reference's list): words joined by hyphens that are
/// all keywords ("let-else", "if-let", "async-await") name a construct of the language.
pub const RUST_KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum", "extern",
    "false", "fn", "for", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub",
    "ref", "return", "self", "static", "struct", "super", "trait", "true", "type", "unsafe", "use",
    "where", "while",
];

/// Rust's primitive numeric types: as words of a text, they are Rust.
pub const NUMERIC_TYPES: &[&str] = &[
    "u8", "u16", "u32", "u64", "u128", "usize", "i8", "i16", "i32", "i64", "i128", "isize", "f32",
    "f64",
];

/// Names every program has, besides keywords and numeric types: the other primitive types,
/// `main`, `new`, the variants of `Option` and `Result`.
const EVERYDAY_NAMES: &[&str] = &[
    "main", "new", "str", "string", "bool", "char", "none", "some", "ok", "err",
];

/// A keyword, a primitive type or a name every program has (lower-case): never the name of a
/// technique on its own.
pub fn is_everyday_name(word: &str) -> bool {
    [RUST_KEYWORDS, NUMERIC_TYPES, EVERYDAY_NAMES]
        .iter()
        .any(|list| list.contains(&word))
}

/// Traits nearly every type implements; implementing one is plumbing, not a technique.
pub const EVERYDAY_TRAITS: &[&str] = &[
    "Debug",
    "Display",
    "Clone",
    "Copy",
    "PartialEq",
    "Eq",
    "PartialOrd",
    "Ord",
    "Hash",
    "Error",
];

/// Attributes that are plumbing rather than a technique.
pub const PLUMBING_ATTRIBUTES: &[&str] = &[
    "derive",
    "cfg",
    "test",
    "allow",
    "warn",
    "deny",
    "inline",
    "doc",
    "path",
    "macro_use",
];

/// Containers every program uses, with any element type: `Vec<char>` or `Option<Job>` names
/// the example's data, not a technique.
pub const EVERYDAY_TYPES: &[&str] = &[
    "Vec", "Option", "Result", "Box", "String", "HashMap", "HashSet", "BTreeMap", "BTreeSet",
    "VecDeque",
];

/// Names that say nothing a reader could look up.
pub const GENERIC: &[&str] = &[
    "",
    "rust",
    "code",
    "example",
    "examples",
    "function",
    "functions",
    "method",
    "programming",
    "design",
    "design pattern",
    "text",
    "none",
    "n a",
    "na",
    "unknown",
    "other",
    "rust code",
    "rust pattern",
    "rust idiom",
    "best practice",
    "best practices",
    "summary",
    "introduction",
    "overview",
];

/// Words a name holds besides its significant ones ("Builder *with* typestate"); with the
/// articles and the pattern words, not counted when a name is looked for in a text.
pub const STOPWORDS: &[&str] = &[
    "and", "for", "with", "from", "into", "over", "use", "using", "of", "to", "in", "on", "or",
    "by", "as", "its", "your", "via", "rust",
];

/// True for a word that does not make a name (see [`STOPWORDS`]).
pub fn is_stopword(w: &str) -> bool {
    STOPWORDS.contains(&w) || ARTICLES.contains(&w) || PATTERN_WORDS.contains(&w)
}

/// Words of a name that say "a technique" without naming one: "Builder pattern" is "Builder".
pub const PATTERN_WORDS: &[&str] = &["pattern", "patterns", "idiom", "idioms"];

/// True for a name that says nothing a reader could look up (see [`GENERIC`]).
pub fn is_generic(key: &str) -> bool {
    GENERIC.contains(&key) || PATTERN_WORDS.contains(&key)
}

/// Articles, the first determiners: "The newtype pattern" names what "newtype pattern" names.
pub const ARTICLES: &[&str] = DETERMINERS.split_at(3).0;

/// `s` after its leading article, if it has one ("The newtype" → "newtype").
pub fn without_article(s: &str) -> Option<&str> {
    let (first, rest) = s.split_once(' ')?;
    ARTICLES
        .iter()
        .any(|a| first.eq_ignore_ascii_case(a))
        .then_some(rest)
}

/// Pronouns of the first person: a heading or lead that holds one is the author's diary
/// ("What I learned"), not a name.
pub const FIRST_PERSON: &[&str] = &["i", "we", "my", "our", "me"];

/// Words that make a clause of a lead, besides the first person: a verb of being, a modal,
/// another pronoun ("Some may ask", "Works with guards too").
pub const CLAUSE_WORDS: &[&str] = &[
    "is", "are", "was", "were", "you", "it", "this", "too", "may", "might", "can", "could", "will",
    "would", "should", "must",
];

/// Words too common to find the sentence that names a finding.
pub const EVIDENCE_STOPWORDS: &[&str] = &["the", "and", "for", "with", "implementing"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_number_opens_an_item_only_when_it_numbers_one() {
        assert_eq!(after_number("3. Builders"), Some(("Builders", true)));
        assert_eq!(after_number("2) boxes"), Some(("boxes", true)));
        assert_eq!(after_number("0\\) Setup"), Some(("Setup", true)));
        assert_eq!(after_number("2.1 Builder"), Some(("Builder", false)));
        assert_eq!(after_number("12."), Some(("", true)));
        for plain in [
            "2021 edition",
            "1.5x faster",
            "3.Builders",
            "Builder",
            "v2. api",
        ] {
            assert_eq!(after_number(plain), None, "{plain}");
        }
        assert_eq!(without_numbering("  4) Use `Cow`"), "Use `Cow`");
        assert_eq!(without_numbering("2021 edition"), "2021 edition");
    }
}
