//! The cluster join token, in k3s's format: `K10<ca-hash>::server:<secret>`,
//! where `<ca-hash>` is the hex SHA-256 of the server CA certificate file's
//! bytes. The hash lets an agent check the CA it downloads from `/cacerts`
//! before trusting the server; the secret authenticates the agent.
//!
//! The server keeps its token in `<data-dir>/server/token`; an agent token
//! (`K10<ca-hash>::node:<secret>`, `--agent-token`) in `agent-token`; and,
//! as k3s does, what agents join with in `node-token`: the agent token when
//! there is one, else the server token.
//!
//! Bootstrap tokens (`<id>.<secret>`, kubeadm's format) ride in a join token
//! as its credentials: `K10<ca-hash>::<id>.<secret>`.

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

    /// The full server token for a CA file's bytes.
    pub fn format(ca_pem: &[u8], secret: &str) -> Result<String, Error> {
        Self::format_credentials(ca_pem, &format!("server:{secret}"))
    }

    /// `K10<ca-hash>::<credentials>`: `node:<secret>` for the agent token,
    /// `<id>.<secret>` for a bootstrap token.
    pub fn format_credentials(ca_pem: &[u8], credentials: &str) -> Result<String, Error> {
        Ok(format!("{PREFIX}{}::{credentials}", ca_hash(ca_pem)?))
    }
}

/// kubeadm's bootstrap token: `[a-z0-9]{6}.[a-z0-9]{16}`.
#[derive(Clone, PartialEq, Eq)]
pub struct BootstrapToken {
    pub id: String,
    pub secret: String,
}

impl std::fmt::Debug for BootstrapToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BootstrapToken")
            .field("id", &self.id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

const BOOTSTRAP_ID_LEN: usize = 6;
const BOOTSTRAP_SECRET_LEN: usize = 16;
const BOOTSTRAP_ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

fn bootstrap_chars(text: &str, len: usize) -> bool {
    text.len() == len && text.bytes().all(|b| BOOTSTRAP_ALPHABET.contains(&b))
}

impl BootstrapToken {
    /// `<id>.<secret>` exactly (no surrounding space, lower case only).
    pub fn parse(text: &str) -> Option<BootstrapToken> {
        let (id, secret) = text.split_once('.')?;
        (bootstrap_chars(id, BOOTSTRAP_ID_LEN) && bootstrap_chars(secret, BOOTSTRAP_SECRET_LEN))
            .then(|| BootstrapToken {
                id: id.to_string(),
                secret: secret.to_string(),
            })
    }

    /// Whether `id` is a well-formed token id.
    pub fn valid_id(id: &str) -> bool {
        bootstrap_chars(id, BOOTSTRAP_ID_LEN)
    }

    /// A new random token.
    pub fn random() -> Result<BootstrapToken, Error> {
        Ok(BootstrapToken {
            id: random_chars(BOOTSTRAP_ID_LEN)?,
            secret: random_chars(BOOTSTRAP_SECRET_LEN)?,
        })
    }

    /// `<id>.<secret>`, the bearer credential.
    pub fn text(&self) -> String {
        format!("{}.{}", self.id, self.secret)
    }
}

/// `len` characters of the bootstrap alphabet, uniformly: bytes past the
/// largest multiple of 36 are drawn again.
fn random_chars(len: usize) -> Result<String, Error> {
    let limit = 256 - 256 % BOOTSTRAP_ALPHABET.len();
    let mut out = String::with_capacity(len);
    while out.len() < len {
        let mut buf = [0u8; 32];
        super::tls::provider()
            .secure_random
            .fill(&mut buf)
            .map_err(|_| Error::Token("no randomness for the token".into()))?;
        for b in buf.iter().map(|b| usize::from(*b)).filter(|b| *b < limit) {
            if out.len() < len {
                out.push(char::from(BOOTSTRAP_ALPHABET[b % BOOTSTRAP_ALPHABET.len()]));
            }
        }
    }
    Ok(out)
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

/// A new random secret for a server or agent token (32 hex digits).
pub fn random_secret() -> Result<String, Error> {
    let mut buf = [0u8; SECRET_BYTES];
    super::tls::provider()
        .secure_random
        .fill(&mut buf)
        .map_err(|_| Error::Token("no randomness for the token secret".into()))?;
    Ok(hex(&buf))
}

/// The server's token file and secret.
#[derive(Clone)]
pub struct ServerToken {
    pub path: PathBuf,
    pub secret: String,
}

/// `<server-dir>/token`.
pub fn token_path(server_dir: &Path) -> PathBuf {
    server_dir.join("token")
}

fn agent_token_path(server_dir: &Path) -> PathBuf {
    server_dir.join("agent-token")
}

fn node_token_path(server_dir: &Path) -> PathBuf {
    server_dir.join("node-token")
}

/// The token in a `--token-file` / `--agent-token-file` (surrounding
/// white space dropped).
pub fn read_token_file(path: &Path) -> Result<String, Error> {
    let text = files::read(path)?;
    let text = text.trim();
    if text.is_empty() {
        return Err(Error::Parse {
            path: path.to_path_buf(),
            message: "the token file is empty".into(),
        });
    }
    Ok(text.to_string())
}

/// The secret of `given` (full or bare), or of the token stored at `path`.
fn given_or_stored(
    given: Option<&str>,
    path: &Path,
    ca_pem: &str,
) -> Result<Option<String>, Error> {
    if let Some(text) = given {
        let token = JoinToken::parse(text)?;
        let ours = ca_hash(ca_pem.as_bytes())?;
        if token.ca_hash.as_ref().is_some_and(|h| *h != ours) {
            // A token copied from another cluster: only its secret counts.
            tracing::warn!(
                path = %path.display(),
                "the CA hash of the given token does not match this server's CA; using its secret only"
            );
        }
        return Ok(Some(token.secret));
    }
    match files::read_optional(path)? {
        Some(text) => JoinToken::parse(&text)
            .map(|t| Some(t.secret))
            .map_err(|e| Error::Parse {
                path: path.to_path_buf(),
                message: e.to_string(),
            }),
        None => Ok(None),
    }
}

/// Writes `text` (plus a newline) unless the file already holds it.
fn write_if_changed(path: &Path, text: &str) -> Result<(), Error> {
    let text = format!("{text}\n");
    if files::read_optional(path)?.as_deref() != Some(text.as_str()) {
        files::write_atomic(path, text.as_bytes(), files::KEY_MODE)?;
    }
    Ok(())
}

/// Creates or reuses the server token. `given` (`--token`, full or bare)
/// wins over the stored one; without either a random secret is made. The
/// file is (re)written when its text is not the token for today's CA.
pub fn ensure_server_token(
    server_dir: &Path,
    ca_cert: &Path,
    given: Option<&str>,
) -> Result<ServerToken, Error> {
    let path = token_path(server_dir);
    let ca_pem = files::read(ca_cert)?;
    let secret = match given_or_stored(given, &path, &ca_pem)? {
        Some(secret) => secret,
        None => random_secret()?,
    };
    write_if_changed(&path, &JoinToken::format(ca_pem.as_bytes(), &secret)?)?;
    Ok(ServerToken { path, secret })
}

/// The agent token's secret when there is one (`given`, else the stored
/// `agent-token`), and `node-token`: the agent token, else the server's.
pub fn ensure_agent_token(
    server_dir: &Path,
    ca_cert: &Path,
    given: Option<&str>,
    server_secret: &str,
) -> Result<Option<String>, Error> {
    let path = agent_token_path(server_dir);
    let ca_pem = files::read(ca_cert)?;
    let secret = given_or_stored(given, &path, &ca_pem)?;
    if let Some(secret) = &secret {
        let text = JoinToken::format_credentials(ca_pem.as_bytes(), &format!("node:{secret}"))?;
        write_if_changed(&path, &text)?;
    }
    write_node_token(
        server_dir,
        ca_pem.as_bytes(),
        server_secret,
        secret.as_deref(),
    )?;
    Ok(secret)
}

fn write_node_token(
    server_dir: &Path,
    ca_pem: &[u8],
    server_secret: &str,
    agent_secret: Option<&str>,
) -> Result<(), Error> {
    let text = match agent_secret {
        Some(agent) => JoinToken::format_credentials(ca_pem, &format!("node:{agent}"))?,
        None => JoinToken::format(ca_pem, server_secret)?,
    };
    write_if_changed(&node_token_path(server_dir), &text)
}

/// After a rotation: `token` (and `node-token` unless an agent token is
/// what agents join with) hold the new server secret.
pub fn write_rotated_server_token(
    server_dir: &Path,
    ca_pem: &[u8],
    secret: &str,
    agent_secret: Option<&str>,
) -> Result<(), Error> {
    write_if_changed(&token_path(server_dir), &JoinToken::format(ca_pem, secret)?)?;
    write_node_token(server_dir, ca_pem, secret, agent_secret)
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
        let again = ensure_server_token(dir.path(), &ca, None).unwrap();
        assert_eq!(again.secret, first.secret);
        let given = ensure_server_token(dir.path(), &ca, Some("mine")).unwrap();
        assert_eq!(given.secret, "mine");
        assert!(std::fs::read_to_string(&first.path)
            .unwrap()
            .ends_with("::server:mine\n"));
    }

    #[test]
    fn node_token_follows_the_agent_token() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.crt");
        std::fs::write(&ca, "PEM").unwrap();
        let hash = ca_hash(b"PEM").unwrap();
        let read = |name: &str| std::fs::read_to_string(dir.path().join(name)).unwrap();
        let server = ensure_server_token(dir.path(), &ca, Some("srv")).unwrap();
        assert_eq!(
            ensure_agent_token(dir.path(), &ca, None, &server.secret).unwrap(),
            None
        );
        assert_eq!(read("node-token"), format!("K10{hash}::server:srv\n"));
        assert!(!dir.path().join("agent-token").exists());
        let agent = ensure_agent_token(dir.path(), &ca, Some("K10::node:ag"), "srv").unwrap();
        assert_eq!(agent.as_deref(), Some("ag"));
        assert_eq!(read("agent-token"), format!("K10{hash}::node:ag\n"));
        assert_eq!(read("node-token"), read("agent-token"));
        // Kept without the flag on the next start.
        let again = ensure_agent_token(dir.path(), &ca, None, "srv").unwrap();
        assert_eq!(again.as_deref(), Some("ag"));
        write_rotated_server_token(dir.path(), b"PEM", "new", Some("ag")).unwrap();
        assert_eq!(read("token"), format!("K10{hash}::server:new\n"));
        assert_eq!(read("node-token"), read("agent-token"));
        write_rotated_server_token(dir.path(), b"PEM", "newer", None).unwrap();
        assert_eq!(read("node-token"), format!("K10{hash}::server:newer\n"));
    }

    #[test]
    fn bootstrap_tokens_parse_and_generate() {
        let t = BootstrapToken::parse("abcdef.0123456789abcdef").unwrap();
        assert_eq!(
            (t.id.as_str(), t.secret.as_str()),
            ("abcdef", "0123456789abcdef")
        );
        assert_eq!(t.text(), "abcdef.0123456789abcdef");
        for bad in [
            "",
            "abcdef",
            "abcde.0123456789abcdef",
            "ABCDEF.0123456789abcdef",
            "abcdef.0123456789abcde",
            "abcdef.0123456789abcdef0",
            "abcdef:0123456789abcdef",
            " abcdef.0123456789abcdef",
            "abcdef.0123456789abcdeé",
        ] {
            assert!(BootstrapToken::parse(bad).is_none(), "{bad}");
        }
        let r = BootstrapToken::random().unwrap();
        assert!(BootstrapToken::parse(&r.text()).is_some(), "{r:?}");
        assert_ne!(r, BootstrapToken::random().unwrap());
        assert!(!format!("{r:?}").contains(&r.secret));
        // A join token carries one as its credentials.
        let join = JoinToken::format_credentials(b"PEM", "abcdef.0123456789abcdef").unwrap();
        let parsed = JoinToken::parse(&join).unwrap();
        assert_eq!(parsed.secret, "abcdef.0123456789abcdef");
        assert_eq!(parsed.ca_hash, Some(ca_hash(b"PEM").unwrap()));
    }
}
