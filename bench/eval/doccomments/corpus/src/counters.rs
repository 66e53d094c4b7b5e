//! Price lookups with a small cache and hit statistics.
//!
//! A `PriceBook` is shared by reference among the request handlers of one thread: the
//! basket code, the invoice code and the report code all hold `&PriceBook` at once. Yet a
//! lookup has to update things, namely the cache of computed prices and the hit and miss
//! counters. Requiring `&mut self` for a lookup would make sharing impossible, so the
//! changing parts are wrapped in cells and mutated through `&self`.
//!
//! This is single-threaded on purpose: `Cell` and `RefCell` are not `Sync`, so the
//! compiler will refuse to share a `PriceBook` across threads. A multi-threaded version
//! would use atomics and a `Mutex` in the same places.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    pub hits: u64,
    pub misses: u64,
}

pub struct PriceBook {
    base: HashMap<String, u64>,
    /// Prices after tax, computed on first request.
    ///
    /// A `RefCell` moves the borrow check to run time: `borrow()` and `borrow_mut()`
    /// hand out guards and panic if a mutable borrow would overlap any other borrow. To
    /// keep that from ever happening, each borrow below lives inside one method and ends
    /// before the method returns; no reference into the map escapes to the caller.
    cache: RefCell<HashMap<String, u64>>,
    /// Counters updated on every lookup.
    ///
    /// A `Cell` suits small `Copy` values: `get` copies the value out and `set` replaces
    /// it, so there is never a reference into the cell and nothing to check at run time.
    hits: Cell<u64>,
    misses: Cell<u64>,
    tax_percent: u64,
}

impl PriceBook {
    pub fn new(base: HashMap<String, u64>, tax_percent: u64) -> Self {
        PriceBook {
            base,
            cache: RefCell::new(HashMap::new()),
            hits: Cell::new(0),
            misses: Cell::new(0),
            tax_percent,
        }
    }

    /// Price of `item` including tax, in cents. Takes `&self`, not `&mut self`.
    pub fn price(&self, item: &str) -> Option<u64> {
        if let Some(&p) = self.cache.borrow().get(item) {
            self.hits.set(self.hits.get() + 1);
            return Some(p);
        }
        self.misses.set(self.misses.get() + 1);
        let base = *self.base.get(item)?;
        let taxed = base + base * self.tax_percent / 100;
        self.cache.borrow_mut().insert(item.to_owned(), taxed);
        Some(taxed)
    }

    pub fn stats(&self) -> Stats {
        Stats { hits: self.hits.get(), misses: self.misses.get() }
    }
}
