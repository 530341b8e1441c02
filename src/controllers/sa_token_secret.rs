//! Legacy service-account token Secrets (upstream's tokens controller):
//! a Secret of type `kubernetes.io/service-account-token` annotated with
//! `kubernetes.io/service-account.name`, created by a user who asked for a
//! non-expiring token, gets `data.token` (a legacy JWT), `data["ca.crt"]`
//! and `data.namespace`, and the account's uid annotation. A Secret whose
//! account does not exist (or has another uid) is deleted, as upstream, and
//! so are an account's Secrets when it is deleted.

use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Value};

use super::objects::{self, is_deleting};
use super::runtime::{self, Action, Change, ObjectKey, Reconciler, WorkQueue};
use super::{Ctx, Error};
use crate::api::{Api, DeleteOptions, ListOptions};
use crate::client::{Client, ClientError, Local, ResourceId};

const TOKEN_TYPE: &str = "kubernetes.io/service-account-token";
const NAME_ANNOTATION: &str = "kubernetes.io/service-account.name";
const UID_ANNOTATION: &str = "kubernetes.io/service-account.uid";
const WORKERS: usize = 1;

pub fn start(ctx: &Ctx) {
    let queue = WorkQueue::new();
    {
        let q = Arc::clone(&queue);
        runtime::watch(ctx.client.clone(), secrets(), None, move |change, s| {
            if change != Change::Deleted && is_token_secret(s) {
                q.add(ObjectKey::new(objects::namespace(s), objects::name(s)));
            }
        });
    }
    {
        // An account's deletion takes its token Secrets with it.
        let q = Arc::clone(&queue);
        let client = ctx.client.clone();
        runtime::watch(
            ctx.client.clone(),
            service_accounts(),
            None,
            move |change, sa| {
                if change != Change::Deleted {
                    return;
                }
                let (q, client) = (Arc::clone(&q), client.clone());
                let ns = objects::namespace(sa).to_string();
                let name = objects::name(sa).to_string();
                tokio::spawn(async move {
                    let list = match client
                        .list(&secrets(), Some(&ns), &ListOptions::default())
                        .await
                    {
                        Ok(l) => l,
                        Err(e) => {
                            tracing::warn!(namespace = %ns, error = %e, "listing token secrets");
                            return;
                        }
                    };
                    for s in &list.items {
                        if is_token_secret(s)
                            && objects::annotation(s, NAME_ANNOTATION) == Some(name.as_str())
                        {
                            q.add(ObjectKey::new(&ns, objects::name(s)));
                        }
                    }
                });
            },
        );
    }
    let reconciler = Arc::new(TokenSecretController {
        client: ctx.client.clone(),
        root_ca: ctx.settings.server_ca_pem.clone(),
    });
    runtime::run("serviceaccount-token", queue, reconciler, WORKERS);
}

fn secrets() -> ResourceId {
    ResourceId::new("", "v1", "secrets")
}

fn service_accounts() -> ResourceId {
    ResourceId::new("", "v1", "serviceaccounts")
}

fn is_token_secret(s: &Value) -> bool {
    s.get("type").and_then(Value::as_str) == Some(TOKEN_TYPE)
}

struct TokenSecretController {
    client: Local,
    root_ca: Option<String>,
}

impl Reconciler for TokenSecretController {
    async fn reconcile(&self, key: &ObjectKey) -> Result<Action, Error> {
        let ns = key.namespace.as_str();
        let secret = match self.client.get(&secrets(), Some(ns), &key.name).await {
            Ok(s) => s,
            Err(e) if e.is_not_found() => return Ok(Action::Done),
            Err(e) => return Err(e.into()),
        };
        if !is_token_secret(&secret) || is_deleting(&secret) {
            return Ok(Action::Done);
        }
        let account = objects::annotation(&secret, NAME_ANNOTATION).unwrap_or("");
        let wanted_uid = objects::annotation(&secret, UID_ANNOTATION).unwrap_or("");
        let sa = match self
            .client
            .get(&service_accounts(), Some(ns), account)
            .await
        {
            Ok(sa) if wanted_uid.is_empty() || objects::uid(&sa) == wanted_uid => Some(sa),
            Ok(_) => None,
            Err(e) if e.is_not_found() || account.is_empty() => None,
            Err(e) => return Err(e.into()),
        };
        match sa {
            Some(sa) if !is_deleting(&sa) => self.fill(&secret, &sa).await,
            _ => self.delete(&secret).await,
        }
    }
}

impl TokenSecretController {
    /// Upstream `generateTokenIfNeeded`: only what is missing or stale.
    async fn fill(&self, secret: &Value, sa: &Value) -> Result<Action, Error> {
        let ns = objects::namespace(secret);
        let name = objects::name(secret);
        let data = |k: &str| {
            secret
                .get("data")
                .and_then(|d| d.get(k))
                .and_then(Value::as_str)
                .unwrap_or("")
        };
        let ca = self.root_ca.as_deref().map(|p| STANDARD.encode(p));
        let needs_ca = ca.as_deref().is_some_and(|c| data("ca.crt") != c);
        let needs_ns = data("namespace").is_empty();
        let needs_token = data("token").is_empty();
        let annotated = objects::annotation(secret, UID_ANNOTATION) == Some(objects::uid(sa));
        if !needs_ca && !needs_ns && !needs_token && annotated {
            return Ok(Action::Done);
        }
        let mut body = secret.clone();
        if !body.get("data").is_some_and(Value::is_object) {
            body["data"] = json!({});
        }
        if let Some(ca) = ca.filter(|_| needs_ca) {
            body["data"]["ca.crt"] = json!(ca);
        }
        if needs_ns {
            body["data"]["namespace"] = json!(STANDARD.encode(ns));
        }
        if needs_token {
            let token = Api::sign_legacy_token(ns, objects::name(sa), objects::uid(sa), name)
                .map_err(Error::Invalid)?;
            body["data"]["token"] = json!(STANDARD.encode(token));
        }
        let meta = &mut body["metadata"];
        if !meta.get("annotations").is_some_and(Value::is_object) {
            meta["annotations"] = json!({});
        }
        meta["annotations"][NAME_ANNOTATION] = json!(objects::name(sa));
        meta["annotations"][UID_ANNOTATION] = json!(objects::uid(sa));
        tracing::debug!(
            namespace = ns,
            secret = name,
            "filling a legacy token secret"
        );
        match self
            .client
            .update(&secrets(), Some(ns), name, body, None)
            .await
        {
            Ok(_) => Ok(Action::Done),
            // Changed meanwhile: the watch brings the new version back.
            Err(e) if e.is_conflict() || e.is_not_found() => Ok(Action::Done),
            Err(e) => Err(e.into()),
        }
    }

    /// The account is gone (or another one by that name): so is the token.
    async fn delete(&self, secret: &Value) -> Result<Action, Error> {
        let ns = objects::namespace(secret);
        let name = objects::name(secret);
        tracing::debug!(
            namespace = ns,
            secret = name,
            "service account missing; deleting its token secret"
        );
        let opts = DeleteOptions {
            precondition_uid: Some(objects::uid(secret).to_string()),
            ..Default::default()
        };
        match self.client.delete(&secrets(), Some(ns), name, &opts).await {
            Ok(()) => Ok(Action::Done),
            Err(e) if benign(&e) => Ok(Action::Done),
            Err(e) => Err(e.into()),
        }
    }
}

/// Already gone, or recreated since (another uid): nothing to do.
fn benign(e: &ClientError) -> bool {
    e.is_not_found() || e.is_conflict()
}
