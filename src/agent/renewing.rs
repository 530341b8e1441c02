//! An API client whose certificate can change under a running node:
//! renewed credentials reach it without restarting anything (restarting
//! the kubelet would disturb pods). Each new request goes through the
//! client of the newest certificate; streams already open finish on the old
//! connection.

use std::sync::{Arc, RwLock};

use serde_json::Value;

use crate::client::{
    Client, ClientError, DeleteOptions, ListOptions, ObjectList, PatchType, Remote, ResourceId,
    WatchOptions,
};

/// An API client whose [`Remote`] can be replaced.
#[derive(Clone)]
pub struct Renewing(Arc<RwLock<Remote>>);

impl Renewing {
    pub fn new(client: Remote) -> Renewing {
        Renewing(Arc::new(RwLock::new(client)))
    }

    pub fn replace(&self, client: Remote) {
        match self.0.write() {
            Ok(mut c) => *c = client,
            Err(poisoned) => *poisoned.into_inner() = client,
        }
    }

    fn current(&self) -> Remote {
        match self.0.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

type Result<T> = std::result::Result<T, ClientError>;

impl Client for Renewing {
    type Watch = <Remote as Client>::Watch;

    async fn get(&self, res: &ResourceId, ns: Option<&str>, name: &str) -> Result<Arc<Value>> {
        self.current().get(res, ns, name).await
    }

    async fn list(
        &self,
        res: &ResourceId,
        ns: Option<&str>,
        opts: &ListOptions,
    ) -> Result<ObjectList> {
        self.current().list(res, ns, opts).await
    }

    async fn create(&self, res: &ResourceId, ns: Option<&str>, obj: Value) -> Result<Value> {
        self.current().create(res, ns, obj).await
    }

    async fn create_subresource(
        &self,
        res: &ResourceId,
        ns: Option<&str>,
        name: &str,
        sub: &str,
        obj: Value,
    ) -> Result<Value> {
        let client = self.current();
        client.create_subresource(res, ns, name, sub, obj).await
    }

    async fn update(
        &self,
        res: &ResourceId,
        ns: Option<&str>,
        name: &str,
        obj: Value,
        subresource: Option<&str>,
    ) -> Result<Value> {
        let client = self.current();
        client.update(res, ns, name, obj, subresource).await
    }

    async fn patch(
        &self,
        res: &ResourceId,
        ns: Option<&str>,
        name: &str,
        patch_type: PatchType,
        patch: &Value,
        subresource: Option<&str>,
    ) -> Result<Value> {
        let client = self.current();
        client
            .patch(res, ns, name, patch_type, patch, subresource)
            .await
    }

    async fn delete(
        &self,
        res: &ResourceId,
        ns: Option<&str>,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<()> {
        self.current().delete(res, ns, name, opts).await
    }

    async fn watch(
        &self,
        res: &ResourceId,
        ns: Option<&str>,
        opts: WatchOptions,
    ) -> Result<Self::Watch> {
        self.current().watch(res, ns, opts).await
    }
}
