//! Storage locations (site, room, shelf, bin) kept as a tree in one vector.

/// Index of a location in a `Locations` arena.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LocId(usize);

#[derive(Debug, Clone)]
struct Node {
    name: String,
    parent: Option<LocId>,
    children: Vec<LocId>,
}

/// All locations of a site. Nodes refer to each other by index, never by reference.
#[derive(Debug, Default)]
pub struct Locations {
    nodes: Vec<Node>,
}

impl Locations {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a location under `parent` (or a new root) and returns its id.
    pub fn add(&mut self, name: &str, parent: Option<LocId>) -> LocId {
        let id = LocId(self.nodes.len());
        self.nodes.push(Node { name: name.to_owned(), parent, children: vec![] });
        if let Some(p) = parent {
            self.nodes[p.0].children.push(id);
        }
        id
    }

    pub fn name(&self, id: LocId) -> &str {
        &self.nodes[id.0].name
    }

    /// Walks from `id` up to the root, yielding each enclosing location in turn.
    ///
    /// The walk is its own type, `Ancestors`, that implements `Iterator` (see below), so
    /// callers get every adapter of the standard library for free:
    /// `locs.ancestors(bin).map(|a| locs.name(a)).collect::<Vec<_>>().join(" / ")` builds a
    /// breadcrumb, and `locs.ancestors(bin).any(|a| a == room)` answers "is this bin in that
    /// room?" and stops as soon as it knows.
    pub fn ancestors(&self, id: LocId) -> Ancestors<'_> {
        Ancestors { locs: self, next: self.nodes[id.0].parent }
    }

    /// Every location that has no children, in insertion order.
    ///
    /// The return type is `impl Iterator<Item = LocId> + '_`: the caller learns only that
    /// it gets an iterator of ids that borrows `self`, not that it is a `Filter` of a `Map`
    /// of an `Enumerate` over a slice iterator holding a closure (a type that could not
    /// even be written out, since closures have no name). Nothing is collected: a caller
    /// that wants the first leaf pays for one step, and we stay free to change how the
    /// leaves are found without touching the signature.
    pub fn leaves(&self) -> impl Iterator<Item = LocId> + '_ {
        self.nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.children.is_empty())
            .map(|(i, _)| LocId(i))
    }
}

/// Iterator over the ancestors of a location, nearest first.
///
/// A struct that keeps the state of the walk between calls (here, the next id to visit)
/// plus an `impl Iterator` whose `next` advances that state by one step and returns
/// `None` when there is nothing left. `next` is the only method that has to be written;
/// `map`, `filter`, `take`, `count`, `last` and the rest come from the trait's provided
/// methods, and a `for` loop accepts the struct directly. The work is lazy: no step runs
/// until someone asks for an item.
pub struct Ancestors<'a> {
    locs: &'a Locations,
    next: Option<LocId>,
}

impl<'a> Iterator for Ancestors<'a> {
    type Item = LocId;

    fn next(&mut self) -> Option<LocId> {
        let current = self.next?;
        self.next = self.locs.nodes[current.0].parent;
        Some(current)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn breadcrumb() {
        let mut locs = Locations::new();
        let site = locs.add("north", None);
        let room = locs.add("cold room", Some(site));
        let bin = locs.add("bin 4", Some(room));
        let path: Vec<&str> = locs.ancestors(bin).map(|a| locs.name(a)).collect();
        assert_eq!(path, vec!["cold room", "north"]);
        assert!(matches!(locs.leaves().next(), Some(id) if id == bin));
    }
}
