//! The pods of this node: one watch of the pods bound to it feeds one
//! worker per pod; a relist of the runtime every second (upstream's PLEG)
//! wakes the workers whose containers changed; sandboxes of pods the API no
//! longer has are removed.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use tokio::sync::mpsc;

use super::worker::{self, Msg};
use super::Ctx;
use crate::agent::cri::{api, labels};
use crate::api::selector::FieldSelector;
use crate::client::{self, Client, EventKind, Followed, ResourceId};

const RELIST: Duration = Duration::from_secs(1);

type Workers = Arc<Mutex<HashMap<String, mpsc::UnboundedSender<Msg>>>>;

/// Starts the pods watch, the relist and the orphan cleanup; they run
/// until the runtime ends.
pub fn start<C: Client + Clone>(
    ctx: Arc<Ctx<C>>,
    mut done: mpsc::UnboundedReceiver<String>,
) -> Result<(), String> {
    let workers: Workers = Arc::default();
    let fields = FieldSelector::parse(&format!("spec.nodeName={}", ctx.node_name))
        .map_err(|e| format!("node name {:?}: {e}", ctx.node_name))?;
    let (listed_tx, listed_rx) = tokio::sync::watch::channel::<Option<HashSet<String>>>(None);
    {
        let ctx = ctx.clone();
        let workers = workers.clone();
        client::follow_selected(
            ctx.client.clone(),
            ResourceId::new("", "v1", "pods"),
            fields,
            move |f| {
                match f {
                    Followed::Listed(items) => {
                        let pods: Vec<Pod> = items
                            .iter()
                            .filter_map(|v| serde_json::from_value((**v).clone()).ok())
                            .collect();
                        let live: HashSet<String> = pods.iter().map(worker::uid).collect();
                        if let Ok(mut w) = workers.lock() {
                            for (uid, tx) in w.iter() {
                                if !live.contains(uid) {
                                    let _ = tx.send(Msg::Gone);
                                }
                            }
                            for pod in pods {
                                upsert(&ctx, &mut w, pod);
                            }
                        }
                        let _ = listed_tx.send(Some(live));
                    }
                    Followed::Event { kind, object } => {
                        let Ok(pod) = serde_json::from_value::<Pod>((*object).clone()) else {
                            return true;
                        };
                        if let Ok(mut w) = workers.lock() {
                            if kind == EventKind::Deleted {
                                if let Some(tx) = w.get(&worker::uid(&pod)) {
                                    let _ = tx.send(Msg::Gone);
                                }
                            } else {
                                upsert(&ctx, &mut w, pod);
                            }
                        }
                    }
                }
                true
            },
        );
    }
    {
        let workers = workers.clone();
        tokio::spawn(async move {
            while let Some(uid) = done.recv().await {
                if let Ok(mut w) = workers.lock() {
                    // A worker that finished while a namesake arrived keeps its slot.
                    if w.get(&uid).is_some_and(|tx| tx.is_closed()) {
                        w.remove(&uid);
                    }
                }
            }
        });
    }
    tokio::spawn(relist(ctx.clone(), workers.clone()));
    tokio::spawn(orphans(ctx, workers, listed_rx));
    Ok(())
}

fn upsert<C: Client + Clone>(
    ctx: &Arc<Ctx<C>>,
    workers: &mut HashMap<String, mpsc::UnboundedSender<Msg>>,
    pod: Pod,
) {
    let uid = worker::uid(&pod);
    if uid.is_empty() {
        return;
    }
    if let Some(tx) = workers.get(&uid) {
        if tx.send(Msg::Pod(Box::new(pod.clone()))).is_ok() {
            return;
        }
    }
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    let finished = matches!(phase, Some("Succeeded" | "Failed"));
    if finished && pod.metadata.deletion_timestamp.is_none() && !ctx.has_runtime_state(&uid) {
        // Finished before this agent started and nothing left to stop.
        return;
    }
    let (tx, rx) = mpsc::unbounded_channel();
    workers.insert(uid, tx);
    tokio::spawn(worker::run(ctx.clone(), pod, rx));
}

/// Every second: one ListContainers + ListPodSandbox; wakes the workers
/// whose pod's runtime state changed.
async fn relist<C: Client + Clone>(ctx: Arc<Ctx<C>>, workers: Workers) {
    let mut last: HashMap<String, Vec<(String, i32)>> = HashMap::new();
    loop {
        tokio::time::sleep(RELIST).await;
        let Ok(state) = snapshot(&ctx).await else {
            continue;
        };
        let mut changed: Vec<String> = state
            .iter()
            .filter(|(uid, s)| last.get(*uid) != Some(s))
            .map(|(uid, _)| uid.clone())
            .collect();
        changed.extend(last.keys().filter(|u| !state.contains_key(*u)).cloned());
        if let Ok(w) = workers.lock() {
            for uid in &changed {
                if let Some(tx) = w.get(uid) {
                    let _ = tx.send(Msg::Wake);
                }
            }
        }
        if let Ok(mut known) = ctx.runtime_uids.lock() {
            *known = state.keys().cloned().collect();
        }
        last = state;
    }
}

/// Pod uid → (id, state) of its sandboxes and containers.
async fn snapshot<C: Client + Clone>(
    ctx: &Ctx<C>,
) -> Result<HashMap<String, Vec<(String, i32)>>, tonic::Status> {
    let mut out: HashMap<String, Vec<(String, i32)>> = HashMap::new();
    let managed = HashMap::from([(labels::MANAGED_BY.to_string(), "true".to_string())]);
    let sandboxes = ctx
        .cri
        .runtime()
        .list_pod_sandbox(api::ListPodSandboxRequest {
            filter: Some(api::PodSandboxFilter {
                label_selector: managed.clone(),
                ..Default::default()
            }),
        })
        .await?
        .into_inner()
        .items;
    for s in sandboxes {
        if let Some(uid) = s.labels.get(labels::POD_UID) {
            out.entry(uid.clone()).or_default().push((s.id, s.state));
        }
    }
    let containers = ctx
        .cri
        .runtime()
        .list_containers(api::ListContainersRequest {
            filter: Some(api::ContainerFilter {
                label_selector: managed,
                ..Default::default()
            }),
        })
        .await?
        .into_inner()
        .containers;
    for c in containers {
        if let Some(uid) = c.labels.get(labels::POD_UID) {
            out.entry(uid.clone()).or_default().push((c.id, c.state));
        }
    }
    for v in out.values_mut() {
        v.sort();
    }
    Ok(out)
}

/// After each full list of the API's pods: sandboxes (and their
/// containers and volumes) of pods the API does not have are removed, as
/// pods deleted while the agent was down.
async fn orphans<C: Client + Clone>(
    ctx: Arc<Ctx<C>>,
    workers: Workers,
    mut listed: tokio::sync::watch::Receiver<Option<HashSet<String>>>,
) {
    while listed.changed().await.is_ok() {
        let Some(live) = listed.borrow_and_update().clone() else {
            continue;
        };
        let Ok(state) = snapshot(&ctx).await else {
            continue;
        };
        let busy: HashSet<String> = workers
            .lock()
            .map(|w| w.keys().cloned().collect())
            .unwrap_or_default();
        for uid in state
            .keys()
            .filter(|u| !live.contains(*u) && !busy.contains(*u))
        {
            tracing::info!(
                pod = uid,
                "removing the containers of a pod the API no longer has"
            );
            if let Err(e) = super::cleanup::remove_pod(&ctx, uid).await {
                tracing::warn!(pod = uid, error = %e, "removing an orphaned pod failed");
            }
        }
        let keep: HashSet<String> = live.union(&busy).cloned().collect();
        if let Err(e) = ctx.volumes.cleanup_orphans(&keep).await {
            tracing::warn!(error = %e, "removing orphaned volumes failed");
        }
    }
}
