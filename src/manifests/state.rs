//! Where the deploy loop remembers each manifest file: one ConfigMap per
//! file in kube-system (k3s keeps an `Addon` object per file; we serve no
//! custom resources yet). It holds the checksum last applied without
//! error, the objects the file created (so deletion and pruning are exact
//! even after the file is gone) and the last error reported, and is what
//! the file's Events are about: `kubectl describe configmap -n kube-system
//! <name>` shows them.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{json, Value};

use super::parse::ObjectRef;
use super::OWNER;
use crate::api::{Api, ApiError, ListOptions, Resource, WriteOptions};

const NAMESPACE: &str = "kube-system";
/// Marks the state ConfigMaps among kube-system's.
const LABEL: &str = "nanokube.io/manifest-state";

/// What is known of one manifest file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct State {
    /// Path relative to the manifests dir.
    pub file: String,
    /// SHA-256 of the content last applied without error ("" if none).
    pub checksum: String,
    /// Objects the file created (or may have created), sorted.
    pub objects: Vec<ObjectRef>,
    /// The last error reported as an Event, if the last apply failed.
    pub error: Option<String>,
    /// The server whose manifests dir holds the file (servers sharing a
    /// datastore each have their own dir).
    pub server: String,
}

impl State {
    pub fn new(file: &str, server: &str) -> Self {
        State {
            file: file.to_string(),
            server: server.to_string(),
            ..Default::default()
        }
    }
}

fn configmaps(api: &Api) -> Result<&'static Resource, ApiError> {
    api.registry()
        .find("", "v1", "configmaps")
        .ok_or_else(|| ApiError::internal("configmaps are not registered"))
}

/// The ConfigMap name of a file: readable part plus a hash of the path,
/// so `a_b.yaml` and `a-b.yaml` never share one.
pub fn object_name(file: &str) -> String {
    let slug: String = file
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(40)
        .collect();
    let slug = slug.trim_matches('-');
    let hash = super::parse::checksum(file.as_bytes());
    format!("manifest-{slug}-{}", &hash[..8])
}

/// Every file's state, by file.
pub async fn list(api: &Api) -> Result<BTreeMap<String, State>, ApiError> {
    let selector = crate::api::selector::LabelSelector::parse(&format!("{LABEL}=true"))
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let opts = ListOptions {
        label_selector: selector,
        ..Default::default()
    };
    let listed = api.list(configmaps(api)?, Some(NAMESPACE), &opts).await?;
    Ok(listed
        .items
        .iter()
        .filter_map(|cm| decode(cm))
        .map(|s| (s.file.clone(), s))
        .collect())
}

fn decode(cm: &Value) -> Option<State> {
    let data = cm.get("data")?;
    let text = |k: &str| data.get(k).and_then(Value::as_str);
    Some(State {
        file: text("file")?.to_string(),
        checksum: text("checksum").unwrap_or("").to_string(),
        objects: text("objects")
            .and_then(|s| serde_json::from_str(s).ok())
            .unwrap_or_default(),
        error: text("error").map(str::to_string),
        server: text("server").unwrap_or("").to_string(),
    })
}

/// Writes `state` (create or replace); returns the stored ConfigMap.
pub async fn save(api: &Api, state: &State) -> Result<Arc<Value>, ApiError> {
    let r = configmaps(api)?;
    let name = object_name(&state.file);
    let objects =
        serde_json::to_string(&state.objects).map_err(|e| ApiError::internal(e.to_string()))?;
    let mut data = json!({"file": state.file, "checksum": state.checksum,
                          "objects": objects, "server": state.server});
    if let Some(e) = &state.error {
        data["error"] = e.clone().into();
    }
    let cm = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": NAMESPACE,
                     "labels": {LABEL: "true"}, "annotations": {OWNER: state.file}},
        "data": data,
    });
    let opts = WriteOptions::default();
    match api.create(r, Some(NAMESPACE), cm.clone(), &opts).await {
        Err(ApiError::AlreadyExists { .. }) => {
            api.update(r, Some(NAMESPACE), &name, cm, None, &opts)
                .await?;
        }
        other => {
            other?;
        }
    }
    api.get(r, Some(NAMESPACE), &name).await
}

/// The stored ConfigMap of `file`, for Events about it.
pub async fn get(api: &Api, file: &str) -> Result<Arc<Value>, ApiError> {
    api.get(configmaps(api)?, Some(NAMESPACE), &object_name(file))
        .await
}

/// Forgets `file`.
pub async fn remove(api: &Api, file: &str) -> Result<(), ApiError> {
    let opts = crate::api::DeleteOptions::default();
    match api
        .delete(configmaps(api)?, Some(NAMESPACE), &object_name(file), &opts)
        .await
    {
        Ok(_) | Err(ApiError::NotFound { .. }) => Ok(()),
        Err(e) => Err(e),
    }
}
