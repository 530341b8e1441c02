//! Options of the verbs (upstream's ListOptions, DeleteOptions, ...) and
//! their results.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::mpsc;

use crate::api::registry::Resource;
use crate::api::selector::{FieldSelector, LabelSelector};
use crate::api::store::CacheEvent;

#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    pub label_selector: LabelSelector,
    pub field_selector: FieldSelector,
    /// `resourceVersion`; None = most recent (consistent read).
    pub resource_version: Option<String>,
    /// `resourceVersionMatch`: "", "NotOlderThan" or "Exact".
    pub resource_version_match: String,
    /// 0 = no limit.
    pub limit: i64,
    pub continue_token: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FieldValidation {
    #[default]
    Strict,
    Warn,
    Ignore,
}

#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    pub dry_run: bool,
    pub field_validation: FieldValidation,
    /// Warnings for the client (HTTP `Warning` headers), e.g. unknown
    /// fields under `fieldValidation=Warn`.
    pub warnings: Arc<std::sync::Mutex<Vec<String>>>,
    /// The authenticated user of an HTTPS request; `None` for in-process
    /// callers, which admission treats as the system.
    pub user: Option<Arc<crate::api::UserInfo>>,
    /// Annotations admission adds to the request's audit event
    /// (e.g. PodSecurity's audit-level violations).
    pub audit_annotations: AuditAnnotations,
    /// The `fieldManager` parameter.
    pub field_manager: Option<String>,
    /// The `force` parameter (apply patches only).
    pub force: Option<bool>,
    /// The request's User-Agent, for the default field manager.
    pub user_agent: Option<String>,
    /// Set by the apply path: managedFields are already computed, the
    /// write is not also recorded as an Update.
    pub(crate) applying: bool,
}

/// Key/value annotations for an audit event, shared with the HTTPS server.
pub type AuditAnnotations = Arc<std::sync::Mutex<Vec<(String, String)>>>;

#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    pub dry_run: bool,
    pub grace_period_seconds: Option<i64>,
    /// "Orphan", "Background" or "Foreground".
    pub propagation_policy: Option<String>,
    pub precondition_uid: Option<String>,
    pub precondition_resource_version: Option<String>,
    /// As [`WriteOptions::user`].
    pub user: Option<Arc<crate::api::UserInfo>>,
    /// As [`WriteOptions::warnings`] (admission webhooks' warnings).
    pub warnings: Arc<std::sync::Mutex<Vec<String>>>,
}

#[derive(Debug, Clone, Default)]
pub struct WatchOptions {
    pub label_selector: LabelSelector,
    pub field_selector: FieldSelector,
    pub resource_version: Option<String>,
    pub allow_bookmarks: bool,
    pub send_initial_events: bool,
    pub timeout: Option<Duration>,
}

/// A list answer: items in key order, the revision it reflects, and the
/// pagination state.
#[derive(Debug, Clone)]
pub struct ListResult {
    pub items: Vec<Arc<Value>>,
    pub resource_version: i64,
    pub continue_token: Option<String>,
    pub remaining: Option<i64>,
}

/// One watch event as clients see it: type is ADDED, MODIFIED, DELETED,
/// BOOKMARK or ERROR.
#[derive(Debug, Clone)]
pub struct WatchEvent {
    pub kind: &'static str,
    pub object: Arc<Value>,
    /// The cache event `object` came from unchanged, whose JSON encoding
    /// is shared by all watchers.
    pub(crate) source: Option<Arc<CacheEvent>>,
}

impl WatchEvent {
    /// `object` as JSON; encoded once per change for all watchers.
    pub fn object_json(&self) -> bytes::Bytes {
        let encode =
            || bytes::Bytes::from(serde_json::to_vec(self.object.as_ref()).unwrap_or_default());
        match &self.source {
            Some(src) if Arc::ptr_eq(&src.object, &self.object) => {
                src.encoded.get_or_init(encode).clone()
            }
            _ => encode(),
        }
    }
}

/// A live watch. Ends (None) on timeout, when the client was too slow, or
/// at shutdown; the client then re-watches from its last resourceVersion.
pub struct WatchStream {
    pub(crate) resource: &'static Resource,
    pub(crate) backlog: VecDeque<Arc<CacheEvent>>,
    pub(crate) rx: mpsc::Receiver<Arc<CacheEvent>>,
    pub(crate) options: WatchOptions,
    pub(crate) namespace: Option<String>,
    pub(crate) last_revision: i64,
    pub(crate) initial_end: Option<i64>,
    pub(crate) deadline: Option<tokio::time::Instant>,
    pub(crate) revision: tokio::sync::watch::Receiver<i64>,
    pub(crate) next_bookmark: tokio::time::Instant,
    /// Set when objects convert through a CRD's webhook (an async call).
    pub(crate) converter: Option<std::sync::Arc<super::Api>>,
}
