//! patch: JSON patch, merge patch and strategic merge patch, applied to the
//! current object inside the guarded update loop.

use serde_json::Value;

use crate::api::apply::{self, ApplyError, Target};
use crate::api::error::ApiError;
use crate::api::patch::{self, PatchError, PatchType};
use crate::api::registry::Resource;
use crate::api::validation;
use crate::api::{meta, Api, WriteOptions};

/// The manager of in-process writes, which have no User-Agent.
const IN_PROCESS_MANAGER: &str = "nanokube";

pub(super) fn patch_error(e: PatchError) -> ApiError {
    match e {
        PatchError::Malformed(m) => ApiError::BadRequest(m),
        PatchError::Unprocessable(m) => ApiError::Unprocessable(m),
        PatchError::UnsupportedForType(m) => ApiError::UnsupportedMediaType(m),
    }
}

impl Api {
    #[allow(clippy::too_many_arguments)]
    pub async fn patch(
        &self,
        r: &'static Resource,
        namespace: Option<&str>,
        name: &str,
        patch_type: PatchType,
        body: &[u8],
        subresource: Option<&str>,
        opts: &WriteOptions,
    ) -> Result<Value, ApiError> {
        if !r.has_verb("patch") {
            return Err(ApiError::MethodNotAllowed);
        }
        if opts.force.is_some() {
            return Err(patch_options_invalid(validation::forbidden(
                "force",
                "may not be specified for non-apply patch",
            )));
        }
        if subresource == Some("scale") {
            return self
                .patch_scale(r, namespace, name, patch_type, body, opts)
                .await;
        }
        if subresource == Some("ephemeralcontainers") {
            return self
                .patch_ephemeral_containers(r, namespace, name, patch_type, body, opts)
                .await;
        }
        let definition = r.definition;
        let change = |old: &Value| -> Result<Value, ApiError> {
            let mut new = patch::apply(definition, old, patch_type, body).map_err(patch_error)?;
            super::create::check_type(r, &mut new)?;
            super::check_body(r, &mut new, opts)?;
            // The URL names the object; a patch cannot rename it.
            let m = crate::api::meta::meta_mut(&mut new);
            m.insert("name".into(), name.into());
            match namespace {
                Some(ns) if r.namespaced => m.insert("namespace".into(), ns.into()),
                _ => m.remove("namespace"),
            };
            Ok(new)
        };
        self.guaranteed_update(r, namespace, name, None, opts, change, subresource)
            .await
    }
}

fn patch_options_invalid(cause: validation::FieldCause) -> ApiError {
    ApiError::Invalid {
        group: "meta.k8s.io".into(),
        kind: "PatchOptions.meta.k8s.io".into(),
        name: String::new(),
        causes: vec![cause],
    }
}

fn apply_error(e: ApplyError) -> ApiError {
    match e {
        ApplyError::Conflict { message, causes } => ApiError::ApplyConflict { message, causes },
        ApplyError::BadRequest(m) => ApiError::BadRequest(m),
    }
}

impl Api {
    /// Server-side apply (`application/apply-patch+yaml`): the object with
    /// `body` applied by the request's field manager, and whether it was
    /// created by this request.
    #[allow(clippy::too_many_arguments)]
    pub async fn apply_patch(
        &self,
        r: &'static Resource,
        namespace: Option<&str>,
        name: &str,
        body: &[u8],
        subresource: Option<&str>,
        opts: &WriteOptions,
    ) -> Result<(Value, bool), ApiError> {
        if !r.has_verb("patch") {
            return Err(ApiError::MethodNotAllowed);
        }
        let manager = opts
            .field_manager
            .clone()
            .filter(|m| !m.is_empty())
            .ok_or_else(|| {
                patch_options_invalid(validation::required(
                    "fieldManager",
                    "is required for apply patch",
                ))
            })?;
        let text = std::str::from_utf8(body)
            .map_err(|_| ApiError::BadRequest("error decoding YAML: invalid utf-8".into()))?;
        let mut config: Value = serde_saphyr::from_str(text)
            .map_err(|e| ApiError::BadRequest(format!("error decoding YAML: {e}")))?;
        super::create::check_type(r, &mut config)?;
        super::check_body(r, &mut config, opts)?;
        let body_name = meta::name(&config);
        if !body_name.is_empty() && body_name != name {
            return Err(ApiError::BadRequest(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({name})"
            )));
        }
        let m = meta::meta_mut(&mut config);
        m.insert("name".into(), name.into());
        match namespace {
            Some(ns) if r.namespaced => m.insert("namespace".into(), ns.into()),
            _ => m.remove("namespace"),
        };
        let custom = self.custom_schema(r);
        let api_version = r.api_version();
        let target = Target {
            definition: r.definition,
            custom: custom.as_deref(),
            api_version: &api_version,
            has_status: r.has_status(),
            subresource,
        };
        let force = opts.force.unwrap_or(false);
        let mut applying = opts.clone();
        applying.applying = true;
        let now = meta::now();
        let change = |old: &Value| -> Result<Value, ApiError> {
            apply::apply(&target, Some(old), &config, &manager, force, &now).map_err(apply_error)
        };
        let updated = self
            .guaranteed_update(r, namespace, name, None, &applying, change, subresource)
            .await;
        match updated {
            Err(ApiError::NotFound { .. }) if subresource.is_none() => {
                let obj = apply::apply(&target, None, &config, &manager, force, &now)
                    .map_err(apply_error)?;
                self.create(r, namespace, obj, &applying)
                    .await
                    .map(|v| (v, true))
            }
            other => other.map(|v| (v, false)),
        }
    }

    /// Records this write in the object's managedFields as an Update by
    /// the request's manager (`old` is None for a create).
    pub(super) fn track_fields(
        &self,
        r: &'static Resource,
        subresource: Option<&str>,
        old: Option<&Value>,
        new: &mut Value,
        opts: &WriteOptions,
    ) {
        if opts.applying {
            return;
        }
        let custom = self.custom_schema(r);
        let api_version = r.api_version();
        let target = Target {
            definition: r.definition,
            custom: custom.as_deref(),
            api_version: &api_version,
            has_status: r.has_status(),
            subresource,
        };
        let manager = apply::manager_name(
            opts.field_manager.as_deref(),
            opts.user_agent.as_deref(),
            IN_PROCESS_MANAGER,
        );
        apply::track(&target, old, new, &manager, &meta::now());
    }
}
