//! Who may do what: the authorizer chain (Node, then RBAC, or AlwaysAllow)
//! over the request attributes the HTTPS server derives, the rule
//! resolution RBAC escalation checks and the access reviews share.
//! In-process callers (controllers, the server's own node agent) are the
//! system itself and are never asked.

mod defaults;
mod index;
mod node;
mod rbac;
mod rules;

pub(crate) use node::{identity as node_identity, PodRefs};
pub use rules::{aggregate as aggregate_rules, rules_to_string, uncovered, Rule};

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::api::Api;

/// An authenticated user, as upstream's `user.Info`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserInfo {
    pub name: String,
    pub uid: String,
    pub groups: Vec<String>,
    pub extra: BTreeMap<String, Vec<String>>,
}

/// What a request wants to do, as upstream's `authorizer.Attributes`.
#[derive(Debug, Clone, Default)]
pub struct Attributes {
    pub user: Arc<UserInfo>,
    /// get, list, watch, create, update, patch, delete, deletecollection,
    /// impersonate, bind, escalate, … (lower case).
    pub verb: String,
    /// A resource request (`/api/...`, `/apis/...`) rather than a
    /// non-resource path such as `/healthz`.
    pub resource_request: bool,
    pub namespace: String,
    pub api_group: String,
    pub api_version: String,
    pub resource: String,
    pub subresource: String,
    pub name: String,
    /// The request path, for non-resource requests.
    pub path: String,
}

/// An authorizer's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// Neither allowed nor refused; the next authorizer is asked.
    NoOpinion(String),
}

/// One authorizer of `--authorization-mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    AlwaysAllow,
    Node,
    Rbac,
}

impl Mode {
    /// Parses one `--authorization-mode` entry (upstream's spelling).
    pub fn parse(text: &str) -> Result<Mode, String> {
        match text.trim() {
            "AlwaysAllow" => Ok(Mode::AlwaysAllow),
            "Node" => Ok(Mode::Node),
            "RBAC" => Ok(Mode::Rbac),
            other => Err(format!(
                "unknown authorization mode {other:?} (expected Node, RBAC or AlwaysAllow)"
            )),
        }
    }
}

/// Authorizer state kept by `Api`.
pub(crate) struct State {
    modes: std::sync::RwLock<Vec<Mode>>,
    /// RBAC's per-subject index, rebuilt when an RBAC cache changes.
    rbac: index::Holder,
    /// The Node authorizer's pods-by-node graph, built on first use.
    node: node::Graph,
}

impl Default for State {
    fn default() -> Self {
        State {
            modes: std::sync::RwLock::new(vec![Mode::Node, Mode::Rbac]),
            rbac: index::Holder::default(),
            node: node::Graph::default(),
        }
    }
}

impl Api {
    /// The authorizer chain in order.
    fn authorization_modes(&self) -> Vec<Mode> {
        self.authz
            .modes
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Sets the authorizer chain (`--authorization-mode`).
    pub fn set_authorization_modes(&self, modes: Vec<Mode>) {
        *self.authz.modes.write().unwrap_or_else(|p| p.into_inner()) = modes;
    }

    /// The RBAC rules `user` holds in `namespace` ("" = only the
    /// cluster-wide ones): for escalation checks and rules reviews.
    pub fn rbac_rules_for(&self, user: &UserInfo, namespace: &str) -> Vec<Rule> {
        rbac::rules_for(self, user, namespace)
    }

    /// What `user` may do in `namespace` as the authorizer chain can tell
    /// (upstream's `RulesFor` union behind SelfSubjectRulesReview).
    pub fn rules_review(&self, user: &UserInfo, namespace: &str) -> RulesReview {
        let modes = self.authorization_modes();
        let mut review = RulesReview::default();
        for mode in modes {
            match mode {
                Mode::AlwaysAllow => review.rules.extend([
                    Rule {
                        verbs: vec!["*".into()],
                        api_groups: vec!["*".into()],
                        resources: vec!["*".into()],
                        ..Rule::default()
                    },
                    Rule {
                        verbs: vec!["*".into()],
                        non_resource_urls: vec!["*".into()],
                        ..Rule::default()
                    },
                ]),
                Mode::Node if node::identity(user).is_some() => {
                    review.incomplete = true;
                    review
                        .errors
                        .push("node authorizer does not support user rule resolution".into());
                }
                Mode::Node => {}
                Mode::Rbac => review.rules.extend(rbac::rules_for(self, user, namespace)),
            }
        }
        review
    }

    /// Asks each authorizer in turn; the first Allow decides, and
    /// when all have no opinion the request is refused.
    pub async fn authorize(&self, attrs: &Attributes) -> Decision {
        let modes = self.authorization_modes();
        let mut reasons = Vec::new();
        for mode in modes {
            let decision = match mode {
                Mode::AlwaysAllow => Decision::Allow,
                Mode::Node => node::decide(self, attrs).await,
                Mode::Rbac => rbac::decide(self, attrs).await,
            };
            match decision {
                Decision::NoOpinion(reason) => {
                    if !reason.is_empty() {
                        reasons.push(reason);
                    }
                }
                decided => return decided,
            }
        }
        Decision::NoOpinion(reasons.join(", "))
    }
}

/// The answer of [`Api::rules_review`].
#[derive(Debug, Default)]
pub struct RulesReview {
    pub rules: Vec<Rule>,
    /// Some authorizer could not list its rules.
    pub incomplete: bool,
    pub errors: Vec<String>,
}

/// Upstream's 403 message: `pods "web" is forbidden: User "alice" cannot
/// delete resource "pods" in API group "" in the namespace "a"`, with the
/// authorizer's reason appended after `: ` when there is one.
pub fn forbidden_message(attrs: &Attributes, reason: &str) -> String {
    let user = &attrs.user.name;
    let mut msg = if !attrs.resource_request {
        format!(
            "forbidden: User \"{user}\" cannot {} path \"{}\"",
            attrs.verb, attrs.path
        )
    } else {
        let mut resource = attrs.resource.clone();
        if !attrs.subresource.is_empty() {
            resource = format!("{resource}/{}", attrs.subresource);
        }
        // The subject is the group-qualified resource, without subresource.
        let qualified = match attrs.api_group.as_str() {
            "" => attrs.resource.clone(),
            g => format!("{}.{g}", attrs.resource),
        };
        let subject = if attrs.name.is_empty() {
            qualified
        } else {
            format!("{qualified} \"{}\"", attrs.name)
        };
        let mut m = format!(
            "{subject} is forbidden: User \"{user}\" cannot {} resource \"{resource}\" in API group \"{}\"",
            attrs.verb, attrs.api_group
        );
        if attrs.namespace.is_empty() {
            m.push_str(" at the cluster scope");
        } else {
            m.push_str(&format!(" in the namespace \"{}\"", attrs.namespace));
        }
        m
    };
    if !reason.is_empty() {
        msg.push_str(": ");
        msg.push_str(reason);
    }
    msg
}
