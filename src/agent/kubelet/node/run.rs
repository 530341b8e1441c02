//! The node's status loop: register (retrying while the API is away),
//! renew the Lease every 10 s, and every 10 s (or when told something
//! changed) observe the machine and the runtime and write the status only
//! if it differs from the last one written or 5 minutes passed.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Map, Value};
use tokio::sync::watch as channel;
use tokio::time::Instant;

use super::conditions::{self, Health};
use super::eviction::{self, Thresholds};
use super::lease::{self, Lease};
use super::pressure::{self, Smoother};
use super::register::{self, nodes};
use super::resources::{self, Allocatable, Reserved};
use super::status::{self, Fixed};
use super::sysinfo::{self, Identity};
use super::{imagegc, NodeError, NodeSettings, RuntimeStatus, Shared};
use crate::agent::cri::api;
use crate::agent::cri::Cri;
use crate::client::{Client, PatchType};

/// Upstream's nodeStatusUpdateFrequency: how often status is computed.
const SYNC_EVERY: Duration = Duration::from_secs(10);
/// The image list is read again at most this often (upstream's image cache).
const IMAGES_EVERY: Duration = Duration::from_secs(30);
const RETRY: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Until the kubelet says the pod network is configured (upstream's text).
pub const NETWORK_NOT_READY: &str =
    "NetworkReady=false reason:NetworkPluginNotReady message:cni config uninitialized";

/// The settings checked and the machine read, once at start.
pub struct Prepared {
    pub name: String,
    pub node_ip: IpAddr,
    pub kubelet_port: u16,
    pub labels: Map<String, Value>,
    pub taints: Vec<Value>,
    pub capacity: Allocatable,
    pub allocatable: Allocatable,
    pub identity: Identity,
    pub agent_dir: PathBuf,
    pub image_fs_fallback: PathBuf,
    pub eviction: Thresholds,
}

fn flag_error(flag: &'static str, value: &str, reason: String) -> NodeError {
    NodeError::Flag {
        flag,
        value: value.to_string(),
        reason,
    }
}

pub fn prepare(s: &NodeSettings) -> Result<Prepared, NodeError> {
    let name = register::node_name(&s.name).map_err(|reason| NodeError::Name {
        name: s.name.clone(),
        reason,
    })?;
    let mut local = crate::pki::local_addresses();
    // The default route's interface first: a pod bridge may sort earlier.
    if let Some(ip) = crate::pki::default_route_address() {
        local.insert(0, ip);
    }
    let node_ip = node_ip(s.node_ip, &local)?;
    let extra = register::parse_labels(&s.labels)
        .map_err(|e| flag_error("--node-label", &s.labels.join(","), e))?;
    let labels = register::labels(&name, &extra, s.server_role);
    let taints = register::parse_taints(&s.taints)
        .map_err(|e| flag_error("--node-taint", &s.taints.join(","), e))?;
    let reserved = |flag: &'static str, v: &Option<String>| match v {
        None => Ok(Reserved::default()),
        Some(text) => resources::parse_reserved(text).map_err(|e| flag_error(flag, text, e)),
    };
    let kube = reserved("--kube-reserved", &s.kube_reserved)?;
    let system = reserved("--system-reserved", &s.system_reserved)?;
    if s.image_gc_high > 100 || s.image_gc_low >= s.image_gc_high {
        return Err(flag_error(
            "--image-gc-low-threshold",
            &s.image_gc_low.to_string(),
            format!(
                "must be less than --image-gc-high-threshold ({}), which must be at most 100",
                s.image_gc_high
            ),
        ));
    }
    let eviction = match &s.eviction_hard {
        None => Thresholds::default(),
        Some(text) => eviction::parse(text).map_err(|e| flag_error("--eviction-hard", text, e))?,
    };
    let memory = sysinfo::meminfo().map_err(NodeError::Machine)?;
    let disk = sysinfo::fs_stats(&s.agent_dir).map_err(NodeError::Machine)?;
    let capacity = Allocatable {
        cpu_millis: sysinfo::cpu_millis(),
        memory: i64::try_from(memory.total).unwrap_or(i64::MAX),
        pods: i64::from(s.max_pods),
        ephemeral_storage: i64::try_from(disk.capacity).unwrap_or(i64::MAX),
    };
    Ok(Prepared {
        allocatable: resources::allocatable(&capacity, &kube, &system, &eviction),
        eviction,
        capacity,
        name,
        node_ip,
        kubelet_port: s.kubelet_port,
        labels,
        taints,
        identity: sysinfo::identity(),
        agent_dir: s.agent_dir.clone(),
        image_fs_fallback: s.agent_dir.join("containerd").join("root"),
    })
}

/// The configured address, else the first IPv4 address of the machine
/// (`local_addresses` leaves out loopback and link-local), else IPv6.
pub fn node_ip(configured: Option<IpAddr>, local: &[IpAddr]) -> Result<IpAddr, NodeError> {
    match configured {
        Some(ip) if ip.is_loopback() || ip.is_unspecified() => Err(NodeError::BadAddress(ip)),
        Some(ip) => Ok(ip),
        None => local
            .iter()
            .find(|a| a.is_ipv4())
            .or_else(|| local.first())
            .copied()
            .ok_or(NodeError::NoAddress),
    }
}

/// `metav1.Time` now.
fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// What the loop keeps between rounds.
struct State {
    uid: Option<String>,
    lease: Lease,
    last_sent: Option<Value>,
    last_report: Option<Instant>,
    images: Value,
    images_at: Option<Instant>,
    image_fs: PathBuf,
    smoother: Smoother,
}

pub async fn run<C: Client + Clone>(
    client: C,
    cri: Cri,
    shared: Arc<Shared>,
    p: Arc<Prepared>,
    mut runtime: channel::Receiver<RuntimeStatus>,
    mut stop: channel::Receiver<bool>,
) {
    let mut st = State {
        uid: None,
        lease: Lease::default(),
        last_sent: None,
        last_report: None,
        images: json!([]),
        images_at: None,
        image_fs: p.image_fs_fallback.clone(),
        smoother: Smoother::default(),
    };
    let mut backoff = RETRY;
    let mut lease_failing = false;
    let mut runtime_open = true;
    let (mut next_lease, mut next_sync) = (Instant::now(), Instant::now());
    loop {
        if *stop.borrow() {
            return;
        }
        if shared.take(|f| &mut f.deleted) {
            tracing::warn!(
                node = p.name,
                "the node was deleted; it registers again when the agent restarts"
            );
            let _ = stop.wait_for(|s| *s).await;
            return;
        }
        let Some(uid) = st.uid.clone() else {
            match register::register(&client, &p.name, &p.labels, &p.taints).await {
                Ok(node) => {
                    let uid = node["metadata"]["uid"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string();
                    shared.flag(|f| f.registered = Some(uid.clone()));
                    shared.seen(Arc::new(node));
                    st.uid = Some(uid);
                    (next_lease, next_sync) = (Instant::now(), Instant::now());
                    backoff = RETRY;
                }
                Err(e) => {
                    tracing::warn!(node = p.name, error = %e, "registering the node failed; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = stop.wait_for(|s| *s) => return,
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
            continue;
        };
        if Instant::now() >= next_lease {
            match st.lease.renew(&client, &p.name, &uid).await {
                Err(e) if !lease_failing => {
                    lease_failing = true;
                    tracing::warn!(node = p.name, error = %e, "renewing the node lease failed");
                }
                Err(e) => {
                    tracing::debug!(node = p.name, error = %e, "renewing the node lease failed")
                }
                Ok(()) => lease_failing = false,
            }
            next_lease = Instant::now() + lease::RENEW_EVERY;
        }
        let asked = shared.take(|f| &mut f.report);
        if asked || Instant::now() >= next_sync {
            next_sync = Instant::now() + SYNC_EVERY;
            sync(&client, &cri, &shared, &p, &runtime, &mut st, asked).await;
        }
        tokio::select! {
            _ = tokio::time::sleep_until(next_lease.min(next_sync)) => {}
            _ = shared.wake.notified() => {}
            r = runtime.changed(), if runtime_open => match r {
                Ok(()) => shared.flag(|f| f.report = true),
                Err(_) => runtime_open = false,
            },
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// One status round: observe, compute, write if due.
async fn sync<C: Client>(
    client: &C,
    cri: &Cri,
    shared: &Shared,
    p: &Prepared,
    runtime: &channel::Receiver<RuntimeStatus>,
    st: &mut State,
    asked: bool,
) {
    let now_i = Instant::now();
    // Asked (an image was pulled?): read again, but not more than once a second.
    let max_age = if asked {
        Duration::from_secs(1)
    } else {
        IMAGES_EVERY
    };
    if st.images_at.is_none_or(|t| now_i - t >= max_age) {
        refresh_images(cri, p, st).await;
    }
    let met = pressure::signals(&pressure::observe(&p.agent_dir, &st.image_fs), &p.eviction);
    if let Ok(mut cur) = shared.pressure.lock() {
        *cur = met;
    }
    let rt = runtime.borrow().clone();
    let network = shared
        .network
        .lock()
        .map(|n| n.clone())
        .unwrap_or_else(|_| Err("unknown".into()));
    let health = Health {
        runtime: rt.healthy,
        network,
        pressure: st.smoother.apply(met, now_i.into_std()),
    };
    let server = shared.server();
    let server_conditions = server.as_ref().map(|n| &n["status"]["conditions"]);
    let conds = conditions::conditions(&health, server_conditions, &now());
    let fixed = Fixed {
        name: &p.name,
        node_ip: p.node_ip,
        kubelet_port: p.kubelet_port,
        capacity: &p.capacity,
        allocatable: &p.allocatable,
        identity: &p.identity,
    };
    let status = status::node_status(&fixed, conds, &rt.version, &st.images);
    // Changed since our last write, or someone else changed our conditions
    // (the lifecycle controller's Unknown) even if ours did not move.
    let changed = st
        .last_sent
        .as_ref()
        .is_none_or(|last| conditions::status_changed(last, &status))
        || server_conditions
            .is_some_and(|theirs| conditions::changed_by_others(theirs, &status["conditions"]));
    if !conditions::should_report(changed, st.last_report.map(|t| now_i - t)) {
        return;
    }
    let patch = json!({ "status": status });
    let sub = Some("status");
    match client
        .patch(&nodes(), None, &p.name, PatchType::Strategic, &patch, sub)
        .await
    {
        Ok(node) => {
            log_readiness(&p.name, st.last_sent.as_ref(), &status, &health);
            shared.set_sent(status["conditions"].clone());
            shared.seen(Arc::new(node));
            st.last_sent = Some(status);
            st.last_report = Some(now_i);
        }
        Err(e) => tracing::warn!(node = p.name, error = %e, "reporting node status failed"),
    }
}

async fn refresh_images(cri: &Cri, p: &Prepared, st: &mut State) {
    let listed = cri
        .images()
        .list_images(api::ListImagesRequest { filter: None })
        .await;
    match listed {
        Ok(resp) => {
            st.images = status::node_images(&resp.into_inner().images);
            st.images_at = Some(Instant::now());
            st.image_fs = imagegc::image_fs(cri, &p.image_fs_fallback).await;
        }
        // The runtime is away: keep the last list; Ready says why.
        Err(e) => tracing::debug!(error = %e, "listing images failed"),
    }
}

fn log_readiness(name: &str, last: Option<&Value>, new: &Value, h: &Health) {
    let ready = |s: &Value| {
        s["conditions"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"))
            .map(|c| c["status"] == "True")
    };
    let now_ready = ready(new);
    if last.and_then(ready) == now_ready {
        return;
    }
    match conditions::not_ready_message(h) {
        None => tracing::info!(node = name, "node is ready"),
        Some(why) => tracing::info!(node = name, reason = why, "node is not ready"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ip_prefers_the_flag_then_ipv4() {
        let v6: IpAddr = "fd00::5".parse().unwrap();
        let v4: IpAddr = "10.1.2.3".parse().unwrap();
        assert_eq!(node_ip(None, &[v6, v4]).unwrap(), v4);
        assert_eq!(node_ip(None, &[v6]).unwrap(), v6);
        assert!(matches!(node_ip(None, &[]), Err(NodeError::NoAddress)));
        let flag: IpAddr = "192.168.1.9".parse().unwrap();
        assert_eq!(node_ip(Some(flag), &[v4]).unwrap(), flag);
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        assert!(matches!(
            node_ip(Some(lo), &[v4]),
            Err(NodeError::BadAddress(_))
        ));
    }
}
