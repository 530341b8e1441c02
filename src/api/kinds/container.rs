//! Container validation inside a PodSpec (upstream's `validateContainers`
//! and the port, env, mount, resource and probe rules it applies).

use std::collections::HashSet;

use serde_json::{json, Value};

use super::json::{list, text};
use super::rules::{self, idx, protocol};
use crate::api::validation::{self as v, FieldCause};

pub(super) fn validate_container(
    c: &Value,
    path: &str,
    volumes: &HashSet<String>,
    names: &mut HashSet<String>,
    out: &mut Vec<FieldCause>,
) {
    let name = text(c, "name");
    if name.is_empty() {
        out.push(v::required(&format!("{path}.name"), ""));
    } else {
        out.extend(
            v::is_dns1123_label(name)
                .iter()
                .map(|m| v::invalid(&format!("{path}.name"), &json!(name), m)),
        );
    }
    if !names.insert(name.to_string()) && !name.is_empty() {
        out.push(v::duplicate(&format!("{path}.name"), &json!(name)));
    }
    if text(c, "image").is_empty() {
        out.push(v::required(&format!("{path}.image"), ""));
    }
    validate_ports(list(c, "ports"), &format!("{path}.ports"), out);
    for (i, env) in list(c, "env").iter().enumerate() {
        let at = idx(&format!("{path}.env"), i);
        if text(env, "name").is_empty() {
            out.push(v::required(&format!("{at}.name"), ""));
        }
        if env.get("valueFrom").is_some_and(|f| !f.is_null()) && !text(env, "value").is_empty() {
            let msg = "may not be specified when `value` is not empty";
            out.push(v::invalid(&format!("{at}.valueFrom"), &json!(""), msg));
        }
    }
    let mut paths = HashSet::new();
    for (i, m) in list(c, "volumeMounts").iter().enumerate() {
        let at = idx(&format!("{path}.volumeMounts"), i);
        let vol = text(m, "name");
        if vol.is_empty() {
            out.push(v::required(&format!("{at}.name"), ""));
        } else if !volumes.contains(vol) {
            out.push(rules::not_found(&format!("{at}.name"), vol));
        }
        let mount = text(m, "mountPath");
        if mount.is_empty() {
            out.push(v::required(&format!("{at}.mountPath"), ""));
        } else if !paths.insert(mount) {
            out.push(v::invalid(
                &format!("{at}.mountPath"),
                &json!(mount),
                "must be unique",
            ));
        }
    }
    validate_resources(c.get("resources"), &format!("{path}.resources"), out);
    let enums: [(&str, &[&str]); 2] = [
        ("imagePullPolicy", &["Always", "IfNotPresent", "Never"]),
        (
            "terminationMessagePolicy",
            &["File", "FallbackToLogsOnError"],
        ),
    ];
    for (field, valid) in enums {
        if let Some(val) = c
            .get(field)
            .filter(|x| !x.as_str().is_some_and(|s| valid.contains(&s)))
        {
            out.push(v::not_supported(&format!("{path}.{field}"), val, valid));
        }
    }
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = c.get(probe).filter(|p| !p.is_null()) {
            validate_probe(p, &format!("{path}.{probe}"), out);
        }
    }
}

fn validate_ports(ports: &[Value], path: &str, out: &mut Vec<FieldCause>) {
    let mut names = HashSet::new();
    for (i, p) in ports.iter().enumerate() {
        let at = idx(path, i);
        let name = text(p, "name");
        if !name.is_empty() {
            let msgs = rules::port_name(name);
            out.extend(
                msgs.iter()
                    .map(|m| v::invalid(&format!("{at}.name"), &json!(name), m)),
            );
            if !names.insert(name) {
                out.push(v::duplicate(&format!("{at}.name"), &json!(name)));
            }
        }
        match p.get("containerPort") {
            None | Some(Value::Null) => out.push(v::required(&format!("{at}.containerPort"), "")),
            Some(n) if n.as_i64() == Some(0) => {
                out.push(v::required(&format!("{at}.containerPort"), ""))
            }
            Some(n) => rules::port_number(&format!("{at}.containerPort"), n, out),
        }
        if let Some(h) = p
            .get("hostPort")
            .filter(|h| !h.is_null() && h.as_i64() != Some(0))
        {
            rules::port_number(&format!("{at}.hostPort"), h, out);
        }
        protocol(p.get("protocol"), &format!("{at}.protocol"), out);
    }
}

/// Quantities parse, and no request exceeds its limit.
fn validate_resources(res: Option<&Value>, path: &str, out: &mut Vec<FieldCause>) {
    let Some(res) = res else { return };
    for part in ["limits", "requests"] {
        for (name, q) in res
            .get(part)
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            let field = rules::key(&format!("{path}.{part}"), name);
            match rules::quantity_nanos(q) {
                None => out.push(v::invalid(&field, q, rules::QUANTITY_FORMAT)),
                Some(n) if n < 0 => out.push(v::invalid(&field, q, rules::NON_NEGATIVE)),
                Some(_) => {}
            }
        }
    }
    let limits = res.get("limits").and_then(Value::as_object);
    for (name, q) in res
        .get("requests")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        let Some(limit) = limits.and_then(|l| l.get(name)) else {
            continue;
        };
        if let (Some(r), Some(l)) = (rules::quantity_nanos(q), rules::quantity_nanos(limit)) {
            if r > l {
                let shown = limit
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| limit.to_string());
                let msg = format!("must be less than or equal to {name} limit of {shown}");
                out.push(v::invalid(
                    &rules::key(&format!("{path}.requests"), name),
                    q,
                    &msg,
                ));
            }
        }
    }
}

fn validate_probe(p: &Value, path: &str, out: &mut Vec<FieldCause>) {
    let handlers: Vec<&str> = ["exec", "httpGet", "tcpSocket", "grpc"]
        .into_iter()
        .filter(|h| p.get(*h).is_some_and(|x| !x.is_null()))
        .collect();
    match handlers.as_slice() {
        [] => out.push(v::required(path, "must specify a handler type")),
        [_] => {}
        [_, second, ..] => out.push(v::forbidden(
            &format!("{path}.{second}"),
            "may not specify more than 1 handler type",
        )),
    }
    for h in ["httpGet", "tcpSocket"] {
        if let Some(port) = p.get(h).map(|x| x.get("port").unwrap_or(&Value::Null)) {
            rules::port_num_or_name(&format!("{path}.{h}.port"), port, out);
        }
    }
    for field in [
        "initialDelaySeconds",
        "timeoutSeconds",
        "periodSeconds",
        "successThreshold",
        "failureThreshold",
    ] {
        rules::non_negative(&format!("{path}.{field}"), p.get(field), out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn causes(c: Value) -> String {
        let mut out = Vec::new();
        validate_container(&c, "c", &HashSet::new(), &mut HashSet::new(), &mut out);
        out.iter()
            .map(|c| format!("{}: {}", c.field, c.message))
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn requests_may_not_exceed_limits() {
        let c = json!({"name": "a", "image": "x", "resources":
            {"limits": {"cpu": "500m"}, "requests": {"cpu": "1", "memory": "lots"}}});
        let got = causes(c);
        assert!(got.contains("resources.requests[cpu]: Invalid value: \"1\": must be less than or equal to cpu limit of 500m"), "{got}");
        assert!(got.contains("resources.requests[memory]"), "{got}");
    }
}
