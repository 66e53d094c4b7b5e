//! The rules about language: what in a text can name what it teaches, and whether a name
//! stands. Pure functions; no I/O, no SQL.

#[cfg(test)]
mod truth;
