//! List bookkeeping of strategic merge patch: element kinds, identity of
//! elements (by merge key or by value) and the element order upstream
//! produces (patch items in patch order, server-only items in their old
//! order, interleaved by the old order where both are known).
//!
//! Identity lookups go through hash maps so that huge lists stay linear;
//! upstream compares pairwise, with the same outcome.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use super::PatchError;

/// The kind shared by all elements of the lists being merged (upstream
/// compares Go types, so integers and floats differ).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Map,
    Str,
    Int,
    Float,
    Bool,
    Null,
}

fn kind_of(v: &Value) -> Result<Kind, PatchError> {
    Ok(match v {
        Value::Object(_) => Kind::Map,
        Value::String(_) => Kind::Str,
        Value::Number(n) if n.is_f64() => Kind::Float,
        Value::Number(_) => Kind::Int,
        Value::Bool(_) => Kind::Bool,
        Value::Null => Kind::Null,
        Value::Array(_) => {
            return Err(PatchError::Unprocessable(
                "lists of lists are not supported".into(),
            ))
        }
    })
}

/// The element kind of `lists`, which must agree.
pub(super) fn element_kind(lists: &[&[Value]]) -> Result<Kind, PatchError> {
    let mut kind = None;
    for v in lists.iter().flat_map(|l| l.iter()) {
        let k = kind_of(v)?;
        match kind {
            None => kind = Some(k),
            Some(prev) if prev != k => {
                return Err(PatchError::Unprocessable(
                    "list element types are not identical".into(),
                ))
            }
            Some(_) => {}
        }
    }
    kind.ok_or_else(|| PatchError::Unprocessable("no elements in any of the given slices".into()))
}

/// The error for a list element that lacks its merge key.
pub(super) fn no_merge_key(m: &Map<String, Value>, key: &str) -> PatchError {
    PatchError::Unprocessable(format!(
        "map: {} does not contain declared merge key: {key}",
        Value::Object(m.clone())
    ))
}

/// The error for a list element that should be a map.
pub(super) fn not_a_map(v: &Value) -> PatchError {
    PatchError::Unprocessable(format!("expected a map in the list, but received {v}"))
}

/// What identifies an element: its merge key's value, or itself when there
/// is no merge key. Equal exactly when upstream's Go `==` on the decoded
/// values is true (integers and floats differ), and hashable.
#[derive(Debug, PartialEq, Eq, Hash)]
enum Id<'a> {
    Null,
    Bool(bool),
    Str(&'a str),
    Int(i128),
    Float(u64),
    /// Maps and lists, which upstream never uses as identities in practice.
    Other(String),
}

fn identity<'a>(v: &'a Value, merge_key: &str) -> Id<'a> {
    let id = if merge_key.is_empty() {
        v
    } else {
        v.get(merge_key).unwrap_or(&Value::Null)
    };
    match id {
        Value::Null => Id::Null,
        Value::Bool(b) => Id::Bool(*b),
        Value::String(s) => Id::Str(s),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => Id::Int(i.into()),
            (None, Some(u), _) => Id::Int(u.into()),
            (None, None, Some(f)) => Id::Float(f.to_bits()),
            (None, None, None) => Id::Other(n.to_string()),
        },
        other => Id::Other(other.to_string()),
    }
}

/// Position of each identity's first occurrence in a list. Maps lacking
/// the merge key have no identity (upstream matches only present keys).
pub(super) struct Positions<'a>(HashMap<Id<'a>, usize>);

impl<'a> Positions<'a> {
    pub(super) fn of(list: &'a [Value], merge_key: &str) -> Positions<'a> {
        let mut positions = Positions(HashMap::with_capacity(list.len()));
        for (i, v) in list.iter().enumerate() {
            positions.add(v, merge_key, i);
        }
        positions
    }

    /// Records `v` at `i` unless its identity is already known.
    pub(super) fn add(&mut self, v: &'a Value, merge_key: &str, i: usize) {
        if merge_key.is_empty() || v.get(merge_key).is_some() {
            self.0.entry(identity(v, merge_key)).or_insert(i);
        }
    }

    pub(super) fn get(&self, v: &Value, merge_key: &str) -> Option<usize> {
        self.0.get(&identity(v, merge_key)).copied()
    }
}

/// Checks that every element of `lists` is a map with `merge_key`.
fn require_merge_key(merge_key: &str, lists: &[&[Value]]) -> Result<(), PatchError> {
    for v in lists.iter().flat_map(|l| l.iter()) {
        let m = v.as_object().ok_or_else(|| not_a_map(v))?;
        if !m.contains_key(merge_key) {
            return Err(no_merge_key(m, merge_key));
        }
    }
    Ok(())
}

/// Splits `merged` into the elements present in `by` and the others.
pub(super) fn partition(
    merged: Vec<Value>,
    by: &[Value],
    merge_key: &str,
) -> Result<(Vec<Value>, Vec<Value>), PatchError> {
    if !merge_key.is_empty() {
        require_merge_key(merge_key, &[&merged])?;
    }
    let by = Positions::of(by, merge_key);
    Ok(merged
        .into_iter()
        .partition(|v| by.get(v, merge_key).is_some()))
}

/// Sorts `to_sort` by the positions in `order`, stably; maps marked
/// `$patch: delete` go last, as upstream.
fn sort_by_order(
    to_sort: Vec<Value>,
    order: &[Value],
    merge_key: &str,
    kind: Kind,
) -> Result<Vec<Value>, PatchError> {
    let (mut to_sort, deletes) = if kind == Kind::Map {
        require_merge_key(merge_key, &[&to_sort, order])?;
        to_sort.into_iter().partition::<Vec<_>, _>(|v| {
            v.get(super::directives::PATCH).and_then(Value::as_str) != Some("delete")
        })
    } else {
        (to_sort, Vec::new())
    };
    let pos = Positions::of(order, merge_key);
    // Elements missing from `order` go first: upstream's comparator calls
    // them smaller than anything.
    to_sort.sort_by_cached_key(|v| pos.get(v, merge_key).map_or(0, |i| i + 1));
    to_sort.extend(deletes);
    Ok(to_sort)
}

/// The final order of a merged list: `patch_items` sorted by `patch_order`,
/// `server_only` by `server_order`, then interleaved (upstream
/// `normalizeElementOrder` and `mergeSortedSlice`).
pub(super) fn normalize(
    patch_items: Vec<Value>,
    server_only: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    merge_key: &str,
    kind: Kind,
) -> Result<Vec<Value>, PatchError> {
    let right = sort_by_order(patch_items, patch_order, merge_key, kind)?;
    let left = sort_by_order(server_only, server_order, merge_key, kind)?;
    let pos = Positions::of(server_order, merge_key);
    let mut out = Vec::with_capacity(left.len() + right.len());
    let mut left = left.into_iter().peekable();
    let mut right = right.into_iter().peekable();
    loop {
        let take_left = match (left.peek(), right.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            // A server-only element goes first only when both are known to
            // the old list and it came first there.
            (Some(l), Some(r)) => matches!(
                (pos.get(l, merge_key), pos.get(r, merge_key)),
                (Some(li), Some(ri)) if li < ri
            ),
        };
        let next = if take_left { left.next() } else { right.next() };
        out.extend(next);
    }
    Ok(out)
}

/// Union of two scalar lists, first occurrences kept.
pub(super) fn union(original: Vec<Value>, patch: &[Value]) -> Vec<Value> {
    let mut seen = HashSet::with_capacity(original.len() + patch.len());
    let keep: Vec<bool> = original
        .iter()
        .chain(patch)
        .map(|v| seen.insert(identity(v, "")))
        .collect();
    let mut keep = keep.into_iter();
    original
        .into_iter()
        .chain(patch.iter().cloned())
        .filter(|_| keep.next().unwrap_or(false))
        .collect()
}

/// `current` without the scalars in `delete`.
pub(super) fn remove_scalars(current: Vec<Value>, delete: &[Value]) -> Vec<Value> {
    let delete: HashSet<Id> = delete.iter().map(|v| identity(v, "")).collect();
    current
        .into_iter()
        .filter(|v| !delete.contains(&identity(v, "")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn list(v: Value) -> Vec<Value> {
        v.as_array().cloned().unwrap_or_default()
    }

    #[test]
    fn kinds_must_agree_and_lists_of_lists_are_refused() {
        assert_eq!(
            element_kind(&[&list(json!([1, 2])), &[]]).unwrap(),
            Kind::Int
        );
        assert!(element_kind(&[&list(json!([1])), &list(json!([1.5]))]).is_err());
        assert!(element_kind(&[&list(json!([[1]]))]).is_err());
        assert!(element_kind(&[&[], &[]]).is_err());
    }

    #[test]
    fn new_patch_items_go_before_the_next_server_item() {
        // Upstream: patch item unknown to the server order is taken first.
        let server = list(json!(["a", "b", "c"]));
        let (p, s) = partition(
            list(json!(["a", "b", "c", "d"])),
            &list(json!(["b", "d"])),
            "",
        )
        .unwrap();
        let out = normalize(p, s, &list(json!(["b", "d"])), &server, "", Kind::Str).unwrap();
        assert_eq!(out, list(json!(["a", "b", "d", "c"])));
    }

    #[test]
    fn union_and_removal_keep_first_occurrences() {
        assert_eq!(
            union(list(json!(["a", "b", "a"])), &list(json!(["c", "b"]))),
            list(json!(["a", "b", "c"]))
        );
        assert_eq!(
            remove_scalars(list(json!([1, 2, 1, 3])), &list(json!([1]))),
            list(json!([2, 3]))
        );
        // 1 and 1.0 are different values upstream (int64 vs float64).
        assert_eq!(union(list(json!([1])), &list(json!([1.0]))).len(), 2);
    }

    #[test]
    fn huge_lists_stay_fast() {
        let big: Vec<Value> = (0..50_000).map(|i| json!({"name": i})).collect();
        let patch: Vec<Value> = (25_000..75_000).map(|i| json!({"name": i})).collect();
        let (p, s) = partition(big.clone(), &patch, "name").unwrap();
        let out = normalize(p, s, &patch, &big, "name", Kind::Map).unwrap();
        assert_eq!(out.len(), 50_000);
        assert_eq!(out[0], json!({"name": 0}));
    }
}
