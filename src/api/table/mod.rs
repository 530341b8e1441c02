//! Server-side table printing: the `meta.k8s.io/v1` Table that `kubectl get`
//! asks for with `Accept: application/json;as=Table;v=v1;g=meta.k8s.io`.
//!
//! Columns and cells follow upstream's printers (pkg/printers/internalversion,
//! Kubernetes v1.33). The API server always renders the wide form: priority-1
//! columns are always present and kubectl hides them unless `-o wide`.
//! Objects are plain JSON; missing or mistyped fields print upstream's zero
//! values or placeholders instead of failing.

mod clock;
mod core;
mod custom;
mod docs;
mod events;
mod format;
mod networking;
mod other;
mod pod;
mod quantity;
mod storage;
mod workloads;

#[cfg(test)]
mod tests;

use serde_json::{json, Map, Value};
use std::time::SystemTime;

use format::{Col, Printer, Row};

/// What each row carries in `object` (the `includeObject` query parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IncludeObject {
    /// `object` is null.
    None,
    /// A `meta.k8s.io/v1` PartialObjectMetadata with the object's metadata.
    #[default]
    Metadata,
    /// The whole object.
    Object,
}

impl IncludeObject {
    /// Parses the query value; an empty value means the default (Metadata), as upstream.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "None" => Some(Self::None),
            "Metadata" | "" => Some(Self::Metadata),
            "Object" => Some(Self::Object),
            _ => Option::None,
        }
    }
}

/// The printer registered for a resource, if upstream has one.
fn printer(group: &str, resource: &str) -> Option<&'static Printer> {
    match (group, resource) {
        ("", "pods") => Some(&pod::PODS),
        ("", "events") => Some(&events::CORE_EVENTS),
        ("events.k8s.io", "events") => Some(&events::EVENTS_V1),
        ("", r) => core::lookup(r).or_else(|| storage::lookup(group, r)),
        _ => workloads::lookup(group, resource)
            .or_else(|| storage::lookup(group, resource))
            .or_else(|| networking::lookup(group, resource))
            .or_else(|| other::lookup(group, resource)),
    }
}

/// Upstream's DefaultTableConvertor, used by kinds without a printer
/// (roles, limit ranges, CRDs, custom resources...).
const DEFAULT: Printer = Printer {
    columns: &[
        Col::NAME,
        Col::new("Created At", "date", docs::META_CREATED),
    ],
    row: |obj, _| {
        // Go formats a missing timestamp as the zero time.
        let created = clock::time_at(obj, &["metadata", "creationTimestamp"])
            .map_or_else(|| "0001-01-01T00:00:00Z".to_string(), clock::format_rfc3339);
        vec![format::name(obj), Value::from(created)].into()
    },
};

fn printer_or_default(group: &str, resource: &str) -> &'static Printer {
    printer(group, resource).unwrap_or(&DEFAULT)
}

/// Column definitions for a resource, e.g. `("apps", "deployments")`; `""` is the core group.
pub fn column_definitions(group: &str, resource: &str) -> Value {
    Value::Array(
        printer_or_default(group, resource)
            .columns
            .iter()
            .map(Col::to_json)
            .collect(),
    )
}

/// One Table row: `{"cells": [...], "object": ...}` (plus `conditions` for finished pods).
pub fn row(
    group: &str,
    resource: &str,
    obj: &Value,
    include: IncludeObject,
    now: SystemTime,
) -> Value {
    let p = printer_or_default(group, resource);
    let Row { cells, conditions } = (p.row)(obj, clock::now_nanos(now));
    finish_row(cells, conditions, obj, include)
}

fn finish_row(
    cells: Vec<Value>,
    conditions: Option<Value>,
    obj: &Value,
    include: IncludeObject,
) -> Value {
    let object = match include {
        IncludeObject::None => Value::Null,
        IncludeObject::Metadata => json!({
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": obj.get("metadata").filter(|m| m.is_object()).cloned().unwrap_or_else(|| json!({})),
        }),
        IncludeObject::Object => obj.clone(),
    };
    let mut row = Map::new();
    row.insert("cells".into(), Value::Array(cells));
    if let Some(c) = conditions {
        row.insert("conditions".into(), c);
    }
    row.insert("object".into(), object);
    Value::Object(row)
}

/// A full Table. `list_metadata` becomes the Table's metadata as given
/// (resourceVersion, continue, remainingItemCount).
pub fn table<'a>(
    group: &str,
    resource: &str,
    objects: impl IntoIterator<Item = &'a Value>,
    include: IncludeObject,
    list_metadata: Value,
    now: SystemTime,
) -> Value {
    let rows: Vec<Value> = objects
        .into_iter()
        .map(|o| row(group, resource, o, include, now))
        .collect();
    let metadata = if list_metadata.is_object() {
        list_metadata
    } else {
        json!({})
    };
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": column_definitions(group, resource),
        "rows": rows,
    })
}

/// A full Table for `r`: custom resources print their
/// `additionalPrinterColumns`, built-in kinds their upstream printer.
pub fn table_of<'a>(
    r: &crate::api::Resource,
    objects: impl IntoIterator<Item = &'a Value>,
    include: IncludeObject,
    list_metadata: Value,
    now: SystemTime,
) -> Value {
    let Some(c) = r.custom else {
        return table(r.group, r.plural, objects, include, list_metadata, now);
    };
    let columns = c.printer_columns();
    let at = clock::now_nanos(now);
    let rows: Vec<Value> = objects
        .into_iter()
        .map(|o| finish_row(custom::cells(columns, o, at), None, o, include))
        .collect();
    let metadata = if list_metadata.is_object() {
        list_metadata
    } else {
        json!({})
    };
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": custom::definitions(columns),
        "rows": rows,
    })
}
