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
//! * [`forced`]: the text the schema forces after a partial reply (jump-forward decoding).
//! * [`close_truncated`]: the shortest completion the schema allows of a reply cut at the
//!   token limit.
//!
//! What the subset is and the shape of the grammar: see `compile.rs`. The parts:
//! `compile.rs` (JSON Schema → GBNF), `validate.rs` ([`validate`], [`admissible`]),
//! `repair.rs` ([`close_truncated`]), `forced.rs` ([`forced`]); test-only: `matcher.rs` (a GBNF recognizer), `tests.rs`,
//! `truncation_tests.rs` and `reference_tests.rs` (quarry's grammars against llama.cpp's own
//! converter).

mod compile;
mod forced;
mod repair;
mod validate;

pub use compile::{
    schema_to_gbnf, SchemaError, DEFAULT_MAX_ITEMS, DEFAULT_MAX_STRING_LEN, MAX_REPETITION,
};
pub use forced::{forced, forced_in};
pub use repair::close_truncated;
pub use validate::{admissible, validate};

#[cfg(test)]
mod matcher;
#[cfg(test)]
mod reference_tests;
#[cfg(test)]
pub(crate) mod tests;
#[cfg(test)]
mod truncation_tests;
