//! Replies checked against their schema: [`validate`], and [`admissible`] (the values of a
//! list a field accepts, by the same rules).

use serde_json::Value;

use super::compile::schema_to_gbnf;

/// Maximum `$ref` hops / nesting depth followed by [`validate`].
pub(super) const MAX_VALIDATE_DEPTH: usize = 128;

/// Check a parsed reply against `schema` (same subset as [`schema_to_gbnf`]; an unsupported
/// schema is itself reported as an error). All violations are collected; each message starts
/// with the JSON path of the offending value, e.g.
/// `$.findings[0].pattern: string longer than 80 characters`.
///
/// The grammar's default caps ([`DEFAULT_MAX_STRING_LEN`](super::DEFAULT_MAX_STRING_LEN),
/// [`DEFAULT_MAX_ITEMS`](super::DEFAULT_MAX_ITEMS)) are not enforced here; only what the
/// schema states.
pub fn validate(schema: &Value, value: &Value) -> Result<(), Vec<String>> {
    if let Err(e) = schema_to_gbnf(schema) {
        return Err(vec![format!("$: schema not usable: {e}")]);
    }
    let mut errors = Vec::new();
    Validator { root: schema }.check(schema, value, "$", 0, &mut errors);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// The strings of `options` that a field whose schema is `field` accepts, by [`validate`]'s
/// rules (type, `enum`/`const`, `minLength`/`maxLength`), in order and without duplicates.
/// `root` is the schema `field` belongs to (its `$ref`s point there). A grammar that limits
/// a field to a list of values (an input's terms, its sentences) offers only these, so it
/// never admits a reply the schema rejects.
pub fn admissible(root: &Value, field: &Value, options: &[String]) -> Vec<String> {
    let validator = Validator { root };
    let mut out: Vec<String> = Vec::new();
    for option in options {
        if out.contains(option) {
            continue;
        }
        let mut errs = Vec::new();
        validator.check(field, &Value::String(option.clone()), "$", 0, &mut errs);
        if errs.is_empty() {
            out.push(option.clone());
        }
    }
    out
}

pub(super) struct Validator<'a> {
    pub(super) root: &'a Value,
}

fn json_type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) if is_integer(v) => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

pub(super) fn path_key(path: &str, key: &str) -> String {
    let mut chars = key.chars();
    let ident = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ident {
        format!("{path}.{key}")
    } else {
        format!("{path}[{}]", Value::String(key.to_string()))
    }
}

pub(super) fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 60 {
        let cut: String = s.chars().take(57).collect();
        format!("{cut}...")
    } else {
        s
    }
}

impl Validator<'_> {
    pub(super) fn check(
        &self,
        schema: &Value,
        v: &Value,
        path: &str,
        depth: usize,
        errs: &mut Vec<String>,
    ) {
        if depth > MAX_VALIDATE_DEPTH {
            errs.push(format!("{path}: schema nesting too deep"));
            return;
        }
        let Some(obj) = schema.as_object() else {
            return;
        };
        if let Some(r) = obj.get("$ref").and_then(Value::as_str) {
            if let Some(t) = r.strip_prefix('#').and_then(|p| self.root.pointer(p)) {
                self.check(t, v, path, depth + 1, errs);
            }
            return;
        }
        for kw in ["anyOf", "oneOf"] {
            if let Some(alts) = obj.get(kw).and_then(Value::as_array) {
                let results: Vec<Vec<String>> = alts
                    .iter()
                    .map(|alt| {
                        let mut e = Vec::new();
                        self.check(alt, v, path, depth + 1, &mut e);
                        e
                    })
                    .collect();
                let matched = results.iter().filter(|e| e.is_empty()).count();
                if matched == 0 {
                    let detail: Vec<String> = results
                        .iter()
                        .enumerate()
                        .map(|(i, e)| format!("[{i}] {}", e.join("; ")))
                        .collect();
                    errs.push(format!(
                        "{path}: value matches none of the {kw} alternatives ({})",
                        detail.join(" | ")
                    ));
                } else if kw == "oneOf" && matched > 1 {
                    errs.push(format!(
                        "{path}: value matches {matched} oneOf alternatives, expected exactly one"
                    ));
                }
                return;
            }
        }
        if let Some(c) = obj.get("const") {
            if c != v {
                errs.push(format!("{path}: expected {}, got {}", short(c), short(v)));
            }
            return;
        }
        if let Some(values) = obj.get("enum").and_then(Value::as_array) {
            if !values.contains(v) {
                let list: Vec<String> = values.iter().map(|x| x.to_string()).collect();
                errs.push(format!(
                    "{path}: value {} is not one of [{}]",
                    short(v),
                    list.join(", ")
                ));
            }
            return;
        }
        let types: Vec<&str> = match obj.get("type") {
            Some(Value::String(t)) => vec![t.as_str()],
            Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
            _ if obj.contains_key("properties") => vec!["object"],
            _ if obj.contains_key("items") => vec!["array"],
            _ => vec![],
        };
        if !types.is_empty() && !types.iter().any(|t| type_matches(t, v)) {
            errs.push(format!(
                "{path}: expected {}, got {}",
                types.join(" or "),
                json_type_name(v)
            ));
            return;
        }
        match v {
            Value::String(s) => {
                let len = s.chars().count() as u64;
                if let Some(max) = obj.get("maxLength").and_then(Value::as_u64) {
                    if len > max {
                        errs.push(format!("{path}: string longer than {max} characters"));
                    }
                }
                if let Some(min) = obj.get("minLength").and_then(Value::as_u64) {
                    if len < min {
                        errs.push(format!("{path}: string shorter than {min} characters"));
                    }
                }
            }
            Value::Number(n) => {
                let x = n.as_f64().unwrap_or(f64::NAN);
                let bound = |k: &str| obj.get(k).and_then(Value::as_f64);
                if let Some(m) = bound("minimum") {
                    if x < m {
                        errs.push(format!("{path}: {n} is less than minimum {m}"));
                    }
                }
                if let Some(m) = bound("maximum") {
                    if x > m {
                        errs.push(format!("{path}: {n} is greater than maximum {m}"));
                    }
                }
                if let Some(m) = bound("exclusiveMinimum") {
                    if x <= m {
                        errs.push(format!("{path}: {n} is not greater than {m}"));
                    }
                }
                if let Some(m) = bound("exclusiveMaximum") {
                    if x >= m {
                        errs.push(format!("{path}: {n} is not less than {m}"));
                    }
                }
            }
            Value::Array(items) => {
                let len = items.len() as u64;
                if let Some(max) = obj.get("maxItems").and_then(Value::as_u64) {
                    if len > max {
                        errs.push(format!(
                            "{path}: array has {len} items, more than maxItems {max}"
                        ));
                    }
                }
                if let Some(min) = obj.get("minItems").and_then(Value::as_u64) {
                    if len < min {
                        errs.push(format!(
                            "{path}: array has {len} items, fewer than minItems {min}"
                        ));
                    }
                }
                if let Some(item_schema) = obj.get("items") {
                    for (i, item) in items.iter().enumerate() {
                        self.check(item_schema, item, &format!("{path}[{i}]"), depth + 1, errs);
                    }
                }
            }
            Value::Object(map) => {
                let props = obj.get("properties").and_then(Value::as_object);
                if let Some(req) = obj.get("required").and_then(Value::as_array) {
                    for name in req.iter().filter_map(Value::as_str) {
                        if !map.contains_key(name) {
                            errs.push(format!(
                                "{path}: missing required property {}",
                                Value::String(name.to_string())
                            ));
                        }
                    }
                }
                for (key, val) in map {
                    let sub = path_key(path, key);
                    match props.and_then(|p| p.get(key)) {
                        Some(s) => self.check(s, val, &sub, depth + 1, errs),
                        None => errs.push(format!("{sub}: property not allowed by the schema")),
                    }
                }
            }
            Value::Bool(_) | Value::Null => {}
        }
    }
}

pub(super) fn type_matches(ty: &str, v: &Value) -> bool {
    match ty {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "integer" => is_integer(v),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        _ => false,
    }
}

fn is_integer(v: &Value) -> bool {
    match v {
        Value::Number(n) => {
            n.is_i64() || n.is_u64() || n.as_f64().is_some_and(|f| f.fract() == 0.0)
        }
        _ => false,
    }
}
