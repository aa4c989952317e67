//! In-memory tables with O(1) lookup by key and by UUID, and O(page) listing.
//!
//! Rows live in a `Vec` in insertion order; removal swaps the last row into the hole (O(1)), so the
//! order is insertion order until something is deleted. Listing a page is a slice of the `Vec`.

use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use uuid::Uuid;

pub trait Row {
    type Key: Hash + Eq + Clone;
    fn key(&self) -> Self::Key;
    fn id(&self) -> Uuid;
}

#[derive(Debug)]
pub struct Table<T: Row> {
    rows: Vec<T>,
    by_key: HashMap<T::Key, usize>,
    by_id: HashMap<Uuid, usize>,
    /// Keys removed at least once, and keys inserted again after a removal: what the fault tests
    /// check to prove no object was created twice. Grows only with deletions.
    removed: HashSet<T::Key>,
    recreated: Vec<T::Key>,
}

impl<T: Row> Default for Table<T> {
    fn default() -> Self {
        Table {
            rows: Vec::new(),
            by_key: HashMap::new(),
            by_id: HashMap::new(),
            removed: HashSet::new(),
            recreated: Vec::new(),
        }
    }
}

impl<T: Row> Table<T> {
    pub fn from_rows(rows: Vec<T>) -> Self {
        let mut table = Table::default();
        for row in rows {
            if !table.by_key.contains_key(&row.key()) {
                table.insert(row);
            }
        }
        table
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn rows(&self) -> &[T] {
        &self.rows
    }

    pub fn at(&self, idx: usize) -> &T {
        &self.rows[idx]
    }

    /// Mutable access to a row; the caller must not change its key or id.
    pub fn at_mut(&mut self, idx: usize) -> &mut T {
        &mut self.rows[idx]
    }

    pub fn position_of_key(&self, key: &T::Key) -> Option<usize> {
        self.by_key.get(key).copied()
    }

    pub fn position_of_id(&self, id: Uuid) -> Option<usize> {
        self.by_id.get(&id).copied()
    }

    pub fn get_by_id(&self, id: Uuid) -> Option<&T> {
        self.position_of_id(id).map(|i| &self.rows[i])
    }

    /// Inserts a row whose key is not present yet (callers check first) and returns its position.
    pub fn insert(&mut self, row: T) -> usize {
        if self.removed.contains(&row.key()) {
            self.recreated.push(row.key());
        }
        let idx = self.rows.len();
        self.by_key.insert(row.key(), idx);
        self.by_id.insert(row.id(), idx);
        self.rows.push(row);
        idx
    }

    pub fn remove_at(&mut self, idx: usize) -> T {
        let row = self.rows.swap_remove(idx);
        self.by_key.remove(&row.key());
        self.removed.insert(row.key());
        self.by_id.remove(&row.id());
        if let Some(moved) = self.rows.get(idx) {
            self.by_key.insert(moved.key(), idx);
            self.by_id.insert(moved.id(), idx);
        }
        row
    }

    pub fn clear(&mut self) {
        *self = Table::default();
    }

    /// Keys inserted again after being removed, in order (one entry per re-creation).
    pub fn recreated(&self) -> &[T::Key] {
        &self.recreated
    }
}

impl<T: Row<Key = String>> Table<T> {
    /// Finds a row by key, or else by UUID: Permit accepts either in every path.
    pub fn find(&self, ident: &str) -> Option<usize> {
        self.by_key.get(ident).copied().or_else(|| {
            Uuid::parse_str(ident)
                .ok()
                .and_then(|id| self.by_id.get(&id).copied())
        })
    }

    pub fn get(&self, ident: &str) -> Option<&T> {
        self.find(ident).map(|i| &self.rows[i])
    }

    /// The first of `keys` that names a row already or comes twice: a bulk create of these keys
    /// must fail whole on it.
    pub fn first_taken<'a>(&self, keys: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
        let mut seen = std::collections::HashSet::new();
        keys.into_iter()
            .find(|&key| self.find(key).is_some() || !seen.insert(key))
    }
}

impl<T: Row + Serialize> Serialize for Table<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.rows.serialize(s)
    }
}

/// A set of ids with O(1) insert and remove and a stable slice for paging. Small sets (the common
/// case: one user's assignments) skip the hash map and search linearly.
#[derive(Debug, Default)]
pub struct IdSet {
    ids: Vec<Uuid>,
    pos: Option<HashMap<Uuid, usize>>,
}

const INDEX_FROM: usize = 32;

impl IdSet {
    pub fn as_slice(&self) -> &[Uuid] {
        &self.ids
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    fn position(&self, id: Uuid) -> Option<usize> {
        match &self.pos {
            Some(pos) => pos.get(&id).copied(),
            None => self.ids.iter().position(|x| *x == id),
        }
    }

    pub fn insert(&mut self, id: Uuid) {
        if self.position(id).is_some() {
            return;
        }
        self.ids.push(id);
        match &mut self.pos {
            Some(pos) => {
                pos.insert(id, self.ids.len() - 1);
            }
            None if self.ids.len() > INDEX_FROM => {
                self.pos = Some(self.ids.iter().enumerate().map(|(i, x)| (*x, i)).collect());
            }
            None => {}
        }
    }

    pub fn remove(&mut self, id: Uuid) {
        let Some(idx) = self.position(id) else {
            return;
        };
        self.ids.swap_remove(idx);
        if let Some(pos) = &mut self.pos {
            pos.remove(&id);
            if let Some(moved) = self.ids.get(idx) {
                pos.insert(*moved, idx);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq)]
    struct R(String, Uuid);
    impl Row for R {
        type Key = String;
        fn key(&self) -> String {
            self.0.clone()
        }
        fn id(&self) -> Uuid {
            self.1
        }
    }

    #[test]
    fn table_find_insert_remove() {
        let mut t = Table::default();
        let ids: Vec<Uuid> = (0..5).map(|_| Uuid::new_v4()).collect();
        for (i, id) in ids.iter().enumerate() {
            t.insert(R(format!("k{i}"), *id));
        }
        assert_eq!(t.find("k3"), Some(3));
        assert_eq!(t.find(&ids[2].to_string()), Some(2));
        let removed = t.remove_at(1);
        assert_eq!(removed.0, "k1");
        assert_eq!(t.len(), 4);
        assert_eq!(t.get("k4").unwrap().1, ids[4]);
        assert_eq!(t.find("k1"), None);
        assert_eq!(t.get(&ids[4].to_string()).unwrap().0, "k4");
        assert!(t.recreated().is_empty());
        t.insert(R("k1".into(), Uuid::new_v4()));
        assert_eq!(t.recreated(), ["k1".to_string()]);
    }

    #[test]
    fn idset_grows_an_index_and_stays_consistent() {
        let mut s = IdSet::default();
        let ids: Vec<Uuid> = (0..100).map(|_| Uuid::new_v4()).collect();
        for id in &ids {
            s.insert(*id);
            s.insert(*id);
        }
        assert_eq!(s.len(), 100);
        for id in ids.iter().step_by(2) {
            s.remove(*id);
        }
        assert_eq!(s.len(), 50);
        for id in ids.iter().skip(1).step_by(2) {
            assert!(s.as_slice().contains(id));
            assert_eq!(s.position(*id).map(|i| s.as_slice()[i]), Some(*id));
        }
    }
}
