//! The shape of the generated field tables (`fields_*.rs`) and lookups in
//! them.

use super::{fields_apiext, fields_apps, fields_core, fields_meta, fields_other};

/// How often a field occurs and how its zero value reads in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Card {
    /// Optional scalar whose Go field is `omitempty` and not a pointer:
    /// gogo-protobuf writes it even when zero, Go's JSON would drop it.
    O,
    /// Scalar that JSON keeps when zero (a Go pointer, or no `omitempty`).
    P,
    /// Repeated field: a JSON array.
    R,
    /// `map<string, V>`: a JSON object.
    M,
    /// Embedded struct with `json:",inline"`: its fields join the parent's.
    Inl,
}

/// A field's value type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ty {
    /// string
    S,
    /// bytes, base64 in JSON
    B,
    /// int32
    I,
    /// int64
    L,
    /// bool
    Z,
    /// double
    D,
    /// meta/v1 Time: RFC 3339 seconds
    T,
    /// meta/v1 MicroTime: RFC 3339 with microseconds
    U,
    /// meta/v1 Duration: a Go duration string. No served kind has one
    /// today; kept so a regenerated table that reaches one decodes it.
    #[allow(dead_code)]
    N,
    /// meta/v1 FieldsV1: embedded JSON
    F,
    /// IntOrString: a JSON number or string
    X,
    /// resource.Quantity: its string
    Q,
    /// runtime.RawExtension: embedded JSON (or protobuf)
    E,
    /// apiextensions/v1 JSON: embedded JSON
    J,
    /// A `type X []string` wrapper message ({items = 1}): a JSON array
    W,
    /// JSONSchemaPropsOrArray: a schema or an array of schemas
    OrArray,
    /// JSONSchemaPropsOrBool: a schema or a bool
    OrBool,
    /// JSONSchemaPropsOrStringArray: a schema or an array of strings
    OrStrings,
    /// Another message, by table name.
    Obj(&'static str),
}

/// Shorthand the generated tables use for [`Ty::Obj`].
pub(super) const fn m(name: &'static str) -> Ty {
    Ty::Obj(name)
}

/// (tag, JSON name, cardinality, type)
pub(super) type Field = (u32, &'static str, Card, Ty);
/// (message name like `core.v1.Pod`, fields); each table sorted by name.
pub(super) type Msg = (&'static str, &'static [Field]);

const TABLES: [&[Msg]; 5] = [
    fields_core::MESSAGES,
    fields_meta::MESSAGES,
    fields_apps::MESSAGES,
    fields_other::MESSAGES,
    fields_apiext::MESSAGES,
];

/// The fields of the message called `name` (`core.v1.Pod`).
pub(super) fn message(name: &str) -> Option<&'static [Field]> {
    TABLES.iter().find_map(|table| {
        table
            .binary_search_by(|(n, _)| (*n).cmp(name))
            .ok()
            .map(|i| table[i].1)
    })
}

/// The message of a top-level object of `kind` in `api_version`
/// ("apps/v1", "Deployment" -> `apps.v1.Deployment`).
pub(super) fn kind_message(api_version: &str, kind: &str) -> Option<String> {
    if kind == "DeleteOptions" {
        // Every group version accepts meta/v1 DeleteOptions bodies.
        return Some("meta.v1.DeleteOptions".into());
    }
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    // Proto packages are named by the group's first label
    // (`rbac.authorization.k8s.io` -> `rbac`); the core group is `core`.
    let package = match group {
        "" => "core",
        g => g.split('.').next().unwrap_or(g),
    };
    let name = format!("{package}.{version}.{kind}");
    message(&name).map(|_| name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_sorted_and_references_resolve() {
        for table in TABLES {
            assert!(table.windows(2).all(|w| w[0].0 < w[1].0), "unsorted table");
            for (name, fields) in table {
                for (tag, json, _, ty) in fields.iter() {
                    assert!(*tag > 0, "{name}.{json}");
                    if let Ty::Obj(target) = ty {
                        assert!(message(target).is_some(), "{name}.{json} -> {target}");
                    }
                }
            }
        }
    }

    #[test]
    fn kinds_map_to_messages() {
        assert_eq!(
            kind_message("v1", "Namespace").as_deref(),
            Some("core.v1.Namespace")
        );
        assert_eq!(
            kind_message("apps/v1", "Deployment").as_deref(),
            Some("apps.v1.Deployment")
        );
        assert_eq!(
            kind_message("policy/v1", "Eviction").as_deref(),
            Some("policy.v1.Eviction")
        );
        assert_eq!(
            kind_message("autoscaling/v1", "Scale").as_deref(),
            Some("autoscaling.v1.Scale")
        );
        assert_eq!(
            kind_message("rbac.authorization.k8s.io/v1", "ClusterRoleBinding").as_deref(),
            Some("rbac.v1.ClusterRoleBinding")
        );
        assert_eq!(
            kind_message("apiextensions.k8s.io/v1", "CustomResourceDefinition").as_deref(),
            Some("apiextensions.v1.CustomResourceDefinition")
        );
        assert_eq!(
            kind_message("batch/v1", "DeleteOptions").as_deref(),
            Some("meta.v1.DeleteOptions")
        );
        assert_eq!(kind_message("example.com/v1", "Widget"), None);
    }
}
