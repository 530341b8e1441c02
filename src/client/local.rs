//! The in-process client: calls the API layer directly and shares its
//! watch cache (objects are `Arc`s out of the cache, never copied).

use std::sync::Arc;

use serde_json::Value;

use super::{Client, ClientError, Event, EventStream, ObjectList, PatchType, ResourceId};
use crate::api::{
    Api, DeleteOptions, ListOptions, Resource, WatchOptions, WatchStream, WriteOptions,
};

#[derive(Clone)]
pub struct Local {
    api: Arc<Api>,
}

impl Local {
    pub fn new(api: Arc<Api>) -> Self {
        Local { api }
    }

    /// Every namespaced collection, once per stored kind (for sweeping a
    /// namespace).
    pub fn namespaced_storage_resources(&self) -> Vec<ResourceId> {
        let mut seen = std::collections::HashSet::new();
        self.api
            .registry()
            .all()
            .iter()
            .filter(|r| {
                r.namespaced && r.has_verb("list") && r.has_verb("delete") && seen.insert(r.storage)
            })
            .map(|r| ResourceId::new(r.group, r.version, r.plural))
            .collect()
    }

    fn resource(&self, res: &ResourceId) -> Result<&'static Resource, ClientError> {
        self.api
            .registry()
            .find(&res.group, &res.version, &res.plural)
            .ok_or_else(|| {
                ClientError::UnknownResource(format!(
                    "{}/{}/{}",
                    res.group, res.version, res.plural
                ))
            })
    }
}

pub struct LocalWatch(WatchStream);

impl EventStream for LocalWatch {
    async fn next(&mut self) -> Option<Result<Event, ClientError>> {
        let e = self.0.next().await?;
        Some(Ok(Event {
            kind: e.kind.to_string(),
            object: e.object,
        }))
    }
}

impl Client for Local {
    type Watch = LocalWatch;

    async fn get(
        &self,
        res: &ResourceId,
        ns: Option<&str>,
        name: &str,
    ) -> Result<Arc<Value>, ClientError> {
        Ok(self.api.get(self.resource(res)?, ns, name).await?)
    }

    async fn list(
        &self,
        res: &ResourceId,
        ns: Option<&str>,
        opts: &ListOptions,
    ) -> Result<ObjectList, ClientError> {
        let l = self.api.list(self.resource(res)?, ns, opts).await?;
        Ok(ObjectList {
            items: l.items,
            resource_version: l.resource_version.to_string(),
            continue_token: l.continue_token,
        })
    }

    async fn create(
        &self,
        res: &ResourceId,
        ns: Option<&str>,
        obj: Value,
    ) -> Result<Value, ClientError> {
        Ok(self
            .api
            .create(self.resource(res)?, ns, obj, &WriteOptions::default())
            .await?)
    }

    async fn create_subresource(
        &self,
        res: &ResourceId,
        ns: Option<&str>,
        name: &str,
        sub: &str,
        obj: Value,
    ) -> Result<Value, ClientError> {
        let r = self.resource(res)?;
        let opts = WriteOptions::default();
        match sub {
            "binding" => Ok(self.api.bind(r, ns, name, &obj, &opts).await?),
            "eviction" => Ok(self.api.evict(r, ns, name, &obj).await?),
            other => Err(ClientError::UnknownResource(format!(
                "{}/{}/{}/{other}",
                res.group, res.version, res.plural
            ))),
        }
    }

    async fn update(
        &self,
        res: &ResourceId,
        ns: Option<&str>,
        name: &str,
        obj: Value,
        subresource: Option<&str>,
    ) -> Result<Value, ClientError> {
        let r = self.resource(res)?;
        let opts = WriteOptions::default();
        Ok(match subresource {
            Some("scale") => self.api.update_scale(r, ns, name, obj, &opts).await?,
            Some("finalize") => self.api.finalize_namespace(r, name, &obj, &opts).await?,
            sub => self.api.update(r, ns, name, obj, sub, &opts).await?,
        })
    }

    async fn patch(
        &self,
        res: &ResourceId,
        ns: Option<&str>,
        name: &str,
        patch_type: PatchType,
        patch: &Value,
        subresource: Option<&str>,
    ) -> Result<Value, ClientError> {
        let body = serde_json::to_vec(patch).map_err(|e| ClientError::Decode(e.to_string()))?;
        let r = self.resource(res)?;
        Ok(self
            .api
            .patch(
                r,
                ns,
                name,
                patch_type,
                &body,
                subresource,
                &WriteOptions::default(),
            )
            .await?)
    }

    async fn delete(
        &self,
        res: &ResourceId,
        ns: Option<&str>,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<(), ClientError> {
        self.api.delete(self.resource(res)?, ns, name, opts).await?;
        Ok(())
    }

    async fn watch(
        &self,
        res: &ResourceId,
        ns: Option<&str>,
        opts: WatchOptions,
    ) -> Result<LocalWatch, ClientError> {
        Ok(LocalWatch(
            self.api.watch(self.resource(res)?, ns, opts).await?,
        ))
    }
}
