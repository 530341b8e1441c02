//! What server-side apply needs to know of a type at each position: list
//! semantics (atomic, set, map keyed by fields) and whether a map is atomic.
//!
//! Built-ins: upstream's OpenAPI markers where they differ from the
//! strategic-merge tables ([`markers`](super::markers)), else the tables
//! (`api/patch`) as kube-openapi falls back to the patch strategy (a merge
//! key is a list-map, a merged scalar list a set, every other list
//! atomic). Custom resources: the CRD schema's
//! `x-kubernetes-list-type`, `-list-map-keys` and `-map-type`. Without
//! information maps are granular and lists atomic, as upstream's deduced
//! schema.

use serde_json::Value;

use super::fieldset::Element;
use super::markers;
use crate::api::patch;

const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";

/// Key fields with a schema default: an item that omits them is keyed by
/// the default (upstream fills defaulted keys the same way).
fn key_default(name: &str) -> Option<Value> {
    (name == "protocol").then(|| Value::from("TCP"))
}

/// Built-in fields whose Go type is a plain struct or a list without
/// `omitempty`: an empty object of the kind already has them, so upstream
/// never records them as added nodes of their own.
const ALWAYS_PRESENT: &[&str] = &[
    "metadata",
    "spec",
    "status",
    "template",
    "strategy",
    "updateStrategy",
    "jobTemplate",
    "containers",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ListType {
    Atomic,
    Set,
    Map(Vec<String>),
}

/// kube-openapi's fallback for lists without `x-kubernetes-list-type`: a
/// merge strategy with a key is a list-map, without one a set.
fn strategic_list(definition: &str, field: &str) -> ListType {
    match patch::field_patch_meta(definition, field) {
        Some(meta) if meta.strategy.split(',').any(|s| s == "merge") => match meta.merge_key {
            None | Some("") => ListType::Set,
            Some(key) => ListType::Map(vec![key.to_string()]),
        },
        _ => ListType::Atomic,
    }
}

#[derive(Debug, Clone, Copy)]
enum Source<'a> {
    /// A built-in type by its definition name; None when the tables have
    /// nothing below this point.
    Builtin(Option<&'static str>),
    /// A built-in map whose values are objects of this definition.
    BuiltinMap(&'static str),
    Custom(&'a Value),
    Unknown,
}

/// The type at one position of an object.
#[derive(Debug, Clone)]
pub(crate) struct Node<'a> {
    source: Source<'a>,
    pub(crate) list: ListType,
    pub(crate) atomic_map: bool,
    /// A declared field of a struct (false: a key of a map).
    pub(crate) declared: bool,
    /// Added as a node of its own when it appears (see ALWAYS_PRESENT).
    pub(crate) owns_node: bool,
    root: bool,
}

impl<'a> Node<'a> {
    /// The root of an object: a built-in definition, or a custom resource's
    /// schema.
    pub(crate) fn root(definition: Option<&'static str>, custom: Option<&'a Value>) -> Node<'a> {
        let source = match (custom, definition) {
            (Some(s), _) => Source::Custom(s),
            (None, Some(d)) => Source::Builtin(Some(d)),
            (None, None) => Source::Unknown,
        };
        Node {
            source,
            list: ListType::Atomic,
            atomic_map: false,
            declared: true,
            owns_node: true,
            root: true,
        }
    }

    fn plain(source: Source<'a>, declared: bool) -> Node<'a> {
        Node {
            source,
            list: ListType::Atomic,
            atomic_map: false,
            declared,
            owns_node: true,
            root: false,
        }
    }

    /// The type of `name` in this object.
    pub(crate) fn field(&self, name: &str) -> Node<'a> {
        if self.root && name == "metadata" {
            let mut n = Node::plain(Source::Builtin(Some(OBJECT_META)), true);
            n.owns_node = false;
            return n;
        }
        match self.source {
            Source::Builtin(def) => {
                let mut n = Node::plain(Source::Builtin(None), true);
                n.owns_node = !ALWAYS_PRESENT.contains(&name);
                let Some(def) = def else {
                    return n;
                };
                if let Some(value) = markers::map_value(def, name) {
                    n.source = Source::BuiltinMap(value);
                    return n;
                }
                let child = markers::child(def, name).or_else(|| patch::field_child(def, name));
                n.source = Source::Builtin(child);
                n.atomic_map =
                    markers::atomic_map(def, name) || child.is_some_and(markers::atomic_struct);
                n.list = markers::list(def, name).unwrap_or_else(|| strategic_list(def, name));
                n
            }
            Source::BuiltinMap(value) => {
                let mut n = Node::plain(Source::Builtin(Some(value)), false);
                n.atomic_map = markers::atomic_struct(value);
                n
            }
            Source::Custom(s) => {
                if let Some(p) = s.get("properties").and_then(|p| p.get(name)) {
                    return Node::from_schema(p, true);
                }
                match s.get("additionalProperties") {
                    Some(a @ Value::Object(_)) => Node::from_schema(a, false),
                    _ => Node::plain(Source::Unknown, false),
                }
            }
            Source::Unknown => Node::plain(Source::Unknown, false),
        }
    }

    /// The type of this list's items.
    pub(crate) fn item(&self) -> Node<'a> {
        match self.source {
            Source::Builtin(def) => {
                let mut n = Node::plain(Source::Builtin(def), false);
                n.atomic_map = def.is_some_and(markers::atomic_struct);
                n
            }
            Source::BuiltinMap(_) => Node::plain(Source::Unknown, false),
            Source::Custom(s) => match s.get("items") {
                Some(i) => Node::from_schema(i, false),
                None => Node::plain(Source::Unknown, false),
            },
            Source::Unknown => Node::plain(Source::Unknown, false),
        }
    }

    fn from_schema(s: &'a Value, declared: bool) -> Node<'a> {
        let text = |k: &str| s.get(k).and_then(Value::as_str);
        let list = match text("x-kubernetes-list-type") {
            Some("set") => ListType::Set,
            Some("map") => ListType::Map(
                s.get("x-kubernetes-list-map-keys")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|k| k.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default(),
            ),
            _ => ListType::Atomic,
        };
        Node {
            source: Source::Custom(s),
            list,
            atomic_map: text("x-kubernetes-map-type") == Some("atomic"),
            declared,
            owns_node: true,
            root: false,
        }
    }

    /// The path elements of a list's items; None when the list is atomic
    /// or its items cannot be told apart (missing or duplicate keys), in
    /// which case it is handled as one atomic value.
    pub(crate) fn item_elements(&self, items: &[Value]) -> Option<Vec<Element>> {
        let mut out = Vec::with_capacity(items.len());
        match &self.list {
            ListType::Atomic => return None,
            ListType::Set => {
                for item in items {
                    if item.is_object() || item.is_array() {
                        return None;
                    }
                    out.push(Element::value(item));
                }
            }
            ListType::Map(keys) if keys.is_empty() => return None,
            ListType::Map(keys) => {
                for item in items {
                    let obj = item.as_object()?;
                    let mut fields = Vec::with_capacity(keys.len());
                    for k in keys {
                        let v = obj.get(k).cloned().or_else(|| key_default(k))?;
                        if v.is_object() || v.is_array() {
                            return None;
                        }
                        fields.push((k.clone(), v));
                    }
                    out.push(Element::key(fields));
                }
            }
        }
        let unique: std::collections::BTreeSet<&Element> = out.iter().collect();
        (unique.len() == out.len()).then_some(out)
    }

    /// Whether a null is a value here (a custom resource's `nullable`
    /// field); built-ins decode every null as absent.
    pub(crate) fn nullable(&self) -> bool {
        match self.source {
            Source::Custom(s) => s.get("nullable").and_then(Value::as_bool) == Some(true),
            _ => false,
        }
    }

    /// The key field names of a list-map's items.
    pub(crate) fn key_names(&self) -> &[String] {
        match &self.list {
            ListType::Map(keys) => keys,
            _ => &[],
        }
    }
}
