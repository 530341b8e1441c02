//! RBAC escalation prevention: a Role or ClusterRole may only be written
//! by someone who holds every permission in it (or may `escalate`), and a
//! binding only by someone who holds the role's permissions (or may `bind`).
//! Upstream does this in the RBAC registry (`ConfirmNoEscalation`).

use std::sync::Arc;

use serde_json::Value;

use super::Request;
use crate::api::authz::{self, Attributes, Decision, Rule, UserInfo};
use crate::api::validation::go_quote;
use crate::api::{Api, ApiError};

const GROUP: &str = "rbac.authorization.k8s.io";
/// Members may do anything (upstream's `EscalationAllowed`).
const PRIVILEGED_GROUP: &str = "system:masters";

pub(super) async fn validate(
    api: &Api,
    req: &Request<'_>,
    obj: &Value,
    _old: Option<&Value>,
) -> Result<(), ApiError> {
    let Some(user) = req.user else {
        return Ok(());
    };
    if req.resource.group != GROUP
        || req.subresource.is_some()
        || user.groups.iter().any(|g| g == PRIVILEGED_GROUP)
    {
        return Ok(());
    }
    let namespace = req.namespace.unwrap_or("");
    let plural = req.resource.plural;
    match plural {
        "roles" | "clusterroles" => {
            if allowed(api, user, "escalate", plural, namespace, req.name).await {
                return Ok(());
            }
            confirm_no_escalation(api, user, namespace, &Rule::all_of(obj))
                .map_err(|msg| forbidden(plural, req.name, &msg))?;
            let aggregates = obj
                .get("aggregationRule")
                .is_some_and(|a| !a.is_null() && a != &serde_json::json!({}));
            if plural == "clusterroles" && aggregates {
                // An aggregation rule can gather anything: it takes everything.
                let full = Rule {
                    verbs: vec!["*".into()],
                    api_groups: vec!["*".into()],
                    resources: vec!["*".into()],
                    ..Rule::default()
                };
                let urls = Rule {
                    verbs: vec!["*".into()],
                    non_resource_urls: vec!["*".into()],
                    ..Rule::default()
                };
                confirm_no_escalation(api, user, namespace, &[full, urls]).map_err(|_| {
                    forbidden(
                        plural,
                        req.name,
                        "must have cluster-admin privileges to use the aggregationRule",
                    )
                })?;
            }
            Ok(())
        }
        "rolebindings" | "clusterrolebindings" => {
            let role_ref = obj.get("roleRef");
            let text = |k| {
                role_ref
                    .and_then(|r| r.get(k))
                    .and_then(Value::as_str)
                    .unwrap_or("")
            };
            let (kind, role_name) = (text("kind"), text("name"));
            let role_plural = if kind == "Role" {
                "roles"
            } else {
                "clusterroles"
            };
            if allowed(api, user, "bind", role_plural, namespace, role_name).await {
                return Ok(());
            }
            let rules = role_rules(api, kind, namespace, role_name).await?;
            confirm_no_escalation(api, user, namespace, &rules)
                .map_err(|msg| forbidden(plural, req.name, &msg))
        }
        _ => Ok(()),
    }
}

/// Whether the authorizer chain lets `user` `verb` the role `name`
/// (upstream `BindingAuthorized`, `RoleEscalationAuthorized`).
async fn allowed(
    api: &Api,
    user: &UserInfo,
    verb: &str,
    plural: &str,
    namespace: &str,
    name: &str,
) -> bool {
    let attrs = Attributes {
        user: Arc::new(user.clone()),
        verb: verb.into(),
        resource_request: true,
        // The request's namespace, also for a ClusterRole bound in a
        // RoleBinding: `bind` may be delegated per namespace.
        namespace: namespace.into(),
        api_group: GROUP.into(),
        api_version: "v1".into(),
        resource: plural.into(),
        name: name.into(),
        ..Attributes::default()
    };
    api.authorize(&attrs).await == Decision::Allow
}

/// The rules of the role a binding refers to (upstream
/// `GetRoleReferenceRules`: a missing role is NotFound).
async fn role_rules(
    api: &Api,
    kind: &str,
    namespace: &str,
    name: &str,
) -> Result<Vec<Rule>, ApiError> {
    let (plural, ns) = match kind {
        "Role" => ("roles", Some(namespace)),
        "ClusterRole" => ("clusterroles", None),
        other => {
            return Err(ApiError::BadRequest(format!(
                "unsupported role reference kind: {}",
                go_quote(other)
            )))
        }
    };
    let r = api
        .registry()
        .find(GROUP, "v1", plural)
        .ok_or_else(|| ApiError::internal(format!("{plural} are not registered")))?;
    let role = api.get(r, ns, name).await?;
    Ok(Rule::all_of(&role))
}

/// Upstream `ConfirmNoEscalation`: the message when `user` lacks some of
/// `rules` in `namespace`.
fn confirm_no_escalation(
    api: &Api,
    user: &UserInfo,
    namespace: &str,
    rules: &[Rule],
) -> Result<(), String> {
    let owner = api.rbac_rules_for(user, namespace);
    let missing = authz::uncovered(&owner, rules);
    if missing.is_empty() {
        return Ok(());
    }
    let groups: Vec<String> = user.groups.iter().map(|g| go_quote(g)).collect();
    Err(format!(
        "user {} (groups=[{}]) is attempting to grant RBAC permissions not currently held:\n{}",
        go_quote(&user.name),
        groups.join(" "),
        authz::rules_to_string(&missing)
    ))
}

fn forbidden(plural: &str, name: &str, msg: &str) -> ApiError {
    ApiError::Forbidden(format!(
        "{plural}.{GROUP} {} is forbidden: {msg}",
        go_quote(name)
    ))
}
