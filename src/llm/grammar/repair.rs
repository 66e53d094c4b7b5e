//! A reply cut at the token limit, closed by the shortest completion its schema allows:
//! [`close_truncated`].

use serde_json::{Map, Value};

use super::compile::schema_to_gbnf;
use super::validate::{path_key, short, Validator, MAX_VALIDATE_DEPTH};

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
pub(super) enum Read {
    Whole(Value),
    Cut(Partial),
}

/// A value cut by the end of the text.
#[derive(Clone, Debug)]
pub(super) enum Partial {
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
pub(super) struct PrefixReader<'a> {
    pub(super) s: &'a str,
    pub(super) i: usize,
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

    pub(super) fn value(&mut self) -> Result<Read, String> {
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
