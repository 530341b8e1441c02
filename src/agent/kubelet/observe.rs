//! What the runtime says about one pod: its sandboxes and the instances of
//! each of its containers, found through the labels the kubelet puts on
//! everything it creates (so an agent restart finds them again).

use std::collections::HashMap;
use std::net::IpAddr;

use crate::agent::cri::{api, labels, Cri, Error};

/// One container instance (a restart makes a new one).
#[derive(Debug, Clone)]
pub struct Instance {
    pub id: String,
    pub restart_count: u32,
    pub created_at: i64,
    pub state: api::ContainerState,
    /// The detailed status (exit code, reason, times); fetched for the
    /// newest two instances of each container only.
    pub status: Option<api::ContainerStatus>,
}

impl Instance {
    pub fn running(&self) -> bool {
        self.state == api::ContainerState::ContainerRunning
    }

    pub fn exited(&self) -> bool {
        self.state == api::ContainerState::ContainerExited
    }

    pub fn exit_code(&self) -> Option<i32> {
        self.status
            .as_ref()
            .filter(|_| self.exited())
            .map(|s| s.exit_code)
    }

    /// Seconds since the epoch at which it started / finished, if known.
    pub fn started_at(&self) -> Option<i64> {
        self.status
            .as_ref()
            .map(|s| s.started_at)
            .filter(|t| *t > 0)
    }

    pub fn finished_at(&self) -> Option<i64> {
        self.status
            .as_ref()
            .map(|s| s.finished_at)
            .filter(|t| *t > 0)
    }
}

/// The pod's sandbox as the runtime reports it.
#[derive(Debug, Clone)]
pub struct Sandbox {
    pub id: String,
    pub ready: bool,
    pub attempt: u32,
    pub created_at: i64,
    pub ip: Option<IpAddr>,
}

/// Everything the runtime holds for one pod.
#[derive(Debug, Clone, Default)]
pub struct PodRuntime {
    /// Newest first.
    pub sandboxes: Vec<Sandbox>,
    /// Container name → instances, newest first.
    pub containers: HashMap<String, Vec<Instance>>,
}

impl PodRuntime {
    pub fn ready_sandbox(&self) -> Option<&Sandbox> {
        self.sandboxes.iter().find(|s| s.ready)
    }

    pub fn latest(&self, name: &str) -> Option<&Instance> {
        self.containers.get(name).and_then(|v| v.first())
    }

    pub fn previous(&self, name: &str) -> Option<&Instance> {
        self.containers.get(name).and_then(|v| v.get(1))
    }
}

fn restart_count(c: &api::Container) -> u32 {
    c.annotations
        .get(labels::RESTART_COUNT)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| c.metadata.as_ref().map(|m| m.attempt).unwrap_or(0))
}

/// Reads the pod's runtime state (three CRI calls plus one status call per
/// container instance that matters).
pub async fn observe(cri: &Cri, uid: &str) -> Result<PodRuntime, Error> {
    let by_uid = [(labels::POD_UID, uid)];
    let mut rt = PodRuntime::default();
    for s in cri.sandboxes_labelled(&by_uid).await? {
        let ready = s.state == api::PodSandboxState::SandboxReady as i32;
        let ip = if ready {
            sandbox_ip(cri, &s.id).await?
        } else {
            None
        };
        rt.sandboxes.push(Sandbox {
            ready,
            attempt: s.metadata.as_ref().map(|m| m.attempt).unwrap_or(0),
            created_at: s.created_at,
            ip,
            id: s.id,
        });
    }
    rt.sandboxes
        .sort_by_key(|s| std::cmp::Reverse(s.created_at));
    for c in cri.containers_labelled(&by_uid).await? {
        let Some(name) = c.labels.get(labels::CONTAINER_NAME).cloned() else {
            continue;
        };
        let state =
            api::ContainerState::try_from(c.state).unwrap_or(api::ContainerState::ContainerUnknown);
        rt.containers.entry(name).or_default().push(Instance {
            restart_count: restart_count(&c),
            created_at: c.created_at,
            state,
            status: None,
            id: c.id,
        });
    }
    for list in rt.containers.values_mut() {
        list.sort_by_key(|i| std::cmp::Reverse((i.restart_count, i.created_at)));
        for inst in list.iter_mut().take(2) {
            let resp = cri
                .runtime()
                .container_status(api::ContainerStatusRequest {
                    container_id: inst.id.clone(),
                    verbose: false,
                })
                .await;
            match resp {
                Ok(r) => inst.status = r.into_inner().status,
                // Removed between the list and now: the next sync sees it gone.
                Err(s) if s.code() == tonic::Code::NotFound => {}
                Err(s) => return Err(s.into()),
            }
        }
    }
    Ok(rt)
}

async fn sandbox_ip(cri: &Cri, id: &str) -> Result<Option<IpAddr>, Error> {
    let resp = cri
        .runtime()
        .pod_sandbox_status(api::PodSandboxStatusRequest {
            pod_sandbox_id: id.to_string(),
            verbose: false,
        })
        .await;
    let status = match resp {
        Ok(r) => r.into_inner().status,
        Err(s) if s.code() == tonic::Code::NotFound => None,
        Err(s) => return Err(s.into()),
    };
    Ok(status
        .and_then(|s| s.network)
        .and_then(|n| n.ip.parse().ok()))
}
