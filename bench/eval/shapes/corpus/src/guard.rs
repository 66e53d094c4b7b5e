//! Indentation-aware output for the report printer.
//!
//! A `Printer` is passed around by shared reference: the table renderer, the
//! tree renderer and the footer all hold `&Printer` at the same time. It
//! still has to change as they use it, so its current depth lives in a
//! `Cell<usize>` and its output buffer in a `RefCell<String>`. A `Cell` lets
//! us `get` and `set` a `Copy` value through `&self`; a `RefCell` hands out a
//! mutable borrow of its contents and checks the borrowing rules while the
//! program runs rather than when it compiles. The price is that two
//! overlapping `borrow_mut` calls panic, so every borrow below is kept inside
//! a single method and never returned to the caller.
//!
//! TODO: support tabs as well as spaces (issue 41).

use std::cell::{Cell, RefCell};

pub struct Printer {
    depth: Cell<usize>,
    out: RefCell<String>,
    width: usize,
    lines: Cell<u32>,
}

impl Printer {
    pub fn new(width: usize) -> Self {
        Printer {
            depth: Cell::new(0),
            out: RefCell::new(String::new()),
            width,
            lines: Cell::new(0),
        }
    }

    /// Writes one line at the current depth. Note that this takes `&self`.
    pub fn line(&self, text: &str) {
        let mut out = self.out.borrow_mut();
        let pad = self.depth.get() * self.width;
        out.extend(std::iter::repeat(' ').take(pad));
        out.push_str(text);
        out.push('\n');
        self.lines.set(self.lines.get() + 1);
    }

    /// Goes one level deeper until the returned `Indent` is dropped.
    ///
    /// Callers never write a matching "dedent". The `Indent` remembers the
    /// depth it replaced, and when it goes out of scope (at the end of the
    /// block, on an early `return` or `?`, or while a panic unwinds) its
    /// `Drop` implementation puts that depth back. Bind it to a named
    /// variable such as `_indent`: `let _ = p.indent();` would drop it at once.
    pub fn indent(&self) -> Indent<'_> {
        let previous = self.depth.get();
        self.depth.set(previous + 1);
        Indent { printer: self, previous }
    }

    pub fn lines_written(&self) -> u32 {
        self.lines.get()
    }

    pub fn finish(self) -> String {
        self.out.into_inner()
    }
}

/// Restores the printer's previous depth when it goes out of scope.
pub struct Indent<'a> {
    printer: &'a Printer,
    previous: usize,
}

impl Drop for Indent<'_> {
    fn drop(&mut self) {
        self.printer.depth.set(self.previous);
    }
}

pub struct Node {
    pub name: String,
    pub children: Vec<Node>,
}

pub fn print_tree(p: &Printer, node: &Node) {
    p.line(&node.name);
    let _indent = p.indent();
    for child in &node.children {
        print_tree(p, child);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaf(name: &str) -> Node {
        Node { name: name.to_string(), children: Vec::new() }
    }

    #[test]
    fn depth_is_restored_after_each_subtree() {
        let tree = Node { name: "root".into(), children: vec![leaf("a"), leaf("b")] };
        let p = Printer::new(2);
        print_tree(&p, &tree);
        p.line("after");
        assert_eq!(p.lines_written(), 4);
        assert_eq!(p.finish(), "root\n  a\n  b\nafter\n");
    }
}
