//! One operation of a path item, rendered as Swagger 2.0 or OpenAPI 3.0.
//! What an operation takes and returns follows from its
//! `x-kubernetes-action`, as upstream's installer derives it.

use serde_json::{json, Map, Value};

use super::params::{self, Param};
use super::schemas::Flavor;
use super::table::{DELETE_OPTIONS, PATCH, STATUS, WATCH_EVENT};

const PATCH_TYPES: &[&str] = &[
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
];
const PRODUCES: &[&str] = &["application/json", "application/yaml"];
const PRODUCES_WATCH: &[&str] = &[
    "application/json",
    "application/yaml",
    "application/json;stream=watch",
];

/// What an operation reads or returns.
#[derive(Clone, Copy)]
pub(super) enum Body<'a> {
    Def(&'a str),
    /// A served kind whose definition we do not have.
    Object,
    Text,
}

pub(super) struct Op<'a> {
    pub(super) action: &'static str,
    pub(super) method: &'static str,
    pub(super) id: String,
    /// The object the operation is about: written by post/put, returned
    /// by everything but delete and watch.
    pub(super) payload: Body<'a>,
    pub(super) params: &'static [&'static Param],
    pub(super) produces: &'static [&'static str],
    pub(super) gvk: Option<(&'a str, &'a str, String)>,
}

impl<'a> Op<'a> {
    /// An operation with upstream's defaults for `action`; `id` is the
    /// operation id without its verb prefix (`AppsV1NamespacedDeployment`).
    pub(super) fn new(action: &'static str, id: &str, payload: Body<'a>) -> Self {
        let (method, verb, params, produces) = match action {
            "list" => ("get", "list", params::LIST, PRODUCES_WATCH),
            "watch" | "watchlist" => ("get", "watch", params::LIST, PRODUCES_WATCH),
            "post" => ("post", "create", params::WRITE, PRODUCES),
            "put" => ("put", "replace", params::WRITE, PRODUCES),
            "patch" => ("patch", "patch", params::PATCH, PRODUCES),
            "delete" => ("delete", "delete", params::DELETE, PRODUCES),
            "deletecollection" => ("delete", "delete", params::DELETE_COLLECTION, PRODUCES),
            _ => ("get", "read", params::NONE, PRODUCES),
        };
        Op {
            action,
            method,
            id: format!("{verb}{id}"),
            payload,
            params,
            produces,
            gvk: None,
        }
    }

    fn request(&self) -> Option<Body<'a>> {
        match self.action {
            "post" | "put" => Some(self.payload),
            "patch" => Some(Body::Def(PATCH)),
            "delete" | "deletecollection" => Some(Body::Def(DELETE_OPTIONS)),
            _ => None,
        }
    }

    fn response(&self) -> Body<'a> {
        match self.action {
            "delete" | "deletecollection" => Body::Def(STATUS),
            "watch" | "watchlist" => Body::Def(WATCH_EVENT),
            _ => self.payload,
        }
    }

    /// Success codes besides 200.
    fn also(&self) -> &'static [&'static str] {
        match self.action {
            "post" => &["201", "202"],
            "put" | "patch" => &["201"],
            "delete" => &["202"],
            _ => &[],
        }
    }

    fn description(&self, kind: &str) -> String {
        match self.action {
            "list" => format!("list or watch objects of kind {kind}"),
            "post" => format!("create a {kind}"),
            "deletecollection" => format!("delete collection of {kind}"),
            "get" => format!("read the specified {kind}"),
            "put" => format!("replace the specified {kind}"),
            "patch" => format!("partially update the specified {kind}"),
            "delete" => format!("delete a {kind}"),
            "watch" => format!("watch changes to an object of kind {kind}. deprecated: use the 'watch' parameter with a list operation instead, filtered to a single item with the 'fieldSelector' parameter."),
            "watchlist" => format!("watch individual changes to a list of {kind}. deprecated: use the 'watch' parameter with a list operation instead."),
            _ => format!("connect {} requests to {kind}", self.method.to_uppercase()),
        }
    }

    pub(super) fn render(&self, kind: &str, tag: &str, flavor: Flavor) -> Value {
        let patch = self.method == "patch";
        let mut parameters: Vec<Value> = self
            .params
            .iter()
            .map(|p| params::query(p, flavor))
            .collect();
        let mut out = json!({
            "description": self.description(kind),
            "operationId": self.id,
            "tags": [tag],
            "x-kubernetes-action": self.action,
        });
        let response = schema(self.response(), flavor);
        let codes = std::iter::once("200").chain(self.also().iter().copied());
        let mut responses = Map::new();
        match flavor {
            Flavor::V2 => {
                if let Some(body) = self.request() {
                    let body = json!({
                        "in": "body", "name": "body", "required": true, "schema": schema(body, flavor),
                    });
                    parameters.insert(0, body);
                }
                out["consumes"] = if patch {
                    json!(PATCH_TYPES)
                } else {
                    json!(["*/*"])
                };
                out["produces"] = json!(self.produces);
                out["schemes"] = json!(["https"]);
                for code in codes {
                    let entry = json!({ "description": reason(code), "schema": response });
                    responses.insert(code.into(), entry);
                }
            }
            Flavor::V3 => {
                if let Some(body) = self.request() {
                    let types: &[&str] = if patch { PATCH_TYPES } else { &["*/*"] };
                    let content = content(types, &schema(body, flavor));
                    out["requestBody"] = json!({ "content": content, "required": true });
                }
                for code in codes {
                    let entry = json!({
                        "content": content(self.produces, &response), "description": reason(code),
                    });
                    responses.insert(code.into(), entry);
                }
            }
        }
        responses.insert("401".into(), json!({ "description": "Unauthorized" }));
        out["responses"] = Value::Object(responses);
        if !parameters.is_empty() {
            out["parameters"] = Value::Array(parameters);
        }
        if let Some((group, version, kind)) = &self.gvk {
            out["x-kubernetes-group-version-kind"] =
                json!({ "group": group, "kind": kind, "version": version });
        }
        out
    }
}

fn content(types: &[&str], schema: &Value) -> Map<String, Value> {
    types
        .iter()
        .map(|t| (t.to_string(), json!({ "schema": schema })))
        .collect()
}

fn schema(body: Body, flavor: Flavor) -> Value {
    match body {
        Body::Def(name) => flavor.reference(name),
        Body::Object => json!({ "type": "object" }),
        Body::Text => json!({ "type": "string" }),
    }
}

fn reason(code: &str) -> &'static str {
    match code {
        "201" => "Created",
        "202" => "Accepted",
        _ => "OK",
    }
}
