//! What a request asks to do, in the authorizer's terms (upstream's
//! `RequestInfo` rules), and the 403 answer when it may not.

use std::sync::Arc;

use http::Method;
use serde_json::{json, Value};

use super::query::Query;
use super::route::{ResourcePath, Route};
use crate::api::authz::{self, Attributes, UserInfo};

/// Subresources a WebSocket or SPDY upgrade is made on with GET, which
/// since 1.30 (AuthorizePodWebsocketUpgradeCreatePermission) also need
/// `create`: running a command is never a read.
const UPGRADE_SUBRESOURCES: &[&str] = &["exec", "attach", "portforward"];

/// The attributes of a request by `user` for `route`.
pub fn of(
    method: &Method,
    path: &str,
    route: &Route,
    query: &Query,
    user: Arc<UserInfo>,
) -> Attributes {
    match route {
        Route::Resource(p) => resource(method, p, query, user),
        _ => Attributes {
            user,
            verb: method.as_str().to_ascii_lowercase(),
            resource_request: false,
            path: path.to_string(),
            ..Default::default()
        },
    }
}

/// The attributes of a resource request.
fn resource(method: &Method, p: &ResourcePath, query: &Query, user: Arc<UserInfo>) -> Attributes {
    let named = p.name.is_some();
    let verb = match *method {
        // A named ?watch=true is served as a watch of that object, so it is
        // authorized as one (upstream would ask for `get`, granting less).
        Method::GET if p.watch_prefix || query.is_watch() => "watch",
        Method::GET | Method::HEAD if named => "get",
        Method::GET | Method::HEAD => "list",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE if named => "delete",
        Method::DELETE => "deletecollection",
        _ => "",
    };
    let mut verb = verb.to_string();
    if verb.is_empty() {
        verb = method.as_str().to_ascii_lowercase();
    }
    let mut name = p.name.clone().unwrap_or_default();
    // A list or watch narrowed to one name by field selector is about
    // that name (so resourceNames rules apply), as upstream.
    if name.is_empty() && (verb == "list" || verb == "watch") {
        if let Some(n) = query.get("fieldSelector").and_then(selected_name) {
            name = n;
        }
    }
    // `/api/v1/namespaces/foo` is in namespace foo, as upstream.
    let namespace = match (&p.namespace, p.plural.as_str(), &p.name) {
        (Some(ns), _, _) => ns.clone(),
        (None, "namespaces", Some(n)) => n.clone(),
        _ => String::new(),
    };
    Attributes {
        user,
        verb,
        resource_request: true,
        namespace,
        api_group: p.group.clone(),
        api_version: p.version.clone(),
        resource: p.plural.clone(),
        subresource: p.subresource.clone().unwrap_or_default(),
        name,
        path: String::new(),
    }
}

/// `metadata.name=x` (or `==x`) among the terms of a field selector.
fn selected_name(selector: &str) -> Option<String> {
    selector.split(',').find_map(|term| {
        let (k, v) = term.split_once("==").or_else(|| term.split_once('='))?;
        (k.trim() == "metadata.name" && !v.trim().is_empty()).then(|| v.trim().to_string())
    })
}

/// The second check an upgrade GET on exec/attach/portforward needs.
pub fn upgrade_create(attrs: &Attributes) -> Option<Attributes> {
    (attrs.resource_request
        && attrs.verb == "get"
        && attrs.resource == "pods"
        && UPGRADE_SUBRESOURCES.contains(&attrs.subresource.as_str()))
    .then(|| Attributes {
        verb: "create".into(),
        ..attrs.clone()
    })
}

/// Upstream's 403 `Status` (responsewriters.Forbidden → NewForbidden):
/// the subject is `resource.group "name"` without the subresource, which
/// only the "cannot" part names; the details name the resource.
pub fn forbidden_status(attrs: &Attributes, reason: &str) -> Value {
    let message = authz::forbidden_message(attrs, reason);
    let mut details = serde_json::Map::new();
    if !attrs.name.is_empty() {
        details.insert("name".into(), attrs.name.clone().into());
    }
    if !attrs.api_group.is_empty() {
        details.insert("group".into(), attrs.api_group.clone().into());
    }
    if !attrs.resource.is_empty() {
        details.insert("kind".into(), attrs.resource.clone().into());
    }
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": "Forbidden",
        "details": details,
        "code": 403,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apiserver::route;

    fn attrs(method: Method, uri: &str) -> Attributes {
        let (path, q) = uri.split_once('?').unwrap_or((uri, ""));
        of(
            &method,
            path,
            &route::parse(path),
            &Query::parse(Some(q)),
            Arc::new(UserInfo {
                name: "alice".into(),
                ..Default::default()
            }),
        )
    }

    #[test]
    fn verbs_follow_request_info() {
        let cases = [
            (Method::GET, "/api/v1/namespaces/a/pods", "list"),
            (Method::GET, "/api/v1/namespaces/a/pods?watch=true", "watch"),
            (Method::GET, "/api/v1/watch/namespaces/a/pods", "watch"),
            (Method::GET, "/api/v1/namespaces/a/pods/web", "get"),
            (Method::POST, "/api/v1/namespaces/a/pods", "create"),
            (Method::PUT, "/api/v1/namespaces/a/pods/web", "update"),
            (Method::PATCH, "/api/v1/namespaces/a/pods/web", "patch"),
            (Method::DELETE, "/api/v1/namespaces/a/pods/web", "delete"),
            (
                Method::DELETE,
                "/api/v1/namespaces/a/pods",
                "deletecollection",
            ),
            (Method::POST, "/api/v1/namespaces/a/pods/web/exec", "create"),
            (Method::GET, "/api/v1/namespaces/a/pods/web/log", "get"),
            (Method::GET, "/apis", "get"),
            (Method::POST, "/healthz", "post"),
        ];
        for (m, uri, verb) in cases {
            assert_eq!(attrs(m, uri).verb, verb, "{uri}");
        }
    }

    #[test]
    fn scope_names_and_subresources() {
        let a = attrs(
            Method::GET,
            "/apis/apps/v1/namespaces/a/deployments/web/scale",
        );
        assert_eq!(
            (
                a.api_group.as_str(),
                a.namespace.as_str(),
                a.resource.as_str()
            ),
            ("apps", "a", "deployments")
        );
        assert_eq!((a.name.as_str(), a.subresource.as_str()), ("web", "scale"));
        let a = attrs(Method::GET, "/api/v1/namespaces/foo");
        assert_eq!((a.namespace.as_str(), a.name.as_str()), ("foo", "foo"));
        let a = attrs(
            Method::GET,
            "/api/v1/namespaces/a/pods?fieldSelector=metadata.name%3Dweb&watch=1",
        );
        assert_eq!((a.verb.as_str(), a.name.as_str()), ("watch", "web"));
        let a = attrs(Method::GET, "/api/v1");
        assert!(!a.resource_request);
        let exec = attrs(Method::GET, "/api/v1/namespaces/a/pods/web/exec");
        assert_eq!(upgrade_create(&exec).map(|a| a.verb), Some("create".into()));
        assert!(upgrade_create(&attrs(Method::GET, "/api/v1/namespaces/a/pods/web/log")).is_none());
    }

    #[test]
    fn forbidden_matches_upstream() {
        let s = forbidden_status(&attrs(Method::DELETE, "/api/v1/namespaces/a/pods/web"), "");
        assert_eq!(
            s["message"],
            "pods \"web\" is forbidden: User \"alice\" cannot delete resource \"pods\" in API group \"\" in the namespace \"a\""
        );
        assert_eq!(s["details"], json!({"name": "web", "kind": "pods"}));
        let s = forbidden_status(&attrs(Method::GET, "/apis/apps/v1/deployments"), "");
        assert_eq!(
            s["message"],
            "deployments.apps is forbidden: User \"alice\" cannot list resource \"deployments\" in API group \"apps\" at the cluster scope"
        );
        assert_eq!(
            s["details"],
            json!({"group": "apps", "kind": "deployments"})
        );
        let s = forbidden_status(
            &attrs(Method::POST, "/api/v1/namespaces/a/pods/web/exec"),
            "no",
        );
        assert_eq!(
            s["message"],
            "pods \"web\" is forbidden: User \"alice\" cannot create resource \"pods/exec\" in API group \"\" in the namespace \"a\": no"
        );
        let s = forbidden_status(&attrs(Method::GET, "/metrics"), "");
        assert_eq!(
            s["message"],
            "forbidden: User \"alice\" cannot get path \"/metrics\""
        );
        assert_eq!(s["details"], json!({}));
    }
}
