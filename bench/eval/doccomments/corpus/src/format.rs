//! Export formats for inventory reports.
//!
//! `Format` is public because it appears in the signature of `export`, and users pick a
//! format by passing one of the unit structs below. But `export` relies on knowing every
//! format there is (the CLI lists them, and the escaping rules are tested per format),
//! so other crates must not be able to add their own. The trait is sealed for that
//! reason: it has a supertrait, `private::Sealed`, declared in a module that is not
//! exported. Code outside this crate can name `Format`, use it in bounds and call its
//! methods, but it cannot write `impl Format for MyType`, because that would require
//! implementing `Sealed`, which it cannot name. A side benefit is that adding a method to
//! `Format` later is not a breaking change: nobody outside can have implemented it.

mod private {
    /// The supertrait that seals `Format`. Public inside a private module: visible to
    /// the compiler as a bound, unreachable by path from other crates.
    pub trait Sealed {}

    impl Sealed for super::Csv {}
    impl Sealed for super::Tsv {}
}

/// A report format. Sealed: implemented only by the types of this module.
pub trait Format: private::Sealed {
    /// The character placed between fields.
    fn separator(&self) -> char;

    /// File extension, without the dot.
    fn extension(&self) -> &'static str;
}

/// Comma-separated values.
#[derive(Debug, Clone, Copy, Default)]
pub struct Csv;

/// Tab-separated values.
#[derive(Debug, Clone, Copy, Default)]
pub struct Tsv;

impl Format for Csv {
    fn separator(&self) -> char {
        ','
    }
    fn extension(&self) -> &'static str {
        "csv"
    }
}

impl Format for Tsv {
    fn separator(&self) -> char {
        '\t'
    }
    fn extension(&self) -> &'static str {
        "tsv"
    }
}

/// Renders rows of (name, quantity) in the given format, one line per row.
pub fn export<F: Format>(format: &F, rows: &[(&str, u32)]) -> String {
    let sep = format.separator();
    let mut out = String::new();
    for (name, qty) in rows {
        let clean: String = name.chars().filter(|c| *c != sep && *c != '\n').collect();
        out.push_str(&format!("{clean}{sep}{qty}\n"));
    }
    out
}
