//! LimitRanger: pods created without requests or limits get the
//! defaults of the namespace's LimitRanges (type Container: `default` as
//! limits, `defaultRequest` as requests; annotated
//! `kubernetes.io/limit-ranger`), and pods and PVCs breaking a min, max or
//! maxLimitRequestRatio are refused with upstream's texts. Pods are only
//! looked at on create (their resources are immutable); PVCs also on update.

use serde_json::{json, Map, Value};

use super::{Operation, Request};
use crate::api::quota::quantity::Quantity;
use crate::api::quota::usage::pod_amount;
use crate::api::{Api, ApiError};

const ANNOTATION: &str = "kubernetes.io/limit-ranger";

/// The namespace's LimitRanges when this write is one LimitRanger handles.
async fn ranges(api: &Api, req: &Request<'_>) -> Result<Vec<std::sync::Arc<Value>>, ApiError> {
    let pod = req.is("", "pods") && req.op == Operation::Create;
    let claim = req.is("", "persistentvolumeclaims");
    let (Some(ns), None, true) = (req.namespace, req.subresource, pod || claim) else {
        return Ok(Vec::new());
    };
    let Some(r) = api.registry().find("", "v1", "limitranges") else {
        return Ok(Vec::new());
    };
    super::quota::cached(api, r, ns).await
}

fn items(range: &Value) -> &[Value] {
    range
        .pointer("/spec/limits")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice)
}

fn map<'a>(v: &'a Value, key: &str) -> Option<&'a Map<String, Value>> {
    v.get(key).and_then(Value::as_object)
}

pub(super) async fn mutate(
    api: &Api,
    req: &Request<'_>,
    obj: &mut Value,
    _old: Option<&Value>,
) -> Result<(), ApiError> {
    if !req.is("", "pods") {
        return Ok(());
    }
    for range in ranges(api, req).await? {
        apply_defaults(&range, obj);
    }
    Ok(())
}

/// Upstream's mergePodResourceRequirements for one LimitRange.
fn apply_defaults(range: &Value, pod: &mut Value) {
    let mut limits = Map::new();
    let mut requests = Map::new();
    for item in items(range) {
        if item.get("type").and_then(Value::as_str) != Some("Container") {
            continue;
        }
        limits.extend(
            map(item, "default")
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.clone())),
        );
        requests.extend(
            map(item, "defaultRequest")
                .into_iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.clone())),
        );
    }
    if limits.is_empty() && requests.is_empty() {
        return;
    }
    let mut notes = Vec::new();
    for (list, label) in [
        ("containers", "container"),
        ("initContainers", "init container"),
    ] {
        let Some(cs) = pod
            .get_mut("spec")
            .and_then(|s| s.get_mut(list))
            .and_then(Value::as_array_mut)
        else {
            continue;
        };
        for c in cs.iter_mut() {
            let name = c
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let Some(c) = c.as_object_mut() else { continue };
            let resources = c.entry("resources").or_insert_with(|| json!({}));
            let set_requests = fill(resources, "requests", &requests);
            let set_limits = fill(resources, "limits", &limits);
            if !set_requests.is_empty() {
                notes.push(format!(
                    "{} request for {label} {name}",
                    set_requests.join(", ")
                ));
            }
            if !set_limits.is_empty() {
                notes.push(format!(
                    "{} limit for {label} {name}",
                    set_limits.join(", ")
                ));
            }
        }
    }
    if notes.is_empty() {
        return;
    }
    let Some(meta) = pod.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    let annotations = meta.entry("annotations").or_insert_with(|| json!({}));
    if !annotations.is_object() {
        *annotations = json!({});
    }
    annotations[ANNOTATION] = json!(format!("LimitRanger plugin set: {}", notes.join("; ")));
}

/// Sets the defaults a container lacks under `resources.<kind>`; returns
/// the names set, sorted.
fn fill(resources: &mut Value, kind: &str, defaults: &Map<String, Value>) -> Vec<String> {
    if defaults.is_empty() {
        return Vec::new();
    }
    if !resources.is_object() {
        *resources = json!({});
    }
    let Some(res) = resources.as_object_mut() else {
        return Vec::new();
    };
    let current = res.entry(kind).or_insert_with(|| json!({}));
    if !current.is_object() {
        *current = json!({});
    }
    let Some(current) = current.as_object_mut() else {
        return Vec::new();
    };
    let mut set = Vec::new();
    for (k, v) in defaults {
        if !current.contains_key(k) {
            current.insert(k.clone(), v.clone());
            set.push(k.clone());
        }
    }
    set.sort();
    set
}

pub(super) async fn validate(
    api: &Api,
    req: &Request<'_>,
    obj: &Value,
    _old: Option<&Value>,
) -> Result<(), ApiError> {
    for range in ranges(api, req).await? {
        let errors = if req.is("", "pods") {
            pod_errors(&range, obj)
        } else {
            claim_errors(&range, obj)
        };
        if let Some(why) = aggregate(errors) {
            return Err(ApiError::Forbidden(format!(
                "{} \"{}\" is forbidden: {why}",
                req.resource.qualified(),
                req.name
            )));
        }
    }
    Ok(())
}

/// utilerrors.NewAggregate's text: one message alone, several in brackets.
fn aggregate(errors: Vec<String>) -> Option<String> {
    let mut seen: Vec<String> = Vec::new();
    for e in errors {
        if !seen.contains(&e) {
            seen.push(e);
        }
    }
    match seen.len() {
        0 => None,
        1 => seen.pop(),
        _ => Some(format!("[{}]", seen.join(", "))),
    }
}

type Amounts<'a> = &'a dyn Fn(&str) -> Option<Quantity>;

fn pod_errors(range: &Value, pod: &Value) -> Vec<String> {
    let mut errs = Vec::new();
    for item in items(range) {
        match item.get("type").and_then(Value::as_str) {
            Some("Container") => {
                for list in ["/spec/containers", "/spec/initContainers"] {
                    let cs = pod
                        .pointer(list)
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten();
                    for c in cs {
                        let get = |kind: &'static str| {
                            move |res: &str| {
                                c.get("resources")
                                    .and_then(|r| r.get(kind))
                                    .and_then(|m| m.get(res))
                                    .and_then(Value::as_str)
                                    .and_then(Quantity::parse)
                            }
                        };
                        check_item(
                            item,
                            "Container",
                            &get("requests"),
                            &get("limits"),
                            &mut errs,
                        );
                    }
                }
            }
            Some("Pod") => {
                let requests = |res: &str| pod_amount(pod, "requests", res);
                let limits = |res: &str| pod_amount(pod, "limits", res);
                check_item(item, "Pod", &requests, &limits, &mut errs);
            }
            _ => {}
        }
    }
    errs
}

/// min, max and maxLimitRequestRatio of one item against one container
/// (or the whole pod).
fn check_item(
    item: &Value,
    kind: &str,
    requests: Amounts,
    limits: Amounts,
    errs: &mut Vec<String>,
) {
    for (res, enforced) in quantities(item, "min") {
        let e = enforced.canonical();
        match (requests(&res), limits(&res)) {
            (None, _) => errs.push(format!(
                "minimum {res} usage per {kind} is {e}.  No request is specified"
            )),
            (Some(r), _) if r.nanos < enforced.nanos => errs.push(format!(
                "minimum {res} usage per {kind} is {e}, but request is {}",
                r.canonical()
            )),
            (_, Some(l)) if l.nanos < enforced.nanos => errs.push(format!(
                "minimum {res} usage per {kind} is {e}, but limit is {}",
                l.canonical()
            )),
            _ => {}
        }
    }
    for (res, enforced) in quantities(item, "max") {
        let e = enforced.canonical();
        match (requests(&res), limits(&res)) {
            (_, None) => errs.push(format!(
                "maximum {res} usage per {kind} is {e}.  No limit is specified"
            )),
            (_, Some(l)) if l.nanos > enforced.nanos => errs.push(format!(
                "maximum {res} usage per {kind} is {e}, but limit is {}",
                l.canonical()
            )),
            (Some(r), _) if r.nanos > enforced.nanos => errs.push(format!(
                "maximum {res} usage per {kind} is {e}, but request is {}",
                r.canonical()
            )),
            _ => {}
        }
    }
    for (res, enforced) in quantities(item, "maxLimitRequestRatio") {
        let e = enforced.canonical();
        let prefix = format!("{res} max limit to request ratio per {kind} is {e}");
        let (r, l) = (requests(&res), limits(&res));
        let Some(r) = r.filter(|r| r.nanos != 0) else {
            errs.push(format!(
                "{prefix}, but no request is specified or request is 0"
            ));
            continue;
        };
        let Some(l) = l.filter(|l| l.nanos != 0) else {
            errs.push(format!("{prefix}, but no limit is specified or limit is 0"));
            continue;
        };
        let ratio = l.nanos as f64 / r.nanos as f64;
        if ratio * 1e9 > enforced.nanos as f64 {
            errs.push(format!("{prefix}, but provided ratio is {ratio:.6}"));
        }
    }
}

fn claim_errors(range: &Value, claim: &Value) -> Vec<String> {
    let mut errs = Vec::new();
    let requested = |res: &str| {
        claim
            .pointer("/spec/resources/requests")
            .and_then(|m| m.get(res))
            .and_then(Value::as_str)
            .and_then(Quantity::parse)
    };
    let kind = "PersistentVolumeClaim";
    for item in items(range) {
        if item.get("type").and_then(Value::as_str) != Some(kind) {
            continue;
        }
        for (res, enforced) in quantities(item, "min") {
            let e = enforced.canonical();
            match requested(&res) {
                None => errs.push(format!(
                    "minimum {res} usage per {kind} is {e}.  No request is specified"
                )),
                Some(r) if r.nanos < enforced.nanos => errs.push(format!(
                    "minimum {res} usage per {kind} is {e}, but request is {}",
                    r.canonical()
                )),
                _ => {}
            }
        }
        for (res, enforced) in quantities(item, "max") {
            let e = enforced.canonical();
            match requested(&res) {
                None => errs.push(format!(
                    "maximum {res} usage per {kind} is {e}.  No request is specified"
                )),
                Some(r) if r.nanos > enforced.nanos => errs.push(format!(
                    "maximum {res} usage per {kind} is {e}, but request is {}",
                    r.canonical()
                )),
                _ => {}
            }
        }
    }
    errs
}

/// The parseable quantities of `item.<key>`, by resource name.
fn quantities(item: &Value, key: &str) -> Vec<(String, Quantity)> {
    map(item, key)
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.clone(), Quantity::parse(v.as_str()?)?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range() -> Value {
        json!({"spec": {"limits": [{"type": "Container",
            "default": {"cpu": "500m", "memory": "256Mi"},
            "defaultRequest": {"cpu": "100m", "memory": "128Mi"},
            "min": {"cpu": "100m"}, "max": {"memory": "1Gi"},
            "maxLimitRequestRatio": {"cpu": "10"}}]}})
    }

    #[test]
    fn defaults_fill_what_containers_lack_and_annotate() {
        let mut pod = json!({"metadata": {"name": "p"}, "spec": {
            "containers": [{"name": "c"}, {"name": "d", "resources": {"requests": {"cpu": "200m"}}}],
            "initContainers": [{"name": "i", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]}});
        apply_defaults(&range(), &mut pod);
        assert_eq!(
            pod["spec"]["containers"][0]["resources"],
            json!({"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}})
        );
        assert_eq!(
            pod["spec"]["containers"][1]["resources"]["requests"]["cpu"],
            "200m"
        );
        assert_eq!(
            pod["metadata"]["annotations"][ANNOTATION],
            "LimitRanger plugin set: cpu, memory request for container c; cpu, memory limit for container c; memory request for container d; cpu, memory limit for container d; cpu, memory request for init container i"
        );
        assert!(aggregate(pod_errors(&range(), &pod)).is_none());
    }

    #[test]
    fn min_max_ratio_texts() {
        let pod = |res: Value| json!({"spec": {"containers": [{"name": "c", "resources": res}]}});
        let errs = |res: Value| aggregate(pod_errors(&range(), &pod(res)));
        assert_eq!(
            errs(json!({"requests": {"cpu": "50m"}, "limits": {"cpu": "100m", "memory": "1Gi"}}))
                .as_deref(),
            Some("minimum cpu usage per Container is 100m, but request is 50m")
        );
        assert_eq!(
            errs(json!({"requests": {"cpu": "100m"}, "limits": {"cpu": "2", "memory": "2Gi"}}))
                .as_deref(),
            Some("[maximum memory usage per Container is 1Gi, but limit is 2Gi, cpu max limit to request ratio per Container is 10, but provided ratio is 20.000000]")
        );
        assert_eq!(
            errs(json!({"requests": {"cpu": "1"}})).as_deref(),
            Some("[maximum memory usage per Container is 1Gi.  No limit is specified, cpu max limit to request ratio per Container is 10, but no limit is specified or limit is 0]")
        );
        let claims = json!({"spec": {"limits": [{"type": "PersistentVolumeClaim", "min": {"storage": "1Gi"}, "max": {"storage": "2Gi"}}]}});
        let claim = |s: &str| json!({"spec": {"resources": {"requests": {"storage": s}}}});
        assert_eq!(
            aggregate(claim_errors(&claims, &claim("3Gi"))).as_deref(),
            Some("maximum storage usage per PersistentVolumeClaim is 2Gi, but request is 3Gi")
        );
        assert_eq!(
            aggregate(claim_errors(&claims, &claim("500Mi"))).as_deref(),
            Some("minimum storage usage per PersistentVolumeClaim is 1Gi, but request is 500Mi")
        );
        assert!(aggregate(claim_errors(&claims, &claim("1Gi"))).is_none());
    }
}
