//! Leases live in memory; only grant and revoke are persisted. Renewals are
//! not written to disk (an idle cluster renewing leases must not wear the
//! disk): after a restart every lease gets its full TTL again, as etcd does
//! without lease checkpointing.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

/// etcd's upper bound for a lease TTL, in seconds.
pub const MAX_TTL: i64 = 9_000_000_000;

struct Lease {
    ttl: i64,
    expires: Instant,
    keys: BTreeSet<Vec<u8>>,
}

#[derive(Default)]
pub struct Leases {
    leases: HashMap<i64, Lease>,
}

fn expiry(ttl: i64) -> Instant {
    let secs = u64::try_from(ttl.max(1)).unwrap_or(u64::MAX);
    // Far-future TTLs saturate instead of overflowing Instant.
    Instant::now()
        .checked_add(Duration::from_secs(secs))
        .unwrap_or_else(|| Instant::now() + Duration::from_secs(100 * 365 * 86_400))
}

impl Leases {
    pub fn contains(&self, id: i64) -> bool {
        self.leases.contains_key(&id)
    }

    pub fn grant(&mut self, id: i64, ttl: i64) {
        self.leases.insert(
            id,
            Lease {
                ttl,
                expires: expiry(ttl),
                keys: BTreeSet::new(),
            },
        );
    }

    /// Removes the lease; returns its keys.
    pub fn revoke(&mut self, id: i64) -> Option<Vec<Vec<u8>>> {
        self.leases
            .remove(&id)
            .map(|lease| lease.keys.into_iter().collect())
    }

    pub fn renew(&mut self, id: i64) -> Option<i64> {
        let lease = self.leases.get_mut(&id)?;
        lease.expires = expiry(lease.ttl);
        Some(lease.ttl)
    }

    /// (remaining seconds, granted ttl, keys)
    pub fn time_to_live(&self, id: i64) -> Option<(i64, i64, Vec<Vec<u8>>)> {
        let lease = self.leases.get(&id)?;
        let remaining = lease
            .expires
            .saturating_duration_since(Instant::now())
            .as_secs_f64()
            .round() as i64;
        Some((remaining, lease.ttl, lease.keys.iter().cloned().collect()))
    }

    pub fn ids(&self) -> Vec<i64> {
        let mut ids: Vec<i64> = self.leases.keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    pub fn is_expired(&self, id: i64) -> bool {
        self.leases
            .get(&id)
            .is_some_and(|l| l.expires <= Instant::now())
    }

    pub fn expired(&self) -> Vec<i64> {
        let now = Instant::now();
        self.leases
            .iter()
            .filter(|(_, l)| l.expires <= now)
            .map(|(id, _)| *id)
            .collect()
    }

    pub fn attach(&mut self, id: i64, key: &[u8]) {
        if let Some(lease) = self.leases.get_mut(&id) {
            lease.keys.insert(key.to_vec());
        }
    }

    pub fn detach(&mut self, id: i64, key: &[u8]) {
        if let Some(lease) = self.leases.get_mut(&id) {
            lease.keys.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grant_attach_revoke() {
        let mut leases = Leases::default();
        leases.grant(7, 30);
        leases.attach(7, b"a");
        leases.attach(8, b"b");
        let (ttl, granted, keys) = leases.time_to_live(7).unwrap();
        assert!((29..=30).contains(&ttl));
        assert_eq!(granted, 30);
        assert_eq!(keys, vec![b"a".to_vec()]);
        assert_eq!(leases.revoke(7), Some(vec![b"a".to_vec()]));
        assert!(leases.revoke(7).is_none());
    }

    #[test]
    fn huge_ttl_does_not_overflow() {
        let mut leases = Leases::default();
        leases.grant(1, MAX_TTL);
        assert!(!leases.is_expired(1));
        assert!(leases.expired().is_empty());
    }
}
