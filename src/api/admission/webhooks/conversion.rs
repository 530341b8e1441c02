//! CRD conversion webhooks (`spec.conversion.strategy: Webhook`): a
//! `ConversionReview` (the first of the CRD's `conversionReviewVersions`
//! we speak, v1 or v1beta1) sent to `spec.conversion.webhook.clientConfig`,
//! the answer checked as upstream's `webhookConverter.Convert`: objects
//! already at the desired version are not sent, converted objects must keep
//! kind, name, namespace and uid, and get their metadata back from the
//! originals except labels and annotations.

use serde_json::{json, Value};

use super::{call, config};
use crate::api::Api;

/// Upstream gives conversion calls no timeout of their own; ours is the
/// admission maximum.
const TIMEOUT_SECONDS: u64 = 30;

/// Why a conversion gave no objects, as upstream words it.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConversionError {
    /// `gvk` reads as Go prints it: `stable.example.com/v1, Kind=CronTab`.
    #[error("conversion webhook for {gvk} failed: {cause}")]
    Failed { gvk: String, cause: String },
    /// An answer that came back but is unusable (count, version, metadata).
    #[error("conversion webhook for {gvk} {what}")]
    Invalid { gvk: String, what: String },
    #[error("no supported conversion review versions")]
    NoReviewVersion,
}

fn text<'a>(obj: &'a Value, key: &str) -> &'a str {
    obj.get(key).and_then(Value::as_str).unwrap_or("")
}

fn meta_text<'a>(obj: &'a Value, key: &str) -> &'a str {
    obj.pointer(&format!("/metadata/{key}"))
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn gvk(obj: &Value) -> String {
    format!("{}, Kind={}", text(obj, "apiVersion"), text(obj, "kind"))
}

/// The ConversionReview version to send: the first one listed we speak.
fn review_version(webhook: &Value) -> Option<&'static str> {
    webhook
        .get("conversionReviewVersions")
        .and_then(Value::as_array)?
        .iter()
        .find_map(|v| match v.as_str() {
            Some("v1") => Some("v1"),
            Some("v1beta1") => Some("v1beta1"),
            _ => None,
        })
}

/// The converted objects out of an answer; `Err` is upstream's cause text
/// (`getConvertedObjectsFromResponse`; v1beta1 answers are not checked for
/// kind or uid, as upstream).
fn converted(uid: &str, version: &str, answer: &Value) -> Result<Vec<Value>, String> {
    if version == "v1" {
        let (api_version, kind) = (text(answer, "apiVersion"), text(answer, "kind"));
        if api_version != "apiextensions.k8s.io/v1" || kind != "ConversionReview" {
            return Err(format!(
                "expected webhook response of apiextensions.k8s.io/v1, Kind=ConversionReview, got {api_version}, Kind={kind}"
            ));
        }
    }
    let resp = answer
        .get("response")
        .filter(|r| r.is_object())
        .ok_or("no response provided")?;
    if version == "v1" {
        let got = text(resp, "uid");
        if got != uid {
            return Err(format!("expected response.uid={uid:?}, got {got:?}"));
        }
    }
    let result = resp.get("result").unwrap_or(&Value::Null);
    let status = text(result, "status");
    if status != "Success" {
        let message = text(result, "message");
        if !message.is_empty() {
            return Err(message.to_string());
        }
        return Err(format!(
            "response.result.status was '{status}', not 'Success'"
        ));
    }
    Ok(resp
        .get("convertedObjects")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default())
}

/// Checks one converted object against its original and gives it the
/// original's metadata with the converted labels and annotations; `Err`
/// is the text after upstream's "at index N: ".
fn restore(original: &Value, mut out: Value, desired: &str) -> Result<Value, String> {
    let (want_gv, got_gv) = (desired, text(&out, "apiVersion"));
    if want_gv != got_gv {
        return Err(format!(
            "invalid groupVersion (expected {want_gv}, received {got_gv})"
        ));
    }
    let (want_kind, got_kind) = (text(original, "kind"), text(&out, "kind"));
    if want_kind != got_kind {
        return Err(format!(
            "invalid kind (expected {want_kind}, received {got_kind})"
        ));
    }
    for (key, what) in [("name", "name"), ("namespace", "namespace"), ("uid", "UID")] {
        let (a, b) = (meta_text(original, key), meta_text(&out, key));
        if a != b {
            return Err(format!("must have the same {what}: {a} != {b}"));
        }
    }
    let answered = out
        .get("metadata")
        .and_then(Value::as_object)
        .cloned()
        .ok_or("missing metadata in converted object")?;
    let mut meta = original
        .get("metadata")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    for field in ["labels", "annotations"] {
        match answered.get(field) {
            None | Some(Value::Null) => {
                meta.remove(field);
            }
            Some(Value::Object(m)) => {
                if let Some((k, _)) = m.iter().find(|(_, v)| !v.is_string()) {
                    return Err(format!(
                        "metadata.{field}[{k}] must be a string in converted object"
                    ));
                }
                meta.insert(field.into(), Value::Object(m.clone()));
            }
            Some(_) => return Err(format!("invalid metadata.{field} in converted object")),
        }
    }
    if let Some(m) = out.as_object_mut() {
        m.insert("metadata".into(), Value::Object(meta));
    }
    Ok(out)
}

/// Converts `objects` (one custom resource's, as a single object or the
/// items of a list) to `desired_api_version` through the conversion
/// webhook `webhook` (a CRD's `spec.conversion.webhook`). Objects already
/// at that version are not sent; none to send makes no call.
pub(crate) async fn convert(
    api: &Api,
    webhook: &Value,
    mut objects: Vec<Value>,
    desired_api_version: &str,
) -> Result<Vec<Value>, ConversionError> {
    let pending: Vec<usize> = (0..objects.len())
        .filter(|&i| text(&objects[i], "apiVersion") != desired_api_version)
        .collect();
    let Some(&first) = pending.first() else {
        return Ok(objects);
    };
    let gvk = gvk(&objects[first]);
    let failed = |cause: String| ConversionError::Failed {
        gvk: gvk.clone(),
        cause,
    };
    let invalid = |what: String| ConversionError::Invalid {
        gvk: gvk.clone(),
        what,
    };
    let version = review_version(webhook).ok_or(ConversionError::NoReviewVersion)?;
    let client = webhook
        .get("clientConfig")
        .and_then(config::client_config)
        .ok_or_else(|| failed("no webhook clientConfig in spec.conversion".into()))?;
    let endpoint = api
        .webhook_endpoint(&client, TIMEOUT_SECONDS)
        .map_err(failed)?;
    let uid = crate::api::meta::new_uid();
    let sent: Vec<&Value> = pending.iter().map(|&i| &objects[i]).collect();
    let review = json!({
        "apiVersion": format!("apiextensions.k8s.io/{version}"),
        "kind": "ConversionReview",
        "request": {"uid": uid, "desiredAPIVersion": desired_api_version, "objects": sent},
    });
    let answer = call::post(&endpoint, &review).await.map_err(failed)?;
    let answers = converted(&uid, version, &answer).map_err(failed)?;
    if answers.len() != pending.len() {
        return Err(invalid(format!(
            "returned {} objects, expected {}",
            answers.len(),
            pending.len()
        )));
    }
    // Upstream words a single object's faults without "converted".
    let single = objects.len() == 1;
    for (n, (i, out)) in pending.into_iter().zip(answers).enumerate() {
        let restored = restore(&objects[i], out, desired_api_version).map_err(|e| {
            if single {
                invalid(format!("returned invalid object at index 0: {e}"))
            } else {
                invalid(format!(
                    "returned invalid converted object at index {n}: {e}"
                ))
            }
        })?;
        objects[i] = restored;
    }
    Ok(objects)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(resp: Value) -> Value {
        json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview", "response": resp})
    }

    #[test]
    fn answers_are_checked() {
        let ok = answer(json!({"uid": "u", "result": {"status": "Success"},
            "convertedObjects": [{"apiVersion": "g/v2", "kind": "K"}]}));
        assert_eq!(converted("u", "v1", &ok).unwrap().len(), 1);
        assert!(converted("x", "v1", &ok).is_err());
        // v1beta1 answers are not checked for uid (upstream compatibility).
        assert!(converted("x", "v1beta1", &ok).is_ok());
        let refused =
            answer(json!({"uid": "u", "result": {"status": "Failure", "message": "nope"}}));
        assert_eq!(converted("u", "v1", &refused).unwrap_err(), "nope");
        let bare = answer(json!({"uid": "u", "result": {"status": "Failure"}}));
        assert_eq!(
            converted("u", "v1", &bare).unwrap_err(),
            "response.result.status was 'Failure', not 'Success'"
        );
        let wrong = json!({"apiVersion": "v1", "kind": "Status"});
        assert_eq!(
            converted("u", "v1", &wrong).unwrap_err(),
            "expected webhook response of apiextensions.k8s.io/v1, Kind=ConversionReview, got v1, Kind=Status"
        );
    }

    fn webhook(port: u16, ca_pem: &str) -> Value {
        let ca = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, ca_pem);
        json!({"clientConfig": {"url": format!("https://127.0.0.1:{port}/convert"), "caBundle": ca},
               "conversionReviewVersions": ["v1"]})
    }

    fn object(name: &str, version: &str) -> Value {
        json!({"apiVersion": format!("g/{version}"), "kind": "K", "spec": {},
               "metadata": {"name": name, "namespace": "n", "uid": name, "resourceVersion": "7"}})
    }

    #[tokio::test]
    async fn only_other_versions_are_sent_in_one_review() {
        use std::sync::atomic::Ordering;
        let (api, _dir) = super::super::tests::api().await;
        let server = super::super::tests::serve(
            std::time::Duration::ZERO,
            std::sync::Arc::new(|review: &Value| {
                let objects = review["request"]["objects"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                let converted: Vec<Value> = objects
                    .into_iter()
                    .map(|mut o| {
                        o["apiVersion"] = review["request"]["desiredAPIVersion"].clone();
                        o["spec"]["converted"] = json!(true);
                        o["metadata"]["resourceVersion"] = json!("0");
                        o["metadata"]["labels"] = json!({"x": "y"});
                        o
                    })
                    .collect();
                json!({"result": {"status": "Success"}, "convertedObjects": converted})
            }),
        )
        .await;
        let hook = webhook(server.port, &server.ca_pem);
        let objects = vec![object("a", "v1"), object("b", "v2"), object("c", "v1")];
        let out = convert(&api, &hook, objects, "g/v2").await.unwrap();
        assert_eq!(server.calls.load(Ordering::SeqCst), 1);
        let sent = server.last.lock().unwrap()["review"]["request"]["objects"].clone();
        assert_eq!(sent.as_array().map(Vec::len), Some(2));
        assert_eq!(out[0]["spec"]["converted"], true);
        assert_eq!(out[0]["metadata"]["resourceVersion"], "7");
        assert_eq!(out[0]["metadata"]["labels"]["x"], "y");
        assert!(out[1]["spec"].get("converted").is_none());
        assert_eq!(out[2]["apiVersion"], "g/v2");
        // Nothing to convert: no call.
        convert(&api, &hook, vec![object("b", "v2")], "g/v2")
            .await
            .unwrap();
        assert_eq!(server.calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn failures_read_as_upstream() {
        let (api, _dir) = super::super::tests::api().await;
        let empty = super::super::tests::serve(
            std::time::Duration::ZERO,
            std::sync::Arc::new(|_: &Value| json!({"result": {"status": "Success"}})),
        )
        .await;
        let hook = webhook(empty.port, &empty.ca_pem);
        let err = convert(
            &api,
            &hook,
            vec![object("a", "v1"), object("c", "v1")],
            "g/v2",
        )
        .await
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "conversion webhook for g/v1, Kind=K returned 0 objects, expected 2"
        );
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let err = convert(
            &api,
            &webhook(port, &empty.ca_pem),
            vec![object("a", "v1")],
            "g/v2",
        )
        .await
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("conversion webhook for g/v1, Kind=K failed: Post \"https://127.0.0.1:{port}/convert?timeout=30s\": dial tcp 127.0.0.1:{port}: connect: connection refused")
        );
    }

    #[test]
    fn review_version_is_the_first_spoken() {
        let w = |v: Value| json!({"conversionReviewVersions": v});
        assert_eq!(
            review_version(&w(json!(["v2", "v1beta1", "v1"]))),
            Some("v1beta1")
        );
        assert_eq!(review_version(&w(json!(["v1"]))), Some("v1"));
        assert_eq!(review_version(&w(json!(["v9"]))), None);
    }

    #[test]
    fn metadata_comes_back_from_the_original() {
        let original = json!({"apiVersion": "g/v1", "kind": "K", "metadata": {
            "name": "a", "namespace": "n", "uid": "1", "resourceVersion": "7",
            "labels": {"x": "1"}}});
        let out = json!({"apiVersion": "g/v2", "kind": "K", "spec": {"p": 1}, "metadata": {
            "name": "a", "namespace": "n", "uid": "1", "resourceVersion": "0",
            "labels": {"y": "2"}, "generation": 9}});
        let r = restore(&original, out, "g/v2").unwrap();
        assert_eq!(r["metadata"]["resourceVersion"], "7");
        assert_eq!(r["metadata"]["labels"], json!({"y": "2"}));
        assert!(r["metadata"].get("generation").is_none());
        assert_eq!(r["spec"]["p"], 1);
        let renamed = json!({"apiVersion": "g/v2", "kind": "K", "metadata": {"name": "b",
            "namespace": "n", "uid": "1"}});
        assert_eq!(
            restore(&original, renamed, "g/v2").unwrap_err(),
            "must have the same name: a != b"
        );
        let stale = json!({"apiVersion": "g/v1", "kind": "K", "metadata": {}});
        assert_eq!(
            restore(&original, stale, "g/v2").unwrap_err(),
            "invalid groupVersion (expected g/v2, received g/v1)"
        );
    }
}
