//! Deployment status: replica counts from the ReplicaSets, the `Available`
//! and `Progressing` conditions with upstream's reasons and messages, and
//! the progress deadline (upstream `calculateStatus`, `syncRolloutStatus`).

use std::time::{Duration, SystemTime};

use serde_json::{json, Value};

use super::util::{self, int_at, spec_replicas};
use crate::controllers::objects;

pub const PROGRESSING: &str = "Progressing";
pub const AVAILABLE: &str = "Available";
pub const REPLICA_FAILURE: &str = "ReplicaFailure";

pub const NEW_RS_CREATED: &str = "NewReplicaSetCreated";
pub const FOUND_NEW_RS: &str = "FoundNewReplicaSet";
pub const RS_UPDATED: &str = "ReplicaSetUpdated";
pub const NEW_RS_AVAILABLE: &str = "NewReplicaSetAvailable";
pub const TIMED_OUT: &str = "ProgressDeadlineExceeded";
pub const FAILED_RS_CREATE: &str = "ReplicaSetCreateError";
pub const PAUSED: &str = "DeploymentPaused";
pub const RESUMED: &str = "DeploymentResumed";

/// `progressDeadlineSeconds` when set and not "never" (MaxInt32).
pub fn progress_deadline(d: &Value) -> Option<Duration> {
    let secs = d
        .pointer("/spec/progressDeadlineSeconds")
        .and_then(Value::as_i64)?;
    (secs != i64::from(i32::MAX)).then(|| Duration::from_secs(secs.max(0) as u64))
}

pub fn new_condition(kind: &str, status: &str, reason: &str, message: &str) -> Value {
    let now = objects::now();
    json!({"type": kind, "status": status, "lastUpdateTime": now,
        "lastTransitionTime": now, "reason": reason, "message": message})
}

pub fn get_condition<'a>(status: &'a Value, kind: &str) -> Option<&'a Value> {
    status
        .get("conditions")?
        .as_array()?
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(kind))
}

fn text<'a>(c: &'a Value, field: &str) -> &'a str {
    c.get(field).and_then(Value::as_str).unwrap_or("")
}

pub fn condition_reason<'a>(status: &'a Value, kind: &str) -> Option<&'a str> {
    get_condition(status, kind).map(|c| text(c, "reason"))
}

/// Sets `cond` unless one with the same status and reason is there; keeps
/// lastTransitionTime while the status stays (upstream `SetDeploymentCondition`).
pub fn set_condition(status: &mut Value, mut cond: Value) {
    if let Some(cur) = get_condition(status, text(&cond, "type")) {
        if text(cur, "status") == text(&cond, "status") {
            if text(cur, "reason") == text(&cond, "reason") {
                return;
            }
            cond["lastTransitionTime"] = cur["lastTransitionTime"].clone();
        }
    }
    remove_condition(status, text(&cond, "type").to_string().as_str());
    if !status["conditions"].is_array() {
        status["conditions"] = json!([]);
    }
    if let Some(list) = status["conditions"].as_array_mut() {
        list.push(cond);
    }
}

pub fn remove_condition(status: &mut Value, kind: &str) {
    if let Some(list) = status.get_mut("conditions").and_then(Value::as_array_mut) {
        list.retain(|c| c.get("type").and_then(Value::as_str) != Some(kind));
    }
}

/// The status the ReplicaSets add up to, with the `Available` condition
/// (upstream `calculateStatus`); other conditions are carried over.
pub fn calculate(all: &[&Value], new_rs: Option<&Value>, d: &Value) -> Value {
    let available = util::total_status(all, "availableReplicas");
    let total = util::total_spec_replicas(all);
    let old = d.get("status").cloned().unwrap_or_else(|| json!({}));
    let mut status = json!({
        "observedGeneration": int_at(d, "/metadata/generation"),
        "replicas": util::total_status(all, "replicas"),
        "updatedReplicas": new_rs.map_or(0, |rs| int_at(rs, "/status/replicas")),
        "readyReplicas": util::total_status(all, "readyReplicas"),
        "availableReplicas": available,
        "unavailableReplicas": (total - available).max(0),
    });
    if let Some(c) = old.get("collisionCount").filter(|c| !c.is_null()) {
        status["collisionCount"] = c.clone();
    }
    if let Some(c) = old.get("conditions").filter(|c| c.is_array()) {
        status["conditions"] = c.clone();
    }
    let cond = if available >= spec_replicas(d) - util::max_unavailable(d) {
        new_condition(
            AVAILABLE,
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.",
        )
    } else {
        new_condition(
            AVAILABLE,
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.",
        )
    };
    set_condition(&mut status, cond);
    status
}

/// Every replica updated and available (upstream `DeploymentComplete`).
pub fn complete(d: &Value, status: &Value) -> bool {
    let want = spec_replicas(d);
    int_at(status, "/updatedReplicas") == want
        && int_at(status, "/replicas") == want
        && int_at(status, "/availableReplicas") == want
        && int_at(status, "/observedGeneration") >= int_at(d, "/metadata/generation")
}

/// Whether `new` shows progress over the stored status (upstream `DeploymentProgressing`).
pub fn progressing(d: &Value, new: &Value) -> bool {
    let old = d.get("status").unwrap_or(&Value::Null);
    let olds = |s: &Value| int_at(s, "/replicas") - int_at(s, "/updatedReplicas");
    int_at(new, "/updatedReplicas") > int_at(old, "/updatedReplicas")
        || olds(new) < olds(old)
        || int_at(new, "/readyReplicas") > int_at(old, "/readyReplicas")
        || int_at(new, "/availableReplicas") > int_at(old, "/availableReplicas")
}

/// Whether the deadline passed since the last progress (upstream `DeploymentTimedOut`).
pub fn timed_out(d: &Value, status: &Value) -> bool {
    let Some(deadline) = progress_deadline(d) else {
        return false;
    };
    let Some(cond) = get_condition(status, PROGRESSING) else {
        return false;
    };
    match text(cond, "reason") {
        NEW_RS_AVAILABLE => false,
        TIMED_OUT => true,
        _ => objects::parse_time(text(cond, "lastUpdateTime"))
            .is_some_and(|from| from + deadline < SystemTime::now()),
    }
}

/// The rollout status: counts plus the Progressing condition (upstream
/// `syncRolloutStatus` without the write).
pub fn rollout(all: &[&Value], new_rs: Option<&Value>, d: &Value) -> Value {
    let mut status = calculate(all, new_rs, d);
    let old = d.get("status").unwrap_or(&Value::Null);
    if progress_deadline(d).is_none() {
        remove_condition(&mut status, PROGRESSING);
    }
    let current = get_condition(old, PROGRESSING).cloned();
    let is_complete = int_at(&status, "/replicas") == int_at(&status, "/updatedReplicas")
        && current
            .as_ref()
            .is_some_and(|c| text(c, "reason") == NEW_RS_AVAILABLE);
    let subject = |what: &str| match new_rs {
        Some(rs) => format!("ReplicaSet \"{}\" {what}", objects::name(rs)),
        None => format!("Deployment \"{}\" {what}", objects::name(d)),
    };
    if progress_deadline(d).is_some() && !is_complete {
        if complete(d, &status) {
            let msg = subject("has successfully progressed.");
            set_condition(
                &mut status,
                new_condition(PROGRESSING, "True", NEW_RS_AVAILABLE, &msg),
            );
        } else if progressing(d, &status) {
            let msg = subject("is progressing.");
            let mut cond = new_condition(PROGRESSING, "True", RS_UPDATED, &msg);
            // Progress refreshes lastUpdateTime even with the same reason.
            if let Some(cur) = &current {
                if text(cur, "status") == "True" {
                    cond["lastTransitionTime"] = cur["lastTransitionTime"].clone();
                }
                remove_condition(&mut status, PROGRESSING);
            }
            set_condition(&mut status, cond);
        } else if timed_out(d, &status) {
            let msg = subject("has timed out progressing.");
            set_condition(
                &mut status,
                new_condition(PROGRESSING, "False", TIMED_OUT, &msg),
            );
        }
    }
    match replica_failure(all, new_rs) {
        Some(cond) => set_condition(&mut status, cond),
        None => remove_condition(&mut status, REPLICA_FAILURE),
    }
    status
}

/// A ReplicaSet's ReplicaFailure condition, the new one's first.
fn replica_failure(all: &[&Value], new_rs: Option<&Value>) -> Option<Value> {
    new_rs.into_iter().chain(all.iter().copied()).find_map(|rs| {
        let c = objects::condition(rs, REPLICA_FAILURE)?;
        (text(c, "status") == "True").then(|| {
            json!({"type": REPLICA_FAILURE, "status": "True",
                "lastUpdateTime": c["lastTransitionTime"], "lastTransitionTime": c["lastTransitionTime"],
                "reason": text(c, "reason"), "message": text(c, "message")})
        })
    })
}

/// When to look again for a stuck rollout's deadline (upstream
/// `requeueStuckDeployment`); None when nothing is pending.
pub fn requeue_after(d: &Value, new: &Value) -> Option<Duration> {
    let deadline = progress_deadline(d)?;
    let cond = get_condition(d.get("status")?, PROGRESSING)?;
    if complete(d, new) || text(cond, "reason") == TIMED_OUT {
        return None;
    }
    let at = objects::parse_time(text(cond, "lastUpdateTime"))? + deadline;
    let after = at
        .duration_since(SystemTime::now())
        .unwrap_or(Duration::ZERO);
    Some(after.max(Duration::from_millis(500)) + Duration::from_secs(1))
}

/// Whether two statuses differ in what this controller writes (missing
/// counts are zero).
pub fn differs(old: Option<&Value>, new: &Value) -> bool {
    let old = old.unwrap_or(&Value::Null);
    let counts = [
        "/observedGeneration",
        "/replicas",
        "/updatedReplicas",
        "/readyReplicas",
        "/availableReplicas",
        "/unavailableReplicas",
        "/collisionCount",
    ];
    let conditions = |s: &Value| {
        s.get("conditions")
            .filter(|c| c.as_array().is_some_and(|a| !a.is_empty()))
            .cloned()
    };
    counts.iter().any(|p| int_at(old, p) != int_at(new, p)) || conditions(old) != conditions(new)
}
