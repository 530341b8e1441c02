//! The in-memory key index: for every key, its versions still in history.
//!
//! Like etcd's treeIndex, it lets the store answer "which row holds key K at
//! revision R" without touching SQLite, so SQLite needs no secondary index and
//! every write appends to the end of one table. Versions newer than the
//! committed revision may be present while a group commit is in flight;
//! readers never look past the revision they read at, so they never see them.

use std::collections::BTreeMap;
use std::ops::Bound;

/// Row ids encode (revision, sub-revision) so that one revision can hold the
/// several changes of a transaction and rows stay ordered by revision.
pub const SUB_BITS: u32 = 16;

pub fn row_id(revision: i64, sub: i64) -> i64 {
    (revision << SUB_BITS) | sub
}

pub fn revision_of(id: i64) -> i64 {
    id >> SUB_BITS
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Version {
    pub id: i64,
    pub create_revision: i64,
    pub version: i64,
    pub lease: i64,
    pub tombstone: bool,
}

impl Version {
    pub fn mod_revision(&self) -> i64 {
        revision_of(self.id)
    }
}

#[derive(Default)]
pub struct Index {
    keys: BTreeMap<Vec<u8>, Vec<Version>>,
}

/// The bounds of an etcd key range (`range_end` semantics of etcd).
pub fn range_bounds<'a>(key: &'a [u8], range_end: &'a [u8]) -> (Bound<&'a [u8]>, Bound<&'a [u8]>) {
    let start = Bound::Included(key);
    let end = if range_end.is_empty() {
        Bound::Included(key)
    } else if range_end == [0] {
        Bound::Unbounded
    } else {
        Bound::Excluded(range_end)
    };
    (start, end)
}

/// Whether `key` lies in the etcd range `[start, range_end)`.
pub fn in_range(key: &[u8], start: &[u8], range_end: &[u8]) -> bool {
    if range_end.is_empty() {
        key == start
    } else if range_end == [0] {
        key >= start
    } else {
        key >= start && key < range_end
    }
}

fn bounds_valid(key: &[u8], range_end: &[u8]) -> bool {
    range_end.is_empty() || range_end == [0] || key < range_end
}

impl Index {
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// The version of `key` visible at `revision`, tombstones included.
    pub fn get(&self, key: &[u8], revision: i64) -> Option<&Version> {
        self.keys.get(key).and_then(|vs| visible(vs, revision))
    }

    /// Live (non-tombstone) versions visible at `revision` in key order.
    pub fn range<'a>(
        &'a self,
        key: &'a [u8],
        range_end: &'a [u8],
        revision: i64,
    ) -> impl Iterator<Item = (&'a Vec<u8>, &'a Version)> + 'a {
        let valid = bounds_valid(key, range_end);
        let bounds = if valid {
            range_bounds(key, range_end)
        } else {
            (Bound::Included(key), Bound::Excluded(key))
        };
        self.keys
            .range::<[u8], _>(bounds)
            .filter_map(move |(k, vs)| match visible(vs, revision) {
                Some(v) if !v.tombstone => Some((k, v)),
                _ => None,
            })
    }

    /// The newest version of `key` older than row `id` (the "previous kv" of
    /// the change at `id`), if history still has it.
    pub fn before(&self, key: &[u8], id: i64) -> Option<&Version> {
        let vs = self.keys.get(key)?;
        let pos = vs.partition_point(|v| v.id < id);
        pos.checked_sub(1).map(|i| &vs[i])
    }

    pub fn push(&mut self, key: &[u8], version: Version) {
        match self.keys.get_mut(key) {
            Some(vs) => vs.push(version),
            None => {
                self.keys.insert(key.to_vec(), vec![version]);
            }
        }
    }

    /// Applies etcd compaction at `revision`: for each key keep the newest
    /// version at or below `revision` unless it is a tombstone, and all newer
    /// ones. Returns the row ids that history no longer needs.
    pub fn compact(&mut self, revision: i64) -> Vec<i64> {
        let limit = row_id(revision + 1, 0);
        let mut dropped = Vec::new();
        self.keys.retain(|_, vs| {
            let at_or_below = vs.partition_point(|v| v.id < limit);
            if at_or_below == 0 {
                return true;
            }
            let keep_from = if vs[at_or_below - 1].tombstone {
                at_or_below
            } else {
                at_or_below - 1
            };
            dropped.extend(vs.drain(..keep_from).map(|v| v.id));
            !vs.is_empty()
        });
        dropped
    }

    /// Every key with its newest version, for rebuilding lease attachments.
    pub fn latest(&self) -> impl Iterator<Item = (&Vec<u8>, &Version)> {
        self.keys
            .iter()
            .filter_map(|(k, vs)| vs.last().map(|v| (k, v)))
    }
}

fn visible(vs: &[Version], revision: i64) -> Option<&Version> {
    let limit = row_id(revision + 1, 0);
    let pos = vs.partition_point(|v| v.id < limit);
    pos.checked_sub(1).map(|i| &vs[i])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(rev: i64, create: i64, version: i64, tombstone: bool) -> Version {
        Version {
            id: row_id(rev, 0),
            create_revision: create,
            version,
            lease: 0,
            tombstone,
        }
    }

    #[test]
    fn visibility_follows_revision() {
        let mut idx = Index::default();
        idx.push(b"a", v(2, 2, 1, false));
        idx.push(b"a", v(4, 2, 2, false));
        idx.push(b"a", v(6, 0, 0, true));
        assert!(idx.get(b"a", 1).is_none());
        assert_eq!(idx.get(b"a", 3).map(|x| x.version), Some(1));
        assert_eq!(idx.get(b"a", 5).map(|x| x.version), Some(2));
        assert_eq!(idx.range(b"a", b"", 6).count(), 0);
        assert_eq!(idx.range(b"a", b"", 5).count(), 1);
    }

    #[test]
    fn compaction_keeps_latest_live_version() {
        let mut idx = Index::default();
        idx.push(b"a", v(2, 2, 1, false));
        idx.push(b"a", v(3, 2, 2, false));
        idx.push(b"b", v(4, 4, 1, false));
        idx.push(b"b", v(5, 0, 0, true));
        idx.push(b"a", v(7, 2, 3, false));
        let dropped = idx.compact(5);
        assert_eq!(dropped, vec![row_id(2, 0), row_id(4, 0), row_id(5, 0)]);
        assert!(idx.get(b"b", 9).is_none());
        assert_eq!(idx.get(b"a", 5).map(|x| x.version), Some(2));
        assert_eq!(idx.get(b"a", 9).map(|x| x.version), Some(3));
    }

    #[test]
    fn ranges_follow_etcd_bounds() {
        let mut idx = Index::default();
        for (i, k) in [b"a".as_slice(), b"ab", b"b", b"c"].iter().enumerate() {
            idx.push(k, v(i as i64 + 2, i as i64 + 2, 1, false));
        }
        let keys = |s: &[u8], e: &[u8]| {
            idx.range(s, e, 10)
                .map(|(k, _)| k.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(keys(b"a", b"b"), vec![b"a".to_vec(), b"ab".to_vec()]);
        assert_eq!(keys(b"b", &[0]).len(), 2);
        assert_eq!(keys(b"c", b"a"), Vec::<Vec<u8>>::new());
        assert_eq!(keys(b"ab", b""), vec![b"ab".to_vec()]);
    }
}
