//! Malformed and hostile bodies, CRD schema unions, and bodies captured
//! from a real kubectl.

use serde_json::{json, Value};

use super::tests::{b, entry, envelope, m, meta, s, v};
use super::{decode, ProtoError};

fn err(body: &[u8]) -> String {
    match decode(body) {
        Ok(v) => format!("decoded {v}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn malformed_bodies_are_errors() {
    assert_eq!(
        err(b"{\"kind\":\"Namespace\"}"),
        ProtoError::Magic.to_string()
    );
    assert_eq!(err(b"k8s"), ProtoError::Magic.to_string());

    let good = envelope("v1", "Namespace", &[meta("x", &[("a", "b")], None)]);
    for cut in 4..good.len() {
        // Every prefix is either an error or a well-formed shorter message,
        // and none panics.
        let _ = decode(&good[..cut]);
    }
    assert_eq!(
        err(&good[..good.len() - 3]),
        ProtoError::Truncated.to_string()
    );

    // metadata.name as a varint: a wrong wire type for a known field.
    let body = envelope("v1", "Namespace", &[m(1, &[v(1, 7)])]);
    assert_eq!(
        err(&body),
        "wrong wire type 0 for field 1 of meta.v1.ObjectMeta, expected 2"
    );

    let body = envelope("example.com/v1", "Widget", &[]);
    assert_eq!(
        err(&body),
        "no protobuf schema for kind Widget in example.com/v1"
    );
    let mut body = b"k8s\0".to_vec();
    body.extend(m(2, &[]));
    assert_eq!(err(&body), ProtoError::NoKind.to_string());
    let mut body = envelope("v1", "Namespace", &[]);
    body.extend(s(3, "gzip"));
    assert_eq!(err(&body), "unsupported protobuf content encoding \"gzip\"");
}

#[test]
fn deep_nesting_is_refused() {
    // JSONSchemaProps.properties (tag 29) nested 100 levels.
    let mut schema: Vec<u8> = s(5, "object");
    for _ in 0..100 {
        schema = [s(5, "object"), entry(29, "p", b(2, &schema))].concat();
    }
    let version = m(7, &[s(1, "v1"), v(2, 1), v(3, 1), m(4, &[b(1, &schema)])]);
    let body = envelope(
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        &[m(2, &[version])],
    );
    assert_eq!(err(&body), ProtoError::TooDeep.to_string());

    // RawExtensions nesting envelopes.
    let mut body = envelope("v1", "ConfigMap", &[]);
    for _ in 0..40 {
        body = envelope("apps/v1", "ControllerRevision", &[m(2, &[b(1, &body)])]);
    }
    assert_eq!(err(&body), ProtoError::TooDeep.to_string());
}

#[test]
fn crd_schema_unions() {
    let props = |fields: &[Vec<u8>]| fields.concat();
    let string = props(&[s(5, "string")]);
    let schema = props(&[
        s(5, "object"),
        entry(29, "name", b(2, &string)),
        m(24, &[b(1, &string)]),
        m(30, &[v(1, 1)]),
        m(20, &[b(1, b"\"a\"")]),
    ]);
    let version = m(7, &[s(1, "v1"), v(2, 1), v(3, 1), m(4, &[b(1, &schema)])]);
    let body = envelope(
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        &[m(2, &[version])],
    );
    let got = decode(&body).ok();
    let schema = got
        .as_ref()
        .and_then(|c| c.pointer("/spec/versions/0/schema/openAPIV3Schema"));
    let want = json!({"type": "object", "properties": {"name": {"type": "string"}},
        "items": {"type": "string"}, "additionalProperties": true, "enum": ["a"]});
    assert_eq!(schema, Some(&want));
}

/// Bodies kubectl v1.32 sent for `kubectl create namespace|configmap|
/// secret generic|deployment|service clusterip|cronjob|rolebinding|quota|
/// pdb|ingress`, captured on the wire, next to what the same command prints
/// with `--dry-run=client -o json` (the JSON it would send), without its
/// nulls (`"creationTimestamp": null`), which decode leaves out.
#[test]
fn captured_kubectl_bodies() {
    macro_rules! fixture {
        ($name:literal) => {
            (
                $name,
                &include_bytes!(concat!("testdata/", $name, ".pb"))[..],
                include_str!(concat!("testdata/", $name, ".json")),
            )
        };
    }
    let cases = [
        fixture!("namespace"),
        fixture!("configmap"),
        fixture!("secret"),
        fixture!("deployment"),
        fixture!("service"),
        fixture!("cronjob"),
        fixture!("rolebinding"),
        fixture!("quota"),
        fixture!("pdb"),
        fixture!("ingress"),
    ];
    for (name, body, json) in cases {
        // Damaged copies decode or fail, but never panic.
        for i in 0..body.len() {
            let _ = decode(&body[..i]);
            for flip in [0x00, 0x80, 0xff] {
                let mut bad = body.to_vec();
                bad[i] ^= flip;
                let _ = decode(&bad);
            }
        }
        let want: Value = serde_json::from_str(json)
            .map_err(|e| e.to_string())
            .unwrap_or(Value::Null);
        assert_eq!(decode(body).map_err(|e| e.to_string()), Ok(want), "{name}");
    }
}
