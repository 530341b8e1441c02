//! Test fixtures: pods and containers in a few lines, and an in-memory
//! client answering get and list.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::{Container, Pod, PodSpec, ResourceRequirements};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::Value;

use crate::client::{
    Client, ClientError, DeleteOptions, Event, EventStream, ListOptions, ObjectList, PatchType,
    ResourceId, WatchOptions,
};

fn list(pairs: &[(&str, &str)]) -> Option<BTreeMap<String, Quantity>> {
    (!pairs.is_empty()).then(|| {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), Quantity(v.to_string())))
            .collect()
    })
}

/// A container with the given requests and limits.
pub fn container(name: &str, requests: &[(&str, &str)], limits: &[(&str, &str)]) -> Container {
    Container {
        name: name.into(),
        image: Some("busybox:1.36".into()),
        resources: Some(ResourceRequirements {
            requests: list(requests),
            limits: list(limits),
            claims: None,
        }),
        ..Default::default()
    }
}

/// Pod `default/web`, uid `uid-1`.
pub fn pod_with(containers: Vec<Container>, init: Vec<Container>) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: Some("web".into()),
            namespace: Some("default".into()),
            uid: Some("uid-1".into()),
            ..Default::default()
        },
        spec: Some(PodSpec {
            containers,
            init_containers: (!init.is_empty()).then_some(init),
            ..Default::default()
        }),
        status: None,
    }
}

/// Objects by (plural, namespace, name); counts the calls made.
#[derive(Default)]
pub struct FakeClient {
    objects: Mutex<BTreeMap<(String, String, String), Arc<Value>>>,
    pub calls: Mutex<usize>,
}

impl FakeClient {
    pub fn with(objects: &[(&str, Value)]) -> FakeClient {
        let client = FakeClient::default();
        for (plural, obj) in objects {
            client.put(plural, obj.clone());
        }
        client
    }

    pub fn put(&self, plural: &str, obj: Value) {
        let text = |k: &str| obj["metadata"][k].as_str().unwrap_or("").to_string();
        let key = (plural.to_string(), text("namespace"), text("name"));
        self.objects.lock().unwrap().insert(key, Arc::new(obj));
    }
}

fn unsupported() -> ClientError {
    ClientError::Transport("not supported by the fake client".into())
}

pub struct NoWatch;

impl EventStream for NoWatch {
    async fn next(&mut self) -> Option<Result<Event, ClientError>> {
        None
    }
}

impl Client for FakeClient {
    type Watch = NoWatch;

    async fn get(
        &self,
        res: &ResourceId,
        ns: Option<&str>,
        name: &str,
    ) -> Result<Arc<Value>, ClientError> {
        *self.calls.lock().unwrap() += 1;
        let key = (
            res.plural.clone(),
            ns.unwrap_or("").to_string(),
            name.to_string(),
        );
        self.objects
            .lock()
            .unwrap()
            .get(&key)
            .cloned()
            .ok_or_else(|| ClientError::Api {
                code: 404,
                reason: "NotFound".into(),
                message: format!("{} {name:?} not found", res.plural),
            })
    }

    async fn list(
        &self,
        res: &ResourceId,
        ns: Option<&str>,
        _: &ListOptions,
    ) -> Result<ObjectList, ClientError> {
        *self.calls.lock().unwrap() += 1;
        let items = self
            .objects
            .lock()
            .unwrap()
            .iter()
            .filter(|((p, n, _), _)| *p == res.plural && ns.is_none_or(|ns| ns == n))
            .map(|(_, v)| v.clone())
            .collect();
        Ok(ObjectList {
            items,
            resource_version: "1".into(),
            continue_token: None,
        })
    }

    async fn create(
        &self,
        _: &ResourceId,
        _: Option<&str>,
        _: Value,
    ) -> Result<Value, ClientError> {
        Err(unsupported())
    }

    async fn create_subresource(
        &self,
        _: &ResourceId,
        _: Option<&str>,
        _: &str,
        _: &str,
        _: Value,
    ) -> Result<Value, ClientError> {
        Err(unsupported())
    }

    async fn update(
        &self,
        _: &ResourceId,
        _: Option<&str>,
        _: &str,
        _: Value,
        _: Option<&str>,
    ) -> Result<Value, ClientError> {
        Err(unsupported())
    }

    async fn patch(
        &self,
        _: &ResourceId,
        _: Option<&str>,
        _: &str,
        _: PatchType,
        _: &Value,
        _: Option<&str>,
    ) -> Result<Value, ClientError> {
        Err(unsupported())
    }

    async fn delete(
        &self,
        _: &ResourceId,
        _: Option<&str>,
        _: &str,
        _: &DeleteOptions,
    ) -> Result<(), ClientError> {
        Err(unsupported())
    }

    async fn watch(
        &self,
        _: &ResourceId,
        _: Option<&str>,
        _: WatchOptions,
    ) -> Result<NoWatch, ClientError> {
        Err(unsupported())
    }
}
