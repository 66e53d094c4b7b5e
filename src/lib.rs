//! quarry as a library: the binary in `main.rs` is a thin shell over `cmd`, and the
//! integration tests drive these modules directly.

pub mod agent;
pub mod bench;
pub mod cli;
pub mod cmd;
pub mod config;
pub mod engine;
pub mod ingest;
pub mod kb;
pub mod llm;
pub mod progress;
pub mod queue;
pub mod search;
pub mod text;
