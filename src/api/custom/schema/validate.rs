//! Value validation as kube-openapi's `SchemaValidator` does it, with its
//! errors converted to field causes as apiextensions' validation does,
//! then the embedded-resource and list-type checks of the CR strategy.
//!
//! kube-openapi names a value by a path string (`spec.items[0].name`,
//! additionalProperties keys joined with dots); causes use it without its
//! leading dot, and `<nil>` (upstream's nil field path) when it is empty.
//! Its composite errors (anyOf, oneOf, allOf, not) carry no path at all.

use serde_json::{json, Map, Value};

use super::formats;
use super::gofmt::{
    go_float, invalid, invalid_num, not_supported, too_long, too_many, type_invalid, Num,
};
use super::resource::{embedded, list_types};
use super::{Additional, Structural};
use crate::api::validation::{go_quote, required, FieldCause};

const IN: &str = "body";

pub(super) fn validate(root: &Structural, obj: &Value) -> Vec<FieldCause> {
    let mut errs = Vec::new();
    value(root, obj, None, "", &mut errs);
    embedded(root, obj, "", &mut errs);
    list_types(root, obj, "", &mut errs);
    dedup(errs)
}

/// An update: schema errors on values equal to their correlated old value
/// are dropped (upstream's validation ratcheting, GA in v1.33); list-type
/// checks run only when the old object passed them.
pub(super) fn validate_update(root: &Structural, obj: &Value, old: &Value) -> Vec<FieldCause> {
    let mut errs = Vec::new();
    value(root, obj, Some(old), "", &mut errs);
    embedded(root, obj, "", &mut errs);
    let mut old_lists = Vec::new();
    list_types(root, old, "", &mut old_lists);
    if old_lists.is_empty() {
        list_types(root, obj, "", &mut errs);
    }
    dedup(errs)
}

/// A status update (upstream `statusStrategy.ValidateUpdate`): the status
/// schema alone validates `status`, with `status` as the base path (so
/// messages name `replicas in body`, fields `status.replicas`), ratcheted;
/// list types as on updates; no embedded-resource checks.
pub(super) fn validate_status_update(
    root: &Structural,
    obj: &Value,
    old: &Value,
) -> Vec<FieldCause> {
    let mut errs = Vec::new();
    if let (Some(schema), Some(status)) = (root.properties.get("status"), obj.get("status")) {
        let mut causes = Vec::new();
        value(schema, status, old.get("status"), "", &mut causes);
        errs.extend(causes.into_iter().map(|mut c| {
            c.field = if c.field == "<nil>" {
                "status".into()
            } else {
                format!("status.{}", c.field)
            };
            c
        }));
    }
    let mut lists = Vec::new();
    list_types(root, obj, "", &mut lists);
    if !lists.is_empty() {
        let mut old_lists = Vec::new();
        list_types(root, old, "", &mut old_lists);
        if old_lists.is_empty() {
            errs.extend(lists);
        }
    }
    dedup(errs)
}

/// kube-openapi's causes alone, for a value at the root of `s`.
pub(super) fn schema_causes(s: &Structural, v: &Value) -> Vec<FieldCause> {
    let mut errs = Vec::new();
    value(s, v, None, "", &mut errs);
    dedup(errs)
}

/// Embedded-resource causes for a value at `path` (non-empty), `s` itself
/// included when it is an embedded resource.
pub(super) fn embedded_causes(s: &Structural, v: &Value, path: &str) -> Vec<FieldCause> {
    let mut errs = Vec::new();
    embedded(s, v, path, &mut errs);
    errs
}

/// kube-openapi reports an error text once per result.
fn dedup(errs: Vec<FieldCause>) -> Vec<FieldCause> {
    let mut out: Vec<FieldCause> = Vec::with_capacity(errs.len());
    for e in errs {
        if !out.contains(&e) {
            out.push(e);
        }
    }
    out
}

/// The cause's field for a kube-openapi name.
fn field(name: &str) -> String {
    let f = name.strip_prefix('.').unwrap_or(name);
    if name.is_empty() || name == "." {
        "<nil>".into()
    } else {
        f.to_string()
    }
}

/// A composite error: upstream converts it with a nil path and "" value.
fn composite(msg: String) -> FieldCause {
    invalid("<nil>", &json!(""), &msg)
}

/// `<name> in body must be of type <want>: "<got>"`, a TypeInvalid whose
/// value is `got`.
fn type_error(name: &str, want: &str, got: &str) -> FieldCause {
    let msg = format!("{name} in {IN} must be of type {want}: {}", go_quote(got));
    type_invalid(&field(name), &json!(got), &msg)
}

/// Go's kind of a decoded value as the type validator names it:
/// (JSON type, format).
fn schema_info(v: &Value) -> (&'static str, &'static str) {
    match v {
        Value::Bool(_) => ("boolean", ""),
        Value::String(_) => ("string", ""),
        Value::Number(n) => match Num::of(n) {
            Num::Int(_) => ("integer", "int64"),
            Num::Float(_) => ("number", "float64"),
        },
        Value::Array(_) => ("array", ""),
        Value::Object(_) => ("object", ""),
        Value::Null => ("", ""),
    }
}

/// swag `IsFloat64AJSONInteger`.
fn is_json_integer(f: f64) -> bool {
    const MAX: f64 = 9_007_199_254_740_991.0;
    f.is_finite() && (-MAX..=MAX).contains(&f) && f.fract() == 0.0
}

fn types(s: &Structural) -> Vec<&str> {
    if s.int_or_string {
        vec!["integer", "string"]
    } else if s.type_.is_empty() {
        Vec::new()
    } else {
        vec![s.type_.as_str()]
    }
}

/// One value against one schema node (kube-openapi `SchemaValidator`).
/// Returns whether it added no errors.
/// `old` is the correlated value of the old object on updates.
fn value(
    s: &Structural,
    v: &Value,
    old: Option<&Value>,
    name: &str,
    errs: &mut Vec<FieldCause>,
) -> bool {
    let before = errs.len();
    check_value(s, v, old, name, errs);
    if errs.len() > before && old == Some(v) {
        errs.truncate(before);
    }
    errs.len() == before
}

fn check_value(
    s: &Structural,
    v: &Value,
    old: Option<&Value>,
    name: &str,
    errs: &mut Vec<FieldCause>,
) {
    if v.is_null() {
        type_check(s, v, name, errs);
        enum_check(s, v, name, errs);
        return;
    }
    type_check(s, v, name, errs);
    combinators(s, v, old, name, errs);
    match v {
        Value::String(text) => {
            string_check(s, text, name, errs);
            if !s.format.is_empty() && !formats::valid(&s.format, text) {
                errs.push(type_error(name, &s.format, text));
            }
        }
        Value::Number(n) => number_check(s, Num::of(n), name, errs),
        Value::Array(a) => array_check(s, a, old, name, errs),
        _ => {}
    }
    enum_check(s, v, name, errs);
    if let Value::Object(m) = v {
        object_check(s, m, old, name, errs);
    }
}

fn type_check(s: &Structural, v: &Value, name: &str, errs: &mut Vec<FieldCause>) {
    let want = types(s);
    if want.is_empty() && s.format.is_empty() {
        return;
    }
    if v.is_null() {
        if !want.is_empty() && !s.nullable {
            errs.push(type_error(name, &want.join(","), "null"));
        }
        return;
    }
    let (sch_type, format) = schema_info(v);
    let is_float_int = matches!(v, Value::Number(n) if matches!(Num::of(n), Num::Float(f) if is_json_integer(f)))
        && want.contains(&"integer");
    let is_int_float = sch_type == "integer" && want.contains(&"number");
    let stringy = v.is_string() || v.is_array();
    let fmt = s.format.as_str();
    let has_format = !fmt.is_empty();
    let type_fits = want.contains(&sch_type) || is_float_int || is_int_float;
    // A non-string, non-array value under a format must fit the type or
    // the format itself.
    if has_format && !stringy && !(type_fits || format == fmt) {
        errs.push(type_error(name, fmt, format));
        return;
    }
    // Strings and arrays under a format of a non-numeric type pass.
    let numeric = want.contains(&"number") || want.contains(&"integer");
    if has_format && stringy && !numeric {
        return;
    }
    if !type_fits {
        errs.push(type_error(name, &want.join(","), sch_type));
    }
}

fn combinators(
    s: &Structural,
    v: &Value,
    old: Option<&Value>,
    name: &str,
    errs: &mut Vec<FieldCause>,
) {
    let vv = &s.vv;
    let quoted = go_quote(name);
    if !vv.any_of.is_empty() {
        // Upstream keeps the failures of the alternative with the most
        // passing checks; the first failing one stands in for it here.
        let mut first_failure: Option<Vec<FieldCause>> = None;
        let mut ok = false;
        for alt in &vv.any_of {
            let mut sub = Vec::new();
            if value(alt, v, old, name, &mut sub) {
                ok = true;
                break;
            }
            first_failure.get_or_insert(sub);
        }
        if !ok {
            errs.push(composite(format!(
                "{quoted} must validate at least one schema (anyOf)"
            )));
            errs.extend(first_failure.unwrap_or_default());
        }
    }
    if !vv.one_of.is_empty() {
        let mut valid = 0;
        let mut first_failure: Option<Vec<FieldCause>> = None;
        for alt in &vv.one_of {
            let mut sub = Vec::new();
            if value(alt, v, old, name, &mut sub) {
                valid += 1;
            } else if valid == 0 {
                first_failure.get_or_insert(sub);
            }
        }
        if valid != 1 {
            let more = if valid == 0 {
                "Found none valid".to_string()
            } else {
                format!("Found {valid} valid alternatives")
            };
            errs.push(composite(format!(
                "{quoted} must validate one and only one schema (oneOf). {more}"
            )));
            if valid == 0 {
                errs.extend(first_failure.unwrap_or_default());
            }
        }
    }
    if !vv.all_of.is_empty() {
        let mut valid = 0;
        for alt in &vv.all_of {
            if value(alt, v, old, name, errs) {
                valid += 1;
            }
        }
        if valid != vv.all_of.len() {
            let more = if valid == 0 { ". None validated" } else { "" };
            errs.push(composite(format!(
                "{quoted} must validate all the schemas (allOf){more}"
            )));
        }
    }
    if let Some(not) = &vv.not {
        if value(not, v, None, name, &mut Vec::new()) {
            errs.push(composite(format!(
                "{quoted} must not validate the schema (not)"
            )));
        }
    }
}

/// maxLength, minLength, pattern: only the first failure is reported.
fn string_check(s: &Structural, text: &str, name: &str, errs: &mut Vec<FieldCause>) {
    let vv = &s.vv;
    let len = text.chars().count() as i64;
    if let Some(max) = vv.max_length.filter(|m| len > *m) {
        errs.push(too_long(&field(name), max));
        return;
    }
    if let Some(min) = vv.min_length.filter(|m| len < *m) {
        let msg = format!("{name} in {IN} should be at least {min} chars long");
        errs.push(invalid(&field(name), &json!(text), &msg));
        return;
    }
    if let Some(p) = &vv.pattern {
        let shown = match &p.regex {
            Some(r) if r.is_match(text) => return,
            Some(_) => p.source.clone(),
            None => format!("{}, but pattern is invalid", p.source),
        };
        let msg = format!("{name} in {IN} should match '{shown}'");
        errs.push(invalid(&field(name), &json!(text), &msg));
    }
}

fn number_check(s: &Structural, n: Num, name: &str, errs: &mut Vec<FieldCause>) {
    let vv = &s.vv;
    let f = field(name);
    if let Some(factor) = vv.multiple_of {
        // Integers are checked against the factor truncated to an integer,
        // as upstream's native-type check does.
        match n {
            Num::Int(i) => {
                let fi = factor as i64;
                if fi <= 0 {
                    let msg =
                        format!("factor MultipleOf declared for {name} must be positive: {fi}");
                    errs.push(invalid_num(&f, Num::Int(fi), &msg));
                } else if i % fi != 0 {
                    let msg = format!("{name} in {IN} should be a multiple of {fi}");
                    errs.push(invalid_num(&f, n, &msg));
                }
            }
            Num::Float(x) => {
                if factor <= 0.0 {
                    let msg = format!(
                        "factor MultipleOf declared for {name} must be positive: {}",
                        go_float(factor)
                    );
                    errs.push(invalid_num(&f, Num::Float(factor), &msg));
                } else {
                    let mult = if factor < 1.0 {
                        1.0 / factor * x
                    } else {
                        x / factor
                    };
                    if !is_json_integer(mult) {
                        let msg = format!(
                            "{name} in {IN} should be a multiple of {}",
                            go_float(factor)
                        );
                        errs.push(invalid_num(&f, n, &msg));
                    }
                }
            }
        }
    }
    if let Some(min) = vv.minimum {
        let excl = vv.exclusive_minimum;
        let (fails, bound) = match n {
            Num::Int(i) => {
                let m = min as i64;
                ((!excl && i < m) || (excl && i <= m), m.to_string())
            }
            Num::Float(x) => ((!excl && x < min) || (excl && x <= min), go_float(min)),
        };
        if fails {
            let op = if excl {
                "greater than"
            } else {
                "greater than or equal to"
            };
            let msg = format!("{name} in {IN} should be {op} {bound}");
            errs.push(invalid_num(&f, n, &msg));
        }
    }
    if let Some(max) = vv.maximum {
        let excl = vv.exclusive_maximum;
        let (fails, bound) = match n {
            Num::Int(i) => {
                let m = max as i64;
                ((!excl && i > m) || (excl && i >= m), m.to_string())
            }
            Num::Float(x) => ((!excl && x > max) || (excl && x >= max), go_float(max)),
        };
        if fails {
            let op = if excl {
                "less than"
            } else {
                "less than or equal to"
            };
            let msg = format!("{name} in {IN} should be {op} {bound}");
            errs.push(invalid_num(&f, n, &msg));
        }
    }
}

fn array_check(
    s: &Structural,
    a: &[Value],
    old: Option<&Value>,
    name: &str,
    errs: &mut Vec<FieldCause>,
) {
    let vv = &s.vv;
    if let Some(items) = &s.items {
        let old_items = old.and_then(Value::as_array);
        for (i, x) in a.iter().enumerate() {
            let prev = old_items.and_then(|o| correlated_item(s, x, o));
            value(items, x, prev, &format!("{name}[{i}]"), errs);
        }
    }
    let size = a.len() as i64;
    if let Some(min) = vv.min_items.filter(|m| size < *m) {
        let msg = format!("{name} in {IN} should have at least {min} items");
        errs.push(invalid_num(&field(name), Num::Int(size), &msg));
    }
    if let Some(max) = vv.max_items.filter(|m| size > *m) {
        errs.push(too_many(&field(name), size, max));
    }
    if vv.unique_items && a.iter().enumerate().any(|(i, x)| a[..i].contains(x)) {
        let msg = format!("{name} in {IN} shouldn't contain duplicates");
        errs.push(invalid(&field(name), &json!(""), &msg));
    }
}

/// Enum membership, numbers compared by value (Go converts the datum to
/// the enum value's type before comparing).
fn enum_check(s: &Structural, v: &Value, name: &str, errs: &mut Vec<FieldCause>) {
    let Some(values) = s.vv.enum_.as_ref().filter(|e| !e.is_empty()) else {
        return;
    };
    let same = |e: &Value| match (e, v) {
        (Value::Null, _) | (_, Value::Null) => false,
        (Value::Number(a), Value::Number(b)) => Num::of(a).as_f64() == Num::of(b).as_f64(),
        (a, b) => a == b,
    };
    if values.iter().any(same) {
        return;
    }
    let shown: Vec<String> = values
        .iter()
        .map(|e| match e {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect();
    errs.push(not_supported(&field(name), v, &shown));
}

/// Only list-type map items correlate with old items (by their keys).
fn correlated_item<'a>(s: &Structural, x: &Value, old: &'a [Value]) -> Option<&'a Value> {
    if s.list_type.as_deref() != Some("map") || s.list_map_keys.is_empty() {
        return None;
    }
    old.iter()
        .find(|o| s.list_map_keys.iter().all(|k| o.get(k) == x.get(k)))
}

fn object_check(
    s: &Structural,
    m: &Map<String, Value>,
    old: Option<&Value>,
    name: &str,
    errs: &mut Vec<FieldCause>,
) {
    let prev = |k: &str| old.and_then(|o| o.get(k));
    let vv = &s.vv;
    let n = m.len() as i64;
    if let Some(min) = vv.min_properties.filter(|x| n < *x) {
        let msg = format!("{name} in {IN} should have at least {min} properties");
        errs.push(invalid_num(&field(name), Num::Int(n), &msg));
    }
    if let Some(max) = vv.max_properties.filter(|x| n > *x) {
        errs.push(too_many(&field(name), n, max));
    }
    match &s.additional {
        Some(Additional::Allows(false)) => {
            for k in m.keys().filter(|k| !s.properties.contains_key(*k)) {
                let msg = format!("{name}.{k} in {IN} is a forbidden property");
                errs.push(invalid(&field(name), &json!(k), &msg));
            }
        }
        Some(Additional::Schema(a)) => {
            for (k, x) in m.iter().filter(|(k, _)| !s.properties.contains_key(*k)) {
                value(a, x, prev(k), &format!("{name}.{k}"), errs);
            }
        }
        _ => {}
    }
    for (k, p) in &s.properties {
        if let Some(x) = m.get(k) {
            let child = if name.is_empty() {
                k.clone()
            } else {
                format!("{name}.{k}")
            };
            value(p, x, prev(k), &child, errs);
        }
    }
    for k in &vv.required {
        if !m.contains_key(k) {
            errs.push(required(&field(&format!("{name}.{k}")), ""));
        }
    }
}
