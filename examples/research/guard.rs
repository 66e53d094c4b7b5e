//! A scope guard: cleanup that runs on every path out of a scope.

use std::fs;
use std::path::PathBuf;

/// Deletes a temporary directory when dropped, so an early return or a `?` cannot leak it.
/// This is the RAII idea: acquire in the constructor, release in `Drop`.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates the directory; it lives as long as the returned guard.
    pub fn new(path: PathBuf) -> std::io::Result<TempDir> {
        fs::create_dir_all(&path)?;
        Ok(TempDir { path })
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.path);
    }
}
