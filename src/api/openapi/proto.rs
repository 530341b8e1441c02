//! The Swagger 2.0 document in gnostic's `openapi_v2.Document` protobuf
//! form, which client-go asks for (`Accept:
//! application/com.github.proto-openapi.spec.v2@v1.0+protobuf`) and kubectl
//! decodes for validation, explain and its query-parameter checks.
//!
//! Upstream produces it by parsing the JSON document with gnostic's
//! compiler and marshalling the result; this encodes our JSON document
//! straight into the same message shapes (field numbers from gnostic's
//! `OpenAPIv2.proto`). Where gnostic picks between alternatives (body or
//! non-body parameter, `$ref` or inline parameter, schema `items` as one
//! schema or many) it does so by the same keys we look at here. Keys gnostic
//! does not know are dropped; vendor extensions (`x-*`) become `NamedAny`
//! with the value as YAML text, which is where kube-openapi's readers look.

use serde_json::{Map, Value};

use super::proto_wire::Msg;

fn object(value: &Value) -> Option<&Map<String, Value>> {
    value.as_object()
}

/// Encodes a Swagger 2.0 document as `openapi_v2.Document`.
pub(super) fn document(doc: &Value) -> Vec<u8> {
    let Some(d) = object(doc) else {
        return Vec::new();
    };
    let mut msg = Msg::default();
    msg.string(1, d.get("swagger"));
    if let Some(info) = d.get("info").and_then(object) {
        let mut m = Msg::default();
        m.string(1, info.get("title"));
        m.string(2, info.get("version"));
        m.string(3, info.get("description"));
        m.string(4, info.get("termsOfService"));
        m.extensions(7, info);
        msg.message(2, m);
    }
    msg.string(3, d.get("host"));
    msg.string(4, d.get("basePath"));
    msg.strings(5, d.get("schemes"));
    msg.strings(6, d.get("consumes"));
    msg.strings(7, d.get("produces"));
    if let Some(paths) = d.get("paths").and_then(object) {
        let mut m = Msg::default();
        m.extensions(1, paths);
        for (path, item) in paths.iter().filter(|(k, _)| !k.starts_with("x-")) {
            m.message(2, named(path, path_item(item)));
        }
        msg.message(8, m);
    }
    if let Some(defs) = d.get("definitions").and_then(object) {
        let mut m = Msg::default();
        for (name, def) in defs {
            m.message(1, named(name, schema(def)));
        }
        msg.message(9, m);
    }
    for requirement in d
        .get("security")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        msg.message(12, security_requirement(requirement));
    }
    if let Some(defs) = d.get("securityDefinitions").and_then(object) {
        let mut m = Msg::default();
        for (name, def) in defs {
            m.message(1, named(name, security_definition(def)));
        }
        msg.message(13, m);
    }
    msg.extensions(16, d);
    msg.0
}

/// The `Named*` pair messages gnostic uses for maps: name 1, value 2.
fn named(name: &str, value: Msg) -> Msg {
    let mut msg = Msg::default();
    msg.bytes(1, name.as_bytes());
    msg.message(2, value);
    msg
}

fn path_item(item: &Value) -> Msg {
    let mut msg = Msg::default();
    let Some(p) = object(item) else {
        return msg;
    };
    msg.string(1, p.get("$ref"));
    let methods = [
        ("get", 2),
        ("put", 3),
        ("post", 4),
        ("delete", 5),
        ("options", 6),
        ("head", 7),
        ("patch", 8),
    ];
    for (method, field) in methods {
        if let Some(op) = p.get(method) {
            msg.message(field, operation(op));
        }
    }
    for param in p
        .get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        msg.message(9, parameters_item(param));
    }
    msg.extensions(10, p);
    msg
}

fn operation(op: &Value) -> Msg {
    let mut msg = Msg::default();
    let Some(o) = object(op) else {
        return msg;
    };
    msg.strings(1, o.get("tags"));
    msg.string(2, o.get("summary"));
    msg.string(3, o.get("description"));
    msg.string(5, o.get("operationId"));
    msg.strings(6, o.get("produces"));
    msg.strings(7, o.get("consumes"));
    for param in o
        .get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        msg.message(8, parameters_item(param));
    }
    if let Some(responses) = o.get("responses").and_then(object) {
        let mut m = Msg::default();
        for (code, response) in responses.iter().filter(|(k, _)| !k.starts_with("x-")) {
            let mut value = Msg::default();
            match response.get("$ref") {
                Some(reference) => value.message(2, json_reference(reference, response)),
                None => value.message(1, response_msg(response)),
            }
            m.message(1, named(code, value));
        }
        m.extensions(2, responses);
        msg.message(9, m);
    }
    msg.strings(10, o.get("schemes"));
    msg.bool(11, o.get("deprecated"));
    for requirement in o
        .get("security")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        msg.message(12, security_requirement(requirement));
    }
    msg.extensions(13, o);
    msg
}

fn json_reference(reference: &Value, obj: &Value) -> Msg {
    let mut msg = Msg::default();
    msg.string(1, Some(reference));
    msg.string(2, obj.get("description"));
    msg
}

fn response_msg(response: &Value) -> Msg {
    let mut msg = Msg::default();
    let Some(r) = object(response) else {
        return msg;
    };
    msg.string(1, r.get("description"));
    if let Some(s) = r.get("schema") {
        // SchemaItem: a Schema (field 1); file schemas are not used here.
        let mut item = Msg::default();
        item.message(1, schema(s));
        msg.message(2, item);
    }
    msg.extensions(5, r);
    msg
}

/// `ParametersItem`: a `$ref` (JsonReference, 2) or a Parameter (1), which
/// is a BodyParameter (1) when `in: body` and a NonBodyParameter (2)
/// otherwise, split again by location.
fn parameters_item(param: &Value) -> Msg {
    let mut msg = Msg::default();
    let Some(p) = object(param) else {
        return msg;
    };
    if let Some(reference) = p.get("$ref") {
        msg.message(2, json_reference(reference, param));
        return msg;
    }
    let mut parameter = Msg::default();
    let location = p.get("in").and_then(Value::as_str).unwrap_or_default();
    if location == "body" {
        let mut body = Msg::default();
        body.string(1, p.get("description"));
        body.string(2, p.get("name"));
        body.string(3, p.get("in"));
        body.bool(4, p.get("required"));
        if let Some(s) = p.get("schema") {
            body.message(5, schema(s));
        }
        body.extensions(6, p);
        parameter.message(1, body);
    } else {
        let (field, has_allow_empty) = match location {
            "header" => (1, false),
            "formData" => (2, true),
            "path" => (4, false),
            _ => (3, true),
        };
        let mut sub = Msg::default();
        sub.bool(1, p.get("required"));
        sub.string(2, p.get("in"));
        sub.string(3, p.get("description"));
        sub.string(4, p.get("name"));
        let base = if has_allow_empty {
            sub.bool(5, p.get("allowEmptyValue"));
            6
        } else {
            5
        };
        primitive_fields(&mut sub, p, base);
        let mut non_body = Msg::default();
        non_body.message(field, sub);
        parameter.message(2, non_body);
    }
    msg.message(1, parameter);
    msg
}

/// The run of fields the parameter sub-schemas and `PrimitivesItems` share,
/// numbered from `base` (`type`) to `base + 17` (vendor extensions).
fn primitive_fields(msg: &mut Msg, p: &Map<String, Value>, base: u32) {
    msg.string(base, p.get("type"));
    msg.string(base + 1, p.get("format"));
    if let Some(items) = p.get("items").and_then(object) {
        let mut m = Msg::default();
        primitive_fields(&mut m, items, 1);
        msg.message(base + 2, m);
    }
    msg.string(base + 3, p.get("collectionFormat"));
    msg.any(base + 4, p.get("default"));
    msg.double(base + 5, p.get("maximum"));
    msg.bool(base + 6, p.get("exclusiveMaximum"));
    msg.double(base + 7, p.get("minimum"));
    msg.bool(base + 8, p.get("exclusiveMinimum"));
    msg.int64(base + 9, p.get("maxLength"));
    msg.int64(base + 10, p.get("minLength"));
    msg.string(base + 11, p.get("pattern"));
    msg.int64(base + 12, p.get("maxItems"));
    msg.int64(base + 13, p.get("minItems"));
    msg.bool(base + 14, p.get("uniqueItems"));
    msg.anys(base + 15, p.get("enum"));
    msg.double(base + 16, p.get("multipleOf"));
    msg.extensions(base + 17, p);
}

fn schema(value: &Value) -> Msg {
    let mut msg = Msg::default();
    let Some(s) = object(value) else {
        return msg;
    };
    msg.string(1, s.get("$ref"));
    msg.string(2, s.get("format"));
    msg.string(3, s.get("title"));
    msg.string(4, s.get("description"));
    msg.any(5, s.get("default"));
    msg.double(6, s.get("multipleOf"));
    msg.double(7, s.get("maximum"));
    msg.bool(8, s.get("exclusiveMaximum"));
    msg.double(9, s.get("minimum"));
    msg.bool(10, s.get("exclusiveMinimum"));
    msg.int64(11, s.get("maxLength"));
    msg.int64(12, s.get("minLength"));
    msg.string(13, s.get("pattern"));
    msg.int64(14, s.get("maxItems"));
    msg.int64(15, s.get("minItems"));
    msg.bool(16, s.get("uniqueItems"));
    msg.int64(17, s.get("maxProperties"));
    msg.int64(18, s.get("minProperties"));
    msg.strings(19, s.get("required"));
    msg.anys(20, s.get("enum"));
    match s.get("additionalProperties") {
        Some(Value::Bool(allowed)) => {
            let mut m = Msg::default();
            m.bool_always(2, *allowed);
            msg.message(21, m);
        }
        Some(sub @ Value::Object(_)) => {
            let mut m = Msg::default();
            m.message(1, schema(sub));
            msg.message(21, m);
        }
        _ => {}
    }
    match s.get("type") {
        Some(Value::String(t)) => {
            let mut m = Msg::default();
            m.bytes(1, t.as_bytes());
            msg.message(22, m);
        }
        Some(types @ Value::Array(_)) => {
            let mut m = Msg::default();
            m.strings(1, Some(types));
            msg.message(22, m);
        }
        _ => {}
    }
    match s.get("items") {
        Some(one @ Value::Object(_)) => {
            let mut m = Msg::default();
            m.message(1, schema(one));
            msg.message(23, m);
        }
        Some(Value::Array(many)) => {
            let mut m = Msg::default();
            for one in many {
                m.message(1, schema(one));
            }
            msg.message(23, m);
        }
        _ => {}
    }
    for sub in s
        .get("allOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        msg.message(24, schema(sub));
    }
    if let Some(properties) = s.get("properties").and_then(object) {
        // Present even when empty: kube-openapi tells a struct with no
        // fields from a map by whether `properties` is set at all.
        let mut m = Msg::default();
        for (name, property) in properties {
            m.message(1, named(name, schema(property)));
        }
        msg.message(25, m);
    }
    msg.string(26, s.get("discriminator"));
    msg.bool(27, s.get("readOnly"));
    msg.any(30, s.get("example"));
    msg.extensions(31, s);
    msg
}

/// `{"BearerToken": []}` -> SecurityRequirement of NamedStringArray.
fn security_requirement(value: &Value) -> Msg {
    let mut msg = Msg::default();
    for (name, scopes) in value.as_object().into_iter().flatten() {
        let mut array = Msg::default();
        array.strings(1, Some(scopes));
        msg.message(1, named(name, array));
    }
    msg
}

/// SecurityDefinitionsItem: basic (1) or apiKey (2); the OAuth2 flows are
/// not something this server offers.
fn security_definition(value: &Value) -> Msg {
    let mut msg = Msg::default();
    let Some(d) = object(value) else {
        return msg;
    };
    match d.get("type").and_then(Value::as_str) {
        Some("basic") => {
            let mut m = Msg::default();
            m.string(1, d.get("type"));
            m.string(2, d.get("description"));
            m.extensions(3, d);
            msg.message(1, m);
        }
        Some("apiKey") => {
            let mut m = Msg::default();
            m.string(1, d.get("type"));
            m.string(2, d.get("name"));
            m.string(3, d.get("in"));
            m.string(4, d.get("description"));
            m.extensions(5, d);
            msg.message(2, m);
        }
        _ => {}
    }
    msg
}
