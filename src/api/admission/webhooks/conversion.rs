//! CRD conversion webhooks (`spec.conversion.strategy: Webhook`):
//! `apiextensions.k8s.io/v1 ConversionReview` sent to the CRD's
//! `spec.conversion.webhook.clientConfig`, answer checked as upstream's
//! `getConvertedObjectsFromResponse`.

use serde_json::{json, Value};

use super::{call, config, Error};
use crate::api::Api;

/// Upstream gives conversion calls no timeout of their own; ours is the
/// admission maximum.
const TIMEOUT_SECONDS: u64 = 30;

fn gvk(obj: Option<&Value>) -> String {
    let text = |k: &str| {
        obj.and_then(|o| o.get(k))
            .and_then(Value::as_str)
            .unwrap_or("")
    };
    format!("{}, Kind={}", text("apiVersion"), text("kind"))
}

/// The converted objects out of an answer; `Err` is upstream's cause text.
fn converted(
    uid: &str,
    answer: &Value,
    wanted: usize,
    desired: &str,
) -> Result<Vec<Value>, String> {
    let api_version = answer
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    let kind = answer.get("kind").and_then(Value::as_str).unwrap_or("");
    if api_version != "apiextensions.k8s.io/v1" || kind != "ConversionReview" {
        return Err(format!(
            "expected webhook response of apiextensions.k8s.io/v1, Kind=ConversionReview, got {api_version}, Kind={kind}"
        ));
    }
    let resp = answer
        .get("response")
        .filter(|r| r.is_object())
        .ok_or("no response provided")?;
    let got = resp.get("uid").and_then(Value::as_str).unwrap_or("");
    if got != uid {
        return Err(format!("expected response.uid={uid:?}, got {got:?}"));
    }
    let result = resp.get("result");
    let status = result
        .and_then(|r| r.get("status"))
        .and_then(Value::as_str)
        .unwrap_or("");
    if status != "Success" {
        let message = result
            .and_then(|r| r.get("message"))
            .and_then(Value::as_str)
            .unwrap_or("");
        if !message.is_empty() {
            return Err(message.to_string());
        }
        return Err(format!(
            "response.result.status was '{status}', not 'Success'"
        ));
    }
    let objects = resp
        .get("convertedObjects")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if objects.len() != wanted {
        return Err(format!(
            "returned {} objects, expected {wanted}",
            objects.len()
        ));
    }
    for (i, o) in objects.iter().enumerate() {
        let v = o.get("apiVersion").and_then(Value::as_str).unwrap_or("");
        if v != desired {
            return Err(format!(
                "invalid converted object at index {i}: invalid apiVersion {v:?}, expected {desired:?}"
            ));
        }
    }
    Ok(objects)
}

/// Converts `objects` of the custom resource `crd` to `desired_api_version`
/// through the CRD's conversion webhook. Objects already at that version
/// need no call.
#[allow(dead_code)] // called by CRD serving once it converts through webhooks
pub(crate) async fn convert(
    api: &Api,
    crd: &Value,
    objects: Vec<Value>,
    desired_api_version: &str,
) -> Result<Vec<Value>, Error> {
    let fail = |cause: String, objects: &[Value]| Error::Conversion {
        gvk: gvk(objects.first()),
        cause,
    };
    if objects
        .iter()
        .all(|o| o.get("apiVersion").and_then(Value::as_str) == Some(desired_api_version))
    {
        return Ok(objects);
    }
    let client = crd
        .pointer("/spec/conversion/webhook/clientConfig")
        .and_then(config::client_config)
        .ok_or_else(|| {
            fail(
                "no webhook clientConfig in spec.conversion".into(),
                &objects,
            )
        })?;
    let endpoint = api
        .webhook_endpoint(&client, TIMEOUT_SECONDS)
        .map_err(|e| fail(e, &objects))?;
    let uid = crate::api::meta::new_uid();
    let review = json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "ConversionReview",
        "request": {"uid": uid, "desiredAPIVersion": desired_api_version, "objects": objects},
    });
    let answer = call::post(&endpoint, &review)
        .await
        .map_err(|e| fail(e, &objects))?;
    converted(&uid, &answer, objects.len(), desired_api_version).map_err(|e| fail(e, &objects))
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
        assert_eq!(converted("u", &ok, 1, "g/v2").unwrap().len(), 1);
        assert!(converted("u", &ok, 1, "g/v1").is_err());
        assert!(converted("x", &ok, 1, "g/v2").is_err());
        assert!(converted("u", &ok, 2, "g/v2").is_err());
        let refused =
            answer(json!({"uid": "u", "result": {"status": "Failure", "message": "nope"}}));
        assert_eq!(converted("u", &refused, 1, "g/v2").unwrap_err(), "nope");
        let bare = answer(json!({"uid": "u", "result": {"status": "Failure"}}));
        assert_eq!(
            converted("u", &bare, 1, "g/v2").unwrap_err(),
            "response.result.status was 'Failure', not 'Success'"
        );
    }
}
