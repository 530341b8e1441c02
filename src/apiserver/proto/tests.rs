//! Bodies hand-encoded the way gogo-protobuf (and so kubectl) writes them:
//! every non-pointer field present, zero or not.

use serde_json::json;

use super::decode;

// A minimal protobuf encoder for the fixtures.
pub(super) fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A varint field.
pub(super) fn v(tag: u32, value: u64) -> Vec<u8> {
    let mut out = Vec::new();
    varint(u64::from(tag) << 3, &mut out);
    varint(value, &mut out);
    out
}

/// A length-delimited field (bytes, string or message).
pub(super) fn b(tag: u32, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    varint((u64::from(tag) << 3) | 2, &mut out);
    varint(bytes.len() as u64, &mut out);
    out.extend_from_slice(bytes);
    out
}

pub(super) fn s(tag: u32, text: &str) -> Vec<u8> {
    b(tag, text.as_bytes())
}

/// A message field made of already-encoded fields.
pub(super) fn m(tag: u32, fields: &[Vec<u8>]) -> Vec<u8> {
    b(tag, &fields.concat())
}

/// A `map<string, ...>` entry.
pub(super) fn entry(tag: u32, key: &str, value: Vec<u8>) -> Vec<u8> {
    m(tag, &[s(1, key), value])
}

pub(super) fn envelope(api_version: &str, kind: &str, raw: &[Vec<u8>]) -> Vec<u8> {
    let mut out = b"k8s\0".to_vec();
    out.extend(m(1, &[s(1, api_version), s(2, kind)]));
    out.extend(m(2, raw));
    out.extend(s(3, ""));
    out.extend(s(4, ""));
    out
}

/// ObjectMeta as Go writes it: strings, generation and creationTimestamp
/// always, labels sorted.
pub(super) fn meta(name: &str, labels: &[(&str, &str)], created: Option<u64>) -> Vec<u8> {
    let mut fields = vec![
        s(1, name),
        s(2, ""),
        s(3, ""),
        s(4, ""),
        s(5, ""),
        s(6, ""),
        v(7, 0),
    ];
    fields.push(m(
        8,
        &created.map(|t| vec![v(1, t), v(2, 0)]).unwrap_or_default(),
    ));
    for (k, val) in labels {
        fields.push(entry(11, k, s(2, val)));
    }
    m(1, &fields)
}

pub(super) fn quantity(tag: u32, text: &str) -> Vec<u8> {
    m(tag, &[s(1, text)])
}

#[test]
fn namespace_with_labels() {
    let body = envelope(
        "v1",
        "Namespace",
        &[
            meta("x", &[("team", "a")], None),
            m(2, &[]),
            m(3, &[s(1, "")]),
        ],
    );
    let got = decode(&body).map_err(|e| e.to_string());
    let want = json!({"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": "x", "labels": {"team": "a"}}, "spec": {}, "status": {}});
    assert_eq!(got, Ok(want));
}

#[test]
fn configmap_and_secret_bytes() {
    let body = envelope(
        "v1",
        "ConfigMap",
        &[
            meta("cm", &[], None),
            entry(2, "k", s(2, "v")),
            entry(2, "empty", s(2, "")),
            entry(3, "bin", b(2, &[0, 1, 2])),
        ],
    );
    let want = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"},
        "data": {"k": "v", "empty": ""}, "binaryData": {"bin": "AAEC"}});
    assert_eq!(decode(&body).ok(), Some(want));

    let body = envelope(
        "v1",
        "Secret",
        &[
            meta("s", &[], None),
            entry(2, "password", b(2, b"hunter2")),
            s(3, "Opaque"),
        ],
    );
    let want = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
        "data": {"password": "aHVudGVyMg=="}, "type": "Opaque"});
    assert_eq!(decode(&body).ok(), Some(want));
}

fn container() -> Vec<u8> {
    let port = m(6, &[s(1, ""), v(2, 0), v(3, 80), s(4, "TCP"), s(5, "")]);
    let resources = m(
        8,
        &[
            entry(1, "cpu", quantity(2, "500m")),
            entry(2, "memory", quantity(2, "64Mi")),
        ],
    );
    // name, image, workingDir, ports, resources, terminationMessagePath,
    // imagePullPolicy, stdin, stdinOnce, tty, terminationMessagePolicy.
    m(
        2,
        &[
            s(1, "web"),
            s(2, "nginx"),
            s(5, ""),
            port,
            resources,
            s(13, ""),
            s(14, ""),
            v(16, 0),
            v(17, 0),
            v(18, 0),
            s(20, ""),
        ],
    )
}

#[test]
fn deployment_with_template() {
    let pod_spec = m(
        2,
        &[
            container(),
            s(3, ""),
            s(6, ""),
            s(8, ""),
            v(11, 0),
            s(19, ""),
        ],
    );
    let template = m(3, &[meta("", &[("app", "web")], None), pod_spec]);
    let selector = m(2, &[entry(1, "app", s(2, "web"))]);
    let spec = m(
        2,
        &[
            v(1, 0),
            selector,
            template,
            m(4, &[s(1, "")]),
            v(5, 0),
            v(7, 0),
        ],
    );
    let status = m(3, &[v(1, 0), v(2, 0), v(3, 0), v(7, 0), v(4, 0), v(5, 0)]);
    let body = envelope(
        "apps/v1",
        "Deployment",
        &[
            meta("web", &[("app", "web")], Some(1_767_323_045)),
            spec,
            status,
        ],
    );
    let want = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "labels": {"app": "web"}, "creationTimestamp": "2026-01-02T03:04:05Z"},
        "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": "nginx",
                    "ports": [{"containerPort": 80, "protocol": "TCP"}],
                    "resources": {"limits": {"cpu": "500m"}, "requests": {"memory": "64Mi"}}}]}},
            "strategy": {}},
        "status": {}});
    assert_eq!(decode(&body).map_err(|e| e.to_string()), Ok(want));
}

#[test]
fn service_ports_int_or_string() {
    let int_port = m(
        1,
        &[
            s(1, "a"),
            s(2, "TCP"),
            v(3, 80),
            m(4, &[v(1, 0), v(2, 8080), s(3, "")]),
            v(5, 0),
        ],
    );
    let str_port = m(
        1,
        &[
            s(1, "b"),
            s(2, "TCP"),
            v(3, 443),
            m(4, &[v(1, 1), v(2, 0), s(3, "https")]),
            v(5, 0),
        ],
    );
    let spec = m(
        2,
        &[
            int_port,
            str_port,
            entry(2, "app", s(2, "web")),
            s(3, ""),
            s(4, "ClusterIP"),
        ],
    );
    let body = envelope(
        "v1",
        "Service",
        &[meta("web", &[], None), spec, m(3, &[m(1, &[])])],
    );
    let want = json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
        "spec": {"ports": [
            {"name": "a", "protocol": "TCP", "port": 80, "targetPort": 8080},
            {"name": "b", "protocol": "TCP", "port": 443, "targetPort": "https"}],
            "selector": {"app": "web"}, "type": "ClusterIP"},
        "status": {"loadBalancer": {}}});
    assert_eq!(decode(&body).ok(), Some(want));
}

#[test]
fn eviction_delete_options_keep_pointer_zeros() {
    let opts = m(2, &[v(1, 0), s(4, "Foreground"), s(5, "All")]);
    let body = envelope("policy/v1", "Eviction", &[meta("p", &[], None), opts]);
    let want = json!({"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": "p"},
        "deleteOptions": {"gracePeriodSeconds": 0, "propagationPolicy": "Foreground", "dryRun": ["All"]}});
    assert_eq!(decode(&body).ok(), Some(want));

    let body = envelope("apps/v1", "DeleteOptions", &[v(3, 0)]);
    let want = json!({"apiVersion": "apps/v1", "kind": "DeleteOptions", "orphanDependents": false});
    assert_eq!(decode(&body).ok(), Some(want));
}

#[test]
fn inline_structs_packed_lists_times_and_unknown_fields() {
    // A volume's source is inline; LocalObjectReference is inline in it.
    let volume = m(
        1,
        &[
            s(1, "cfg"),
            m(2, &[m(19, &[m(1, &[s(1, "my-cm")]), v(3, 420)])]),
        ],
    );
    let pod = envelope(
        "v1",
        "Pod",
        &[
            meta("p", &[], None),
            m(2, &[volume, b(99, b"future field")]),
        ],
    );
    let want = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"volumes": [{"name": "cfg", "configMap": {"name": "my-cm", "defaultMode": 420}}]}});
    assert_eq!(decode(&pod).map_err(|e| e.to_string()), Ok(want));

    // PodFailurePolicyOnExitCodesRequirement.values, packed and not.
    let packed = m(2, &[s(1, ""), s(2, "In"), b(3, &[1, 2]), v(3, 3)]);
    let rule = m(1, &[s(1, "FailJob"), packed]);
    let job = envelope(
        "batch/v1",
        "Job",
        &[meta("j", &[], None), m(2, &[m(11, &[rule])])],
    );
    let got = decode(&job).ok();
    let values = got
        .as_ref()
        .and_then(|j| j.pointer("/spec/podFailurePolicy/rules/0/onExitCodes/values"));
    assert_eq!(values, Some(&json!([1, 2, 3])));

    // MicroTime and a negative int32 (sign-extended to ten bytes).
    let lease = m(
        2,
        &[
            s(1, "me"),
            v(2, u64::MAX),
            m(4, &[v(1, 1_767_323_045), v(2, 123_456_789)]),
        ],
    );
    let body = envelope(
        "coordination.k8s.io/v1",
        "Lease",
        &[meta("l", &[], None), lease],
    );
    let got = decode(&body).ok();
    assert_eq!(
        got.as_ref().and_then(|l| l.get("spec")),
        Some(&json!({"holderIdentity": "me", "leaseDurationSeconds": -1,
            "renewTime": "2026-01-02T03:04:05.123456Z"}))
    );
}

#[test]
fn raw_extensions_hold_json_or_nested_protobuf() {
    let inner = envelope("v1", "ConfigMap", &[meta("inner", &[], None)]);
    for (raw, want) in [
        (br#"{"a":1}"#.to_vec(), json!({"a": 1})),
        (
            inner,
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "inner"}}),
        ),
    ] {
        let body = envelope(
            "apps/v1",
            "ControllerRevision",
            &[meta("r", &[], None), m(2, &[b(1, &raw)]), v(3, 2)],
        );
        let got = decode(&body).ok();
        assert_eq!(got.as_ref().and_then(|r| r.get("data")), Some(&want));
        assert_eq!(
            got.as_ref().and_then(|r| r.get("revision")),
            Some(&json!(2))
        );
    }
}
