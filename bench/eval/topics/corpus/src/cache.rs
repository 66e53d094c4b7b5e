//! A tiny memoising cache for the exporter's expensive lookups.

use std::collections::HashMap;
use std::hash::Hash;

/// Remembers the result of `f` for each argument it has seen.
///
/// Memoization trades memory for time: the first call for a key runs the
/// computation, later calls return the stored value. The `entry` API makes
/// the lookup and the insertion one hash of the key.
pub struct Memo<K, V, F> {
    seen: HashMap<K, V>,
    f: F,
}

impl<K: Hash + Eq + Clone, V: Clone, F: Fn(&K) -> V> Memo<K, V, F> {
    pub fn new(f: F) -> Self {
        Memo { seen: HashMap::new(), f }
    }

    pub fn get(&mut self, key: K) -> V {
        let f = &self.f;
        self.seen.entry(key.clone()).or_insert_with(|| f(&key)).clone()
    }
}

/// Builder for an export job: every setting has a default, and `build`
/// checks the combination once.
#[derive(Default)]
pub struct ExportBuilder {
    path: Option<String>,
    gzip: bool,
}

impl ExportBuilder {
    pub fn path(mut self, p: &str) -> Self {
        self.path = Some(p.to_string());
        self
    }

    pub fn gzip(mut self, on: bool) -> Self {
        self.gzip = on;
        self
    }

    pub fn build(self) -> Result<Export, String> {
        let path = self.path.ok_or("a path is required")?;
        Ok(Export { path, gzip: self.gzip })
    }
}

pub struct Export {
    pub path: String,
    pub gzip: bool,
}
