//! A tiny in-memory API for the volume tests: objects by collection,
//! namespace and name; optionally a TokenRequest endpoint.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use crate::client::{
    Client, ClientError, DeleteOptions, Event, EventStream, ListOptions, ObjectList, PatchType,
    ResourceId, WatchOptions,
};

type Key = (String, String, String);

#[derive(Clone, Default)]
pub(crate) struct FakeClient {
    objects: Arc<Mutex<HashMap<Key, Value>>>,
    /// Whether `serviceaccounts/<sa>/token` is served.
    pub tokens: Arc<std::sync::atomic::AtomicBool>,
    pub token_requests: Arc<AtomicUsize>,
    pub last_token_request: Arc<Mutex<Option<Value>>>,
}

impl FakeClient {
    pub fn put(&self, plural: &str, ns: Option<&str>, name: &str, obj: Value) {
        let key = (plural.into(), ns.unwrap_or("").into(), name.into());
        self.objects.lock().unwrap().insert(key, obj);
    }

    pub fn remove(&self, plural: &str, ns: Option<&str>, name: &str) {
        let key = (plural.into(), ns.unwrap_or("").into(), name.into());
        self.objects.lock().unwrap().remove(&key);
    }
}

fn not_found(res: &ResourceId, name: &str) -> ClientError {
    ClientError::Api {
        code: 404,
        reason: "NotFound".into(),
        message: format!("{} {name:?} not found", res.plural),
    }
}

pub(crate) struct NoWatch;

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
        let key = (res.plural.clone(), ns.unwrap_or("").into(), name.into());
        let found = self.objects.lock().unwrap().get(&key).cloned();
        found.map(Arc::new).ok_or_else(|| not_found(res, name))
    }

    async fn list(
        &self,
        res: &ResourceId,
        _ns: Option<&str>,
        _opts: &ListOptions,
    ) -> Result<ObjectList, ClientError> {
        Err(ClientError::UnknownResource(res.plural.clone()))
    }

    async fn create(
        &self,
        res: &ResourceId,
        _ns: Option<&str>,
        _obj: Value,
    ) -> Result<Value, ClientError> {
        Err(ClientError::UnknownResource(res.plural.clone()))
    }

    async fn create_subresource(
        &self,
        res: &ResourceId,
        _ns: Option<&str>,
        name: &str,
        sub: &str,
        obj: Value,
    ) -> Result<Value, ClientError> {
        if res.plural != "serviceaccounts" || sub != "token" || !self.tokens.load(Ordering::SeqCst)
        {
            return Err(ClientError::UnknownResource(format!(
                "{}/{sub}",
                res.plural
            )));
        }
        let n = self.token_requests.fetch_add(1, Ordering::SeqCst) + 1;
        *self.last_token_request.lock().unwrap() = Some(obj.clone());
        let secs = obj
            .pointer("/spec/expirationSeconds")
            .and_then(Value::as_i64)
            .unwrap_or(3600);
        let exp = jiff::Timestamp::now()
            .checked_add(jiff::SignedDuration::from_secs(secs))
            .unwrap();
        let mut answer = obj;
        answer["status"] = json!({
            "token": format!("token-{name}-{n}"),
            "expirationTimestamp": exp.to_string(),
        });
        Ok(answer)
    }

    async fn update(
        &self,
        res: &ResourceId,
        _ns: Option<&str>,
        _name: &str,
        _obj: Value,
        _subresource: Option<&str>,
    ) -> Result<Value, ClientError> {
        Err(ClientError::UnknownResource(res.plural.clone()))
    }

    async fn patch(
        &self,
        res: &ResourceId,
        _ns: Option<&str>,
        _name: &str,
        _patch_type: PatchType,
        _patch: &Value,
        _subresource: Option<&str>,
    ) -> Result<Value, ClientError> {
        Err(ClientError::UnknownResource(res.plural.clone()))
    }

    async fn delete(
        &self,
        res: &ResourceId,
        _ns: Option<&str>,
        _name: &str,
        _opts: &DeleteOptions,
    ) -> Result<(), ClientError> {
        Err(ClientError::UnknownResource(res.plural.clone()))
    }

    async fn watch(
        &self,
        _res: &ResourceId,
        _ns: Option<&str>,
        _opts: WatchOptions,
    ) -> Result<NoWatch, ClientError> {
        Ok(NoWatch)
    }
}
