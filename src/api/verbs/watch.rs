//! watch: a registration on the watch cache, turned into client events
//! (selectors applied per event, as upstream: an object that stops matching
//! is DELETED for this watcher, one that starts matching is ADDED).

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::time::Instant;

use super::{scoped, served, store_error};
use crate::api::error::ApiError;
use crate::api::registry::Resource;
use crate::api::store::{CacheEvent, EventType};
use crate::api::{Api, WatchEvent, WatchOptions, WatchStream};

/// How often an idle watch that asked for bookmarks gets one.
const BOOKMARK_EVERY: Duration = Duration::from_secs(60);

impl Api {
    pub async fn watch(
        self: &Arc<Self>,
        r: &'static Resource,
        namespace: Option<&str>,
        opts: WatchOptions,
    ) -> Result<WatchStream, ApiError> {
        if !r.has_verb("watch") {
            return Err(ApiError::MethodNotAllowed);
        }
        opts.field_selector
            .check_supported(r.group, r.plural)
            .map_err(|e| ApiError::BadRequest(e.to_string()))?;
        let namespace = scoped(r, namespace);
        let (initial, from) = match opts.resource_version.as_deref().filter(|s| !s.is_empty()) {
            None | Some("0") => (true, 0),
            Some(s) => {
                let rv = s.parse::<i64>().ok().filter(|r| *r > 0).ok_or_else(|| {
                    ApiError::BadRequest(format!("invalid resource version: {s}"))
                })?;
                self.store
                    .wait_for(rv)
                    .await
                    .map_err(|e| store_error(r, "", e))?;
                (opts.send_initial_events, rv)
            }
        };
        let cache = self
            .store
            .cache(r.storage)
            .ok_or_else(|| ApiError::internal(format!("no cache for {}", r.storage)))?;
        let global = self.store.cache_revision();
        let compacted = self.store.compact_revision();
        if !initial && from < compacted {
            return Err(ApiError::Gone(format!(
                "too old resource version: {from} ({compacted})"
            )));
        }
        let sub = cache
            .subscribe(namespace, from, initial, global)
            .map_err(|t| {
                ApiError::Gone(format!("too old resource version: {from} ({})", t.oldest))
            })?;
        let deadline = opts.timeout.map(|t| Instant::now() + t);
        let initial_end =
            (opts.send_initial_events && opts.allow_bookmarks).then_some(sub.revision);
        Ok(WatchStream {
            resource: r,
            backlog: sub.backlog.into(),
            rx: sub.rx,
            namespace: namespace.map(str::to_string),
            last_revision: if initial { sub.revision } else { from },
            initial_end,
            deadline,
            revision: self.store.revision_rx(),
            next_bookmark: Instant::now() + BOOKMARK_EVERY,
            options: opts,
            converter: crate::api::custom::by_webhook(r).then(|| self.clone()),
        })
    }
}

impl WatchStream {
    /// The next event for the client; None when the watch is over.
    pub async fn next(&mut self) -> Option<WatchEvent> {
        loop {
            let event = match self.backlog.pop_front() {
                Some(e) => e,
                None => {
                    if let Some(revision) = self.initial_end.take() {
                        return Some(self.bookmark(revision, true));
                    }
                    let deadline = self.deadline;
                    let bookmarks = self.options.allow_bookmarks;
                    tokio::select! {
                        e = self.rx.recv() => e?,
                        _ = sleep_until(deadline) => return None,
                        _ = tokio::time::sleep_until(self.next_bookmark), if bookmarks => {
                            self.next_bookmark = Instant::now() + BOOKMARK_EVERY;
                            let current = *self.revision.borrow();
                            let revision = self.last_revision.max(current);
                            self.last_revision = revision;
                            return Some(self.bookmark(revision, false));
                        }
                    }
                }
            };
            if let Some(e) = self.client_event(event) {
                return self.convert(e).await;
            }
        }
    }

    /// The event's object in the watched version through the CRD's
    /// webhook; a failure ends the watch, as upstream's encoder does.
    async fn convert(&self, mut e: WatchEvent) -> Option<WatchEvent> {
        let Some(api) = &self.converter else {
            return Some(e);
        };
        match api.serve(self.resource, &e.object).await {
            Ok(object) => {
                e.object = object;
                Some(e)
            }
            Err(err) => {
                tracing::warn!(resource = self.resource.plural, error = %err, "watch ends: unable to convert its object");
                None
            }
        }
    }

    /// The next event if one is ready now (for batching several events
    /// into one write); never waits.
    pub fn next_ready(&mut self) -> Option<WatchEvent> {
        // Converting awaits a webhook: such events go one by one.
        if self.converter.is_some() {
            return None;
        }
        loop {
            let event = match self.backlog.pop_front() {
                Some(e) => e,
                None => {
                    if self.initial_end.is_some() {
                        return None;
                    }
                    self.rx.try_recv().ok()?
                }
            };
            if let Some(e) = self.client_event(event) {
                return Some(e);
            }
        }
    }

    /// Applies the namespace and selectors to a cache event.
    fn client_event(&mut self, event: Arc<CacheEvent>) -> Option<WatchEvent> {
        self.last_revision = self.last_revision.max(event.revision);
        let r = self.resource;
        if self.namespace.as_deref().is_some_and(|ns| {
            event
                .object
                .get("metadata")
                .and_then(|m| m.get("namespace"))
                .and_then(Value::as_str)
                != Some(ns)
        }) {
            return None;
        }
        // Through a webhook, selectors see the stored objects (metadata
        // only, which conversion keeps; upstream's cacher filters before
        // converting) and `next` converts what is sent.
        let form = |o: &Arc<Value>| {
            if self.converter.is_some() {
                o.clone()
            } else {
                served(r, o)
            }
        };
        let object = form(&event.object);
        let now = self.matches(&object);
        let before = event.previous.as_ref().map(|p| self.matches(&form(p)));
        let kind = match (event.kind, before, now) {
            (EventType::Added, _, true) => "ADDED",
            (EventType::Modified, Some(true), true) => "MODIFIED",
            (EventType::Modified, _, true) => "ADDED",
            (EventType::Modified, Some(true), false) => "DELETED",
            (EventType::Deleted, Some(true), _) => "DELETED",
            (EventType::Deleted, None, true) => "DELETED",
            _ => return None,
        };
        Some(WatchEvent {
            kind,
            object,
            source: Some(event),
        })
    }

    fn matches(&self, obj: &Value) -> bool {
        let r = self.resource;
        (self.options.label_selector.is_everything()
            || self.options.label_selector.matches_object(obj))
            && (self.options.field_selector.is_everything()
                || self.options.field_selector.matches(r.group, r.plural, obj))
    }

    fn bookmark(&self, revision: i64, initial_end: bool) -> WatchEvent {
        let r = self.resource;
        let mut meta = json!({"resourceVersion": revision.to_string(), "creationTimestamp": null});
        if initial_end {
            meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        WatchEvent {
            kind: "BOOKMARK",
            object: Arc::new(
                json!({"kind": r.kind, "apiVersion": r.api_version(), "metadata": meta}),
            ),
            source: None,
        }
    }

    /// The resource this watch follows.
    pub fn resource(&self) -> &'static Resource {
        self.resource
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
