//! The scheduling queue, as upstream's: an active heap by priority (then
//! arrival), a backoff heap (1 s doubling to 10 s per attempt), and the
//! unschedulable pods that wait for a cluster change or 60 s.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::objects::PodInfo;

const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// Unschedulable pods are retried at least this often.
pub const MAX_UNSCHEDULABLE: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Where {
    Active,
    Backoff,
    Unschedulable,
    /// Popped and being scheduled (or bound).
    InFlight,
}

struct Entry {
    pod: Arc<PodInfo>,
    place: Where,
    /// Bumped whenever the entry is pushed; stale heap items are skipped.
    generation: u64,
    attempts: u32,
    last_try: Instant,
    since: Instant,
    /// A cluster change happened while the pod was in flight.
    moved: bool,
}

#[derive(Default)]
pub struct Queue {
    entries: HashMap<String, Entry>,
    /// (priority, earlier first, key, generation).
    active: BinaryHeap<(i64, Reverse<u64>, String, u64)>,
    backoff: BinaryHeap<Reverse<(Instant, String, u64)>>,
    unschedulable: HashSet<String>,
    in_flight: HashSet<String>,
    seq: u64,
}

impl Queue {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    fn push_active(&mut self, key: &str) {
        self.seq += 1;
        let seq = self.seq;
        if let Some(e) = self.entries.get_mut(key) {
            self.unschedulable.remove(key);
            self.in_flight.remove(key);
            e.place = Where::Active;
            e.generation = seq;
            self.active
                .push((e.pod.priority, Reverse(seq), key.to_string(), seq));
        }
    }

    fn push_backoff_or_active(&mut self, key: &str, now: Instant) {
        let Some(e) = self.entries.get_mut(key) else {
            return;
        };
        let until = e.last_try + backoff(e.attempts);
        if until <= now {
            self.push_active(key);
            return;
        }
        self.seq += 1;
        e.place = Where::Backoff;
        e.generation = self.seq;
        self.unschedulable.remove(key);
        self.in_flight.remove(key);
        self.backoff
            .push(Reverse((until, key.to_string(), self.seq)));
    }

    /// A pending pod was seen (new or updated).
    pub fn add_or_update(&mut self, pod: Arc<PodInfo>, now: Instant) {
        let key = pod.key.clone();
        match self.entries.get_mut(&key) {
            None => {
                self.entries.insert(
                    key.clone(),
                    Entry {
                        pod,
                        place: Where::Active,
                        generation: 0,
                        attempts: 0,
                        last_try: now,
                        since: now,
                        moved: false,
                    },
                );
                self.push_active(&key);
            }
            Some(e) => {
                let priority_changed = e.pod.priority != pod.priority;
                e.pod = pod;
                match e.place {
                    Where::InFlight => e.moved = true,
                    Where::Unschedulable => self.push_backoff_or_active(&key, now),
                    Where::Active if priority_changed => self.push_active(&key),
                    _ => {}
                }
            }
        }
    }

    pub fn remove(&mut self, key: &str) -> Option<Arc<PodInfo>> {
        self.unschedulable.remove(key);
        self.in_flight.remove(key);
        self.entries.remove(key).map(|e| e.pod)
    }

    /// The next pod to schedule, if one is ready.
    pub fn pop(&mut self, now: Instant) -> Option<Arc<PodInfo>> {
        while let Some(Reverse((until, key, generation))) = self.backoff.peek().cloned() {
            if until > now {
                break;
            }
            self.backoff.pop();
            if self
                .entries
                .get(&key)
                .is_some_and(|e| e.generation == generation)
            {
                self.push_active(&key);
            }
        }
        while let Some((_, _, key, generation)) = self.active.pop() {
            let Some(e) = self.entries.get_mut(&key) else {
                continue;
            };
            if e.generation != generation || e.place != Where::Active {
                continue;
            }
            e.place = Where::InFlight;
            self.in_flight.insert(key.clone());
            e.attempts += 1;
            e.last_try = now;
            e.moved = false;
            return Some(e.pod.clone());
        }
        None
    }

    /// The pod was bound: it leaves the queue.
    pub fn done(&mut self, key: &str) {
        self.remove(key);
    }

    /// The pod fits nowhere: it waits for a cluster change (or backs off at
    /// once when one came while it was being scheduled).
    pub fn unschedulable(&mut self, key: &str, now: Instant) {
        let Some(e) = self.entries.get_mut(key) else {
            return;
        };
        if e.moved {
            self.push_backoff_or_active(key, now);
        } else {
            self.in_flight.remove(key);
            e.place = Where::Unschedulable;
            e.since = now;
            self.unschedulable.insert(key.to_string());
        }
    }

    /// Retry after an error (binding failed): back off.
    pub fn retry(&mut self, key: &str, now: Instant) {
        self.push_backoff_or_active(key, now);
    }

    /// A cluster change: unschedulable pods (those `interested` in it) go
    /// back to backoff or active; pods in flight are marked.
    pub fn move_all(&mut self, now: Instant, interested: impl Fn(&PodInfo) -> bool) {
        let keys: Vec<String> = self
            .unschedulable
            .iter()
            .filter(|k| self.entries.get(*k).is_some_and(|e| interested(&e.pod)))
            .cloned()
            .collect();
        for k in keys {
            self.push_backoff_or_active(&k, now);
        }
        for k in &self.in_flight {
            if let Some(e) = self.entries.get_mut(k) {
                e.moved = true;
            }
        }
    }

    /// Moves pods unschedulable for longer than [`MAX_UNSCHEDULABLE`].
    pub fn flush_stale(&mut self, now: Instant) {
        let keys: Vec<String> = self
            .unschedulable
            .iter()
            .filter(|k| {
                self.entries
                    .get(*k)
                    .is_some_and(|e| now.duration_since(e.since) >= MAX_UNSCHEDULABLE)
            })
            .cloned()
            .collect();
        for k in keys {
            self.push_backoff_or_active(&k, now);
        }
    }

    /// When something next becomes ready without any event.
    pub fn next_wakeup(&self) -> Option<Instant> {
        let backoff = self.backoff.peek().map(|Reverse((t, _, _))| *t);
        let stale = self
            .unschedulable
            .iter()
            .filter_map(|k| self.entries.get(k))
            .map(|e| e.since + MAX_UNSCHEDULABLE)
            .min();
        match (backoff, stale) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Pending pods (any state) for preemption bookkeeping.
    pub fn pods(&self) -> impl Iterator<Item = &Arc<PodInfo>> {
        self.entries.values().map(|e| &e.pod)
    }
}

/// 1 s doubling per attempt, at most 10 s.
fn backoff(attempts: u32) -> Duration {
    let shift = attempts.saturating_sub(1).min(8);
    (INITIAL_BACKOFF * (1u32 << shift)).min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, priority: i64) -> Arc<PodInfo> {
        let obj = json!({"metadata": {"name": name, "namespace": "d"},
            "spec": {"priority": priority, "containers": [{}]}});
        Arc::new(PodInfo::parse(Arc::new(obj), |_| None))
    }

    #[test]
    fn higher_priority_first_then_arrival() {
        let now = Instant::now();
        let mut q = Queue::default();
        q.add_or_update(pod("a", 0), now);
        q.add_or_update(pod("b", 10), now);
        q.add_or_update(pod("c", 0), now);
        let order: Vec<String> =
            std::iter::from_fn(|| q.pop(now).map(|p| p.name.clone())).collect();
        assert_eq!(order, ["b", "a", "c"]);
    }

    #[test]
    fn unschedulable_pods_wait_for_a_move_then_back_off() {
        let now = Instant::now();
        let mut q = Queue::default();
        q.add_or_update(pod("a", 0), now);
        assert!(q.pop(now).is_some());
        q.unschedulable("d/a", now);
        assert!(q.pop(now + Duration::from_secs(5)).is_none());
        q.move_all(now, |_| true);
        // First attempt: 1 s backoff.
        assert!(q.pop(now).is_none());
        assert_eq!(q.next_wakeup(), Some(now + Duration::from_secs(1)));
        assert!(q.pop(now + Duration::from_secs(1)).is_some());
        // Not moved: retried after 60 s anyway.
        q.unschedulable("d/a", now + Duration::from_secs(1));
        q.flush_stale(now + Duration::from_secs(62));
        assert!(q.pop(now + Duration::from_secs(62)).is_some());
        assert_eq!(backoff(1), Duration::from_secs(1));
        assert_eq!(backoff(3), Duration::from_secs(4));
        assert_eq!(backoff(9), Duration::from_secs(10));
    }

    #[test]
    fn a_change_during_scheduling_is_not_lost() {
        let now = Instant::now();
        let mut q = Queue::default();
        q.add_or_update(pod("a", 0), now);
        assert!(q.pop(now).is_some());
        q.move_all(now, |_| true);
        q.unschedulable("d/a", now);
        assert!(q.pop(now + Duration::from_secs(1)).is_some());
    }
}
