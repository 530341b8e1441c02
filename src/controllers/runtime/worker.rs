//! Runs a reconciler over a work queue: a few workers, each reconcile
//! contained (an error or a panic requeues the key with backoff, the loop
//! goes on).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;

use super::key::ObjectKey;
use super::queue::WorkQueue;
use crate::controllers::Error;

/// What to do with a key after a successful reconcile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Done,
    /// Look again later (a deadline, a delay, a condition to wait for).
    RequeueAfter(Duration),
}

/// One control loop: brings the object named by a key to its desired state.
pub trait Reconciler: Send + Sync + 'static {
    fn reconcile(&self, key: &ObjectKey) -> impl Future<Output = Result<Action, Error>> + Send;
}

/// Starts `workers` tasks feeding `queue`'s keys to `reconciler`.
pub fn run<R: Reconciler>(
    name: &'static str,
    queue: Arc<WorkQueue<ObjectKey>>,
    reconciler: Arc<R>,
    workers: usize,
) {
    for _ in 0..workers.max(1) {
        let queue = Arc::clone(&queue);
        let reconciler = Arc::clone(&reconciler);
        tokio::spawn(async move {
            while let Some(key) = queue.get().await {
                let outcome = std::panic::AssertUnwindSafe(reconciler.reconcile(&key))
                    .catch_unwind()
                    .await;
                match outcome {
                    Ok(Ok(Action::Done)) => queue.forget(&key),
                    Ok(Ok(Action::RequeueAfter(d))) => {
                        queue.forget(&key);
                        queue.add_after(key.clone(), d);
                    }
                    Ok(Err(e)) if e.is_conflict() => {
                        // Someone wrote meanwhile: look again at once.
                        tracing::debug!(controller = name, %key, "conflict; requeued");
                        queue.add_rate_limited(key.clone());
                    }
                    Ok(Err(e)) => {
                        let failures = queue.failures(&key);
                        if failures < 3 {
                            tracing::debug!(controller = name, %key, error = %e, "reconcile failed; requeued");
                        } else {
                            tracing::warn!(controller = name, %key, error = %e, failures, "reconcile failed; requeued");
                        }
                        queue.add_rate_limited(key.clone());
                    }
                    Err(panic) => {
                        let what = panic
                            .downcast_ref::<&str>()
                            .map(|s| s.to_string())
                            .or_else(|| panic.downcast_ref::<String>().cloned())
                            .unwrap_or_default();
                        tracing::error!(controller = name, %key, panic = what, "reconcile panicked; requeued");
                        queue.add_rate_limited(key.clone());
                    }
                }
                queue.done(&key);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    struct Flaky(AtomicU32);

    impl Reconciler for Flaky {
        async fn reconcile(&self, key: &ObjectKey) -> Result<Action, Error> {
            match self.0.fetch_add(1, Ordering::SeqCst) {
                0 => panic!("boom on {key}"),
                1 => Err(Error::Invalid("bad".into())),
                _ => Ok(Action::Done),
            }
        }
    }

    #[tokio::test]
    async fn a_panic_and_an_error_are_retried_until_success() {
        let queue = WorkQueue::new();
        let r = Arc::new(Flaky(AtomicU32::new(0)));
        run("test", Arc::clone(&queue), Arc::clone(&r), 1);
        let key = ObjectKey::new("ns", "x");
        queue.add(key.clone());
        for _ in 0..200 {
            if r.0.load(Ordering::SeqCst) >= 3 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(r.0.load(Ordering::SeqCst), 3);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(queue.failures(&key), 0, "success forgets the failures");
        queue.shut_down();
    }
}
