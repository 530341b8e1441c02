//! PodSecurity admission (upstream `k8s.io/pod-security-admission`): the
//! privileged, baseline and restricted levels chosen per namespace by the
//! `pod-security.kubernetes.io/{enforce,warn,audit}` labels.
//!
//! - Pods (create, and updates that change images or seccomp annotations)
//!   are refused when they break the enforce level, whoever writes them:
//!   a Deployment's pods are refused in the controller as upstream does.
//! - Workload resources (Deployments, ReplicaSets, StatefulSets, DaemonSets,
//!   Jobs, CronJobs, ReplicationControllers, PodTemplates) are never refused;
//!   their pod template gets a warning at the warn level (upstream checks
//!   the enforce level only on pods).
//! - Namespaces: bad label values are refused (422); raising the enforce
//!   level warns about the existing pods that break it.
//! - The audit level adds `pod-security.kubernetes.io/audit-violations` to
//!   the request's audit event (pods: also `enforce-policy`).
//! - Every check is evaluated at its latest version whatever the `-version`
//!   label says (the label is still shown in messages).
//! - `kube-system` is exempt, as k3s configures it.

mod baseline;
mod fields;
mod namespace;
mod restricted;

use serde_json::Value;

use super::Request;
use crate::api::validation::{self, FieldCause};
use crate::api::{Api, ApiError};
use fields::name_of;

/// Namespaces never checked (k3s' PodSecurity configuration exempts
/// kube-system, where its own privileged system pods run).
const EXEMPT_NAMESPACES: &[&str] = &["kube-system"];

/// Pod subresources that cannot change what the checks look at.
const IGNORED_POD_SUBRESOURCES: &[&str] = &[
    "exec",
    "attach",
    "binding",
    "eviction",
    "log",
    "portforward",
    "proxy",
    "status",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Level {
    Privileged,
    Baseline,
    Restricted,
}

impl Level {
    fn parse(s: &str) -> Option<Level> {
        match s {
            "privileged" => Some(Level::Privileged),
            "baseline" => Some(Level::Baseline),
            "restricted" => Some(Level::Restricted),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Level::Privileged => "privileged",
            Level::Baseline => "baseline",
            Level::Restricted => "restricted",
        }
    }
}

/// A level and the version its label named (`latest` or `v1.x`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct LevelVersion {
    level: Level,
    version: String,
}

impl std::fmt::Display for LevelVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.level.as_str(), self.version)
    }
}

/// The three modes of one namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Policy {
    enforce: LevelVersion,
    warn: LevelVersion,
    /// Violations of this level go to the audit event's annotations.
    audit: LevelVersion,
}

const LEVEL_ERROR: &str = "must be one of privileged, baseline, restricted";
const VERSION_ERROR: &str = "must be \"latest\" or \"v1.x\"";

fn valid_version(v: &str) -> bool {
    v == "latest"
        || v.strip_prefix("v1.").is_some_and(|minor| {
            !minor.is_empty()
                && minor.bytes().all(|b| b.is_ascii_digit())
                && (minor == "0" || !minor.starts_with('0'))
        })
}

/// Upstream `PolicyToEvaluate`: unlabeled modes are privileged:latest; a
/// bad enforce level means restricted, a bad warn or audit level
/// privileged (fail open), a bad version latest. Also returns the causes
/// for the bad labels.
fn policy(labels: Option<&Value>) -> (Policy, Vec<FieldCause>) {
    let mut causes = Vec::new();
    let label = |key: &str| labels.and_then(|l| l.get(key)).and_then(Value::as_str);
    let mut mode = |name: &str, on_error: Level| -> LevelVersion {
        let level_key = format!("pod-security.kubernetes.io/{name}");
        let version_key = format!("{level_key}-version");
        let level = match label(&level_key) {
            None => Level::Privileged,
            Some(v) => Level::parse(v).unwrap_or_else(|| {
                causes.push(label_cause(&level_key, v, LEVEL_ERROR));
                on_error
            }),
        };
        let version = match label(&version_key) {
            None => "latest".to_string(),
            Some(v) if valid_version(v) => v.to_string(),
            Some(v) => {
                causes.push(label_cause(&version_key, v, VERSION_ERROR));
                "latest".to_string()
            }
        };
        LevelVersion { level, version }
    };
    let p = Policy {
        enforce: mode("enforce", Level::Restricted),
        audit: mode("audit", Level::Privileged),
        warn: mode("warn", Level::Privileged),
    };
    (p, causes)
}

fn label_cause(key: &str, value: &str, msg: &str) -> FieldCause {
    validation::invalid(
        &format!("metadata.labels[{key}]"),
        &Value::String(value.to_string()),
        msg,
    )
}

/// One failed check: upstream's ForbiddenReason and ForbiddenDetail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Violation {
    pub reason: String,
    pub detail: String,
}

impl Violation {
    pub fn new(reason: impl Into<String>, detail: impl Into<String>) -> Option<Violation> {
        Some(Violation {
            reason: reason.into(),
            detail: detail.into(),
        })
    }
}

/// Every failed check of `level` for a pod's metadata and spec, in
/// upstream's order (baseline checks, then the restricted ones).
fn evaluate(level: Level, meta: &Value, spec: &Value) -> Vec<Violation> {
    let mut out = Vec::new();
    if level == Level::Privileged {
        return out;
    }
    out.extend(baseline::CHECKS.iter().filter_map(|c| c(meta, spec)));
    if level == Level::Baseline {
        out.extend(baseline::OVERLAPPING.iter().filter_map(|c| c(meta, spec)));
    } else {
        out.extend(restricted::CHECKS.iter().filter_map(|c| c(meta, spec)));
    }
    out
}

/// Upstream `ForbiddenDetail`: `reason (detail), reason (detail)`.
fn forbidden_detail(violations: &[Violation]) -> String {
    let parts: Vec<String> = violations
        .iter()
        .map(|v| {
            if v.detail.is_empty() {
                v.reason.clone()
            } else {
                format!("{} ({})", v.reason, v.detail)
            }
        })
        .collect();
    parts.join(", ")
}

pub(super) async fn validate(
    api: &Api,
    req: &Request<'_>,
    obj: &Value,
    old: Option<&Value>,
) -> Result<(), ApiError> {
    if req.is("", "namespaces") {
        return namespace::validate(api, req, obj, old);
    }
    let Some(ns) = req.namespace else {
        return Ok(());
    };
    if EXEMPT_NAMESPACES.contains(&ns) {
        return Ok(());
    }
    if req.is("", "pods") {
        if req
            .subresource
            .is_some_and(|s| IGNORED_POD_SUBRESOURCES.contains(&s))
        {
            return Ok(());
        }
        if let Some(old) = old {
            if !significant_pod_update(obj, old) {
                return Ok(());
            }
        }
        let (p, _) = policy(namespace_labels(api, ns).as_ref());
        let meta = obj.get("metadata").unwrap_or(&Value::Null);
        let spec = obj.get("spec").unwrap_or(&Value::Null);
        let refused = evaluate(p.enforce.level, meta, spec);
        req.annotate(
            "pod-security.kubernetes.io/enforce-policy",
            p.enforce.to_string(),
        );
        audit(req, &p.audit, meta, spec, (&p.enforce, &refused));
        if !refused.is_empty() {
            tracing::debug!(
                namespace = ns,
                name = req.name,
                "pod refused by PodSecurity"
            );
            return Err(ApiError::Forbidden(format!(
                "{} {} is forbidden: violates PodSecurity {}: {}",
                req.resource.qualified(),
                validation::go_quote(req.name),
                validation::go_quote(&p.enforce.to_string()),
                forbidden_detail(&refused)
            )));
        }
        warn(req, &p.warn, meta, spec, (&p.enforce, &refused));
        return Ok(());
    }
    // Workload warnings only reach HTTP clients; in-process writers
    // (controllers) have nobody to read them.
    if req.subresource.is_some() || req.user.is_none() {
        return Ok(());
    }
    let Some(template) = pod_template(req, obj) else {
        return Ok(());
    };
    let (p, _) = policy(namespace_labels(api, ns).as_ref());
    let meta = template.get("metadata").unwrap_or(&Value::Null);
    let spec = template.get("spec").unwrap_or(&Value::Null);
    warn(req, &p.warn, meta, spec, (&p.enforce, &[]));
    audit(req, &p.audit, meta, spec, (&p.enforce, &[]));
    Ok(())
}

/// Adds the warn-level warning.
fn warn(
    req: &Request<'_>,
    mode: &LevelVersion,
    meta: &Value,
    spec: &Value,
    enforced: (&LevelVersion, &[Violation]),
) {
    if let Some(text) = would_violate(req, mode, meta, spec, enforced) {
        req.warn(text);
    }
}

/// Adds the audit-level violations to the request's audit event.
fn audit(
    req: &Request<'_>,
    mode: &LevelVersion,
    meta: &Value,
    spec: &Value,
    enforced: (&LevelVersion, &[Violation]),
) {
    if let Some(text) = would_violate(req, mode, meta, spec, enforced) {
        req.annotate("pod-security.kubernetes.io/audit-violations", text);
    }
}

/// `would violate PodSecurity "level:version": …` for `mode`, or None,
/// reusing the enforce evaluation when both name the same level (as
/// upstream caches per level and version).
fn would_violate(
    req: &Request<'_>,
    mode: &LevelVersion,
    meta: &Value,
    spec: &Value,
    enforced: (&LevelVersion, &[Violation]),
) -> Option<String> {
    if mode.level == Level::Privileged {
        return None;
    }
    let found = if req.is("", "pods") && enforced.0 == mode {
        enforced.1.to_vec()
    } else {
        evaluate(mode.level, meta, spec)
    };
    (!found.is_empty()).then(|| {
        format!(
            "would violate PodSecurity {}: {}",
            validation::go_quote(&mode.to_string()),
            forbidden_detail(&found)
        )
    })
}

/// The pod template of a workload resource, if this is one and has it.
fn pod_template<'v>(req: &Request<'_>, obj: &'v Value) -> Option<&'v Value> {
    let template = match (req.resource.group, req.resource.plural) {
        ("", "podtemplates") => obj.get("template"),
        ("", "replicationcontrollers")
        | ("apps", "deployments" | "replicasets" | "statefulsets" | "daemonsets")
        | ("batch", "jobs") => obj.get("spec")?.get("template"),
        ("batch", "cronjobs") => obj
            .get("spec")?
            .get("jobTemplate")?
            .get("spec")?
            .get("template"),
        _ => None,
    }?;
    (!template.is_null()).then_some(template)
}

/// The labels of namespace `ns` from the watch cache (`None` when it is
/// unknown: NamespaceLifecycle answers for missing namespaces).
fn namespace_labels(api: &Api, ns: &str) -> Option<Value> {
    let r = api.registry().find("", "v1", "namespaces")?;
    let stored = api.store.cache(r.storage)?.get(ns)?;
    stored.object.get("metadata")?.get("labels").cloned()
}

const SECCOMP_POD_ANNOTATION: &str = "seccomp.security.alpha.kubernetes.io/pod";
const SECCOMP_CONTAINER_PREFIX: &str = "container.seccomp.security.alpha.kubernetes.io/";

/// Upstream `isSignificantPodUpdate`: only images, container counts,
/// seccomp annotations and new ephemeral containers can change a verdict
/// on a pod that already passed.
fn significant_pod_update(pod: &Value, old: &Value) -> bool {
    let annotation = |p: &Value, key: &str| -> Option<String> {
        p.get("metadata")?
            .get("annotations")?
            .get(key)?
            .as_str()
            .map(str::to_string)
    };
    if annotation(pod, SECCOMP_POD_ANNOTATION) != annotation(old, SECCOMP_POD_ANNOTATION) {
        return true;
    }
    let list = |p: &'_ Value, field: &str| -> Vec<Value> {
        p.get("spec")
            .and_then(|s| s.get(field))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let changed = |c: &Value, o: &Value| {
        let key = format!("{SECCOMP_CONTAINER_PREFIX}{}", name_of(c));
        c.get("image") != o.get("image") || annotation(pod, &key) != annotation(old, &key)
    };
    for field in ["containers", "initContainers"] {
        let (new, before) = (list(pod, field), list(old, field));
        if new.len() != before.len() || new.iter().zip(&before).any(|(c, o)| changed(c, o)) {
            return true;
        }
    }
    let before = list(old, "ephemeralContainers");
    list(pod, "ephemeralContainers").iter().any(|c| {
        match before.iter().find(|o| name_of(o) == name_of(c)) {
            None => true,
            Some(o) => changed(c, o),
        }
    })
}

#[cfg(test)]
mod tests;
