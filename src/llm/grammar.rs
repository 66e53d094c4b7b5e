//! JSON-Schema-subset to GBNF conversion, and validation of replies against the same subset.
//!
//! This module owns:
//!
//! * [`schema_to_gbnf`]: turns a (small) JSON Schema into a llama.cpp GBNF grammar whose root
//!   rule is `root`, so a local model can only emit JSON of that shape.
//! * [`validate`]: checks an already parsed reply against the same schema, producing error
//!   strings that name the JSON path (`$.findings[0].pattern: string longer than 80 characters`).
//! * [`admissible`]: the values of a list (an input's terms, its sentences) that a field
//!   accepts, so a grammar limiting the field to a list never admits what [`validate`] refuses.
//! * [`close_truncated`]: the shortest completion the schema allows of a reply cut at the
//!   token limit.
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

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;

use serde_json::{Map, Value};

/// Maximum characters allowed in the grammar for a string without `maxLength`.
pub const DEFAULT_MAX_STRING_LEN: u64 = 512;
/// Maximum items allowed in the grammar for an array without `maxItems`.
pub const DEFAULT_MAX_ITEMS: u64 = 16;
/// llama.cpp rejects (or silently unbounds) repetition counts above this.
pub const MAX_REPETITION: u64 = 2000;

/// Maximum `$ref` hops / nesting depth followed by [`validate`].
const MAX_VALIDATE_DEPTH: usize = 128;

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

fn type_matches(ty: &str, v: &Value) -> bool {
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

// ---------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------

/// Closes a JSON reply that was cut at the token limit by the shortest completion `schema`
/// allows, or tells why none exists. The reply (a prefix of one the schema's grammar admits)
/// is read as far as it goes, then what is unfinished is completed from the inside out:
///
/// * an open text string ends at its last whole word with "…" (within its `maxLength`); an
///   open string of an `enum` or `const` field becomes the shortest allowed value it begins
///   (a term or a quoted sentence is not cut), and so does a cut `true`, `false` or `null`;
/// * an element that cannot be completed is dropped, with its dangling comma: a key without
///   its value, a cut number (its digits are unknown), an object that lacks a required
///   property, a string shorter than its `minLength`;
/// * open arrays and objects are closed.
///
/// The result validates against `schema` (it is checked) and is compact JSON. `Err` says why
/// no completion validates, e.g. the reply was cut before a required property of its root
/// object. The same cut always gives the same result: a failure here is not worth retrying.
pub fn close_truncated(schema: &Value, reply: &str) -> Result<String, String> {
    schema_to_gbnf(schema).map_err(|e| format!("schema not usable: {e}"))?;
    let mut reader = PrefixReader { s: reply, i: 0 };
    let partial = match reader.value()? {
        Read::Whole(v) => {
            reader.ws();
            if reader.i < reply.len() {
                return reader.err("text after the reply");
            }
            Partial::Whole(v)
        }
        Read::Cut(p) => p,
    };
    let v = Closer { root: schema }.complete(schema, partial, "$", 0)?;
    serde_json::to_string(&v).map_err(|e| e.to_string())
}

/// A value read from a reply's prefix: whole, or cut by the end of the text.
enum Read {
    Whole(Value),
    Cut(Partial),
}

/// A value cut by the end of the text.
#[derive(Clone, Debug)]
enum Partial {
    /// A value that was whole (the root of a reply that was not cut).
    Whole(Value),
    /// Nothing of the value yet (cut after a key's colon).
    Nothing,
    /// An open string, decoded so far.
    Str(String),
    /// A number or literal that may go on.
    Scalar(String),
    /// The whole items, and the one that was cut if it had begun.
    Array(Vec<Value>, Option<Box<Partial>>),
    /// The whole members, and the member whose value was cut if it had begun.
    Object(Map<String, Value>, Option<(String, Box<Partial>)>),
}

/// Reads JSON until the text ends.
struct PrefixReader<'a> {
    s: &'a str,
    i: usize,
}

impl PrefixReader<'_> {
    fn peek(&self) -> Option<char> {
        self.s[self.i..].chars().next()
    }

    fn ws(&mut self) {
        while self
            .peek()
            .is_some_and(|c| matches!(c, ' ' | '\t' | '\n' | '\r'))
        {
            self.i += 1;
        }
    }

    fn err<T>(&self, what: &str) -> Result<T, String> {
        Err(format!("not a JSON reply: {what} at byte {}", self.i))
    }

    fn value(&mut self) -> Result<Read, String> {
        self.ws();
        match self.peek() {
            None => Ok(Read::Cut(Partial::Nothing)),
            Some('{') => self.object(),
            Some('[') => self.array(),
            Some('"') => Ok(match self.string()? {
                Ok(s) => Read::Whole(Value::String(s)),
                Err(s) => Read::Cut(Partial::Str(s)),
            }),
            Some(c) if c == '-' || c.is_ascii_alphanumeric() => self.scalar(),
            Some(_) => self.err("unexpected character"),
        }
    }

    fn scalar(&mut self) -> Result<Read, String> {
        let start = self.i;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '+' | '.'))
        {
            self.i += 1;
        }
        let text = &self.s[start..self.i];
        if self.i == self.s.len() {
            return Ok(Read::Cut(Partial::Scalar(text.to_string())));
        }
        match serde_json::from_str::<Value>(text) {
            Ok(v) => Ok(Read::Whole(v)),
            Err(_) => self.err("not a number or literal"),
        }
    }

    /// At an opening quote: Ok(Ok(string)) when it closes, Ok(Err(what was read)) when the
    /// text ends first (an unfinished escape left out).
    fn string(&mut self) -> Result<Result<String, String>, String> {
        self.i += 1;
        let mut out = String::new();
        loop {
            let Some(c) = self.peek() else {
                return Ok(Err(out));
            };
            self.i += c.len_utf8();
            match c {
                '"' => return Ok(Ok(out)),
                '\\' => {
                    let Some(e) = self.peek() else {
                        return Ok(Err(out));
                    };
                    self.i += e.len_utf8();
                    match e {
                        '"' | '\\' | '/' => out.push(e),
                        'b' => out.push('\u{8}'),
                        'f' => out.push('\u{c}'),
                        'n' => out.push('\n'),
                        'r' => out.push('\r'),
                        't' => out.push('\t'),
                        'u' => {
                            let Some(hi) = self.hex4()? else {
                                return Ok(Err(out));
                            };
                            let mut code = hi;
                            if (0xD800..0xDC00).contains(&hi) {
                                let rest = &self.s[self.i..];
                                if "\\u".starts_with(rest) {
                                    return Ok(Err(out)); // cut before the low half
                                }
                                if rest.starts_with("\\u") {
                                    self.i += 2;
                                    match self.hex4()? {
                                        Some(lo) if (0xDC00..0xE000).contains(&lo) => {
                                            code = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                                        }
                                        Some(_) => return self.err("lone surrogate"),
                                        None => return Ok(Err(out)),
                                    }
                                }
                            }
                            match char::from_u32(code) {
                                Some(ch) => out.push(ch),
                                None => return self.err("lone surrogate"),
                            }
                        }
                        _ => return self.err("unknown escape"),
                    }
                }
                c => out.push(c),
            }
        }
    }

    /// Four hex digits, or None when the text ends within them.
    fn hex4(&mut self) -> Result<Option<u32>, String> {
        let digits: String = self.s[self.i..].chars().take(4).collect();
        if !digits.chars().all(|c| c.is_ascii_hexdigit()) {
            return self.err("bad \\u escape");
        }
        if digits.len() < 4 {
            self.i = self.s.len();
            return Ok(None);
        }
        self.i += 4;
        Ok(u32::from_str_radix(&digits, 16).ok())
    }

    fn array(&mut self) -> Result<Read, String> {
        self.i += 1;
        let mut items = Vec::new();
        self.ws();
        if self.peek() == Some(']') {
            self.i += 1;
            return Ok(Read::Whole(Value::Array(items)));
        }
        loop {
            match self.value()? {
                Read::Whole(v) => items.push(v),
                Read::Cut(Partial::Nothing) => return Ok(Read::Cut(Partial::Array(items, None))),
                Read::Cut(p) => return Ok(Read::Cut(Partial::Array(items, Some(Box::new(p))))),
            }
            self.ws();
            match self.peek() {
                None => return Ok(Read::Cut(Partial::Array(items, None))),
                Some(',') => self.i += 1,
                Some(']') => {
                    self.i += 1;
                    return Ok(Read::Whole(Value::Array(items)));
                }
                Some(_) => return self.err("expected ',' or ']'"),
            }
        }
    }

    fn object(&mut self) -> Result<Read, String> {
        self.i += 1;
        let mut map = Map::new();
        self.ws();
        if self.peek() == Some('}') {
            self.i += 1;
            return Ok(Read::Whole(Value::Object(map)));
        }
        loop {
            self.ws();
            match self.peek() {
                None => return Ok(Read::Cut(Partial::Object(map, None))),
                Some('"') => {}
                Some(_) => return self.err("expected a key"),
            }
            let Ok(key) = self.string()? else {
                return Ok(Read::Cut(Partial::Object(map, None))); // cut inside a key
            };
            self.ws();
            match self.peek() {
                None => return Ok(Read::Cut(Partial::Object(map, None))),
                Some(':') => self.i += 1,
                Some(_) => return self.err("expected ':'"),
            }
            match self.value()? {
                Read::Whole(v) => {
                    map.insert(key, v);
                }
                Read::Cut(p) => {
                    return Ok(Read::Cut(Partial::Object(map, Some((key, Box::new(p))))))
                }
            }
            self.ws();
            match self.peek() {
                None => return Ok(Read::Cut(Partial::Object(map, None))),
                Some(',') => self.i += 1,
                Some('}') => {
                    self.i += 1;
                    return Ok(Read::Whole(Value::Object(map)));
                }
                Some(_) => return self.err("expected ',' or '}'"),
            }
        }
    }
}

/// Completes a cut value by its schema.
struct Closer<'a> {
    root: &'a Value,
}

impl Closer<'_> {
    fn check(&self, schema: &Value, v: &Value, path: &str) -> Result<(), String> {
        let mut errs = Vec::new();
        Validator { root: self.root }.check(schema, v, path, 0, &mut errs);
        if errs.is_empty() {
            Ok(())
        } else {
            Err(errs.join("; "))
        }
    }

    fn complete(
        &self,
        schema: &Value,
        p: Partial,
        path: &str,
        depth: usize,
    ) -> Result<Value, String> {
        if depth > MAX_VALIDATE_DEPTH {
            return Err(format!("{path}: schema nesting too deep"));
        }
        let empty = Map::new();
        let obj = schema.as_object().unwrap_or(&empty);
        if let Some(r) = obj.get("$ref").and_then(Value::as_str) {
            let target = r
                .strip_prefix('#')
                .and_then(|ptr| self.root.pointer(ptr))
                .ok_or_else(|| format!("{path}: $ref {r:?} does not resolve"))?;
            return self.complete(target, p, path, depth + 1);
        }
        for kw in ["anyOf", "oneOf"] {
            if let Some(alts) = obj.get(kw).and_then(Value::as_array) {
                let mut why = Vec::new();
                for alt in alts {
                    let done = self
                        .complete(alt, p.clone(), path, depth + 1)
                        .and_then(|v| self.check(schema, &v, path).map(|()| v));
                    match done {
                        Ok(v) => return Ok(v),
                        Err(e) => why.push(e),
                    }
                }
                return Err(why.join(" | "));
            }
        }
        let mut dropped = None;
        let v = match p {
            Partial::Whole(v) => v,
            Partial::Nothing => return Err(format!("{path}: cut before its value")),
            Partial::Scalar(text) => Self::close_scalar(obj, &text, path)?,
            Partial::Str(s) => Self::close_string(obj, s, path)?,
            Partial::Array(mut items, open) => {
                if let (Some(open), Some(item)) = (open, obj.get("items")) {
                    let sub = format!("{path}[{}]", items.len());
                    match self.complete(item, *open, &sub, depth + 1) {
                        Ok(v) => items.push(v),
                        Err(e) => dropped = Some(e),
                    }
                }
                Value::Array(items)
            }
            Partial::Object(mut map, open) => {
                if let Some((key, open)) = open {
                    let sub = path_key(path, &key);
                    let prop = obj.get("properties").and_then(|ps| ps.get(&key));
                    match prop.map(|s| self.complete(s, *open, &sub, depth + 1)) {
                        Some(Ok(v)) => {
                            map.insert(key, v);
                        }
                        Some(Err(e)) => dropped = Some(e),
                        None => {}
                    }
                }
                Value::Object(map)
            }
        };
        self.check(schema, &v, path)
            .map_err(|e| match dropped {
                Some(d) => format!("{e} (the unfinished part was dropped: {d})"),
                None => e,
            })
            .map(|()| v)
    }

    /// A cut number or literal: the allowed value it begins (a cut `tr` is `true`); a number
    /// without a list of values is unfinished.
    fn close_scalar(obj: &Map<String, Value>, text: &str, path: &str) -> Result<Value, String> {
        let literals = [Value::Bool(true), Value::Bool(false), Value::Null];
        let allowed: Vec<&Value> = match (obj.get("const"), obj.get("enum")) {
            (Some(c), _) => vec![c],
            (None, Some(Value::Array(values))) => values.iter().collect(),
            _ => literals.iter().collect(),
        };
        allowed
            .into_iter()
            .filter(|v| !v.is_string() && v.to_string().starts_with(text))
            .min_by_key(|v| v.to_string().len())
            .cloned()
            .ok_or_else(|| format!("{path}: cut inside {text:?}"))
    }

    /// A cut string: the shortest allowed value it begins when the schema lists them, else
    /// the text up to its last whole word, marked "…".
    fn close_string(obj: &Map<String, Value>, s: String, path: &str) -> Result<Value, String> {
        let listed: Option<Vec<&Value>> = match (obj.get("const"), obj.get("enum")) {
            (Some(c), _) => Some(vec![c]),
            (None, Some(Value::Array(values))) => Some(values.iter().collect()),
            _ => None,
        };
        if let Some(listed) = listed {
            return listed
                .into_iter()
                .filter_map(Value::as_str)
                .filter(|v| v.starts_with(s.as_str()))
                .min_by_key(|v| v.chars().count())
                .map(|v| Value::String(v.to_string()))
                .ok_or_else(|| {
                    format!(
                        "{path}: the cut string {} begins none of the allowed values",
                        short(&Value::String(s))
                    )
                });
        }
        let cut = s.rfind(char::is_whitespace).unwrap_or(s.len());
        let mut text = s[..cut].trim_end().to_string();
        if let Some(max) = obj.get("maxLength").and_then(Value::as_u64) {
            if max == 0 {
                return Err(format!("{path}: cut inside an empty string"));
            }
            let keep = usize::try_from(max - 1).unwrap_or(usize::MAX);
            if text.chars().count() > keep {
                text = text
                    .chars()
                    .take(keep)
                    .collect::<String>()
                    .trim_end()
                    .to_string();
            }
        }
        text.push('…');
        Ok(Value::String(text))
    }
}

/// Check a parsed reply against `schema` (same subset as [`schema_to_gbnf`]; an unsupported
/// schema is itself reported as an error). All violations are collected; each message starts
/// with the JSON path of the offending value, e.g.
/// `$.findings[0].pattern: string longer than 80 characters`.
///
/// The grammar's default caps ([`DEFAULT_MAX_STRING_LEN`], [`DEFAULT_MAX_ITEMS`]) are not
/// enforced here; only what the schema states.
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

struct Validator<'a> {
    root: &'a Value,
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

fn path_key(path: &str, key: &str) -> String {
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

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 60 {
        let cut: String = s.chars().take(57).collect();
        format!("{cut}...")
    } else {
        s
    }
}

impl Validator<'_> {
    fn check(&self, schema: &Value, v: &Value, path: &str, depth: usize, errs: &mut Vec<String>) {
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::{BTreeMap, BTreeSet};

    // -----------------------------------------------------------------------------------------
    // A small GBNF parser + recognizer (test-only), mirroring llama.cpp's syntax rules: one rule
    // per line, literals, char classes, groups, alternation, `* + ? {m} {m,} {m,n}`, and only
    // the escapes llama.cpp accepts.
    // -----------------------------------------------------------------------------------------

    #[derive(Debug, Clone)]
    enum Node {
        Lit(Vec<char>),
        Class { neg: bool, items: Vec<(char, char)> },
        Ref(String),
        Group(Vec<Vec<Node>>),
        Rep(Box<Node>, usize, Option<usize>),
    }

    struct Gbnf {
        rules: BTreeMap<String, Vec<Vec<Node>>>,
    }

    struct P<'s> {
        s: &'s [char],
        i: usize,
    }

    impl P<'_> {
        fn peek(&self) -> Option<char> {
            self.s.get(self.i).copied()
        }
        fn skip_ws(&mut self) {
            while matches!(self.peek(), Some(' ' | '\t')) {
                self.i += 1;
            }
        }
        fn hex(&mut self, n: usize) -> Result<char, String> {
            let h: String = self
                .s
                .get(self.i..self.i + n)
                .ok_or("short hex")?
                .iter()
                .collect();
            self.i += n;
            let v = u32::from_str_radix(&h, 16).map_err(|e| e.to_string())?;
            char::from_u32(v).ok_or_else(|| "bad char".to_string())
        }
        fn ch(&mut self) -> Result<char, String> {
            let c = self.peek().ok_or("unexpected end")?;
            self.i += 1;
            if c != '\\' {
                return Ok(c);
            }
            let e = self.peek().ok_or("unexpected end")?;
            self.i += 1;
            match e {
                'x' => self.hex(2),
                'u' => self.hex(4),
                'U' => self.hex(8),
                't' => Ok('\t'),
                'r' => Ok('\r'),
                'n' => Ok('\n'),
                '\\' | '"' | '[' | ']' | '-' => Ok(e),
                other => Err(format!("unknown escape \\{other}")),
            }
        }
        fn int(&mut self) -> Result<usize, String> {
            let start = self.i;
            while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                self.i += 1;
            }
            let t: String = self.s[start..self.i].iter().collect();
            t.parse().map_err(|_| format!("expected int at {start}"))
        }
        fn alts(&mut self) -> Result<Vec<Vec<Node>>, String> {
            let mut alts = vec![self.seq()?];
            while self.peek() == Some('|') {
                self.i += 1;
                alts.push(self.seq()?);
            }
            Ok(alts)
        }
        fn seq(&mut self) -> Result<Vec<Node>, String> {
            let mut seq: Vec<Node> = Vec::new();
            loop {
                self.skip_ws();
                let Some(c) = self.peek() else { break };
                let rep = |seq: &mut Vec<Node>, lo, hi| -> Result<(), String> {
                    let last = seq.pop().ok_or("repetition without operand")?;
                    seq.push(Node::Rep(Box::new(last), lo, hi));
                    Ok(())
                };
                match c {
                    '"' => {
                        self.i += 1;
                        let mut lit = Vec::new();
                        while self.peek() != Some('"') {
                            lit.push(self.ch()?);
                        }
                        self.i += 1;
                        seq.push(Node::Lit(lit));
                    }
                    '[' => {
                        self.i += 1;
                        let neg = self.peek() == Some('^');
                        if neg {
                            self.i += 1;
                        }
                        let mut items = Vec::new();
                        while self.peek() != Some(']') {
                            let a = self.ch()?;
                            let b = if self.peek() == Some('-')
                                && self.s.get(self.i + 1) != Some(&']')
                            {
                                self.i += 1;
                                self.ch()?
                            } else {
                                a
                            };
                            items.push((a, b));
                        }
                        self.i += 1;
                        seq.push(Node::Class { neg, items });
                    }
                    '(' => {
                        self.i += 1;
                        let g = self.alts()?;
                        if self.peek() != Some(')') {
                            return Err(format!("expected ) at {}", self.i));
                        }
                        self.i += 1;
                        seq.push(Node::Group(g));
                    }
                    '*' => {
                        self.i += 1;
                        rep(&mut seq, 0, None)?;
                    }
                    '+' => {
                        self.i += 1;
                        rep(&mut seq, 1, None)?;
                    }
                    '?' => {
                        self.i += 1;
                        rep(&mut seq, 0, Some(1))?;
                    }
                    '{' => {
                        self.i += 1;
                        let lo = self.int()?;
                        let hi = match self.peek() {
                            Some('}') => Some(lo),
                            Some(',') => {
                                self.i += 1;
                                if self.peek() == Some('}') {
                                    None
                                } else {
                                    Some(self.int()?)
                                }
                            }
                            _ => return Err("bad repetition".into()),
                        };
                        if self.peek() != Some('}') {
                            return Err("expected }".into());
                        }
                        self.i += 1;
                        rep(&mut seq, lo, hi)?;
                    }
                    c if c.is_ascii_alphanumeric() || c == '-' => {
                        let start = self.i;
                        while self
                            .peek()
                            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '-')
                        {
                            self.i += 1;
                        }
                        seq.push(Node::Ref(self.s[start..self.i].iter().collect()));
                    }
                    _ => break,
                }
            }
            Ok(seq)
        }
    }

    fn parse_gbnf(text: &str) -> Result<Gbnf, String> {
        let mut rules = BTreeMap::new();
        for line in text.lines() {
            let (name, body) = line.split_once(" ::= ").ok_or(format!("bad line {line}"))?;
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            {
                return Err(format!("illegal rule name {name:?}"));
            }
            let chars: Vec<char> = body.chars().collect();
            let mut p = P { s: &chars, i: 0 };
            let alts = p.alts()?;
            if p.i != chars.len() {
                return Err(format!("trailing input in rule {name} at {}", p.i));
            }
            if rules.insert(name.to_string(), alts).is_some() {
                return Err(format!("rule {name} defined twice"));
            }
        }
        Ok(Gbnf { rules })
    }

    impl Gbnf {
        fn visit_refs(node: &Node, out: &mut Vec<String>) {
            match node {
                Node::Ref(r) => out.push(r.clone()),
                Node::Group(alts) => alts.iter().flatten().for_each(|n| Self::visit_refs(n, out)),
                Node::Rep(n, _, _) => Self::visit_refs(n, out),
                _ => {}
            }
        }
        fn unbounded(node: &Node) -> bool {
            match node {
                Node::Rep(n, _, hi) => hi.is_none() || Self::unbounded(n),
                Node::Group(alts) => alts.iter().flatten().any(Self::unbounded),
                _ => false,
            }
        }

        fn node(&self, n: &Node, input: &[char], pos: usize, depth: usize) -> BTreeSet<usize> {
            assert!(depth < 400, "recursion too deep (left recursion?)");
            let mut out = BTreeSet::new();
            match n {
                Node::Lit(l) => {
                    if input[pos..].starts_with(l) {
                        out.insert(pos + l.len());
                    }
                }
                Node::Class { neg, items } => {
                    if let Some(&c) = input.get(pos) {
                        if items.iter().any(|&(a, b)| a <= c && c <= b) != *neg {
                            out.insert(pos + 1);
                        }
                    }
                }
                Node::Ref(r) => return self.alts(&self.rules[r], input, pos, depth + 1),
                Node::Group(g) => return self.alts(g, input, pos, depth + 1),
                Node::Rep(inner, lo, hi) => {
                    let mut cur = BTreeSet::from([pos]);
                    if *lo == 0 {
                        out.insert(pos);
                    }
                    let hi = hi.unwrap_or(input.len() + 1);
                    for k in 1..=hi {
                        let next: BTreeSet<usize> = cur
                            .iter()
                            .flat_map(|&p| self.node(inner, input, p, depth + 1))
                            .collect();
                        if next.is_empty() {
                            break;
                        }
                        if k >= *lo {
                            out.extend(&next);
                        }
                        cur = next;
                    }
                }
            }
            out
        }

        fn alts(
            &self,
            alts: &[Vec<Node>],
            input: &[char],
            pos: usize,
            depth: usize,
        ) -> BTreeSet<usize> {
            let mut out = BTreeSet::new();
            for seq in alts {
                let mut cur = BTreeSet::from([pos]);
                for n in seq {
                    cur = cur
                        .iter()
                        .flat_map(|&p| self.node(n, input, p, depth))
                        .collect();
                    if cur.is_empty() {
                        break;
                    }
                }
                out.extend(cur);
            }
            out
        }

        fn accepts(&self, text: &str) -> bool {
            let input: Vec<char> = text.chars().collect();
            self.node(&Node::Ref("root".into()), &input, 0, 0)
                .contains(&input.len())
        }
    }

    /// Structural checks on a generated grammar; returns the parsed grammar.
    fn check_structure(text: &str) -> Gbnf {
        let g = parse_gbnf(text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert!(g.rules.contains_key("root"), "no root rule:\n{text}");
        assert!(
            text.starts_with("root ::= "),
            "root must come first:\n{text}"
        );
        for (name, alts) in &g.rules {
            let mut refs = Vec::new();
            for n in alts.iter().flatten() {
                Gbnf::visit_refs(n, &mut refs);
                assert!(
                    !Gbnf::unbounded(n),
                    "unbounded repetition in {name}:\n{text}"
                );
            }
            for r in refs {
                assert!(
                    g.rules.contains_key(&r),
                    "rule {name} references undefined {r}:\n{text}"
                );
            }
        }
        g
    }

    fn grammar(schema: &Value) -> Gbnf {
        check_structure(&schema_to_gbnf(schema).expect("schema should compile"))
    }

    fn findings_schema() -> Value {
        json!({"type":"object","properties":{"findings":{"type":"array","maxItems":4,"items":{"type":"object","properties":{"pattern":{"type":"string","maxLength":60},"category":{"type":"string","enum":["idiom","design pattern","anti-pattern","functional","other"]},"summary":{"type":"string","maxLength":300},"evidence":{"type":"string","maxLength":300},"code":{"type":"string","maxLength":400}},"required":["pattern","category","summary","evidence"]}}},"required":["findings"]})
    }

    fn verdict_schema() -> Value {
        json!({"type":"object","properties":{"verdict":{"enum":["accept","reject"]},"reason":{"type":"string","maxLength":200}},"required":["verdict","reason"]})
    }

    fn finding(pattern: &str) -> Value {
        json!({"pattern": pattern, "category": "idiom", "summary": "s", "evidence": "e"})
    }

    // ------------------------------------------------------------------ exact grammar output

    const FINDINGS_GBNF: &str = r#"root ::= "{" ws "\"findings\"" ws ":" ws findings ws "}"
findings ::= "[" ws ( findings-item ( ws "," ws findings-item ){0,3} )? ws "]"
findings-item ::= "{" ws "\"pattern\"" ws ":" ws findings-item-pattern ws "," ws "\"category\"" ws ":" ws findings-item-category ws "," ws "\"summary\"" ws ":" ws findings-item-summary ws "," ws "\"evidence\"" ws ":" ws findings-item-evidence ( ws "," ws "\"code\"" ws ":" ws findings-item-code )? ws "}"
findings-item-pattern ::= "\"" char{0,60} "\""
findings-item-category ::= "\"idiom\"" | "\"design pattern\"" | "\"anti-pattern\"" | "\"functional\"" | "\"other\""
findings-item-summary ::= "\"" char{0,300} "\""
findings-item-evidence ::= "\"" char{0,300} "\""
findings-item-code ::= "\"" char{0,400} "\""
ws ::= ( " " | "\n" [ \t]{0,8} )?
char ::= [^"\\\x00-\x1f\x7f] | "\\" ( ["\\/bfnrt] | "u" [0-9a-fA-F]{4} )
"#;

    const VERDICT_GBNF: &str = r#"root ::= "{" ws "\"verdict\"" ws ":" ws verdict ws "," ws "\"reason\"" ws ":" ws reason ws "}"
verdict ::= "\"accept\"" | "\"reject\""
reason ::= "\"" char{0,200} "\""
ws ::= ( " " | "\n" [ \t]{0,8} )?
char ::= [^"\\\x00-\x1f\x7f] | "\\" ( ["\\/bfnrt] | "u" [0-9a-fA-F]{4} )
"#;

    #[test]
    fn findings_grammar_exact() {
        let g = schema_to_gbnf(&findings_schema()).unwrap();
        assert_eq!(g, FINDINGS_GBNF);
        check_structure(&g);
    }

    #[test]
    fn verdict_grammar_exact() {
        let g = schema_to_gbnf(&verdict_schema()).unwrap();
        assert_eq!(g, VERDICT_GBNF);
        check_structure(&g);
    }

    #[test]
    fn output_is_deterministic() {
        let a = schema_to_gbnf(&findings_schema()).unwrap();
        let b = schema_to_gbnf(&findings_schema()).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn primitive_rules_exact() {
        let s = json!({"type":"object","properties":{
            "s":{"type":"string"},"i":{"type":"integer"},"n":{"type":"number"},
            "b":{"type":"boolean"},"z":{"type":"null"}},
            "required":["s","i","n","b","z"]});
        let g = schema_to_gbnf(&s).unwrap();
        let prims: Vec<&str> = g.lines().skip(1).collect();
        assert_eq!(
            prims,
            [
                r#"ws ::= ( " " | "\n" [ \t]{0,8} )?"#,
                r#"char ::= [^"\\\x00-\x1f\x7f] | "\\" ( ["\\/bfnrt] | "u" [0-9a-fA-F]{4} )"#,
                r#"string ::= "\"" char{0,512} "\"""#,
                r#"integer ::= "-"? ( "0" | [1-9] [0-9]{0,15} )"#,
                r#"number ::= "-"? ( "0" | [1-9] [0-9]{0,15} ) ( "." [0-9]{1,16} )? ( [eE] [-+]? [0-9]{1,3} )?"#,
                r#"boolean ::= "true" | "false""#,
                r#"null ::= "null""#,
            ]
        );
        check_structure(&g);
    }

    // ------------------------------------------------------------------ recognizer behaviour

    #[test]
    fn findings_grammar_accepts_valid_replies() {
        let g = grammar(&findings_schema());
        let one = json!({"findings":[finding("Builder")]});
        let full = json!({"findings":[
            {"pattern":"RAII","category":"design pattern","summary":"Drop closes it.",
             "evidence":"impl Drop for Guard","code":"fn drop(&mut self) {\n    close();\n}"},
            finding("newtype"), finding("é ünïcode \"quoted\" \\ back"), finding("")]});
        for v in [json!({"findings":[]}), one, full] {
            let compact = serde_json::to_string(&v).unwrap();
            let pretty = serde_json::to_string_pretty(&v).unwrap();
            assert!(g.accepts(&compact), "{compact}");
            assert!(g.accepts(&pretty), "{pretty}");
            assert_eq!(validate(&findings_schema(), &v), Ok(()));
        }
        assert!(g.accepts(r#"{ "findings" : [ ] }"#));
        assert!(g.accepts(r#"{"findings":[{"pattern":"\u00e9\t","category":"other","summary":"a\/b","evidence":"\"x\""}]}"#));
    }

    #[test]
    fn findings_grammar_rejects_invalid_replies() {
        let g = grammar(&findings_schema());
        let long = "x".repeat(61);
        let five: Vec<Value> = (0..5).map(|i| finding(&i.to_string())).collect();
        let bad = [
            json!({}),
            json!({"findings":[finding(&long)]}),
            json!({"findings": five}),
            json!({"findings":[{"pattern":"p","category":"idiom","summary":"s"}]}),
            json!({"findings":[{"pattern":"p","category":"nope","summary":"s","evidence":"e"}]}),
            json!({"findings":[], "extra": 1}),
            json!({"findings":[{"category":"idiom","pattern":"p","summary":"s","evidence":"e"}]}),
        ];
        for v in bad {
            let text = serde_json::to_string(&v).unwrap();
            assert!(!g.accepts(&text), "should reject {text}");
        }
        // Raw control characters in strings, unknown escapes, trailing commas.
        assert!(!g.accepts("{\"findings\":[{\"pattern\":\"a\nb\",\"category\":\"idiom\",\"summary\":\"s\",\"evidence\":\"e\"}]}"));
        assert!(!g.accepts(
            r#"{"findings":[{"pattern":"\q","category":"idiom","summary":"s","evidence":"e"}]}"#
        ));
        assert!(!g.accepts(r#"{"findings":[],}"#));
        // Whitespace is bounded: one newline plus up to 8 spaces, never a run of blank lines.
        assert!(g.accepts("{\n        \"findings\": []\n}"));
        assert!(!g.accepts("{\n\n\n\"findings\": []}"));
        assert!(!g.accepts("{\n          \"findings\": []}"));
    }

    #[test]
    fn verdict_grammar_behaviour() {
        let g = grammar(&verdict_schema());
        assert!(g.accepts(r#"{"verdict":"accept","reason":"fine"}"#));
        assert!(g.accepts(r#"{ "verdict": "reject", "reason": "" }"#));
        assert!(!g.accepts(r#"{"verdict":"maybe","reason":"fine"}"#));
        assert!(!g.accepts(r#"{"verdict":"accept"}"#));
        let long = format!(r#"{{"verdict":"accept","reason":"{}"}}"#, "y".repeat(201));
        assert!(!g.accepts(&long));
    }

    #[test]
    fn optional_properties_keep_order_and_commas() {
        let s = json!({"type":"object","properties":{
            "a":{"type":"boolean"},"b":{"type":"boolean"},"c":{"type":"boolean"}},"required":["b"]});
        let g = grammar(&s);
        for ok in [
            r#"{"b":true}"#,
            r#"{"a":true,"b":false}"#,
            r#"{"b":true,"c":true}"#,
            r#"{"a":true,"b":true,"c":false}"#,
        ] {
            assert!(g.accepts(ok), "{ok}");
        }
        for bad in [
            r#"{}"#,
            r#"{"a":true}"#,
            r#"{"b":true,"a":true}"#,
            r#"{"a":true,,"b":true}"#,
            r#"{,"b":true}"#,
        ] {
            assert!(!g.accepts(bad), "{bad}");
        }

        let all_opt = json!({"type":"object","properties":{
            "a":{"type":"null"},"b":{"type":"null"},"c":{"type":"null"}}});
        let g = grammar(&all_opt);
        for ok in [
            r#"{}"#,
            r#"{"a":null}"#,
            r#"{"c":null}"#,
            r#"{"a":null,"c":null}"#,
            r#"{"a":null,"b":null,"c":null}"#,
            r#"{"b":null,"c":null}"#,
        ] {
            assert!(g.accepts(ok), "{ok}");
        }
        for bad in [
            r#"{"c":null,"a":null}"#,
            r#"{"a":null,}"#,
            r#"{,"a":null}"#,
            r#"{"d":null}"#,
        ] {
            assert!(!g.accepts(bad), "{bad}");
        }

        let empty = json!({"type":"object"});
        let g = grammar(&empty);
        assert!(g.accepts("{}"));
        assert!(g.accepts("{ }"));
        assert!(!g.accepts(r#"{"a":1}"#));
    }

    #[test]
    fn string_length_bounds() {
        let s = json!({"type":"string","minLength":2,"maxLength":4});
        let text = schema_to_gbnf(&s).unwrap();
        assert!(
            text.starts_with(r#"root ::= "\"" char{2,4} "\"""#),
            "{text}"
        );
        let g = check_structure(&text);
        assert!(!g.accepts(r#""a""#));
        assert!(g.accepts(r#""ab""#));
        assert!(g.accepts(r#""a\"b\n""#), "escapes count as one character");
        assert!(!g.accepts(r#""abcde""#));

        let exact = schema_to_gbnf(&json!({"type":"string","minLength":3,"maxLength":3})).unwrap();
        assert!(exact.contains("char{3} "), "{exact}");
        let empty = schema_to_gbnf(&json!({"type":"string","maxLength":0})).unwrap();
        assert!(empty.starts_with(r#"root ::= "\"\"""#), "{empty}");
        assert!(check_structure(&empty).accepts(r#""""#));

        // No maxLength: default cap.
        let g = grammar(&json!({"type":"string"}));
        assert!(g.accepts(&format!("\"{}\"", "z".repeat(512))));
        assert!(!g.accepts(&format!("\"{}\"", "z".repeat(513))));
        // minLength above the default cap raises the cap to minLength.
        let text = schema_to_gbnf(&json!({"type":"string","minLength":600})).unwrap();
        assert!(text.contains("char{600}"), "{text}");
        // Clamp to llama.cpp's repetition limit.
        let text = schema_to_gbnf(&json!({"type":"string","maxLength":100000})).unwrap();
        assert!(text.contains("char{0,2000}"), "{text}");
    }

    #[test]
    fn array_bounds() {
        let item = json!({"type":"integer"});
        let g = grammar(&json!({"type":"array","items":item,"minItems":1,"maxItems":3}));
        assert!(!g.accepts("[]"));
        assert!(g.accepts("[1]"));
        assert!(g.accepts("[1, 2,3]"));
        assert!(!g.accepts("[1,2,3,4]"));
        assert!(!g.accepts("[1,]"));

        let text = schema_to_gbnf(&json!({"type":"array","items":item,"minItems":2,"maxItems":2}))
            .unwrap();
        assert!(
            text.contains(r#"( ws "," ws integer )"#) && !text.contains("{1,1}"),
            "{text}"
        );
        let g = check_structure(&text);
        assert!(g.accepts("[1,2]") && !g.accepts("[1]") && !g.accepts("[1,2,3]"));

        let g = grammar(&json!({"type":"array","items":item,"maxItems":1}));
        assert!(g.accepts("[]") && g.accepts("[7]") && !g.accepts("[7,8]"));
        let g = grammar(&json!({"type":"array","items":item,"maxItems":0}));
        assert!(g.accepts("[]") && !g.accepts("[7]"));
        let g = grammar(&json!({"type":"array","maxItems":0}));
        assert!(g.accepts("[ ]"));

        // Default cap.
        let g = grammar(&json!({"type":"array","items":item}));
        let list = |n: usize| format!("[{}]", vec!["1"; n].join(","));
        assert!(g.accepts(&list(16)));
        assert!(!g.accepts(&list(17)));
    }

    #[test]
    fn numbers_and_literals() {
        let g = grammar(&json!({"type":"integer"}));
        for ok in ["0", "-5", "1234567890123456"] {
            assert!(g.accepts(ok), "{ok}");
        }
        for bad in ["01", "1.5", "+1", "12345678901234567", "-"] {
            assert!(!g.accepts(bad), "{bad}");
        }
        let g = grammar(&json!({"type":"integer","minimum":0}));
        assert!(g.accepts("0") && !g.accepts("-1"));
        let g = grammar(&json!({"type":"integer","minimum":1}));
        assert!(g.accepts("1") && !g.accepts("0"));
        let g = grammar(&json!({"type":"integer","exclusiveMinimum":0}));
        assert!(g.accepts("3") && !g.accepts("0"));
        let g = grammar(&json!({"type":"number"}));
        for ok in ["0", "-0.25", "1.5e-3", "2E10", "10"] {
            assert!(g.accepts(ok), "{ok}");
        }
        for bad in ["1.", ".5", "1e", "NaN"] {
            assert!(!g.accepts(bad), "{bad}");
        }
        let g = grammar(&json!({"type":"boolean"}));
        assert!(g.accepts("true") && g.accepts("false") && !g.accepts("True"));
        let g = grammar(&json!({"type":"null"}));
        assert!(g.accepts("null") && !g.accepts("nil"));

        let g = grammar(&json!({"const":"fixed \"q\""}));
        assert!(g.accepts(r#""fixed \"q\"""#) && !g.accepts(r#""fixed""#));
        let g = grammar(&json!({"enum":[1, true, null, "x\ny"]}));
        for ok in ["1", "true", "null", r#""x\ny""#] {
            assert!(g.accepts(ok), "{ok}");
        }
        assert!(!g.accepts("false"));
    }

    #[test]
    fn refs_anyof_and_type_arrays() {
        let s = json!({
            "$defs":{"node":{"type":"object","properties":{
                "name":{"type":["string","null"],"maxLength":5},
                "kids":{"type":"array","items":{"$ref":"#/$defs/node"}}},"required":["name"]},
                "alias":{"$ref":"#/$defs/node"},
                "word":{"type":"string","maxLength":3}},
            "type":"object",
            "properties":{
                "tree":{"$ref":"#/$defs/alias"},
                "w":{"$ref":"#/$defs/word"},
                "w2":{"$ref":"#/$defs/word"},
                "x":{"anyOf":[{"type":"integer"},{"type":"string","maxLength":2}]},
                "y":{"oneOf":[{"const":"a"},{"type":"boolean"}]}},
            "required":["tree","w","w2","x","y"]});
        let text = schema_to_gbnf(&s).unwrap();
        let g = check_structure(&text);
        let ok = r#"{"tree":{"name":"root","kids":[{"name":null},{"name":"k","kids":[]}]},"w":"abc","w2":"","x":5,"y":"a"}"#;
        assert!(g.accepts(ok), "{text}");
        assert!(g.accepts(r#"{"tree":{"name":null},"w":"a","w2":"b","x":"hi","y":false}"#));
        assert!(!g.accepts(r#"{"tree":{"name":"toolong"},"w":"a","w2":"b","x":1,"y":true}"#));
        assert!(!g.accepts(r#"{"tree":{"name":null},"w":"abcd","w2":"b","x":1,"y":true}"#));
        assert!(!g.accepts(r#"{"tree":{"name":null},"w":"a","w2":"b","x":"hey","y":true}"#));
        assert!(!g.accepts(r#"{"tree":{"name":null},"w":"a","w2":"b","x":1,"y":"b"}"#));
        // The shared def is emitted once.
        assert_eq!(text.matches("\nword ::= ").count(), 1, "{text}");
        assert_eq!(text.matches("\nnode ::= ").count(), 1, "{text}");
        assert_eq!(validate(&s, &serde_json::from_str(ok).unwrap()), Ok(()));
    }

    #[test]
    fn rule_names_are_sanitized_and_unique() {
        let s = json!({"type":"object","properties":{
            "Foo Bar":{"type":"string","maxLength":1},
            "foo_bar":{"type":"string","maxLength":2},
            "ws":{"type":"string","maxLength":3},
            "root":{"type":"string","maxLength":4},
            "日本":{"type":"string","maxLength":5},
            "--":{"enum":["a"]},
            "quo\"te/slash":{"type":"boolean"}},
            "required":["Foo Bar","foo_bar","ws","root","日本","--","quo\"te/slash"]});
        let text = schema_to_gbnf(&s).unwrap();
        let g = check_structure(&text);
        let names: BTreeSet<&str> = g.rules.keys().map(String::as_str).collect();
        for n in ["foo-bar", "foo-bar-2", "ws-2", "root-2", "prop", "prop-2"] {
            assert!(names.contains(n), "missing {n} in {names:?}\n{text}");
        }
        assert!(g.accepts(r#"{"Foo Bar":"a","foo_bar":"bb","ws":"ccc","root":"dddd","日本":"eeeee","--":"a","quo\"te/slash":true}"#), "{text}");
    }

    // ------------------------------------------------------------------ schema errors

    fn unsupported_at(schema: Value) -> String {
        match schema_to_gbnf(&schema) {
            Err(SchemaError::Unsupported { path, .. }) => path,
            other => panic!("expected Unsupported, got {other:?}"),
        }
    }

    fn invalid_at(schema: Value) -> String {
        match schema_to_gbnf(&schema) {
            Err(SchemaError::Invalid { path, .. }) => path,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn unsupported_constructs_name_their_pointer() {
        let nested = |inner: Value| json!({"type":"object","properties":{"a":{"type":"array","items":inner}}});
        assert_eq!(
            unsupported_at(nested(
                json!({"type":"object","patternProperties":{"^x":{}}})
            )),
            "#/properties/a/items/patternProperties"
        );
        assert_eq!(
            unsupported_at(nested(json!({"type":"string","pattern":"^a"}))),
            "#/properties/a/items/pattern"
        );
        assert_eq!(
            unsupported_at(json!({"type":"object","additionalProperties":true})),
            "#/additionalProperties"
        );
        assert_eq!(
            unsupported_at(json!({"type":"object","properties":{"a/b~":{"allOf":[]}}})),
            "#/properties/a~1b~0/allOf"
        );
        assert_eq!(unsupported_at(nested(json!(true))), "#/properties/a/items");
        assert_eq!(
            unsupported_at(json!({"type":"array","items":[{"type":"null"}]})),
            "#/items"
        );
        assert_eq!(unsupported_at(json!({"type":"array"})), "#");
        assert_eq!(unsupported_at(json!({"description":"anything"})), "#");
        assert_eq!(unsupported_at(json!({"$ref":"other.json#/x"})), "#/$ref");
        assert_eq!(
            unsupported_at(
                json!({"$ref":"#/$defs/a","type":"string","$defs":{"a":{"type":"null"}}})
            ),
            "#"
        );
        assert_eq!(unsupported_at(json!({"enum":[[1]]})), "#/enum/0");
        assert_eq!(
            unsupported_at(json!({"type":"string","minLength":5000})),
            "#/minLength"
        );
        let e = schema_to_gbnf(&nested(json!({"type":"string","pattern":"^a"}))).unwrap_err();
        assert_eq!(
            e.to_string(),
            "unsupported schema construct at #/properties/a/items/pattern: keyword \"pattern\" is not supported"
        );
    }

    #[test]
    fn annotations_are_ignored() {
        let s = json!({"$schema":"https://json-schema.org/draft/2020-12/schema","title":"t",
            "description":"d","type":"string","format":"date","x-extra":1,"default":"a",
            "examples":["b"],"$comment":"c"});
        assert!(schema_to_gbnf(&s).is_ok());
    }

    #[test]
    fn invalid_schemas_name_their_pointer() {
        assert_eq!(
            invalid_at(json!({"type":"string","minLength":5,"maxLength":2})),
            "#"
        );
        assert_eq!(
            invalid_at(json!({"type":"string","maxLength":-1})),
            "#/maxLength"
        );
        assert_eq!(
            invalid_at(json!({"type":"string","maxLength":"3"})),
            "#/maxLength"
        );
        assert_eq!(
            invalid_at(json!({"type":"array","items":{},"minItems":3,"maxItems":1})),
            "#"
        );
        assert_eq!(
            invalid_at(
                json!({"type":"object","properties":{"a":{"type":"null"}},"required":["b"]})
            ),
            "#/required/0"
        );
        assert_eq!(invalid_at(json!({"type":"strnig"})), "#/type");
        assert_eq!(invalid_at(json!({"type":["string", 3]})), "#/type/1");
        assert_eq!(invalid_at(json!({"enum":[]})), "#/enum");
        assert_eq!(
            invalid_at(json!({"type":"string","enum":["a", 1]})),
            "#/enum/1"
        );
        assert_eq!(invalid_at(json!({"$ref":"#/$defs/missing"})), "#/$ref");
        assert_eq!(
            invalid_at(
                json!({"$defs":{"a":{"$ref":"#/$defs/b"},"b":{"$ref":"#/$defs/a"}},"$ref":"#/$defs/a"})
            ),
            "#/$ref"
        );
        assert_eq!(invalid_at(json!(["not", "a", "schema"])), "#");
        assert_eq!(
            invalid_at(json!({"type":"integer","minimum":"0"})),
            "#/minimum"
        );
    }

    // ------------------------------------------------------------------ validate()

    fn errors(schema: &Value, v: Value) -> Vec<String> {
        validate(schema, &v).expect_err("expected validation errors")
    }

    #[test]
    fn validate_accepts_good_values() {
        assert_eq!(
            validate(&findings_schema(), &json!({"findings":[]})),
            Ok(())
        );
        assert_eq!(
            validate(
                &findings_schema(),
                &json!({"findings":[finding("p"), {"pattern":"q","category":"other","summary":"","evidence":"","code":"x"}]})
            ),
            Ok(())
        );
        assert_eq!(
            validate(
                &verdict_schema(),
                &json!({"verdict":"reject","reason":"bad"})
            ),
            Ok(())
        );
        // Property order is not checked by validate (the grammar enforces it).
        assert_eq!(
            validate(&verdict_schema(), &json!({"reason":"r","verdict":"accept"})),
            Ok(())
        );
        // Default grammar caps are not applied by validate.
        assert_eq!(
            validate(&json!({"type":"string"}), &json!("z".repeat(1000))),
            Ok(())
        );
        assert_eq!(validate(&json!({"type":"integer"}), &json!(2.0)), Ok(()));
        assert_eq!(validate(&json!({"type":"number"}), &json!(2)), Ok(()));
    }

    #[test]
    fn validate_reports_each_violation_with_path() {
        let f = findings_schema();
        assert_eq!(
            errors(
                &f,
                json!({"findings":[finding("ok"), finding(&"x".repeat(61))]})
            ),
            ["$.findings[1].pattern: string longer than 60 characters"]
        );
        assert_eq!(
            errors(
                &f,
                json!({"findings":[finding("a"),finding("b"),finding("c"),finding("d"),finding("e")]})
            ),
            ["$.findings: array has 5 items, more than maxItems 4"]
        );
        assert_eq!(
            errors(&f, json!({})),
            [r#"$: missing required property "findings""#]
        );
        assert_eq!(
            errors(
                &f,
                json!({"findings":[{"pattern":"p","category":"idiom","summary":"s"}]})
            ),
            [r#"$.findings[0]: missing required property "evidence""#]
        );
        assert_eq!(
            errors(
                &f,
                json!({"findings":[{"pattern":"p","category":"vibe","summary":"s","evidence":"e"}]})
            ),
            [
                r#"$.findings[0].category: value "vibe" is not one of ["idiom", "design pattern", "anti-pattern", "functional", "other"]"#
            ]
        );
        assert_eq!(
            errors(&f, json!({"findings":[], "note": 1, "odd key": 2})),
            [
                "$.note: property not allowed by the schema",
                r#"$["odd key"]: property not allowed by the schema"#
            ]
        );
        assert_eq!(
            errors(&f, json!({"findings":"none"})),
            ["$.findings: expected array, got string"]
        );
        assert_eq!(errors(&f, json!([])), ["$: expected object, got array"]);
        assert_eq!(
            errors(
                &f,
                json!({"findings":[{"pattern":1,"category":"idiom","summary":"s","evidence":"e","code":null}]})
            ),
            [
                "$.findings[0].pattern: expected string, got integer",
                "$.findings[0].code: expected string, got null"
            ]
        );
        // All errors are collected.
        assert_eq!(
            errors(
                &verdict_schema(),
                json!({"verdict":"maybe","reason":"r".repeat(201),"x":true})
            )
            .len(),
            3
        );
    }

    #[test]
    fn validate_lengths_counts_and_numbers() {
        let s = json!({"type":"object","properties":{
            "s":{"type":"string","minLength":2,"maxLength":3},
            "a":{"type":"array","items":{"type":"integer","minimum":0,"maximum":9},"minItems":2},
            "n":{"type":"number","exclusiveMinimum":0,"exclusiveMaximum":1},
            "b":{"type":"boolean"},
            "z":{"type":["string","null"]},
            "c":{"const":3}}});
        assert_eq!(
            validate(
                &s,
                &json!({"s":"éé","a":[0,9],"n":0.5,"b":true,"z":null,"c":3})
            ),
            Ok(())
        );
        assert_eq!(validate(&s, &json!({"z":"text"})), Ok(()));
        assert_eq!(
            errors(&s, json!({"s":"a"})),
            ["$.s: string shorter than 2 characters"]
        );
        assert_eq!(
            errors(&s, json!({"s":"abcd"})),
            ["$.s: string longer than 3 characters"]
        );
        assert_eq!(
            errors(&s, json!({"a":[1]})),
            ["$.a: array has 1 items, fewer than minItems 2"]
        );
        assert_eq!(
            errors(&s, json!({"a":[-1, 10, 1.5]})),
            [
                "$.a[0]: -1 is less than minimum 0",
                "$.a[1]: 10 is greater than maximum 9",
                "$.a[2]: expected integer, got number"
            ]
        );
        assert_eq!(errors(&s, json!({"n":0})), ["$.n: 0 is not greater than 0"]);
        assert_eq!(errors(&s, json!({"n":1})), ["$.n: 1 is not less than 1"]);
        assert_eq!(
            errors(&s, json!({"b":"yes"})),
            ["$.b: expected boolean, got string"]
        );
        assert_eq!(
            errors(&s, json!({"z":1})),
            ["$.z: expected string or null, got integer"]
        );
        assert_eq!(errors(&s, json!({"c":4})), ["$.c: expected 3, got 4"]);
    }

    #[test]
    fn validate_refs_and_alternatives() {
        let s = json!({"$defs":{"n":{"type":"object","properties":{
            "v":{"type":"integer"},"next":{"anyOf":[{"$ref":"#/$defs/n"},{"type":"null"}]}},"required":["v"]}},
            "type":"object","properties":{
                "list":{"$ref":"#/$defs/n"},
                "one":{"oneOf":[{"type":"integer"},{"type":"number"}]}}});
        assert_eq!(
            validate(&s, &json!({"list":{"v":1,"next":{"v":2,"next":null}}})),
            Ok(())
        );
        assert_eq!(validate(&s, &json!({"one":1.5})), Ok(()));
        let e = errors(&s, json!({"list":{"v":1,"next":{"v":"x"}}}));
        assert_eq!(e.len(), 1);
        assert!(
            e[0].starts_with("$.list.next: value matches none of the anyOf alternatives ([0] $.list.next.v: expected integer, got string | [1] $.list.next: expected null, got object)"),
            "{e:?}"
        );
        assert_eq!(
            errors(&s, json!({"one":1})),
            ["$.one: value matches 2 oneOf alternatives, expected exactly one"]
        );
    }

    #[test]
    fn validate_rejects_unsupported_schema() {
        let e = errors(&json!({"type":"string","pattern":"x"}), json!("x"));
        assert_eq!(
            e,
            ["$: schema not usable: unsupported schema construct at #/pattern: keyword \"pattern\" is not supported"]
        );
    }

    /// Whether a grammar [`schema_to_gbnf`] wrote admits `text` (for tests elsewhere).
    pub(crate) fn gbnf_accepts(gbnf: &str, text: &str) -> bool {
        check_structure(gbnf).accepts(text)
    }

    // ------------------------------------------------------------------ admissible()

    #[test]
    fn admissible_keeps_only_values_the_field_accepts() {
        let terms: Vec<String> = ["T", "'a", "Builder", "Iter", "Iter", "abc", "toolong"]
            .map(String::from)
            .to_vec();
        let root = json!({});
        let field = json!({"type":"string","minLength":3,"maxLength":5});
        assert_eq!(admissible(&root, &field, &terms), ["Iter", "abc"]);
        let field = json!({"type":"string","enum":["abc","T","other"]});
        assert_eq!(admissible(&root, &field, &terms), ["T", "abc"]);
        assert!(admissible(&root, &json!({"type":"integer"}), &terms).is_empty());
        let root = json!({"$defs":{"w":{"type":"string","minLength":7}}});
        let field = json!({"$ref":"#/$defs/w"});
        assert_eq!(admissible(&root, &field, &terms), ["Builder", "toolong"]);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(96))]

        /// A field limited to the terms `admissible` keeps (or left free when it keeps none,
        /// as `Role::constrained` does) admits a term exactly when the schema accepts it.
        #[test]
        fn a_field_limited_to_admissible_terms_admits_only_valid_values(
            min in 0u64..5,
            span in proptest::option::of(0u64..6),
            listed in proptest::option::of(proptest::collection::vec("[a-c]{0,6}", 1..4)),
            terms in proptest::collection::vec(r#"[a-c'\\" é]{0,7}"#, 0..6),
        ) {
            let mut field = json!({"type":"string","minLength":min});
            if let Some(span) = span {
                field["maxLength"] = json!(min + span);
            }
            if let Some(listed) = &listed {
                field["enum"] = json!(listed);
            }
            let schema = json!({"type":"object","properties":{"findings":{"type":"array",
                "maxItems":2,"items":{"type":"object","properties":{"name":field},
                "required":["name"]}}},"required":["findings"]});
            let allowed = admissible(&schema, &field, &terms);
            let mut limited = schema.clone();
            if !allowed.is_empty() {
                limited["properties"]["findings"]["items"]["properties"]["name"] =
                    json!({"type":"string","enum":allowed});
            }
            let g = grammar(&limited);
            for t in &terms {
                let reply = json!({"findings":[{"name":t}]});
                let valid = validate(&schema, &reply).is_ok();
                proptest::prop_assert_eq!(allowed.contains(t), valid, "{}", t);
                proptest::prop_assert_eq!(g.accepts(&reply.to_string()), valid, "{} in {:?}", t, allowed);
            }
        }
    }
}

#[cfg(test)]
mod truncation_tests {
    use super::{close_truncated, validate};
    use serde_json::{json, Value};

    fn page_schema() -> Value {
        json!({"type":"object","properties":{
            "summary":{"type":"string","minLength":10,"maxLength":400},
            "when_to_use":{"type":"string","maxLength":300},
            "pitfalls":{"type":"string","maxLength":300}},
            "required":["summary","pitfalls"]})
    }

    /// The extractor's schema (agents/extractor.toml); with `limited`, its name, evidence
    /// and code limited to lists of values as `Role::constrained` does.
    fn findings_schema(limited: bool) -> Value {
        let mut s = json!({"type":"object","properties":{
            "findings":{"type":"array","maxItems":3,"items":{"type":"object","properties":{
                "name":{"type":"string","minLength":3,"maxLength":60},
                "category":{"type":"string","enum":["idiom","design pattern","anti-pattern","functional","structural","other"]},
                "summary":{"type":"string","minLength":10,"maxLength":160},
                "evidence":{"type":"string","minLength":8,"maxLength":160},
                "code":{"type":"string","maxLength":160}},
                "required":["name","category","summary","evidence"]}}},
            "required":["findings"]});
        if limited {
            let item = &mut s["properties"]["findings"]["items"]["properties"];
            item["name"] = json!({"type":"string","enum":["Builder pattern","Builder","Newtype"]});
            item["evidence"] = json!({"type":"string","enum":[
                "A builder collects options.","A builder collects options before it builds."]});
            item["code"] = json!({"type":"string","enum":["let b = Builder::new();",""]});
        }
        s
    }

    fn closed(schema: &Value, cut: &str) -> Value {
        let text = close_truncated(schema, cut).unwrap_or_else(|e| panic!("{cut}: {e}"));
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(validate(schema, &v), Ok(()), "{cut} closed as {text}");
        v
    }

    const FIRST: &str = r#"{"findings": [
  {"name": "Builder", "category": "idiom", "summary": "Collects the settings first.", "evidence": "A builder collects options."},
  "#;

    fn first() -> Value {
        json!({"name": "Builder", "category": "idiom", "summary": "Collects the settings first.",
            "evidence": "A builder collects options."})
    }

    #[test]
    fn a_reply_cut_inside_a_text_value_is_closed_at_its_last_word() {
        let cut = r#"{"summary": "Collects settings.", "pitfalls": "Easy to forget the bu"#;
        assert_eq!(
            close_truncated(&page_schema(), cut).unwrap(),
            r#"{"summary":"Collects settings.","pitfalls":"Easy to forget the…"}"#
        );
        let nested = format!(
            r#"{FIRST}{{"name": "Newtype", "category": "idiom", "summary": "Wraps it.", "evidence": "A builder collects options.", "code": "let b", "note": 1}}]}}"#
        );
        assert!(
            close_truncated(&findings_schema(false), &nested).is_err(),
            "not a cut: invalid"
        );
        let v = closed(
            &findings_schema(false),
            &format!(
                r#"{FIRST}{{"name": "Newtype", "category": "idiom", "summary": "It \"wraps\" a ty"#
            ),
        );
        assert_eq!(
            v["findings"].as_array().unwrap().len(),
            1,
            "no evidence: dropped"
        );
        let v = closed(
            &findings_schema(false),
            &format!(
                r#"{FIRST}{{"name": "Newtype", "category": "idiom", "summary": "It wraps a type.", "evidence": "It \"wraps\" a ty"#
            ),
        );
        assert_eq!(v["findings"][1]["evidence"], "It \"wraps\" a…");
        // Within maxLength, "…" included.
        let s = json!({"type":"object","properties":{"t":{"type":"string","maxLength":5}}});
        assert_eq!(closed(&s, r#"{"t": "abcde"#), json!({"t":"abcd…"}));
    }

    /// Issue 16, item 9: an extractor reply cut inside its list, outside a text field, died.
    #[test]
    fn a_reply_cut_inside_a_list_drops_the_unfinished_element() {
        let schema = findings_schema(false);
        let want = json!({ "findings": [first()] });
        for tail in [
            "",
            "{",
            r#"{"na"#,
            r#"{"name""#,
            r#"{"name": "#,
            r#"{"name": "Newtype", "#,
            r#"{"name": "Newtype", "category": "idi"#,
            r#"{"name": "Newtype", "category": "idiom", "summary": "Wraps a type in a str"#,
            r#"{"name": "Newtype", "category": "idiom", "summary": "Wraps a type.", "evidence": "sh"#,
        ] {
            let cut = format!("{FIRST}{tail}");
            assert_eq!(closed(&schema, &cut), want, "{cut}");
        }
        // Cut right after the first finding, before its comma, and inside a key.
        let whole = &FIRST[..FIRST.rfind(',').unwrap()];
        assert_eq!(closed(&schema, whole), want);
        // An object cut before its closing brace with every required member is kept.
        assert_eq!(closed(&schema, &whole[..whole.len() - 1]), want);
        assert_eq!(
            closed(&schema, r#"{"findings": ["#),
            json!({"findings": []})
        );
    }

    #[test]
    fn a_cut_term_quote_or_literal_becomes_the_value_it_begins() {
        let schema = findings_schema(true);
        let head = r#"{"findings": [{"name": "Builder", "category": "idiom", "summary": "Collects the settings first.", "evidence": "A builder coll"#;
        let v = closed(&schema, head);
        assert_eq!(
            v["findings"][0]["evidence"], "A builder collects options.",
            "the shortest"
        );
        let v = closed(
            &schema,
            &format!(r#"{head}ects options.", "code": "let b = Bu"#),
        );
        assert_eq!(v["findings"][0]["code"], "let b = Builder::new();");
        let v = closed(&schema, &format!(r#"{head}ects options.", "code": "#));
        assert_eq!(
            v["findings"][0].get("code"),
            None,
            "an optional member not begun"
        );
        // A cut that begins no allowed value is dropped.
        let odd = r#"{"findings": [{"name": "Builder", "category": "idiom", "summary": "Collects the settings first.", "evidence": "Nothing"#;
        assert_eq!(closed(&schema, odd), json!({"findings": []}));

        let s = json!({"type":"object","properties":{
            "ok":{"type":"boolean"},"n":{"type":"integer"},"z":{"type":["null","string"]},
            "e":{"enum":[12, 1234, "x"]}}});
        assert_eq!(closed(&s, r#"{"ok": tr"#), json!({"ok": true}));
        assert_eq!(
            closed(&s, r#"{"ok": false, "z": n"#),
            json!({"ok": false, "z": null})
        );
        assert_eq!(
            closed(&s, r#"{"ok": false, "n": 12"#),
            json!({"ok": false}),
            "digits unknown"
        );
        assert_eq!(closed(&s, r#"{"e": 12"#), json!({"e": 12}));
        assert_eq!(closed(&s, r#"{"e": 123"#), json!({"e": 1234}));
    }

    #[test]
    fn a_cut_with_no_valid_completion_is_an_error() {
        let schema = findings_schema(false);
        for cut in ["", "{", r#"{"find"#, r#"{"findings""#, r#"{"findings": "#] {
            let e = close_truncated(&schema, cut).unwrap_err();
            assert!(
                e.contains("findings") || e.contains("cut before"),
                "{cut}: {e}"
            );
        }
        let e = close_truncated(&page_schema(), r#"{"summary": "Collects settings.", "pitf"#)
            .unwrap_err();
        assert!(e.contains(r#"missing required property "pitfalls""#), "{e}");
        // Too short once cut: the required summary cannot be closed.
        let e = close_truncated(&page_schema(), r#"{"summary": "Coll"#).unwrap_err();
        assert!(e.contains("shorter than 10"), "{e}");
        assert!(
            close_truncated(&page_schema(), r#"{"summary" 1"#).is_err(),
            "not JSON"
        );
        assert!(close_truncated(&json!({"type":"string","pattern":"x"}), r#""ab"#).is_err());
    }

    /// Every cut of a reply the grammar admits either closes into a reply the schema
    /// accepts, keeping every finding written whole, or (cut before the list began) fails.
    #[test]
    fn every_cut_of_a_reply_closes_into_a_valid_reply_or_fails() {
        let reply = json!({"findings": [
            {"name": "Builder", "category": "design pattern", "summary": "Collects the \"settings\" first, ünïcode 😀.",
             "evidence": "A builder collects options.", "code": "let b = Builder::new();"},
            {"name": "Newtype", "category": "idiom", "summary": "Wraps one type in another.",
             "evidence": "A builder collects options before it builds."}]});
        let compact = serde_json::to_string(&reply).unwrap();
        let pretty = serde_json::to_string_pretty(&reply).unwrap();
        // With escapes that a cut can split: \u00fc, a surrogate pair, \n.
        let escaped = compact
            .replace('ü', "\\u00fc")
            .replace('😀', "\\ud83d\\ude00")
            .replace("first,", "first,\\n");
        let want_escaped: Value = serde_json::from_str(&escaped).unwrap();
        for (text, whole) in [
            (&compact, &reply),
            (&pretty, &reply),
            (&escaped, &want_escaped),
        ] {
            for schema in [findings_schema(false), findings_schema(true)] {
                assert_eq!(validate(&schema, whole), Ok(()));
                let list_at = text.find('[').unwrap();
                for (at, _) in text.char_indices().skip(1) {
                    let cut = &text[..at];
                    match close_truncated(&schema, cut) {
                        Ok(c) => {
                            let v: Value = serde_json::from_str(&c).unwrap();
                            assert_eq!(validate(&schema, &v), Ok(()), "{cut}");
                            let got = v["findings"].as_array().unwrap();
                            let all = whole["findings"].as_array().unwrap();
                            assert!(got.len() <= all.len());
                            // Whole findings are kept as they were, except a cut text field.
                            for (g, w) in got.iter().zip(all) {
                                assert_eq!(g["name"], w["name"], "{cut}");
                                assert_eq!(g["category"], w["category"], "{cut}");
                            }
                        }
                        Err(e) => assert!(at <= list_at, "{cut}: {e}"),
                    }
                }
                assert!(close_truncated(&schema, text).is_ok(), "a whole reply");
            }
        }
    }
}
