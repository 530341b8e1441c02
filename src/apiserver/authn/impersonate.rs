//! `Impersonate-User`, `-Group`, `-Uid` and `-Extra-<key>`: each thing
//! asked for is checked with the `impersonate` verb against the requester
//! (users, groups, serviceaccounts, uids, userextras/<key>), as upstream's
//! impersonation filter; the request then runs as the impersonated user.

use std::sync::Arc;

use http::HeaderMap;

use super::{ANONYMOUS, AUTHENTICATED, UNAUTHENTICATED};
use crate::api::authz::{Attributes, Decision, UserInfo};
use crate::api::Api;

const USER: &str = "impersonate-user";
const GROUP: &str = "impersonate-group";
const UID: &str = "impersonate-uid";
const EXTRA_PREFIX: &str = "impersonate-extra-";
const SA_PREFIX: &str = "system:serviceaccount:";

/// Why impersonation was refused.
#[derive(Debug)]
pub enum Refused {
    /// The requester may not: a 403 for these attributes and reason.
    Forbidden(Box<Attributes>, String),
    /// Groups, extras or a uid without a user (upstream: internal error).
    Invalid(String),
}

/// One thing to impersonate.
enum Ask {
    User(String),
    ServiceAccount(String, String),
    Group(String),
    Extra(String, String),
    Uid(String),
}

/// Whether a request asks to impersonate anyone.
pub fn wanted(headers: &HeaderMap) -> bool {
    headers.keys().any(|k| {
        let k = k.as_str();
        k == USER || k == GROUP || k == UID || k.starts_with(EXTRA_PREFIX)
    })
}

fn values<'a>(headers: &'a HeaderMap, name: &str) -> impl Iterator<Item = String> + 'a {
    headers
        .get_all(name)
        .into_iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::to_string)
}

/// The asks of the headers, in upstream's order.
fn asks(headers: &HeaderMap) -> Result<Vec<Ask>, Refused> {
    let mut out = Vec::new();
    let user = values(headers, USER).next().filter(|u| !u.is_empty());
    if let Some(u) = &user {
        out.push(match split_service_account(u) {
            Some((ns, name)) => Ask::ServiceAccount(ns.into(), name.into()),
            None => Ask::User(u.clone()),
        });
    }
    out.extend(values(headers, GROUP).map(Ask::Group));
    for key in headers.keys() {
        let Some(raw) = key.as_str().strip_prefix(EXTRA_PREFIX) else {
            continue;
        };
        // Header names arrive lower-cased; the key is percent-decoded.
        let extra = percent_encoding::percent_decode_str(raw)
            .decode_utf8()
            .map(|k| k.into_owned())
            .unwrap_or_else(|_| raw.to_string());
        out.extend(values(headers, key.as_str()).map(|v| Ask::Extra(extra.clone(), v)));
    }
    if let Some(uid) = values(headers, UID).next().filter(|u| !u.is_empty()) {
        out.push(Ask::Uid(uid));
    }
    if user.is_none() && !out.is_empty() {
        return Err(Refused::Invalid(
            "requested impersonation of groups, extras or a uid without impersonating a user"
                .into(),
        ));
    }
    Ok(out)
}

/// `system:serviceaccount:<ns>:<name>` → (ns, name).
fn split_service_account(user: &str) -> Option<(&str, &str)> {
    let (ns, name) = user.strip_prefix(SA_PREFIX)?.split_once(':')?;
    (!ns.is_empty() && !name.is_empty() && !name.contains(':')).then_some((ns, name))
}

/// The user `requester` acts as, when every ask is allowed.
pub async fn impersonate(
    api: &Api,
    requester: &Arc<UserInfo>,
    headers: &HeaderMap,
) -> Result<UserInfo, Refused> {
    let groups_given = headers.contains_key(GROUP);
    let mut user = UserInfo::default();
    for ask in asks(headers)? {
        let mut attrs = Attributes {
            user: requester.clone(),
            verb: "impersonate".into(),
            resource_request: true,
            ..Default::default()
        };
        match ask {
            Ask::User(name) => {
                attrs.resource = "users".into();
                attrs.name = name.clone();
                user.name = name;
            }
            Ask::ServiceAccount(ns, name) => {
                attrs.resource = "serviceaccounts".into();
                attrs.namespace = ns.clone();
                attrs.name = name.clone();
                user.name = format!("{SA_PREFIX}{ns}:{name}");
                if !groups_given {
                    user.groups = vec![
                        "system:serviceaccounts".into(),
                        format!("system:serviceaccounts:{ns}"),
                    ];
                }
            }
            Ask::Group(g) => {
                attrs.resource = "groups".into();
                attrs.name = g.clone();
                user.groups.push(g);
            }
            Ask::Extra(key, value) => {
                attrs.api_group = "authentication.k8s.io".into();
                attrs.api_version = "v1".into();
                attrs.resource = "userextras".into();
                attrs.subresource = key.clone();
                attrs.name = value.clone();
                user.extra.entry(key).or_default().push(value);
            }
            Ask::Uid(uid) => {
                attrs.api_group = "authentication.k8s.io".into();
                attrs.api_version = "v1".into();
                attrs.resource = "uids".into();
                attrs.name = uid.clone();
                user.uid = uid;
            }
        }
        match api.authorize(&attrs).await {
            Decision::Allow => {}
            Decision::NoOpinion(reason) => {
                return Err(Refused::Forbidden(Box::new(attrs), reason));
            }
        }
    }
    finish_groups(&mut user);
    Ok(user)
}

/// Upstream adds `system:authenticated` unless a virtual group was asked
/// for, and `system:unauthenticated` to an impersonated anonymous user.
fn finish_groups(user: &mut UserInfo) {
    let has = |g: &str| user.groups.iter().any(|x| x == g);
    if user.name == ANONYMOUS {
        if !has(UNAUTHENTICATED) {
            user.groups.push(UNAUTHENTICATED.into());
        }
    } else if !has(AUTHENTICATED) && !has(UNAUTHENTICATED) {
        user.groups.push(AUTHENTICATED.into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                http::header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn asks_follow_the_headers() {
        let h = headers(&[
            ("Impersonate-User", "system:serviceaccount:a:robot"),
            ("Impersonate-Group", "g1"),
            ("Impersonate-Group", "g2"),
            ("Impersonate-Extra-Scopes%2Fx", "s1"),
            ("Impersonate-Uid", "u-1"),
        ]);
        assert!(wanted(&h));
        let a = asks(&h).unwrap();
        assert!(matches!(&a[0], Ask::ServiceAccount(ns, n) if ns == "a" && n == "robot"));
        assert!(matches!(&a[2], Ask::Group(g) if g == "g2"));
        assert!(matches!(&a[3], Ask::Extra(k, v) if k == "scopes/x" && v == "s1"));
        assert!(matches!(&a[4], Ask::Uid(u) if u == "u-1"));
        assert!(matches!(
            asks(&headers(&[("Impersonate-Group", "g")])),
            Err(Refused::Invalid(_))
        ));
        assert!(!wanted(&headers(&[("Authorization", "Bearer x")])));
        assert!(split_service_account("system:serviceaccount:a").is_none());
    }

    #[test]
    fn virtual_groups_as_upstream() {
        let mut u = UserInfo {
            name: "alice".into(),
            ..Default::default()
        };
        finish_groups(&mut u);
        assert_eq!(u.groups, [AUTHENTICATED]);
        let mut u = UserInfo {
            name: ANONYMOUS.into(),
            ..Default::default()
        };
        finish_groups(&mut u);
        assert_eq!(u.groups, [UNAUTHENTICATED]);
    }
}
