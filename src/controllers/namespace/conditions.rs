//! The namespace deletion conditions, with upstream's types, reasons and
//! messages (status_condition_utils.go).

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{json, Value};

use crate::client::ResourceId;

/// What one pass over a namespace's content found.
#[derive(Debug, Default)]
pub struct Outcome {
    pub totals: ContentTotals,
    /// Deletions or lists that failed.
    pub errors: Vec<String>,
    /// How long until the remaining pods' grace periods end.
    pub estimate: Duration,
}

/// Remaining objects per resource and per finalizer.
#[derive(Debug, Default)]
pub struct ContentTotals {
    /// "<resource>.<group>" → count.
    resources: BTreeMap<String, usize>,
    finalizers: BTreeMap<String, usize>,
}

impl ContentTotals {
    pub fn add(&mut self, res: &ResourceId, count: usize, by_finalizer: BTreeMap<String, usize>) {
        *self
            .resources
            .entry(format!("{}.{}", res.plural, res.group))
            .or_default() += count;
        for (f, n) in by_finalizer {
            *self.finalizers.entry(f).or_default() += n;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.resources.is_empty()
    }
}

/// The condition types the controller maintains, in upstream's order, with
/// the reason and message of their "all is well" (False) variant.
const OK: [(&str, &str, &str); 5] = [
    (
        "NamespaceDeletionDiscoveryFailure",
        "ResourcesDiscovered",
        "All resources successfully discovered",
    ),
    (
        "NamespaceDeletionGroupVersionParsingFailure",
        "ParsedGroupVersions",
        "All legacy kube types successfully parsed",
    ),
    (
        "NamespaceDeletionContentFailure",
        "ContentDeleted",
        "All content successfully deleted, may be waiting on finalization",
    ),
    (
        "NamespaceContentRemaining",
        "ContentRemoved",
        "All content successfully removed",
    ),
    (
        "NamespaceFinalizersRemaining",
        "ContentHasNoFinalizers",
        "All content-preserving finalizers finished",
    ),
];

/// The failing (True) conditions an outcome calls for: type → (reason, message).
fn failures(outcome: &Outcome) -> BTreeMap<&'static str, (&'static str, String)> {
    let mut out = BTreeMap::new();
    if !outcome.errors.is_empty() {
        out.insert(
            "NamespaceDeletionContentFailure",
            (
                "ContentDeletionFailed",
                format!(
                    "Failed to delete all resource types, {} remaining: {}",
                    outcome.errors.len(),
                    aggregate(&outcome.errors)
                ),
            ),
        );
    }
    let t = &outcome.totals;
    if !t.resources.is_empty() {
        let parts: Vec<String> = t
            .resources
            .iter()
            .map(|(r, n)| format!("{r} has {n} resource instances"))
            .collect();
        out.insert(
            "NamespaceContentRemaining",
            (
                "SomeResourcesRemain",
                format!("Some resources are remaining: {}", parts.join(", ")),
            ),
        );
    }
    if !t.finalizers.is_empty() {
        let parts: Vec<String> = t
            .finalizers
            .iter()
            .map(|(f, n)| format!("{f} in {n} resource instances"))
            .collect();
        out.insert(
            "NamespaceFinalizersRemaining",
            (
                "SomeFinalizersRemain",
                format!(
                    "Some content in the namespace has finalizers remaining: {}",
                    parts.join(", ")
                ),
            ),
        );
    }
    out
}

/// utilerrors.NewAggregate's text: one error as is, several in brackets.
fn aggregate(errors: &[String]) -> String {
    match errors {
        [one] => one.clone(),
        many => format!("[{}]", many.join(", ")),
    }
}

/// The conditions after `outcome`, or None when nothing changed. A
/// condition keeps its lastTransitionTime unless its status flips.
pub fn updated(old: &[Value], outcome: &Outcome, now: &str) -> Option<Vec<Value>> {
    let failing = failures(outcome);
    let mut conditions: Vec<Value> = old.to_vec();
    let mut changed = false;
    for (kind, ok_reason, ok_message) in OK {
        let (status, reason, message) = match failing.get(kind) {
            Some((r, m)) => ("True", *r, m.clone()),
            None => ("False", ok_reason, ok_message.to_string()),
        };
        let field = |c: &Value, k: &str| c.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        match conditions.iter_mut().find(|c| field(c, "type") == kind) {
            None => {
                conditions.push(json!({"type": kind, "status": status,
                    "lastTransitionTime": now, "reason": reason, "message": message}));
                changed = true;
            }
            Some(c) => {
                if field(c, "status") != status
                    || field(c, "reason") != reason
                    || field(c, "message") != message
                {
                    if field(c, "status") != status {
                        c["lastTransitionTime"] = json!(now);
                    }
                    c["status"] = json!(status);
                    c["reason"] = json!(reason);
                    c["message"] = json!(message);
                    changed = true;
                }
            }
        }
    }
    changed.then_some(conditions)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remaining_content_is_reported_as_upstream() {
        let mut outcome = Outcome::default();
        let mut fins = BTreeMap::new();
        fins.insert("example.com/hold".to_string(), 1);
        outcome
            .totals
            .add(&ResourceId::new("", "v1", "pods"), 2, BTreeMap::new());
        outcome
            .totals
            .add(&ResourceId::new("", "v1", "configmaps"), 1, fins);
        let c = updated(&[], &outcome, "t0").unwrap();
        assert_eq!(c.len(), 5);
        let remaining = &c[3];
        assert_eq!(remaining["type"], "NamespaceContentRemaining");
        assert_eq!(remaining["status"], "True");
        assert_eq!(remaining["reason"], "SomeResourcesRemain");
        assert_eq!(
            remaining["message"],
            "Some resources are remaining: configmaps. has 1 resource instances, pods. has 2 resource instances"
        );
        assert_eq!(
            c[4]["message"],
            "Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances"
        );
        assert_eq!(c[2]["reason"], "ContentDeleted");
        assert_eq!(c[2]["status"], "False");
        // The same outcome again changes nothing.
        assert!(updated(&c, &outcome, "t1").is_none());
        // Content gone: the conditions flip to False with a new transition time.
        let c2 = updated(&c, &Outcome::default(), "t2").unwrap();
        assert_eq!(c2[3]["reason"], "ContentRemoved");
        assert_eq!(c2[3]["lastTransitionTime"], "t2");
        assert_eq!(c2[0]["lastTransitionTime"], "t0");
    }

    #[test]
    fn failed_deletions_are_aggregated() {
        let outcome = Outcome {
            errors: vec!["a".into(), "b".into()],
            ..Default::default()
        };
        let c = updated(&[], &outcome, "t").unwrap();
        assert_eq!(c[2]["reason"], "ContentDeletionFailed");
        assert_eq!(
            c[2]["message"],
            "Failed to delete all resource types, 2 remaining: [a, b]"
        );
    }
}
