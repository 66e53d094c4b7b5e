//! Reading `key = value` configuration files with `[section]` headers.
//!
//! Lines starting with `;` are comments. See also the old notes at
//! https://example.org/ini-notes (partly out of date).

use std::collections::HashMap;
use std::error::Error;
use std::fmt;
use std::fs;
use std::io;
use std::num::ParseIntError;
use std::path::Path;

/// Everything that can go wrong while loading a config.
///
/// One error enum for the module, with one variant per underlying cause.
/// The `From` impls below are what make `?` pleasant: when `?` meets an
/// `Err(e)` it returns `Err(From::from(e))`, so a function returning
/// `Result<_, ConfigError>` can apply `?` to an `io::Error` or a
/// `ParseIntError` directly. The conversion is written once, here, instead
/// of as a `map_err` at every call site, and callers can still `match` on
/// the variant to decide what to do.
#[derive(Debug)]
pub enum ConfigError {
    Io(io::Error),
    BadNumber(ParseIntError),
    Syntax { line: usize, text: String },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Io(e) => write!(f, "cannot read config: {}", e),
            ConfigError::BadNumber(e) => write!(f, "bad number in config: {}", e),
            ConfigError::Syntax { line, text } => write!(f, "line {}: expected key = value, got {:?}", line, text),
        }
    }
}

impl Error for ConfigError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            ConfigError::Io(e) => Some(e),
            ConfigError::BadNumber(e) => Some(e),
            ConfigError::Syntax { .. } => None,
        }
    }
}

impl From<io::Error> for ConfigError {
    fn from(e: io::Error) -> Self {
        ConfigError::Io(e)
    }
}

impl From<ParseIntError> for ConfigError {
    fn from(e: ParseIntError) -> Self {
        ConfigError::BadNumber(e)
    }
}

#[derive(Debug, PartialEq)]
pub struct Item<'a> {
    pub section: &'a str,
    pub key: &'a str,
    pub value: &'a str,
}

/// Walks a config text and yields one `Item` per setting, lazily.
///
/// All the parsing state (the remaining lines, the current section and the
/// line number) lives in this struct, and `next` does one step of work per
/// call. Because it implements `Iterator`, callers get `for` loops, `filter`,
/// `map`, `count` and `collect` for free, and nothing past the first bad line
/// is parsed if they stop there.
pub struct Items<'a> {
    lines: std::str::Lines<'a>,
    section: &'a str,
    line_no: usize,
}

pub fn items(text: &str) -> Items<'_> {
    Items { lines: text.lines(), section: "", line_no: 0 }
}

impl<'a> Iterator for Items<'a> {
    type Item = Result<Item<'a>, ConfigError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let line = self.lines.next()?.trim();
            self.line_no += 1;
            if line.is_empty() || line.starts_with(';') {
                continue;
            }
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                self.section = name.trim();
                continue;
            }
            return Some(match line.split_once('=') {
                Some((k, v)) => Ok(Item { section: self.section, key: k.trim(), value: v.trim() }),
                None => Err(ConfigError::Syntax { line: self.line_no, text: line.to_string() }),
            });
        }
    }
}

/// Groups all settings by section.
///
/// `entry(section)` looks the section up once and gives back a handle to its
/// slot; `or_default()` fills an empty slot with a new map and returns a
/// mutable reference either way. That replaces the `contains_key`, `insert`,
/// `get_mut` dance, hashes the key only once, and never needs an `unwrap`.
pub fn by_section(text: &str) -> Result<HashMap<&str, HashMap<&str, &str>>, ConfigError> {
    let mut sections: HashMap<&str, HashMap<&str, &str>> = HashMap::new();
    for item in items(text) {
        let item = item?;
        sections.entry(item.section).or_default().insert(item.key, item.value);
    }
    Ok(sections)
}

/// How often each key occurs; a count above one is usually a typo.
pub fn key_counts(text: &str) -> Result<HashMap<&str, usize>, ConfigError> {
    let mut counts = HashMap::new();
    for item in items(text) {
        *counts.entry(item?.key).or_insert(0) += 1;
    }
    Ok(counts)
}

pub fn load_port(path: &Path) -> Result<u16, ConfigError> {
    let text = fs::read_to_string(path)?; // io::Error -> ConfigError::Io
    let sections = by_section(&text)?;
    let raw = sections.get("server").and_then(|s| s.get("port")).copied().unwrap_or("8080");
    Ok(raw.parse::<u16>()?) // ParseIntError -> ConfigError::BadNumber
}
