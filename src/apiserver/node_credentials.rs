//! `POST /nanokube/v1/node-credentials`: a joining node's certificates,
//! signed from the node's own requests — the equivalent of upstream's CSR
//! flow with auto-approval that k3s serves as `/v1-k3s/client-kubelet.crt`.
//!
//! Callers: the join tokens (user `nanokube:agent`), bootstrap tokens
//! (group `system:bootstrappers`), and a kubelet renewing its own
//! certificates (`system:node:<name>` asking for `<name>`). Anyone else
//! gets 403, on top of the authorization every request passes.
//!
//! A node's name is protected as k3s's node password does: the first join
//! stores a salted hash of the node's random password in the Secret
//! `kube-system/<node>.node-password.nanokube`; a later request with another
//! password is refused while the Node exists. Once the Node is deleted (or
//! the Secret), a machine may join under that name again and its password
//! replaces the stored one — so no controller has to follow Node deletions.

use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use http::{Method, Response};
use serde_json::{json, Value};

use super::codec::{self, Body, Output};
use crate::agent::credentials::{wire, ClusterInfo};
use crate::api::authz::UserInfo;
use crate::api::{Api, ApiError};
use crate::client::{Client, ClientError, Local, ResourceId};
use crate::pki::{self, NodeCsrs, Pki, NODES_GROUP, NODE_USER_PREFIX};

/// The join tokens' user (`authn/join.rs`).
const AGENT_USER: &str = "nanokube:agent";
/// Bootstrap tokens' group (`authn/bootstrap.rs`).
const BOOTSTRAPPERS: &str = "system:bootstrappers";
const NAMESPACE: &str = "kube-system";
const SECRET_SUFFIX: &str = ".node-password.nanokube";
const SECRET_TYPE: &str = "nanokube.io/node-password";
/// When the stored password was last replaced by a new machine's (the
/// join grace counts from it, as from the Secret's creation).
const JOINED_AT: &str = "nanokube.io/joined-at";
/// A stored password this young belongs to a join still registering its
/// Node: a second machine cannot slip in before the Node exists.
const JOIN_GRACE: Duration = Duration::from_secs(60);
const MAX_PASSWORD: usize = 512;
const MAX_ADDRESSES: usize = 64;
const SALT_BYTES: usize = 16;

/// What the server needs to issue node credentials.
pub struct NodeIssuer {
    pub pki: Pki,
    pub cluster: ClusterInfo,
    /// Nodes this server runs itself (its own kubelet has no password to
    /// show): no machine may join under these names.
    pub reserved: Vec<String>,
}

/// Answers one node-credentials request of `user`.
pub(super) async fn handle(
    api: &Arc<Api>,
    issuer: Option<&NodeIssuer>,
    method: &Method,
    user: &UserInfo,
    body: &[u8],
) -> Result<Response<Body>, ApiError> {
    let issuer = issuer.ok_or(ApiError::NoRoute)?;
    if method != Method::POST {
        return Err(ApiError::MethodNotAllowed);
    }
    let ask: wire::Ask = serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("invalid node credentials request: {e}")))?;
    check_request(&ask)?;
    may_obtain(user, &ask.node_name)?;
    if issuer.reserved.contains(&ask.node_name) {
        return Err(ApiError::Forbidden(format!(
            "node {} is the server's own node: a second machine cannot join under an existing node's name",
            ask.node_name
        )));
    }
    let csrs = NodeCsrs {
        kubelet_client: &ask.kubelet_client_csr,
        kubelet_serving: &ask.kubelet_serving_csr,
        proxy_client: &ask.proxy_client_csr,
    };
    let signed = issuer
        .pki
        .sign_node(&ask.node_name, &ask.addresses, &csrs)
        .map_err(|e| match e {
            pki::Error::Csr { .. } => ApiError::BadRequest(e.to_string()),
            other => ApiError::internal(other),
        })?;
    // Only a request good in every other way may claim a name.
    let client = Local::new(api.clone());
    check_password(&client, &ask.node_name, &ask.node_password).await?;
    tracing::info!(node = %ask.node_name, user = %user.name, "issued node credentials");
    let answer = wire::Answer {
        kubelet_client_cert: signed.kubelet_client,
        kubelet_serving_cert: signed.kubelet_serving,
        proxy_client_cert: signed.proxy_client,
        server_ca: signed.server_ca,
        client_ca: signed.client_ca,
        cluster: issuer.cluster.clone(),
    };
    let value = serde_json::to_value(answer).map_err(ApiError::internal)?;
    Ok(codec::respond(200, &value, Output::Json))
}

/// The request's own rules: a valid node name, a password, few addresses.
fn check_request(ask: &wire::Ask) -> Result<(), ApiError> {
    let problems = crate::api::validation::is_dns1123_subdomain(&ask.node_name);
    if let Some(p) = problems.first() {
        return Err(ApiError::BadRequest(format!(
            "invalid node name {:?}: {p}",
            ask.node_name
        )));
    }
    // The Secret's name adds a suffix to the node's.
    if ask.node_name.len() + SECRET_SUFFIX.len() > 253 {
        return Err(ApiError::BadRequest(format!(
            "invalid node name {:?}: too long",
            ask.node_name
        )));
    }
    if ask.node_password.is_empty() || ask.node_password.len() > MAX_PASSWORD {
        return Err(ApiError::BadRequest(format!(
            "the node password must hold 1 to {MAX_PASSWORD} bytes"
        )));
    }
    if ask.addresses.len() > MAX_ADDRESSES {
        return Err(ApiError::BadRequest(format!(
            "at most {MAX_ADDRESSES} addresses may be asked for"
        )));
    }
    Ok(())
}

/// Join and bootstrap tokens may obtain any node's credentials (the node
/// password guards names); a node only its own.
fn may_obtain(user: &UserInfo, node: &str) -> Result<(), ApiError> {
    let in_group = |g: &str| user.groups.iter().any(|x| x == g);
    let own = in_group(NODES_GROUP) && user.name.strip_prefix(NODE_USER_PREFIX) == Some(node);
    if user.name == AGENT_USER || in_group(BOOTSTRAPPERS) || own {
        return Ok(());
    }
    Err(ApiError::Forbidden(format!(
        "User \"{}\" cannot obtain the credentials of node \"{node}\": only join tokens, bootstrap tokens and that node itself may",
        user.name
    )))
}

fn mismatch(node: &str) -> ApiError {
    ApiError::Forbidden(format!(
        "node {node} is already joined with another password: a second machine cannot join under an existing node's name; delete the Node or the Secret to re-join"
    ))
}

fn internal(e: ClientError) -> ApiError {
    ApiError::internal(e)
}

/// Accepts `password` for `node`: stored on first join, compared after,
/// replaced once the Node is gone.
async fn check_password(client: &Local, node: &str, password: &str) -> Result<(), ApiError> {
    let secrets = ResourceId::new("", "v1", "secrets");
    let name = format!("{node}{SECRET_SUFFIX}");
    // Two joins racing on one name: the loser reads the winner's Secret.
    for _ in 0..3 {
        let secret = match client.get(&secrets, Some(NAMESPACE), &name).await {
            Ok(s) => s,
            Err(e) if e.is_not_found() => {
                let obj = json!({
                    "apiVersion": "v1", "kind": "Secret", "type": SECRET_TYPE,
                    "metadata": {"name": name, "namespace": NAMESPACE,
                                 "labels": {"nanokube.io/node": node}},
                    "data": {"hash": STANDARD.encode(hash(password)?)},
                });
                match client.create(&secrets, Some(NAMESPACE), obj).await {
                    Ok(_) => {
                        tracing::info!(node, "stored the node password of a new node");
                        return Ok(());
                    }
                    Err(e) if e.is_already_exists() => continue,
                    Err(e) => return Err(internal(e)),
                }
            }
            Err(e) => return Err(internal(e)),
        };
        let stored = secret
            .pointer("/data/hash")
            .and_then(Value::as_str)
            .and_then(|h| STANDARD.decode(h).ok())
            .and_then(|h| String::from_utf8(h).ok())
            .unwrap_or_default();
        if verify(&stored, password) {
            return Ok(());
        }
        if node_exists(client, node).await? || young(&secret) {
            tracing::info!(node, secret = %name, "refused a node password that does not match");
            return Err(mismatch(node));
        }
        let mut updated = (*secret).clone();
        updated["data"] = json!({"hash": STANDARD.encode(hash(password)?)});
        updated["metadata"]["annotations"][JOINED_AT] = json!(jiff::Timestamp::now().to_string());
        match client
            .update(&secrets, Some(NAMESPACE), &name, updated, None)
            .await
        {
            Ok(_) => {
                tracing::info!(node, "a new machine joins under the name of a deleted node");
                return Ok(());
            }
            Err(e) if e.is_conflict() || e.is_not_found() => continue,
            Err(e) => return Err(internal(e)),
        }
    }
    Err(ApiError::internal(format!(
        "the node password of {node} kept changing; try again"
    )))
}

async fn node_exists(client: &Local, node: &str) -> Result<bool, ApiError> {
    let nodes = ResourceId::new("", "v1", "nodes");
    match client.get(&nodes, None, node).await {
        Ok(_) => Ok(true),
        Err(e) if e.is_not_found() => Ok(false),
        Err(e) => Err(internal(e)),
    }
}

/// Whether the Secret got its password within [`JOIN_GRACE`].
fn young(secret: &Value) -> bool {
    let meta = &secret["metadata"];
    let created = meta["annotations"][JOINED_AT]
        .as_str()
        .or_else(|| meta["creationTimestamp"].as_str())
        .and_then(|t| t.parse::<jiff::Timestamp>().ok());
    match created {
        Some(t) => jiff::Timestamp::now().duration_since(t).unsigned_abs() < JOIN_GRACE,
        // Unreadable: the safe answer keeps the name protected.
        None => true,
    }
}

fn digest(salt: &[u8], password: &str) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(salt);
    ctx.update(password.as_bytes());
    hex::encode(ctx.finish())
}

/// `sha256:<salt>:<digest>` (hex). The password is 256 random bits made by
/// the agent, so a salted hash suffices: there is nothing to guess.
fn hash(password: &str) -> Result<String, ApiError> {
    let mut salt = [0u8; SALT_BYTES];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut salt)
        .map_err(|_| ApiError::internal("no random bytes for the node password salt"))?;
    Ok(format!(
        "sha256:{}:{}",
        hex::encode(salt),
        digest(&salt, password)
    ))
}

fn verify(stored: &str, password: &str) -> bool {
    let mut parts = stored.splitn(3, ':');
    let (Some("sha256"), Some(salt), Some(expected)) = (parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let Ok(salt) = hex::decode(salt) else {
        return false;
    };
    pki::secrets_equal(&digest(&salt, password), expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str, groups: &[&str]) -> UserInfo {
        UserInfo {
            name: name.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn passwords_hash_with_a_fresh_salt_and_verify() {
        let a = hash("pw").unwrap();
        let b = hash("pw").unwrap();
        assert_ne!(a, b, "each hash has its own salt");
        assert!(verify(&a, "pw") && verify(&b, "pw"));
        assert!(!verify(&a, "pw2"));
        assert!(!verify("", "pw"));
        assert!(!verify("md5:00:00", "pw"));
        assert!(!verify("sha256:zz:00", "pw"));
    }

    #[test]
    fn tokens_and_the_node_itself_may_obtain() {
        assert!(may_obtain(&user(AGENT_USER, &[NODES_GROUP]), "n1").is_ok());
        assert!(may_obtain(&user("system:bootstrap:abcdef", &[BOOTSTRAPPERS]), "n1").is_ok());
        assert!(may_obtain(&user("system:node:n1", &[NODES_GROUP]), "n1").is_ok());
        for (u, groups) in [
            ("system:node:n2", &[NODES_GROUP][..]),
            ("system:node:n1", &[][..]),
            ("system:admin", &["system:masters"][..]),
            ("system:anonymous", &["system:unauthenticated"][..]),
        ] {
            match may_obtain(&user(u, groups), "n1") {
                Err(ApiError::Forbidden(m)) => assert!(m.contains(u), "{m}"),
                other => panic!("{u}: {other:?}"),
            }
        }
    }

    #[test]
    fn young_secrets_keep_the_name_during_a_join() {
        let now = jiff::Timestamp::now();
        let at = |t: jiff::Timestamp| json!({"metadata": {"creationTimestamp": t.to_string()}});
        assert!(young(&at(now)));
        assert!(!young(&at(now - jiff::SignedDuration::from_secs(3600))));
        assert!(young(&json!({})));
        let hour_ago = (now - jiff::SignedDuration::from_secs(3600)).to_string();
        let retaken = json!({"metadata": {"creationTimestamp": hour_ago,
                             "annotations": {JOINED_AT: now.to_string()}}});
        assert!(young(&retaken));
    }

    #[test]
    fn requests_are_checked() {
        let ask = |name: &str, pw: &str, n: usize| wire::Ask {
            node_name: name.into(),
            node_password: pw.into(),
            addresses: vec!["10.0.0.1".parse().unwrap(); n],
            kubelet_client_csr: String::new(),
            kubelet_serving_csr: String::new(),
            proxy_client_csr: String::new(),
        };
        assert!(check_request(&ask("node-1", "pw", 2)).is_ok());
        for bad in [
            ask("Node_1", "pw", 1),
            ask("", "pw", 1),
            ask(&"a".repeat(240), "pw", 1),
            ask("n", "", 1),
            ask("n", &"p".repeat(MAX_PASSWORD + 1), 1),
            ask("n", "pw", MAX_ADDRESSES + 1),
        ] {
            assert!(
                matches!(check_request(&bad), Err(ApiError::BadRequest(_))),
                "{bad:?}"
            );
        }
    }
}
