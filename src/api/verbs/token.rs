//! Service-account tokens: the `serviceaccounts/token` subresource
//! (TokenRequest), the authentication of the JWTs it issues (the object
//! checks upstream's validator makes after the signature), and
//! TokenReview. The signing key itself is `pki::ServiceAccountKey`.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Value};

use crate::api::error::ApiError;
use crate::api::meta;
use crate::api::registry::Resource;
use crate::api::validation as v;
use crate::api::Api;
use crate::pki::{
    KubernetesClaim, LegacyClaims, ServiceAccountKey, TokenClaims, TokenRef, VerifiedToken,
    SERVICE_ACCOUNT_ISSUER,
};

/// The signing key, set once at start (as the admission defaults are).
static KEY: OnceLock<Arc<ServiceAccountKey>> = OnceLock::new();

const GROUP: &str = "authentication.k8s.io";
const DEFAULT_EXPIRATION: i64 = 3600;
const MIN_EXPIRATION: i64 = 600;
const MAX_EXPIRATION: i64 = 1 << 32;
const TOKEN_VOLUME_PREFIX: &str = "kube-api-access-";

/// A service account a token authenticated as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenUser {
    pub username: String,
    pub uid: String,
    pub groups: Vec<String>,
    pub extra: BTreeMap<String, Vec<String>>,
    /// The audiences both the token and the caller accept.
    pub audiences: Vec<String>,
}

/// The API server's own audiences (`--api-audiences` defaults to the issuer).
fn api_audiences() -> Vec<String> {
    vec![SERVICE_ACCOUNT_ISSUER.to_string()]
}

fn invalid(name: &str, causes: Vec<v::FieldCause>) -> ApiError {
    ApiError::Invalid {
        group: GROUP.into(),
        kind: "TokenRequest".into(),
        name: name.into(),
        causes,
    }
}

/// The audiences of `a` that `b` also names.
fn intersect(a: &[String], b: &[String]) -> Vec<String> {
    a.iter().filter(|x| b.contains(x)).cloned().collect()
}

fn is_deleting(obj: &Value) -> bool {
    obj.pointer("/metadata/deletionTimestamp")
        .is_some_and(|t| !t.is_null())
}

fn now_seconds() -> i64 {
    jiff::Timestamp::now().as_second()
}

impl Api {
    /// Sets the key tokens are signed and verified with; without one,
    /// TokenRequests fail and no JWT authenticates.
    pub fn set_service_account_key(&self, key: Arc<ServiceAccountKey>) {
        if KEY.set(key).is_err() {
            tracing::warn!("service account key already set; keeping the first");
        }
    }

    fn resource_of(&self, plural: &str) -> Result<&'static Resource, ApiError> {
        self.registry()
            .find("", "v1", plural)
            .ok_or_else(|| ApiError::internal(format!("no resource {plural}")))
    }

    /// `POST serviceaccounts/<name>/token`.
    pub async fn create_token(
        &self,
        accounts: &'static Resource,
        namespace: Option<&str>,
        name: &str,
        body: &Value,
    ) -> Result<Value, ApiError> {
        let key = KEY
            .get()
            .ok_or_else(|| ApiError::internal("no service account signing key"))?;
        let ns = namespace.unwrap_or("");
        let spec = body.get("spec").cloned().unwrap_or_else(|| json!({}));
        let audiences = match spec.get("audiences") {
            None | Some(Value::Null) => api_audiences(),
            Some(Value::Array(list)) => {
                let mut out = Vec::with_capacity(list.len());
                for a in list {
                    let Some(s) = a.as_str() else {
                        return Err(ApiError::BadRequest(
                            "TokenRequest in version \"v1\" cannot be handled as a TokenRequest: spec.audiences must be strings".into(),
                        ));
                    };
                    out.push(s.to_string());
                }
                if out.is_empty() {
                    api_audiences()
                } else {
                    out
                }
            }
            Some(_) => {
                return Err(ApiError::BadRequest(
                    "TokenRequest in version \"v1\" cannot be handled as a TokenRequest: spec.audiences must be a list".into(),
                ))
            }
        };
        let expiration = match spec.get("expirationSeconds") {
            None | Some(Value::Null) => DEFAULT_EXPIRATION,
            Some(e) => e.as_i64().ok_or_else(|| {
                ApiError::BadRequest("TokenRequest in version \"v1\" cannot be handled as a TokenRequest: spec.expirationSeconds must be an integer".into())
            })?,
        };
        let field = "spec.expirationSeconds";
        if expiration < MIN_EXPIRATION {
            return Err(invalid(
                name,
                vec![v::invalid(
                    field,
                    &expiration.into(),
                    "may not specify a duration less than 10 minutes",
                )],
            ));
        }
        if expiration > MAX_EXPIRATION {
            return Err(invalid(
                name,
                vec![v::invalid(
                    field,
                    &expiration.into(),
                    "may not specify a duration larger than 2^32 seconds",
                )],
            ));
        }
        let account = self.get(accounts, namespace, name).await?;
        let mut claim = KubernetesClaim {
            namespace: ns.to_string(),
            serviceaccount: TokenRef {
                name: name.to_string(),
                uid: meta::uid(&account).unwrap_or("").to_string(),
            },
            ..Default::default()
        };
        let bound = spec.get("boundObjectRef").filter(|b| !b.is_null());
        if let Some(bound) = bound {
            self.bind_object(&mut claim, name, ns, bound).await?;
        }
        let now = now_seconds();
        let exp = now.saturating_add(expiration);
        let claims = TokenClaims {
            aud: audiences.clone(),
            exp,
            iat: now,
            iss: SERVICE_ACCOUNT_ISSUER.to_string(),
            jti: uuid::Uuid::new_v4().to_string(),
            kubernetes: claim,
            nbf: now,
            sub: format!("system:serviceaccount:{ns}:{name}"),
        };
        let token = key.sign(&claims).map_err(ApiError::internal)?;
        tracing::debug!(namespace = ns, account = name, expiration, "token issued");
        let expires = jiff::Timestamp::from_second(exp)
            .map(|t| t.to_string())
            .map_err(ApiError::internal)?;
        let mut out_spec = json!({"audiences": audiences, "expirationSeconds": expiration, "boundObjectRef": null});
        if let Some(b) = bound {
            out_spec["boundObjectRef"] = b.clone();
        }
        Ok(json!({
            "kind": "TokenRequest",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"name": name, "namespace": ns, "creationTimestamp": null},
            "spec": out_spec,
            "status": {"token": token, "expirationTimestamp": expires},
        }))
    }

    /// Checks `boundObjectRef` as upstream does and records it in the claim.
    async fn bind_object(
        &self,
        claim: &mut KubernetesClaim,
        account: &str,
        ns: &str,
        bound: &Value,
    ) -> Result<(), ApiError> {
        let s = |k: &str| bound.get(k).and_then(Value::as_str).unwrap_or("");
        let (kind, api_version, name, uid) = (s("kind"), s("apiVersion"), s("name"), s("uid"));
        let (group, version) = match api_version.split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", api_version),
        };
        let plural = match (group, version, kind) {
            ("", "v1", "Pod") => "pods",
            ("", "v1", "Secret") => "secrets",
            _ => {
                return Err(ApiError::BadRequest(format!(
                    "cannot bind token to object of type {group}/{version}, Kind={kind}"
                )))
            }
        };
        let r = self.resource_of(plural)?;
        let obj = self.get(r, Some(ns), name).await?;
        let actual = meta::uid(&obj).unwrap_or("").to_string();
        if kind == "Pod" {
            let sa = obj
                .pointer("/spec/serviceAccountName")
                .and_then(Value::as_str)
                .unwrap_or("");
            if sa != account {
                return Err(ApiError::BadRequest(format!(
                    "cannot bind token for serviceaccount {account:?} to pod running with different serviceaccount name."
                )));
            }
        }
        if !uid.is_empty() && uid != actual {
            return Err(ApiError::Conflict {
                group: String::new(),
                resource: kind.to_string(),
                qualified: kind.to_string(),
                name: name.to_string(),
                message: format!("the UID in the bound object reference ({uid}) does not match the UID in record. The object might have been deleted and then recreated"),
            });
        }
        let reference = Some(TokenRef {
            name: name.to_string(),
            uid: actual,
        });
        if kind == "Pod" {
            claim.pod = reference;
            claim.node = self.node_of(&obj).await;
        } else {
            claim.secret = reference;
        }
        Ok(())
    }

    /// The node a pod runs on, when it is assigned and the node exists.
    async fn node_of(&self, pod: &Value) -> Option<TokenRef> {
        let node = pod.pointer("/spec/nodeName").and_then(Value::as_str)?;
        let r = self.resource_of("nodes").ok()?;
        let obj = self.get(r, None, node).await.ok()?;
        Some(TokenRef {
            name: node.to_string(),
            uid: meta::uid(&obj)?.to_string(),
        })
    }

    /// The service account a bearer JWT authenticates, for `audiences`
    /// (the API server's when empty); the error says why not.
    pub async fn authenticate_token(
        &self,
        token: &str,
        audiences: &[String],
    ) -> Result<TokenUser, String> {
        let key = KEY.get().ok_or("no service account signing key")?;
        let audiences = if audiences.is_empty() {
            api_audiences()
        } else {
            audiences.to_vec()
        };
        let (claims, shared) = match key
            .verify_any(token, now_seconds(), &audiences)
            .map_err(|e| e.to_string())?
        {
            VerifiedToken::Bound(claims, shared) => (claims, shared),
            VerifiedToken::Legacy(claims) => {
                return self.authenticate_legacy(token, &claims, &audiences).await
            }
        };
        let k = &claims.kubernetes;
        let ns = Some(k.namespace.as_str());
        // A token outlives nothing it names: each must exist with its uid.
        let check = |plural: &'static str, what: &'static str, r: &Option<TokenRef>| {
            let r = r.clone();
            async move {
                let Some(r) = r else { return Ok(()) };
                let res = self.resource_of(plural).map_err(|e| e.to_string())?;
                match self.get(res, ns, &r.name).await {
                    Ok(obj) if meta::uid(&obj) == Some(r.uid.as_str()) => Ok(()),
                    Ok(_) => Err(format!("{what} UID ({}) does not match claim", r.uid)),
                    Err(_) => Err(format!("{what} \"{}\" not found", r.name)),
                }
            }
        };
        check(
            "serviceaccounts",
            "ServiceAccount",
            &Some(k.serviceaccount.clone()),
        )
        .await?;
        check("pods", "Pod", &k.pod).await?;
        check("secrets", "Secret", &k.secret).await?;
        let mut extra = BTreeMap::new();
        let mut put = |key: &str, value: &str| {
            extra.insert(
                format!("authentication.kubernetes.io/{key}"),
                vec![value.to_string()],
            );
        };
        if !claims.jti.is_empty() {
            put("credential-id", &format!("JTI={}", claims.jti));
        }
        if let Some(p) = &k.pod {
            put("pod-name", &p.name);
            put("pod-uid", &p.uid);
        }
        if let Some(n) = &k.node {
            put("node-name", &n.name);
            put("node-uid", &n.uid);
        }
        Ok(TokenUser {
            username: claims.sub.clone(),
            uid: k.serviceaccount.uid.clone(),
            groups: vec![
                "system:serviceaccounts".into(),
                format!("system:serviceaccounts:{}", k.namespace),
                "system:authenticated".into(),
            ],
            extra,
            audiences: shared,
        })
    }

    /// A legacy token for `secret` of account `name` (`uid`), signed with
    /// the bound tokens' key (the token controller fills Secrets with it).
    pub fn sign_legacy_token(
        namespace: &str,
        name: &str,
        uid: &str,
        secret: &str,
    ) -> Result<String, String> {
        let key = KEY.get().ok_or("no service account signing key")?;
        key.sign_legacy(&LegacyClaims::new(namespace, name, uid, secret))
    }

    /// Upstream's legacy validator after the signature: the token's
    /// audiences are the API server's own, its Secret must still exist
    /// and hold exactly this token, and its account must exist with the
    /// uid it names.
    async fn authenticate_legacy(
        &self,
        token: &str,
        claims: &LegacyClaims,
        audiences: &[String],
    ) -> Result<TokenUser, String> {
        let shared = intersect(&api_audiences(), audiences);
        if shared.is_empty() {
            return Err("token audiences is invalid".into());
        }
        let ns = Some(claims.namespace.as_str());
        let secrets = self.resource_of("secrets").map_err(|e| e.to_string())?;
        let secret = match self.get(secrets, ns, &claims.secret_name).await {
            Ok(s) if !is_deleting(&s) => s,
            _ => return Err("token has been invalidated".into()),
        };
        let stored = secret
            .pointer("/data/token")
            .and_then(Value::as_str)
            .and_then(|b| STANDARD.decode(b).ok())
            .and_then(|b| String::from_utf8(b).ok())
            .unwrap_or_default();
        if !crate::pki::secrets_equal(&stored, token) {
            return Err("token does not match server's copy".into());
        }
        let accounts = self
            .resource_of("serviceaccounts")
            .map_err(|e| e.to_string())?;
        let name = &claims.service_account_name;
        match self.get(accounts, ns, name).await {
            Ok(sa) if is_deleting(&sa) => {
                return Err(format!("service account {name} has been deleted"))
            }
            Ok(sa) if meta::uid(&sa) == Some(claims.service_account_uid.as_str()) => {}
            Ok(_) => {
                return Err(format!(
                    "service account UID ({}) does not match claim",
                    claims.service_account_uid
                ))
            }
            Err(_) => return Err(format!("service account \"{name}\" not found")),
        }
        Ok(TokenUser {
            username: claims.sub.clone(),
            uid: claims.service_account_uid.clone(),
            groups: vec![
                "system:serviceaccounts".into(),
                format!("system:serviceaccounts:{}", claims.namespace),
                "system:authenticated".into(),
            ],
            extra: BTreeMap::new(),
            audiences: shared,
        })
    }

    /// The account half of the ServiceAccount admission, for every pod
    /// created (by users and controllers alike, as upstream): the account
    /// must exist, and a pod that does not decide itself gets no token
    /// volume when its account opts out (`automountServiceAccountToken:
    /// false`). Mirror pods are exempt, as upstream; so is a missing
    /// `default` account, which the serviceaccount controller may not have
    /// created yet in a brand-new namespace (upstream retries a live
    /// lookup; refusing would race with that controller).
    pub(super) async fn apply_account_automount(&self, pod: &mut Value) -> Result<(), ApiError> {
        let ns = meta::meta_str(pod, "namespace").unwrap_or("").to_string();
        let Some(account) = pod
            .pointer("/spec/serviceAccountName")
            .and_then(Value::as_str)
            .map(str::to_string)
        else {
            return Ok(());
        };
        let mirror = pod
            .pointer("/metadata/annotations/kubernetes.io~1config.mirror")
            .is_some();
        let r = self.resource_of("serviceaccounts")?;
        let sa = match self.get(r, Some(&ns), &account).await {
            Ok(sa) => sa,
            Err(ApiError::NotFound { .. }) if !mirror && account != "default" => {
                return Err(ApiError::Forbidden(format!(
                    "pods \"{}\" is forbidden: error looking up service account {ns}/{account}: serviceaccount \"{account}\" not found",
                    meta::name(pod)
                )));
            }
            Err(ApiError::NotFound { .. }) => return Ok(()),
            Err(e) => return Err(e),
        };
        if pod
            .pointer("/spec/automountServiceAccountToken")
            .is_some_and(|v| !v.is_null())
        {
            return Ok(());
        }
        if sa
            .get("automountServiceAccountToken")
            .and_then(Value::as_bool)
            != Some(false)
        {
            return Ok(());
        }
        let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
            return Ok(());
        };
        // Only the volume the admission added: its name and token source.
        let ours = |v: &Value| {
            v.get("name")
                .and_then(Value::as_str)
                .is_some_and(|n| n.starts_with(TOKEN_VOLUME_PREFIX))
                && v.pointer("/projected/sources/0/serviceAccountToken/expirationSeconds")
                    == Some(&json!(3607))
        };
        let Some(vols) = spec.get_mut("volumes").and_then(Value::as_array_mut) else {
            return Ok(());
        };
        let Some(pos) = vols.iter().position(ours) else {
            return Ok(());
        };
        let removed = vols.remove(pos);
        let name = removed.get("name").cloned().unwrap_or(Value::Null);
        for list in ["initContainers", "containers"] {
            let Some(cs) = spec.get_mut(list).and_then(Value::as_array_mut) else {
                continue;
            };
            for c in cs {
                if let Some(m) = c.get_mut("volumeMounts").and_then(Value::as_array_mut) {
                    m.retain(|m| m.get("name") != Some(&name));
                }
            }
        }
        Ok(())
    }

    /// `POST tokenreviews`: who a token is, never stored.
    pub async fn review_token(&self, mut body: Value) -> Result<Value, ApiError> {
        let token = body
            .pointer("/spec/token")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if token.is_empty() {
            return Err(ApiError::BadRequest(format!(
                "token is required for TokenReview in {GROUP}/__internal"
            )));
        }
        let audiences: Vec<String> = body
            .pointer("/spec/audiences")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        let status = match self.authenticate_token(&token, &audiences).await {
            Ok(u) => json!({
                "authenticated": true,
                "user": {"username": u.username, "uid": u.uid, "groups": u.groups, "extra": u.extra},
                "audiences": u.audiences,
            }),
            Err(e) => {
                tracing::debug!(error = %e, "token review refused");
                json!({"user": {}, "error": format!("[invalid bearer token, {e}]")})
            }
        };
        if let Some(map) = body.as_object_mut() {
            map.insert("kind".into(), "TokenReview".into());
            map.insert("apiVersion".into(), format!("{GROUP}/v1").into());
            map.entry("metadata")
                .or_insert_with(|| json!({}))
                .as_object_mut()
                .map(|m| m.insert("creationTimestamp".into(), Value::Null));
            map.insert("status".into(), status);
        }
        Ok(body)
    }
}
