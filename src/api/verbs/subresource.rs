//! Subresources with their own shape: scale, pod binding, namespace
//! finalize (eviction is in `eviction.rs`).

use serde_json::{json, Value};

use super::patch::patch_error;
use super::update::pinned_version;
use crate::api::error::ApiError;
use crate::api::meta;
use crate::api::patch::{self, PatchType};
use crate::api::registry::Resource;
use crate::api::selector::LabelSelector;
use crate::api::{Api, WriteOptions};

const SCALE_DEFINITION: &str = "io.k8s.api.autoscaling.v1.Scale";

/// The value at a dotted path (`.spec.replicas`).
fn at_path<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    path.trim_start_matches('.')
        .split('.')
        .try_fold(obj, |v, k| v.get(k))
}

/// Sets the value at a dotted path, making the objects on the way.
fn set_path(obj: &mut Value, path: &str, value: Value) {
    let keys: Vec<&str> = path.trim_start_matches('.').split('.').collect();
    let Some((last, parents)) = keys.split_last() else {
        return;
    };
    let mut v = obj;
    for k in parents {
        let Some(m) = v.as_object_mut() else { return };
        v = m.entry(k.to_string()).or_insert_with(|| json!({}));
    }
    if let Some(m) = v.as_object_mut() {
        m.insert(last.to_string(), value);
    }
}

/// The Scale of a custom resource, from its definition's scale paths.
fn custom_scale_of(paths: &crate::api::custom::ScalePaths, obj: &Value) -> Value {
    let m = obj.get("metadata").cloned().unwrap_or_else(|| json!({}));
    let pick = |k: &str| m.get(k).cloned().unwrap_or(Value::Null);
    let replicas = |p: &str| at_path(obj, p).and_then(Value::as_i64).unwrap_or(0);
    let mut status = json!({"replicas": replicas(&paths.status_replicas)});
    if let Some(sel) = paths
        .label_selector
        .as_deref()
        .and_then(|p| at_path(obj, p))
        .and_then(Value::as_str)
    {
        status["selector"] = sel.into();
    }
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {"name": pick("name"), "namespace": pick("namespace"), "uid": pick("uid"),
                      "resourceVersion": pick("resourceVersion"), "creationTimestamp": pick("creationTimestamp")},
        "spec": {"replicas": replicas(&paths.spec_replicas)},
        "status": status,
    })
}

/// The autoscaling/v1 Scale view of a scalable object.
fn scale_of(r: &Resource, obj: &Value) -> Value {
    if let Some(paths) = r.custom.and_then(|c| c.scale()) {
        return custom_scale_of(paths, obj);
    }
    let m = obj.get("metadata").cloned().unwrap_or_else(|| json!({}));
    let pick = |k: &str| m.get(k).cloned().unwrap_or(Value::Null);
    let spec = obj.get("spec");
    let selector = match spec.and_then(|s| s.get("selector")) {
        // ReplicationControllers select with a plain map.
        Some(Value::Object(map))
            if !map.contains_key("matchLabels") && !map.contains_key("matchExpressions") =>
        {
            LabelSelector::from_json(&json!({"matchLabels": map}))
                .map(|s| s.to_string())
                .unwrap_or_default()
        }
        Some(sel) => LabelSelector::from_json(sel)
            .map(|s| s.to_string())
            .unwrap_or_default(),
        None => String::new(),
    };
    let mut status = json!({"replicas": obj.get("status").and_then(|s| s.get("replicas")).and_then(Value::as_i64).unwrap_or(0)});
    if !selector.is_empty() {
        status["selector"] = selector.into();
    }
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {"name": pick("name"), "namespace": pick("namespace"), "uid": pick("uid"),
                      "resourceVersion": pick("resourceVersion"), "creationTimestamp": pick("creationTimestamp")},
        "spec": {"replicas": spec.and_then(|s| s.get("replicas")).and_then(Value::as_i64).unwrap_or(1)},
        "status": status,
    })
}

fn replicas_of(r: &Resource, name: &str, scale: &Value) -> Result<i64, ApiError> {
    match scale.get("spec").and_then(|s| s.get("replicas")) {
        None | Some(Value::Null) => Ok(0),
        Some(v) => match v.as_i64() {
            Some(n) if (0..=i32::MAX as i64).contains(&n) => Ok(n),
            _ => Err(ApiError::invalid(
                r,
                name,
                vec![crate::api::validation::invalid(
                    "spec.replicas",
                    v,
                    "must be greater than or equal to 0",
                )],
            )),
        },
    }
}

fn with_replicas(r: &Resource, old: &Value, replicas: i64) -> Value {
    let mut new = old.clone();
    if let Some(paths) = r.custom.and_then(|c| c.scale()) {
        set_path(&mut new, &paths.spec_replicas, replicas.into());
        return new;
    }
    if let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) {
        spec.insert("replicas".into(), replicas.into());
    }
    new
}

impl Api {
    pub async fn get_scale(
        &self,
        r: &'static Resource,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Value, ApiError> {
        let obj = self.get(r, namespace, name).await?;
        Ok(scale_of(r, &obj))
    }

    pub async fn update_scale(
        &self,
        r: &'static Resource,
        namespace: Option<&str>,
        name: &str,
        body: Value,
        opts: &WriteOptions,
    ) -> Result<Value, ApiError> {
        let replicas = replicas_of(r, name, &body)?;
        let pinned = pinned_version(&body)?;
        let out = self
            .guaranteed_update(
                r,
                namespace,
                name,
                pinned,
                opts,
                |old| Ok(with_replicas(r, old, replicas)),
                Some("scale"),
            )
            .await?;
        Ok(scale_of(r, &out))
    }

    pub(super) async fn patch_scale(
        &self,
        r: &'static Resource,
        namespace: Option<&str>,
        name: &str,
        patch_type: PatchType,
        body: &[u8],
        opts: &WriteOptions,
    ) -> Result<Value, ApiError> {
        let change = |old: &Value| -> Result<Value, ApiError> {
            let scale = patch::apply(Some(SCALE_DEFINITION), &scale_of(r, old), patch_type, body)
                .map_err(patch_error)?;
            let replicas = replicas_of(r, name, &scale)?;
            let mut new = with_replicas(r, old, replicas);
            if let Some(rv) = meta::meta_str(&scale, "resourceVersion") {
                meta::meta_mut(&mut new).insert("resourceVersion".into(), rv.into());
            }
            Ok(new)
        };
        let out = self
            .guaranteed_update(r, namespace, name, None, opts, change, Some("scale"))
            .await?;
        Ok(scale_of(r, &out))
    }

    /// pods/binding and bindings: assigns a pod to a node, once.
    pub async fn bind(
        &self,
        pods: &'static Resource,
        namespace: Option<&str>,
        name: &str,
        binding: &Value,
        opts: &WriteOptions,
    ) -> Result<Value, ApiError> {
        let node = binding
            .get("target")
            .and_then(|t| t.get("name"))
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| {
                ApiError::invalid(
                    pods,
                    name,
                    vec![crate::api::validation::required("target.name", "")],
                )
            })?
            .to_string();
        let change = |old: &Value| -> Result<Value, ApiError> {
            if meta::is_deleting(old) {
                return Err(ApiError::conflict(
                    pods,
                    name,
                    "pod is being deleted, cannot be assigned to a host",
                ));
            }
            let current = old
                .get("spec")
                .and_then(|s| s.get("nodeName"))
                .and_then(Value::as_str)
                .unwrap_or("");
            if !current.is_empty() {
                return Err(ApiError::conflict(
                    pods,
                    name,
                    &format!("pod {name} is already assigned to node \"{current}\""),
                ));
            }
            let mut new = old.clone();
            if let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) {
                spec.insert("nodeName".into(), node.clone().into());
            }
            set_condition(&mut new, "PodScheduled", "True");
            Ok(new)
        };
        let pinned = None;
        self.guaranteed_update(pods, namespace, name, pinned, opts, change, Some("binding"))
            .await?;
        Ok(
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
        )
    }

    /// namespaces/finalize: replaces spec.finalizers only.
    pub async fn finalize_namespace(
        &self,
        r: &'static Resource,
        name: &str,
        body: &Value,
        opts: &WriteOptions,
    ) -> Result<Value, ApiError> {
        let finalizers = body
            .get("spec")
            .and_then(|s| s.get("finalizers"))
            .cloned()
            .unwrap_or(json!([]));
        let pinned = pinned_version(body)?;
        let change = |old: &Value| -> Result<Value, ApiError> {
            let mut new = old.clone();
            if let Some(map) = new.as_object_mut() {
                let spec = map.entry("spec").or_insert_with(|| json!({}));
                if let Some(s) = spec.as_object_mut() {
                    s.insert("finalizers".into(), finalizers.clone());
                }
            }
            Ok(new)
        };
        self.guaranteed_update(r, None, name, pinned, opts, change, Some("finalize"))
            .await
    }
}

/// Sets a pod condition of `kind` to `status` (adding it when missing).
fn set_condition(pod: &mut Value, kind: &str, status: &str) {
    let now = meta::now();
    let Some(map) = pod.as_object_mut() else {
        return;
    };
    let st = map.entry("status").or_insert_with(|| json!({}));
    let Some(st) = st.as_object_mut() else {
        return;
    };
    let conds = st.entry("conditions").or_insert_with(|| json!([]));
    let Some(list) = conds.as_array_mut() else {
        return;
    };
    list.retain(|c| c.get("type").and_then(Value::as_str) != Some(kind));
    list.push(
        json!({"type": kind, "status": status, "lastProbeTime": null, "lastTransitionTime": now}),
    );
}
