//! update, and the guarded read-modify-write loop every write of an
//! existing object goes through (upstream's GuaranteedUpdate).

use serde_json::Value;

use super::create::check_type;
use super::{scoped, store_error};
use crate::api::admission::{Operation, Request};
use crate::api::error::ApiError;
use crate::api::meta::{self, meta_mut};
use crate::api::registry::Resource;
use crate::api::store::{only_renewal, set_resource_version, StoreError};
use crate::api::validation;
use crate::api::{Api, WriteOptions};

/// Metadata only the server sets; an update keeps the stored values.
const SYSTEM_META: &[&str] = &[
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
];

/// Conflicts retried for writes that did not pin a resourceVersion.
const RETRIES: usize = 8;

/// The resourceVersion a body pins, if any.
pub(super) fn pinned_version(obj: &Value) -> Result<Option<i64>, ApiError> {
    match meta::meta_str(obj, "resourceVersion") {
        None | Some("") => Ok(None),
        Some(s) => s
            .parse::<i64>()
            .map(Some)
            .map_err(|_| ApiError::BadRequest(format!("invalid resource version: {s}"))),
    }
}

impl Api {
    pub async fn update(
        &self,
        r: &'static Resource,
        namespace: Option<&str>,
        name: &str,
        mut obj: Value,
        subresource: Option<&str>,
        opts: &WriteOptions,
    ) -> Result<Value, ApiError> {
        if !r.has_verb("update") {
            return Err(ApiError::MethodNotAllowed);
        }
        check_type(r, &mut obj)?;
        super::check_body(r, &mut obj, opts)?;
        let body_name = meta::name(&obj);
        if !body_name.is_empty() && body_name != name {
            return Err(ApiError::BadRequest(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        super::create::set_namespace(r, scoped(r, namespace), &mut obj)?;
        meta_mut(&mut obj).insert("name".into(), name.into());
        let pinned = pinned_version(&obj)?;
        self.guaranteed_update(
            r,
            namespace,
            name,
            pinned,
            opts,
            |_| Ok(obj.clone()),
            subresource,
        )
        .await
    }

    /// Reads the object, lets `change` build the new one from it, applies
    /// the update rules and writes it if still unchanged; retries on races
    /// unless the caller pinned a resourceVersion.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn guaranteed_update(
        &self,
        r: &'static Resource,
        namespace: Option<&str>,
        name: &str,
        pinned: Option<i64>,
        opts: &WriteOptions,
        mut change: impl FnMut(&Value) -> Result<Value, ApiError>,
        subresource: Option<&str>,
    ) -> Result<Value, ApiError> {
        let namespace = scoped(r, namespace);
        for _ in 0..RETRIES {
            let (stored, mod_revision) = self.current(r, namespace, name).await?;
            if pinned.is_some_and(|rv| rv != mod_revision) {
                return Err(ApiError::modified(r, name));
            }
            let old = self.serve_owned(r, stored).await?;
            let mut new = change(&old)?;
            let pinned_now = pinned_version(&new)?;
            if pinned_now.is_some_and(|rv| rv != mod_revision) {
                return Err(ApiError::modified(r, name));
            }
            self.prepare_update(r, subresource, &mut new, &old)?;
            // Lease renewals stay in memory; their managedFields times may lag.
            if !(is_node_heartbeat(r, namespace) && only_renewal(&new, &old)) {
                self.track_fields(r, subresource, Some(&old), &mut new, opts);
            }
            if unchanged(&new, &old) {
                return Ok(old);
            }
            let admission = Request::new(Operation::Update, r, subresource, namespace, name, opts);
            self.admit_mutate(&admission, &mut new, Some(&old)).await?;
            self.admit_validate(&admission, &new, Some(&old)).await?;
            if opts.dry_run {
                return self.dry_run_form(r, new).await;
            }
            let key = r.key(namespace, name);
            if is_node_heartbeat(r, namespace) && only_renewal(&new, &old) {
                let suffix = format!("{}/{name}", namespace.unwrap_or_default());
                set_resource_version(&mut new, mod_revision);
                self.store
                    .hold_heartbeat(r.storage, &suffix, &key, new.clone(), mod_revision);
                return Ok(new);
            }
            if finished_deleting(r, &new) {
                match self.store.delete(&key, mod_revision).await {
                    Ok(rev) => {
                        set_resource_version(&mut new, rev);
                        return Ok(new);
                    }
                    Err(StoreError::Conflict) if pinned.is_none() => continue,
                    Err(e) => return Err(store_error(r, name, e)),
                }
            }
            match self.write_back(r, &key, name, new, mod_revision).await? {
                Some(out) => return Ok(out),
                None if pinned.is_none() => continue,
                None => return Err(ApiError::modified(r, name)),
            }
        }
        Err(ApiError::modified(r, name))
    }

    /// Upstream's BeforeUpdate: system fields kept, status/spec split by
    /// subresource, generation tracking, defaults and validation.
    fn prepare_update(
        &self,
        r: &'static Resource,
        subresource: Option<&str>,
        new: &mut Value,
        old: &Value,
    ) -> Result<(), ApiError> {
        let name = meta::name(old).to_string();
        if !new.is_object() {
            return Err(ApiError::BadRequest(format!(
                "the body is not a {} object",
                r.kind
            )));
        }
        match subresource {
            Some("status") => keep_spec(new, old),
            None | Some("finalize") if r.has_status() => keep_field(new, old, "status"),
            _ => {}
        }
        let old_meta = old.get("metadata").cloned().unwrap_or(Value::Null);
        let m = meta_mut(new);
        if m.get("uid")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            if let Some(uid) = old_meta.get("uid") {
                m.insert("uid".into(), uid.clone());
            }
        }
        for k in SYSTEM_META {
            match old_meta.get(*k) {
                Some(v) => m.insert(k.to_string(), v.clone()),
                None => m.remove(*k),
            };
        }
        // An unconditional update (no resourceVersion in the body) is made
        // against the version just read, as upstream's store does.
        if m.get("resourceVersion")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            if let Some(rv) = old_meta.get("resourceVersion") {
                m.insert("resourceVersion".into(), rv.clone());
            }
        }
        m.remove("generation");
        if let Some(g) = old_meta.get("generation") {
            m.insert("generation".into(), g.clone());
        }
        (r.strategy.defaults)(new);
        crate::api::custom::apply_defaults(r, new);
        self.before_update(r, new, old)?;
        if r.strategy.generation && meta::spec_part(new) != meta::spec_part(old) {
            let g = old_meta
                .get("generation")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            meta_mut(new).insert("generation".into(), (g + 1).into());
        }
        let mut causes = validation::validate_object_meta_update(
            new.get("metadata").unwrap_or(&Value::Null),
            &old_meta,
            r.namespaced,
            r.name_rule,
        );
        causes.extend(r.validate_change(new, old));
        // A binding sets spec.nodeName, which pod updates may not change
        // (upstream binds outside the pod update strategy too); ephemeral
        // containers have their own update rules (`ephemeral.rs`).
        if !matches!(subresource, Some("binding" | "ephemeralcontainers")) {
            causes.extend((r.strategy.validate_update)(new, old));
        }
        if causes.is_empty() {
            Ok(())
        } else {
            Err(ApiError::invalid(r, &name, causes))
        }
    }
}

/// A status write changes only status (and metadata, as upstream allows).
fn keep_spec(new: &mut Value, old: &Value) {
    let (Some(n), Some(o)) = (new.as_object_mut(), old.as_object()) else {
        return;
    };
    n.retain(|k, _| matches!(k.as_str(), "metadata" | "status" | "apiVersion" | "kind"));
    for (k, v) in o {
        if !matches!(k.as_str(), "metadata" | "status" | "apiVersion" | "kind") {
            n.insert(k.clone(), v.clone());
        }
    }
}

fn keep_field(new: &mut Value, old: &Value, field: &str) {
    let Some(n) = new.as_object_mut() else {
        return;
    };
    match old.get(field) {
        Some(v) => n.insert(field.to_string(), v.clone()),
        None => n.remove(field),
    };
}

/// Equal apart from resourceVersion: nothing to write.
fn unchanged(new: &Value, old: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        meta_mut(&mut v).remove("resourceVersion");
        v
    };
    strip(new) == strip(old)
}

/// Node Lease renewals are held in memory (`store/heartbeat.rs`).
fn is_node_heartbeat(r: &Resource, namespace: Option<&str>) -> bool {
    r.storage == "leases" && namespace == Some("kube-node-lease")
}

/// A deleting object whose last finalizer is gone is removed (pods wait for
/// their node agent, which deletes them itself).
fn finished_deleting(r: &Resource, obj: &Value) -> bool {
    if !meta::is_deleting(obj) || !meta::finalizers(obj).is_empty() {
        return false;
    }
    match r.storage {
        // Pods wait for their node agent, unless deleted with no grace
        // (upstream ShouldDeleteDuringUpdate).
        "pods" => {
            obj.get("metadata")
                .and_then(|m| m.get("deletionGracePeriodSeconds"))
                .and_then(Value::as_i64)
                == Some(0)
        }
        "namespaces" => obj
            .get("spec")
            .and_then(|s| s.get("finalizers"))
            .and_then(Value::as_array)
            .is_none_or(Vec::is_empty),
        _ => true,
    }
}
