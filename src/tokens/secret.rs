//! The bootstrap-token Secret as kubeadm and k3s write it: name
//! `bootstrap-token-<id>` in kube-system, type `bootstrap.kubernetes.io/token`,
//! data keys `token-id`, `token-secret`, `expiration` (RFC 3339),
//! `usage-bootstrap-<usage>` = "true", `description`, `auth-extra-groups`.
//! Shared by the command, the authenticator and the token cleaner.

use std::time::{Duration, SystemTime};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Map, Value};

use super::Error;
use crate::pki::BootstrapToken;

pub const NAMESPACE: &str = "kube-system";
pub const SECRET_PREFIX: &str = "bootstrap-token-";
pub const SECRET_TYPE: &str = "bootstrap.kubernetes.io/token";
/// The usages kubeadm knows.
pub const USAGES: &[&str] = &["authentication", "signing"];
const USAGE_PREFIX: &str = "usage-bootstrap-";
const GROUP_PREFIX: &str = "system:bootstrappers:";
/// The extra group of tokens created without `--groups` (kubeadm's
/// `system:bootstrappers:kubeadm:default-node-token`, in our name).
pub const DEFAULT_GROUP: &str = "system:bootstrappers:nanokube:default-node-token";

/// A `data` key of the Secret, decoded.
pub fn data(secret: &Value, key: &str) -> Option<String> {
    let encoded = secret.get("data")?.get(key)?.as_str()?;
    String::from_utf8(STANDARD.decode(encoded).ok()?).ok()
}

/// Whether the Secret is a bootstrap token's (by type).
pub fn is_bootstrap_secret(secret: &Value) -> bool {
    secret.get("type").and_then(Value::as_str) == Some(SECRET_TYPE)
}

/// The Secret's expiration: `Ok(None)` without one, `Err(())` when it does
/// not parse (which upstream treats as expired).
pub fn expiration(secret: &Value) -> Result<Option<SystemTime>, ()> {
    let Some(text) = data(secret, "expiration") else {
        return Ok(None);
    };
    time::OffsetDateTime::parse(&text, &time::format_description::well_known::Rfc3339)
        .map(|t| Some(SystemTime::from(t)))
        .map_err(|_| ())
}

/// Whether the expiration has passed (strictly, as upstream); an
/// unparseable one counts as passed, a missing one never passes.
pub fn expired(secret: &Value, now: SystemTime) -> bool {
    match expiration(secret) {
        Ok(Some(at)) => at < now,
        Ok(None) => false,
        Err(()) => true,
    }
}

/// Upstream's extra-group rule: `system:bootstrappers:` and then
/// `[a-z0-9:-]{0,255}[a-z0-9]`.
pub fn valid_group(group: &str) -> bool {
    let Some(rest) = group.strip_prefix(GROUP_PREFIX) else {
        return false;
    };
    let ok = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    match rest.as_bytes().split_last() {
        Some((last, body)) => {
            ok(*last) && body.len() <= 255 && body.iter().all(|b| ok(*b) || b"-:".contains(b))
        }
        None => false,
    }
}

/// The Secret's extra groups (comma-separated, empty entries ignored).
pub fn extra_groups(secret: &Value) -> Vec<String> {
    data(secret, "auth-extra-groups")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|g| !g.is_empty())
        .map(str::to_string)
        .collect()
}

/// The usages set to "true", sorted.
pub fn usages(secret: &Value) -> Vec<String> {
    let mut out: Vec<String> = secret
        .get("data")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(k, _)| k.strip_prefix(USAGE_PREFIX))
        .filter(|u| data(secret, &format!("{USAGE_PREFIX}{u}")).as_deref() == Some("true"))
        .map(str::to_string)
        .collect();
    out.sort();
    out
}

/// What a new token Secret holds besides the token.
pub struct Spec {
    /// `None`: never expires.
    pub ttl: Option<Duration>,
    pub usages: Vec<String>,
    pub groups: Vec<String>,
    pub description: Option<String>,
}

/// Checks usages and groups as kubeadm does.
pub fn validate(spec: &Spec) -> Result<(), Error> {
    for u in &spec.usages {
        if !USAGES.contains(&u.as_str()) {
            return Err(Error::Usage(u.clone()));
        }
    }
    for g in &spec.groups {
        if !valid_group(g) {
            return Err(Error::Group(g.clone()));
        }
    }
    if !spec.groups.is_empty() && !spec.usages.iter().any(|u| u == "authentication") {
        return Err(Error::GroupsNeedAuthentication);
    }
    Ok(())
}

/// The Secret of `token` created at `now`.
pub fn build(token: &BootstrapToken, spec: &Spec, now: SystemTime) -> Value {
    let mut data = Map::new();
    let mut put = |k: &str, v: &str| {
        data.insert(k.to_string(), json!(STANDARD.encode(v)));
    };
    put("token-id", &token.id);
    put("token-secret", &token.secret);
    if let Some(ttl) = spec.ttl {
        put("expiration", &crate::api::meta::timestamp(now + ttl));
    }
    if let Some(d) = spec.description.as_deref().filter(|d| !d.is_empty()) {
        put("description", d);
    }
    for u in &spec.usages {
        put(&format!("{USAGE_PREFIX}{u}"), "true");
    }
    if !spec.groups.is_empty() {
        put("auth-extra-groups", &spec.groups.join(","));
    }
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": format!("{SECRET_PREFIX}{}", token.id), "namespace": NAMESPACE},
        "type": SECRET_TYPE,
        "data": data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> SystemTime {
        SystemTime::from(
            time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
                .unwrap(),
        )
    }

    fn token() -> BootstrapToken {
        BootstrapToken::parse("abcdef.0123456789abcdef").unwrap()
    }

    #[test]
    fn built_secret_reads_back() {
        let spec = Spec {
            ttl: Some(Duration::from_secs(3600)),
            usages: vec!["signing".into(), "authentication".into()],
            groups: vec![DEFAULT_GROUP.into()],
            description: Some("for pi-4".into()),
        };
        let s = build(&token(), &spec, at("2030-01-01T00:00:00Z"));
        assert_eq!(s["metadata"]["name"], "bootstrap-token-abcdef");
        assert!(is_bootstrap_secret(&s));
        assert_eq!(data(&s, "token-id").as_deref(), Some("abcdef"));
        assert_eq!(
            data(&s, "token-secret").as_deref(),
            Some("0123456789abcdef")
        );
        assert_eq!(
            data(&s, "expiration").as_deref(),
            Some("2030-01-01T01:00:00Z")
        );
        assert_eq!(data(&s, "description").as_deref(), Some("for pi-4"));
        assert_eq!(usages(&s), ["authentication", "signing"]);
        assert_eq!(extra_groups(&s), [DEFAULT_GROUP]);
        assert!(!expired(&s, at("2030-01-01T01:00:00Z")));
        assert!(expired(&s, at("2030-01-01T01:00:01Z")));
        let forever = build(&token(), &Spec { ttl: None, ..spec }, SystemTime::now());
        assert_eq!(expiration(&forever), Ok(None));
        assert!(!expired(&forever, at("2999-01-01T00:00:00Z")));
    }

    #[test]
    fn unparseable_expiration_counts_as_expired() {
        let mut s = build(
            &token(),
            &Spec {
                ttl: None,
                usages: vec![],
                groups: vec![],
                description: None,
            },
            SystemTime::now(),
        );
        s["data"]["expiration"] = json!(STANDARD.encode("tomorrow"));
        assert_eq!(expiration(&s), Err(()));
        assert!(expired(&s, SystemTime::UNIX_EPOCH));
    }

    #[test]
    fn usages_and_groups_are_checked() {
        let spec = |usages: &[&str], groups: &[&str]| Spec {
            ttl: None,
            usages: usages.iter().map(|s| s.to_string()).collect(),
            groups: groups.iter().map(|s| s.to_string()).collect(),
            description: None,
        };
        assert!(validate(&spec(&["signing", "authentication"], &[DEFAULT_GROUP])).is_ok());
        assert!(matches!(
            validate(&spec(&["signing", "bogus"], &[])),
            Err(Error::Usage(_))
        ));
        assert!(matches!(
            validate(&spec(&["authentication"], &["system:masters"])),
            Err(Error::Group(_))
        ));
        assert!(matches!(
            validate(&spec(&["signing"], &[DEFAULT_GROUP])),
            Err(Error::GroupsNeedAuthentication)
        ));
    }

    #[test]
    fn extra_group_names() {
        assert!(valid_group("system:bootstrappers:a"));
        assert!(valid_group(DEFAULT_GROUP));
        for bad in [
            "system:bootstrappers",
            "system:bootstrappers:",
            "system:bootstrappers:a-",
            "system:bootstrappers:A",
            "system:nodes",
        ] {
            assert!(!valid_group(bad), "{bad}");
        }
        assert!(valid_group(&format!("{GROUP_PREFIX}{}", "a".repeat(256))));
        assert!(!valid_group(&format!("{GROUP_PREFIX}{}", "a".repeat(257))));
    }
}
