//! URL paths of the Kubernetes API, parsed into what they name.

/// What a request path names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Version,
    Metrics,
    Health(&'static str),
    HealthCheck(&'static str, String),
    LegacyRoot,
    GroupsRoot,
    Group(String),
    GroupVersion {
        group: String,
        version: String,
    },
    OpenApiV2,
    OpenApiV3Index,
    OpenApiV3(String),
    Resource(ResourcePath),
    /// `/nanokube/v1/secrets-encrypt/<op>` (see `secrets_encrypt.rs`).
    SecretsEncrypt(String),
    /// `/nanokube/v1/node-credentials` (see `node_credentials.rs`).
    NodeCredentials,
    /// `/nanokube/v1/token/<op>` (see `authn/rotate.rs`).
    Token(String),
    Unknown,
}

/// `/api/v1/namespaces/ns/pods/name/status` and friends.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResourcePath {
    pub group: String,
    pub version: String,
    pub namespace: Option<String>,
    pub plural: String,
    pub name: Option<String>,
    pub subresource: Option<String>,
    /// The legacy `/watch/` path prefix was used.
    pub watch_prefix: bool,
}

/// Subresources of namespaces, told apart from resources inside one.
const NAMESPACE_SUBRESOURCES: &[&str] = &["status", "finalize"];

pub fn parse(path: &str) -> Route {
    let path = path.trim_end_matches('/');
    let segs: Vec<&str> = path.split('/').skip(1).collect();
    match segs.as_slice() {
        ["version"] => Route::Version,
        ["metrics"] => Route::Metrics,
        ["healthz"] => Route::Health("healthz"),
        ["livez"] => Route::Health("livez"),
        ["readyz"] => Route::Health("readyz"),
        [kind @ ("healthz" | "livez" | "readyz"), check] => {
            let kind: &'static str = match *kind {
                "healthz" => "healthz",
                "livez" => "livez",
                _ => "readyz",
            };
            Route::HealthCheck(kind, check.to_string())
        }
        ["openapi", "v2"] | ["swagger.json"] => Route::OpenApiV2,
        ["openapi", "v3"] => Route::OpenApiV3Index,
        ["openapi", "v3", rest @ ..] => Route::OpenApiV3(rest.join("/")),
        ["api"] => Route::LegacyRoot,
        ["apis"] => Route::GroupsRoot,
        ["api", version] => Route::GroupVersion {
            group: String::new(),
            version: version.to_string(),
        },
        ["apis", group] => Route::Group(group.to_string()),
        ["apis", group, version] => Route::GroupVersion {
            group: group.to_string(),
            version: version.to_string(),
        },
        ["nanokube", "v1", "secrets-encrypt", op] => Route::SecretsEncrypt(op.to_string()),
        ["nanokube", "v1", "node-credentials"] => Route::NodeCredentials,
        ["nanokube", "v1", "token", op] => Route::Token(op.to_string()),
        ["api", version, rest @ ..] => resource("", version, rest),
        ["apis", group, version, rest @ ..] => resource(group, version, rest),
        _ => Route::Unknown,
    }
}

fn resource(group: &str, version: &str, rest: &[&str]) -> Route {
    let mut p = ResourcePath {
        group: group.to_string(),
        version: version.to_string(),
        ..Default::default()
    };
    let mut rest = rest;
    if let ["watch", tail @ ..] = rest {
        p.watch_prefix = true;
        rest = tail;
    }
    let ok = |s: &&str| !s.is_empty();
    match rest {
        [plural] if ok(plural) => p.plural = plural.to_string(),
        ["namespaces", ns] if ok(ns) => {
            p.plural = "namespaces".into();
            p.name = Some(ns.to_string());
        }
        ["namespaces", ns, sub] if ok(ns) && NAMESPACE_SUBRESOURCES.contains(sub) => {
            p.plural = "namespaces".into();
            p.name = Some(ns.to_string());
            p.subresource = Some(sub.to_string());
        }
        ["namespaces", ns, plural, tail @ ..] if ok(ns) && ok(plural) => {
            p.namespace = Some(ns.to_string());
            p.plural = plural.to_string();
            match tail {
                [] => {}
                [name] if ok(name) => p.name = Some(name.to_string()),
                [name, sub] if ok(name) && ok(sub) => {
                    p.name = Some(name.to_string());
                    p.subresource = Some(sub.to_string());
                }
                _ => return Route::Unknown,
            }
        }
        [plural, name] if ok(plural) && ok(name) => {
            p.plural = plural.to_string();
            p.name = Some(name.to_string());
        }
        [plural, name, sub] if ok(plural) && ok(name) && ok(sub) => {
            p.plural = plural.to_string();
            p.name = Some(name.to_string());
            p.subresource = Some(sub.to_string());
        }
        _ => return Route::Unknown,
    }
    Route::Resource(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(path: &str) -> ResourcePath {
        match parse(path) {
            Route::Resource(p) => p,
            other => panic!("{path}: {other:?}"),
        }
    }

    #[test]
    fn parses_collections_items_and_subresources() {
        let p = res("/api/v1/namespaces/default/pods");
        assert_eq!(
            (p.namespace.as_deref(), p.plural.as_str(), p.name),
            (Some("default"), "pods", None)
        );
        let p = res("/apis/apps/v1/namespaces/x/deployments/web/scale");
        assert_eq!(p.group, "apps");
        assert_eq!(p.subresource.as_deref(), Some("scale"));
        let p = res("/api/v1/nodes/n1/status");
        assert_eq!(
            (p.plural.as_str(), p.name.as_deref()),
            ("nodes", Some("n1"))
        );
    }

    #[test]
    fn namespaces_are_items_or_scopes() {
        let p = res("/api/v1/namespaces/foo");
        assert_eq!(
            (p.plural.as_str(), p.name.as_deref(), p.namespace),
            ("namespaces", Some("foo"), None)
        );
        let p = res("/api/v1/namespaces/foo/finalize");
        assert_eq!(p.subresource.as_deref(), Some("finalize"));
        let p = res("/api/v1/namespaces/foo/configmaps");
        assert_eq!(
            (p.plural.as_str(), p.namespace.as_deref()),
            ("configmaps", Some("foo"))
        );
    }

    #[test]
    fn watch_prefix_and_roots() {
        assert!(res("/api/v1/watch/namespaces/a/pods").watch_prefix);
        assert_eq!(parse("/apis"), Route::GroupsRoot);
        assert_eq!(parse("/apis/apps"), Route::Group("apps".into()));
        assert_eq!(
            parse("/readyz/ping"),
            Route::HealthCheck("readyz", "ping".into())
        );
        assert_eq!(
            parse("/openapi/v3/apis/apps/v1"),
            Route::OpenApiV3("apis/apps/v1".into())
        );
        assert_eq!(parse("/nope"), Route::Unknown);
        assert_eq!(
            parse("/nanokube/v1/secrets-encrypt/rotate"),
            Route::SecretsEncrypt("rotate".into())
        );
        assert_eq!(parse("/api/v1/namespaces/a/pods/b/c/d"), Route::Unknown);
    }
}
