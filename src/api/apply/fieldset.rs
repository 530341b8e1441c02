//! Sets of field paths (structured-merge-diff's `fieldpath.Set`) and their
//! `FieldsV1` encoding: `f:<name>`, `k:<key json>`, `v:<value json>`,
//! `i:<index>`, and `.` for a node that is itself a member.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde_json::{Map, Value};

/// One step of a path. The order is upstream's: field names, then list-map
/// keys, then set values, then indices.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Element {
    Field(String),
    /// The key fields of a list-map item as a JSON object, names sorted.
    Key(String),
    /// A set item as JSON.
    Value(String),
    Index(usize),
}

impl Element {
    /// A list-map key from (name, value) pairs.
    pub(crate) fn key(mut fields: Vec<(String, Value)>) -> Element {
        fields.sort_by(|a, b| a.0.cmp(&b.0));
        let mut text = String::from("{");
        for (i, (name, value)) in fields.iter().enumerate() {
            if i > 0 {
                text.push(',');
            }
            text.push_str(&json(&Value::from(name.as_str())));
            text.push(':');
            text.push_str(&json(value));
        }
        text.push('}');
        Element::Key(text)
    }

    pub(crate) fn value(v: &Value) -> Element {
        Element::Value(json(v))
    }

    /// The FieldsV1 key of this element.
    fn encode(&self) -> String {
        match self {
            Element::Field(f) => format!("f:{f}"),
            Element::Key(k) => format!("k:{k}"),
            Element::Value(v) => format!("v:{v}"),
            Element::Index(i) => format!("i:{i}"),
        }
    }

    fn decode(s: &str) -> Option<Element> {
        let (kind, rest) = s.split_at_checked(2)?;
        match kind {
            "f:" => Some(Element::Field(rest.to_string())),
            "k:" => {
                let Value::Object(map) = serde_json::from_str::<Value>(rest).ok()? else {
                    return None;
                };
                Some(Element::key(map.into_iter().collect()))
            }
            "v:" => serde_json::from_str::<Value>(rest)
                .ok()
                .map(|v| Element::value(&v)),
            "i:" => rest.parse().ok().map(Element::Index),
            _ => None,
        }
    }

    /// Upstream's PathElement.String: `.name`, `[k=v,...]`, `[=v]`, `[i]`.
    fn display(&self, out: &mut String) {
        match self {
            Element::Field(f) => {
                out.push('.');
                out.push_str(f);
            }
            Element::Key(k) => {
                out.push('[');
                if let Ok(Value::Object(map)) = serde_json::from_str::<Value>(k) {
                    for (i, (name, v)) in map.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        let _ = write!(out, "{name}={}", json(v));
                    }
                }
                out.push(']');
            }
            Element::Value(v) => {
                let _ = write!(out, "[={v}]");
            }
            Element::Index(i) => {
                let _ = write!(out, "[{i}]");
            }
        }
    }
}

fn json(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// A path from the object's root.
pub(crate) type Path = Vec<Element>;

/// `.spec.containers[name="app"].image`
pub(crate) fn path_string(path: &[Element]) -> String {
    let mut out = String::new();
    for e in path {
        e.display(&mut out);
    }
    out
}

/// A set of paths, as a tree: `members` are paths ending here, `children`
/// the subtrees (never empty).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Set {
    members: BTreeSet<Element>,
    children: BTreeMap<Element, Set>,
}

impl Set {
    pub(crate) fn is_empty(&self) -> bool {
        self.members.is_empty() && self.children.is_empty()
    }

    pub(crate) fn insert(&mut self, path: &[Element]) {
        match path {
            [] => {}
            [last] => {
                self.members.insert(last.clone());
            }
            [first, rest @ ..] => self.children.entry(first.clone()).or_default().insert(rest),
        }
    }

    #[cfg(test)]
    pub(crate) fn has(&self, path: &[Element]) -> bool {
        match path {
            [] => false,
            [last] => self.members.contains(last),
            [first, rest @ ..] => self.children.get(first).is_some_and(|c| c.has(rest)),
        }
    }

    /// True when `path` or anything under it is in the set.
    pub(crate) fn has_prefix(&self, e: &Element) -> bool {
        self.members.contains(e) || self.children.contains_key(e)
    }

    pub(crate) fn is_member(&self, e: &Element) -> bool {
        self.members.contains(e)
    }

    pub(crate) fn child(&self, e: &Element) -> Option<&Set> {
        self.children.get(e)
    }

    pub(crate) fn union(&self, other: &Set) -> Set {
        let mut out = self.clone();
        out.members.extend(other.members.iter().cloned());
        for (e, c) in &other.children {
            let merged = match out.children.get(e) {
                Some(mine) => mine.union(c),
                None => c.clone(),
            };
            out.children.insert(e.clone(), merged);
        }
        out
    }

    pub(crate) fn difference(&self, other: &Set) -> Set {
        let mut out = Set {
            members: self.members.difference(&other.members).cloned().collect(),
            children: BTreeMap::new(),
        };
        for (e, c) in &self.children {
            let rest = match other.children.get(e) {
                Some(o) => c.difference(o),
                None => c.clone(),
            };
            if !rest.is_empty() {
                out.children.insert(e.clone(), rest);
            }
        }
        out
    }

    pub(crate) fn intersection(&self, other: &Set) -> Set {
        let mut out = Set {
            members: self.members.intersection(&other.members).cloned().collect(),
            children: BTreeMap::new(),
        };
        for (e, c) in &self.children {
            if let Some(o) = other.children.get(e) {
                let both = c.intersection(o);
                if !both.is_empty() {
                    out.children.insert(e.clone(), both);
                }
            }
        }
        out
    }

    /// Removes every path that is `prefix` or under it.
    pub(crate) fn remove_prefix(&mut self, path: &[Element]) {
        match path {
            [] => {}
            [last] => {
                self.members.remove(last);
                self.children.remove(last);
            }
            [first, rest @ ..] => {
                if let Some(c) = self.children.get_mut(first) {
                    c.remove_prefix(rest);
                    if c.is_empty() {
                        self.children.remove(first);
                    }
                }
            }
        }
    }

    /// Keeps only what is `path` or under it.
    pub(crate) fn only_prefix(&self, path: &[Element]) -> Set {
        let mut out = Set::default();
        match path {
            [] => return self.clone(),
            [last] => {
                if self.members.contains(last) {
                    out.members.insert(last.clone());
                }
                if let Some(c) = self.children.get(last) {
                    out.children.insert(last.clone(), c.clone());
                }
            }
            [first, rest @ ..] => {
                if let Some(c) = self.children.get(first) {
                    let sub = c.only_prefix(rest);
                    if !sub.is_empty() {
                        out.children.insert(first.clone(), sub);
                    }
                }
            }
        }
        out
    }

    /// Every member path, members of a node before its children (upstream's
    /// iteration order).
    pub(crate) fn paths(&self) -> Vec<Path> {
        let mut out = Vec::new();
        self.collect(&mut Vec::new(), &mut out);
        out
    }

    fn collect(&self, prefix: &mut Path, out: &mut Vec<Path>) {
        for m in &self.members {
            prefix.push(m.clone());
            out.push(prefix.clone());
            prefix.pop();
        }
        for (e, c) in &self.children {
            prefix.push(e.clone());
            c.collect(prefix, out);
            prefix.pop();
        }
    }

    /// The FieldsV1 JSON of the set.
    pub(crate) fn to_fields_v1(&self) -> Value {
        let mut map = Map::new();
        let mut keys: BTreeSet<&Element> = self.members.iter().collect();
        keys.extend(self.children.keys());
        for e in keys {
            let value = match self.children.get(e) {
                Some(c) => {
                    let mut inner = match c.to_fields_v1() {
                        Value::Object(m) => m,
                        _ => Map::new(),
                    };
                    if self.members.contains(e) {
                        inner.insert(".".into(), Value::Object(Map::new()));
                    }
                    Value::Object(inner)
                }
                None => Value::Object(Map::new()),
            };
            map.insert(e.encode(), value);
        }
        Value::Object(map)
    }

    /// Parses FieldsV1 JSON.
    pub(crate) fn from_fields_v1(v: &Value) -> Result<Set, String> {
        let Value::Object(map) = v else {
            return Err("fieldsV1 is not an object".into());
        };
        let mut out = Set::default();
        for (k, inner) in map {
            if k == "." {
                continue;
            }
            let e =
                Element::decode(k).ok_or_else(|| format!("invalid field path element {k:?}"))?;
            let Value::Object(inner_map) = inner else {
                return Err(format!("the value of {k:?} is not an object"));
            };
            if inner_map.is_empty() || inner_map.contains_key(".") {
                out.members.insert(e.clone());
            }
            let child = Set::from_fields_v1(inner)?;
            if !child.is_empty() {
                out.children.insert(e, child);
            }
        }
        Ok(out)
    }
}

/// A path of field names, for tests and fixed paths.
pub(crate) fn fields(names: &[&str]) -> Path {
    names
        .iter()
        .map(|n| Element::Field(n.to_string()))
        .collect()
}
