//! The smaller core/v1 kinds: Namespace, Node, Endpoints, ResourceQuota,
//! LimitRange, ReplicationController and PodTemplate.

use serde_json::{json, Map, Value};

use super::apps::selector_and_template;
use super::json::{child, default, default_str, each_mut, existing, list, root, text};
use super::podcheck::validate_template;
use super::podspec::default_template_at;
use super::rules::protocol;
use super::rules::{self, idx};
use crate::api::validation::{self as v, FieldCause};

/// SetDefaults_Namespace: the immutable name label; status Active.
pub(super) fn namespace_defaults(obj: &mut Value) {
    let Some(o) = root(obj) else { return };
    let name = o
        .get("metadata")
        .map(|m| text(m, "name"))
        .unwrap_or("")
        .to_string();
    if !name.is_empty() {
        if let Some(labels) = child(o, "metadata").and_then(|m| child(m, "labels")) {
            labels.insert("kubernetes.io/metadata.name".into(), json!(name));
        }
    }
    if let Some(status) = child(o, "status") {
        default_str(status, "phase", "Active");
    }
}

/// The namespace strategy's PrepareForCreate: the `kubernetes` finalizer.
pub(super) fn namespace_prepare_create(obj: &mut Value) {
    let Some(o) = root(obj) else { return };
    if let Some(spec) = child(o, "spec") {
        let mut finalizers = spec
            .get("finalizers")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if !finalizers.iter().any(|f| f.as_str() == Some("kubernetes")) {
            finalizers.push(json!("kubernetes"));
        }
        spec.insert("finalizers".into(), Value::Array(finalizers));
    }
    o.insert("status".into(), json!({"phase": "Active"}));
}

pub(super) fn namespace_validate(obj: &Value) -> Vec<FieldCause> {
    let mut out = Vec::new();
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    for (i, f) in list(spec, "finalizers").iter().enumerate() {
        let name = f.as_str().unwrap_or("");
        let field = idx("spec.finalizers", i);
        out.extend(
            v::is_qualified_name(name)
                .iter()
                .map(|m| v::invalid(&field, f, m)),
        );
    }
    out
}

/// SetDefaults_NodeStatus: allocatable defaults to capacity.
pub(super) fn node_defaults(obj: &mut Value) {
    let Some(status) = root(obj).and_then(|o| existing(o, "status")) else {
        return;
    };
    if let Some(capacity) = status.get("capacity").cloned() {
        default(status, "allocatable", capacity);
    }
}

/// SetDefaults_EndpointPort: protocol TCP.
pub(super) fn endpoints_defaults(obj: &mut Value) {
    let Some(o) = root(obj) else { return };
    for subset in each_mut(o, "subsets") {
        for port in each_mut(subset, "ports") {
            default_str(port, "protocol", "TCP");
        }
    }
}

pub(super) fn endpoints_validate(obj: &Value) -> Vec<FieldCause> {
    let mut out = Vec::new();
    for (i, subset) in list(obj, "subsets").iter().enumerate() {
        let at = idx("subsets", i);
        for kind in ["addresses", "notReadyAddresses"] {
            for (j, a) in list(subset, kind).iter().enumerate() {
                let ip = text(a, "ip");
                if ip.parse::<std::net::IpAddr>().is_err() {
                    let msg = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)";
                    out.push(v::invalid(
                        &format!("{}.ip", idx(&format!("{at}.{kind}"), j)),
                        &json!(ip),
                        msg,
                    ));
                }
            }
        }
        for (j, p) in list(subset, "ports").iter().enumerate() {
            let pat = idx(&format!("{at}.ports"), j);
            rules::port_number(
                &format!("{pat}.port"),
                p.get("port").unwrap_or(&Value::Null),
                &mut out,
            );
            protocol(p.get("protocol"), &format!("{pat}.protocol"), &mut out);
        }
    }
    out
}

/// The quota strategy starts with an empty status.
pub(super) fn quota_prepare_create(obj: &mut Value) {
    if let Some(o) = root(obj) {
        o.insert("status".into(), json!({}));
    }
}

/// Every quantity in a resource list parses and is not negative.
fn quantities(map: Option<&Value>, path: &str, out: &mut Vec<FieldCause>) {
    for (name, q) in map.and_then(Value::as_object).into_iter().flatten() {
        let field = rules::key(path, name);
        match rules::quantity_nanos(q) {
            None => out.push(v::invalid(&field, q, rules::QUANTITY_FORMAT)),
            Some(n) if n < 0 => out.push(v::invalid(&field, q, rules::NON_NEGATIVE)),
            Some(_) => {}
        }
    }
}

pub(super) fn quota_validate(obj: &Value) -> Vec<FieldCause> {
    let mut out = Vec::new();
    quantities(
        obj.get("spec").and_then(|s| s.get("hard")),
        "spec.hard",
        &mut out,
    );
    out
}

/// SetDefaults_LimitRangeItem: container defaults fall back to max, and
/// default requests to the default limit, then to min.
pub(super) fn limitrange_defaults(obj: &mut Value) {
    let Some(spec) = root(obj).and_then(|o| existing(o, "spec")) else {
        return;
    };
    for item in each_mut(spec, "limits") {
        if item.get("type").and_then(Value::as_str) != Some("Container") {
            continue;
        }
        let pick = |item: &Map<String, Value>, k: &str| {
            item.get(k)
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default()
        };
        let mut limit = pick(item, "default");
        let mut request = pick(item, "defaultRequest");
        for (k, q) in pick(item, "max") {
            limit.entry(k).or_insert(q);
        }
        for (k, q) in limit.clone().into_iter().chain(pick(item, "min")) {
            request.entry(k).or_insert(q);
        }
        if !limit.is_empty() {
            item.insert("default".into(), Value::Object(limit));
        }
        if !request.is_empty() {
            item.insert("defaultRequest".into(), Value::Object(request));
        }
    }
}

pub(super) fn limitrange_validate(obj: &Value) -> Vec<FieldCause> {
    let mut out = Vec::new();
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    for (i, item) in list(spec, "limits").iter().enumerate() {
        let at = idx("spec.limits", i);
        let kinds = ["Container", "Pod", "PersistentVolumeClaim"];
        match item.get("type") {
            Some(t) if t.as_str().is_some_and(|s| !s.is_empty()) => {
                if !t.as_str().is_some_and(|s| kinds.contains(&s))
                    && !t.as_str().is_some_and(|s| s.contains('/'))
                {
                    out.push(v::not_supported(&format!("{at}.type"), t, &kinds));
                }
            }
            _ => out.push(v::required(&format!("{at}.type"), "")),
        }
        for part in [
            "max",
            "min",
            "default",
            "defaultRequest",
            "maxLimitRequestRatio",
        ] {
            quantities(item.get(part), &format!("{at}.{part}"), &mut out);
        }
    }
    out
}

/// SetDefaults_ReplicationController: selector and labels from the
/// template's labels; one replica.
pub(super) fn rc_defaults(obj: &mut Value) {
    let Some(o) = root(obj) else { return };
    let labels = o
        .get("spec")
        .and_then(|s| s.get("template"))
        .and_then(|t| t.get("metadata"))
        .and_then(|m| m.get("labels"))
        .filter(|l| l.is_object())
        .cloned();
    if let Some(labels) = labels {
        let empty = |v: Option<&Value>| v.and_then(Value::as_object).is_none_or(Map::is_empty);
        if let Some(spec) = child(o, "spec") {
            if empty(spec.get("selector")) {
                spec.insert("selector".into(), labels.clone());
            }
        }
        if let Some(meta) = child(o, "metadata") {
            if empty(meta.get("labels")) {
                meta.insert("labels".into(), labels);
            }
        }
    }
    if let Some(spec) = child(o, "spec") {
        default(spec, "replicas", json!(1));
        default_template_at(spec, "template");
    }
}

pub(super) fn rc_validate(obj: &Value) -> Vec<FieldCause> {
    let mut out = Vec::new();
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    rules::replica_counts(spec, &mut out);
    // RC selectors are plain label maps; the apps rules read them as
    // matchLabels.
    let selector = spec
        .get("selector")
        .filter(|s| s.as_object().is_some_and(|m| !m.is_empty()));
    let mut as_apps = spec.clone();
    if let Some(m) = as_apps.as_object_mut() {
        match selector {
            Some(sel) => m.insert("selector".into(), json!({"matchLabels": sel})),
            None => m.remove("selector"),
        };
    }
    let mut apps = Vec::new();
    selector_and_template(
        &as_apps,
        "replicationcontroller",
        "activeDeadlineSeconds in ReplicationController is not Supported",
        &mut apps,
    );
    out.extend(apps.into_iter().map(|mut c| {
        if c.field.starts_with("spec.selector.matchLabels") {
            c.field = c
                .field
                .replacen("spec.selector.matchLabels", "spec.selector", 1);
        }
        c
    }));
    out
}

pub(super) fn podtemplate_defaults(obj: &mut Value) {
    if let Some(o) = root(obj) {
        default_template_at(o, "template");
    }
}

pub(super) fn podtemplate_validate(obj: &Value) -> Vec<FieldCause> {
    let mut out = Vec::new();
    validate_template(obj.get("template"), "template", &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces() {
        let mut ns = json!({"metadata": {"name": "dev"}});
        namespace_defaults(&mut ns);
        namespace_prepare_create(&mut ns);
        assert_eq!(
            ns["metadata"]["labels"]["kubernetes.io/metadata.name"],
            "dev"
        );
        assert_eq!(ns["spec"]["finalizers"], json!(["kubernetes"]));
        assert_eq!(ns["status"]["phase"], "Active");
        assert!(namespace_validate(&ns).is_empty());
        assert_eq!(
            namespace_validate(&json!({"spec": {"finalizers": ["a b"]}}))[0].field,
            "spec.finalizers[0]"
        );
    }

    #[test]
    fn replication_controllers() {
        let mut rc = json!({"spec": {"template": {"metadata": {"labels": {"app": "a"}},
            "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}});
        rc_defaults(&mut rc);
        assert_eq!(rc["spec"]["selector"], json!({"app": "a"}));
        assert_eq!(rc["metadata"]["labels"], json!({"app": "a"}));
        assert_eq!(rc["spec"]["replicas"], 1);
        assert!(rc_validate(&rc).is_empty(), "{:?}", rc_validate(&rc));
        rc["spec"]["selector"] = json!({"app": "b"});
        let cause = &rc_validate(&rc)[0];
        assert_eq!(cause.field, "spec.template.metadata.labels");
        assert!(cause
            .message
            .ends_with("`selector` does not match template `labels`"));
    }

    #[test]
    fn limit_ranges_and_others() {
        let mut lr = json!({"spec": {"limits": [{"type": "Container", "max": {"cpu": "1"}, "min": {"memory": "1Mi"}}]}});
        limitrange_defaults(&mut lr);
        let item = &lr["spec"]["limits"][0];
        assert_eq!(item["default"], json!({"cpu": "1"}));
        assert_eq!(item["defaultRequest"], json!({"cpu": "1", "memory": "1Mi"}));
        assert!(limitrange_validate(&lr).is_empty());
        let mut node = json!({"status": {"capacity": {"cpu": "4"}}});
        node_defaults(&mut node);
        assert_eq!(node["status"]["allocatable"], json!({"cpu": "4"}));
        let mut ep =
            json!({"subsets": [{"addresses": [{"ip": "10.0.0.1"}], "ports": [{"port": 80}]}]});
        endpoints_defaults(&mut ep);
        assert!(endpoints_validate(&ep).is_empty());
        ep["subsets"][0]["addresses"][0]["ip"] = json!("x");
        assert_eq!(
            endpoints_validate(&ep)[0].field,
            "subsets[0].addresses[0].ip"
        );
        assert_eq!(
            quota_validate(&json!({"spec": {"hard": {"pods": "ten"}}}))[0].field,
            "spec.hard[pods]"
        );
        assert_eq!(podtemplate_validate(&json!({}))[0].field, "template");
    }

    #[test]
    fn junk_does_not_panic() {
        for junk in [
            json!(null),
            json!({"spec": 1, "status": 2, "subsets": [3]}),
            json!({"spec": {"limits": [1, {"type": 2}], "template": 4}}),
        ] {
            let mut j = junk.clone();
            for d in [
                namespace_defaults,
                namespace_prepare_create,
                node_defaults,
                endpoints_defaults,
                quota_prepare_create,
                limitrange_defaults,
                rc_defaults,
                podtemplate_defaults,
            ] {
                d(&mut j);
            }
            for val in [
                namespace_validate,
                endpoints_validate,
                quota_validate,
                limitrange_validate,
                rc_validate,
                podtemplate_validate,
            ] {
                val(&j);
            }
        }
    }
}
