//! Quarry's grammars checked against llama.cpp's own converter (`json_schema_to_grammar`,
//! reached through `llama::reference_grammar`), the way the Rust scanner is checked against
//! syn: for every built-in role's schema, and for the extractor's schema with its term, quote
//! and code fields limited as `Role::constrained` limits them, valid replies (hand-written and
//! generated from the schema) must be admitted by both grammars and pass [`validate`], and
//! invalid ones (a required property missing, a value of the wrong type, a property the schema
//! does not name, a value outside an enum, a string or list beyond its bounds) must be refused
//! by both.
//!
//! Where the two grammars legitimately differ, only what both promise is asserted (replies as
//! serde_json writes them, compact or pretty), and the differences are pinned by
//! [`known_differences_from_llama_cpp`]:
//!
//! * whitespace: quarry's `ws` is nothing, one space, or one newline and up to 8 spaces or
//!   tabs, allowed around every token (also before a comma); llama.cpp's `space` is nothing,
//!   one space, or one or two newlines and up to 20 spaces or tabs, after an opening bracket,
//!   a key, a colon or a comma and before a closing bracket, never before a comma. A model
//!   under quarry's grammar cannot write blank lines or deep indentation.
//! * escapes: quarry admits `\/` in a string (JSON allows it); llama.cpp's `char` does not.
//! * property order: both keep the declared order, but llama.cpp writes the required
//!   properties first and the optional ones after them; quarry keeps optional ones where they
//!   are declared. The built-in schemas declare required properties first, where both agree.
//! * default caps: quarry bounds a string without `maxLength` to
//!   [`DEFAULT_MAX_STRING_LEN`](super::DEFAULT_MAX_STRING_LEN) characters and a list without
//!   `maxItems` to [`DEFAULT_MAX_ITEMS`](super::DEFAULT_MAX_ITEMS) items; llama.cpp leaves them
//!   unbounded. The built-in schemas bound every string and list.
//! * `{"type": "object"}` without properties: quarry admits only `{}`, llama.cpp any object.
//! * integer bounds: llama.cpp writes `minimum`/`maximum` into the grammar; quarry only drops
//!   the sign (`minimum >= 0`) or zero (`minimum > 0`) and leaves the rest to [`validate`].

use serde_json::{json, Map, Value};

use super::matcher::{check_structure, parse_llama_gbnf, Gbnf};
use super::{schema_to_gbnf, validate, DEFAULT_MAX_ITEMS, DEFAULT_MAX_STRING_LEN};
use crate::agent::Agents;
use crate::llm::llama::reference_grammar;

/// Both grammars of one schema.
struct Pair {
    what: String,
    quarry: Gbnf,
    llama: Gbnf,
}

impl Pair {
    fn new(what: &str, schema: &Value) -> Pair {
        let quarry = check_structure(&schema_to_gbnf(schema).expect("quarry compiles it"));
        let text = reference_grammar(schema).expect("llama.cpp converts it");
        let llama = parse_llama_gbnf(&text).unwrap_or_else(|e| panic!("{what}: {e}"));
        Pair {
            what: what.to_string(),
            quarry,
            llama,
        }
    }

    /// (quarry admits, llama.cpp admits).
    fn admit(&self, text: &str) -> (bool, bool) {
        (self.quarry.accepts(text), self.llama.accepts(text))
    }
}

/// A markdown chunk of the kind the extractor reads: sentences with quotes, a backslash and
/// non-ASCII letters, and code lines.
const CHUNK: &str = r#"# Builder pattern

A *builder* collects the options of a value before it builds it. The "builder" keeps each
setting — a name, a path like C:\data, a size — until `build` is called.

```rust
let b = Builder::new().name("x").path("C:\\data");
let v = b.build();
```
"#;

/// A chunk of only code: its lines are what quote fields offer.
const CODE_ONLY: &str = "impl Drop for Guard {\n    fn drop(&mut self) { self.close(); }\n}\n";

/// The schemas compared: each built-in role's, and the extractor's limited to an input's
/// terms, sentences and code lines. Each with the role's own schema, which a reply under the
/// limited one must also pass (it is what the engine validates against).
fn schemas() -> Vec<(String, Value, Value)> {
    let agents = Agents::all_built_in();
    let mut out = Vec::new();
    for role in agents.roles() {
        out.push((
            role.spec.name.clone(),
            role.schema.clone(),
            role.schema.clone(),
        ));
    }
    let extractor = agents.role("extractor").expect("a built-in extractor");
    let terms: Vec<String> = ["Builder pattern", "builder", "x", "Builder::new", "Drop"]
        .map(String::from)
        .to_vec();
    for (what, input, terms) in [
        (
            "extractor, limited to terms, sentences and code",
            CHUNK,
            &terms[..],
        ),
        (
            "extractor, no terms: sentences and code only",
            CHUNK,
            &[][..],
        ),
        ("extractor, a chunk of only code", CODE_ONLY, &terms[3..]),
    ] {
        let (schema, _) = extractor.constrained(input, terms).expect("constrained");
        assert_ne!(schema, extractor.schema, "{what}: nothing was limited");
        out.push((what.to_string(), schema, extractor.schema.clone()));
    }
    out
}

/// Hand-written replies every built-in role's schema accepts (by role name).
fn hand_written(role: &str) -> Vec<Value> {
    match role {
        "extractor" => vec![
            json!({"findings": []}),
            json!({"findings": [{"name": "Builder", "category": "design pattern",
                "summary": "Collects the settings first.", "evidence": "A builder collects options.",
                "code": "let b = Builder::new();"}]}),
            json!({"findings": [
                {"name": "Newtype", "category": "idiom", "summary": "Wraps one type in another.",
                 "evidence": "struct Meters(f64); \"wraps\" it — ünïcode 😀"},
                {"name": "RAII", "category": "other", "summary": "Drop closes the file.",
                 "evidence": "impl Drop for Guard", "code": ""},
                {"name": "abc", "category": "anti-pattern", "summary": "0123456789",
                 "evidence": "a\\b\tc/d\ne"}]}),
        ],
        "validator" => vec![
            json!({"verdict": "accept", "reason": "The text shows it."}),
            json!({"verdict": "reject", "reason": "no!"}),
        ],
        "writer" => vec![json!({"summary": "Collects settings before building.",
            "when_to_use": "Many optional settings.", "pitfalls": ""})],
        "synthesizer" => vec![json!({"overview": "Twenty characters at least, \"quoted\"."})],
        other => panic!("no hand-written replies for role {other}"),
    }
}

/// Characters a generated string is made of: letters, the JSON escapes (quote, backslash,
/// control characters), a slash, and non-ASCII letters inside and outside the BMP.
const ALPHABET: &[char] = &[
    'a', 'b', 'Z', '0', ' ', '\u{a0}', '-', ']', '{', '"', '\\', '/', '\n', '\t', '\u{1}', 'é',
    '—', '😀',
];

/// A value `schema` accepts, drawn at random: every required property and some optional
/// ones, in declared order; a string or list of any length its bounds allow (within the
/// grammar's default caps, which llama.cpp does not have); a listed value.
fn generate(schema: &Value, rng: &mut fastrand::Rng) -> Value {
    if let Some(c) = schema.get("const") {
        return c.clone();
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        return values[rng.usize(..values.len())].clone();
    }
    let bound = |key: &str| schema.get(key).and_then(Value::as_u64);
    let len = |rng: &mut fastrand::Rng, min: u64, max: u64| -> usize {
        // The bounds themselves half of the time, something between them otherwise.
        let n = match rng.u8(..4) {
            0 => min,
            1 => max,
            _ => rng.u64(min..=max),
        };
        usize::try_from(n).expect("a small bound")
    };
    match schema.get("type").and_then(Value::as_str) {
        Some("object") => {
            let required: Vec<&str> = schema
                .get("required")
                .and_then(Value::as_array)
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let mut map = Map::new();
            let props = schema.get("properties").and_then(Value::as_object);
            for (key, sub) in props.into_iter().flatten() {
                if required.contains(&key.as_str()) || rng.bool() {
                    map.insert(key.clone(), generate(sub, rng));
                }
            }
            Value::Object(map)
        }
        Some("array") => {
            let min = bound("minItems").unwrap_or(0);
            let max = bound("maxItems").unwrap_or(DEFAULT_MAX_ITEMS);
            let n = len(rng, min, max);
            (0..n).map(|_| generate(&schema["items"], rng)).collect()
        }
        Some("string") => {
            let min = bound("minLength").unwrap_or(0);
            let max = bound("maxLength").unwrap_or(DEFAULT_MAX_STRING_LEN);
            let n = len(rng, min, max);
            Value::String(
                (0..n)
                    .map(|_| ALPHABET[rng.usize(..ALPHABET.len())])
                    .collect(),
            )
        }
        Some("integer") => json!(rng.i64(-1000..1000)),
        Some("number") => json!(rng.f64() * 100.0),
        Some("boolean") => json!(rng.bool()),
        Some("null") => Value::Null,
        other => panic!("the generator does not know type {other:?} ({schema})"),
    }
}

/// Replies `schema` refuses, made from the valid `v`, each with what was changed: a required
/// property removed, a property added that the schema does not name, a value of the wrong
/// type, a value outside its enum, a string one character beyond its bounds, one item more
/// than `maxItems`; at every object and list `v` holds (the first item of a list).
fn mutations(schema: &Value, v: &Value) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let wrong_type = match schema.get("type").and_then(Value::as_str) {
        Some("string") => json!(7),
        Some("object") => json!([]),
        _ => json!("text"),
    };
    out.push(("a value of the wrong type".to_string(), wrong_type));
    if schema.get("enum").is_some() {
        out.push((
            "a value outside the enum".to_string(),
            json!("not one of them"),
        ));
    }
    match v {
        Value::Object(map) => {
            let props = schema["properties"].as_object().expect("properties");
            let required: Vec<&str> = schema["required"]
                .as_array()
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            for key in map.keys() {
                if required.contains(&key.as_str()) {
                    let mut m = map.clone();
                    m.shift_remove(key);
                    out.push((format!("required {key:?} missing"), Value::Object(m)));
                }
            }
            let mut m = map.clone();
            m.insert("extra".to_string(), json!(1));
            out.push((
                "a property the schema does not name".to_string(),
                Value::Object(m),
            ));
            for (key, value) in map {
                for (why, changed) in mutations(&props[key], value) {
                    let mut m = map.clone();
                    m.insert(key.clone(), changed);
                    out.push((format!("{key}: {why}"), Value::Object(m)));
                }
            }
        }
        Value::Array(items) => {
            if let (Some(max), Some(first)) = (schema["maxItems"].as_u64(), items.first()) {
                let n = usize::try_from(max).expect("a small bound") + 1;
                out.push((
                    format!("{n} items, more than maxItems"),
                    Value::Array(vec![first.clone(); n]),
                ));
            }
            if let Some(first) = items.first() {
                for (why, changed) in mutations(&schema["items"], first) {
                    let mut list = items.clone();
                    list[0] = changed;
                    out.push((format!("[0]: {why}"), Value::Array(list)));
                }
            }
        }
        Value::String(_) if schema.get("enum").is_none() => {
            if let Some(max) = schema["maxLength"].as_u64() {
                let n = usize::try_from(max).expect("a small bound") + 1;
                out.push(("longer than maxLength".to_string(), json!("x".repeat(n))));
            }
            if let Some(min) = schema["minLength"].as_u64().filter(|&m| m > 0) {
                let n = usize::try_from(min).expect("a small bound") - 1;
                out.push(("shorter than minLength".to_string(), json!("x".repeat(n))));
            }
        }
        _ => {}
    }
    out
}

/// Issue 19, item 6: for every built-in role's schema and the extractor's limited ones, both
/// grammars admit every valid reply (hand-written and 40 generated, compact and pretty) and
/// refuse every invalid one made from them; each valid reply passes [`validate`] against the
/// schema and the role's own schema, and each invalid one fails it.
#[test]
fn quarry_and_llama_cpp_grammars_agree_on_role_replies() {
    let mut rng = fastrand::Rng::with_seed(19);
    let mut checked = (0, 0);
    for (what, schema, role_schema) in schemas() {
        let pair = Pair::new(&what, &schema);
        let mut valid: Vec<Value> = if schema == role_schema {
            hand_written(&what)
        } else {
            Vec::new()
        };
        valid.extend((0..40).map(|_| generate(&schema, &mut rng)));
        for (i, v) in valid.iter().enumerate() {
            assert_eq!(validate(&schema, v), Ok(()), "{what}: {v}");
            assert_eq!(validate(&role_schema, v), Ok(()), "{what}: {v}");
            let compact = serde_json::to_string(v).expect("JSON");
            let pretty = serde_json::to_string_pretty(v).expect("JSON");
            for text in [&compact, &pretty] {
                assert_eq!(pair.admit(text), (true, true), "{}: {text}", pair.what);
                checked.0 += 1;
            }
            // Every invalid variant of the first replies (the mutations of each are many).
            if i >= 12 {
                continue;
            }
            for (why, bad) in mutations(&schema, v) {
                assert!(
                    validate(&schema, &bad).is_err(),
                    "{what}: {why} is valid: {bad}"
                );
                let text = serde_json::to_string(&bad).expect("JSON");
                assert_eq!(
                    pair.admit(&text),
                    (false, false),
                    "{}: {why}: {text}",
                    pair.what
                );
                checked.1 += 1;
            }
        }
    }
    assert!(
        checked.0 > 500 && checked.1 > 500,
        "too few replies checked: {checked:?}"
    );
}

/// The differences listed in this module's documentation, as they stand: when llama.cpp's
/// converter changes, this says which.
#[test]
fn known_differences_from_llama_cpp() {
    let agents = Agents::all_built_in();
    let schema = &agents.role("validator").expect("validator").schema;
    let pair = Pair::new("validator", schema);
    // Whitespace: a blank line and deep indentation only llama.cpp admits, a space before a
    // comma only quarry.
    let blank = "{\n\n\"verdict\": \"accept\", \"reason\": \"fine\"}";
    assert_eq!(pair.admit(blank), (false, true));
    let deep = format!(
        "{{\n{}\"verdict\": \"accept\", \"reason\": \"fine\"}}",
        " ".repeat(12)
    );
    assert_eq!(pair.admit(&deep), (false, true));
    let space_comma = r#"{"verdict": "accept" , "reason": "fine"}"#;
    assert_eq!(pair.admit(space_comma), (true, false));
    // An escaped slash.
    assert_eq!(
        pair.admit(r#"{"verdict": "accept", "reason": "a\/b"}"#),
        (true, false)
    );

    // Property order: an optional property declared before a required one.
    let s = json!({"type": "object", "properties": {
        "a": {"type": "boolean"}, "b": {"type": "boolean"}}, "required": ["b"]});
    let pair = Pair::new("optional first", &s);
    assert_eq!(pair.admit(r#"{"a":true,"b":true}"#), (true, false));
    assert_eq!(pair.admit(r#"{"b":true,"a":true}"#), (false, true));
    assert_eq!(pair.admit(r#"{"b":true}"#), (true, true));

    // Default caps on strings and lists.
    let s = json!({"type": "object", "properties": {
        "s": {"type": "string"}, "l": {"type": "array", "items": {"type": "boolean"}}},
        "required": ["s", "l"]});
    let pair = Pair::new("uncapped", &s);
    let long = format!(r#"{{"s":"{}","l":[]}}"#, "x".repeat(513));
    assert_eq!(pair.admit(&long), (false, true));
    let many = format!(r#"{{"s":"","l":[{}]}}"#, vec!["true"; 17].join(","));
    assert_eq!(pair.admit(&many), (false, true));

    // An object without properties, and integer bounds.
    let pair = Pair::new("any object", &json!({"type": "object"}));
    assert_eq!(pair.admit("{}"), (true, true));
    assert_eq!(pair.admit(r#"{"k":1}"#), (false, true));
    let pair = Pair::new(
        "bounded integer",
        &json!({"type": "integer", "minimum": 1, "maximum": 9}),
    );
    assert_eq!(pair.admit("5"), (true, true));
    assert_eq!(pair.admit("10"), (true, false));
}
