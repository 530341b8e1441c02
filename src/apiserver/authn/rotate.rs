//! `POST /nanokube/v1/token/rotate` for `nanokube token rotate`: cluster
//! admins only (group `system:masters`), on top of the authorization every
//! request passes. The body names the current server token and the new
//! one; the server checks the current one, rewrites its token files and
//! from then on accepts only the new token. The body is never audited (the
//! route is answered before request bodies are recorded).

use http::{Method, Response};
use serde::Deserialize;
use serde_json::json;

use super::{AuthnError, Join};
use crate::api::authz::UserInfo;
use crate::api::ApiError;
use crate::apiserver::codec::{self, Body, Output};

const MASTERS: &str = "system:masters";
/// The path `nanokube token rotate` posts to.
pub const ROTATE_PATH: &str = "/nanokube/v1/token/rotate";

/// The request body.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Rotation {
    token: String,
    new_token: String,
}

/// Answers one token request of `user`.
pub(crate) fn handle(
    join: &Join,
    method: &Method,
    op: &str,
    user: &UserInfo,
    body: &[u8],
) -> Result<Response<Body>, ApiError> {
    if op != "rotate" {
        return Err(ApiError::NoRoute);
    }
    if !user.groups.iter().any(|g| g == MASTERS) {
        return Err(ApiError::Forbidden(format!(
            "forbidden: User \"{}\" cannot {} path \"{ROTATE_PATH}\": only group {MASTERS} may",
            user.name,
            method.as_str().to_ascii_lowercase()
        )));
    }
    if method != Method::POST {
        return Err(ApiError::MethodNotAllowed);
    }
    let rotation: Rotation = serde_json::from_slice(body).map_err(|_| {
        ApiError::BadRequest(
            "the body must be a JSON object with \"token\" and \"newToken\"".into(),
        )
    })?;
    join.rotate(&rotation.token, &rotation.new_token)
        .map_err(|e| match e {
            AuthnError::TokenMismatch | AuthnError::NewToken(_) => {
                ApiError::BadRequest(e.to_string())
            }
            other => ApiError::internal(other),
        })?;
    tracing::info!(user = %user.name, "server token rotated");
    Ok(codec::respond(
        200,
        &json!({"kind": "Status", "apiVersion": "v1", "status": "Success",
            "message": "server token rotated"}),
        Output::Json,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn user(groups: &[&str]) -> UserInfo {
        UserInfo {
            name: "u".into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn only_admins_rotate_with_the_current_token() {
        let dir = tempfile::tempdir().unwrap();
        let join = Join::new(
            "old".into(),
            None,
            Bytes::from_static(b"PEM"),
            dir.path().to_path_buf(),
        );
        let admin = user(&[MASTERS]);
        let body = br#"{"token":"old","newToken":"new"}"#;
        let code = |r: Result<Response<Body>, ApiError>| match r {
            Ok(resp) => resp.status().as_u16(),
            Err(e) => e.code(),
        };
        let post = Method::POST;
        assert_eq!(code(handle(&join, &post, "rotate", &user(&[]), body)), 403);
        assert_eq!(
            code(handle(&join, &Method::GET, "rotate", &admin, body)),
            405
        );
        assert_eq!(code(handle(&join, &post, "other", &admin, body)), 404);
        assert_eq!(code(handle(&join, &post, "rotate", &admin, b"{}")), 400);
        let wrong = br#"{"token":"nope","newToken":"new"}"#;
        assert_eq!(code(handle(&join, &post, "rotate", &admin, wrong)), 400);
        assert!(join.accepts("old"));
        assert_eq!(code(handle(&join, &post, "rotate", &admin, body)), 200);
        assert!(join.accepts("new") && !join.accepts("old"));
    }
}
