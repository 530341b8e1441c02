//! DELETE, CONNECT, reinvocation and matchConditions through the real
//! verbs, against the in-process HTTPS webhook servers of `tests.rs`.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use super::tests::{add_label, api, configure, create_cm, deny_labelled, hook, serve, Server};
use crate::api::{ApiError, DeleteOptions, ListOptions, WriteOptions};

const VALIDATING: &str = "validatingwebhookconfigurations";
const MUTATING: &str = "mutatingwebhookconfigurations";

fn url(s: &Server, path: &str) -> String {
    format!("https://127.0.0.1:{}{path}", s.port)
}

/// As the integration test's `/validate` on DELETE: the old object decides.
fn deny_old(review: &Value) -> Value {
    if review["request"]["oldObject"]["metadata"]["labels"]["deny"] == "true" {
        json!({"allowed": false, "status": {"code": 403, "message": "labelled deny"}})
    } else {
        json!({"allowed": true})
    }
}

/// Allows everything, with a warning for the client.
fn allow_warning(_: &Value) -> Value {
    json!({"allowed": true, "warnings": ["deleting is noted"]})
}

fn rules(ops: Value, resources: Value) -> Value {
    json!({"rules": [{"operations": ops, "apiGroups": [""], "apiVersions": ["v1"], "resources": resources}]})
}

async fn delete_cm(api: &crate::api::Api, name: &str) -> Result<(), ApiError> {
    let r = api.registry().find("", "v1", "configmaps").unwrap();
    let opts = DeleteOptions {
        grace_period_seconds: Some(0),
        ..Default::default()
    };
    api.delete(r, Some("default"), name, &opts)
        .await
        .map(|_| ())
}

#[tokio::test]
async fn delete_is_admitted_with_the_old_object_and_options() {
    let (api, _dir) = api().await;
    let server = serve(Duration::ZERO, Arc::new(deny_old)).await;
    let extra = rules(json!(["DELETE"]), json!(["configmaps"]));
    let h = hook("del.example.com", url(&server, "/v"), &server.ca_pem, extra);
    configure(&api, VALIDATING, "del", vec![h]).await;
    create_cm(&api, "keep", json!({"deny": "true"}))
        .await
        .unwrap();
    create_cm(&api, "go", json!({"app": "x"})).await.unwrap();
    assert_eq!(
        server.calls.load(Ordering::SeqCst),
        0,
        "CREATE is not in the rules"
    );
    let err = delete_cm(&api, "keep").await.unwrap_err();
    assert_eq!(err.code(), 403);
    assert_eq!(
        err.to_string(),
        "admission webhook \"del.example.com\" denied the request: labelled deny"
    );
    let req = server.last.lock().unwrap()["review"]["request"].clone();
    assert_eq!(req["operation"], "DELETE");
    assert_eq!(req["name"], "keep");
    assert_eq!(req["object"], Value::Null);
    assert_eq!(req["oldObject"]["metadata"]["name"], "keep");
    assert_eq!(
        req["options"],
        json!({"apiVersion": "meta.k8s.io/v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0})
    );
    delete_cm(&api, "go").await.unwrap();
    // deletecollection: one DELETE admission per item, refusal as on delete.
    let r = api.registry().find("", "v1", "configmaps").unwrap();
    let before = server.calls.load(Ordering::SeqCst);
    let err = api
        .delete_collection(
            r,
            Some("default"),
            &ListOptions::default(),
            &DeleteOptions::default(),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().ends_with("labelled deny"), "{err}");
    assert!(server.calls.load(Ordering::SeqCst) > before);
}

#[tokio::test]
async fn a_mutating_webhook_may_not_patch_a_delete() {
    let (api, _dir) = api().await;
    let server = serve(Duration::ZERO, add_label("x", "y")).await;
    let extra = rules(json!(["DELETE"]), json!(["configmaps"]));
    let h = hook(
        "patch.example.com",
        url(&server, "/m"),
        &server.ca_pem,
        extra,
    );
    configure(&api, MUTATING, "patch", vec![h]).await;
    create_cm(&api, "a", Value::Null).await.unwrap();
    let err = delete_cm(&api, "a").await.unwrap_err();
    assert_eq!(err.code(), 500);
    assert_eq!(
        err.to_string(),
        "Internal error occurred: admission webhook \"patch.example.com\" attempted to modify the object, which is not supported for this operation"
    );
    assert_eq!(
        server.last.lock().unwrap()["review"]["request"]["operation"],
        "DELETE"
    );
}

#[tokio::test]
async fn connect_sends_the_exec_options() {
    let (api, _dir) = api().await;
    let server = serve(
        Duration::ZERO,
        Arc::new(
            |_: &Value| json!({"allowed": false, "status": {"code": 403, "message": "no exec"}}),
        ),
    )
    .await;
    let extra = rules(json!(["CONNECT"]), json!(["pods/exec"]));
    let h = hook(
        "exec.example.com",
        url(&server, "/x"),
        &server.ca_pem,
        extra,
    );
    configure(&api, VALIDATING, "exec", vec![h]).await;
    let pods = api.registry().find("", "v1", "pods").unwrap();
    let q: Vec<(String, String)> = [("command", "id"), ("stdout", "true"), ("container", "c")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let err = api
        .admit_connect(pods, "exec", "default", "p", &q, None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), 403);
    assert_eq!(
        err.to_string(),
        "admission webhook \"exec.example.com\" denied the request: no exec"
    );
    let req = server.last.lock().unwrap()["review"]["request"].clone();
    assert_eq!(req["operation"], "CONNECT");
    assert_eq!(req["subResource"], "exec");
    assert_eq!(req["name"], "p");
    assert_eq!(req["options"], Value::Null);
    assert_eq!(
        req["kind"],
        json!({"group": "", "version": "v1", "kind": "PodExecOptions"})
    );
    assert_eq!(
        req["object"],
        json!({"kind": "PodExecOptions", "apiVersion": "v1", "stdout": true, "container": "c", "command": ["id"]})
    );
    // attach is another subresource: not in the rules.
    api.admit_connect(pods, "attach", "default", "p", &q, None)
        .await
        .unwrap();
    assert_eq!(server.calls.load(Ordering::SeqCst), 1);
}

/// Sets annotation `seen-mutated` to whether it was sent the label
/// `mutated=yes` (the example server's `/mutate-observe`).
fn observe(review: &Value) -> Value {
    use base64::Engine;
    let obj = &review["request"]["object"];
    let seen = if obj["metadata"]["labels"]["mutated"] == "yes" {
        "yes"
    } else {
        "no"
    };
    let patch = if obj["metadata"]["annotations"].is_object() {
        json!([{"op": "add", "path": "/metadata/annotations/seen-mutated", "value": seen}])
    } else {
        json!([{"op": "add", "path": "/metadata/annotations", "value": {"seen-mutated": seen}}])
    };
    let b64 = base64::engine::general_purpose::STANDARD.encode(patch.to_string());
    json!({"allowed": true, "patchType": "JSONPatch", "patch": b64})
}

async fn reinvoked(policy: &str) -> (Value, usize) {
    let (api, _dir) = api().await;
    let first = serve(Duration::ZERO, Arc::new(observe)).await;
    let second = serve(Duration::ZERO, add_label("mutated", "yes")).await;
    let extra = json!({"reinvocationPolicy": policy});
    let a = hook("a.example.com", url(&first, "/o"), &first.ca_pem, extra);
    configure(&api, MUTATING, "a-observe", vec![a]).await;
    let b = hook(
        "b.example.com",
        url(&second, "/m"),
        &second.ca_pem,
        json!({}),
    );
    configure(&api, MUTATING, "b-mutate", vec![b]).await;
    let out = create_cm(&api, "r", Value::Null).await.unwrap();
    (out, first.calls.load(Ordering::SeqCst))
}

#[tokio::test]
async fn if_needed_webhooks_run_again_after_a_later_change() {
    let (out, calls) = reinvoked("IfNeeded").await;
    assert_eq!(
        out["metadata"]["annotations"]["seen-mutated"], "yes",
        "{out}"
    );
    assert_eq!(out["metadata"]["labels"]["mutated"], "yes");
    assert_eq!(calls, 2);
    let (out, calls) = reinvoked("Never").await;
    assert_eq!(
        out["metadata"]["annotations"]["seen-mutated"], "no",
        "{out}"
    );
    assert_eq!(calls, 1);
}

#[tokio::test]
async fn match_conditions_skip_or_fail() {
    let (api, _dir) = api().await;
    let server = serve(Duration::ZERO, Arc::new(deny_labelled)).await;
    let cond = |e: &str| json!({"matchConditions": [{"name": "c", "expression": e}]});
    let h = hook(
        "cond.example.com",
        url(&server, "/v"),
        &server.ca_pem,
        cond("object.metadata.name != 'skip-me'"),
    );
    configure(&api, VALIDATING, "cond", vec![h]).await;
    create_cm(&api, "skip-me", json!({"deny": "true"}))
        .await
        .unwrap();
    assert_eq!(server.calls.load(Ordering::SeqCst), 0);
    let err = create_cm(&api, "other", json!({"deny": "true"}))
        .await
        .unwrap_err();
    assert!(err.to_string().ends_with("labelled deny"), "{err}");
    // An evaluation error: Fail refuses, Ignore skips.
    let h = hook(
        "err.example.com",
        url(&server, "/v"),
        &server.ca_pem,
        cond("object.spec.x == 1"),
    );
    configure(&api, VALIDATING, "err", vec![h.clone()]).await;
    let err = create_cm(&api, "skip-me-2", Value::Null).await.unwrap_err();
    assert_eq!(err.code(), 403);
    assert_eq!(
        err.to_string(),
        "configmaps \"skip-me-2\" is forbidden: expression 'object.spec.x == 1' resulted in error: No such key: spec"
    );
    let r = api
        .registry()
        .find("admissionregistration.k8s.io", "v1", VALIDATING)
        .unwrap();
    let mut ignore = h;
    ignore["failurePolicy"] = "Ignore".into();
    let mut cfg = (*api.get(r, None, "err").await.unwrap()).clone();
    cfg["webhooks"] = json!([ignore]);
    api.update(r, None, "err", cfg, None, &WriteOptions::default())
        .await
        .unwrap();
    api.store.sync().await.unwrap();
    create_cm(&api, "skip-me-3", Value::Null).await.unwrap();
}

#[tokio::test]
async fn bad_match_conditions_are_refused() {
    let (api, _dir) = api().await;
    let r = api
        .registry()
        .find("admissionregistration.k8s.io", "v1", VALIDATING)
        .unwrap();
    let mut h = hook(
        "bad.example.com",
        "https://127.0.0.1:1/".into(),
        "",
        json!({}),
    );
    h["matchConditions"] =
        json!([{"name": "a", "expression": "nope"}, {"name": "a", "expression": "true"}]);
    let obj = json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": "bad"}, "webhooks": [h]});
    let err = api
        .create(r, None, obj, &WriteOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), 422);
    let text = err.to_string();
    assert!(
        text.contains("webhooks[0].matchConditions[0].expression: Invalid value: \"nope\": compilation failed: ERROR: <input>:1:1: undeclared reference to 'nope'"),
        "{text}"
    );
    assert!(
        text.contains("webhooks[0].matchConditions[1].name: Duplicate value: \"a\""),
        "{text}"
    );
}

#[tokio::test]
async fn delete_warnings_reach_the_client() {
    let (api, _dir) = api().await;
    let server = serve(Duration::ZERO, Arc::new(allow_warning)).await;
    let extra = rules(json!(["DELETE"]), json!(["configmaps"]));
    let h = hook(
        "warn.example.com",
        url(&server, "/v"),
        &server.ca_pem,
        extra,
    );
    configure(&api, VALIDATING, "warn", vec![h]).await;
    create_cm(&api, "w", Value::Null).await.unwrap();
    let r = api.registry().find("", "v1", "configmaps").unwrap();
    let opts = DeleteOptions::default();
    api.delete(r, Some("default"), "w", &opts).await.unwrap();
    assert_eq!(
        *opts.warnings.lock().unwrap(),
        vec!["deleting is noted".to_string()]
    );
}
