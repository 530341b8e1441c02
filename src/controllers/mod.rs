//! Control loops running inside the server process, each reading the shared
//! watch cache through the in-process client. `runtime/` has the queues,
//! event sources and workers; one file per controller.

mod bootstrap_token_cleaner;
mod clusterrole_aggregation;
mod cronjob;
mod daemonset;
mod deployment;
mod disruption;
mod endpoints;
mod endpointslice;
mod garbage_collector;
mod hash;
mod job;
mod namespace;
mod node_ipam;
mod node_lifecycle;
mod objects;
mod pod_gc;
mod pv_binder;
mod replicaset;
mod replicationcontroller;
mod resourcequota;
mod runtime;
mod sa_token_secret;
mod serviceaccount;
mod servicelb;
mod statefulset;
mod ttl_after_finished;

use std::sync::Arc;
use std::time::Duration;

use crate::api::Api;
use crate::client::{ClientError, Local, Recorder};

/// The controllers' error: what a reconcile can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Client(#[from] ClientError),
    /// An object that cannot be acted on as it is (bad selector, bad template).
    #[error("{0}")]
    Invalid(String),
}

impl Error {
    pub fn is_conflict(&self) -> bool {
        matches!(self, Error::Client(e) if e.is_conflict())
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, Error::Client(e) if e.is_not_found())
    }
}

/// Tunables of the control loops (server flags).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Pod network; each node gets a /`node_cidr_mask_size` of it.
    pub cluster_cidr: String,
    pub node_cidr_mask_size: u8,
    /// A node whose Lease is older than this is marked Unknown and tainted.
    pub node_monitor_grace_period: Duration,
    /// Terminated pods kept before the oldest are deleted.
    pub terminated_pod_gc_threshold: usize,
    /// Elect one server to run the loops (several servers, one datastore).
    pub leader_elect: bool,
    /// This server's name in the election.
    pub identity: String,
    /// The cluster's server CA (PEM), published as kube-root-ca.crt.
    pub server_ca_pem: Option<String>,
    /// Runs the built-in service load balancer (`--disable servicelb`).
    pub servicelb: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            cluster_cidr: "10.42.0.0/16".into(),
            node_cidr_mask_size: 24,
            node_monitor_grace_period: Duration::from_secs(40),
            terminated_pod_gc_threshold: 12500,
            leader_elect: false,
            identity: String::new(),
            server_ca_pem: None,
            servicelb: true,
        }
    }
}

/// Starts the controllers and the scheduler; they run until the runtime shuts down. A single
/// server is the leader without writing anything (nothing to elect).
pub fn start(api: Arc<Api>, settings: Settings) {
    let ctx = Ctx {
        client: Local::new(api.clone()),
        settings: Arc::new(settings),
    };
    tokio::spawn(async move {
        if ctx.settings.leader_elect {
            let identity = format!("{}_{}", ctx.settings.identity, crate::api::meta::new_uid());
            let mut elector = runtime::Elector::new(ctx.client.clone(), LEADER_LEASE, &identity);
            elector.acquire().await;
            tokio::spawn(async move {
                elector.keep().await;
                // Upstream's controller manager exits too: two leaders
                // would fight over every object.
                tracing::error!("lost the controllers' leader lease; exiting");
                std::process::exit(1);
            });
        }
        start_loops(&ctx);
        crate::scheduler::start(api);
    });
}

/// The Lease in kube-system the servers elect a leader with.
const LEADER_LEASE: &str = "nanokube-controllers";

fn start_loops(ctx: &Ctx) {
    tokio::spawn(namespace::run(ctx.client.clone()));
    for start in [
        replicaset::start,
        replicationcontroller::start,
        deployment::start,
        statefulset::start,
        daemonset::start,
        job::start,
        cronjob::start,
        ttl_after_finished::start,
        garbage_collector::start,
        pod_gc::start,
        endpoints::start,
        endpointslice::start,
        serviceaccount::start,
        sa_token_secret::start,
        servicelb::start,
        node_lifecycle::start,
        node_ipam::start,
        pv_binder::start,
        resourcequota::start,
        disruption::start,
        clusterrole_aggregation::start,
        bootstrap_token_cleaner::start,
    ] {
        start(ctx);
    }
}

/// What every controller gets: the in-process client and the settings.
#[derive(Clone)]
pub struct Ctx {
    pub client: Local,
    pub settings: Arc<Settings>,
}

impl Ctx {
    /// An event recorder reporting as `component` (e.g. "replicaset-controller").
    pub fn recorder(&self, component: &str) -> Recorder {
        Recorder::new(self.client.clone(), component)
    }
}
