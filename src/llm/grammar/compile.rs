//! JSON Schema → GBNF: [`schema_to_gbnf`] and the compiler behind it.
//!
//! # Supported subset
//!
//! * `type`: `object`, `array`, `string`, `integer`, `number`, `boolean`, `null`, or an array of
//!   those (emitted as an alternation). If `type` is absent it is inferred from `properties`
//!   (object) or `items` (array).
//! * objects: `properties` (emitted in declared order; serde_json must be built with its
//!   `preserve_order` feature for that order to survive parsing), `required` (required
//!   properties are always emitted, the others are optional, all in declared order), and
//!   `additionalProperties`, which must be absent or `false` (extra properties are never
//!   generated and are reported by [`validate`]).
//! * strings: `minLength`, `maxLength` (counted in characters; an escape sequence counts as one).
//!   Strings without `maxLength` are capped at [`DEFAULT_MAX_STRING_LEN`] characters in the
//!   grammar (not in [`validate`]).
//! * arrays: `items` (a single schema), `minItems`, `maxItems`. Arrays without `maxItems` are
//!   capped at [`DEFAULT_MAX_ITEMS`] items in the grammar (not in [`validate`]).
//! * integers: at most 16 digits; `minimum >= 0` (or `exclusiveMinimum >= 0`) removes the sign
//!   from the grammar and `minimum > 0` also excludes zero. `minimum`, `maximum`,
//!   `exclusiveMinimum` and `exclusiveMaximum` are otherwise enforced by [`validate`] only.
//! * numbers: JSON numbers with at most 16 integer digits, 16 fraction digits and a 3-digit
//!   exponent. Bounds are enforced by [`validate`] only.
//! * `enum` and `const` with scalar values (string, number, boolean, null).
//! * `anyOf`, `oneOf` (alternation; `oneOf` exclusivity is checked by [`validate`] only).
//! * local `$ref` (`#/$defs/...`, `#/definitions/...`, any `#/...` pointer), recursion allowed.
//!   `$ref`, `anyOf` and `oneOf` must not be combined with sibling constraint keywords.
//! * annotations that are ignored: `title`, `description`, `$schema`, `$id`, `$comment`,
//!   `default`, `examples`, `deprecated`, `readOnly`, `writeOnly`, `format`, and `x-*` keys.
//!
//! Anything else (`pattern`, `patternProperties`, `allOf`, `not`, `if`, `prefixItems`,
//! `uniqueItems`, boolean schemas, remote refs, ...) yields [`SchemaError::Unsupported`] naming
//! the JSON pointer (`#/properties/x/pattern`) of the offending keyword.
//!
//! # Grammar shape
//!
//! Whitespace between tokens is the `ws` rule, bounded to at most one newline plus 8 spaces or
//! tabs (or one space), so a model cannot emit endless blank lines. Strings exclude raw control
//! characters (and DEL) and allow the standard JSON escapes. Rule names are derived from the
//! property path (`findings-item-pattern`), sanitized to `[a-z0-9-]`, and made unique with a
//! numeric suffix. Repetition counts are clamped to llama.cpp's limit of [`MAX_REPETITION`].
//!
//! [`validate`]: super::validate

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use serde_json::{Map, Value};

use super::validate::type_matches;

/// Maximum characters allowed in the grammar for a string without `maxLength`.
pub const DEFAULT_MAX_STRING_LEN: u64 = 512;
/// Maximum items allowed in the grammar for an array without `maxItems`.
pub const DEFAULT_MAX_ITEMS: u64 = 16;
/// llama.cpp rejects (or silently unbounds) repetition counts above this.
pub const MAX_REPETITION: u64 = 2000;

/// Why a schema cannot be turned into a grammar. `path` is a JSON pointer in URI-fragment form
/// (`#` is the schema root, `#/properties/findings/items` a nested schema).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    #[error("unsupported schema construct at {path}: {what}")]
    Unsupported { path: String, what: String },
    #[error("invalid schema at {path}: {message}")]
    Invalid { path: String, message: String },
}

const WS_RULE: &str = r#"( " " | "\n" [ \t]{0,8} )?"#;
const CHAR_RULE: &str = r#"[^"\\\x00-\x1f\x7f] | "\\" ( ["\\/bfnrt] | "u" [0-9a-fA-F]{4} )"#;
const INT_DIGITS: &str = r#"( "0" | [1-9] [0-9]{0,15} )"#;

/// Shared rules, emitted only when used, in this order.
const PRIMITIVES: &[&str] = &[
    "ws",
    "char",
    "string",
    "integer",
    "integer-nonneg",
    "integer-pos",
    "number",
    "boolean",
    "null",
];

fn primitive_body(name: &str) -> String {
    match name {
        "ws" => WS_RULE.to_string(),
        "char" => CHAR_RULE.to_string(),
        "string" => format!(r#""\"" char{{0,{DEFAULT_MAX_STRING_LEN}}} "\"""#),
        "integer" => format!(r#""-"? {INT_DIGITS}"#),
        "integer-nonneg" => INT_DIGITS.to_string(),
        "integer-pos" => "[1-9] [0-9]{0,15}".to_string(),
        "number" => {
            format!(r#""-"? {INT_DIGITS} ( "." [0-9]{{1,16}} )? ( [eE] [-+]? [0-9]{{1,3}} )?"#)
        }
        "boolean" => r#""true" | "false""#.to_string(),
        "null" => r#""null""#.to_string(),
        other => unreachable!("unknown primitive {other}"),
    }
}

const ANNOTATIONS: &[&str] = &[
    "title",
    "description",
    "$schema",
    "$id",
    "$comment",
    "default",
    "examples",
    "deprecated",
    "readOnly",
    "writeOnly",
    "format",
];

const SUPPORTED: &[&str] = &[
    "type",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "minItems",
    "maxItems",
    "minLength",
    "maxLength",
    "enum",
    "const",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "anyOf",
    "oneOf",
    "$ref",
    "$defs",
    "definitions",
];

const TYPES: &[&str] = &[
    "object", "array", "string", "integer", "number", "boolean", "null",
];

/// Convert a JSON Schema (see the module docs for the subset) into a llama.cpp GBNF grammar
/// with root rule `root`. Output is deterministic: the same schema gives the same text.
pub fn schema_to_gbnf(schema: &Value) -> Result<String, SchemaError> {
    let mut c = Compiler {
        root: schema,
        rules: Vec::new(),
        used: PRIMITIVES.iter().map(|s| s.to_string()).collect(),
        prims: HashSet::new(),
        refs: HashMap::new(),
        pending: None,
    };
    let expr = c.compile(schema, "#", "")?;
    if expr != "root" {
        c.rules.insert(0, ("root".to_string(), expr));
    }
    let mut out = String::new();
    for (name, body) in &c.rules {
        let _ = writeln!(out, "{name} ::= {body}");
    }
    for p in PRIMITIVES {
        if c.prims.contains(*p) {
            let _ = writeln!(out, "{p} ::= {}", primitive_body(p));
        }
    }
    Ok(out)
}

struct Compiler<'a> {
    root: &'a Value,
    /// (name, body) in emission order.
    rules: Vec<(String, String)>,
    /// Every rule name taken so far, including all primitive names.
    used: HashSet<String>,
    /// Primitive rules referenced.
    prims: HashSet<&'static str>,
    /// `$ref` string -> rule name.
    refs: HashMap<String, String>,
    /// A name reserved for a `$ref` target, handed to the first `fresh` call asking for it.
    pending: Option<String>,
}

fn unsupported(path: &str, what: impl Into<String>) -> SchemaError {
    SchemaError::Unsupported {
        path: path.to_string(),
        what: what.into(),
    }
}

fn invalid(path: &str, message: impl Into<String>) -> SchemaError {
    SchemaError::Invalid {
        path: path.to_string(),
        message: message.into(),
    }
}

/// Append a key to a JSON pointer (RFC 6901 escaping).
fn ptr_join(ptr: &str, key: &str) -> String {
    format!("{ptr}/{}", key.replace('~', "~0").replace('/', "~1"))
}

/// Lowercase, map everything outside `[a-z0-9]` to `-`, collapse and trim dashes.
fn sanitize(s: &str) -> String {
    let mut out = String::new();
    for ch in s.chars() {
        let ch = ch.to_ascii_lowercase();
        if ch.is_ascii_lowercase() || ch.is_ascii_digit() {
            out.push(ch);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    while out.ends_with('-') {
        out.pop();
    }
    if out.is_empty() {
        out.push_str("prop");
    }
    out
}

fn name_join(prefix: &str, part: &str) -> String {
    let part = sanitize(part);
    if prefix.is_empty() {
        part
    } else {
        format!("{prefix}-{part}")
    }
}

/// A GBNF string literal matching exactly `text`.
fn gbnf_literal(text: &str) -> String {
    let mut out = String::from("\"");
    for ch in text.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// GBNF literal for the compact JSON serialization of a scalar value.
fn json_literal(v: &Value) -> String {
    gbnf_literal(&v.to_string())
}

/// `{m,n}` / `{m}` suffix, or empty when it would be `{1}`.
fn repeat_suffix(min: u64, max: u64) -> String {
    if min == max {
        if min == 1 {
            String::new()
        } else {
            format!("{{{min}}}")
        }
    } else {
        format!("{{{min},{max}}}")
    }
}

fn get_u64(obj: &Map<String, Value>, key: &str, ptr: &str) -> Result<Option<u64>, SchemaError> {
    match obj.get(key) {
        None => Ok(None),
        Some(v) => match v.as_u64() {
            Some(n) => Ok(Some(n)),
            None => match v.as_f64() {
                Some(f) if f >= 0.0 && f.fract() == 0.0 && f <= u64::MAX as f64 => {
                    Ok(Some(f as u64))
                }
                _ => Err(invalid(
                    &ptr_join(ptr, key),
                    format!("{key} must be a non-negative integer"),
                )),
            },
        },
    }
}

fn get_f64(obj: &Map<String, Value>, key: &str, ptr: &str) -> Result<Option<f64>, SchemaError> {
    match obj.get(key) {
        None => Ok(None),
        Some(v) => v
            .as_f64()
            .map(Some)
            .ok_or_else(|| invalid(&ptr_join(ptr, key), format!("{key} must be a number"))),
    }
}

/// Bounds of a `min*`/`max*` keyword pair, with defaults, checked for consistency.
fn bounds(
    obj: &Map<String, Value>,
    min_key: &str,
    max_key: &str,
    default_max: u64,
    ptr: &str,
) -> Result<(u64, u64), SchemaError> {
    let min = get_u64(obj, min_key, ptr)?.unwrap_or(0);
    let max = get_u64(obj, max_key, ptr)?;
    if let Some(max) = max {
        if max < min {
            return Err(invalid(ptr, format!("{max_key} {max} < {min_key} {min}")));
        }
    }
    if min > MAX_REPETITION {
        return Err(unsupported(
            &ptr_join(ptr, min_key),
            format!("{min_key} above {MAX_REPETITION} (llama.cpp repetition limit)"),
        ));
    }
    let max = max
        .unwrap_or_else(|| default_max.max(min))
        .min(MAX_REPETITION);
    Ok((min, max))
}

impl<'a> Compiler<'a> {
    /// Reserve a unique rule name derived from `hint`.
    fn fresh(&mut self, hint: &str) -> String {
        let base = if hint.is_empty() { "root" } else { hint };
        if self.pending.as_deref() == Some(base) {
            self.pending = None;
            return base.to_string();
        }
        let mut name = base.to_string();
        let mut i = 2;
        while self.used.contains(&name) {
            name = format!("{base}-{i}");
            i += 1;
        }
        self.used.insert(name.clone());
        name
    }

    /// Reserve a rule slot (so parents are emitted before children); returns (name, index).
    fn reserve(&mut self, hint: &str) -> (String, usize) {
        let name = self.fresh(hint);
        self.rules.push((name.clone(), String::new()));
        (name, self.rules.len() - 1)
    }

    fn prim(&mut self, name: &'static str) -> String {
        self.prims.insert(name);
        if name == "string" {
            self.prims.insert("char");
        }
        name.to_string()
    }

    /// Compile `schema` (found at JSON pointer `ptr`) and return a GBNF expression for it:
    /// a rule name, either freshly defined from `name` or a shared primitive.
    fn compile(&mut self, schema: &'a Value, ptr: &str, name: &str) -> Result<String, SchemaError> {
        let obj = match schema {
            Value::Object(o) => o,
            Value::Bool(_) => return Err(unsupported(ptr, "boolean schema")),
            _ => return Err(invalid(ptr, "schema must be an object")),
        };
        for key in obj.keys() {
            let k = key.as_str();
            if !(SUPPORTED.contains(&k) || ANNOTATIONS.contains(&k) || k.starts_with("x-")) {
                return Err(unsupported(
                    &ptr_join(ptr, k),
                    format!("keyword \"{k}\" is not supported"),
                ));
            }
        }
        for kw in ["$defs", "definitions"] {
            if let Some(defs) = obj.get(kw) {
                if !defs.is_object() {
                    return Err(invalid(
                        &ptr_join(ptr, kw),
                        format!("{kw} must be an object"),
                    ));
                }
            }
        }
        // Keywords that must stand alone (besides annotations and $defs).
        let constraints: Vec<&str> = obj
            .keys()
            .map(String::as_str)
            .filter(|k| SUPPORTED.contains(k) && *k != "$defs" && *k != "definitions")
            .collect();
        for solo in ["$ref", "anyOf", "oneOf"] {
            if obj.contains_key(solo) && constraints.len() > 1 {
                return Err(unsupported(
                    ptr,
                    format!(
                        "\"{solo}\" combined with sibling keywords ({})",
                        constraints.join(", ")
                    ),
                ));
            }
        }
        if let Some(r) = obj.get("$ref") {
            return self.compile_ref(r, ptr);
        }
        for kw in ["anyOf", "oneOf"] {
            if let Some(alts) = obj.get(kw) {
                return self.compile_alternatives(alts, &ptr_join(ptr, kw), name);
            }
        }
        if let Some(c) = obj.get("const") {
            self.check_literal_type(obj, c, &ptr_join(ptr, "const"))?;
            let (rule, idx) = self.reserve(name);
            self.rules[idx].1 = json_literal(c);
            return Ok(rule);
        }
        if let Some(e) = obj.get("enum") {
            let eptr = ptr_join(ptr, "enum");
            let values = e
                .as_array()
                .ok_or_else(|| invalid(&eptr, "enum must be an array"))?;
            if values.is_empty() {
                return Err(invalid(&eptr, "enum must not be empty"));
            }
            let mut alts = Vec::new();
            for (i, v) in values.iter().enumerate() {
                self.check_literal_type(obj, v, &format!("{eptr}/{i}"))?;
                alts.push(json_literal(v));
            }
            let (rule, idx) = self.reserve(name);
            self.rules[idx].1 = alts.join(" | ");
            return Ok(rule);
        }
        match obj.get("type") {
            Some(Value::String(t)) => self.compile_typed(t, obj, ptr, name),
            Some(Value::Array(ts)) => {
                let tptr = ptr_join(ptr, "type");
                if ts.is_empty() {
                    return Err(invalid(&tptr, "type array must not be empty"));
                }
                let mut names = Vec::new();
                for (i, t) in ts.iter().enumerate() {
                    let t = t
                        .as_str()
                        .ok_or_else(|| invalid(&format!("{tptr}/{i}"), "type must be a string"))?;
                    if names.iter().any(|(seen, _)| seen == t) {
                        return Err(invalid(&tptr, format!("duplicate type \"{t}\"")));
                    }
                    names.push((t.to_string(), i));
                }
                if names.len() == 1 {
                    return self.compile_typed(&names[0].0, obj, ptr, name);
                }
                let (rule, idx) = self.reserve(name);
                let mut alts = Vec::new();
                for (t, _) in &names {
                    alts.push(self.compile_typed(t, obj, ptr, &name_join(&rule, t))?);
                }
                self.rules[idx].1 = alts.join(" | ");
                Ok(rule)
            }
            Some(_) => Err(invalid(
                &ptr_join(ptr, "type"),
                "type must be a string or array of strings",
            )),
            None if obj.contains_key("properties") => self.compile_typed("object", obj, ptr, name),
            None if obj.contains_key("items") => self.compile_typed("array", obj, ptr, name),
            None => Err(unsupported(
                ptr,
                "schema without type, enum, const, $ref, anyOf or oneOf (arbitrary JSON)",
            )),
        }
    }

    /// enum/const values must be scalars and match `type` when given.
    fn check_literal_type(
        &self,
        obj: &Map<String, Value>,
        v: &Value,
        ptr: &str,
    ) -> Result<(), SchemaError> {
        if v.is_object() || v.is_array() {
            return Err(unsupported(ptr, "object or array values in enum/const"));
        }
        let ok = match obj.get("type") {
            None => true,
            Some(Value::String(t)) => type_matches(t, v),
            Some(Value::Array(ts)) => ts
                .iter()
                .any(|t| t.as_str().is_some_and(|t| type_matches(t, v))),
            Some(_) => false,
        };
        if ok {
            Ok(())
        } else {
            Err(invalid(
                ptr,
                format!("value {v} does not match the schema type"),
            ))
        }
    }

    fn compile_ref(&mut self, r: &Value, ptr: &str) -> Result<String, SchemaError> {
        let rptr = ptr_join(ptr, "$ref");
        let r = r
            .as_str()
            .ok_or_else(|| invalid(&rptr, "$ref must be a string"))?;
        if let Some(rule) = self.refs.get(r) {
            return Ok(rule.clone());
        }
        // Follow chains of pure $refs to detect cycles that would be left-recursive.
        let mut seen = HashSet::new();
        let mut cur = r.to_string();
        loop {
            if !seen.insert(cur.clone()) {
                return Err(invalid(&rptr, format!("circular $ref \"{r}\"")));
            }
            match self
                .resolve(&cur, &rptr)?
                .get("$ref")
                .and_then(Value::as_str)
            {
                Some(next) => cur = next.to_string(),
                None => break,
            }
        }
        let target = self.resolve(r, &rptr)?;
        let hint = sanitize(r.rsplit('/').next().unwrap_or("ref"));
        // Reserve the name now so recursive references resolve to it; the target schema's own
        // rule takes it (see `fresh`), otherwise an alias rule is added below.
        let rule = self.fresh(&hint);
        self.refs.insert(r.to_string(), rule.clone());
        self.pending = Some(rule.clone());
        let expr = self.compile(target, &format!("#{}", &r[1..]), &rule)?;
        if self.pending.take().is_some() || expr != rule {
            self.rules.push((rule.clone(), expr));
        }
        Ok(rule)
    }

    fn resolve(&self, r: &str, rptr: &str) -> Result<&'a Value, SchemaError> {
        let Some(pointer) = r.strip_prefix('#') else {
            return Err(unsupported(rptr, format!("non-local $ref \"{r}\"")));
        };
        if !(pointer.is_empty() || pointer.starts_with('/')) {
            return Err(unsupported(rptr, format!("non-pointer $ref \"{r}\"")));
        }
        self.root
            .pointer(pointer)
            .ok_or_else(|| invalid(rptr, format!("$ref \"{r}\" does not resolve")))
    }

    fn compile_alternatives(
        &mut self,
        alts: &'a Value,
        ptr: &str,
        name: &str,
    ) -> Result<String, SchemaError> {
        let list = alts
            .as_array()
            .ok_or_else(|| invalid(ptr, "must be an array of schemas"))?;
        if list.is_empty() {
            return Err(invalid(ptr, "must not be empty"));
        }
        let (rule, idx) = self.reserve(name);
        let mut exprs = Vec::new();
        for (i, alt) in list.iter().enumerate() {
            let e = self.compile(alt, &format!("{ptr}/{i}"), &format!("{rule}-{i}"))?;
            exprs.push(e);
        }
        self.rules[idx].1 = exprs.join(" | ");
        Ok(rule)
    }

    fn compile_typed(
        &mut self,
        ty: &str,
        obj: &'a Map<String, Value>,
        ptr: &str,
        name: &str,
    ) -> Result<String, SchemaError> {
        match ty {
            "object" => self.compile_object(obj, ptr, name),
            "array" => self.compile_array(obj, ptr, name),
            "string" => self.compile_string(obj, ptr, name),
            "integer" => {
                let min = get_f64(obj, "minimum", ptr)?;
                let xmin = get_f64(obj, "exclusiveMinimum", ptr)?;
                get_f64(obj, "maximum", ptr)?;
                get_f64(obj, "exclusiveMaximum", ptr)?;
                let positive = min.is_some_and(|m| m > 0.0) || xmin.is_some_and(|m| m >= 0.0);
                let nonneg = min.is_some_and(|m| m >= 0.0) || xmin.is_some_and(|m| m >= -1.0);
                Ok(if positive {
                    self.prim("integer-pos")
                } else if nonneg {
                    self.prim("integer-nonneg")
                } else {
                    self.prim("integer")
                })
            }
            "number" => {
                for kw in ["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"] {
                    get_f64(obj, kw, ptr)?;
                }
                Ok(self.prim("number"))
            }
            "boolean" => Ok(self.prim("boolean")),
            "null" => Ok(self.prim("null")),
            other => Err(invalid(
                &ptr_join(ptr, "type"),
                format!(
                    "unknown type \"{other}\" (expected one of {})",
                    TYPES.join(", ")
                ),
            )),
        }
    }

    fn compile_string(
        &mut self,
        obj: &Map<String, Value>,
        ptr: &str,
        name: &str,
    ) -> Result<String, SchemaError> {
        let explicit = obj.contains_key("minLength") || obj.contains_key("maxLength");
        let (min, max) = bounds(obj, "minLength", "maxLength", DEFAULT_MAX_STRING_LEN, ptr)?;
        if !explicit {
            return Ok(self.prim("string"));
        }
        let (rule, idx) = self.reserve(name);
        let body = if max == 0 {
            r#""\"\"""#.to_string()
        } else {
            self.prim("char");
            format!(r#""\"" char{} "\"""#, repeat_suffix(min, max))
        };
        self.rules[idx].1 = body;
        Ok(rule)
    }

    fn compile_array(
        &mut self,
        obj: &'a Map<String, Value>,
        ptr: &str,
        name: &str,
    ) -> Result<String, SchemaError> {
        let (min, max) = bounds(obj, "minItems", "maxItems", DEFAULT_MAX_ITEMS, ptr)?;
        let (rule, idx) = self.reserve(name);
        self.prim("ws");
        if max == 0 {
            self.rules[idx].1 = r#""[" ws "]""#.to_string();
            return Ok(rule);
        }
        let items = obj
            .get("items")
            .ok_or_else(|| unsupported(ptr, "array without \"items\" (arbitrary JSON)"))?;
        if items.is_array() {
            return Err(unsupported(
                &ptr_join(ptr, "items"),
                "tuple-style items array",
            ));
        }
        let item = self.compile(items, &ptr_join(ptr, "items"), &format!("{rule}-item"))?;
        let rest = if max > 1 {
            format!(
                r#" ( ws "," ws {item} ){}"#,
                repeat_suffix(min.saturating_sub(1), max - 1)
            )
        } else {
            String::new()
        };
        self.rules[idx].1 = if min == 0 {
            format!(r#""[" ws ( {item}{rest} )? ws "]""#)
        } else {
            format!(r#""[" ws {item}{rest} ws "]""#)
        };
        Ok(rule)
    }

    fn compile_object(
        &mut self,
        obj: &'a Map<String, Value>,
        ptr: &str,
        name: &str,
    ) -> Result<String, SchemaError> {
        match obj.get("additionalProperties") {
            None | Some(Value::Bool(false)) => {}
            Some(_) => {
                return Err(unsupported(
                    &ptr_join(ptr, "additionalProperties"),
                    "additionalProperties other than false",
                ))
            }
        }
        let props = match obj.get("properties") {
            None => None,
            Some(Value::Object(p)) => Some(p),
            Some(_) => {
                return Err(invalid(
                    &ptr_join(ptr, "properties"),
                    "properties must be an object",
                ))
            }
        };
        let mut required = HashSet::new();
        if let Some(r) = obj.get("required") {
            let rptr = ptr_join(ptr, "required");
            let list = r
                .as_array()
                .ok_or_else(|| invalid(&rptr, "required must be an array"))?;
            for (i, n) in list.iter().enumerate() {
                let n = n
                    .as_str()
                    .ok_or_else(|| invalid(&format!("{rptr}/{i}"), "must be a string"))?;
                if !props.is_some_and(|p| p.contains_key(n)) {
                    return Err(invalid(
                        &format!("{rptr}/{i}"),
                        format!("required property \"{n}\" is not in properties"),
                    ));
                }
                required.insert(n);
            }
        }
        let (rule, idx) = self.reserve(name);
        self.prim("ws");
        let pptr = ptr_join(ptr, "properties");
        // (key-value expression, required)
        let mut kvs = Vec::new();
        for (key, sub) in props.into_iter().flatten() {
            let value = self.compile(sub, &ptr_join(&pptr, key), &name_join(name, key))?;
            let key_lit = json_literal(&Value::String(key.clone()));
            kvs.push((
                format!(r#"{key_lit} ws ":" ws {value}"#),
                required.contains(key.as_str()),
            ));
        }
        self.rules[idx].1 = if kvs.is_empty() {
            r#""{" ws "}""#.to_string()
        } else {
            format!(r#""{{" ws {} ws "}}""#, object_members(&kvs))
        };
        Ok(rule)
    }
}

/// Members of an object in declared order: required ones always, optional ones optionally,
/// with commas only between emitted members.
fn object_members(kvs: &[(String, bool)]) -> String {
    // Members after at least one was emitted, starting at index k.
    let after = |k: usize| -> String {
        kvs[k..]
            .iter()
            .map(|(kv, req)| {
                if *req {
                    format!(r#" ws "," ws {kv}"#)
                } else {
                    format!(r#" ( ws "," ws {kv} )?"#)
                }
            })
            .collect()
    };
    // Alternatives for the first emitted member: any optional member up to and including the
    // first required one.
    let first_required = kvs.iter().position(|(_, req)| *req);
    let last = first_required.unwrap_or(kvs.len() - 1);
    let alts: Vec<String> = (0..=last)
        .map(|i| format!("{}{}", kvs[i].0, after(i + 1)))
        .collect();
    match (first_required, alts.len()) {
        (Some(_), 1) => alts.into_iter().next().unwrap_or_default(),
        (Some(_), _) => format!("( {} )", alts.join(" | ")),
        (None, _) => format!("( {} )?", alts.join(" | ")),
    }
}
