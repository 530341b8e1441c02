//! delete and deletecollection: preconditions, propagation finalizers,
//! graceful deletion of pods, namespace termination.

use serde_json::{json, Value};

use super::{scoped, store_error};
use crate::api::error::{success_status, ApiError};
use crate::api::meta::{self, meta_mut};
use crate::api::registry::Resource;
use crate::api::store::{set_resource_version, StoreError};
use crate::api::{Api, DeleteOptions, ListOptions};

/// What a delete did: the object is gone, or it is now terminating.
#[derive(Debug)]
pub enum Deleted {
    Gone(Value),
    Terminating(Value),
}

impl Deleted {
    /// The body upstream answers with.
    pub fn into_response(self, r: &Resource) -> Value {
        match self {
            Deleted::Gone(obj) if r.storage == "pods" => obj,
            Deleted::Gone(obj) => success_status(r, meta::name(&obj), meta::uid(&obj)),
            Deleted::Terminating(obj) => obj,
        }
    }
}

const RETRIES: usize = 8;

impl Api {
    pub async fn delete(
        &self,
        r: &'static Resource,
        namespace: Option<&str>,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<Deleted, ApiError> {
        if !r.has_verb("delete") {
            return Err(ApiError::MethodNotAllowed);
        }
        let namespace = scoped(r, namespace);
        let key = r.key(namespace, name);
        for _ in 0..RETRIES {
            let (stored, mod_revision) = self.current(r, namespace, name).await?;
            check_preconditions(r, name, &stored, mod_revision, opts)?;
            let mut obj = self.serve_owned(r, stored).await?;
            // Admission sees the object it deletes (as upstream's
            // deleteValidation), after the preconditions.
            self.admit_delete(r, namespace, name, &obj, opts).await?;
            let graceful = self.begin_termination(r, &mut obj, opts);
            if !graceful {
                if opts.dry_run {
                    return Ok(Deleted::Gone(obj));
                }
                match self.store.delete(&key, mod_revision).await {
                    Ok(rev) => {
                        set_resource_version(&mut obj, rev);
                        tracing::debug!(resource = r.plural, name, rev, "deleted");
                        return Ok(Deleted::Gone(obj));
                    }
                    Err(StoreError::Conflict) => continue,
                    Err(e) => return Err(store_error(r, name, e)),
                }
            }
            if opts.dry_run {
                return Ok(Deleted::Terminating(obj));
            }
            if let Some(out) = self.write_back(r, &key, name, obj, mod_revision).await? {
                return Ok(Deleted::Terminating(out));
            }
        }
        Err(ApiError::modified(r, name))
    }

    /// Marks `obj` as terminating when it cannot go at once (finalizers,
    /// graceful pods, namespaces); returns whether it did.
    fn begin_termination(&self, r: &Resource, obj: &mut Value, opts: &DeleteOptions) -> bool {
        let already = meta::is_deleting(obj);
        let mut finalizers = meta::finalizers(obj);
        match opts.propagation_policy.as_deref() {
            Some("Orphan") if !finalizers.iter().any(|f| f == "orphan") => {
                finalizers.push("orphan".into())
            }
            Some("Foreground") if !finalizers.iter().any(|f| f == "foregroundDeletion") => {
                finalizers.push("foregroundDeletion".into())
            }
            _ => {}
        }
        let grace = match r.storage {
            "pods" => pod_grace_period(obj, opts),
            _ => 0,
        };
        let namespace = r.storage == "namespaces";
        if finalizers.is_empty() && grace == 0 && !namespace {
            return false;
        }
        if already && !namespace && grace == 0 && finalizers.is_empty() {
            return false;
        }
        let now = std::time::SystemTime::now() + std::time::Duration::from_secs(grace as u64);
        let m = meta_mut(obj);
        if !finalizers.is_empty() {
            m.insert("finalizers".into(), json!(finalizers));
        }
        if !already {
            m.insert("deletionTimestamp".into(), meta::timestamp(now).into());
            m.insert("deletionGracePeriodSeconds".into(), grace.into());
        } else if r.storage == "pods" {
            // A second delete may only shorten the grace period.
            let current = m
                .get("deletionGracePeriodSeconds")
                .and_then(Value::as_i64)
                .unwrap_or(grace);
            if grace < current {
                m.insert("deletionTimestamp".into(), meta::timestamp(now).into());
                m.insert("deletionGracePeriodSeconds".into(), grace.into());
            }
        }
        if namespace {
            // The phase only: the namespace controller's conditions stay.
            if let Some(map) = obj.as_object_mut() {
                let status = map.entry("status").or_insert_with(|| json!({}));
                if let Some(st) = status.as_object_mut() {
                    st.insert("phase".into(), "Terminating".into());
                } else {
                    *status = json!({"phase": "Terminating"});
                }
            }
        }
        true
    }

    /// deletecollection: every object the selectors match, deleted one by one.
    pub async fn delete_collection(
        &self,
        r: &'static Resource,
        namespace: Option<&str>,
        list: &ListOptions,
        opts: &DeleteOptions,
    ) -> Result<Vec<Value>, ApiError> {
        if !r.has_verb("deletecollection") {
            return Err(ApiError::MethodNotAllowed);
        }
        let found = self.list(r, namespace, list).await?;
        let mut out = Vec::with_capacity(found.items.len());
        for item in found.items {
            let name = meta::name(&item).to_string();
            let ns = item
                .get("metadata")
                .and_then(|m| m.get("namespace"))
                .and_then(Value::as_str);
            match self.delete(r, ns.or(namespace), &name, opts).await {
                Ok(Deleted::Gone(v)) | Ok(Deleted::Terminating(v)) => out.push(v),
                Err(ApiError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(out)
    }
}

/// Upstream's pod rules: unscheduled or finished pods go at once; others
/// get the requested grace or their spec's (default 30 s).
fn pod_grace_period(pod: &Value, opts: &DeleteOptions) -> i64 {
    let scheduled = pod
        .get("spec")
        .and_then(|s| s.get("nodeName"))
        .and_then(Value::as_str)
        .is_some_and(|n| !n.is_empty());
    let phase = pod
        .get("status")
        .and_then(|s| s.get("phase"))
        .and_then(Value::as_str);
    if !scheduled || matches!(phase, Some("Succeeded") | Some("Failed")) {
        return 0;
    }
    let spec = pod
        .get("spec")
        .and_then(|s| s.get("terminationGracePeriodSeconds"))
        .and_then(Value::as_i64)
        .unwrap_or(30);
    opts.grace_period_seconds.unwrap_or(spec).max(0)
}

fn check_preconditions(
    r: &Resource,
    name: &str,
    obj: &Value,
    mod_revision: i64,
    opts: &DeleteOptions,
) -> Result<(), ApiError> {
    if let Some(uid) = &opts.precondition_uid {
        let actual = meta::uid(obj).unwrap_or("");
        if uid != actual {
            return Err(ApiError::conflict(
                r,
                name,
                &format!(
                    "Precondition failed: UID in precondition: {uid}, UID in object meta: {actual}"
                ),
            ));
        }
    }
    if let Some(rv) = &opts.precondition_resource_version {
        if *rv != mod_revision.to_string() {
            return Err(ApiError::conflict(
                r,
                name,
                &format!(
                    "Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {mod_revision}"
                ),
            ));
        }
    }
    Ok(())
}
