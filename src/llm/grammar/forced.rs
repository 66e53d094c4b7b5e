//! The text a schema forces after a partial reply: [`forced`], for jump-forward decoding (the
//! engine appends it in one batch instead of sampling it token by token).

use serde_json::Value;

use super::repair::{Partial, PrefixReader, Read};

/// The text every reply the schema allows must go on with after `reply` (a prefix of one the
/// schema's grammar admits), when the reply is cut inside a string whose field is an `enum`
/// or `const` of strings (a term, a quoted sentence): the rest that all the values it may still
/// become share, to the closing quote when one value is left. Empty when the next character is
/// the model's to choose, or when the reply cannot be read (nothing is forced on a guess).
///
/// Only values are forced, never keys or whitespace (the grammar lets the model choose its
/// spacing). The text is raw JSON, escaped as the grammar spells each value.
pub fn forced(schema: &Value, reply: &str) -> String {
    forced_in(schema, reply).map_or_else(String::new, |(_, rest)| rest)
}

/// [`forced`], with the byte offset in `reply` of the opening quote of the string it ends
/// (where a tokenizer can start reading the whole value).
pub fn forced_in(schema: &Value, reply: &str) -> Option<(usize, String)> {
    let mut reader = PrefixReader { s: reply, i: 0 };
    let Ok(Read::Cut(partial)) = reader.value() else {
        return None;
    };
    let (field, typed) = open_string(schema, &partial, 0)?;
    let values: Vec<&str> = match (field.get("enum"), field.get("const")) {
        (Some(Value::Array(vs)), _) => vs.iter().filter_map(Value::as_str).collect(),
        (None, Some(Value::String(c))) => vec![c.as_str()],
        _ => return None,
    };
    // The raw text of the open string: its quote and what was typed, escaped as the grammar
    // spells it, with the backslash of an escape the reply is cut in. A reply that spelled it
    // otherwise (`\/`, a `\u` escape) is left alone.
    let closed = Value::String(typed).to_string();
    let mut raw_typed = closed[..closed.len() - 1].to_string();
    if !reply.ends_with(&raw_typed) {
        raw_typed.push('\\');
        if !reply.ends_with(&raw_typed) {
            return None;
        }
    }
    let rests: Vec<String> = values
        .iter()
        .map(|v| Value::String(v.to_string()).to_string())
        .filter(|v| v.starts_with(&raw_typed))
        .map(|v| v[raw_typed.len()..].to_string())
        .collect();
    let (first, others) = rests.split_first()?;
    let mut shared = first.len();
    for r in others {
        let common = first
            .char_indices()
            .zip(r.chars())
            .take_while(|((_, a), b)| a == b)
            .last()
            .map_or(0, |((i, a), _)| i + a.len_utf8());
        shared = shared.min(common);
    }
    (shared > 0).then(|| (reply.len() - raw_typed.len(), first[..shared].to_string()))
}

/// The schema of the string the partial value is cut in, and what of it was read; `None` when
/// the cut is elsewhere (between values, in a key, a number) or under a keyword this does not
/// follow (`$ref`, `anyOf`).
fn open_string<'s>(
    schema: &'s Value,
    partial: &Partial,
    depth: usize,
) -> Option<(&'s Value, String)> {
    if depth > 64 {
        return None;
    }
    match partial {
        Partial::Str(s) => Some((schema, s.clone())),
        Partial::Object(_, Some((key, inner))) => {
            let field = schema.get("properties")?.get(key)?;
            open_string(field, inner, depth + 1)
        }
        Partial::Array(_, Some(inner)) => open_string(schema.get("items")?, inner, depth + 1),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({"type": "object", "properties": {
        "findings": {"type": "array", "items": {"type": "object", "properties": {
            "name": {"type": "string", "enum": ["Builder", "Builder pattern", "Newtype"]},
            "evidence": {"type": "string", "enum": ["Use a \"builder\" when\nmany.", "Avoid it."]},
            "summary": {"type": "string"}
        }}}}})
    }

    #[test]
    fn an_enum_value_begun_is_finished_as_far_as_its_values_agree() {
        let s = schema();
        let head = r#"{"findings": [{"name": ""#;
        // Nothing typed yet: the values share no first character.
        assert_eq!(forced(&s, head), "");
        // "N" can only become "Newtype".
        assert_eq!(forced(&s, &format!("{head}N")), "ewtype\"");
        // Where the string it ends opened.
        let n = format!("{head}N");
        assert_eq!(forced_in(&s, &n), Some((head.len() - 1, "ewtype\"".into())));
        // "Bu" may be "Builder" or "Builder pattern": their shared part, no quote.
        assert_eq!(forced(&s, &format!("{head}Bu")), "ilder");
        // "Builder" typed: the model chooses between the quote and " pattern".
        assert_eq!(forced(&s, &format!("{head}Builder")), "");
        assert_eq!(forced(&s, &format!("{head}Builder p")), "attern\"");
    }

    #[test]
    fn the_rest_is_spelled_as_the_grammar_escapes_it() {
        let s = schema();
        let reply = r#"{"findings": [{"name": "Newtype", "evidence": "Use a \"bu"#;
        assert_eq!(forced(&s, reply), r#"ilder\" when\nmany.""#);
        // Cut inside an escape: the rest starts with the escaped character.
        let cut = r#"{"findings": [{"name": "Newtype", "evidence": "Use a \"#;
        assert_eq!(forced(&s, cut), r#""builder\" when\nmany.""#);
    }

    #[test]
    fn nothing_is_forced_outside_an_enum_string() {
        let s = schema();
        for reply in [
            "",
            r#"{"findings": [{"summary": "A bu"#,    // free text
            r#"{"findings": [{"name": "Newtype", "#, // between members: a key comes
            r#"{"findings": [{"na"#,                 // inside a key
            r#"{"findings": [{"name": "Zebra"#,      // a value the grammar would not allow
            r#"{"findings": [{"name": "Newtype"}]}"#, // whole
            r#"{"findings": [{"name": "Ne\u0077"#,   // spelled otherwise than the grammar
            "not json",
        ] {
            assert_eq!(forced(&s, reply), "", "{reply}");
        }
    }

    #[test]
    fn a_const_is_forced_whole() {
        let s = json!({"type": "object", "properties": {"kind": {"const": "page"}}});
        assert_eq!(forced(&s, r#"{"kind": ""#), "page\"");
    }
}
