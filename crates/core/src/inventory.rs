//! Ownership: the objects permit-sync manages, so prune never touches anything else.
//!
//! The inventory's data: this crate never reads or writes it; directory mode keeps it in a state
//! file outside the manifests (`permit_sync::inventory::StateFile`; Kubernetes mode derives it
//! from the custom resources instead). The file is written atomically (temp file + rename), and a file
//! that cannot be trusted (corrupt, another environment, a newer format) disables prune rather than
//! guessing: the worst outcome of a lost inventory is an object left behind, never one deleted.

use crate::kinds::Kind;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The state file's format; a file of another version disables prune.
pub const FORMAT_VERSION: u32 = 1;

/// What we know about one owned object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Hash of the spec last applied (`Obj::spec_hash`), written as 16 hex digits.
    #[serde(with = "hex_hash")]
    pub hash: u64,
    /// Declared with `deletionPolicy: Orphan`: left in Permit when its manifest goes away.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub orphan: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inventory {
    pub version: u32,
    /// The Permit environment the inventory belongs to (`organization/project/environment` ids).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    #[serde(deserialize_with = "read_in_bulk")]
    pub objects: BTreeMap<Kind, BTreeMap<String, Entry>>,
}

/// Each kind's entries read into a list and made a map in one go: full nodes at once, where
/// inserting them one by one leaves nodes half empty and rebuilding them doubles the map for a
/// moment (at 400,000 entries, tens of megabytes either way).
fn read_in_bulk<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<Kind, BTreeMap<String, Entry>>, D::Error> {
    struct Entries(BTreeMap<String, Entry>);
    impl<'de> Deserialize<'de> for Entries {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Entries, D::Error> {
            struct Visit;
            impl<'de> serde::de::Visitor<'de> for Visit {
                type Value = Entries;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("a map of keys to inventory entries")
                }
                fn visit_map<A: serde::de::MapAccess<'de>>(
                    self,
                    mut map: A,
                ) -> Result<Entries, A::Error> {
                    let mut all = Vec::new();
                    while let Some(entry) = map.next_entry::<String, Entry>()? {
                        all.push(entry);
                    }
                    Ok(Entries(all.into_iter().collect()))
                }
            }
            d.deserialize_map(Visit)
        }
    }
    let kinds = BTreeMap::<Kind, Entries>::deserialize(d)?;
    Ok(kinds.into_iter().map(|(kind, e)| (kind, e.0)).collect())
}

impl Inventory {
    pub fn new(environment: Option<String>) -> Inventory {
        Inventory {
            version: FORMAT_VERSION,
            environment,
            objects: BTreeMap::new(),
        }
    }

    pub fn contains(&self, kind: Kind, key: &str) -> bool {
        self.get(kind, key).is_some()
    }

    pub fn get(&self, kind: Kind, key: &str) -> Option<&Entry> {
        self.objects.get(&kind).and_then(|m| m.get(key))
    }

    pub fn insert(&mut self, kind: Kind, key: String, entry: Entry) {
        self.objects.entry(kind).or_default().insert(key, entry);
    }

    pub fn remove(&mut self, kind: Kind, key: &str) {
        if let Some(m) = self.objects.get_mut(&kind) {
            m.remove(key);
            if m.is_empty() {
                self.objects.remove(&kind);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.objects.values().map(BTreeMap::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Records `entries` (each replacing the one held for its key; of a key listed twice, the
    /// last); whether anything changed. A kind's changed entries are made a map in one go and
    /// merged in one pass when they are many, as `Plan::record_declared` merges them; that one
    /// collects them one by one in key order, and a cold sync, merging into nothing, keeps the
    /// half-empty nodes that leaves (40,000 entries: 2 MB more).
    pub fn record<'a>(
        &mut self,
        entries: impl IntoIterator<Item = (Kind, &'a str, &'a Entry)>,
    ) -> bool {
        let mut by_kind: BTreeMap<Kind, Vec<(&str, &Entry)>> = BTreeMap::new();
        for (kind, key, entry) in entries {
            by_kind.entry(kind).or_default().push((key, entry));
        }
        let mut changed = false;
        for (kind, mut list) in by_kind {
            // Stable: of equal keys the last listed stays last, and `dedup_by` keeps it.
            list.sort_by_key(|(key, _)| *key);
            list.dedup_by(|later, kept| {
                let same = later.0 == kept.0;
                if same {
                    *kept = *later;
                }
                same
            });
            let held = self.objects.get(&kind);
            let mut new: BTreeMap<String, Entry> = list
                .into_iter()
                .filter(|(key, entry)| held.and_then(|m| m.get(*key)) != Some(*entry))
                .map(|(key, entry)| (key.to_string(), entry.clone()))
                .collect();
            if new.is_empty() {
                continue;
            }
            changed = true;
            let map = self.objects.entry(kind).or_default();
            if new.len() > map.len() / 8 {
                map.append(&mut new);
            } else {
                map.extend(new);
            }
        }
        changed
    }

    pub fn iter(&self) -> impl Iterator<Item = (Kind, &String, &Entry)> {
        self.objects
            .iter()
            .flat_map(|(k, m)| m.iter().map(move |(key, e)| (*k, key, e)))
    }
}

/// An inventory as written: `base` with `entries` laid over it, serialised as the merged
/// [`Inventory`] would be without building it. A cold apply of 400,000 objects records them all,
/// and the merged maps weighed tens of megabytes only to be written and dropped.
pub struct Overlay<'a> {
    pub base: Option<&'a Inventory>,
    /// Recorded when the base has none.
    pub environment: Option<String>,
    /// Per kind, entries sorted by key, each replacing the base's for its key.
    pub entries: BTreeMap<Kind, Vec<(&'a str, &'a Entry)>>,
}

impl Serialize for Overlay<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let environment = self
            .base
            .and_then(|b| b.environment.as_deref())
            .or(self.environment.as_deref());
        let mut st = s.serialize_struct("Inventory", 3)?;
        st.serialize_field("version", &self.base.map_or(FORMAT_VERSION, |b| b.version))?;
        match environment {
            Some(env) => st.serialize_field("environment", env)?,
            None => st.skip_field("environment")?,
        }
        st.serialize_field("objects", &OverlayObjects(self))?;
        st.end()
    }
}

struct OverlayObjects<'o, 'a>(&'o Overlay<'a>);

impl Serialize for OverlayObjects<'_, '_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let overlay = self.0;
        let empty = BTreeMap::new();
        let base = |kind: Kind| {
            overlay
                .base
                .and_then(|b| b.objects.get(&kind))
                .unwrap_or(&empty)
        };
        let kinds: std::collections::BTreeSet<Kind> = overlay
            .base
            .iter()
            .flat_map(|b| b.objects.keys().copied())
            .chain(overlay.entries.keys().copied())
            .collect();
        s.collect_map(kinds.into_iter().map(|kind| {
            let new = overlay.entries.get(&kind).map_or(&[][..], Vec::as_slice);
            (kind, MergedKind(base(kind), new))
        }))
    }
}

/// One kind's entries: the base's, with the new ones merged in by key (the new one wins).
struct MergedKind<'o, 'a>(&'o BTreeMap<String, Entry>, &'o [(&'a str, &'a Entry)]);

impl Serialize for MergedKind<'_, '_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut old = self.0.iter().map(|(k, e)| (k.as_str(), e)).peekable();
        let mut new = self.1.iter().copied().peekable();
        let merged = std::iter::from_fn(move || match (old.peek(), new.peek()) {
            (Some(o), Some(n)) if o.0 < n.0 => old.next(),
            (Some(o), Some(n)) if o.0 == n.0 => {
                old.next();
                new.next()
            }
            (Some(_), None) => old.next(),
            _ => new.next(),
        });
        s.collect_map(merged)
    }
}

/// A spec hash as 16 hex digits in the file (a number in memory: 8 bytes, not a string, for each
/// of hundreds of thousands of entries).
mod hex_hash {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(hash: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{hash:016x}"))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        let text = String::deserialize(d).map_err(|_| D::Error::custom("expected a hash"))?;
        // Any other text (an older or hand-edited file): the hash is informational, never a reason
        // to distrust the inventory.
        Ok(u64::from_str_radix(&text, 16).unwrap_or(0))
    }
}

/// Why prune deletes nothing on a first run.
pub const NO_INVENTORY: &str = "no inventory yet (first run, or its state file is missing): \
    nothing is known to be managed by permit-sync, so nothing is deleted";

/// The result of reading the state file.
#[derive(Clone, Debug)]
pub enum Loaded {
    /// A trusted inventory.
    Ok(Inventory),
    /// No state file yet (first run): nothing is owned, so nothing can be pruned.
    Missing,
    /// A file we cannot trust; prune is disabled and the message says why.
    Unusable(String),
}

impl Loaded {
    /// The inventory prune may rely on, if any.
    pub fn trusted(&self) -> Option<&Inventory> {
        match self {
            Loaded::Ok(inv) => Some(inv),
            _ => None,
        }
    }

    /// Why prune cannot delete anything, for the plan's warnings.
    pub fn prune_disabled_reason(&self) -> Option<String> {
        match self {
            Loaded::Ok(_) => None,
            // Nothing to delete either way, but a prune that silently does nothing after a lost
            // state file would look like success: say so.
            Loaded::Missing => Some(NO_INVENTORY.into()),
            Loaded::Unusable(why) => Some(why.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(hash: u64) -> Entry {
        Entry {
            hash,
            orphan: false,
        }
    }

    /// Recording gives what inserting one by one gives, and says whether anything changed.
    #[test]
    fn recording_in_bulk_is_inserting_one_by_one() {
        let mut inv = Inventory::new(None);
        inv.insert(Kind::PermitTenant, "b".into(), entry(1));
        let (one, two, three) = (entry(1), entry(2), entry(3));
        let listed = [
            (Kind::PermitUser, "z", &one),
            (Kind::PermitTenant, "b", &two),
            (Kind::PermitUser, "a", &two),
            (Kind::PermitTenant, "b", &one),
            (Kind::PermitTenant, "a", &three),
        ];
        let mut expect = inv.clone();
        for (kind, key, e) in listed {
            expect.insert(kind, key.to_string(), e.clone());
        }
        assert!(inv.record(listed));
        assert_eq!(inv, expect);
        assert!(!inv.record(listed), "nothing changes the second time");
    }
}
