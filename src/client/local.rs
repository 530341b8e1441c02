//! The in-process client: calls the API layer directly and shares its
//! watch cache (objects are `Arc`s out of the cache, never copied).

use std::sync::Arc;

use serde_json::Value;

use crate::metrics::Origin;

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
    /// What the API serves now (custom resources come and go).
    pub fn served(&self) -> Arc<crate::api::Registry> {
        self.api.registry()
    }

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

/// Runs one in-process call, recording its latency like an HTTP request's.
async fn timed<T>(
    verb: &'static str,
    res: &ResourceId,
    call: impl std::future::Future<Output = T>,
) -> T {
    let started = std::time::Instant::now();
    let out = call.await;
    crate::metrics::observe(verb, &res.plural, Origin::InProcess, started.elapsed());
    out
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
        let r = self.resource(res)?;
        Ok(timed("GET", res, self.api.get(r, ns, name)).await?)
    }

    async fn list(
        &self,
        res: &ResourceId,
        ns: Option<&str>,
        opts: &ListOptions,
    ) -> Result<ObjectList, ClientError> {
        let r = self.resource(res)?;
        let l = timed("LIST", res, self.api.list(r, ns, opts)).await?;
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
        let r = self.resource(res)?;
        let opts = WriteOptions::default();
        Ok(timed("POST", res, self.api.create(r, ns, obj, &opts)).await?)
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
            "binding" => Ok(timed("POST", res, self.api.bind(r, ns, name, &obj, &opts)).await?),
            "eviction" => Ok(timed("POST", res, self.api.evict(r, ns, name, &obj)).await?),
            "token" => Ok(timed("POST", res, self.api.create_token(r, ns, name, &obj)).await?),
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
            Some("scale") => {
                timed("PUT", res, self.api.update_scale(r, ns, name, obj, &opts)).await?
            }
            Some("finalize") => {
                timed(
                    "PUT",
                    res,
                    self.api.finalize_namespace(r, name, &obj, &opts),
                )
                .await?
            }
            sub => timed("PUT", res, self.api.update(r, ns, name, obj, sub, &opts)).await?,
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
        let opts = WriteOptions::default();
        let call = self
            .api
            .patch(r, ns, name, patch_type, &body, subresource, &opts);
        Ok(timed("PATCH", res, call).await?)
    }

    async fn delete(
        &self,
        res: &ResourceId,
        ns: Option<&str>,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<(), ClientError> {
        let r = self.resource(res)?;
        timed("DELETE", res, self.api.delete(r, ns, name, opts)).await?;
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
