//! REST handlers of resources: method + path → verb of the API layer.

use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use http::{Method, Response};
use serde_json::{json, Value};

use super::codec::{self, Body, Output};
use super::query::Query;
use super::route::ResourcePath;
use super::watch;
use crate::api::authz::UserInfo;
use crate::api::patch::PatchType;
use crate::api::{table, Api, ApiError, ListResult, Resource};

/// The parts of a request a resource handler needs.
pub struct Call<'a> {
    pub method: &'a Method,
    pub path: ResourcePath,
    pub query: Query,
    pub content_type: Option<&'a str>,
    pub output: Output,
    pub body: Bytes,
    /// The authenticated user, for admission (`WriteOptions::user`).
    pub user: Option<Arc<UserInfo>>,
    /// Filled by admission, read back into the audit event.
    pub audit_annotations: crate::api::AuditAnnotations,
    /// The User-Agent header: the default field manager.
    pub user_agent: Option<String>,
}

/// The media type of server-side apply patches.
const APPLY_PATCH: &str = "application/apply-patch+yaml";

fn is_streaming(sub: &str) -> bool {
    matches!(sub, "log" | "exec" | "attach" | "portforward" | "proxy")
}

pub async fn handle(api: &Arc<Api>, call: Call<'_>) -> Result<Response<Body>, ApiError> {
    let warnings = Arc::new(std::sync::Mutex::new(Vec::new()));
    let watching = call.query.is_watch() || call.path.watch_prefix;
    let verb = verb_label(call.method, call.path.name.is_some(), watching);
    let resource = call.path.plural.clone();
    let started = std::time::Instant::now();
    let result = dispatch(api, call, warnings.clone()).await;
    if verb != "WATCH" {
        crate::metrics::observe(
            verb,
            &resource,
            crate::metrics::Origin::Http,
            started.elapsed(),
        );
    }
    let mut resp = result?;
    let list = warnings.lock().map(|w| w.clone()).unwrap_or_default();
    for w in list {
        // Go's %q of the message, as upstream's warning headers.
        let quoted = serde_json::to_string(&w).unwrap_or_default();
        if let Ok(v) = http::HeaderValue::from_str(&format!("299 - {quoted}")) {
            resp.headers_mut().append(http::header::WARNING, v);
        }
    }
    Ok(resp)
}

/// The verb label of upstream's request metrics.
fn verb_label(method: &Method, named: bool, watching: bool) -> &'static str {
    match (method, named) {
        _ if watching => "WATCH",
        (&Method::GET, false) => "LIST",
        (&Method::GET, true) => "GET",
        (&Method::POST, _) => "POST",
        (&Method::PUT, _) => "PUT",
        (&Method::PATCH, _) => "PATCH",
        (&Method::DELETE, false) => "DELETECOLLECTION",
        (&Method::DELETE, true) => "DELETE",
        _ => "OTHER",
    }
}

async fn dispatch(
    api: &Arc<Api>,
    call: Call<'_>,
    warnings: Arc<std::sync::Mutex<Vec<String>>>,
) -> Result<Response<Body>, ApiError> {
    let p = &call.path;
    let r = api
        .registry()
        .find(&p.group, &p.version, &p.plural)
        .ok_or(ApiError::NoRoute)?;
    if p.namespace.is_some() && !r.namespaced {
        return Err(ApiError::NoRoute);
    }
    let ns = p.namespace.as_deref();
    let sub = p.subresource.as_deref();
    if let Some(s) = sub {
        if r.subresource(s).is_none() {
            return Err(ApiError::NoRoute);
        }
        if is_streaming(s) {
            return Err(ApiError::BadRequest(format!(
                "{s} for pods is served by the node agent, which is not running in this server"
            )));
        }
    }
    let output = match (call.output, call.query.get("includeObject")) {
        (Output::Table(_), Some(v)) => {
            Output::Table(table::IncludeObject::parse(v).ok_or_else(|| {
                ApiError::BadRequest(format!("includeObject: unsupported value {v:?}"))
            })?)
        }
        (o, _) => o,
    };
    let watching = call.query.is_watch() || p.watch_prefix;
    match (call.method, p.name.as_deref()) {
        (&Method::GET, None) if watching => match api.watch(r, ns, call.query.watch()?).await {
            Ok(stream) => Ok(watch::respond(stream, output)),
            // Upstream starts the stream and sends the expiry as its only event.
            Err(e @ ApiError::Gone(_)) => Ok(watch::error_event(&e)),
            Err(e) => Err(e),
        },
        (&Method::GET, None) => {
            let list = api.list(r, ns, &call.query.list()?).await?;
            Ok(list_response(r, list, output))
        }
        (&Method::GET, Some(name)) if watching => {
            // A watch of one object: a field-selected watch on its name.
            let mut q = call.query.watch()?;
            q.field_selector =
                crate::api::selector::FieldSelector::parse(&format!("metadata.name={name}"))
                    .map_err(|e| ApiError::BadRequest(e.to_string()))?;
            let stream = api.watch(r, ns, q).await?;
            Ok(watch::respond(stream, output))
        }
        (&Method::GET, Some(name)) => {
            let obj = match sub {
                Some("scale") => Arc::new(api.get_scale(r, ns, name).await?),
                _ => api.get(r, ns, name).await?,
            };
            Ok(object_response(r, 200, &obj, output))
        }
        (&Method::POST, None) => {
            let body = codec::decode(call.content_type, &call.body)?;
            let mut opts = call.query.write()?;
            opts.warnings = warnings.clone();
            opts.user = call.user.clone();
            opts.audit_annotations = call.audit_annotations.clone();
            opts.user_agent = call.user_agent.clone();
            if r.plural == "bindings" {
                let name = crate::api::meta_name(&body).to_string();
                let pods = api
                    .registry()
                    .find("", "v1", "pods")
                    .ok_or(ApiError::NoRoute)?;
                let out = api.bind(pods, ns, &name, &body, &opts).await?;
                return Ok(codec::respond(201, &out, Output::Json));
            }
            let created = api.create(r, ns, body, &opts).await?;
            Ok(object_response(r, 201, &created, output))
        }
        (&Method::POST, Some(name)) => {
            let body = codec::decode(call.content_type, &call.body)?;
            let mut opts = call.query.write()?;
            opts.warnings = warnings.clone();
            opts.user = call.user.clone();
            opts.audit_annotations = call.audit_annotations.clone();
            opts.user_agent = call.user_agent.clone();
            if let Some(s @ ("eviction" | "token")) = sub {
                api.admit_subresource_create(r, s, ns, name, &body, call.user.as_deref())
                    .await?;
            }
            let out = match sub {
                Some("binding") => api.bind(r, ns, name, &body, &opts).await?,
                Some("eviction") => api.evict(r, ns, name, &body).await?,
                Some("token") => api.create_token(r, ns, name, &body).await?,
                _ => return Err(ApiError::MethodNotAllowed),
            };
            Ok(codec::respond(201, &out, Output::Json))
        }
        (&Method::PUT, Some(name)) => {
            let body = codec::decode(call.content_type, &call.body)?;
            let mut opts = call.query.write()?;
            opts.warnings = warnings.clone();
            opts.user = call.user.clone();
            opts.audit_annotations = call.audit_annotations.clone();
            opts.user_agent = call.user_agent.clone();
            let out = match sub {
                Some("scale") => api.update_scale(r, ns, name, body, &opts).await?,
                Some("finalize") => api.finalize_namespace(r, name, &body, &opts).await?,
                Some("ephemeralcontainers") => {
                    api.update_ephemeral_containers(r, ns, name, body, &opts)
                        .await?
                }
                _ => api.update(r, ns, name, body, sub, &opts).await?,
            };
            Ok(object_response(r, 200, &out, output))
        }
        (&Method::PATCH, Some(name)) => {
            let ct = call.content_type.unwrap_or("");
            let essence = ct.split(';').next().unwrap_or_default().trim();
            if essence.eq_ignore_ascii_case(APPLY_PATCH) {
                let mut opts = call.query.write()?;
                opts.warnings = warnings.clone();
                opts.user = call.user.clone();
                opts.audit_annotations = call.audit_annotations.clone();
                opts.user_agent = call.user_agent.clone();
                let (out, created) = api.apply_patch(r, ns, name, &call.body, sub, &opts).await?;
                return Ok(object_response(
                    r,
                    if created { 201 } else { 200 },
                    &out,
                    output,
                ));
            }
            let patch_type = PatchType::from_content_type(ct).ok_or_else(|| {
                ApiError::UnsupportedMediaType(format!(
                    "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {ct:?})"
                ))
            })?;
            let mut opts = call.query.write()?;
            opts.warnings = warnings.clone();
            opts.user = call.user.clone();
            opts.audit_annotations = call.audit_annotations.clone();
            opts.user_agent = call.user_agent.clone();
            let out = api
                .patch(r, ns, name, patch_type, &call.body, sub, &opts)
                .await?;
            Ok(object_response(r, 200, &out, output))
        }
        (&Method::DELETE, Some(name)) => {
            let body = if call.body.iter().all(u8::is_ascii_whitespace) {
                None
            } else {
                Some(codec::decode(call.content_type, &call.body)?)
            };
            let mut opts = call.query.delete(body.as_ref())?;
            opts.user = call.user.clone();
            opts.warnings = warnings.clone();
            let out = api.delete(r, ns, name, &opts).await?.into_response(r);
            Ok(codec::respond(200, &out, Output::Json))
        }
        (&Method::DELETE, None) => {
            let body = if call.body.iter().all(u8::is_ascii_whitespace) {
                None
            } else {
                Some(codec::decode(call.content_type, &call.body)?)
            };
            let mut opts = call.query.delete(body.as_ref())?;
            opts.user = call.user.clone();
            opts.warnings = warnings.clone();
            let items = api
                .delete_collection(r, ns, &call.query.list()?, &opts)
                .await?;
            let list = json!({"kind": r.list_kind(), "apiVersion": r.api_version(), "metadata": {}, "items": items});
            Ok(codec::respond(200, &list, Output::Json))
        }
        _ => Err(ApiError::MethodNotAllowed),
    }
}

fn partial_metadata(obj: &Value) -> Value {
    json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
           "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({}))})
}

/// One object in the form asked for.
pub fn object_response(r: &Resource, code: u16, obj: &Value, output: Output) -> Response<Body> {
    match output {
        Output::Table(include) if obj.get("kind").and_then(Value::as_str) == Some(r.kind) => {
            let meta = json!({"resourceVersion": obj.get("metadata").and_then(|m| m.get("resourceVersion")).cloned().unwrap_or(Value::Null)});
            let t = table::table_of(r, [obj], include, meta, SystemTime::now());
            codec::respond(code, &t, Output::Json)
        }
        Output::PartialMetadata => codec::respond(code, &partial_metadata(obj), Output::Json),
        Output::Table(_) => codec::respond(code, obj, Output::Json),
        other => codec::respond(code, obj, other),
    }
}

fn list_meta(list: &ListResult) -> Value {
    let mut m = json!({"resourceVersion": list.resource_version.to_string()});
    if let Some(c) = &list.continue_token {
        m["continue"] = c.clone().into();
    }
    if let Some(n) = list.remaining {
        m["remainingItemCount"] = n.into();
    }
    m
}

/// A list in the form asked for; JSON lists are written item by item so
/// large lists are never copied into one tree.
pub fn list_response(r: &Resource, list: ListResult, output: Output) -> Response<Body> {
    let meta = list_meta(&list);
    match output {
        Output::Table(include) => {
            let t = table::table_of(
                r,
                list.items.iter().map(|i| i.as_ref()),
                include,
                meta,
                SystemTime::now(),
            );
            codec::respond(200, &t, Output::Json)
        }
        Output::PartialMetadata => {
            let items: Vec<Value> = list.items.iter().map(|i| partial_metadata(i)).collect();
            let v = json!({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": meta, "items": items});
            codec::respond(200, &v, Output::Json)
        }
        Output::Yaml => {
            let items: Vec<&Value> = list.items.iter().map(|i| i.as_ref()).collect();
            let v = json!({"kind": r.list_kind(), "apiVersion": r.api_version(), "metadata": meta, "items": items});
            codec::respond(200, &v, Output::Yaml)
        }
        Output::Json => {
            let mut buf = Vec::with_capacity(64 + list.items.len() * 512);
            buf.extend_from_slice(b"{\"kind\":");
            write_json(&mut buf, &Value::from(r.list_kind()));
            buf.extend_from_slice(b",\"apiVersion\":");
            write_json(&mut buf, &Value::from(r.api_version()));
            buf.extend_from_slice(b",\"metadata\":");
            write_json(&mut buf, &meta);
            buf.extend_from_slice(b",\"items\":[");
            for (i, item) in list.items.iter().enumerate() {
                if i > 0 {
                    buf.push(b',');
                }
                write_json(&mut buf, item);
            }
            buf.extend_from_slice(b"]}");
            codec::raw(200, Bytes::from(buf), "application/json")
        }
    }
}

fn write_json(buf: &mut Vec<u8>, v: &Value) {
    // Serializing a Value into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *buf, v);
}
