//! Bootstrap tokens as bearer credentials, as upstream's bootstrap token
//! authenticator: `<id>.<secret>` names the Secret
//! `kube-system/bootstrap-token-<id>` of type `bootstrap.kubernetes.io/token`,
//! which must hold that secret, not be expired or being deleted, and allow
//! `usage-bootstrap-authentication`. The user is `system:bootstrap:<id>` in
//! `system:bootstrappers` plus the Secret's `auth-extra-groups`.

use std::time::SystemTime;

use serde_json::Value;

use crate::api::authz::UserInfo;
use crate::api::Api;
use crate::pki::{secrets_equal, BootstrapToken};
use crate::tokens::secret::{
    data, expired, extra_groups, is_bootstrap_secret, valid_group, NAMESPACE, SECRET_PREFIX,
};

const USER_PREFIX: &str = "system:bootstrap:";
const GROUP: &str = "system:bootstrappers";

/// The user of a bootstrap token; `None` when it is not one or is refused
/// (the reason is logged at debug level, never the secret).
pub async fn authenticate(api: &Api, token: &str) -> Option<UserInfo> {
    let token = BootstrapToken::parse(token)?;
    let secrets = api.registry().find("", "v1", "secrets")?;
    let name = format!("{SECRET_PREFIX}{}", token.id);
    let secret = match api.get(secrets, Some(NAMESPACE), &name).await {
        Ok(s) => s,
        Err(e) => {
            tracing::debug!(secret = %name, error = %e, "no secret for the bootstrap token");
            return None;
        }
    };
    match check(&secret, &token, SystemTime::now()) {
        Ok(user) => Some(user),
        Err(reason) => {
            tracing::debug!(secret = %name, reason, "bootstrap token refused");
            None
        }
    }
}

fn check(
    secret: &Value,
    token: &BootstrapToken,
    now: SystemTime,
) -> Result<UserInfo, &'static str> {
    if secret.pointer("/metadata/deletionTimestamp").is_some() {
        return Err("the secret is being deleted");
    }
    if !is_bootstrap_secret(secret) {
        return Err("the secret is not of type bootstrap.kubernetes.io/token");
    }
    let stored = data(secret, "token-secret").unwrap_or_default();
    if !secrets_equal(&stored, &token.secret) {
        return Err("the token secret does not match");
    }
    if data(secret, "token-id").as_deref() != Some(token.id.as_str()) {
        return Err("the token id does not match");
    }
    if expired(secret, now) {
        return Err("the token has expired");
    }
    if data(secret, "usage-bootstrap-authentication").as_deref() != Some("true") {
        return Err("the token may not be used for authentication");
    }
    let extra = extra_groups(secret);
    if !extra.iter().all(|g| valid_group(g)) {
        return Err("the secret has an invalid auth-extra-groups entry");
    }
    let mut groups = vec![GROUP.to_string()];
    groups.extend(extra);
    Ok(UserInfo {
        name: format!("{USER_PREFIX}{}", token.id),
        groups,
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;
    use serde_json::json;

    fn b64(s: &str) -> String {
        STANDARD.encode(s)
    }

    fn secret(extra: &[(&str, &str)]) -> Value {
        let mut data = json!({
            "token-id": b64("abcdef"),
            "token-secret": b64("0123456789abcdef"),
            "usage-bootstrap-authentication": b64("true"),
            "expiration": b64("2030-01-01T00:00:00Z"),
            "auth-extra-groups": b64("system:bootstrappers:nanokube:default-node-token"),
        });
        for (k, v) in extra {
            data[*k] = json!(b64(v));
        }
        json!({"metadata": {"name": "bootstrap-token-abcdef", "namespace": "kube-system"},
            "type": crate::tokens::secret::SECRET_TYPE, "data": data})
    }

    fn token() -> BootstrapToken {
        BootstrapToken::parse("abcdef.0123456789abcdef").unwrap()
    }

    fn at(text: &str) -> SystemTime {
        SystemTime::from(
            time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
                .unwrap(),
        )
    }

    #[test]
    fn a_valid_token_is_its_bootstrap_user() {
        let now = at("2029-01-01T00:00:00Z");
        let user = check(&secret(&[]), &token(), now).unwrap();
        assert_eq!(user.name, "system:bootstrap:abcdef");
        assert_eq!(
            user.groups,
            [GROUP, "system:bootstrappers:nanokube:default-node-token"]
        );
    }

    #[test]
    fn every_rule_refuses() {
        let now = at("2029-01-01T00:00:00Z");
        let wrong = BootstrapToken::parse("abcdef.0123456789abcdee").unwrap();
        assert!(check(&secret(&[]), &wrong, now).is_err());
        for data in [
            ("expiration", "2028-12-31T23:59:59Z"),
            ("expiration", "tomorrow"),
            ("usage-bootstrap-authentication", "false"),
            ("token-id", "abcdeg"),
            ("auth-extra-groups", "system:masters"),
            ("auth-extra-groups", "system:bootstrappers:"),
            ("auth-extra-groups", "system:bootstrappers:Upper"),
        ] {
            assert!(check(&secret(&[data]), &token(), now).is_err(), "{data:?}");
        }
        let mut opaque = secret(&[]);
        opaque["type"] = json!("Opaque");
        assert!(check(&opaque, &token(), now).is_err());
        let mut deleting = secret(&[]);
        deleting["metadata"]["deletionTimestamp"] = json!("2029-01-01T00:00:00Z");
        assert!(check(&deleting, &token(), now).is_err());
        let mut no_usage = secret(&[]);
        no_usage["data"]
            .as_object_mut()
            .unwrap()
            .remove("usage-bootstrap-authentication");
        assert!(check(&no_usage, &token(), now).is_err());
    }

    #[test]
    fn a_token_without_expiration_never_expires() {
        let mut never = secret(&[]);
        never["data"].as_object_mut().unwrap().remove("expiration");
        let user = check(&never, &token(), at("2999-01-01T00:00:00Z")).unwrap();
        assert_eq!(user.name, "system:bootstrap:abcdef");
    }
}
