//! One client interface for everything that talks to the API: in process
//! ([`Local`]: straight into [`crate::api::Api`], no HTTP, no TLS, no JSON
//! round trip, sharing the watch cache) and over HTTPS ([`Remote`], for
//! agents on other machines). Same semantics, same watch events.
// The whole surface is used by the remote agent and the controllers of the
// following issues; today the namespace controller uses part of it.
#![allow(dead_code)]

mod follow;
mod local;
mod recorder;
mod remote;

use std::future::Future;
use std::sync::Arc;

use serde_json::Value;

pub use follow::{follow, follow_selected, EventKind, Followed};
pub use local::Local;
pub use recorder::Recorder;
#[allow(unused_imports)] // the remote agent (multi-node issue) is its user
pub use remote::{Remote, RemoteConfig};

pub use crate::api::patch::PatchType;
pub use crate::api::{DeleteOptions, ListOptions, WatchOptions};

/// Names a resource collection: `("apps", "v1", "deployments")`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResourceId {
    pub group: String,
    pub version: String,
    pub plural: String,
}

impl ResourceId {
    pub fn new(group: &str, version: &str, plural: &str) -> Self {
        ResourceId {
            group: group.into(),
            version: version.into(),
            plural: plural.into(),
        }
    }

    /// The collection of a k8s-openapi type.
    pub fn of<T: k8s_openapi::Resource>() -> Self {
        ResourceId::new(T::GROUP, T::VERSION, T::URL_PATH_SEGMENT)
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientError {
    /// The API answered with a failure `Status`.
    #[error("{message}")]
    Api {
        code: u16,
        reason: String,
        message: String,
    },
    #[error("unknown resource {0}")]
    UnknownResource(String),
    #[error("connection to the api server failed: {0}")]
    Transport(String),
    #[error("unexpected answer from the api server: {0}")]
    Decode(String),
}

impl ClientError {
    pub fn code(&self) -> Option<u16> {
        match self {
            ClientError::Api { code, .. } => Some(*code),
            _ => None,
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.code() == Some(404)
    }

    pub fn is_conflict(&self) -> bool {
        matches!(self, ClientError::Api { code: 409, reason, .. } if reason == "Conflict")
    }

    pub fn is_already_exists(&self) -> bool {
        matches!(self, ClientError::Api { reason, .. } if reason == "AlreadyExists")
    }

    pub fn is_gone(&self) -> bool {
        self.code() == Some(410)
    }

    /// From a `Status` object.
    pub fn from_status(code: u16, status: &Value) -> Self {
        let text = |k: &str| {
            status
                .get(k)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        ClientError::Api {
            code,
            reason: text("reason"),
            message: text("message"),
        }
    }
}

impl From<crate::api::ApiError> for ClientError {
    fn from(e: crate::api::ApiError) -> Self {
        ClientError::Api {
            code: e.code(),
            reason: e.reason().to_string(),
            message: e.to_string(),
        }
    }
}

/// A list answer.
#[derive(Debug, Clone)]
pub struct ObjectList {
    pub items: Vec<Arc<Value>>,
    pub resource_version: String,
    pub continue_token: Option<String>,
}

/// One watch event: ADDED, MODIFIED, DELETED, BOOKMARK (or ERROR, whose
/// object is a Status).
#[derive(Debug, Clone)]
pub struct Event {
    pub kind: String,
    pub object: Arc<Value>,
}

/// The API as a client sees it. Implemented in process and over HTTPS.
pub trait Client: Send + Sync + 'static {
    type Watch: EventStream;

    fn get(
        &self,
        res: &ResourceId,
        ns: Option<&str>,
        name: &str,
    ) -> impl Future<Output = Result<Arc<Value>, ClientError>> + Send;
    fn list(
        &self,
        res: &ResourceId,
        ns: Option<&str>,
        opts: &ListOptions,
    ) -> impl Future<Output = Result<ObjectList, ClientError>> + Send;
    fn create(
        &self,
        res: &ResourceId,
        ns: Option<&str>,
        obj: Value,
    ) -> impl Future<Output = Result<Value, ClientError>> + Send;
    /// POSTs to a subresource of an object: pods/binding, pods/eviction.
    fn create_subresource(
        &self,
        res: &ResourceId,
        ns: Option<&str>,
        name: &str,
        sub: &str,
        obj: Value,
    ) -> impl Future<Output = Result<Value, ClientError>> + Send;
    /// Replaces an object (or its `status` with `subresource`).
    fn update(
        &self,
        res: &ResourceId,
        ns: Option<&str>,
        name: &str,
        obj: Value,
        subresource: Option<&str>,
    ) -> impl Future<Output = Result<Value, ClientError>> + Send;
    fn patch(
        &self,
        res: &ResourceId,
        ns: Option<&str>,
        name: &str,
        patch_type: PatchType,
        patch: &Value,
        subresource: Option<&str>,
    ) -> impl Future<Output = Result<Value, ClientError>> + Send;
    fn delete(
        &self,
        res: &ResourceId,
        ns: Option<&str>,
        name: &str,
        opts: &DeleteOptions,
    ) -> impl Future<Output = Result<(), ClientError>> + Send;
    fn watch(
        &self,
        res: &ResourceId,
        ns: Option<&str>,
        opts: WatchOptions,
    ) -> impl Future<Output = Result<Self::Watch, ClientError>> + Send;
}

/// The events of one watch; `None` when it ended (re-watch from the last
/// resourceVersion seen).
pub trait EventStream: Send {
    fn next(&mut self) -> impl Future<Output = Option<Result<Event, ClientError>>> + Send;
}
