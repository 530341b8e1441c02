//! Patch metadata of the built-in types: which fields merge their lists
//! (and by which key), which maps are replaced or trimmed with `$retainKeys`,
//! and which fields lead to a type that has such fields.
//!
//! Upstream reads this from Go struct tags (`patchStrategy`,
//! `patchMergeKey`); neither k8s-openapi's schemas nor any Rust crate carry
//! it, so the tables (`table_*.rs`) restate those tags as data. Fields that
//! are absent from the tables have no strategy: maps merge, lists replace.

use std::collections::HashMap;
use std::sync::OnceLock;

/// Patch metadata of one field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Field {
    /// The Go tag's `patchStrategy` value, `""` when there is none.
    pub(super) strategy: &'static str,
    /// The Go tag's `patchMergeKey` value, `""` when there is none.
    pub(super) merge_key: &'static str,
    /// The definition of the field's object, list element or map value,
    /// when that definition has patch metadata of its own.
    pub(super) child: Option<&'static str>,
}

/// The fields of one definition that carry or lead to patch metadata.
pub(super) type Fields = &'static [(&'static str, Field)];

/// One table row: a definition name and its fields.
pub(super) type Def = (&'static str, Fields);

/// No metadata: what every field outside the tables gets.
pub(super) const PLAIN: Field = Field {
    strategy: "",
    merge_key: "",
    child: None,
};

/// A field whose type has patch metadata further down.
pub(super) const fn to(child: &'static str) -> Field {
    Field {
        strategy: "",
        merge_key: "",
        child: Some(child),
    }
}

/// A list of objects merged element-wise by `key`.
pub(super) const fn merge_by(key: &'static str) -> Field {
    Field {
        strategy: "merge",
        merge_key: key,
        child: None,
    }
}

/// Like [`merge_by`], for elements whose type has metadata of its own.
pub(super) const fn merge_by_into(key: &'static str, child: &'static str) -> Field {
    Field {
        strategy: "merge",
        merge_key: key,
        child: Some(child),
    }
}

/// A list of scalars merged as a set union.
pub(super) const fn merge_scalars() -> Field {
    merge_by("")
}

/// A merged list whose elements are unions trimmed by `$retainKeys`.
pub(super) const fn merge_retain(key: &'static str) -> Field {
    Field {
        strategy: "merge,retainKeys",
        merge_key: key,
        child: None,
    }
}

/// Like [`merge_retain`], for elements whose type has metadata of its own.
pub(super) const fn merge_retain_into(key: &'static str, child: &'static str) -> Field {
    Field {
        strategy: "merge,retainKeys",
        merge_key: key,
        child: Some(child),
    }
}

/// An object that is a union trimmed by `$retainKeys`.
pub(super) const fn retain_keys() -> Field {
    Field {
        strategy: "retainKeys",
        merge_key: "",
        child: None,
    }
}

/// An object replaced whole by the patch's value.
pub(super) const fn replace() -> Field {
    Field {
        strategy: "replace",
        merge_key: "",
        child: None,
    }
}

/// The row of every top-level kind whose only metadata is `ObjectMeta`'s.
pub(super) const META_ONLY: Fields = &[("metadata", to(meta_v1!("ObjectMeta")))];

macro_rules! core_v1 {
    ($n:literal) => {
        concat!("io.k8s.api.core.v1.", $n)
    };
}
macro_rules! apps_v1 {
    ($n:literal) => {
        concat!("io.k8s.api.apps.v1.", $n)
    };
}
macro_rules! batch_v1 {
    ($n:literal) => {
        concat!("io.k8s.api.batch.v1.", $n)
    };
}
macro_rules! meta_v1 {
    ($n:literal) => {
        concat!("io.k8s.apimachinery.pkg.apis.meta.v1.", $n)
    };
}
pub(super) use {apps_v1, batch_v1, core_v1, meta_v1};

fn index() -> &'static HashMap<&'static str, Fields> {
    static INDEX: OnceLock<HashMap<&'static str, Fields>> = OnceLock::new();
    INDEX.get_or_init(|| {
        [super::table_core::DEFS, super::table_groups::DEFS]
            .iter()
            .flat_map(|defs| defs.iter().copied())
            .collect()
    })
}

/// The fields of `definition`, if the tables know it.
pub(super) fn fields(definition: &str) -> Option<Fields> {
    index().get(definition).copied()
}

/// The schema a strategic merge patch of a `definition` object starts from.
/// Built-in kinds absent from the tables still have `ObjectMeta`, whose
/// finalizers and owner references must merge.
pub(super) fn root(definition: &str) -> Fields {
    fields(definition).unwrap_or(META_ONLY)
}

/// The metadata of `field` in the definition whose fields are `schema`.
pub(super) fn lookup(schema: Option<Fields>, field: &str) -> Field {
    schema
        .and_then(|fs| fs.iter().find(|(name, _)| *name == field))
        .map_or(PLAIN, |(_, f)| *f)
}

/// The schema of the value under a field, for recursing into it.
pub(super) fn child(field: Field) -> Option<Fields> {
    field.child.and_then(fields)
}

/// The strategy of a field apart from `retainKeys`, which applies through
/// the `$retainKeys` directive alone (upstream ignores it otherwise).
pub(super) fn list_or_map_strategy(field: Field) -> &'static str {
    field
        .strategy
        .split(',')
        .find(|s| *s != "retainKeys")
        .unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_child_definition_is_in_the_tables() {
        for (name, fs) in index() {
            for (field, f) in fs.iter() {
                if let Some(c) = f.child {
                    assert!(fields(c).is_some(), "{name}.{field} -> {c} missing");
                }
            }
        }
    }

    #[test]
    fn definitions_are_not_listed_twice() {
        let total: usize = [
            super::super::table_core::DEFS,
            super::super::table_groups::DEFS,
        ]
        .iter()
        .map(|d| d.len())
        .sum();
        assert_eq!(total, index().len());
    }

    #[test]
    fn strategy_without_retain_keys() {
        assert_eq!(list_or_map_strategy(merge_retain("name")), "merge");
        assert_eq!(list_or_map_strategy(retain_keys()), "");
        assert_eq!(list_or_map_strategy(replace()), "replace");
        assert_eq!(list_or_map_strategy(PLAIN), "");
    }

    #[test]
    fn unknown_kinds_still_merge_object_meta() {
        let root = root("io.k8s.api.flowcontrol.v1.FlowSchema");
        let meta = lookup(Some(root), "metadata");
        assert_eq!(lookup(child(meta), "finalizers"), merge_scalars());
        assert_eq!(lookup(Some(root), "spec"), PLAIN);
    }
}
