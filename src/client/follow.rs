//! The list-then-watch loop every informer runs: list a collection, hand
//! the items over, watch from the list's resourceVersion, re-watch when a
//! stream ends, re-list when the watch cannot resume (410) or fails.
//! A server that cannot be reached is retried with exponential back-off
//! (as client-go's reflector), so an agent cut off from its server neither
//! hammers it nor waits long once it is back.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::{Client, EventStream, ListOptions, ResourceId, WatchOptions};
use crate::api::selector::FieldSelector;

/// What happened to an object in a watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    Added,
    Modified,
    Deleted,
}

/// What [`follow`] hands over.
#[derive(Debug)]
pub enum Followed {
    /// A full (re)list: everything not in it is gone.
    Listed(Vec<Arc<Value>>),
    Event {
        kind: EventKind,
        object: Arc<Value>,
    },
}

/// First wait after a failure; doubles per failure in a row up to
/// [`RETRY_MAX`], back to the start after a successful list.
const RETRY: Duration = Duration::from_millis(500);
const RETRY_MAX: Duration = Duration::from_secs(8);

/// Exponential back-off with a little jitter, so many followers of one
/// process (or many agents) do not retry in step.
struct Backoff(Duration);

impl Backoff {
    fn new() -> Backoff {
        Backoff(RETRY)
    }

    async fn wait(&mut self) {
        tokio::time::sleep(self.step()).await;
    }

    /// The next wait: the step plus up to a quarter of it.
    fn step(&mut self) -> Duration {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let wait = self.0 + self.0.mul_f64(f64::from(nanos % 1000) / 4000.0);
        self.0 = (self.0 * 2).min(RETRY_MAX);
        wait
    }

    fn reset(&mut self) {
        self.0 = RETRY;
    }
}

/// Follows `res` (all namespaces) in one task, calling `on` for every list
/// and every event, until `on` returns false.
pub fn follow<C: Client + Clone>(
    client: C,
    res: ResourceId,
    on: impl FnMut(Followed) -> bool + Send + 'static,
) {
    follow_selected(client, res, FieldSelector::default(), on)
}

/// [`follow`] restricted to the objects `fields` selects (a kubelet
/// follows `spec.nodeName=<node>`).
pub fn follow_selected<C: Client + Clone>(
    client: C,
    res: ResourceId,
    fields: FieldSelector,
    mut on: impl FnMut(Followed) -> bool + Send + 'static,
) {
    tokio::spawn(async move {
        let mut backoff = Backoff::new();
        loop {
            let opts = ListOptions {
                field_selector: fields.clone(),
                ..Default::default()
            };
            let list = match client.list(&res, None, &opts).await {
                Ok(l) => l,
                Err(e) => {
                    tracing::warn!(resource = res.plural, error = %e, "cannot list; retrying");
                    backoff.wait().await;
                    continue;
                }
            };
            backoff.reset();
            if !on(Followed::Listed(list.items)) {
                return;
            }
            let mut rv = list.resource_version;
            // Watch from rv; re-watch when a stream ends, re-list on 410.
            'watch: loop {
                let opts = WatchOptions {
                    field_selector: fields.clone(),
                    resource_version: Some(rv.clone()),
                    allow_bookmarks: true,
                    ..Default::default()
                };
                let mut stream = match client.watch(&res, None, opts).await {
                    Ok(s) => s,
                    Err(e) => {
                        if !e.is_gone() {
                            tracing::warn!(resource = res.plural, error = %e, "cannot watch");
                            backoff.wait().await;
                        }
                        break 'watch;
                    }
                };
                loop {
                    let event = match stream.next().await {
                        Some(Ok(e)) => e,
                        Some(Err(e)) => {
                            tracing::debug!(resource = res.plural, error = %e, "watch ended");
                            break 'watch;
                        }
                        None => continue 'watch,
                    };
                    let kind = match event.kind.as_str() {
                        "ADDED" => Some(EventKind::Added),
                        "MODIFIED" => Some(EventKind::Modified),
                        "DELETED" => Some(EventKind::Deleted),
                        "ERROR" => break 'watch,
                        _ => None,
                    };
                    // Every event, bookmarks included, moves the resume point.
                    if let Some(v) = event
                        .object
                        .pointer("/metadata/resourceVersion")
                        .and_then(Value::as_str)
                    {
                        rv = v.to_string();
                    }
                    if let Some(kind) = kind {
                        let object = event.object;
                        if !on(Followed::Event { kind, object }) {
                            return;
                        }
                    }
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_and_resets() {
        let mut b = Backoff::new();
        let waits: Vec<Duration> = (0..7).map(|_| b.step()).collect();
        let steps = [500, 1000, 2000, 4000, 8000, 8000, 8000];
        for (wait, step) in waits.iter().zip(steps) {
            let step = Duration::from_millis(step);
            assert!(
                *wait >= step && *wait <= step + step / 4,
                "{wait:?} vs {step:?}"
            );
        }
        b.reset();
        assert!(b.step() < Duration::from_millis(630));
    }
}
