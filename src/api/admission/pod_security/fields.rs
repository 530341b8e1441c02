//! Reading pod fields and writing upstream's phrases, for the checks.

use serde_json::Value;

use crate::api::validation;

/// A container's name ("" when missing).
pub(super) fn name_of(c: &Value) -> &str {
    c.get("name").and_then(Value::as_str).unwrap_or_default()
}

/// Init, regular and ephemeral containers, in upstream's visiting order.
pub(super) fn containers(spec: &Value) -> impl Iterator<Item = &Value> {
    ["initContainers", "containers", "ephemeralContainers"]
        .into_iter()
        .filter_map(move |f| spec.get(f).and_then(Value::as_array))
        .flatten()
}

/// `securityContext.<field>` of a container or pod spec.
pub(super) fn sc<'v>(holder: &'v Value, field: &str) -> Option<&'v Value> {
    holder
        .get("securityContext")?
        .get(field)
        .filter(|v| !v.is_null())
}

/// Upstream `joinQuote`: `"a", "b"` (Go-quoted).
pub(super) fn join_quote<S: AsRef<str>>(items: &[S]) -> String {
    let quoted: Vec<String> = items
        .iter()
        .map(|s| validation::go_quote(s.as_ref()))
        .collect();
    quoted.join(", ")
}

pub(super) fn pluralize<'a>(singular: &'a str, plural: &'a str, n: usize) -> &'a str {
    if n == 1 {
        singular
    } else {
        plural
    }
}

/// `container "a"` / `containers "a", "b"`.
pub(super) fn containers_phrase(names: &[String]) -> String {
    format!(
        "{} {}",
        pluralize("container", "containers", names.len()),
        join_quote(names)
    )
}

/// Sorted, deduplicated (Go's `sets.NewString(...).List()`).
pub(super) fn sorted_set(mut items: Vec<String>) -> Vec<String> {
    items.sort();
    items.dedup();
    items
}
/// `pod and containers "a", "b"`: who set a forbidden value.
pub(super) fn setters(pod: bool, bad_containers: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    if pod {
        out.push("pod".to_string());
    }
    if !bad_containers.is_empty() {
        out.push(containers_phrase(bad_containers));
    }
    out
}

pub(super) fn str_at<'v>(v: &'v Value, field: &str) -> Option<&'v str> {
    v.get(field).and_then(Value::as_str)
}

/// The capabilities a container adds.
pub(super) fn added_capabilities(c: &Value) -> impl Iterator<Item = &str> {
    sc(c, "capabilities")
        .and_then(|caps| caps.get("add"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|v| v.as_str().unwrap_or_default())
}

/// Volumes of the pod spec.
pub(super) fn volumes(spec: &Value) -> impl Iterator<Item = &Value> {
    spec.get("volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

/// The seccomp profile types both levels accept when one is set.
pub(super) fn valid_seccomp(profile: &Value) -> bool {
    matches!(
        str_at(profile, "type"),
        Some("RuntimeDefault" | "Localhost")
    )
}
