//! The service-account signing key (`<tls-dir>/service.key`, ECDSA P-256)
//! and the JWTs it signs and verifies (ES256, compact serialization), as
//! kube-apiserver's token issuer: issuer, audiences, expiry and the
//! `kubernetes.io` private claim. Verification only proves a token is ours
//! and current; whether its objects still exist is the API layer's check.

use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rcgen::{KeyPair, PublicKeyData, PKCS_ECDSA_P256_SHA256};
use ring::rand::SystemRandom;
use ring::signature::{
    EcdsaKeyPair, UnparsedPublicKey, ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING,
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{files, Error};

/// k3s's default `--service-account-issuer`, also the API server's audience.
pub const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";
/// The issuer of legacy, Secret-based tokens (upstream's fixed value).
pub const LEGACY_ISSUER: &str = "kubernetes/serviceaccount";
/// Clock skew tolerated on `exp`, `nbf` and `iat` (upstream's leeway).
const LEEWAY_SECONDS: i64 = 60;
/// Tokens longer than this are refused before any decoding.
const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// Why a bearer token is not a valid service-account JWT. The texts are
/// for logs and TokenReview; HTTP clients only ever see "Unauthorized".
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum JwtError {
    #[error("token is not a jwt")]
    Malformed,
    #[error("token signed with an unexpected algorithm")]
    Algorithm,
    #[error("token signature is invalid")]
    Signature,
    #[error("token issuer is not {ISSUER}")]
    Issuer,
    #[error("token has expired")]
    Expired,
    #[error("token is not valid yet")]
    NotYetValid,
    #[error("token audiences is invalid")]
    Audience,
    #[error("token carries no service account")]
    NotServiceAccount,
}

/// An object a token names: name and uid.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Ref {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub uid: String,
}

/// The `kubernetes.io` private claim.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct KubernetesClaim {
    #[serde(default)]
    pub namespace: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<Ref>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod: Option<Ref>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<Ref>,
    pub serviceaccount: Ref,
}

/// The claims of a token we issue.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    pub aud: Vec<String>,
    pub exp: i64,
    pub iat: i64,
    pub iss: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub jti: String,
    #[serde(rename = "kubernetes.io")]
    pub kubernetes: KubernetesClaim,
    pub nbf: i64,
    pub sub: String,
}

/// The claims of a legacy token (upstream `legacyPrivateClaims`): no
/// audience, no expiry; it lives as long as its Secret holds it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LegacyClaims {
    pub iss: String,
    pub sub: String,
    #[serde(rename = "kubernetes.io/serviceaccount/namespace", default)]
    pub namespace: String,
    #[serde(rename = "kubernetes.io/serviceaccount/secret.name", default)]
    pub secret_name: String,
    #[serde(rename = "kubernetes.io/serviceaccount/service-account.name", default)]
    pub service_account_name: String,
    #[serde(rename = "kubernetes.io/serviceaccount/service-account.uid", default)]
    pub service_account_uid: String,
}

impl LegacyClaims {
    /// The claims for `secret` of account `name` (`uid`) in `namespace`.
    pub fn new(namespace: &str, name: &str, uid: &str, secret: &str) -> Self {
        LegacyClaims {
            iss: LEGACY_ISSUER.to_string(),
            sub: format!("system:serviceaccount:{namespace}:{name}"),
            namespace: namespace.to_string(),
            secret_name: secret.to_string(),
            service_account_name: name.to_string(),
            service_account_uid: uid.to_string(),
        }
    }
}

/// A verified token of either kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verified {
    /// A TokenRequest token and the audiences it shares with the caller.
    Bound(Box<Claims>, Vec<String>),
    /// A legacy Secret-based token; the caller checks its audiences (the
    /// API server's implicit ones, as upstream) and its Secret.
    Legacy(LegacyClaims),
}

/// What a verified token's audience check allows.
fn intersect(token: &[String], wanted: &[String]) -> Vec<String> {
    wanted
        .iter()
        .filter(|a| token.contains(a))
        .cloned()
        .collect()
}

/// The key that signs and verifies service-account tokens.
pub struct ServiceAccountKey {
    pair: EcdsaKeyPair,
    /// The uncompressed public point, what ring verifies with.
    public: Vec<u8>,
    kid: String,
    rng: SystemRandom,
}

impl std::fmt::Debug for ServiceAccountKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccountKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// Loads `<dir>/service.key`, or creates it (mode 0600) on first start.
pub fn ensure_service_account_key(dir: &Path) -> Result<ServiceAccountKey, Error> {
    files::ensure_private_dir(dir)?;
    let path = dir.join("service.key");
    let key = match files::read_optional(&path)? {
        Some(pem) => KeyPair::from_pem(&pem).map_err(|e| Error::Parse {
            path: path.clone(),
            message: format!("invalid private key: {e}"),
        })?,
        None => {
            let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).map_err(|source| {
                Error::Generate {
                    what: "the service account key",
                    source,
                }
            })?;
            files::write_atomic(&path, key.serialize_pem().as_bytes(), 0o600)?;
            tracing::info!(path = %path.display(), "service account signing key created");
            key
        }
    };
    let key =
        ServiceAccountKey::from_key_pair(&key).map_err(|message| Error::Parse { path, message })?;
    tracing::info!(kid = key.kid(), "service account signing key ready");
    Ok(key)
}

impl ServiceAccountKey {
    fn from_key_pair(key: &KeyPair) -> Result<Self, String> {
        if !key.is_compatible(&PKCS_ECDSA_P256_SHA256) {
            return Err("the service account key must be ECDSA P-256".into());
        }
        let rng = SystemRandom::new();
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &key.serialize_der(), &rng)
                .map_err(|e| format!("invalid private key: {e}"))?;
        // Upstream's key id: base64url(sha256(DER of the PKIX public key)).
        let digest = ring::digest::digest(&ring::digest::SHA256, &key.subject_public_key_info());
        Ok(ServiceAccountKey {
            pair,
            public: key.public_key_raw().to_vec(),
            kid: URL_SAFE_NO_PAD.encode(digest.as_ref()),
            rng,
        })
    }

    /// A fresh in-memory key (tests).
    #[cfg(test)]
    pub fn generate() -> Self {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        Self::from_key_pair(&key).unwrap()
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// Signs `claims` into a compact JWS.
    pub fn sign(&self, claims: &Claims) -> Result<String, String> {
        self.sign_json(claims)
    }

    /// Signs a legacy token (upstream `LegacyClaims`, same key as bound
    /// tokens).
    pub fn sign_legacy(&self, claims: &LegacyClaims) -> Result<String, String> {
        self.sign_json(claims)
    }

    fn sign_json<T: Serialize>(&self, claims: &T) -> Result<String, String> {
        let header = serde_json::json!({"alg": "ES256", "kid": self.kid});
        let input = format!("{}.{}", b64_json(&header), b64_json(claims));
        let sig = self
            .pair
            .sign(&self.rng, input.as_bytes())
            .map_err(|e| format!("signing: {e}"))?;
        Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref())))
    }

    /// The claims of `token` when we signed it, it is current at `now`
    /// (unix seconds), and its audiences meet `audiences`; also returns the
    /// audiences both share. Legacy tokens are refused here. (The server
    /// authenticates with `verify_any`; this is the bound-only view.)
    #[cfg(test)]
    pub fn verify(
        &self,
        token: &str,
        now: i64,
        audiences: &[String],
    ) -> Result<(Claims, Vec<String>), JwtError> {
        match self.verify_any(token, now, audiences)? {
            Verified::Bound(claims, shared) => Ok((*claims, shared)),
            Verified::Legacy(_) => Err(JwtError::Issuer),
        }
    }

    /// Either kind of token we signed: a bound one checked as `verify`
    /// does, or a legacy one with complete claims.
    pub fn verify_any(
        &self,
        token: &str,
        now: i64,
        audiences: &[String],
    ) -> Result<Verified, JwtError> {
        let payload = self.signed_payload(token)?;
        let value: Value =
            serde_json::from_slice(&payload).map_err(|_| JwtError::NotServiceAccount)?;
        if value.get("iss").and_then(Value::as_str) == Some(LEGACY_ISSUER) {
            let claims: LegacyClaims =
                serde_json::from_value(value).map_err(|_| JwtError::NotServiceAccount)?;
            check_legacy(&claims)?;
            return Ok(Verified::Legacy(claims));
        }
        let claims: Claims =
            serde_json::from_value(value).map_err(|_| JwtError::NotServiceAccount)?;
        let shared = check_claims(&claims, now, audiences)?;
        Ok(Verified::Bound(Box::new(claims), shared))
    }

    /// The decoded payload of `token` once its ES256 signature checks out.
    fn signed_payload(&self, token: &str) -> Result<Vec<u8>, JwtError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(JwtError::Malformed);
        }
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(JwtError::Malformed);
        };
        let decode = |part: &str| {
            URL_SAFE_NO_PAD
                .decode(part)
                .map_err(|_| JwtError::Malformed)
        };
        let header: Value = serde_json::from_slice(&decode(h)?).map_err(|_| JwtError::Malformed)?;
        if header.get("alg").and_then(Value::as_str) != Some("ES256") {
            return Err(JwtError::Algorithm);
        }
        let signature = decode(s)?;
        let signed = &token[..h.len() + 1 + p.len()];
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &self.public)
            .verify(signed.as_bytes(), &signature)
            .map_err(|_| JwtError::Signature)?;
        decode(p)
    }
}

/// Upstream's legacy validator: every private claim present and the
/// subject naming the same account.
fn check_legacy(claims: &LegacyClaims) -> Result<(), JwtError> {
    let expected = format!(
        "system:serviceaccount:{}:{}",
        claims.namespace, claims.service_account_name
    );
    if claims.namespace.is_empty()
        || claims.secret_name.is_empty()
        || claims.service_account_name.is_empty()
        || claims.service_account_uid.is_empty()
        || claims.sub != expected
    {
        return Err(JwtError::NotServiceAccount);
    }
    Ok(())
}

/// Issuer, time window and audiences, as upstream's validator checks them.
fn check_claims(claims: &Claims, now: i64, audiences: &[String]) -> Result<Vec<String>, JwtError> {
    if claims.iss != ISSUER {
        return Err(JwtError::Issuer);
    }
    if now > claims.exp.saturating_add(LEEWAY_SECONDS) {
        return Err(JwtError::Expired);
    }
    if now < claims.nbf.saturating_sub(LEEWAY_SECONDS)
        || now < claims.iat.saturating_sub(LEEWAY_SECONDS)
    {
        return Err(JwtError::NotYetValid);
    }
    let shared = intersect(&claims.aud, audiences);
    if shared.is_empty() {
        return Err(JwtError::Audience);
    }
    let sa = &claims.kubernetes.serviceaccount;
    let expected = format!(
        "system:serviceaccount:{}:{}",
        claims.kubernetes.namespace, sa.name
    );
    if sa.name.is_empty() || claims.kubernetes.namespace.is_empty() || claims.sub != expected {
        return Err(JwtError::NotServiceAccount);
    }
    Ok(shared)
}

/// base64url of the JSON of `v` (plain structures: serializing cannot fail).
fn b64_json<T: Serialize>(v: &T) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap_or_default())
}

#[cfg(test)]
#[path = "sa_token_tests.rs"]
mod tests;

#[cfg(test)]
mod legacy_tests {
    use super::*;

    #[test]
    fn legacy_tokens_verify_without_expiry_and_bound_verify_refuses_them() {
        let key = ServiceAccountKey::generate();
        let claims = LegacyClaims::new("ns", "bot", "u1", "bot-token");
        let token = key.sign_legacy(&claims).unwrap();
        let aud = vec![ISSUER.to_string()];
        // Far in the future: legacy tokens never expire.
        let got = key.verify_any(&token, i64::MAX / 2, &aud).unwrap();
        assert_eq!(got, Verified::Legacy(claims.clone()));
        assert_eq!(key.verify(&token, 0, &aud), Err(JwtError::Issuer));
        let other = ServiceAccountKey::generate();
        assert_eq!(other.verify_any(&token, 0, &aud), Err(JwtError::Signature));
        let mut bad = claims;
        bad.sub = "system:serviceaccount:ns:other".into();
        let token = key.sign_legacy(&bad).unwrap();
        assert_eq!(
            key.verify_any(&token, 0, &aud),
            Err(JwtError::NotServiceAccount)
        );
    }
}
