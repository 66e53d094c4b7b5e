//! The one error type that the store's public functions return.

use std::fmt;
use std::fs;
use std::io;
use std::num::ParseIntError;
use std::path::Path;

macro_rules! error_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident($inner:ty) => $msg:literal, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug)]
        pub enum $name {
            $( $(#[$vmeta])* $variant($inner), )*
        }

        $(
            impl From<$inner> for $name {
                fn from(err: $inner) -> Self {
                    $name::$variant(err)
                }
            }
        )*

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                match self {
                    $( $name::$variant(_) => f.write_str($msg), )*
                }
            }
        }

        impl std::error::Error for $name {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                match self {
                    $( $name::$variant(err) => Some(err as &(dyn std::error::Error + 'static)), )*
                }
            }
        }
    };
}

error_enum! {
    /// Everything that can go wrong while loading or saving the store.
    ///
    /// Each variant wraps the error of exactly one lower layer, and for each of them the
    /// macro writes an `impl From<Inner> for StoreError`. That is what lets the functions
    /// below apply `?` directly to an `io::Result` or to the result of `str::parse`: the
    /// question mark calls `From::from` on the error before returning it, so the lower-level
    /// error is converted into this enum automatically and no call site needs a `map_err`.
    /// Adding a new kind of failure means adding one line here; callers that `match` on the
    /// enum are told by the compiler which arm they are missing.
    pub enum StoreError {
        /// The store file could not be read or written.
        ///
        /// The message names only what the store was doing. The `io::Error` itself is not
        /// pasted into the message: it is handed out by `Error::source`, so an error
        /// reporter that walks the chain of causes (`while let Some(cause) = err.source()`)
        /// prints "could not access the store file", then the operating system's reason,
        /// each exactly once, and a caller can still downcast the cause to inspect its
        /// `ErrorKind`.
        Io(io::Error) => "could not access the store file",

        /// A count in the store file was not a number.
        ///
        /// Same rule as for `Io`: keep the cause as the source of the error, not as text.
        BadCount(ParseIntError) => "malformed item count",
    }
}

/// Reads the item count stored in the first line of `path`.
pub fn load_count(path: &Path) -> Result<u32, StoreError> {
    let text = fs::read_to_string(path)?;
    let first = text.lines().next().unwrap_or("0");
    let count = first.trim().parse::<u32>()?;
    Ok(count)
}

/// Writes `count` to `path`, replacing what was there.
pub fn save_count(path: &Path, count: u32) -> Result<(), StoreError> {
    fs::write(path, format!("{count}\n"))?;
    Ok(())
}
