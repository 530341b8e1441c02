//! Walks of objects along their types: the field set of an applied
//! configuration, the comparison of two versions, the merge of a
//! configuration into the live object and the removal of fields.

use serde_json::{Map, Value};

use super::fieldset::{Element, Path, Set};
use super::types::Node;

/// The fields an applied configuration sets (upstream's ToFieldSet):
/// leaves, atomic values, list items, and empty or null values.
pub(crate) fn field_set(v: &Value, node: &Node) -> Set {
    let mut out = Set::default();
    collect(v, node, &mut Vec::new(), &mut out);
    out
}

fn collect(v: &Value, node: &Node, path: &mut Path, out: &mut Set) {
    match v {
        Value::Object(map) if !node.atomic_map => {
            for (k, child) in map {
                let n = node.field(k);
                path.push(Element::Field(k.clone()));
                collect(child, &n, path, out);
                let empty = child.is_null() || child.as_object().is_some_and(Map::is_empty);
                if empty || !n.declared {
                    out.insert(path);
                }
                path.pop();
            }
        }
        Value::Array(items) if !items.is_empty() => match node.item_elements(items) {
            Some(elements) => {
                let item_node = node.item();
                for (e, item) in elements.into_iter().zip(items) {
                    path.push(e);
                    collect(item, &item_node, path, out);
                    out.insert(path);
                    path.pop();
                }
            }
            None => out.insert(path),
        },
        _ => out.insert(path),
    }
}

/// What changed between two versions (upstream's typed Compare).
#[derive(Debug, Default)]
pub(crate) struct Comparison {
    pub(crate) added: Set,
    pub(crate) modified: Set,
    pub(crate) removed: Set,
}

impl Comparison {
    pub(crate) fn changed(&self) -> Set {
        self.added.union(&self.modified)
    }

    pub(crate) fn without(&self, ignored: &dyn Fn(&Set) -> Set) -> Comparison {
        Comparison {
            added: ignored(&self.added),
            modified: ignored(&self.modified),
            removed: ignored(&self.removed),
        }
    }
}

pub(crate) fn compare(old: &Value, new: &Value, node: &Node) -> Comparison {
    let mut c = Comparison::default();
    compare_at(Some(old), Some(new), node, &mut Vec::new(), &mut c);
    c
}

fn is_empty_container(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::Object(m)) => m.is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        _ => false,
    }
}

fn compare_at(
    old: Option<&Value>,
    new: Option<&Value>,
    node: &Node,
    path: &mut Path,
    c: &mut Comparison,
) {
    // A null where nothing is set changes nothing: upstream's typed objects
    // read back the nulls we drop (`template.metadata.creationTimestamp`).
    // Nulling a value is still a modification (it conflicts).
    let unset = |v: Option<&Value>| v.is_none_or(Value::is_null);
    let (old, new) = if unset(old) && unset(new) {
        (None, None)
    } else {
        (old, new)
    };
    let both_empty = is_empty_container(old) && is_empty_container(new);
    let objects = !node.atomic_map
        && old.is_none_or(Value::is_object)
        && new.is_none_or(Value::is_object)
        && !both_empty;
    let arrays = old.is_none_or(Value::is_array) && new.is_none_or(Value::is_array) && !both_empty;
    if objects {
        let (om, nm) = (
            old.and_then(Value::as_object),
            new.and_then(Value::as_object),
        );
        let mut keys: Vec<&String> = om.map(|m| m.keys().collect()).unwrap_or_default();
        if let Some(nm) = nm {
            keys.extend(nm.keys().filter(|k| om.is_none_or(|o| !o.contains_key(*k))));
        }
        for k in keys {
            path.push(Element::Field(k.clone()));
            let n = node.field(k);
            compare_at(
                om.and_then(|m| m.get(k)),
                nm.and_then(|m| m.get(k)),
                &n,
                path,
                c,
            );
            path.pop();
        }
        node_hook(old, new, node, path, c);
        return;
    }
    if arrays {
        let empty: Vec<Value> = Vec::new();
        let oa = old.and_then(Value::as_array).unwrap_or(&empty);
        let na = new.and_then(Value::as_array).unwrap_or(&empty);
        if let (Some(oe), Some(ne)) = (node.item_elements(oa), node.item_elements(na)) {
            let item_node = node.item();
            for (e, item) in oe.iter().zip(oa) {
                let other = ne.iter().position(|x| x == e).map(|i| &na[i]);
                path.push(e.clone());
                compare_item(Some(item), other, &item_node, path, c);
                path.pop();
            }
            for (e, item) in ne.iter().zip(na) {
                if !oe.contains(e) {
                    path.push(e.clone());
                    compare_item(None, Some(item), &item_node, path, c);
                    path.pop();
                }
            }
            node_hook(old, new, node, path, c);
            return;
        }
    }
    leaf(old, new, path, c);
}

/// A list item is always a node of its own.
fn compare_item(
    old: Option<&Value>,
    new: Option<&Value>,
    node: &Node,
    path: &mut Path,
    c: &mut Comparison,
) {
    let mut n = node.clone();
    n.owns_node = true;
    compare_at(old, new, &n, path, c);
}

fn node_hook(
    old: Option<&Value>,
    new: Option<&Value>,
    node: &Node,
    path: &Path,
    c: &mut Comparison,
) {
    if !node.owns_node || path.is_empty() {
        return;
    }
    match (old, new) {
        (None, Some(_)) => c.added.insert(path),
        (Some(_), None) => c.removed.insert(path),
        _ => {}
    }
}

fn leaf(old: Option<&Value>, new: Option<&Value>, path: &Path, c: &mut Comparison) {
    if path.is_empty() {
        return;
    }
    match (old, new) {
        (None, Some(_)) => c.added.insert(path),
        (Some(_), None) => c.removed.insert(path),
        (Some(a), Some(b)) if a != b => c.modified.insert(path),
        _ => {}
    }
}

/// `live` with `config` merged in: config's values win, maps merge by key,
/// keyed lists by item, atomic values are replaced.
pub(crate) fn merge(live: &Value, config: &Value, node: &Node) -> Value {
    match (live, config) {
        (Value::Object(l), Value::Object(c)) if !node.atomic_map => {
            let mut out = l.clone();
            for (k, cv) in c {
                // A null merges as an empty value (structured-merge-diff):
                // a granular map or keyed list keeps its entries, anything
                // else becomes null, which `drop_nulls` removes afterwards.
                if cv.is_null() {
                    if !l.get(k).is_some_and(|lv| keeps_entries(lv, &node.field(k))) {
                        out.insert(k.clone(), Value::Null);
                    }
                    continue;
                }
                let merged = match l.get(k) {
                    Some(lv) => merge(lv, cv, &node.field(k)),
                    None => cv.clone(),
                };
                out.insert(k.clone(), merged);
            }
            Value::Object(out)
        }
        (Value::Array(l), Value::Array(c)) => {
            let (Some(le), Some(ce)) = (node.item_elements(l), node.item_elements(c)) else {
                return config.clone();
            };
            let item_node = node.item();
            let mut out = Vec::with_capacity(l.len().max(c.len()));
            for (e, item) in le.iter().zip(l) {
                match ce.iter().position(|x| x == e) {
                    Some(i) => out.push(merge(item, &c[i], &item_node)),
                    None => out.push(item.clone()),
                }
            }
            for (e, item) in ce.iter().zip(c) {
                if !le.contains(e) {
                    out.push(item.clone());
                }
            }
            Value::Array(out)
        }
        _ => config.clone(),
    }
}

/// Whether merging a null into `live` leaves it as it is: a non-empty
/// granular map or list with told-apart items.
fn keeps_entries(live: &Value, node: &Node) -> bool {
    match live {
        Value::Object(m) => !m.is_empty() && !node.atomic_map,
        Value::Array(a) => !a.is_empty() && node.item_elements(a).is_some(),
        _ => false,
    }
}

/// Removes the nulls `config` put into the merged object `v`: they stay
/// through the merge so that nulling another manager's value conflicts,
/// and go before storing, as upstream's typed decoding drops them (custom
/// resources keep them in `nullable` fields).
pub(crate) fn drop_nulls(v: &mut Value, config: &Value, node: &Node) {
    match (v, config) {
        (Value::Object(m), Value::Object(c)) if !node.atomic_map => {
            for (k, cv) in c {
                if cv.is_null() {
                    if m.get(k).is_some_and(Value::is_null) && !node.field(k).nullable() {
                        m.remove(k);
                    }
                } else if let Some(child) = m.get_mut(k) {
                    drop_nulls(child, cv, &node.field(k));
                }
            }
        }
        (Value::Array(items), Value::Array(c)) => {
            let (Some(ie), Some(ce)) = (node.item_elements(items), node.item_elements(c)) else {
                return;
            };
            let item_node = node.item();
            for (e, item) in ie.iter().zip(items.iter_mut()) {
                if let Some(i) = ce.iter().position(|x| x == e) {
                    drop_nulls(item, &c[i], &item_node);
                }
            }
        }
        _ => {}
    }
}

/// Removes from `v` each member of `remove` that nothing in `keep` is at
/// or under; key fields of kept list-map items stay.
pub(crate) fn prune(
    v: &mut Value,
    remove: &Set,
    keep: Option<&Set>,
    node: &Node,
    protect: &[String],
) {
    let kept = |e: &Element| keep.is_some_and(|k| k.has_prefix(e));
    match v {
        Value::Object(map) if !node.atomic_map => {
            let keys: Vec<String> = map.keys().cloned().collect();
            for k in keys {
                if protect.contains(&k) {
                    continue;
                }
                let e = Element::Field(k.clone());
                if remove.is_member(&e) && !kept(&e) {
                    map.remove(&k);
                } else if let (Some(sub), Some(child)) = (remove.child(&e), map.get_mut(&k)) {
                    let n = node.field(&k);
                    prune(child, sub, keep.and_then(|s| s.child(&e)), &n, &[]);
                }
            }
        }
        Value::Array(items) => {
            let Some(elements) = node.item_elements(items) else {
                return;
            };
            let item_node = node.item();
            let old = std::mem::take(items);
            for (e, mut item) in elements.into_iter().zip(old) {
                if remove.is_member(&e) && !kept(&e) {
                    continue;
                }
                if let Some(sub) = remove.child(&e) {
                    prune(
                        &mut item,
                        sub,
                        keep.and_then(|s| s.child(&e)),
                        &item_node,
                        node.key_names(),
                    );
                }
                items.push(item);
            }
        }
        _ => {}
    }
}
