//! The cluster join token, in k3s's format: `K10<ca-hash>::server:<secret>`,
//! where `<ca-hash>` is the hex SHA-256 of the server CA certificate file's
//! bytes. The hash lets an agent check the CA it downloads from `/cacerts`
//! before trusting the server; the secret authenticates the agent.
//!
//! The server keeps its token in `<data-dir>/server/token` and, as k3s
//! does, the same text in `<data-dir>/server/node-token`.

use std::path::{Path, PathBuf};

use super::{files, Error};

const PREFIX: &str = "K10";
/// Hex digits of a SHA-256.
const HASH_LEN: usize = 64;
/// Random bytes of a generated secret (k3s uses 16, printed as hex).
const SECRET_BYTES: usize = 16;

/// A parsed join token. `ca_hash` is absent for a bare secret.
#[derive(Clone, PartialEq, Eq)]
pub struct JoinToken {
    pub ca_hash: Option<String>,
    pub secret: String,
}

// Never print the secret, not even in debug output.
impl std::fmt::Debug for JoinToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JoinToken")
            .field("ca_hash", &self.ca_hash)
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl JoinToken {
    /// Parses a full `K10<hash>::<user>:<secret>` token, `K10::<user>:<secret>`
    /// or a bare secret, as k3s does (a bare secret is taken whole, colons
    /// included).
    pub fn parse(text: &str) -> Result<JoinToken, Error> {
        let text = text.trim();
        if text.is_empty() {
            return Err(Error::Token("the token is empty".into()));
        }
        let (ca_hash, creds) = match text.strip_prefix(PREFIX) {
            Some(rest) => match rest.split_once("::") {
                Some((hash, creds)) => (hash, creds),
                None => return Err(Error::Token("a K10 token needs `::`".into())),
            },
            None => {
                return Ok(JoinToken {
                    ca_hash: None,
                    secret: text.to_string(),
                })
            }
        };
        if !ca_hash.is_empty()
            && (ca_hash.len() != HASH_LEN || !ca_hash.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            return Err(Error::Token("invalid token CA hash".into()));
        }
        // `user:secret`; the secret may itself hold colons.
        let secret = creds.split_once(':').map_or(creds, |(_, secret)| secret);
        if secret.is_empty() {
            return Err(Error::Token("the token has no secret".into()));
        }
        Ok(JoinToken {
            ca_hash: (!ca_hash.is_empty()).then(|| ca_hash.to_ascii_lowercase()),
            secret: secret.to_string(),
        })
    }

    /// The full token for a CA file's bytes.
    pub fn format(ca_pem: &[u8], secret: &str) -> Result<String, Error> {
        Ok(format!("{PREFIX}{}::server:{secret}", ca_hash(ca_pem)?))
    }
}

/// The lower-case hex SHA-256 of `bytes` (k3s hashes a single-certificate
/// CA file's literal bytes).
pub fn ca_hash(bytes: &[u8]) -> Result<String, Error> {
    Ok(hex(sha256(bytes)?.as_ref()))
}

/// SHA-256 through the process's one crypto provider (ring, via rustls),
/// so no second hash implementation is linked in.
fn sha256(bytes: &[u8]) -> Result<rustls::crypto::hash::Output, Error> {
    let suite = rustls::crypto::ring::cipher_suite::TLS13_AES_128_GCM_SHA256;
    let tls13 = suite
        .tls13()
        .ok_or_else(|| Error::Token("no sha-256 provider".into()))?;
    Ok(tls13.common.hash_provider.hash(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether two secrets are equal, in time independent of where they
/// differ: both are hashed first, so lengths leak nothing either.
pub fn secrets_equal(a: &str, b: &str) -> bool {
    let (Ok(x), Ok(y)) = (sha256(a.as_bytes()), sha256(b.as_bytes())) else {
        return false;
    };
    let diff = x
        .as_ref()
        .iter()
        .zip(y.as_ref())
        .fold(0u8, |acc, (p, q)| acc | (p ^ q));
    diff == 0 && x.as_ref().len() == y.as_ref().len()
}

fn random_secret() -> Result<String, Error> {
    let mut buf = [0u8; SECRET_BYTES];
    super::tls::provider()
        .secure_random
        .fill(&mut buf)
        .map_err(|_| Error::Token("no randomness for the token secret".into()))?;
    Ok(hex(&buf))
}

/// The server's token files and secret.
#[derive(Clone)]
pub struct ServerToken {
    pub path: PathBuf,
    pub secret: String,
}

/// `<server-dir>/token`.
pub fn token_path(server_dir: &Path) -> PathBuf {
    server_dir.join("token")
}

/// Creates or reuses the server token. `given` (`--token`, full or bare)
/// wins over the stored one; without either a random secret is made. Both
/// files are (re)written when their text is not the token for today's CA.
pub fn ensure_server_token(
    server_dir: &Path,
    ca_cert: &Path,
    given: Option<&str>,
) -> Result<ServerToken, Error> {
    let path = token_path(server_dir);
    let node_path = server_dir.join("node-token");
    let ca_pem = files::read(ca_cert)?;
    let stored = files::read_optional(&path)?;
    let secret = match (given, &stored) {
        (Some(text), _) => {
            let token = JoinToken::parse(text)?;
            let ours = ca_hash(ca_pem.as_bytes())?;
            if token.ca_hash.as_ref().is_some_and(|h| *h != ours) {
                // A token copied from another cluster: only its secret counts.
                tracing::warn!(
                    "the CA hash of --token does not match this server's CA; using its secret only"
                );
            }
            token.secret
        }
        (None, Some(text)) => {
            JoinToken::parse(text)
                .map_err(|e| Error::Parse {
                    path: path.clone(),
                    message: e.to_string(),
                })?
                .secret
        }
        (None, None) => random_secret()?,
    };
    let text = JoinToken::format(ca_pem.as_bytes(), &secret)? + "\n";
    for p in [&path, &node_path] {
        let current = files::read_optional(p)?;
        if current.as_deref() != Some(text.as_str()) {
            files::write_atomic(p, text.as_bytes(), files::KEY_MODE)?;
        }
    }
    Ok(ServerToken { path, secret })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        let hash = "ab".repeat(32);
        let full = JoinToken::parse(&format!("K10{hash}::server:s3cret")).unwrap();
        assert_eq!(full.ca_hash.as_deref(), Some(hash.as_str()));
        assert_eq!(full.secret, "s3cret");
        for text in ["s3cret", "K10::server:s3cret", "K10::s3cret", " s3cret\n"] {
            let t = JoinToken::parse(text).unwrap();
            assert_eq!((t.ca_hash, t.secret.as_str()), (None, "s3cret"), "{text}");
        }
        assert_eq!(JoinToken::parse("a:b").unwrap().secret, "a:b");
        for bad in ["", "K10abc::server:x", "K10nocolons", "K10::node:"] {
            assert!(JoinToken::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sha256_matches_known_vector() {
        assert_eq!(
            ca_hash(b"abc").unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn secrets_compare() {
        assert!(secrets_equal("a", "a"));
        assert!(!secrets_equal("a", "b"));
        assert!(!secrets_equal("a", "aa"));
    }

    #[test]
    fn server_token_is_created_kept_and_overridden() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.crt");
        std::fs::write(&ca, "PEM").unwrap();
        let first = ensure_server_token(dir.path(), &ca, None).unwrap();
        assert_eq!(first.secret.len(), 2 * SECRET_BYTES);
        let text = std::fs::read_to_string(&first.path).unwrap();
        assert_eq!(
            text.trim(),
            format!("K10{}::server:{}", ca_hash(b"PEM").unwrap(), first.secret)
        );
        let mode = std::fs::metadata(&first.path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let node = std::fs::read_to_string(dir.path().join("node-token")).unwrap();
        assert_eq!(node, text);
        let again = ensure_server_token(dir.path(), &ca, None).unwrap();
        assert_eq!(again.secret, first.secret);
        let given = ensure_server_token(dir.path(), &ca, Some("mine")).unwrap();
        assert_eq!(given.secret, "mine");
        assert!(std::fs::read_to_string(&first.path)
            .unwrap()
            .ends_with("::server:mine\n"));
    }
}
