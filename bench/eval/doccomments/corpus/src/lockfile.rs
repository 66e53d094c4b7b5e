//! An exclusive lock on the store directory, held for as long as a value is alive.
//!
//! Two copies of the service must never write the store at the same time. Instead of a
//! pair of `lock()` and `unlock()` functions that every caller has to remember to pair
//! up, taking the lock returns a `LockFile` value, and releasing it is that value's
//! `Drop` implementation. The lock is therefore released on every path out of the scope
//! that owns it: the normal end of the block, an early `return`, a `?` that propagates an
//! error, or a panic that unwinds through it. Nobody can forget the unlock, because nobody
//! writes it.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process;

/// Proof that this process holds the store lock; dropping it releases the lock.
///
/// The type is `#[must_use]`: a statement such as `LockFile::acquire(dir)?;` would create
/// the guard and drop it on the same line, releasing the lock before the work it was
/// meant to protect. Bind it to a name, `let _lock = LockFile::acquire(dir)?;`, so that it
/// lives until the end of the block. (`let _ = ...` does not bind, and drops at once too.)
#[must_use = "the lock is released as soon as this value is dropped"]
#[derive(Debug)]
pub struct LockFile {
    path: PathBuf,
    _file: File,
}

impl LockFile {
    /// Creates `store.lock` in `dir`, failing if another process already holds it.
    pub fn acquire(dir: &Path) -> io::Result<LockFile> {
        let path = dir.join("store.lock");
        let mut file = OpenOptions::new().write(true).create_new(true).open(&path)?;
        writeln!(file, "{}", process::id())?;
        Ok(LockFile { path, _file: file })
    }

    /// Where the lock file lives, for error messages.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Releases the lock by removing the file.
///
/// `drop` cannot return an error, so a failure to remove the file is ignored here; the
/// next `acquire` will report the stale lock and the operator can delete it by hand.
impl Drop for LockFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// Rewrites the store's count file while holding the lock.
pub fn with_lock(dir: &Path, count: u32) -> io::Result<()> {
    let _lock = LockFile::acquire(dir)?;
    fs::write(dir.join("count"), format!("{count}\n"))?;
    Ok(())
}
