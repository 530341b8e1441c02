//! The node IPAM controller (upstream's range allocator): every Node gets a
//! `/node_cidr_mask_size` of the cluster CIDR in `spec.podCIDR(s)`, handed
//! out round-robin as upstream's cidrset does; a deleted node's range is
//! free again. The set of used ranges is rebuilt from the stored nodes
//! before the first allocation, so a restart never hands out a range twice.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};

use super::objects::{self, name};
use super::runtime::{self, Action, ObjectKey, Reconciler, WorkQueue};
use super::{Ctx, Error};
use crate::client::{Client, ListOptions, Local, PatchType, Recorder, ResourceId};

/// How long a node waits before trying again when the CIDR is exhausted.
const EXHAUSTED_RETRY: Duration = Duration::from_secs(30);

pub fn start(ctx: &Ctx) {
    let set = match CidrSet::new(&ctx.settings.cluster_cidr, ctx.settings.node_cidr_mask_size) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(cidr = ctx.settings.cluster_cidr, error = %e, "node ipam disabled");
            return;
        }
    };
    let queue = WorkQueue::new();
    let q = Arc::clone(&queue);
    runtime::watch(ctx.client.clone(), nodes(), None, move |_, node| {
        if let Some(k) = ObjectKey::of(node) {
            q.add(k);
        }
    });
    let reconciler = Arc::new(RangeAllocator {
        client: ctx.client.clone(),
        recorder: ctx.recorder("node-controller"),
        state: Mutex::new(State {
            set,
            by_node: HashMap::new(),
            loaded: false,
        }),
    });
    // One worker: allocations are rare and must not race each other.
    runtime::run("node-ipam", queue, reconciler, 1);
}

fn nodes() -> ResourceId {
    ResourceId::new("", "v1", "nodes")
}

/// The ranges of one cluster CIDR: index i is the i-th subnet.
#[derive(Debug)]
struct CidrSet {
    base: u32,
    mask: u8,
    used: Vec<bool>,
    /// Where the next search starts (round-robin, as upstream).
    next: usize,
}

impl CidrSet {
    fn new(cidr: &str, mask: u8) -> Result<Self, Error> {
        let invalid = || Error::Invalid(format!("invalid cluster cidr {cidr:?}"));
        // Only the first (IPv4) range of a dual-stack list is handed out.
        let first = cidr.split(',').next().unwrap_or("").trim();
        let (ip, bits) = first.split_once('/').ok_or_else(invalid)?;
        let ip: Ipv4Addr = ip.parse().map_err(|_| invalid())?;
        let prefix: u8 = bits.parse().map_err(|_| invalid())?;
        if prefix > 32 || mask > 32 || mask < prefix || mask - prefix > 24 {
            return Err(Error::Invalid(format!(
                "node cidr mask /{mask} does not fit in cluster cidr {cidr}"
            )));
        }
        let net_mask = if prefix == 0 {
            0
        } else {
            u32::MAX << (32 - prefix)
        };
        Ok(CidrSet {
            base: u32::from(ip) & net_mask,
            mask,
            used: vec![false; 1usize << (mask - prefix)],
            next: 0,
        })
    }

    fn cidr(&self, index: usize) -> String {
        let step = if self.mask == 32 {
            1
        } else {
            1u32 << (32 - self.mask)
        };
        let ip = Ipv4Addr::from(self.base + step * index as u32);
        format!("{ip}/{}", self.mask)
    }

    /// The index of `cidr` when it is one of this set's ranges.
    fn index_of(&self, cidr: &str) -> Option<usize> {
        let (ip, bits) = cidr.split_once('/')?;
        let ip: Ipv4Addr = ip.parse().ok()?;
        if bits.parse::<u8>().ok()? != self.mask {
            return None;
        }
        let offset = u32::from(ip).checked_sub(self.base)?;
        let step = if self.mask == 32 {
            1
        } else {
            1u64 << (32 - self.mask)
        };
        let index = (offset as u64 / step) as usize;
        (offset as u64 % step == 0 && index < self.used.len()).then_some(index)
    }

    fn occupy(&mut self, index: usize) {
        if let Some(u) = self.used.get_mut(index) {
            *u = true;
        }
    }

    fn release(&mut self, index: usize) {
        if let Some(u) = self.used.get_mut(index) {
            *u = false;
        }
    }

    fn allocate(&mut self) -> Option<usize> {
        let n = self.used.len();
        let found = (0..n)
            .map(|i| (self.next + i) % n)
            .find(|&i| !self.used[i])?;
        self.used[found] = true;
        self.next = (found + 1) % n;
        Some(found)
    }
}

struct State {
    set: CidrSet,
    /// Node name → its range index.
    by_node: HashMap<String, usize>,
    /// Whether the used ranges were read from the stored nodes.
    loaded: bool,
}

struct RangeAllocator {
    client: Local,
    recorder: Recorder,
    state: Mutex<State>,
}

fn pod_cidr(node: &Value) -> Option<&str> {
    node.get("spec")
        .and_then(|s| s.get("podCIDR"))
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty())
}

impl RangeAllocator {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Marks the ranges of every stored node used (once, before allocating).
    async fn load(&self) -> Result<(), Error> {
        if self.lock().loaded {
            return Ok(());
        }
        let list = self
            .client
            .list(&nodes(), None, &ListOptions::default())
            .await?;
        let mut st = self.lock();
        for node in &list.items {
            if let Some(i) = pod_cidr(node).and_then(|c| st.set.index_of(c)) {
                st.set.occupy(i);
                st.by_node.insert(name(node).to_string(), i);
            }
        }
        st.loaded = true;
        tracing::info!(nodes = list.items.len(), "node ipam: used ranges loaded");
        Ok(())
    }
}

impl Reconciler for RangeAllocator {
    async fn reconcile(&self, key: &ObjectKey) -> Result<Action, Error> {
        self.load().await?;
        let node = match self.client.get(&nodes(), None, &key.name).await {
            Ok(n) => n,
            Err(e) if e.is_not_found() => {
                let mut st = self.lock();
                if let Some(i) = st.by_node.remove(&key.name) {
                    st.set.release(i);
                    tracing::debug!(node = key.name, "node ipam: range released");
                }
                return Ok(Action::Done);
            }
            Err(e) => return Err(e.into()),
        };
        if let Some(cidr) = pod_cidr(&node) {
            let mut st = self.lock();
            if let Some(i) = st.set.index_of(cidr) {
                st.set.occupy(i);
                st.by_node.insert(key.name.clone(), i);
            }
            return Ok(Action::Done);
        }
        if objects::is_deleting(&node) {
            return Ok(Action::Done);
        }
        let allocated = {
            let mut st = self.lock();
            match st.by_node.get(&key.name) {
                Some(&i) => Some(i),
                None => st.set.allocate(),
            }
            .map(|i| {
                st.by_node.insert(key.name.clone(), i);
                (i, st.set.cidr(i))
            })
        };
        let Some((index, cidr)) = allocated else {
            self.recorder.normal(
                &node,
                "CIDRNotAvailable",
                &format!("Node {} status is now: CIDRNotAvailable", key.name),
            );
            return Ok(Action::RequeueAfter(EXHAUSTED_RETRY));
        };
        let patch = json!({"metadata": {"uid": objects::uid(&node)},
            "spec": {"podCIDR": cidr, "podCIDRs": [cidr]}});
        match self
            .client
            .patch(&nodes(), None, &key.name, PatchType::Merge, &patch, None)
            .await
        {
            Ok(_) => {
                tracing::info!(node = key.name, cidr, "node ipam: pod cidr assigned");
                Ok(Action::Done)
            }
            Err(e) => {
                // Not written: the range is free again (the node may be gone).
                let mut st = self.lock();
                st.by_node.remove(&key.name);
                st.set.release(index);
                if e.is_not_found() {
                    return Ok(Action::Done);
                }
                Err(e.into())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_handed_out_round_robin_and_reused_after_release() {
        let mut set = CidrSet::new("10.42.0.0/16", 24).unwrap();
        assert_eq!(set.used.len(), 256);
        let a = set.allocate().unwrap();
        let b = set.allocate().unwrap();
        let c = set.allocate().unwrap();
        assert_eq!(set.cidr(a), "10.42.0.0/24");
        assert_eq!(set.cidr(b), "10.42.1.0/24");
        set.release(a);
        // Round-robin: the freed range comes back only after the others.
        assert_eq!(set.cidr(c), "10.42.2.0/24");
        let d = set.allocate().unwrap();
        assert_eq!(set.cidr(d), "10.42.3.0/24");
        assert_eq!(set.index_of("10.42.1.0/24"), Some(1));
        assert_eq!(set.index_of("10.42.1.0/25"), None);
        assert_eq!(set.index_of("10.43.0.0/24"), None);
    }

    #[test]
    fn an_exhausted_cidr_allocates_nothing() {
        let mut set = CidrSet::new("10.0.0.0/30", 31).unwrap();
        let a = set.allocate().unwrap();
        let b = set.allocate().unwrap();
        assert_eq!(
            (set.cidr(a), set.cidr(b)),
            ("10.0.0.0/31".into(), "10.0.0.2/31".into())
        );
        assert_eq!(set.allocate(), None);
        set.occupy(0);
        set.release(1);
        assert_eq!(set.allocate(), Some(1));
    }

    #[test]
    fn bad_cidrs_are_refused() {
        assert!(CidrSet::new("10.42.0.0", 24).is_err());
        assert!(CidrSet::new("10.42.0.0/16", 8).is_err());
        assert!(CidrSet::new("x/16", 24).is_err());
        let set = CidrSet::new("10.42.7.9/16, fd00::/48", 24).unwrap();
        assert_eq!(set.cidr(3), "10.42.3.0/24");
    }
}
