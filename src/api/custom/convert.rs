//! Custom objects across versions: `conversion: None` rewrites apiVersion
//! in place; `conversion: Webhook` sends the objects not yet at the wanted
//! version to the CRD's webhook, all in one ConversionReview (a list page
//! is one call, as upstream batches).

use serde_json::Value;

use crate::api::{Api, ApiError, Resource};

/// Whether `r`'s objects cross versions through a conversion webhook
/// (reads and writes then await a call; the None strategy never does).
pub fn by_webhook(r: &Resource) -> bool {
    r.custom.is_some_and(|c| c.conversion.is_some())
}

/// The apiVersion `r`'s objects are stored at.
pub fn storage_api_version(r: &Resource) -> String {
    match r.custom {
        Some(c) => c.storage_api_version(r),
        None => r.api_version(),
    }
}

/// `objects` of the custom resource `r` at `api_version` (the storage
/// version or one `r`'s definition serves). A webhook failure is upstream's
/// 500 without a reason: `conversion webhook for <gvk> failed: <cause>`.
pub async fn convert(
    api: &Api,
    r: &Resource,
    mut objects: Vec<Value>,
    api_version: &str,
) -> Result<Vec<Value>, ApiError> {
    let Some(webhook) = r.custom.and_then(|c| c.conversion.as_deref()) else {
        for obj in &mut objects {
            if let (Some(_), Some(m)) = (r.custom, obj.as_object_mut()) {
                m.insert("apiVersion".into(), api_version.into());
            }
        }
        return Ok(objects);
    };
    crate::api::admission::convert(api, webhook, objects, api_version)
        .await
        .map_err(|e| {
            tracing::warn!(resource = r.plural, error = %e, "conversion webhook");
            ApiError::Unknown(e.to_string())
        })
}
