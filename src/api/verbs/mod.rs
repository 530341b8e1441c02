//! The verbs, as `impl Api` blocks: reads (get, list), writes (create,
//! update, patch), deletes, watches and the subresources.

mod create;
mod delete;
mod ephemeral;
mod eviction;
mod list;
mod patch;
mod review;
mod service;
mod subresource;
mod token;
mod update;
mod watch;

use std::sync::Arc;

use serde_json::Value;

pub use service::{Allocator, ServiceNetwork};

use crate::api::error::ApiError;
use crate::api::registry::Resource;
use crate::api::store::StoreError;
use crate::api::Api;

/// Maps storage failures to what clients see.
fn store_error(r: &Resource, name: &str, e: StoreError) -> ApiError {
    match e {
        StoreError::Exists => ApiError::already_exists(r, name),
        StoreError::Conflict => ApiError::modified(r, name),
        StoreError::Compacted => {
            ApiError::Gone("The resourceVersion for the provided list is too old.".into())
        }
        StoreError::TooNew { wanted, current } => ApiError::Timeout(format!(
            "Too large resource version: {wanted}, current: {current}"
        )),
        other => ApiError::internal(other),
    }
}

/// The object in the version `r` serves (stored objects are in the
/// storage version).
fn served(r: &Resource, stored: &Arc<Value>) -> Arc<Value> {
    if r.custom.is_some() {
        let version = r.api_version();
        if stored.get("apiVersion").and_then(Value::as_str) == Some(version.as_str()) {
            return stored.clone();
        }
        return Arc::new(crate::api::custom::served(r, (**stored).clone()));
    }
    match r.strategy.from_storage {
        Some(convert) => Arc::new(convert((**stored).clone())),
        None => stored.clone(),
    }
}

fn served_owned(r: &Resource, stored: Value) -> Value {
    if r.custom.is_some() {
        return crate::api::custom::served(r, stored);
    }
    match r.strategy.from_storage {
        Some(convert) => convert(stored),
        None => stored,
    }
}

fn to_storage(r: &Resource, obj: Value) -> Value {
    if r.custom.is_some() {
        return crate::api::custom::to_storage(r, obj);
    }
    match r.strategy.to_storage {
        Some(convert) => convert(obj),
        None => obj,
    }
}

/// The one object a single-object conversion gives back.
fn only(mut objects: Vec<Value>) -> Result<Value, ApiError> {
    objects
        .pop()
        .ok_or_else(|| ApiError::internal("conversion gave no object"))
}

impl Api {
    /// [`served`], through the CRD's conversion webhook when it has one.
    async fn serve(
        &self,
        r: &'static Resource,
        stored: &Arc<Value>,
    ) -> Result<Arc<Value>, ApiError> {
        if !crate::api::custom::by_webhook(r) {
            return Ok(served(r, stored));
        }
        let version = r.api_version();
        if stored.get("apiVersion").and_then(Value::as_str) == Some(version.as_str()) {
            return Ok(stored.clone());
        }
        let out = crate::api::custom::convert(self, r, vec![(**stored).clone()], &version).await?;
        Ok(Arc::new(only(out)?))
    }

    /// [`served_owned`], through the CRD's conversion webhook when it has one.
    async fn serve_owned(&self, r: &'static Resource, stored: Value) -> Result<Value, ApiError> {
        if !crate::api::custom::by_webhook(r) {
            return Ok(served_owned(r, stored));
        }
        only(crate::api::custom::convert(self, r, vec![stored], &r.api_version()).await?)
    }

    /// [`to_storage`], through the CRD's conversion webhook when it has one.
    async fn storage_form(&self, r: &'static Resource, obj: Value) -> Result<Value, ApiError> {
        if !crate::api::custom::by_webhook(r) {
            return Ok(to_storage(r, obj));
        }
        let version = crate::api::custom::storage_api_version(r);
        only(crate::api::custom::convert(self, r, vec![obj], &version).await?)
    }

    /// A dry run's answer: through storage and back when a webhook
    /// converts (upstream's dry-run storage encodes and decodes the object,
    /// so a failing webhook fails the dry run too).
    async fn dry_run_form(&self, r: &'static Resource, obj: Value) -> Result<Value, ApiError> {
        if !crate::api::custom::by_webhook(r) {
            return Ok(obj);
        }
        let stored = self.storage_form(r, obj).await?;
        self.serve_owned(r, stored).await
    }

    /// Served forms of stored objects: one webhook call for all that need
    /// it (upstream converts a list page in one ConversionReview).
    async fn serve_all(
        &self,
        r: &'static Resource,
        stored: Vec<Arc<Value>>,
    ) -> Result<Vec<Arc<Value>>, ApiError> {
        if !crate::api::custom::by_webhook(r) {
            return Ok(stored.iter().map(|s| served(r, s)).collect());
        }
        let objects = stored.iter().map(|s| (**s).clone()).collect();
        let out = crate::api::custom::convert(self, r, objects, &r.api_version()).await?;
        Ok(out.into_iter().map(Arc::new).collect())
    }
}

/// Serializes an object for storage, without its resourceVersion.
fn encode(mut obj: Value) -> Result<Vec<u8>, ApiError> {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("resourceVersion");
    }
    serde_json::to_vec(&obj).map_err(ApiError::internal)
}

/// Upstream's typed decoding of a body: wrong JSON types are 400; unknown
/// fields are dropped, and refused (Strict) or reported (Warn).
fn check_body(
    r: &Resource,
    obj: &mut Value,
    opts: &crate::api::WriteOptions,
) -> Result<(), ApiError> {
    use crate::api::FieldValidation;
    crate::api::custom::prune(r, obj, opts)?;
    let Some(report) = r
        .definition
        .and_then(|d| crate::api::openapi::check_fields(d, obj))
    else {
        return Ok(());
    };
    let wrap = |e: &str| {
        ApiError::BadRequest(format!(
            "{} in version \"{}\" cannot be handled as a {}: {e}",
            r.kind, r.version, r.kind
        ))
    };
    if let Some(e) = report.type_errors.first() {
        return Err(wrap(e));
    }
    match opts.field_validation {
        FieldValidation::Strict => {
            if let Some(e) = report.strict_error() {
                return Err(wrap(&e));
            }
        }
        FieldValidation::Warn => {
            if let Ok(mut w) = opts.warnings.lock() {
                w.extend(report.strict_messages());
            }
        }
        FieldValidation::Ignore => {}
    }
    Ok(())
}

/// The namespace segment of a key: the request's when the kind is namespaced.
fn scoped<'a>(r: &Resource, namespace: Option<&'a str>) -> Option<&'a str> {
    if r.namespaced {
        namespace
    } else {
        None
    }
}

fn suffix(r: &Resource, namespace: Option<&str>, name: &str) -> String {
    match scoped(r, namespace) {
        Some(ns) => format!("{ns}/{name}"),
        None => name.to_string(),
    }
}

impl Api {
    /// One object, from the cache after it caught up with every committed
    /// write (upstream's consistent read).
    pub async fn get(
        &self,
        r: &'static Resource,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Arc<Value>, ApiError> {
        self.store
            .sync()
            .await
            .map_err(|e| store_error(r, name, e))?;
        let cache = self
            .store
            .cache(r.storage)
            .ok_or_else(|| ApiError::internal(format!("no cache for {}", r.storage)))?;
        match cache.get(&suffix(r, namespace, name)) {
            Some(s) => self.serve(r, &s.object).await,
            None => Err(ApiError::not_found(r, name)),
        }
    }

    /// Stores `obj` (in this resource's version) over the version read at
    /// `mod_revision`; `None` when another write came first.
    async fn write_back(
        &self,
        r: &'static Resource,
        key: &str,
        name: &str,
        obj: Value,
        mod_revision: i64,
    ) -> Result<Option<Value>, ApiError> {
        let stored = self.storage_form(r, obj).await?;
        match self
            .store
            .update(key, encode(stored.clone())?, mod_revision)
            .await
        {
            Ok(rev) => {
                let mut out = self.serve_owned(r, stored).await?;
                crate::api::store::set_resource_version(&mut out, rev);
                tracing::debug!(resource = r.plural, name, rev, "updated");
                Ok(Some(out))
            }
            Err(StoreError::Conflict) => Ok(None),
            Err(e) => Err(store_error(r, name, e)),
        }
    }

    /// The current stored object, read from the datastore (for writes).
    async fn current(
        &self,
        r: &'static Resource,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<(Value, i64), ApiError> {
        let key = r.key(scoped(r, namespace), name);
        match self.store.read(&key).await {
            Ok(Some(c)) => Ok((c.object, c.mod_revision)),
            Ok(None) => Err(ApiError::not_found(r, name)),
            Err(e) => Err(store_error(r, name, e)),
        }
    }
}
