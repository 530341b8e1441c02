//! Pod failure policy rules (`spec.podFailurePolicy`) and the exponential
//! delay before failed pods are replaced (upstream backoff records).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use serde_json::Value;

use crate::controllers::objects;

/// First delay after a failure; doubles per consecutive failure.
pub const POD_FAILURE_BACKOFF: Duration = Duration::from_secs(10);
/// Longest delay (upstream MaxJobPodFailureBackOff).
pub const MAX_POD_FAILURE_BACKOFF: Duration = Duration::from_secs(600);

/// What the first matching rule says about a failed pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Fail the whole Job with this message.
    FailJob(String),
    /// Do not count the failure against the backoff limit.
    Ignore,
    Count,
    FailIndex,
}

impl Action {
    /// Whether the failure counts towards `status.failed`.
    pub fn counts(&self) -> bool {
        *self != Action::Ignore
    }
}

/// The action of the first rule of `policy` matching the failed `pod`;
/// None when no rule matches (the failure counts).
pub fn match_policy(policy: &Value, pod: &Value) -> Option<Action> {
    let rules = policy.get("rules").and_then(Value::as_array)?;
    for (index, rule) in rules.iter().enumerate() {
        let action = rule.get("action").and_then(Value::as_str).unwrap_or("");
        let matched = if let Some(req) = rule.get("onExitCodes").filter(|r| !r.is_null()) {
            match_exit_codes(pod, req).map(|(name, code)| {
                format!(
                    "Container {name} for pod {}/{} failed with exit code {code} matching {action} rule at index {index}",
                    objects::namespace(pod),
                    objects::name(pod)
                )
            })
        } else if let Some(patterns) = rule.get("onPodConditions").and_then(Value::as_array) {
            match_conditions(pod, patterns).map(|kind| {
                format!(
                    "Pod {}/{} has condition {kind} matching {action} rule at index {index}",
                    objects::namespace(pod),
                    objects::name(pod)
                )
            })
        } else {
            None
        };
        let Some(message) = matched else { continue };
        match action {
            "FailJob" => return Some(Action::FailJob(message)),
            "Ignore" => return Some(Action::Ignore),
            "Count" => return Some(Action::Count),
            "FailIndex" => return Some(Action::FailIndex),
            _ => {}
        }
    }
    None
}

/// The first terminated container (regular, then init) with a non-zero exit
/// code the requirement selects: its name and code.
fn match_exit_codes(pod: &Value, req: &Value) -> Option<(String, i64)> {
    let container = req.get("containerName").and_then(Value::as_str);
    let values: Vec<i64> = req
        .get("values")
        .and_then(Value::as_array)
        .map(|v| v.iter().filter_map(Value::as_i64).collect())
        .unwrap_or_default();
    let not_in = req.get("operator").and_then(Value::as_str) == Some("NotIn");
    let status = pod.get("status")?;
    for list in ["containerStatuses", "initContainerStatuses"] {
        for cs in status
            .get(list)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = cs.get("name").and_then(Value::as_str).unwrap_or("");
            let Some(code) = cs
                .get("state")
                .and_then(|s| s.get("terminated"))
                .and_then(|t| t.get("exitCode"))
                .and_then(Value::as_i64)
            else {
                continue;
            };
            if code == 0 || container.is_some_and(|c| c != name) {
                continue;
            }
            if values.contains(&code) != not_in {
                return Some((name.to_string(), code));
            }
        }
    }
    None
}

/// The type of the first pod condition matching a pattern (type and status).
fn match_conditions(pod: &Value, patterns: &[Value]) -> Option<String> {
    let conditions = pod.get("status")?.get("conditions")?.as_array()?;
    conditions.iter().find_map(|c| {
        let kind = c.get("type").and_then(Value::as_str)?;
        let status = c.get("status").and_then(Value::as_str)?;
        patterns
            .iter()
            .any(|p| {
                p.get("type").and_then(Value::as_str) == Some(kind)
                    && p.get("status").and_then(Value::as_str).unwrap_or("True") == status
            })
            .then(|| kind.to_string())
    })
}

/// Consecutive failures since the last success and when the last one ended.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BackoffRecord {
    pub failures: u32,
    pub last_failure: Option<SystemTime>,
}

impl BackoffRecord {
    /// The record after newly finished pods are counted (upstream
    /// newBackoffRecord): a success resets it, later failures count again.
    pub fn with_finished(&self, succeeded: &[SystemTime], failed: &[SystemTime]) -> Self {
        let mut failed = failed.to_vec();
        failed.sort();
        let Some(last_success) = succeeded.iter().max() else {
            let Some(last) = failed.last() else {
                return self.clone();
            };
            return BackoffRecord {
                failures: self.failures + failed.len() as u32,
                last_failure: Some(*last),
            };
        };
        let after: Vec<&SystemTime> = failed.iter().filter(|t| *t > last_success).collect();
        BackoffRecord {
            failures: after.len() as u32,
            last_failure: after.last().map(|t| **t),
        }
    }

    /// How long to wait before creating pods again.
    pub fn remaining(&self, now: SystemTime) -> Duration {
        let Some(last) = self.last_failure.filter(|_| self.failures > 0) else {
            return Duration::ZERO;
        };
        let delay = backoff_delay(self.failures);
        let elapsed = now.duration_since(last).unwrap_or_default();
        delay.saturating_sub(elapsed)
    }
}

/// 10 s, 20 s, 40 s, … for the 1st, 2nd, 3rd failure, at most 10 min.
pub fn backoff_delay(failures: u32) -> Duration {
    let mut delay = POD_FAILURE_BACKOFF;
    for _ in 1..failures {
        delay = delay.saturating_mul(2);
        if delay >= MAX_POD_FAILURE_BACKOFF {
            return MAX_POD_FAILURE_BACKOFF;
        }
    }
    delay
}

/// Backoff records per Job (in memory, as upstream: a restart forgets them).
#[derive(Default)]
pub struct BackoffStore(Mutex<HashMap<String, BackoffRecord>>);

impl BackoffStore {
    pub fn get(&self, key: &str) -> BackoffRecord {
        let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.get(key).cloned().unwrap_or_default()
    }

    pub fn set(&self, key: &str, record: BackoffRecord) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if record == BackoffRecord::default() {
            map.remove(key);
        } else {
            map.insert(key.to_string(), record);
        }
    }

    pub fn remove(&self, key: &str) {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
    }
}

/// When a finished pod ended: its containers' last finish, else when it
/// stopped being ready, else its deletion, else its creation.
pub fn finished_time(pod: &Value) -> SystemTime {
    let from_containers = pod
        .get("status")
        .and_then(|s| s.get("containerStatuses"))
        .and_then(Value::as_array)
        .and_then(|list| {
            list.iter()
                .map(|cs| objects::time_at(cs, &["state", "terminated", "finishedAt"]))
                .collect::<Option<Vec<_>>>()
        })
        .and_then(|times| times.into_iter().max());
    let not_ready = || {
        objects::condition(pod, "Ready")
            .filter(|c| c.get("status").and_then(Value::as_str) == Some("False"))
            .and_then(|c| objects::time_at(c, &["lastTransitionTime"]))
    };
    let deleted = || objects::time_at(pod, &["metadata", "deletionTimestamp"]);
    from_containers
        .or_else(not_ready)
        .or_else(deleted)
        .or_else(|| objects::time_at(pod, &["metadata", "creationTimestamp"]))
        .unwrap_or_else(SystemTime::now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn failed_pod(code: i64, conditions: Value) -> Value {
        json!({"metadata": {"name": "p", "namespace": "ns"}, "status": {"phase": "Failed",
            "conditions": conditions,
            "containerStatuses": [{"name": "main", "state": {"terminated": {"exitCode": code}}}]}})
    }

    #[test]
    fn exit_code_rules_match_in_order() {
        let policy = json!({"rules": [
            {"action": "Ignore", "onExitCodes": {"operator": "In", "values": [42]}},
            {"action": "FailJob", "onExitCodes": {"containerName": "main", "operator": "NotIn", "values": [1, 2]}},
            {"action": "Count", "onExitCodes": {"operator": "In", "values": [1]}}]});
        assert_eq!(
            match_policy(&policy, &failed_pod(42, json!([]))),
            Some(Action::Ignore)
        );
        assert_eq!(
            match_policy(&policy, &failed_pod(1, json!([]))),
            Some(Action::Count)
        );
        assert_eq!(match_policy(&policy, &failed_pod(2, json!([]))), None);
        assert_eq!(
            match_policy(&policy, &failed_pod(5, json!([]))),
            Some(Action::FailJob(
                "Container main for pod ns/p failed with exit code 5 matching FailJob rule at index 1".into()
            ))
        );
    }

    #[test]
    fn condition_rules_match_type_and_status() {
        let policy = json!({"rules": [{"action": "Ignore",
            "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]},
            {"action": "FailJob", "onPodConditions": [{"type": "ConfigIssue"}]}]});
        let disrupted = failed_pod(0, json!([{"type": "DisruptionTarget", "status": "True"}]));
        assert_eq!(match_policy(&policy, &disrupted), Some(Action::Ignore));
        let not = failed_pod(0, json!([{"type": "DisruptionTarget", "status": "False"}]));
        assert_eq!(match_policy(&policy, &not), None);
        let config = failed_pod(0, json!([{"type": "ConfigIssue", "status": "True"}]));
        assert_eq!(
            match_policy(&policy, &config),
            Some(Action::FailJob(
                "Pod ns/p has condition ConfigIssue matching FailJob rule at index 1".into()
            ))
        );
    }

    #[test]
    fn backoff_doubles_from_ten_seconds_up_to_ten_minutes() {
        assert_eq!(backoff_delay(1), Duration::from_secs(10));
        assert_eq!(backoff_delay(2), Duration::from_secs(20));
        assert_eq!(backoff_delay(3), Duration::from_secs(40));
        assert_eq!(backoff_delay(7), Duration::from_secs(600));
        assert_eq!(backoff_delay(100), Duration::from_secs(600));
    }

    #[test]
    fn backoff_records_reset_on_success() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let s = |n| t0 + Duration::from_secs(n);
        let r = BackoffRecord::default().with_finished(&[], &[s(2), s(1)]);
        assert_eq!(r.failures, 2);
        assert_eq!(r.last_failure, Some(s(2)));
        assert_eq!(r.remaining(s(7)), Duration::from_secs(15));
        assert_eq!(r.remaining(s(30)), Duration::ZERO);
        let r2 = r.with_finished(&[s(3)], &[s(4)]);
        assert_eq!((r2.failures, r2.last_failure), (1, Some(s(4))));
        let r3 = r2.with_finished(&[s(5)], &[]);
        assert_eq!(r3, BackoffRecord::default());
        assert_eq!(r3.remaining(s(5)), Duration::ZERO);
    }
}
