//! Who a request is, first match wins as upstream's union authenticator:
//! the client certificate verified during the TLS handshake (CN, O), else
//! a bearer token — a service-account JWT, the server or agent join token, a
//! `--token-auth-file` token, a bootstrap token (`bootstrap.rs`). Any other credential (`Basic` included) is
//! refused with a bare 401 that never says why. Without a credential the
//! request is `system:anonymous` when `--anonymous-auth` allows it.
//! Impersonation headers then switch the user (`impersonate.rs`).

mod bootstrap;
mod impersonate;
mod join;
pub(super) mod rotate;
mod token_file;

use std::sync::Arc;

use http::header::AUTHORIZATION;
use http::HeaderMap;

use crate::api::authz::UserInfo;
use crate::pki::ClientIdentity;

pub use impersonate::{impersonate, wanted as wants_impersonation, Refused};
pub use join::Join;
pub use token_file::TokenFile;

pub const AUTHENTICATED: &str = "system:authenticated";
pub const UNAUTHENTICATED: &str = "system:unauthenticated";
pub const ANONYMOUS: &str = "system:anonymous";

#[derive(Debug, thiserror::Error)]
pub enum AuthnError {
    #[error("reading the token file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("token file {path}: {reason}")]
    Invalid { path: String, reason: String },
    #[error("the current server token does not match")]
    TokenMismatch,
    #[error("invalid new token: {0}")]
    NewToken(String),
    #[error("rotating the server token: {0}")]
    Rotate(String),
}

/// How the server authenticates requests.
#[derive(Clone, Default)]
pub struct Authn {
    /// The join token and the CA served at `/cacerts`.
    pub join: Join,
    /// `--token-auth-file`.
    pub tokens: TokenFile,
    /// `--anonymous-auth`.
    pub anonymous: bool,
}

/// The result of authentication.
pub enum Outcome {
    User(Arc<UserInfo>),
    /// No credential was sent.
    Nobody,
    /// A credential was sent and authenticates nobody: 401.
    Refused,
}

/// The anonymous user of `--anonymous-auth=true`.
pub fn anonymous() -> Arc<UserInfo> {
    Arc::new(UserInfo {
        name: ANONYMOUS.into(),
        groups: vec![UNAUTHENTICATED.into()],
        ..Default::default()
    })
}

/// Every authenticated user is in `system:authenticated`, as upstream.
fn authenticated(mut user: UserInfo) -> Arc<UserInfo> {
    if !user.groups.iter().any(|g| g == AUTHENTICATED) {
        user.groups.push(AUTHENTICATED.into());
    }
    Arc::new(user)
}

/// The user of a verified client certificate.
pub fn from_certificate(id: &ClientIdentity) -> Arc<UserInfo> {
    authenticated(UserInfo {
        name: id.user.clone(),
        groups: id.groups.clone(),
        ..Default::default()
    })
}

/// The scheme and credential of the Authorization header, when sent.
fn credential(headers: &HeaderMap) -> Option<Result<&str, ()>> {
    let value = headers.get(AUTHORIZATION)?;
    let Ok(value) = value.to_str() else {
        return Some(Err(()));
    };
    let (scheme, token) = value.trim().split_once(' ').unwrap_or((value.trim(), ""));
    let token = token.trim();
    Some(
        if scheme.eq_ignore_ascii_case("bearer") && !token.is_empty() {
            Ok(token)
        } else {
            Err(())
        },
    )
}

impl Authn {
    /// The user of a request without a client certificate.
    pub async fn authenticate(&self, api: &crate::api::Api, headers: &HeaderMap) -> Outcome {
        let token = match credential(headers) {
            None => return Outcome::Nobody,
            Some(Err(())) => return Outcome::Refused,
            Some(Ok(token)) => token,
        };
        // Only a JWT (three dot-separated parts) is worth a signature check.
        if token.split('.').count() == 3 {
            match api.authenticate_token(token, &[]).await {
                Ok(u) => {
                    return Outcome::User(authenticated(UserInfo {
                        name: u.username,
                        uid: u.uid,
                        groups: u.groups,
                        extra: u.extra,
                    }))
                }
                Err(e) => tracing::debug!(error = %e, "service account token refused"),
            }
        }
        if self.join.accepts(token) {
            return Outcome::User(Arc::new(UserInfo {
                name: join::AGENT_USER.into(),
                groups: join::AGENT_GROUPS.iter().map(|g| g.to_string()).collect(),
                ..Default::default()
            }));
        }
        if let Some(u) = self.tokens.user(token) {
            return Outcome::User(authenticated(u.clone()));
        }
        match bootstrap::authenticate(api, token).await {
            Some(u) => Outcome::User(authenticated(u)),
            None => Outcome::Refused,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn only_bearer_credentials_are_read() {
        assert_eq!(credential(&headers("Bearer abc")), Some(Ok("abc")));
        assert_eq!(credential(&headers("bearer  abc ")), Some(Ok("abc")));
        for bad in [
            "Basic YWxpY2U6cHc=",
            "Bearer",
            "Bearer  ",
            "Negotiate x",
            "x",
        ] {
            assert_eq!(credential(&headers(bad)), Some(Err(())), "{bad}");
        }
        assert_eq!(credential(&HeaderMap::new()), None);
    }

    #[test]
    fn certificate_users_are_authenticated() {
        let u = from_certificate(&ClientIdentity {
            user: "admin".into(),
            groups: vec!["system:masters".into()],
        });
        assert_eq!(u.groups, ["system:masters", AUTHENTICATED]);
        assert_eq!(anonymous().groups, [UNAUTHENTICATED]);
    }
}
