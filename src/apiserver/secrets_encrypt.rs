//! `GET /nanokube/v1/secrets-encrypt/status` and
//! `POST /nanokube/v1/secrets-encrypt/rotate`, for `nanokube
//! secrets-encrypt`: cluster admins only (group `system:masters`), on top
//! of the authorization every request passes.

use http::{Method, Response};

use super::codec::{self, Body, Output};
use crate::api::authz::UserInfo;
use crate::api::{Api, ApiError};

const MASTERS: &str = "system:masters";

/// Answers one secrets-encrypt request of `user`.
pub(super) async fn handle(
    api: &Api,
    method: &Method,
    op: &str,
    user: &UserInfo,
) -> Result<Response<Body>, ApiError> {
    if !matches!(op, "status" | "rotate") {
        return Err(ApiError::NoRoute);
    }
    if !user.groups.iter().any(|g| g == MASTERS) {
        return Err(ApiError::Forbidden(format!(
            "forbidden: User \"{}\" cannot {} path \"/nanokube/v1/secrets-encrypt/{op}\": only group {MASTERS} may",
            user.name,
            method.as_str().to_ascii_lowercase()
        )));
    }
    let enc = api
        .secrets_encryption()
        .ok_or_else(|| ApiError::internal("secrets encryption is not set up on this server"))?;
    let status = match (op, method) {
        ("status", &Method::GET) => enc.status().await,
        ("rotate", &Method::POST) => enc.rotate().await,
        _ => return Err(ApiError::MethodNotAllowed),
    };
    let status = status.map_err(|e| match e {
        crate::encryption::Error::Disabled => ApiError::BadRequest(e.to_string()),
        other => ApiError::internal(other),
    })?;
    let value = serde_json::to_value(status).map_err(ApiError::internal)?;
    Ok(codec::respond(200, &value, Output::Json))
}
