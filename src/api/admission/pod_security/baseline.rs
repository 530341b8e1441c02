//! The baseline checks, with upstream's reasons and details (the latest
//! version of each). `CHECKS` run at baseline and restricted; the
//! `OVERLAPPING` ones only at baseline, where restricted has a stricter
//! check of its own.

use serde_json::Value;

use super::fields::{
    added_capabilities, containers, containers_phrase, join_quote, name_of, pluralize, sc, setters,
    sorted_set, str_at, valid_seccomp, volumes,
};
use super::Violation;

pub(super) type Check = fn(&Value, &Value) -> Option<Violation>;

/// In upstream's registration order (its check files' name order).
pub(super) const CHECKS: &[Check] = &[
    app_armor_profile,
    host_namespaces,
    host_ports,
    host_probes_and_lifecycle,
    privileged,
    proc_mount,
    se_linux_options,
    sysctls,
    windows_host_process,
];

pub(super) const OVERLAPPING: &[Check] = &[capabilities, host_path_volumes, seccomp_profile];

const APPARMOR_ANNOTATION_PREFIX: &str = "container.apparmor.security.beta.kubernetes.io/";

fn app_armor_profile(meta: &Value, spec: &Value) -> Option<Violation> {
    let allowed = |p: &Value| matches!(str_at(p, "type"), Some("RuntimeDefault" | "Localhost"));
    let mut values = Vec::new();
    let pod_bad = match sc(spec, "appArmorProfile") {
        Some(p) if !allowed(p) => {
            values.push(str_at(p, "type").unwrap_or_default().to_string());
            true
        }
        _ => false,
    };
    let mut bad = Vec::new();
    for c in containers(spec) {
        if let Some(p) = sc(c, "appArmorProfile").filter(|p| !allowed(p)) {
            bad.push(name_of(c).to_string());
            values.push(str_at(p, "type").unwrap_or_default().to_string());
        }
    }
    let mut who = setters(pod_bad, &bad);
    let mut values = sorted_set(values);
    let mut annotations: Vec<String> = meta
        .get("annotations")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter(|(k, _)| k.starts_with(APPARMOR_ANNOTATION_PREFIX))
        .filter_map(|(k, v)| {
            let v = v.as_str().unwrap_or_default();
            let ok = v.is_empty() || v == "runtime/default" || v.starts_with("localhost/");
            (!ok).then(|| format!("{k}={}", crate::api::validation::go_quote(v)))
        })
        .collect();
    if !annotations.is_empty() {
        annotations.sort();
        who.push(pluralize("annotation", "annotations", annotations.len()).to_string());
        values.extend(annotations);
    }
    if who.is_empty() {
        return None;
    }
    Violation::new(
        pluralize(
            "forbidden AppArmor profile",
            "forbidden AppArmor profiles",
            values.len(),
        ),
        format!(
            "{} must not set AppArmor profile type to {}",
            who.join(" and "),
            join_quote(&values)
        ),
    )
}

fn host_namespaces(_meta: &Value, spec: &Value) -> Option<Violation> {
    let found: Vec<&str> = [
        ("hostNetwork", "hostNetwork=true"),
        ("hostPID", "hostPID=true"),
        ("hostIPC", "hostIPC=true"),
    ]
    .into_iter()
    .filter(|(field, _)| spec.get(*field).and_then(Value::as_bool) == Some(true))
    .map(|(_, text)| text)
    .collect();
    if found.is_empty() {
        return None;
    }
    Violation::new("host namespaces", found.join(", "))
}

fn host_ports(_meta: &Value, spec: &Value) -> Option<Violation> {
    let mut bad = Vec::new();
    let mut ports = Vec::new();
    for c in containers(spec) {
        let used: Vec<String> = c
            .get("ports")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|p| p.get("hostPort").and_then(Value::as_i64))
            .filter(|p| *p != 0)
            .map(|p| p.to_string())
            .collect();
        if !used.is_empty() {
            bad.push(name_of(c).to_string());
            ports.extend(used);
        }
    }
    if bad.is_empty() {
        return None;
    }
    // Go's string set: sorted as text.
    let ports = sorted_set(ports);
    Violation::new(
        "hostPort",
        format!(
            "{} {} {} {}",
            containers_phrase(&bad),
            pluralize("uses", "use", bad.len()),
            pluralize("hostPort", "hostPorts", ports.len()),
            ports.join(", ")
        ),
    )
}

/// Hosts named by a probe or lifecycle handler (`httpGet`/`tcpSocket`).
fn handler_hosts(handler: Option<&Value>) -> impl Iterator<Item = &str> {
    ["httpGet", "tcpSocket"]
        .into_iter()
        .filter_map(move |kind| handler?.get(kind)?.get("host")?.as_str())
        .filter(|h| !h.is_empty())
}

/// Upstream 1.34: probes and lifecycle hooks must not aim at another host.
fn host_probes_and_lifecycle(_meta: &Value, spec: &Value) -> Option<Violation> {
    let (mut bad, mut hosts) = (Vec::new(), Vec::new());
    for c in containers(spec) {
        let lifecycle = c.get("lifecycle");
        let handlers = [
            c.get("livenessProbe"),
            c.get("readinessProbe"),
            c.get("startupProbe"),
            lifecycle.and_then(|l| l.get("postStart")),
            lifecycle.and_then(|l| l.get("preStop")),
        ];
        let found: Vec<String> = handlers
            .into_iter()
            .flat_map(handler_hosts)
            .map(str::to_string)
            .collect();
        if !found.is_empty() {
            bad.push(name_of(c).to_string());
            hosts.extend(found);
        }
    }
    if bad.is_empty() {
        return None;
    }
    // Go sets: both lists sorted and deduplicated.
    let (bad, hosts) = (sorted_set(bad), sorted_set(hosts));
    Violation::new(
        "probe or lifecycle host",
        format!(
            "{} {} {} {}",
            containers_phrase(&bad),
            pluralize("uses", "use", bad.len()),
            pluralize(
                "probe or lifecycle host",
                "probe or lifecycle hosts",
                hosts.len()
            ),
            join_quote(&hosts)
        ),
    )
}

fn privileged(_meta: &Value, spec: &Value) -> Option<Violation> {
    let bad: Vec<String> = containers(spec)
        .filter(|c| sc(c, "privileged").and_then(Value::as_bool) == Some(true))
        .map(|c| name_of(c).to_string())
        .collect();
    if bad.is_empty() {
        return None;
    }
    Violation::new(
        "privileged",
        format!(
            "{} must not set securityContext.privileged=true",
            containers_phrase(&bad)
        ),
    )
}

fn proc_mount(_meta: &Value, spec: &Value) -> Option<Violation> {
    let mut bad = Vec::new();
    let mut kinds = Vec::new();
    for c in containers(spec) {
        if let Some(kind) = sc(c, "procMount").and_then(Value::as_str) {
            if kind != "Default" {
                bad.push(name_of(c).to_string());
                kinds.push(kind.to_string());
            }
        }
    }
    if bad.is_empty() {
        return None;
    }
    Violation::new(
        "procMount",
        format!(
            "{} must not set securityContext.procMount to {}",
            containers_phrase(&bad),
            join_quote(&sorted_set(kinds))
        ),
    )
}

const SELINUX_TYPES: &[&str] = &[
    "",
    "container_t",
    "container_init_t",
    "container_kvm_t",
    "container_engine_t",
];

fn se_linux_options(_meta: &Value, spec: &Value) -> Option<Violation> {
    let (mut types, mut user, mut role) = (Vec::new(), false, false);
    let mut bad_options = |o: &Value| {
        let t = str_at(o, "type").unwrap_or_default();
        let mut bad = false;
        if !SELINUX_TYPES.contains(&t) {
            types.push(t.to_string());
            bad = true;
        }
        if !str_at(o, "user").unwrap_or_default().is_empty() {
            user = true;
            bad = true;
        }
        if !str_at(o, "role").unwrap_or_default().is_empty() {
            role = true;
            bad = true;
        }
        bad
    };
    let pod_bad = sc(spec, "seLinuxOptions").is_some_and(&mut bad_options);
    let bad: Vec<String> = containers(spec)
        .filter(|c| sc(c, "seLinuxOptions").is_some_and(&mut bad_options))
        .map(|c| name_of(c).to_string())
        .collect();
    let who = setters(pod_bad, &bad);
    if who.is_empty() {
        return None;
    }
    let types = sorted_set(types);
    let mut data = Vec::new();
    if !types.is_empty() {
        data.push(format!(
            "{} {}",
            pluralize("type", "types", types.len()),
            join_quote(&types)
        ));
    }
    if user {
        data.push("user may not be set".to_string());
    }
    if role {
        data.push("role may not be set".to_string());
    }
    Violation::new(
        "seLinuxOptions",
        format!(
            "{} set forbidden securityContext.seLinuxOptions: {}",
            who.join(" and "),
            data.join("; ")
        ),
    )
}

/// The safe set of upstream's newest version (1.32).
const SAFE_SYSCTLS: &[&str] = &[
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
    "net.ipv4.tcp_rmem",
    "net.ipv4.tcp_wmem",
];

fn sysctls(_meta: &Value, spec: &Value) -> Option<Violation> {
    let bad: Vec<&str> = sc(spec, "sysctls")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|s| str_at(s, "name").unwrap_or_default())
        .filter(|n| !SAFE_SYSCTLS.contains(n))
        .collect();
    if bad.is_empty() {
        return None;
    }
    Violation::new("forbidden sysctls", bad.join(", "))
}

fn windows_host_process(_meta: &Value, spec: &Value) -> Option<Violation> {
    let host_process = |holder: &Value| {
        sc(holder, "windowsOptions")
            .and_then(|w| w.get("hostProcess"))
            .and_then(Value::as_bool)
            == Some(true)
    };
    let bad: Vec<String> = containers(spec)
        .filter(|c| host_process(c))
        .map(|c| name_of(c).to_string())
        .collect();
    let who = setters(host_process(spec), &bad);
    if who.is_empty() {
        return None;
    }
    Violation::new(
        "hostProcess",
        format!(
            "{} must not set securityContext.windowsOptions.hostProcess=true",
            who.join(" and ")
        ),
    )
}

const DEFAULT_CAPABILITIES: &[&str] = &[
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

fn capabilities(_meta: &Value, spec: &Value) -> Option<Violation> {
    let mut bad = Vec::new();
    let mut extra = Vec::new();
    for c in containers(spec) {
        let mine: Vec<String> = added_capabilities(c)
            .filter(|cap| !DEFAULT_CAPABILITIES.contains(cap))
            .map(str::to_string)
            .collect();
        if !mine.is_empty() {
            bad.push(name_of(c).to_string());
            extra.extend(mine);
        }
    }
    if bad.is_empty() {
        return None;
    }
    Violation::new(
        "non-default capabilities",
        format!(
            "{} must not include {} in securityContext.capabilities.add",
            containers_phrase(&bad),
            join_quote(&sorted_set(extra))
        ),
    )
}

fn host_path_volumes(_meta: &Value, spec: &Value) -> Option<Violation> {
    let bad: Vec<&str> = volumes(spec)
        .filter(|v| v.get("hostPath").is_some_and(|h| !h.is_null()))
        .map(name_of)
        .collect();
    if bad.is_empty() {
        return None;
    }
    Violation::new(
        "hostPath volumes",
        format!(
            "{} {}",
            pluralize("volume", "volumes", bad.len()),
            join_quote(&bad)
        ),
    )
}

fn seccomp_profile(_meta: &Value, spec: &Value) -> Option<Violation> {
    let mut values = Vec::new();
    let pod_bad = match sc(spec, "seccompProfile") {
        Some(p) if !valid_seccomp(p) => {
            values.push(str_at(p, "type").unwrap_or_default().to_string());
            true
        }
        _ => false,
    };
    let mut bad = Vec::new();
    for c in containers(spec) {
        if let Some(p) = sc(c, "seccompProfile").filter(|p| !valid_seccomp(p)) {
            bad.push(name_of(c).to_string());
            values.push(str_at(p, "type").unwrap_or_default().to_string());
        }
    }
    let who = setters(pod_bad, &bad);
    if who.is_empty() {
        return None;
    }
    Violation::new(
        "seccompProfile",
        format!(
            "{} must not set securityContext.seccompProfile.type to {}",
            who.join(" and "),
            join_quote(&sorted_set(values))
        ),
    )
}
