//! Rust paths as names spell them (`std::mem::take`, `Option::take()`, `mpsc::channel`): one
//! reader for the rules that compare them, offer them or group them.

/// The crates a path can start from that say only where an item lives.
pub const STD_ROOTS: &[&str] = &["std", "core", "alloc"];

/// The segments of a name that is a path of two segments or more (`a::b`), a call's `()`
/// dropped; `None` for any other name (one word, or a phrase with spaces).
pub fn segments(name: &str) -> Option<Vec<&str>> {
    let name = name.trim();
    if name.contains(char::is_whitespace) {
        return None;
    }
    let segments: Vec<&str> = name.trim_end_matches("()").split("::").collect();
    (segments.len() >= 2 && segments.iter().all(|s| !s.is_empty())).then_some(segments)
}

/// The module or type a path's last segment belongs to, lower-cased, without its crate
/// (`std::mem::take` → `mem`, `Option::take` → `option`); `None` for a path of the crate
/// alone (`std::mem`) or a name that is no path.
pub fn parent(name: &str) -> Option<String> {
    let segments: Vec<&str> = segments(name)?
        .into_iter()
        .filter(|s| !STD_ROOTS.contains(s))
        .collect();
    (segments.len() >= 2).then(|| segments[..segments.len() - 1].join("::").to_lowercase())
}

/// The last two segments of a path, what a text talks about when it uses it: its leading
/// modules only say where it lives (`std::sync::mpsc::channel` is discussed wherever a
/// channel or mpsc is). Any other name is itself.
pub fn tail(name: &str) -> &str {
    if name.contains(char::is_whitespace) {
        return name;
    }
    let cuts: Vec<usize> = name.match_indices("::").map(|(i, _)| i).collect();
    match cuts.len() {
        0 | 1 => name,
        n => &name[cuts[n - 2] + 2..],
    }
}

/// The last segment of a path (`std::cell::RefCell` → `RefCell`); a name that is no path is
/// itself.
pub fn last(name: &str) -> &str {
    name.rsplit("::").next().unwrap_or(name)
}

/// The rest of a `use` line of the standard library, after its crate (`use
/// std::cell::{Cell, RefCell};` → `cell::{Cell, RefCell}`), `pub` or not.
pub fn std_use(line: &str) -> Option<&str> {
    let t = line.trim().trim_start_matches("pub ");
    let path = t.strip_prefix("use ")?;
    STD_ROOTS
        .iter()
        .find_map(|root| path.strip_prefix(root)?.strip_prefix("::"))
        .map(|rest| rest.trim_end_matches(';'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_is_read_once_for_its_parent_tail_and_last_segment() {
        assert_eq!(
            segments("std::mem::take()"),
            Some(vec!["std", "mem", "take"])
        );
        assert_eq!(segments("take"), None);
        assert_eq!(segments("the mem::take call"), None);
        assert_eq!(segments("::take"), None);
        assert_eq!(parent("std::mem::take"), Some("mem".into()));
        assert_eq!(parent("Option::take()"), Some("option".into()));
        assert_eq!(parent("std::mem"), None);
        assert_eq!(tail("std::sync::mpsc::channel"), "mpsc::channel");
        assert_eq!(tail("mem::take"), "mem::take");
        assert_eq!(tail("a b::c::d"), "a b::c::d");
        assert_eq!(last("std::cell::RefCell"), "RefCell");
        assert_eq!(last("RefCell"), "RefCell");
        assert_eq!(
            std_use("pub use std::cell::{Cell, RefCell};"),
            Some("cell::{Cell, RefCell}")
        );
        assert_eq!(std_use("use core::mem;"), Some("mem"));
        assert_eq!(std_use("use crate::a::B;"), None);
        assert_eq!(std_use("use stdx::B;"), None);
    }
}
