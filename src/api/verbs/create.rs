//! create: defaults, system metadata, validation, then a create-if-absent
//! transaction.

use serde_json::Value;

use super::{encode, scoped, store_error};
use crate::api::admission::{Operation, Request};
use crate::api::error::ApiError;
use crate::api::meta::{self, meta_mut};
use crate::api::registry::Resource;
use crate::api::store::set_resource_version;
use crate::api::validation;
use crate::api::{Api, WriteOptions};

impl Api {
    pub async fn create(
        &self,
        r: &'static Resource,
        namespace: Option<&str>,
        mut obj: Value,
        opts: &WriteOptions,
    ) -> Result<Value, ApiError> {
        if !r.has_verb("create") {
            return Err(ApiError::MethodNotAllowed);
        }
        check_type(r, &mut obj)?;
        super::check_body(r, &mut obj, opts)?;
        if r.group == "authentication.k8s.io" && r.plural == "tokenreviews" {
            return self.review_token(obj).await;
        }
        if let Some(answer) = self.review(r, namespace, &obj, opts).await {
            return answer;
        }
        let namespace = scoped(r, namespace);
        set_namespace(r, namespace, &mut obj)?;
        if let Some(ns) = namespace {
            self.check_namespace_open(ns).await?;
        }
        let m = meta_mut(&mut obj);
        let named = m
            .get("name")
            .and_then(Value::as_str)
            .is_some_and(|n| !n.is_empty());
        if !named {
            if let Some(prefix) = m.get("generateName").and_then(Value::as_str) {
                if !prefix.is_empty() {
                    let generated = meta::generated_name(prefix);
                    m.insert("name".into(), generated.into());
                }
            }
        }
        // uid first: some kinds derive fields from it (job selectors).
        let now = meta::now();
        let m = meta_mut(&mut obj);
        m.insert("uid".into(), meta::new_uid().into());
        m.insert("creationTimestamp".into(), now.into());
        (r.strategy.defaults)(&mut obj);
        crate::api::custom::apply_defaults(r, &mut obj);
        (r.strategy.prepare_create)(&mut obj);
        if r.group.is_empty() && r.plural == "pods" {
            self.apply_account_automount(&mut obj).await?;
        }
        let admitted_name = meta::name(&obj).to_string();
        let admission = Request::new(Operation::Create, r, None, namespace, &admitted_name, opts);
        self.admit_mutate(&admission, &mut obj, None).await?;
        let m = meta_mut(&mut obj);
        for k in [
            "resourceVersion",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "selfLink",
        ] {
            m.remove(k);
        }
        if r.strategy.generation {
            m.insert("generation".into(), 1.into());
        } else {
            m.remove("generation");
        }
        if r.has_status() && r.strategy.generation {
            // Status belongs to controllers; a new spec starts without one.
            if let Some(map) = obj.as_object_mut() {
                map.remove("status");
            }
        }
        self.before_create(r, &mut obj)?;
        self.track_fields(r, None, None, &mut obj, opts);
        let name = meta::name(&obj).to_string();
        let mut causes = validation::validate_object_meta(
            obj.get("metadata").unwrap_or(&Value::Null),
            r.namespaced,
            r.name_rule,
        );
        causes.extend(r.validate(&obj));
        causes.extend(super::ephemeral::create_causes(r, &obj));
        if !causes.is_empty() {
            return Err(ApiError::invalid(r, &name, causes));
        }
        self.admit_validate(&admission, &obj, None).await?;
        if opts.dry_run {
            return self.dry_run_form(r, obj).await;
        }
        let key = r.key(namespace, &name);
        let stored = self.storage_form(r, obj).await?;
        let lease = if r.storage == "events" {
            self.event_lease().await?
        } else {
            0
        };
        let revision = self
            .store
            .create(&key, encode(stored.clone())?, lease)
            .await
            .map_err(|e| store_error(r, &name, e))?;
        let mut out = self.serve_owned(r, stored).await?;
        set_resource_version(&mut out, revision);
        tracing::debug!(resource = r.plural, name, revision, "created");
        Ok(out)
    }

    /// A lease that ends an hour from now, shared by the events of a minute.
    async fn event_lease(&self) -> Result<i64, ApiError> {
        use crate::datastore::Backend;
        const TTL: i64 = 3600;
        const REUSE: std::time::Duration = std::time::Duration::from_secs(60);
        if let Some((id, at)) = *self.event_lease.lock().unwrap_or_else(|p| p.into_inner()) {
            if at.elapsed() < REUSE {
                return Ok(id);
            }
        }
        let grant = self
            .store
            .db()
            .lease_grant(0, TTL + REUSE.as_secs() as i64)
            .await
            .map_err(ApiError::internal)?;
        *self.event_lease.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((grant.id, std::time::Instant::now()));
        Ok(grant.id)
    }
}

/// Fills a missing apiVersion/kind from the URL (as upstream's decoder
/// does) and rejects a body of another type.
pub(super) fn check_type(r: &Resource, obj: &mut Value) -> Result<(), ApiError> {
    let Some(map) = obj.as_object_mut() else {
        return Err(ApiError::BadRequest(format!(
            "the body of the request was in an unknown format - expected a {} object",
            r.kind
        )));
    };
    let expected = r.api_version();
    match map.get("apiVersion").and_then(Value::as_str) {
        None | Some("") => {
            map.insert("apiVersion".into(), expected.clone().into());
        }
        Some(v) if v != expected => {
            return Err(ApiError::BadRequest(format!(
                "the API version in the data ({v}) does not match the expected API version ({expected})"
            )))
        }
        Some(_) => {}
    }
    match map.get("kind").and_then(Value::as_str) {
        None | Some("") => {
            map.insert("kind".into(), r.kind.into());
        }
        Some(k) if k != r.kind => {
            return Err(ApiError::BadRequest(format!(
                "the kind in the data ({k}) does not match the expected kind ({})",
                r.kind
            )))
        }
        Some(_) => {}
    }
    Ok(())
}

/// Sets metadata.namespace from the request; a different one in the body
/// is upstream's BadRequest.
pub(super) fn set_namespace(
    r: &Resource,
    namespace: Option<&str>,
    obj: &mut Value,
) -> Result<(), ApiError> {
    let m = meta_mut(obj);
    match namespace {
        Some(ns) => {
            match m.get("namespace").and_then(Value::as_str) {
                Some(body) if !body.is_empty() && body != ns => {
                    return Err(ApiError::BadRequest(
                        "the namespace of the provided object does not match the namespace sent on the request".into(),
                    ))
                }
                _ => {}
            }
            m.insert("namespace".into(), ns.into());
        }
        None if r.namespaced => {
            return Err(ApiError::BadRequest(
                "namespace is required for namespaced resources".into(),
            ))
        }
        None => {
            m.remove("namespace");
        }
    }
    Ok(())
}
