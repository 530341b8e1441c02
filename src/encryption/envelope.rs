//! The stored form of an encrypted value, as upstream's aesgcm provider
//! writes it: `k8s:enc:aesgcm:v1:<key name>:` + nonce (12 bytes) +
//! ciphertext and tag, with the etcd key as authenticated data (a value
//! copied under another key does not decrypt).

use aes_gcm::aead::{Aead, Generate, KeyInit, Payload};
use aes_gcm::Aes256Gcm;

use super::Error;

/// Every transformer's prefix: values without it were stored in the clear.
pub const ENCRYPTED: &[u8] = b"k8s:enc:";
const AESGCM: &[u8] = b"k8s:enc:aesgcm:v1:";
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// Bytes of a key secret (AES-256).
pub const SECRET_LEN: usize = 32;

/// One named AES-256-GCM key.
pub struct Key {
    pub name: String,
    pub secret: [u8; SECRET_LEN],
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret, not even in a debug log.
        f.debug_struct("Key").field("name", &self.name).finish()
    }
}

impl Key {
    pub fn new(name: String, secret: &[u8]) -> Result<Key, Error> {
        let secret: [u8; SECRET_LEN] = secret.try_into().map_err(|_| {
            Error::Config(format!(
                "key {name:?}: secret must be {SECRET_LEN} bytes (AES-256), found {}",
                secret.len()
            ))
        })?;
        let cipher = Aes256Gcm::new_from_slice(&secret)
            .map_err(|_| Error::Config(format!("key {name:?}: invalid AES-256 key")))?;
        Ok(Key {
            name,
            secret,
            cipher,
        })
    }

    /// A fresh random key.
    pub fn generate(name: String) -> Result<Key, Error> {
        let secret =
            <[u8; SECRET_LEN]>::try_generate().map_err(|e| Error::Random(e.to_string()))?;
        Key::new(name, &secret)
    }

    fn prefix(&self) -> Vec<u8> {
        let mut p = AESGCM.to_vec();
        p.extend_from_slice(self.name.as_bytes());
        p.push(b':');
        p
    }

    /// Encrypts `plain` for the etcd key `aad` with a random nonce.
    pub fn seal(&self, aad: &[u8], plain: &[u8]) -> Result<Vec<u8>, Error> {
        let nonce = aes_gcm::Nonce::try_generate().map_err(|e| Error::Random(e.to_string()))?;
        let sealed = self
            .cipher
            .encrypt(&nonce, Payload { msg: plain, aad })
            .map_err(|_| Error::Encrypt)?;
        let mut out = self.prefix();
        out.reserve(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Decrypts the part of a stored value after this key's prefix.
    fn open(&self, aad: &[u8], body: &[u8]) -> Result<Vec<u8>, Error> {
        if body.len() < NONCE_LEN + TAG_LEN {
            return Err(Error::Decrypt(self.name.clone()));
        }
        let (nonce, sealed) = body.split_at(NONCE_LEN);
        let nonce =
            aes_gcm::Nonce::try_from(nonce).map_err(|_| Error::Decrypt(self.name.clone()))?;
        self.cipher
            .decrypt(&nonce, Payload { msg: sealed, aad })
            .map_err(|_| Error::Decrypt(self.name.clone()))
    }
}

/// Who wrote a stored value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sealer<'k> {
    /// No transformer prefix: stored before encryption was on.
    Plaintext,
    /// One of the known keys.
    Key(&'k str),
    /// A key or provider this server does not have (name as stored,
    /// printable and shortened).
    Unknown(String),
}

/// Which of `keys` sealed `stored`.
pub fn sealer<'k>(keys: &'k [Key], stored: &[u8]) -> Sealer<'k> {
    let Some(rest) = stored.strip_prefix(ENCRYPTED) else {
        return Sealer::Plaintext;
    };
    if let Some(after) = stored.strip_prefix(AESGCM) {
        for k in keys {
            if after
                .strip_prefix(k.name.as_bytes())
                .is_some_and(|r| r.first() == Some(&b':'))
            {
                return Sealer::Key(&k.name);
            }
        }
        return Sealer::Unknown(format!("aesgcm key {}", printable(after)));
    }
    Sealer::Unknown(format!("provider {}", printable(rest)))
}

/// Decrypts `stored` (written under the etcd key `aad`) with whichever of
/// `keys` sealed it; `None` for a value stored in the clear.
pub fn open(keys: &[Key], aad: &[u8], stored: &[u8]) -> Result<Option<Vec<u8>>, Error> {
    match sealer(keys, stored) {
        Sealer::Plaintext => Ok(None),
        Sealer::Unknown(what) => Err(Error::UnknownKey(what)),
        Sealer::Key(name) => {
            let key = keys
                .iter()
                .find(|k| k.name == name)
                .ok_or_else(|| Error::UnknownKey(name.to_string()))?;
            let body = &stored[AESGCM.len() + name.len() + 1..];
            key.open(aad, body).map(Some)
        }
    }
}

/// The name part of a stored prefix, safe to print: up to the next `:`,
/// at most 64 characters, anything odd replaced.
fn printable(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|b| *b == b':').unwrap_or(bytes.len());
    let name: String = bytes[..end.min(64)]
        .iter()
        .map(|b| {
            if b.is_ascii_graphic() {
                *b as char
            } else {
                '?'
            }
        })
        .collect();
    format!("{name:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Vec<Key> {
        vec![
            Key::new("k2".into(), &[2; 32]).unwrap(),
            Key::new("k1".into(), &[1; 32]).unwrap(),
        ]
    }

    #[test]
    fn round_trip_with_the_upstream_prefix_and_fresh_nonces() {
        let ks = keys();
        let a = ks[1]
            .seal(b"/registry/secrets/ns/s", b"{\"data\":1}")
            .unwrap();
        let b = ks[1]
            .seal(b"/registry/secrets/ns/s", b"{\"data\":1}")
            .unwrap();
        assert!(a.starts_with(b"k8s:enc:aesgcm:v1:k1:"));
        assert_ne!(a, b, "a nonce is never reused");
        assert_eq!(a.len(), "k8s:enc:aesgcm:v1:k1:".len() + 12 + 10 + 16);
        let plain = open(&ks, b"/registry/secrets/ns/s", &a).unwrap();
        assert_eq!(plain.as_deref(), Some(&b"{\"data\":1}"[..]));
        assert_eq!(sealer(&ks, &a), Sealer::Key("k1"));
    }

    #[test]
    fn plaintext_passes_and_bad_values_are_errors() {
        let ks = keys();
        assert_eq!(open(&ks, b"k", b"{}").unwrap(), None);
        assert_eq!(sealer(&ks, b"{}"), Sealer::Plaintext);
        let sealed = ks[0].seal(b"/registry/secrets/a/b", b"x").unwrap();
        // Another key's authenticated data: refused.
        assert!(matches!(
            open(&ks, b"/registry/secrets/a/c", &sealed),
            Err(Error::Decrypt(n)) if n == "k2"
        ));
        // A key this server lost.
        let e = open(&ks[1..], b"/registry/secrets/a/b", &sealed).unwrap_err();
        assert_eq!(
            e.to_string(),
            "secrets encryption: no key for aesgcm key \"k2\""
        );
        // Truncated and other providers.
        assert!(open(&ks, b"k", b"k8s:enc:aesgcm:v1:k2:short").is_err());
        let e = open(&ks, b"k", b"k8s:enc:kms:v2:x:\xff").unwrap_err();
        assert!(e.to_string().contains("provider \"kms\""), "{e}");
        // A name that only starts like a known one.
        assert!(matches!(
            sealer(&ks, b"k8s:enc:aesgcm:v1:k22:abc"),
            Sealer::Unknown(_)
        ));
    }

    #[test]
    fn secrets_of_the_wrong_size_are_refused() {
        assert!(Key::new("a".into(), &[0; 16]).is_err());
        assert!(format!("{:?}", keys()[0]).contains("k2"));
        assert!(!format!("{:?}", keys()[0]).contains("[2, 2"));
    }
}
