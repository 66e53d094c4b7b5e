//! Source checks that `stockroom-tidy` runs before every release.
//!
//! Each check is declared once with `declare_checks!`, which turns the list below into
//! constants and an `ALL` table for the command-line front end. The doc comment on each
//! entry is what `stockroom-tidy explain NAME` prints.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Allow,
    Warn,
    Deny,
}

#[derive(Debug)]
pub struct Check {
    pub name: &'static str,
    pub level: Level,
    pub summary: &'static str,
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({:?}): {}", self.name.to_lowercase(), self.level, self.summary)
    }
}

macro_rules! declare_checks {
    ($( $(#[$attr:meta])* $id:ident: $level:ident, $summary:literal; )*) => {
        $(
            $(#[$attr])*
            pub const $id: Check = Check {
                name: stringify!($id),
                level: Level::$level,
                summary: $summary,
            };
        )*

        /// Every check of this file, in declaration order.
        pub const ALL: &[&Check] = &[$(&$id),*];
    };
}

declare_checks! {
    /// Flags `.unwrap()` and `.expect(..)` on a `Result` in library code (tests and
    /// examples are skipped).
    ///
    /// A library cannot know whether a failed read is fatal for the program that calls it;
    /// a panic makes that decision for the caller and, in the server, takes down a worker
    /// that was serving other requests. Give the function a `Result` return type and pass
    /// the error upward with the question mark operator: `let text = fs::read_to_string(p)?;`
    /// returns early with the error and otherwise yields the value. Where the error types
    /// differ, add a `From` conversion (see `errors.rs`) or call `map_err` before the `?`.
    UNWRAP_IN_LIBRARY: Deny, "unwrap or expect on a Result outside tests";

    /// Flags a swap written by hand through a temporary variable:
    /// `let tmp = a; a = b; b = tmp;`.
    ///
    /// Besides taking three lines, the hand-written version does not even compile when `a`
    /// and `b` are fields reached through `&mut self` and their type is not `Copy`, because
    /// the first line would move out of a borrow. `std::mem::swap(&mut self.a, &mut self.b)`
    /// exchanges the two values in place through the mutable references, with no
    /// temporary and no clone. For two elements of one slice, use `slice.swap(i, j)`, since
    /// two `&mut` borrows into the same slice are not allowed.
    MANUAL_SWAP: Warn, "swap through a temporary; use std::mem::swap";

    /// Flags an iterator that is collected into a `Vec` only to be counted, tested for
    /// emptiness, or iterated once more.
    ///
    /// `iter.filter(..).collect::<Vec<_>>().len()` allocates a vector that nobody keeps.
    /// Iterator adapters are lazy, and the laziness is what makes them cheap: call `count()`
    /// directly, use `any(..)` or `next().is_none()` to ask whether there is anything at
    /// all, and pass the iterator itself (or `impl Iterator`) to the next step instead of a
    /// collected vector. Collect only at the point where a real collection is needed.
    NEEDLESS_COLLECT: Warn, "collect into a Vec that is only counted or re-iterated";
}

/// The checks that are at least as strict as `min`, strictest first.
pub fn enabled(min: Level) -> Vec<&'static Check> {
    let mut out: Vec<&'static Check> = ALL.iter().copied().filter(|c| c.level >= min).collect();
    out.sort_by(|a, b| b.level.cmp(&a.level));
    out
}

/// Whether a finding at `level` fails the build.
pub fn is_fatal(level: Level) -> bool {
    matches!(level, Level::Deny)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deny_comes_first() {
        let names: Vec<_> = enabled(Level::Warn).iter().map(|c| c.name).collect();
        assert_eq!(names[0], "UNWRAP_IN_LIBRARY");
        assert_eq!(names.len(), 3);
    }

    #[test]
    fn only_deny_is_fatal() {
        let fatal = vec![Level::Allow, Level::Warn, Level::Deny];
        assert_eq!(fatal.into_iter().filter(|l| is_fatal(*l)).count(), 1);
    }
}
