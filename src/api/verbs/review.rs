//! The access reviews, answered from the authorizer chain and never
//! stored: SelfSubjectAccessReview, SubjectAccessReview,
//! LocalSubjectAccessReview, SelfSubjectRulesReview (`kubectl auth can-i`,
//! `--list`) and SelfSubjectReview (`kubectl auth whoami`).

use std::sync::Arc;

use serde_json::{json, Map, Value};

use crate::api::authz::{Attributes, Decision, UserInfo};
use crate::api::error::ApiError;
use crate::api::registry::Resource;
use crate::api::validation::{go_quote, FieldCause};
use crate::api::{Api, WriteOptions};

const AUTHORIZATION: &str = "authorization.k8s.io";
const AUTHENTICATION: &str = "authentication.k8s.io";

impl Api {
    /// The answer when `r` is a review kind, else `None` (a normal create).
    pub(super) async fn review(
        &self,
        r: &'static Resource,
        namespace: Option<&str>,
        body: &Value,
        opts: &WriteOptions,
    ) -> Option<Result<Value, ApiError>> {
        let group = r.group;
        if group != AUTHORIZATION && group != AUTHENTICATION {
            return None;
        }
        // In-process callers are the system itself.
        let me = opts.user.clone().unwrap_or_default();
        let answer = match (group, r.plural) {
            (AUTHENTICATION, "selfsubjectreviews") => Ok(self_subject_review(&me)),
            (AUTHORIZATION, "selfsubjectaccessreviews") => {
                self.access_review(r, body, me, None).await
            }
            (AUTHORIZATION, "subjectaccessreviews") => match subject(r, body) {
                Ok(user) => self.access_review(r, body, Arc::new(user), None).await,
                Err(e) => Err(e),
            },
            (AUTHORIZATION, "localsubjectaccessreviews") => match subject(r, body) {
                Ok(user) => {
                    let ns = namespace.unwrap_or("");
                    self.access_review(r, body, Arc::new(user), Some(ns)).await
                }
                Err(e) => Err(e),
            },
            (AUTHORIZATION, "selfsubjectrulesreviews") => self.rules_review_of(body, &me),
            _ => return None,
        };
        Some(answer.map(|status| respond(r, body, namespace, status)))
    }

    async fn access_review(
        &self,
        r: &Resource,
        body: &Value,
        user: Arc<UserInfo>,
        local: Option<&str>,
    ) -> Result<Value, ApiError> {
        let spec = body.get("spec");
        let resource = spec
            .and_then(|s| s.get("resourceAttributes"))
            .filter(|v| !v.is_null());
        let non_resource = spec
            .and_then(|s| s.get("nonResourceAttributes"))
            .filter(|v| !v.is_null());
        let invalid = |field: &str, value: &str, msg: &str| {
            ApiError::invalid(
                r,
                "",
                vec![FieldCause {
                    reason: "FieldValueInvalid",
                    message: format!("Invalid value: {value}: {msg}"),
                    field: field.into(),
                }],
            )
        };
        let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let attrs =
            match (resource, non_resource) {
                (Some(ra), None) => {
                    let namespace = text(ra, "namespace");
                    if let Some(ns) = local {
                        if namespace != ns {
                            return Err(invalid(
                                "spec.resourceAttributes.namespace",
                                &go_quote(&namespace),
                                "must match metadata.namespace",
                            ));
                        }
                    }
                    Attributes {
                        user,
                        verb: text(ra, "verb"),
                        resource_request: true,
                        namespace,
                        api_group: text(ra, "group"),
                        api_version: text(ra, "version"),
                        resource: text(ra, "resource"),
                        subresource: text(ra, "subresource"),
                        name: text(ra, "name"),
                        path: String::new(),
                    }
                }
                (None, Some(nra)) if local.is_none() => Attributes {
                    user,
                    verb: text(nra, "verb"),
                    path: text(nra, "path"),
                    ..Attributes::default()
                },
                (None, Some(_)) => {
                    return Err(invalid(
                        "spec.nonResourceAttributes",
                        "\"\"",
                        "disallowed on this kind of request",
                    ))
                }
                _ => return Err(invalid(
                    "spec.resourceAttributes",
                    "\"null\"",
                    "exactly one of nonResourceAttributes or resourceAttributes must be specified",
                )),
            };
        let status = match self.authorize(&attrs).await {
            Decision::Allow => json!({"allowed": true}),
            Decision::NoOpinion(reason) if reason.is_empty() => json!({"allowed": false}),
            Decision::NoOpinion(reason) => json!({"allowed": false, "reason": reason}),
        };
        tracing::debug!(user = %attrs.user.name, verb = %attrs.verb, resource = %attrs.resource,
            allowed = status["allowed"].as_bool(), "access review");
        Ok(status)
    }

    fn rules_review_of(&self, body: &Value, me: &UserInfo) -> Result<Value, ApiError> {
        let namespace = body
            .pointer("/spec/namespace")
            .and_then(Value::as_str)
            .unwrap_or("");
        if namespace.is_empty() {
            return Err(ApiError::BadRequest("no namespace on request".into()));
        }
        let review = self.rules_review(me, namespace);
        let (urls, resources): (Vec<_>, Vec<_>) = review
            .rules
            .iter()
            .partition(|r| !r.non_resource_urls.is_empty());
        let resource_rules: Vec<Value> = resources
            .iter()
            .map(|r| {
                let mut v =
                    json!({"verbs": r.verbs, "apiGroups": r.api_groups, "resources": r.resources});
                if !r.resource_names.is_empty() {
                    v["resourceNames"] = json!(r.resource_names);
                }
                v
            })
            .collect();
        let non_resource_rules: Vec<Value> = urls
            .iter()
            .map(|r| json!({"verbs": r.verbs, "nonResourceURLs": r.non_resource_urls}))
            .collect();
        let mut status = json!({
            "resourceRules": resource_rules,
            "nonResourceRules": non_resource_rules,
            "incomplete": review.incomplete,
        });
        if !review.errors.is_empty() {
            status["evaluationError"] = json!(review.errors.join(", "));
        }
        Ok(status)
    }
}

/// The user a SubjectAccessReview asks about.
fn subject(r: &Resource, body: &Value) -> Result<UserInfo, ApiError> {
    let spec = body.get("spec").cloned().unwrap_or_default();
    let strings = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let user = UserInfo {
        name: spec
            .get("user")
            .and_then(Value::as_str)
            .unwrap_or("")
            .into(),
        uid: spec.get("uid").and_then(Value::as_str).unwrap_or("").into(),
        groups: strings(spec.get("groups")),
        extra: spec
            .get("extra")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), strings(Some(v))))
                    .collect()
            })
            .unwrap_or_default(),
    };
    if user.name.is_empty() && user.groups.is_empty() {
        return Err(ApiError::invalid(
            r,
            "",
            vec![FieldCause {
                reason: "FieldValueInvalid",
                message: "Invalid value: \"\": at least one of user or group must be specified"
                    .into(),
                field: "spec.user".into(),
            }],
        ));
    }
    Ok(user)
}

fn self_subject_review(me: &UserInfo) -> Value {
    let mut info = json!({"username": me.name, "groups": me.groups});
    if !me.uid.is_empty() {
        info["uid"] = json!(me.uid);
    }
    if !me.extra.is_empty() {
        info["extra"] = json!(me.extra);
    }
    json!({"userInfo": info})
}

/// The request echoed with its status, as upstream answers reviews.
fn respond(r: &Resource, body: &Value, namespace: Option<&str>, status: Value) -> Value {
    let mut out = Map::new();
    out.insert("kind".into(), r.kind.into());
    out.insert("apiVersion".into(), r.api_version().into());
    let mut meta = body
        .get("metadata")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    meta.insert("creationTimestamp".into(), Value::Null);
    if let (Some(ns), true) = (namespace, r.namespaced) {
        meta.insert("namespace".into(), ns.into());
    }
    out.insert("metadata".into(), Value::Object(meta));
    if let Some(spec) = body.get("spec") {
        out.insert("spec".into(), spec.clone());
    }
    out.insert("status".into(), status);
    Value::Object(out)
}
