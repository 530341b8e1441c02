//! rbac.authorization.k8s.io Role, ClusterRole, RoleBinding and
//! ClusterRoleBinding: rule and binding checks, subject defaults and the
//! immutable roleRef.

use serde_json::{json, Value};

use super::json::{child, default_str, each_mut, list, root, same, text};
use super::rules::idx;
use crate::api::validation::{self as v, FieldCause};

const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

/// Shared by Role and ClusterRole; `namespaced` forbids non-resource URLs.
fn policy_rules(obj: &Value, namespaced: bool) -> Vec<FieldCause> {
    let mut out = Vec::new();
    for (i, rule) in list(obj, "rules").iter().enumerate() {
        let at = idx("rules", i);
        if list(rule, "verbs").is_empty() {
            out.push(v::required(
                &format!("{at}.verbs"),
                "verbs must contain at least one value",
            ));
        }
        let urls = !list(rule, "nonResourceURLs").is_empty();
        let resources = !list(rule, "resources").is_empty();
        if urls && namespaced {
            out.push(v::invalid(
                &format!("{at}.nonResourceURLs"),
                rule.get("nonResourceURLs").unwrap_or(&Value::Null),
                "namespaced rules cannot apply to non-resource URLs",
            ));
        } else if urls && resources {
            out.push(v::invalid(
                &format!("{at}.nonResourceURLs"),
                rule.get("nonResourceURLs").unwrap_or(&Value::Null),
                "rules cannot apply to both regular resources and non-resource URLs",
            ));
        } else if !urls {
            if list(rule, "apiGroups").is_empty() {
                out.push(v::required(
                    &format!("{at}.apiGroups"),
                    "resource rules must supply at least one api group",
                ));
            }
            if !resources {
                out.push(v::required(
                    &format!("{at}.resources"),
                    "resource rules must supply at least one resource",
                ));
            }
        }
    }
    out
}

pub(super) fn role_validate(obj: &Value) -> Vec<FieldCause> {
    policy_rules(obj, true)
}

pub(super) fn clusterrole_validate(obj: &Value) -> Vec<FieldCause> {
    // Aggregated cluster roles get their rules from the controller.
    if obj.get("aggregationRule").is_some_and(|a| !a.is_null()) {
        return Vec::new();
    }
    policy_rules(obj, false)
}

/// SetDefaults_(Cluster)RoleBinding and SetDefaults_Subject.
pub(super) fn binding_defaults(obj: &mut Value) {
    let Some(o) = root(obj) else { return };
    if let Some(r) = child(o, "roleRef") {
        default_str(r, "apiGroup", RBAC_GROUP);
    }
    for s in each_mut(o, "subjects") {
        let group = match s.get("kind").and_then(Value::as_str) {
            Some("ServiceAccount") => "",
            Some("User" | "Group") => RBAC_GROUP,
            _ => continue,
        };
        if s.get("apiGroup")
            .is_none_or(|g| g.is_null() || g.as_str() == Some(""))
        {
            s.insert("apiGroup".into(), json!(group));
        }
    }
}

fn binding_rules(obj: &Value, cluster: bool) -> Vec<FieldCause> {
    let mut out = Vec::new();
    let r = obj.get("roleRef").unwrap_or(&Value::Null);
    if text(r, "apiGroup") != RBAC_GROUP {
        out.push(v::not_supported(
            "roleRef.apiGroup",
            r.get("apiGroup").unwrap_or(&json!("")),
            &[RBAC_GROUP],
        ));
    }
    let kinds: &[&str] = if cluster {
        &["ClusterRole"]
    } else {
        &["Role", "ClusterRole"]
    };
    if !kinds.contains(&text(r, "kind")) {
        out.push(v::not_supported(
            "roleRef.kind",
            r.get("kind").unwrap_or(&json!("")),
            kinds,
        ));
    }
    if text(r, "name").is_empty() {
        out.push(v::required("roleRef.name", ""));
    }
    for (i, s) in list(obj, "subjects").iter().enumerate() {
        let at = idx("subjects", i);
        if text(s, "name").is_empty() {
            out.push(v::required(&format!("{at}.name"), ""));
        }
        match text(s, "kind") {
            "ServiceAccount" => {
                if cluster && text(s, "namespace").is_empty() {
                    out.push(v::required(&format!("{at}.namespace"), ""));
                }
            }
            "User" | "Group" => {}
            _ => out.push(v::not_supported(
                &format!("{at}.kind"),
                s.get("kind").unwrap_or(&json!("")),
                &["ServiceAccount", "User", "Group"],
            )),
        }
    }
    out
}

pub(super) fn rolebinding_validate(obj: &Value) -> Vec<FieldCause> {
    binding_rules(obj, false)
}

pub(super) fn clusterrolebinding_validate(obj: &Value) -> Vec<FieldCause> {
    binding_rules(obj, true)
}

pub(super) fn binding_validate_update(new: &Value, old: &Value) -> Vec<FieldCause> {
    if same(new.get("roleRef"), old.get("roleRef")) {
        Vec::new()
    } else {
        vec![v::invalid(
            "roleRef",
            new.get("roleRef").unwrap_or(&Value::Null),
            "cannot change roleRef",
        )]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rbac() {
        assert!(role_validate(
            &json!({"rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]})
        )
        .is_empty());
        let fields: Vec<String> = role_validate(&json!({"rules": [{"resources": ["pods"]}, {"nonResourceURLs": ["/x"], "verbs": ["get"]}]}))
            .into_iter()
            .map(|c| c.field)
            .collect();
        assert_eq!(
            fields,
            [
                "rules[0].verbs",
                "rules[0].apiGroups",
                "rules[1].nonResourceURLs"
            ]
        );
        assert!(clusterrole_validate(
            &json!({"rules": [{"nonResourceURLs": ["/healthz"], "verbs": ["get"]}]})
        )
        .is_empty());
        let mut b = json!({"roleRef": {"kind": "ClusterRole", "name": "view"},
            "subjects": [{"kind": "User", "name": "ann"}, {"kind": "ServiceAccount", "name": "sa"}]});
        binding_defaults(&mut b);
        assert_eq!(b["roleRef"]["apiGroup"], RBAC_GROUP);
        assert_eq!(b["subjects"][0]["apiGroup"], RBAC_GROUP);
        assert_eq!(b["subjects"][1]["apiGroup"], "");
        assert!(rolebinding_validate(&b).is_empty());
        assert_eq!(
            clusterrolebinding_validate(&b)[0].field,
            "subjects[1].namespace"
        );
        let mut other = b.clone();
        other["roleRef"]["name"] = json!("edit");
        assert!(binding_validate_update(&other, &b)[0]
            .message
            .ends_with("cannot change roleRef"));
    }

    #[test]
    fn junk_does_not_panic() {
        for junk in [
            json!(null),
            json!({"rules": [1], "subjects": 2, "roleRef": 3}),
            json!({"subjects": [1, {"kind": 2}]}),
        ] {
            let mut j = junk.clone();
            binding_defaults(&mut j);
            for val in [
                role_validate,
                clusterrole_validate,
                rolebinding_validate,
                clusterrolebinding_validate,
            ] {
                val(&j);
            }
            binding_validate_update(&j, &junk);
        }
    }
}
