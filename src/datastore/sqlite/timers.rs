//! Background duties that need no client: expiring leases and automatic
//! compaction. Both only write when they have something to change, so an
//! idle store stays silent on disk.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::writer::{Op, Request};
use super::{submit, Shared, SqliteOptions};

const LEASE_SCAN: Duration = Duration::from_millis(500);

pub fn spawn(
    shared: Arc<Shared>,
    tx: mpsc::Sender<Request>,
    options: SqliteOptions,
) -> Vec<JoinHandle<()>> {
    let mut tasks = vec![tokio::spawn(expire_leases(shared.clone(), tx.clone()))];
    if !options.compaction_interval.is_zero() {
        tasks.push(tokio::spawn(compact(shared, tx, options)));
    }
    tasks
}

async fn expire_leases(shared: Arc<Shared>, tx: mpsc::Sender<Request>) {
    let mut tick = tokio::time::interval(LEASE_SCAN);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let expired = shared
            .leases
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .expired();
        for id in expired {
            tracing::debug!(lease = id, "lease expired");
            if let Err(err) = submit(&tx, Op::LeaseExpire(id)).await {
                tracing::warn!(lease = id, %err, "revoking expired lease failed");
            }
        }
    }
}

/// Picks the compaction point: the newest revision that is both older than
/// the retention period and at least `min_revisions` behind the head.
pub fn target(
    samples: &VecDeque<(Instant, i64)>,
    now: Instant,
    current: i64,
    options: &SqliteOptions,
) -> i64 {
    let old_enough = samples
        .iter()
        .filter(|(at, _)| now.duration_since(*at) >= options.compaction_retention)
        .map(|(_, rev)| *rev)
        .max()
        .unwrap_or(0);
    old_enough.min(current - options.compaction_min_revisions)
}

async fn compact(shared: Arc<Shared>, tx: mpsc::Sender<Request>, options: SqliteOptions) {
    let mut samples: VecDeque<(Instant, i64)> = VecDeque::new();
    let mut tick = tokio::time::interval(options.compaction_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let now = Instant::now();
        let current = shared.revision.load(Ordering::Acquire);
        samples.push_back((now, current));
        let rev = target(&samples, now, current, &options);
        // Samples older than the newest one past retention are no longer needed.
        while samples.len() > 1 && now.duration_since(samples[1].0) >= options.compaction_retention
        {
            samples.pop_front();
        }
        if rev > shared.compact_revision.load(Ordering::Acquire) {
            match submit(&tx, Op::Compact(rev)).await {
                Ok(_) => tracing::info!(revision = rev, "automatic compaction"),
                Err(err) => tracing::warn!(revision = rev, %err, "automatic compaction failed"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_respects_retention_and_minimum() {
        let options = SqliteOptions {
            compaction_interval: Duration::from_secs(60),
            compaction_retention: Duration::from_secs(300),
            compaction_min_revisions: 1000,
        };
        let now = Instant::now() + Duration::from_secs(1000);
        let samples: VecDeque<_> = [
            (now - Duration::from_secs(400), 5000),
            (now - Duration::from_secs(100), 9000),
        ]
        .into_iter()
        .collect();
        assert_eq!(target(&samples, now, 9500, &options), 5000);
        assert_eq!(target(&samples, now, 5500, &options), 4500);
        let young: VecDeque<_> = [(now, 9000)].into_iter().collect();
        assert_eq!(target(&young, now, 9500, &options), 0);
    }
}
