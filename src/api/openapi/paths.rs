//! The `paths` of a document: where each served kind's operations live,
//! with upstream's operation ids and tags. kubectl finds a resource's kind
//! through the `x-kubernetes-group-version-kind` of these operations
//! (explain), and server-side field validation through the parameters of
//! the PATCH operation.

use serde_json::{Map, Value};

use super::operation::{Body, Op};
use super::params;
use super::schemas::Flavor;
use super::table;
use super::ServedKind;

/// Adds all paths of `kind` to `paths`.
pub(super) fn add(paths: &mut Map<String, Value>, kind: &ServedKind, flavor: Flavor) {
    add_with(
        paths,
        kind,
        flavor,
        super::definition_known(kind.definition),
    );
}

/// [`add`] for a kind whose definition the document carries itself
/// (custom resources), or not (`known` false: bodies are plain objects).
pub(super) fn add_with(
    paths: &mut Map<String, Value>,
    kind: &ServedKind,
    flavor: Flavor,
    known: bool,
) {
    let list_name = table::list_name(kind.definition);
    let (own, list) = if known {
        (Body::Def(kind.definition), Body::Def(list_name.as_str()))
    } else {
        (Body::Object, Body::Object)
    };
    let root = if kind.group.is_empty() {
        format!("/api/{}", kind.version)
    } else {
        format!("/apis/{}/{}", kind.group, kind.version)
    };
    let ns = if kind.namespaced {
        "/namespaces/{namespace}"
    } else {
        ""
    };
    let gv = gv_camel(kind.group, kind.version);
    let scope = if kind.namespaced { "Namespaced" } else { "" };
    let k = kind.kind;
    let plural = kind.plural;
    let has = |verb: &str| kind.verbs.contains(&verb);
    let item = PathItem {
        kind,
        tag: tag(kind.group, kind.version),
        flavor,
    };
    // Operation ids: verb + `AppsV1` + `Namespaced` + `Deployment` + suffix.
    let op = |action, payload, suffix: &str| {
        let mut op = Op::new(action, &format!("{gv}{scope}{k}{suffix}"), payload);
        op.gvk = Some((kind.group, kind.version, k.to_owned()));
        op
    };

    let collection = format!("{root}{ns}/{plural}");
    let mut ops = Vec::new();
    if has("list") {
        ops.push(op("list", list, ""));
    }
    if has("create") {
        ops.push(op("post", own, ""));
    }
    if has("deletecollection") {
        let mut delete = op("deletecollection", own, "");
        delete.id = format!("delete{gv}Collection{scope}{k}");
        ops.push(delete);
    }
    item.insert(paths, &collection, false, ops);

    let named = format!("{collection}/{{name}}");
    let verbs = [
        ("get", "get"),
        ("update", "put"),
        ("patch", "patch"),
        ("delete", "delete"),
    ];
    let ops = verbs
        .into_iter()
        .filter(|(verb, _)| has(verb))
        .map(|(_, action)| op(action, own, ""))
        .collect();
    item.insert(paths, &named, true, ops);

    if kind.namespaced && has("list") {
        let mut all = op("list", list, "");
        all.id = format!("list{gv}{k}ForAllNamespaces");
        item.insert(paths, &format!("{root}/{plural}"), false, vec![all]);
    }
    if has("watch") {
        let list_path = format!("{root}/watch{ns}/{plural}");
        item.insert(paths, &list_path, false, vec![op("watchlist", own, "List")]);
        let one = format!("{list_path}/{{name}}");
        item.insert(paths, &one, true, vec![op("watch", own, "")]);
        if kind.namespaced {
            let mut all = op("watchlist", own, "");
            all.id = format!("watch{gv}{k}ListForAllNamespaces");
            item.insert(paths, &format!("{root}/watch/{plural}"), false, vec![all]);
        }
    }

    for sub in kind.subresources {
        let suffix = capitalize(sub);
        let body = table::subresource_body(sub);
        let payload = body.map_or(own, Body::Def);
        let mut ops = match *sub {
            "status" | "scale" | "ephemeralcontainers" | "resize" => ["get", "put", "patch"]
                .into_iter()
                .map(|action| op(action, payload, &suffix))
                .collect(),
            "finalize" => vec![op("put", own, &suffix)],
            "eviction" | "binding" | "token" => vec![op("post", payload, &suffix)],
            "log" => {
                let mut log = op("get", Body::Text, &suffix);
                log.params = params::LOG;
                log.produces = &["text/plain"];
                vec![log]
            }
            "exec" | "attach" | "portforward" | "proxy" => ["get", "post"]
                .into_iter()
                .map(|method| {
                    let mut connect = op("connect", Body::Text, &suffix);
                    connect.method = method;
                    connect.id = format!("connect{gv}{}{scope}{k}{suffix}", capitalize(method));
                    connect.produces = &["*/*"];
                    connect.gvk = Some(("", "v1", format!("{k}{}Options", connect_kind(sub))));
                    connect
                })
                .collect(),
            _ => vec![op("get", Body::Object, &suffix)],
        };
        // A subresource with a body of its own (scale, eviction, ...) is
        // an operation on that kind.
        if let Some((group, version, gvk_kind)) = body.and_then(table::intrinsic_gvk) {
            for op in &mut ops {
                op.gvk = Some((group, version, gvk_kind.to_owned()));
            }
        }
        item.insert(paths, &format!("{named}/{sub}"), true, ops);
    }
}

struct PathItem<'a> {
    kind: &'a ServedKind,
    tag: String,
    flavor: Flavor,
}

impl PathItem<'_> {
    /// Writes one path item: its operations plus the path-level parameters.
    fn insert(&self, paths: &mut Map<String, Value>, path: &str, named: bool, ops: Vec<Op>) {
        if ops.is_empty() {
            return;
        }
        let mut path_params = Vec::new();
        if named {
            path_params.push(params::path("name", self.kind.kind, self.flavor));
        }
        if path.contains("{namespace}") {
            path_params.push(params::path("namespace", self.kind.kind, self.flavor));
        }
        path_params.push(params::query(&params::PRETTY, self.flavor));
        let mut item = Map::new();
        item.insert("parameters".into(), Value::Array(path_params));
        for op in ops {
            let rendered = op.render(self.kind.kind, &self.tag, self.flavor);
            item.insert(op.method.into(), rendered);
        }
        paths.insert(path.to_owned(), Value::Object(item));
    }
}

fn capitalize(word: &str) -> String {
    let mut chars = word.chars();
    chars.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(chars).collect()
    })
}

fn connect_kind(sub: &str) -> &'static str {
    match sub {
        "exec" => "Exec",
        "attach" => "Attach",
        "portforward" => "PortForward",
        _ => "Proxy",
    }
}

/// `rbac.authorization.k8s.io` -> `rbacAuthorization`, `` -> `core`.
fn group_camel(group: &str) -> String {
    if group.is_empty() {
        return "core".into();
    }
    let short = group.strip_suffix(".k8s.io").unwrap_or(group);
    let mut parts = short.split(['.', '-']);
    let first = parts.next().unwrap_or_default().to_owned();
    parts.fold(first, |acc, part| acc + &capitalize(part))
}

/// Operation-id infix: `AppsV1`, `CoreV1`, `RbacAuthorizationV1`.
fn gv_camel(group: &str, version: &str) -> String {
    format!("{}{}", capitalize(&group_camel(group)), capitalize(version))
}

/// Operation tag: `apps_v1`, `core_v1`, `rbacAuthorization_v1`.
fn tag(group: &str, version: &str) -> String {
    format!("{}_{version}", group_camel(group))
}
