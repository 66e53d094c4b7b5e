//! The rules about language: what in a text can name what it teaches, and whether a name a
//! model gives stands. Pure functions; no I/O, no SQL.
//!
//! - `quotes`: a text's lines (fenced or not), its sentences and code lines, and the
//!   line-marker and link helpers every rule shares;
//! - `terms`: the candidate names of a chunk, offered to the model (`FileFacts`: what the
//!   whole file tells);
//! - `checks`: whether a name the model gave is grounded, discussed and not generic, and the
//!   key names of one pattern meet under;
//! - `paths`: Rust paths as names spell them (segments, parent, tail), read one way;
//! - `prose`: the author's prose in a chunk and the sentence around a quote.
//! - `teaching`: whether a file or chunk can teach a Rust pattern at all (`Silence`).
//! - `words`: every word list, each once, with the case it exists for.

pub mod checks;
pub mod paths;
pub mod prose;
pub mod quotes;
pub mod teaching;
pub mod terms;
pub mod words;

#[cfg(test)]
mod truth;
