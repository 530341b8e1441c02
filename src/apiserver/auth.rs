//! Who a request is: the client certificate verified during the TLS
//! handshake, else a bearer join token (k3s's agents authenticate with the
//! cluster token), else a service-account JWT (checked by the API layer). Also the unauthenticated `/cacerts` answer that lets an
//! agent fetch the server CA and check it against its token's hash.

use std::sync::Arc;

use bytes::Bytes;
use http::header::AUTHORIZATION;
use http::HeaderMap;

use crate::pki::{secrets_equal, ClientIdentity, JoinToken};

/// The user a join token authenticates as; RBAC, when it comes, grants the
/// node groups what kubelets need.
pub const AGENT_USER: &str = "nanokube:agent";
pub const AGENT_GROUPS: &[&str] = &["system:nodes", "system:authenticated"];

/// What the server needs to accept join tokens and serve `/cacerts`.
#[derive(Clone, Default)]
pub struct Join {
    /// The cluster secret; `None` accepts no token.
    pub secret: Option<String>,
    /// The server CA certificate file, byte for byte (its hash is in tokens).
    pub ca_pem: Option<Bytes>,
}

impl Join {
    /// The identity of a request without a client certificate: its bearer
    /// token, when that is the join token (full, bare, or `node:<secret>`).
    pub fn identify(&self, headers: &HeaderMap) -> Option<Arc<ClientIdentity>> {
        let secret = self.secret.as_deref()?;
        token_matches(bearer(headers)?, secret).then(|| {
            Arc::new(ClientIdentity {
                user: AGENT_USER.to_string(),
                groups: AGENT_GROUPS.iter().map(|g| g.to_string()).collect(),
            })
        })
    }
}

/// The bearer token of a request, when it sends one.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

impl super::Server {
    /// The identity of a request without a client certificate: the join
    /// token, else a service-account JWT (signed by us, current, for our
    /// audience, naming objects that still exist). Anything else is `None`,
    /// which the caller answers with a bare 401.
    pub(super) async fn authenticate(&self, headers: &HeaderMap) -> Option<Arc<ClientIdentity>> {
        if let Some(id) = self.join.identify(headers) {
            return Some(id);
        }
        let token = bearer(headers)?;
        match self.api.authenticate_token(token, &[]).await {
            Ok(user) => Some(Arc::new(ClientIdentity {
                user: user.username,
                groups: user.groups,
            })),
            Err(e) => {
                tracing::debug!(error = %e, "bearer token refused");
                None
            }
        }
    }
}

/// Every reading of `token` is compared (each in constant time), so a
/// secret that itself holds a colon still matches as a bare token.
fn token_matches(token: &str, secret: &str) -> bool {
    let whole = secrets_equal(token, secret);
    let parsed = JoinToken::parse(token).is_ok_and(|t| secrets_equal(&t.secret, secret));
    // `node:<secret>` and `server:<secret>`, as k3s agents send them.
    let creds = token
        .split_once(':')
        .is_some_and(|(_, s)| secrets_equal(s, secret));
    whole | parsed | creds
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
    fn every_token_form_is_accepted() {
        let join = Join {
            secret: Some("s3cret".into()),
            ca_pem: None,
        };
        let hash = "0f".repeat(32);
        for ok in [
            "Bearer s3cret",
            "bearer node:s3cret",
            "Bearer server:s3cret",
            &format!("Bearer K10{hash}::server:s3cret"),
        ] {
            let id = join.identify(&headers(ok)).expect(ok);
            assert_eq!(id.user, AGENT_USER);
            assert_eq!(id.groups, AGENT_GROUPS);
        }
        for bad in [
            "Bearer wrong",
            "Bearer node:wrong",
            "Basic s3cret",
            "Bearer",
            "Bearer s3cretx",
        ] {
            assert!(join.identify(&headers(bad)).is_none(), "{bad}");
        }
        assert!(join.identify(&HeaderMap::new()).is_none());
    }

    #[test]
    fn no_secret_accepts_nothing() {
        let join = Join::default();
        assert!(join.identify(&headers("Bearer anything")).is_none());
    }
}
