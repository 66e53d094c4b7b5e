//! Support code for the stockroom inventory service.

pub mod checks;
pub mod counters;
pub mod errors;
pub mod format;
pub mod lockfile;
pub mod percent;
pub mod tree;

pub use errors::StoreError;
pub use percent::Percent;
