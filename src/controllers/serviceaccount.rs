//! Service accounts (upstream's serviceaccount controller and root CA
//! publisher): every active namespace gets a `default` ServiceAccount and
//! a `kube-root-ca.crt` ConfigMap holding the cluster's server CA, put back
//! when deleted or changed.

use std::sync::Arc;

use serde_json::{json, Value};

use super::objects::{self, is_deleting};
use super::runtime::{self, Action, Change, ObjectKey, Reconciler, WorkQueue};
use super::{Ctx, Error};
use crate::client::{Client, Local, ResourceId};

const DEFAULT_ACCOUNT: &str = "default";
const ROOT_CA_CONFIGMAP: &str = "kube-root-ca.crt";
const DESCRIPTION_ANNOTATION: &str = "kubernetes.io/description";
const DESCRIPTION: &str = "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.";
const WORKERS: usize = 2;

pub fn start(ctx: &Ctx) {
    let root_ca = ctx.settings.server_ca_pem.clone();
    if root_ca.is_none() {
        tracing::warn!("no server CA known; kube-root-ca.crt is not published");
    }
    let queue = WorkQueue::new();
    {
        let q = Arc::clone(&queue);
        runtime::watch(ctx.client.clone(), namespaces(), None, move |change, ns| {
            if change != Change::Deleted {
                q.add(ObjectKey::new("", objects::name(ns)));
            }
        });
    }
    {
        let q = Arc::clone(&queue);
        runtime::watch(
            ctx.client.clone(),
            service_accounts(),
            None,
            move |change, sa| {
                if change == Change::Deleted && objects::name(sa) == DEFAULT_ACCOUNT {
                    q.add(ObjectKey::new("", objects::namespace(sa)));
                }
            },
        );
    }
    if root_ca.is_some() {
        let q = Arc::clone(&queue);
        runtime::watch(
            ctx.client.clone(),
            config_maps(),
            None,
            move |change, cm| {
                if change != Change::Added && objects::name(cm) == ROOT_CA_CONFIGMAP {
                    q.add(ObjectKey::new("", objects::namespace(cm)));
                }
            },
        );
    }
    let reconciler = Arc::new(ServiceAccountController {
        client: ctx.client.clone(),
        root_ca,
    });
    runtime::run("serviceaccount", queue, reconciler, WORKERS);
}

fn namespaces() -> ResourceId {
    ResourceId::new("", "v1", "namespaces")
}

fn service_accounts() -> ResourceId {
    ResourceId::new("", "v1", "serviceaccounts")
}

fn config_maps() -> ResourceId {
    ResourceId::new("", "v1", "configmaps")
}

struct ServiceAccountController {
    client: Local,
    root_ca: Option<String>,
}

impl Reconciler for ServiceAccountController {
    async fn reconcile(&self, key: &ObjectKey) -> Result<Action, Error> {
        let ns_name = &key.name;
        let ns = match self.client.get(&namespaces(), None, ns_name).await {
            Ok(n) => n,
            Err(e) if e.is_not_found() => return Ok(Action::Done),
            Err(e) => return Err(e.into()),
        };
        if is_deleting(&ns) {
            return Ok(Action::Done);
        }
        self.ensure_default_account(ns_name).await?;
        if let Some(pem) = &self.root_ca {
            self.ensure_root_ca(ns_name, pem).await?;
        }
        Ok(Action::Done)
    }
}

impl ServiceAccountController {
    async fn ensure_default_account(&self, ns: &str) -> Result<(), Error> {
        match self
            .client
            .get(&service_accounts(), Some(ns), DEFAULT_ACCOUNT)
            .await
        {
            Ok(_) => return Ok(()),
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
        let sa = json!({"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": DEFAULT_ACCOUNT, "namespace": ns}});
        tracing::debug!(namespace = ns, "creating the default service account");
        ignore_benign(self.client.create(&service_accounts(), Some(ns), sa).await)
    }

    async fn ensure_root_ca(&self, ns: &str, pem: &str) -> Result<(), Error> {
        let current = match self
            .client
            .get(&config_maps(), Some(ns), ROOT_CA_CONFIGMAP)
            .await
        {
            Ok(c) => Some(c),
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(e.into()),
        };
        let data = json!({"ca.crt": pem});
        let Some(cm) = current else {
            let cm = json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": ROOT_CA_CONFIGMAP, "namespace": ns,
                    "annotations": {DESCRIPTION_ANNOTATION: DESCRIPTION}},
                "data": data});
            tracing::debug!(namespace = ns, "publishing the root CA");
            return ignore_benign(self.client.create(&config_maps(), Some(ns), cm).await);
        };
        let described =
            objects::annotation(&cm, DESCRIPTION_ANNOTATION).is_some_and(|d| !d.is_empty());
        if cm.get("data") == Some(&data) && described {
            return Ok(());
        }
        let mut body: Value = cm.as_ref().clone();
        body["data"] = data;
        let meta = &mut body["metadata"];
        if !meta.get("annotations").is_some_and(Value::is_object) {
            meta["annotations"] = json!({});
        }
        meta["annotations"][DESCRIPTION_ANNOTATION] = json!(DESCRIPTION);
        match self
            .client
            .update(&config_maps(), Some(ns), ROOT_CA_CONFIGMAP, body, None)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// A create that lost a race, or whose namespace is gone or terminating,
/// needs no retry.
fn ignore_benign(r: Result<Value, crate::client::ClientError>) -> Result<(), Error> {
    match r {
        Ok(_) => Ok(()),
        Err(e) if e.is_already_exists() || e.is_not_found() || e.code() == Some(403) => Ok(()),
        Err(e) => Err(e.into()),
    }
}
