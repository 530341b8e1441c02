//! Secrets at rest: the AES-GCM keys under `<data-dir>/server/cred/`, the
//! value transformer the API layer's store applies to Secrets, key
//! rotation, and the `nanokube secrets-encrypt` command.
//!
//! Only values under `/registry/secrets/` are encrypted. Reading accepts
//! every key of the file (and values stored in the clear), so enabling
//! encryption, rotating or disabling it never makes a Secret unreadable.

mod command;
mod config;
mod envelope;
mod rotate;

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use crate::datastore::SqliteBackend;

pub use command::command;
pub use rotate::Status;

/// Where Secrets live in the datastore.
pub const SECRETS_PREFIX: &str = "/registry/secrets/";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("secrets encryption: invalid key file: {0}")]
    Config(String),
    #[error("secrets encryption: {0}")]
    Io(String),
    #[error("secrets encryption: no key for {0}")]
    UnknownKey(String),
    #[error("secrets encryption: stored value does not decrypt with key {0:?}")]
    Decrypt(String),
    #[error("secrets encryption: encrypting failed")]
    Encrypt,
    #[error("secrets encryption: no random bytes from the system: {0}")]
    Random(String),
    #[error("secrets encryption is off: start the server with --secrets-encryption")]
    Disabled,
    #[error("secrets encryption: datastore: {0}")]
    Datastore(String),
    #[error("secrets encryption: {0}")]
    Unfinished(String),
    #[error("secrets encryption: {0}")]
    Remote(String),
}

impl From<crate::datastore::Error> for Error {
    fn from(e: crate::datastore::Error) -> Self {
        Error::Datastore(e.to_string())
    }
}

/// The keys in use: those of the file (the first encrypts when enabled)
/// and those a rotation dropped from it, still read until restart (older
/// revisions in the datastore's history may hold them).
struct KeySet {
    keys: Vec<envelope::Key>,
    retired: Vec<envelope::Key>,
}

/// Secrets encryption of one server.
pub struct Encryption {
    path: PathBuf,
    enabled: bool,
    keys: RwLock<Arc<KeySet>>,
    db: Arc<SqliteBackend>,
    /// One rotation at a time.
    rotating: tokio::sync::Mutex<()>,
}

impl Encryption {
    /// Loads the key file under `server_dir`; with `enabled`, creates it
    /// with a first key when missing. Without `enabled` the keys of an
    /// existing file still decrypt, and new values are stored in the clear.
    pub fn load(
        server_dir: &Path,
        enabled: bool,
        db: Arc<SqliteBackend>,
    ) -> Result<Arc<Encryption>, Error> {
        let path = config::path(server_dir);
        let keys = match config::load(&path)? {
            Some(keys) => keys,
            None if enabled => {
                let keys = vec![envelope::Key::generate(rotate::FIRST_KEY.into())?];
                config::store(&path, &keys)?;
                tracing::info!(path = %path.display(), "created secrets encryption key file");
                keys
            }
            None => Vec::new(),
        };
        if enabled && keys.is_empty() {
            return Err(Error::Config(format!(
                "{}: no aesgcm key to encrypt with",
                path.display()
            )));
        }
        match keys.first() {
            Some(k) if enabled => tracing::info!(active = %k.name, "secrets encryption on"),
            Some(_) => tracing::info!("secrets encryption off; existing keys still decrypt"),
            None => {}
        }
        Ok(Arc::new(Encryption {
            path,
            enabled,
            keys: RwLock::new(Arc::new(KeySet {
                keys,
                retired: Vec::new(),
            })),
            db,
            rotating: tokio::sync::Mutex::new(()),
        }))
    }

    fn current(&self) -> Arc<KeySet> {
        self.keys.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn replace(&self, set: KeySet) {
        *self.keys.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(set);
    }

    /// The value to store under `key`: a Secret's encrypted with the active
    /// key when encryption is on; anything else unchanged.
    pub fn seal(&self, key: &str, value: Vec<u8>) -> Result<Vec<u8>, Error> {
        if !self.enabled || !key.starts_with(SECRETS_PREFIX) {
            return Ok(value);
        }
        match self.current().keys.first() {
            Some(k) => k.seal(key.as_bytes(), &value),
            None => Err(Error::Disabled),
        }
    }

    /// The plain value of what is stored under `key`.
    pub fn unseal<'v>(&self, key: &str, stored: &'v [u8]) -> Result<Cow<'v, [u8]>, Error> {
        if !stored.starts_with(envelope::ENCRYPTED) {
            return Ok(Cow::Borrowed(stored));
        }
        unseal_with(&self.current(), key.as_bytes(), stored).map(|plain| match plain {
            Some(p) => Cow::Owned(p),
            None => Cow::Borrowed(stored),
        })
    }
}

fn unseal_with(set: &KeySet, aad: &[u8], stored: &[u8]) -> Result<Option<Vec<u8>>, Error> {
    match envelope::open(&set.keys, aad, stored) {
        Err(Error::UnknownKey(what)) if !set.retired.is_empty() => {
            envelope::open(&set.retired, aad, stored).map_err(|e| match e {
                Error::UnknownKey(_) => Error::UnknownKey(what),
                other => other,
            })
        }
        other => other,
    }
}
