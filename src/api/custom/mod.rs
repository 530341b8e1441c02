//! Custom resources: CustomResourceDefinitions turned into served
//! resources, with their schemas (validation, defaulting, pruning) and CEL
//! rules.
//!
//! The door: [`CustomVersion`] (hung on each custom [`Resource`]), the
//! write-path hooks `Api::custom_*`, and [`start`] (the controller that
//! serves what the definitions say).

// Navigation helpers (child, items, list types) serve server-side apply.
#[allow(dead_code)]
mod cel;
mod check;
mod controller;
mod convert;
mod definition;
#[allow(dead_code)]
mod schema;

use std::sync::Arc;

use serde_json::Value;

pub(crate) use cel::{environment as cel_environment, parse as cel_parse};
pub use controller::start;
pub use convert::{by_webhook, convert, storage_api_version};
pub use definition::ScalePaths;

use crate::api::validation::FieldCause;
use crate::api::{Api, ApiError, FieldValidation, Resource, WriteOptions};

/// What a CustomResourceDefinition says of one served version.
pub struct CustomVersion {
    crd_name: String,
    storage_version: String,
    schema: Option<Arc<Value>>,
    structural: Option<schema::Structural>,
    rules: Option<cel::Rules>,
    columns: Value,
    scale: Option<ScalePaths>,
    /// Upstream's OpenAPI definition name, `com.example.v1.Widget`.
    openapi_name: String,
    /// "status", "scale": the served subresources, for the documents.
    subresource_names: Vec<&'static str>,
    /// `spec.conversion.webhook` under strategy Webhook; None converts by
    /// rewriting apiVersion.
    conversion: Option<Arc<Value>>,
}

impl std::fmt::Debug for CustomVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CustomVersion")
            .field("crd", &self.crd_name)
            .field("storage_version", &self.storage_version)
            .finish_non_exhaustive()
    }
}

impl CustomVersion {
    fn new(
        crd_name: &str,
        storage_version: &str,
        schema: Option<Arc<Value>>,
        columns: Value,
        scale: Option<ScalePaths>,
        openapi_name: String,
        subresource_names: Vec<&'static str>,
    ) -> Self {
        // The definition was validated when it was written; a schema that
        // still does not parse (written by an older server, or straight into
        // the datastore) serves without that check rather than not at all,
        // and says so.
        let structural = schema.as_deref().and_then(|s| {
            schema::Structural::parse(s, "openAPIV3Schema")
                .map_err(|causes| {
                    tracing::warn!(crd = crd_name, error = %crate::api::validation::aggregate(&causes), "custom resource schema does not parse; objects are not validated by it");
                })
                .ok()
        });
        let rules = schema
            .as_deref()
            .and_then(|s| {
                cel::Rules::compile(s, "openAPIV3Schema")
                    .map_err(|causes| {
                        tracing::warn!(crd = crd_name, error = %crate::api::validation::aggregate(&causes), "custom resource CEL rules do not compile; they are not checked");
                    })
                    .ok()
            })
            .filter(|r| !r.is_empty());
        CustomVersion {
            crd_name: crd_name.to_string(),
            storage_version: storage_version.to_string(),
            schema,
            structural,
            rules,
            columns,
            scale,
            openapi_name,
            subresource_names,
            conversion: None,
        }
    }

    /// Converts through `webhook` (`spec.conversion.webhook`) when set.
    fn with_conversion(mut self, webhook: Option<Arc<Value>>) -> Self {
        self.conversion = webhook;
        self
    }

    /// `additionalPrinterColumns` as written (an array, or null).
    pub fn printer_columns(&self) -> &Value {
        &self.columns
    }

    /// The version's `openAPIV3Schema`.
    pub fn schema(&'static self) -> Option<&'static Value> {
        self.schema.as_deref()
    }

    pub fn openapi_name(&'static self) -> &'static str {
        &self.openapi_name
    }

    pub fn subresource_names(&'static self) -> &'static [&'static str] {
        &self.subresource_names
    }

    pub fn scale(&self) -> Option<&ScalePaths> {
        self.scale.as_ref()
    }

    /// The apiVersion objects are stored at (`conversion: None` rewrites
    /// only apiVersion between versions).
    fn storage_api_version(&self, r: &Resource) -> String {
        format!("{}/{}", r.group, self.storage_version)
    }
}

/// Stored form of a custom object under `conversion: None`: the storage
/// version's apiVersion (webhook conversion is [`convert`]'s).
pub fn to_storage(r: &Resource, mut obj: Value) -> Value {
    if let (Some(c), Some(m)) = (r.custom, obj.as_object_mut()) {
        m.insert("apiVersion".into(), c.storage_api_version(r).into());
    }
    obj
}

/// Served form of a stored custom object under `conversion: None`: the
/// request's version.
pub fn served(r: &Resource, mut obj: Value) -> Value {
    if let (Some(_), Some(m)) = (r.custom, obj.as_object_mut()) {
        m.insert("apiVersion".into(), r.api_version().into());
    }
    obj
}

/// Drops fields the schema does not declare (upstream's pruning at
/// decoding): refused under `fieldValidation=Strict`, reported under Warn.
pub fn prune(r: &Resource, obj: &mut Value, opts: &WriteOptions) -> Result<(), ApiError> {
    let Some(s) = r.custom.and_then(|c| c.structural.as_ref()) else {
        return Ok(());
    };
    let pruned = s.prune(obj);
    if pruned.is_empty() {
        return Ok(());
    }
    let messages: Vec<String> = pruned
        .iter()
        .map(|p| format!("unknown field \"{p}\""))
        .collect();
    match opts.field_validation {
        // Upstream's decoding error, word for word.
        FieldValidation::Strict => Err(ApiError::BadRequest(format!(
            "{} in version \"{}\" cannot be handled as a {}: strict decoding error: {}",
            r.kind,
            r.version,
            r.kind,
            messages.join(", ")
        ))),
        FieldValidation::Warn => {
            if let Ok(mut w) = opts.warnings.lock() {
                w.extend(messages);
            }
            Ok(())
        }
        FieldValidation::Ignore => Ok(()),
    }
}

/// Schema defaults of a custom object.
pub fn apply_defaults(r: &Resource, obj: &mut Value) {
    if let Some(s) = r.custom.and_then(|c| c.structural.as_ref()) {
        s.apply_defaults(obj);
    }
}

/// Schema and CEL validation of a custom object (`old` on updates).
pub fn validate(r: &Resource, obj: &Value, old: Option<&Value>) -> Vec<FieldCause> {
    let Some(c) = r.custom else {
        return Vec::new();
    };
    let mut causes = c
        .structural
        .as_ref()
        .map(|s| match old {
            // Ratcheting (upstream 1.33): errors in unchanged values stay.
            Some(old) => s.validate_update(obj, old),
            None => s.validate(obj),
        })
        .unwrap_or_default();
    // Upstream runs CEL only on schema-valid objects.
    if causes.is_empty() {
        if let Some(rules) = &c.rules {
            causes.extend(rules.validate(obj, old));
        }
    }
    causes
}

/// Checks a CustomResourceDefinition being written (`old` on updates) and,
/// on create, adds the finalizer that empties its resources on delete.
pub fn check_definition(
    r: &Resource,
    obj: &mut Value,
    old: Option<&Value>,
) -> Result<(), ApiError> {
    if r.storage != controller::STORAGE {
        return Ok(());
    }
    if old.is_none() {
        let mut fins = crate::api::meta::finalizers(obj);
        if !fins.iter().any(|f| f == controller::CLEANUP_FINALIZER) {
            fins.push(controller::CLEANUP_FINALIZER.to_string());
            crate::api::meta::meta_mut(obj).insert("finalizers".into(), fins.into());
        }
    }
    let causes = check::definition(obj, old);
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(r, crate::api::meta::name(obj), causes))
    }
}

impl Api {
    /// The OpenAPI v3 schema (JSONSchemaProps, with the
    /// `x-kubernetes-list-type`/`-list-map-keys`/`-map-type` markers) of a
    /// custom resource's version; None for built-in resources.
    pub(crate) fn custom_schema(&self, r: &Resource) -> Option<Arc<Value>> {
        r.custom.and_then(|c| c.schema.clone())
    }
}
