//! Unit tests, one file per kind family, all at a fixed "now".

mod common;
mod core;
mod events;
mod format;
mod other;
mod pod;
mod workloads;

use serde_json::Value;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// 2024-05-01T12:00:00Z.
pub(super) fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_714_564_800)
}

/// The cells of `obj` printed as `group`/`resource`.
pub(super) fn cells(group: &str, resource: &str, obj: &Value) -> Vec<Value> {
    let row = super::row(group, resource, obj, super::IncludeObject::None, now());
    row["cells"].as_array().cloned().unwrap_or_default()
}

/// Column names of a resource, in order.
pub(super) fn column_names(group: &str, resource: &str) -> Vec<String> {
    super::column_definitions(group, resource)
        .as_array()
        .map(|a| {
            a.iter()
                .map(|c| c["name"].as_str().unwrap_or("?").to_string())
                .collect()
        })
        .unwrap_or_default()
}
