//! patch: JSON patch, merge patch and strategic merge patch, applied to the
//! current object inside the guarded update loop.

use serde_json::Value;

use crate::api::error::ApiError;
use crate::api::patch::{self, PatchError, PatchType};
use crate::api::registry::Resource;
use crate::api::{Api, WriteOptions};

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
        if subresource == Some("scale") {
            return self
                .patch_scale(r, namespace, name, patch_type, body, opts)
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
