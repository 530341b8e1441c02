//! Finding a pod's containers and sandbox through CRI labels alone (the
//! labels every sandbox and container of this agent carries), so the
//! server needs nothing from the pod workers.

use crate::agent::cri::{api, labels, Cri, Error as CriError};

use super::params::Target;

fn restart_count(c: &api::Container) -> u32 {
    c.annotations
        .get(labels::RESTART_COUNT)
        .and_then(|v| v.parse().ok())
        .or_else(|| c.metadata.as_ref().map(|m| m.attempt))
        .unwrap_or(0)
}

fn running(c: &api::Container) -> bool {
    c.state == api::ContainerState::ContainerRunning as i32
}

/// Instances of one container of the pod. A pod deleted and created again
/// under its name may leave instances of the old one: only those of the
/// most recently created pod (or of `uid`, when given) count.
pub async fn instances(cri: &Cri, t: &Target) -> Result<Vec<api::Container>, CriError> {
    let mut want = vec![
        (labels::POD_NAMESPACE, t.namespace.as_str()),
        (labels::POD_NAME, t.pod.as_str()),
        (labels::CONTAINER_NAME, t.container.as_str()),
    ];
    if let Some(uid) = &t.uid {
        want.push((labels::POD_UID, uid.as_str()));
    }
    Ok(newest_pod(cri.containers_labelled(&want).await?))
}

fn newest_pod(mut list: Vec<api::Container>) -> Vec<api::Container> {
    let uid = list
        .iter()
        .max_by_key(|c| c.created_at)
        .and_then(|c| c.labels.get(labels::POD_UID).cloned());
    if let Some(uid) = uid {
        list.retain(|c| c.labels.get(labels::POD_UID) == Some(&uid));
    }
    list
}

/// The container's current instance: the running one, else the one with
/// the highest restart count (ties: the newest).
pub fn current(list: &[api::Container]) -> Option<&api::Container> {
    list.iter()
        .max_by_key(|c| (running(c), restart_count(c), c.created_at))
}

/// The instance `previous=true` means, as upstream's lastState: while the
/// current instance runs, the one before it (restart count one less);
/// when the current one has exited (a restart pending in back-off), that
/// one, which is what upstream's pod status shows as last terminated.
pub fn previous(list: &[api::Container]) -> Option<&api::Container> {
    let cur = current(list)?;
    if !running(cur) {
        return Some(cur);
    }
    let count = restart_count(cur);
    list.iter()
        .filter(|c| !running(c) && restart_count(c) < count)
        .max_by_key(|c| (restart_count(c), c.created_at))
}

/// The pod's sandbox: a ready one (newest), else the newest.
pub async fn sandbox(cri: &Cri, t: &Target) -> Result<Option<api::PodSandbox>, CriError> {
    let mut want = vec![
        (labels::POD_NAMESPACE, t.namespace.as_str()),
        (labels::POD_NAME, t.pod.as_str()),
    ];
    if let Some(uid) = &t.uid {
        want.push((labels::POD_UID, uid.as_str()));
    }
    let list = cri.sandboxes_labelled(&want).await?;
    Ok(list.into_iter().max_by_key(|s| {
        (
            s.state == api::PodSandboxState::SandboxReady as i32,
            s.created_at,
        )
    }))
}

/// A container's status (log path, state); `None` once it is gone.
pub async fn status(cri: &Cri, id: &str) -> Result<Option<api::ContainerStatus>, CriError> {
    match cri
        .runtime()
        .container_status(api::ContainerStatusRequest {
            container_id: id.to_string(),
            verbose: false,
        })
        .await
    {
        Ok(resp) => Ok(resp.into_inner().status),
        Err(s) if s.code() == tonic::Code::NotFound => Ok(None),
        Err(s) => Err(CriError::Call(s)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(id: &str, uid: &str, restart: u32, run: bool, created: i64) -> api::Container {
        api::Container {
            id: id.into(),
            state: if run {
                api::ContainerState::ContainerRunning as i32
            } else {
                api::ContainerState::ContainerExited as i32
            },
            created_at: created,
            labels: [(labels::POD_UID.to_string(), uid.to_string())].into(),
            annotations: [(labels::RESTART_COUNT.to_string(), restart.to_string())].into(),
            ..Default::default()
        }
    }

    fn id(c: Option<&api::Container>) -> Option<&str> {
        c.map(|c| c.id.as_str())
    }

    #[test]
    fn running_instance_and_the_one_before() {
        let list = vec![c("a", "u", 1, false, 1), c("b", "u", 2, true, 2)];
        assert_eq!(id(current(&list)), Some("b"));
        assert_eq!(id(previous(&list)), Some("a"));
        let only = vec![c("b", "u", 0, true, 2)];
        assert_eq!(id(previous(&only)), None);
    }

    #[test]
    fn exited_current_is_also_previous() {
        let list = vec![c("a", "u", 1, false, 1), c("b", "u", 2, false, 2)];
        assert_eq!(id(current(&list)), Some("b"));
        assert_eq!(id(previous(&list)), Some("b"));
        assert_eq!(id(current(&[])), None);
    }

    #[test]
    fn instances_of_an_older_pod_with_the_same_name_are_ignored() {
        let list = vec![c("old", "u1", 5, false, 1), c("new", "u2", 0, true, 9)];
        let list = newest_pod(list);
        assert_eq!(list.len(), 1);
        assert_eq!(id(current(&list)), Some("new"));
    }
}
