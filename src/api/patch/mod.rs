//! The PATCH engine: JSON patch (RFC 6902), JSON merge patch (RFC 7386)
//! and Kubernetes strategic merge patch, with upstream apimachinery's
//! semantics so that kubectl (`apply`, `edit`, `label`, `scale`, `set
//! image`, `rollout restart`, `patch`) gets the results it expects.
//!
//! Strategic merge patch needs to know, per field, whether a list is merged
//! (and by which key) or replaced; upstream reads that from Go struct tags,
//! we from the tables in `table_*.rs` (see `schema`).

mod directives;
mod order;
mod schema;
mod strategic;
mod table_core;
mod table_groups;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_formats;
#[cfg(test)]
mod tests_kubectl;

use serde_json::Value;

/// Upstream refuses JSON patches longer than this (HTTP 413 there).
const MAX_JSON_PATCH_OPERATIONS: usize = 10_000;

/// The three patch formats of `PATCH` requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    Json,
    Merge,
    Strategic,
}

impl PatchType {
    /// From a Content-Type header value (parameters ignored):
    /// application/json-patch+json, application/merge-patch+json,
    /// application/strategic-merge-patch+json. None otherwise.
    pub fn from_content_type(ct: &str) -> Option<PatchType> {
        let essence = ct.split(';').next().unwrap_or_default().trim();
        if essence.eq_ignore_ascii_case("application/json-patch+json") {
            Some(PatchType::Json)
        } else if essence.eq_ignore_ascii_case("application/merge-patch+json") {
            Some(PatchType::Merge)
        } else if essence.eq_ignore_ascii_case("application/strategic-merge-patch+json") {
            Some(PatchType::Strategic)
        } else {
            None
        }
    }

    /// The media type of this patch format, for clients sending patches.
    pub fn content_type(self) -> &'static str {
        match self {
            PatchType::Json => "application/json-patch+json",
            PatchType::Merge => "application/merge-patch+json",
            PatchType::Strategic => "application/strategic-merge-patch+json",
        }
    }
}

/// Why a patch could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    /// The patch body cannot be decoded (HTTP 400 BadRequest upstream).
    #[error("{0}")]
    Malformed(String),
    /// The patch is well-formed but cannot be applied to this object (HTTP
    /// 422 upstream): a JSON patch path is missing, a test op failed, a
    /// `$patch` directive is invalid, ...
    #[error("{0}")]
    Unprocessable(String),
    /// Strategic merge patch on a type with no known schema (CRDs): HTTP
    /// 415 upstream.
    #[error("{0}")]
    UnsupportedForType(String),
}

/// Applies `patch` to `original`. `definition` is the OpenAPI definition
/// name of the object's type, e.g. "io.k8s.api.apps.v1.Deployment",
/// "io.k8s.api.core.v1.Pod"; None for types we have no schema for
/// (strategic → UnsupportedForType).
pub fn apply(
    definition: Option<&str>,
    original: &Value,
    patch_type: PatchType,
    patch: &[u8],
) -> Result<Value, PatchError> {
    match patch_type {
        PatchType::Json => json_patch(original, patch),
        PatchType::Merge => merge_patch(original, patch),
        PatchType::Strategic => match definition {
            Some(def) => strategic::apply(schema::root(def), original, patch),
            // Upstream's answer for custom resources, word for word.
            None => Err(PatchError::UnsupportedForType(
                "the body of the request was in an unknown format - accepted media types include: \
                 application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
                    .into(),
            )),
        },
    }
}

fn json_patch(original: &Value, patch: &[u8]) -> Result<Value, PatchError> {
    let body: Value = serde_json::from_slice(patch)
        .map_err(|e| PatchError::Malformed(format!("error decoding patch: {e}")))?;
    let ops = body.as_array().map_or(0, Vec::len);
    if !body.is_array() {
        return Err(PatchError::Malformed(
            "json patch must be a json array".into(),
        ));
    }
    if ops > MAX_JSON_PATCH_OPERATIONS {
        return Err(PatchError::Malformed(format!(
            "the allowed maximum operations in a json patch is {MAX_JSON_PATCH_OPERATIONS}, got {ops}"
        )));
    }
    let ops: json_patch::Patch = serde_json::from_value(body)
        .map_err(|e| PatchError::Malformed(format!("error decoding patch: {e}")))?;
    let mut doc = original.clone();
    json_patch::patch(&mut doc, &ops).map_err(|e| PatchError::Unprocessable(e.to_string()))?;
    Ok(doc)
}

fn merge_patch(original: &Value, patch: &[u8]) -> Result<Value, PatchError> {
    let body: Value = serde_json::from_slice(patch)
        .map_err(|e| PatchError::Malformed(format!("error decoding patch: {e}")))?;
    if !body.is_object() {
        return Err(PatchError::Malformed(
            "merge patch must be a json object".into(),
        ));
    }
    let mut doc = original.clone();
    json_patch::merge(&mut doc, &body);
    Ok(doc)
}

/// Patch metadata of one field of one definition, used by the OpenAPI
/// generator to emit x-kubernetes-patch-strategy /
/// x-kubernetes-patch-merge-key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldPatchMeta {
    /// "merge", "retainKeys", "merge,retainKeys" or "replace".
    pub strategy: &'static str,
    pub merge_key: Option<&'static str>,
}

/// The patch metadata of `field` of `definition`, if it has any.
pub fn field_patch_meta(definition: &str, field: &str) -> Option<FieldPatchMeta> {
    let f = schema::lookup(schema::fields(definition), field);
    (!f.strategy.is_empty()).then_some(FieldPatchMeta {
        strategy: f.strategy,
        merge_key: (!f.merge_key.is_empty()).then_some(f.merge_key),
    })
}

/// The definition of the value under `field` of `definition` (its object,
/// list element or map value), when the tables know it has patch metadata
/// of its own; server-side apply walks list types down the same tables.
pub(crate) fn field_child(definition: &str, field: &str) -> Option<&'static str> {
    schema::lookup(schema::fields(definition), field).child
}
