//! The token cleaner (upstream's tokencleaner): deletes bootstrap-token
//! Secrets in kube-system once their `expiration` has passed, waking
//! exactly at expiry. An unparseable expiration counts as passed, as
//! upstream. The deletion is pinned to the Secret's uid, so a token
//! re-created under the same name is left alone.

use std::sync::Arc;
use std::time::SystemTime;

use serde_json::Value;

use super::objects::{self, is_deleting};
use super::runtime::{self, Action, Change, ObjectKey, Reconciler, WorkQueue};
use super::{Ctx, Error};
use crate::client::{Client, DeleteOptions, Local, ResourceId};
use crate::tokens::secret::{expiration, is_bootstrap_secret, NAMESPACE};

pub fn start(ctx: &Ctx) {
    let queue = WorkQueue::new();
    {
        let q = Arc::clone(&queue);
        runtime::watch(ctx.client.clone(), secrets(), None, move |change, s| {
            if change != Change::Deleted && is_token(s) {
                q.add(ObjectKey::new(NAMESPACE, objects::name(s)));
            }
        });
    }
    let reconciler = Arc::new(TokenCleaner {
        client: ctx.client.clone(),
    });
    runtime::run("bootstrap-token-cleaner", queue, reconciler, 1);
}

fn secrets() -> ResourceId {
    ResourceId::new("", "v1", "secrets")
}

fn is_token(s: &Value) -> bool {
    objects::namespace(s) == NAMESPACE && is_bootstrap_secret(s) && !is_deleting(s)
}

/// What to do with a token Secret at `now`: delete it, look again at its
/// expiry, or nothing (no expiration).
fn decide(s: &Value, now: SystemTime) -> Decision {
    match expiration(s) {
        Ok(None) => Decision::Keep,
        Ok(Some(at)) => match at.duration_since(now) {
            Ok(left) if !left.is_zero() => Decision::Wait(left),
            // At expiry it is not yet expired (upstream: strictly after).
            Ok(_) => Decision::Wait(std::time::Duration::from_secs(1)),
            Err(_) => Decision::Delete,
        },
        Err(()) => Decision::Delete,
    }
}

#[derive(Debug, PartialEq)]
enum Decision {
    Keep,
    Wait(std::time::Duration),
    Delete,
}

struct TokenCleaner {
    client: Local,
}

impl Reconciler for TokenCleaner {
    async fn reconcile(&self, key: &ObjectKey) -> Result<Action, Error> {
        let s = match self.client.get(&secrets(), key.ns(), &key.name).await {
            Ok(s) => s,
            Err(e) if e.is_not_found() => return Ok(Action::Done),
            Err(e) => return Err(e.into()),
        };
        if !is_token(&s) {
            return Ok(Action::Done);
        }
        match decide(&s, SystemTime::now()) {
            Decision::Keep => Ok(Action::Done),
            Decision::Wait(left) => Ok(Action::RequeueAfter(left)),
            Decision::Delete => {
                let opts = DeleteOptions {
                    precondition_uid: Some(objects::uid(&s).to_string()),
                    ..Default::default()
                };
                match self
                    .client
                    .delete(&secrets(), key.ns(), &key.name, &opts)
                    .await
                {
                    Ok(()) => {
                        tracing::info!(secret = %key, "deleted expired bootstrap token");
                        Ok(Action::Done)
                    }
                    Err(e) if e.is_not_found() || e.is_conflict() => Ok(Action::Done),
                    Err(e) => Err(e.into()),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;
    use serde_json::json;
    use std::time::Duration;

    fn token(expiration: Option<&str>) -> Value {
        let mut s = json!({"metadata": {"name": "bootstrap-token-abcdef", "namespace": NAMESPACE},
            "type": "bootstrap.kubernetes.io/token", "data": {}});
        if let Some(e) = expiration {
            s["data"]["expiration"] = json!(STANDARD.encode(e));
        }
        s
    }

    #[test]
    fn expired_tokens_go_and_others_wait() {
        let at = objects::parse_time("2030-01-01T00:00:00Z").unwrap();
        let s = token(Some("2030-01-01T00:00:00Z"));
        let before = at - Duration::from_secs(30);
        assert_eq!(decide(&s, before), Decision::Wait(Duration::from_secs(30)));
        assert_eq!(decide(&s, at), Decision::Wait(Duration::from_secs(1)));
        assert_eq!(decide(&s, at + Duration::from_secs(1)), Decision::Delete);
        assert_eq!(decide(&token(None), at), Decision::Keep);
        assert_eq!(decide(&token(Some("soon")), at), Decision::Delete);
    }

    #[test]
    fn only_token_secrets_in_kube_system_count() {
        assert!(is_token(&token(None)));
        let mut other_ns = token(None);
        other_ns["metadata"]["namespace"] = json!("default");
        assert!(!is_token(&other_ns));
        let mut opaque = token(None);
        opaque["type"] = json!("Opaque");
        assert!(!is_token(&opaque));
    }
}
