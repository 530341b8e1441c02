//! The definitions controller: serves what the CustomResourceDefinitions
//! say (registry entries and watch caches), reports it in their status
//! (`NamesAccepted`, `Established`, `acceptedNames`, `storedVersions`), and
//! empties a deleted definition's resources before letting it go (the
//! `customresourcecleanup.apiextensions.k8s.io` finalizer).
//!
//! Level-triggered: every change of any definition reconciles them all,
//! which is cheap for the tens of definitions a cluster holds.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use super::definition;
use crate::api::meta;
use crate::api::{Api, ApiError, DeleteOptions, Resource, WriteOptions};

pub(super) const STORAGE: &str = "apiextensions.k8s.io/customresourcedefinitions";
pub(super) const CLEANUP_FINALIZER: &str = "customresourcecleanup.apiextensions.k8s.io";

/// Starts following the definitions.
pub fn start(api: Arc<Api>) {
    tokio::spawn(run(api));
}

async fn run(api: Arc<Api>) {
    tracing::info!("custom resource definitions controller started");
    loop {
        let Some(cache) = api.store.cache(STORAGE) else {
            tracing::error!("no cache of custom resource definitions; controller stopped");
            return;
        };
        let Ok(sub) = cache.subscribe(None, 0, true, api.store.cache_revision()) else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        let mut rx = sub.rx;
        let mut pending = !reconcile(&api).await;
        loop {
            // Retry soon after a failed write; otherwise wait for a change.
            let wait = if pending { 1 } else { 600 };
            tokio::select! {
                ev = rx.recv() => {
                    if ev.is_none() {
                        break;
                    }
                    while rx.try_recv().is_ok() {}
                }
                _ = tokio::time::sleep(Duration::from_secs(wait)) => {}
            }
            pending = !reconcile(&api).await;
        }
    }
}

/// One pass over every definition; false when something must be retried.
async fn reconcile(api: &Api) -> bool {
    let Some(cache) = api.store.cache(STORAGE) else {
        return false;
    };
    let mut crds: Vec<Arc<Value>> = cache
        .snapshot(None, None, 0)
        .0
        .into_iter()
        .map(|s| s.object)
        .collect();
    // Older definitions keep their names when two claim the same.
    crds.sort_by(|a, b| {
        let key = |v: &Value| {
            (
                meta::meta_str(v, "creationTimestamp")
                    .unwrap_or_default()
                    .to_string(),
                meta::name(v).to_string(),
            )
        };
        key(a).cmp(&key(b))
    });
    let builtin = crate::api::Registry::builtin();
    let mut taken: HashSet<(String, String)> = HashSet::new();
    let mut served: Vec<&'static Resource> = Vec::new();
    let mut verdicts = Vec::new();
    for crd in &crds {
        let resources = definition::resources(crd);
        let conflict = names_conflict(crd, &resources, &builtin, &taken);
        if conflict.is_none() {
            for r in &resources {
                taken.insert((r.group.to_string(), r.plural.to_string()));
                taken.insert((r.group.to_string(), format!("kind:{}", r.kind)));
            }
            served.extend(resources.iter().copied());
        }
        verdicts.push(conflict);
    }
    let mut ok = true;
    for r in &served {
        if let Err(e) = api.store.ensure_cache(r.storage).await {
            tracing::warn!(storage = r.storage, error = %e, "cannot make a cache for custom resources");
            ok = false;
        }
    }
    api.set_custom_resources(served);
    for (crd, conflict) in crds.iter().zip(verdicts) {
        ok &= write_status(api, crd, conflict.as_deref()).await;
        if meta::is_deleting(crd) {
            ok &= clean_up(api, crd).await;
        }
    }
    ok
}

/// Why `crd`'s names cannot be served, if they cannot.
fn names_conflict(
    crd: &Value,
    resources: &[&'static Resource],
    builtin: &crate::api::Registry,
    taken: &HashSet<(String, String)>,
) -> Option<String> {
    let r = resources.first()?;
    let builtin_plural = builtin
        .all()
        .iter()
        .any(|b| b.group == r.group && b.plural == r.plural);
    if builtin_plural || taken.contains(&(r.group.to_string(), r.plural.to_string())) {
        return Some(format!("\"{}\" is already in use", r.plural));
    }
    if taken.contains(&(r.group.to_string(), format!("kind:{}", r.kind))) {
        return Some(format!("\"{}\" is already in use", r.kind));
    }
    let _ = crd;
    None
}

fn condition(kind: &str, ok: bool, reason: &str, message: &str, old: &Value, now: &str) -> Value {
    let status = if ok { "True" } else { "False" };
    let since = old["conditions"]
        .as_array()
        .and_then(|cs| {
            cs.iter()
                .find(|c| c["type"] == kind && c["status"] == status)
        })
        .and_then(|c| c["lastTransitionTime"].as_str())
        .unwrap_or(now)
        .to_string();
    json!({"type": kind, "status": status, "lastTransitionTime": since,
           "reason": reason, "message": message})
}

/// The status `crd` should have.
fn desired_status(crd: &Value, conflict: Option<&str>) -> Value {
    let old = &crd["status"];
    let now = meta::now();
    let spec = &crd["spec"];
    let mut conditions = vec![
        match conflict {
            None => condition(
                "NamesAccepted",
                true,
                "NoConflicts",
                "no conflicts found",
                old,
                &now,
            ),
            Some(m) => condition("NamesAccepted", false, "AlreadyInUse", m, old, &now),
        },
        match conflict {
            None => condition(
                "Established",
                true,
                "InitialNamesAccepted",
                "the initial names have been accepted",
                old,
                &now,
            ),
            Some(_) => condition(
                "Established",
                false,
                "NotAccepted",
                "not all names are accepted",
                old,
                &now,
            ),
        },
    ];
    if meta::is_deleting(crd) {
        conditions.push(condition(
            "Terminating",
            true,
            "InstanceDeletionInProgress",
            "CustomResource deletion is in progress",
            old,
            &now,
        ));
    }
    let mut accepted = spec["names"].clone();
    if conflict.is_some() {
        accepted = old["acceptedNames"].clone();
    } else if let Some(m) = accepted.as_object_mut() {
        let kind = m
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        m.entry("singular")
            .or_insert_with(|| kind.to_lowercase().into());
        m.entry("listKind")
            .or_insert_with(|| format!("{kind}List").into());
    }
    let mut stored: Vec<Value> = old["storedVersions"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if let Some(v) = spec["versions"]
        .as_array()
        .and_then(|vs| vs.iter().find(|v| v["storage"].as_bool() == Some(true)))
        .and_then(|v| v.get("name"))
    {
        if !stored.contains(v) {
            stored.push(v.clone());
        }
    }
    json!({"conditions": conditions, "acceptedNames": accepted, "storedVersions": stored})
}

/// Writes the status when it differs (times aside); false on failure.
async fn write_status(api: &Api, crd: &Value, conflict: Option<&str>) -> bool {
    let want = desired_status(crd, conflict);
    let strip = |s: &Value| {
        let mut s = s.clone();
        if let Some(cs) = s["conditions"].as_array_mut() {
            for c in cs {
                if let Some(m) = c.as_object_mut() {
                    m.remove("lastTransitionTime");
                }
            }
        }
        s
    };
    if strip(&want) == strip(&crd["status"]) {
        return true;
    }
    let Some(r) = crd_resource(api) else {
        return false;
    };
    let mut next = crd.clone();
    next["status"] = want;
    let name = meta::name(crd).to_string();
    match api
        .update(
            r,
            None,
            &name,
            next,
            Some("status"),
            &WriteOptions::default(),
        )
        .await
    {
        Ok(_) => true,
        Err(ApiError::NotFound { .. }) => true,
        Err(e) => {
            tracing::debug!(crd = name, error = %e, "definition status not written; retrying");
            false
        }
    }
}

fn crd_resource(api: &Api) -> Option<&'static Resource> {
    api.registry()
        .find("apiextensions.k8s.io", "v1", "customresourcedefinitions")
}

/// Deletes every object of a terminating definition, then its finalizer.
async fn clean_up(api: &Api, crd: &Value) -> bool {
    let holds = meta::finalizers(crd).iter().any(|f| f == CLEANUP_FINALIZER);
    if !holds {
        return true;
    }
    let resources = definition::resources(crd);
    let mut remaining = 0;
    if let Some(r) = resources.first() {
        if let Some(cache) = api.store.cache(r.storage) {
            for stored in cache.snapshot(None, None, 0).0 {
                remaining += 1;
                let obj = &stored.object;
                let ns = meta::meta_str(obj, "namespace").filter(|n| !n.is_empty());
                let opts = DeleteOptions::default();
                if let Err(e) = api.delete(r, ns, meta::name(obj), &opts).await {
                    if !matches!(e, ApiError::NotFound { .. }) {
                        tracing::debug!(error = %e, "custom object not deleted yet");
                    }
                }
            }
        }
    }
    if remaining > 0 {
        // The objects' deletes reach their own cache, not this one's
        // followers: look again shortly.
        return false;
    }
    let Some(r) = crd_resource(api) else {
        return false;
    };
    let mut next = crd.clone();
    let kept: Vec<String> = meta::finalizers(crd)
        .into_iter()
        .filter(|f| f != CLEANUP_FINALIZER)
        .collect();
    next["metadata"]["finalizers"] = json!(kept);
    let name = meta::name(crd).to_string();
    match api
        .update(r, None, &name, next, None, &WriteOptions::default())
        .await
    {
        Ok(_) => true,
        Err(ApiError::NotFound { .. }) => true,
        Err(e) => {
            tracing::debug!(crd = name, error = %e, "cleanup finalizer not removed; retrying");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crd() -> Value {
        json!({
            "metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced",
                     "names": {"plural": "widgets", "kind": "Widget"},
                     "versions": [{"name": "v1", "served": true, "storage": true}]}
        })
    }

    #[test]
    fn accepted_definitions_are_established_with_defaulted_names() {
        let s = desired_status(&crd(), None);
        assert_eq!(s["conditions"][0]["type"], "NamesAccepted");
        assert_eq!(s["conditions"][0]["status"], "True");
        assert_eq!(s["conditions"][1]["type"], "Established");
        assert_eq!(s["conditions"][1]["status"], "True");
        assert_eq!(s["acceptedNames"]["singular"], "widget");
        assert_eq!(s["acceptedNames"]["listKind"], "WidgetList");
        assert_eq!(s["storedVersions"], json!(["v1"]));
    }

    #[test]
    fn a_taken_plural_is_not_accepted() {
        let builtin = crate::api::Registry::builtin();
        let rs = definition::resources(&crd());
        let mut taken = HashSet::new();
        assert!(names_conflict(&crd(), &rs, &builtin, &taken).is_none());
        taken.insert(("example.com".to_string(), "widgets".to_string()));
        let why = names_conflict(&crd(), &rs, &builtin, &taken);
        assert_eq!(why.as_deref(), Some("\"widgets\" is already in use"));
        let s = desired_status(&crd(), why.as_deref());
        assert_eq!(s["conditions"][1]["status"], "False");
    }

    #[test]
    fn transition_times_survive_unchanged_conditions() {
        let mut c = crd();
        c["status"] = desired_status(&c, None);
        c["status"]["conditions"][0]["lastTransitionTime"] = json!("2020-01-01T00:00:00Z");
        let s = desired_status(&c, None);
        assert_eq!(
            s["conditions"][0]["lastTransitionTime"],
            "2020-01-01T00:00:00Z"
        );
    }
}
