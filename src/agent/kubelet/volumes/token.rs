//! Service account tokens for projected volumes, from the TokenRequest API
//! (`POST serviceaccounts/<sa>/token`), bound to the pod. Cached per pod,
//! account, audience and lifetime, and refreshed as upstream's token
//! manager does: past 80 % of the lifetime or 24 h, whichever comes first.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::ServiceAccountTokenProjection;
use serde_json::{json, Value};

use super::{PodCtx, VolumeError};
use crate::client::{Client, ClientError, ResourceId};

/// Upstream's default `expirationSeconds` (the API defaults it too).
const DEFAULT_EXPIRATION: i64 = 3600;
/// The shortest lifetime the API accepts.
const MIN_EXPIRATION: i64 = 600;
const MAX_AGE: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    pod_uid: String,
    account: String,
    audience: String,
    expiration: i64,
}

#[derive(Debug, Clone)]
struct Cached {
    token: String,
    issued: Timestamp,
    expires: Timestamp,
}

impl Cached {
    fn needs_refresh(&self, now: Timestamp) -> bool {
        let life = self.expires.duration_since(self.issued);
        let age = now.duration_since(self.issued);
        let Ok(life) = Duration::try_from(life) else {
            return true;
        };
        now >= self.expires
            || age.is_negative()
            || Duration::try_from(age).is_ok_and(|a| a > MAX_AGE || a > life.mul_f64(0.8))
    }
}

#[derive(Debug, Default)]
pub(crate) struct TokenCache {
    tokens: Mutex<HashMap<Key, Cached>>,
}

impl TokenCache {
    pub async fn get<C: Client>(
        &self,
        client: &C,
        ctx: &PodCtx,
        account: &str,
        proj: &ServiceAccountTokenProjection,
    ) -> Result<String, VolumeError> {
        let expiration = proj.expiration_seconds.unwrap_or(DEFAULT_EXPIRATION);
        if expiration < MIN_EXPIRATION {
            return Err(VolumeError::Invalid(format!(
                "expirationSeconds must be at least {MIN_EXPIRATION}, got {expiration}"
            )));
        }
        let key = Key {
            pod_uid: ctx.uid.clone(),
            account: account.to_string(),
            audience: proj.audience.clone().unwrap_or_default(),
            expiration,
        };
        let now = Timestamp::now();
        if let Some(c) = self.lock().get(&key) {
            if !c.needs_refresh(now) {
                return Ok(c.token.clone());
            }
        }
        let fetched = request(client, ctx, &key).await;
        let mut tokens = self.lock();
        match fetched {
            Ok(c) => {
                tracing::debug!(pod = %ctx.name, account, "service account token refreshed");
                let token = c.token.clone();
                tokens.insert(key, c);
                Ok(token)
            }
            // A token still valid keeps serving while the API is unreachable.
            Err(e) => match tokens.get(&key) {
                Some(c) if now < c.expires => {
                    tracing::warn!(pod = %ctx.name, account, error = %e, "token refresh failed; keeping the current token");
                    Ok(c.token.clone())
                }
                _ => Err(e),
            },
        }
    }

    pub fn forget_pod(&self, pod_uid: &str) {
        self.lock().retain(|k, _| k.pod_uid != pod_uid);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Cached>> {
        self.tokens.lock().unwrap_or_else(|p| p.into_inner())
    }
}

async fn request<C: Client>(client: &C, ctx: &PodCtx, key: &Key) -> Result<Cached, VolumeError> {
    let audiences: Vec<&str> = if key.audience.is_empty() {
        vec![]
    } else {
        vec![key.audience.as_str()]
    };
    let body = json!({
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "spec": {
            "audiences": audiences,
            "expirationSeconds": key.expiration,
            "boundObjectRef": {
                "apiVersion": "v1",
                "kind": "Pod",
                "name": ctx.name,
                "uid": ctx.uid,
            },
        },
    });
    let res = ResourceId::new("", "v1", "serviceaccounts");
    let issued = Timestamp::now();
    let answer = client
        .create_subresource(&res, Some(&ctx.namespace), &key.account, "token", body)
        .await
        .map_err(|e| token_error(&key.account, e))?;
    let token = answer
        .pointer("/status/token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            VolumeError::Client(
                "failed to fetch token".into(),
                ClientError::Decode("the TokenRequest answer carries no status.token".into()),
            )
        })?;
    let expires = answer
        .pointer("/status/expirationTimestamp")
        .and_then(Value::as_str)
        .and_then(|t| t.parse::<Timestamp>().ok())
        .unwrap_or_else(|| {
            issued
                .checked_add(jiff::SignedDuration::from_secs(key.expiration))
                .unwrap_or(issued)
        });
    Ok(Cached {
        token: token.to_string(),
        issued,
        expires,
    })
}

/// A server without the TokenRequest API answers "unknown resource" (in
/// process) or 404/405 (over HTTPS): the pod waits until it exists.
fn token_error(account: &str, e: ClientError) -> VolumeError {
    let not_served = matches!(e, ClientError::UnknownResource(_))
        || e.code() == Some(405)
        || (e.is_not_found() && !e.to_string().contains("serviceaccount"));
    if not_served {
        return VolumeError::Waiting(format!(
            "failed to fetch token: the API server does not serve the TokenRequest API \
             (serviceaccounts/{account}/token) yet"
        ));
    }
    if e.is_not_found() {
        return VolumeError::Waiting(format!("failed to fetch token: {e}"));
    }
    VolumeError::Client("failed to fetch token".into(), e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(secs).unwrap()
    }

    #[test]
    fn refresh_rule() {
        let c = Cached {
            token: "t".into(),
            issued: at(1_000_000),
            expires: at(1_000_000 + 3600),
        };
        assert!(!c.needs_refresh(at(1_000_000 + 60)));
        assert!(!c.needs_refresh(at(1_000_000 + 2880)));
        assert!(c.needs_refresh(at(1_000_000 + 2881)));
        assert!(c.needs_refresh(at(1_000_000 + 4000)));
        let long = Cached {
            expires: at(1_000_000 + 365 * 86400),
            ..c.clone()
        };
        assert!(!long.needs_refresh(at(1_000_000 + 86400)));
        assert!(long.needs_refresh(at(1_000_000 + 86401)));
    }

    #[test]
    fn errors_of_a_server_without_the_api() {
        let e = token_error("default", ClientError::UnknownResource("x".into()));
        assert!(matches!(e, VolumeError::Waiting(m) if m.contains("TokenRequest")));
        let gone = ClientError::Api {
            code: 404,
            reason: "NotFound".into(),
            message: "serviceaccounts \"default\" not found".into(),
        };
        let e = token_error("default", gone);
        assert_eq!(
            e.to_string(),
            "failed to fetch token: serviceaccounts \"default\" not found"
        );
    }
}
