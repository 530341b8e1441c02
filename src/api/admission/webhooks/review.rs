//! `admission.k8s.io/v1 AdmissionReview`: the request a webhook gets and
//! what its answer means (upstream's `VerifyAdmissionResponse` and
//! `ToStatusErr`).

use base64::Engine;
use serde_json::{json, Value};

use crate::api::authz::UserInfo;
use crate::api::registry::Resource;
use crate::api::ApiError;

/// One request as sent to one webhook.
pub(super) struct Call<'a> {
    pub uid: String,
    /// The resource the webhook registered for (maybe an equivalent version).
    pub resource: &'static Resource,
    /// The resource the client asked for.
    pub request_resource: &'static Resource,
    pub subresource: &'a str,
    pub name: &'a str,
    pub namespace: &'a str,
    pub operation: &'static str,
    pub user: Option<&'a UserInfo>,
    pub object: Option<&'a Value>,
    pub old: Option<&'a Value>,
    pub dry_run: bool,
    /// Create/Update/DeleteOptions as sent; null for CONNECT.
    pub options: &'a Value,
}

fn gvk(r: &Resource, sub: &str) -> Value {
    match r.subresource(sub).filter(|s| !s.kind.is_empty()) {
        Some(s) => json!({"group": s.group, "version": s.version, "kind": s.kind}),
        None => json!({"group": r.group, "version": r.version, "kind": r.kind}),
    }
}

fn gvr(r: &Resource) -> Value {
    json!({"group": r.group, "version": r.version, "resource": r.plural})
}

fn user_info(user: Option<&UserInfo>) -> Value {
    match user {
        Some(u) => {
            let mut v = json!({"username": u.name, "groups": u.groups});
            if !u.uid.is_empty() {
                v["uid"] = u.uid.clone().into();
            }
            if !u.extra.is_empty() {
                v["extra"] = json!(u.extra);
            }
            v
        }
        // In-process callers are the server's own controllers.
        None => json!({"username": "system:apiserver", "groups": ["system:authenticated"]}),
    }
}

/// The AdmissionReview body.
pub(super) fn request(c: &Call<'_>) -> Value {
    let mut req = json!({
        "uid": c.uid,
        "kind": gvk(c.resource, c.subresource),
        "resource": gvr(c.resource),
        "requestKind": gvk(c.request_resource, c.subresource),
        "requestResource": gvr(c.request_resource),
        "name": c.name,
        "operation": c.operation,
        "userInfo": user_info(c.user),
        "object": c.object.cloned().unwrap_or(Value::Null),
        "oldObject": c.old.cloned().unwrap_or(Value::Null),
        "dryRun": c.dry_run,
        "options": c.options,
    });
    if !c.subresource.is_empty() {
        req["subResource"] = c.subresource.into();
        req["requestSubResource"] = c.subresource.into();
    }
    if !c.namespace.is_empty() {
        req["namespace"] = c.namespace.into();
    }
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": req})
}

/// What a webhook decided.
#[derive(Debug)]
pub(super) enum Verdict {
    Allowed {
        patch: Option<json_patch::Patch>,
        warnings: Vec<String>,
    },
    Denied {
        error: ApiError,
        warnings: Vec<String>,
    },
}

fn warnings(resp: &Value) -> Vec<String> {
    resp.get("warnings")
        .and_then(Value::as_array)
        .map(|w| {
            w.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// Upstream `ToStatusErr`: a refusal keeps the webhook's code (at least
/// 400) and gets the webhook's name in front of its message.
fn denial(name: &str, result: Option<&Value>) -> ApiError {
    let text = |k: &str| {
        result
            .and_then(|r| r.get(k))
            .and_then(Value::as_str)
            .unwrap_or("")
    };
    let denied = format!("admission webhook \"{name}\" denied the request");
    let message = if !text("message").is_empty() {
        format!("{denied}: {}", text("message"))
    } else if !text("reason").is_empty() {
        format!("{denied}: {}", text("reason"))
    } else {
        format!("{denied} without explanation")
    };
    let code = result
        .and_then(|r| r.get("code"))
        .and_then(Value::as_u64)
        .unwrap_or(400);
    match code {
        401 => ApiError::Unauthorized,
        403 => ApiError::Forbidden(message),
        409 | 422 => ApiError::Unprocessable(message),
        429 => ApiError::TooManyRequests {
            message,
            causes: Vec::new(),
        },
        500..=599 => ApiError::Internal(message),
        _ => ApiError::BadRequest(message),
    }
}

/// Checks an answer as upstream's `VerifyAdmissionResponse`; `Err` is the
/// reason the answer is invalid.
pub(super) fn verdict(
    name: &str,
    uid: &str,
    answer: &Value,
    mutating: bool,
) -> Result<Verdict, String> {
    let api_version = answer
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    let kind = answer.get("kind").and_then(Value::as_str).unwrap_or("");
    if api_version != "admission.k8s.io/v1" || kind != "AdmissionReview" {
        return Err(format!(
            "expected webhook response of admission.k8s.io/v1, Kind=AdmissionReview, got {api_version}, Kind={kind}"
        ));
    }
    let Some(resp) = answer.get("response").filter(|r| r.is_object()) else {
        return Err("webhook response was absent".into());
    };
    let got = resp.get("uid").and_then(Value::as_str).unwrap_or("");
    if got != uid {
        return Err(format!("expected response.uid={uid:?}, got {got:?}"));
    }
    let warnings = warnings(resp);
    if !resp
        .get("allowed")
        .and_then(Value::as_bool)
        .unwrap_or(false)
    {
        return Ok(Verdict::Denied {
            error: denial(name, resp.get("status")),
            warnings,
        });
    }
    let patch = resp
        .get("patch")
        .and_then(Value::as_str)
        .filter(|p| !p.is_empty());
    let patch_type = resp.get("patchType").and_then(Value::as_str).unwrap_or("");
    let patch = match (patch, patch_type) {
        (None, _) => None,
        (Some(_), _) if !mutating => {
            return Err("validating webhook may not return response.patch".into())
        }
        (Some(_), "") => {
            return Err("webhook returned response.patch but not response.patchType".into())
        }
        (Some(p), "JSONPatch") => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(p)
                .map_err(|e| format!("illegal base64 data in response.patch: {e}"))?;
            Some(serde_json::from_slice(&bytes).map_err(|e| format!("invalid JSON patch: {e}"))?)
        }
        (Some(_), other) => {
            return Err(format!(
                "webhook returned invalid response.patchType of {other:?}"
            ))
        }
    };
    Ok(Verdict::Allowed { patch, warnings })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(resp: Value) -> Value {
        json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": resp})
    }

    #[test]
    fn denial_keeps_code_and_names_the_webhook() {
        let a =
            answer(json!({"uid": "u", "allowed": false, "status": {"code": 403, "message": "no"}}));
        match verdict("w.example.com", "u", &a, false) {
            Ok(Verdict::Denied { error, .. }) => {
                assert_eq!(error.code(), 403);
                assert_eq!(
                    error.to_string(),
                    "admission webhook \"w.example.com\" denied the request: no"
                );
            }
            other => panic!("{other:?}"),
        }
        let a = answer(json!({"uid": "u", "allowed": false}));
        match verdict("w", "u", &a, false) {
            Ok(Verdict::Denied { error, .. }) => {
                assert_eq!(error.code(), 400);
                assert_eq!(
                    error.to_string(),
                    "admission webhook \"w\" denied the request without explanation"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn invalid_answers_are_refused() {
        let wrong_uid = answer(json!({"uid": "x", "allowed": true}));
        assert_eq!(
            verdict("w", "u", &wrong_uid, true).unwrap_err(),
            "expected response.uid=\"u\", got \"x\""
        );
        let no_type = answer(json!({"uid": "u", "allowed": true, "patch": "W10="}));
        assert!(verdict("w", "u", &no_type, true).is_err());
        let patch =
            answer(json!({"uid": "u", "allowed": true, "patch": "W10=", "patchType": "JSONPatch"}));
        assert!(verdict("w", "u", &patch, false).is_err());
        assert!(matches!(
            verdict("w", "u", &patch, true),
            Ok(Verdict::Allowed { patch: Some(_), .. })
        ));
        assert!(verdict("w", "u", &json!({"kind": "AdmissionReview"}), true).is_err());
    }
}
