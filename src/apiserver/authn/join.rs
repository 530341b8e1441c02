//! The cluster join tokens as bearer credentials (k3s's agents
//! authenticate with them), the CA served at the unauthenticated
//! `/cacerts` that lets an agent check the server against its token's hash,
//! and the rotation of the server token (`nanokube token rotate`).

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use bytes::Bytes;

use super::AuthnError;
use crate::pki::{secrets_equal, JoinToken};

/// The user a join token authenticates as; RBAC grants it what agents need.
/// The server token and the agent token both authenticate as this user.
pub const AGENT_USER: &str = "nanokube:agent";
pub const AGENT_GROUPS: &[&str] = &["system:nodes", "system:authenticated"];

/// What the server needs to accept join tokens and serve `/cacerts`.
/// Clones share the secrets, so a rotation is seen by every clone.
#[derive(Clone, Default)]
pub struct Join {
    secrets: Arc<RwLock<Secrets>>,
    /// The server CA certificate file, byte for byte (its hash is in tokens).
    pub ca_pem: Option<Bytes>,
    /// `<data-dir>/server`, where rotation rewrites the token files.
    server_dir: Option<PathBuf>,
}

#[derive(Default)]
struct Secrets {
    server: Option<String>,
    agent: Option<String>,
}

impl Join {
    /// Accepts the server token `server` and, when set, the agent token.
    pub fn new(server: String, agent: Option<String>, ca_pem: Bytes, server_dir: PathBuf) -> Join {
        Join {
            secrets: Arc::new(RwLock::new(Secrets {
                server: Some(server),
                agent,
            })),
            ca_pem: Some(ca_pem),
            server_dir: Some(server_dir),
        }
    }

    /// Whether a bearer token is the server or the agent token (full,
    /// bare, or `node:<secret>`).
    pub fn accepts(&self, token: &str) -> bool {
        let Ok(secrets) = self.secrets.read() else {
            return false;
        };
        // Both are compared, so timing does not tell which one matched.
        let server = secrets
            .server
            .as_deref()
            .is_some_and(|s| token_matches(token, s));
        let agent = secrets
            .agent
            .as_deref()
            .is_some_and(|s| token_matches(token, s));
        server | agent
    }

    /// Replaces the server token when `current` is it: the token files
    /// first (a failed write changes nothing), then what is accepted.
    pub fn rotate(&self, current: &str, new: &str) -> Result<(), AuthnError> {
        let (Some(ca_pem), Some(dir)) = (&self.ca_pem, &self.server_dir) else {
            return Err(AuthnError::Rotate("this server has no join token".into()));
        };
        let new = JoinToken::parse(new).map_err(|e| AuthnError::NewToken(e.to_string()))?;
        let ours = crate::pki::ca_hash(ca_pem).map_err(|e| AuthnError::Rotate(e.to_string()))?;
        if new.ca_hash.as_ref().is_some_and(|h| *h != ours) {
            return Err(AuthnError::NewToken(
                "its CA hash is not this server's CA".into(),
            ));
        }
        // Held across the check and the swap: two rotations cannot interleave.
        let mut secrets = self
            .secrets
            .write()
            .map_err(|_| AuthnError::Rotate("the token lock is poisoned".into()))?;
        let matches = secrets
            .server
            .as_deref()
            .is_some_and(|s| token_matches(current, s));
        if !matches {
            return Err(AuthnError::TokenMismatch);
        }
        crate::pki::write_rotated_server_token(dir, ca_pem, &new.secret, secrets.agent.as_deref())
            .map_err(|e| AuthnError::Rotate(e.to_string()))?;
        secrets.server = Some(new.secret);
        Ok(())
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

    fn join(dir: &std::path::Path, agent: Option<&str>) -> Join {
        Join::new(
            "s3cret".into(),
            agent.map(str::to_string),
            Bytes::from_static(b"PEM"),
            dir.to_path_buf(),
        )
    }

    #[test]
    fn every_token_form_is_accepted() {
        let dir = tempfile::tempdir().unwrap();
        let join = join(dir.path(), Some("ag"));
        let hash = "0f".repeat(32);
        for ok in [
            "s3cret",
            "node:s3cret",
            "server:s3cret",
            &format!("K10{hash}::server:s3cret"),
            "ag",
            &format!("K10{hash}::node:ag"),
        ] {
            assert!(join.accepts(ok), "{ok}");
        }
        for bad in ["wrong", "node:wrong", "", "s3cretx", "agx"] {
            assert!(!join.accepts(bad), "{bad}");
        }
    }

    #[test]
    fn no_secret_accepts_nothing() {
        assert!(!Join::default().accepts("anything"));
        assert!(Join::default().rotate("a", "b").is_err());
    }

    #[test]
    fn rotation_needs_the_current_token_and_swaps_it() {
        let dir = tempfile::tempdir().unwrap();
        let join = join(dir.path(), None);
        let shared = join.clone();
        assert!(matches!(
            join.rotate("wrong", "next"),
            Err(AuthnError::TokenMismatch)
        ));
        let other_ca = format!("K10{}::server:next", "ab".repeat(32));
        assert!(matches!(
            join.rotate("s3cret", &other_ca),
            Err(AuthnError::NewToken(_))
        ));
        assert!(matches!(
            join.rotate("s3cret", ""),
            Err(AuthnError::NewToken(_))
        ));
        assert!(shared.accepts("s3cret"));
        join.rotate("node:s3cret", "next").unwrap();
        assert!(!shared.accepts("s3cret"));
        assert!(shared.accepts("next"));
        let hash = crate::pki::ca_hash(b"PEM").unwrap();
        for file in ["token", "node-token"] {
            let text = std::fs::read_to_string(dir.path().join(file)).unwrap();
            assert_eq!(text, format!("K10{hash}::server:next\n"), "{file}");
        }
    }
}
