//! Shared building blocks: column/row types, tolerant JSON accessors, and
//! upstream's label, selector and container formatting.

use serde_json::{json, Map, Value};

use super::clock::Nanos;
use super::docs;

/// One TableColumnDefinition; all five fields are always serialized, as upstream does.
pub(super) struct Col {
    pub name: &'static str,
    pub ty: &'static str,
    pub format: &'static str,
    pub desc: &'static str,
    pub priority: i32,
}

impl Col {
    pub const fn new(name: &'static str, ty: &'static str, desc: &'static str) -> Col {
        Col {
            name,
            ty,
            format: "",
            desc,
            priority: 0,
        }
    }
    /// A priority-1 column, shown only by `-o wide`.
    pub const fn wide(name: &'static str, ty: &'static str, desc: &'static str) -> Col {
        Col {
            name,
            ty,
            format: "",
            desc,
            priority: 1,
        }
    }
    pub const NAME: Col = Col {
        name: "Name",
        ty: "string",
        format: "name",
        desc: docs::META_NAME,
        priority: 0,
    };
    pub const AGE: Col = Col::new("Age", "string", docs::META_CREATED);

    pub fn to_json(&self) -> Value {
        json!({"name": self.name, "type": self.ty, "format": self.format,
               "description": self.desc, "priority": self.priority})
    }
}

/// Cells of one row plus the optional row conditions (pods use them).
pub(super) struct Row {
    pub cells: Vec<Value>,
    pub conditions: Option<Value>,
}

impl From<Vec<Value>> for Row {
    fn from(cells: Vec<Value>) -> Row {
        Row {
            cells,
            conditions: None,
        }
    }
}

/// A kind's printer: its columns and the function producing one row.
pub(super) struct Printer {
    pub columns: &'static [Col],
    pub row: fn(&Value, Nanos) -> Row,
}

/// Walks `path` through nested objects; None if anything is missing or not an object.
pub(super) fn at<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter()
        .try_fold(v, |cur, key| cur.as_object()?.get(*key))
}

/// String at `path`, "" when absent or not a string (Go's zero value).
pub(super) fn s<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    at(v, path).and_then(Value::as_str).unwrap_or("")
}

pub(super) fn opt_s<'a>(v: &'a Value, path: &[&str]) -> Option<&'a str> {
    at(v, path).and_then(Value::as_str)
}

pub(super) fn opt_i(v: &Value, path: &[&str]) -> Option<i64> {
    at(v, path).and_then(Value::as_i64)
}

/// Integer at `path`, 0 when absent or mistyped.
pub(super) fn i(v: &Value, path: &[&str]) -> i64 {
    opt_i(v, path).unwrap_or(0)
}

pub(super) fn opt_b(v: &Value, path: &[&str]) -> Option<bool> {
    at(v, path).and_then(Value::as_bool)
}

/// Array at `path`, empty when absent or mistyped.
pub(super) fn arr<'a>(v: &'a Value, path: &[&str]) -> &'a [Value] {
    at(v, path)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

pub(super) fn map<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Map<String, Value>> {
    at(v, path).and_then(Value::as_object)
}

/// Number of entries of a map (or list) field, as Go's `len` on it.
pub(super) fn len_of(v: &Value, path: &[&str]) -> i64 {
    match at(v, path) {
        Some(Value::Object(m)) => m.len() as i64,
        Some(Value::Array(a)) => a.len() as i64,
        _ => 0,
    }
}

pub(super) fn name(obj: &Value) -> Value {
    Value::from(s(obj, &["metadata", "name"]))
}

pub(super) fn or_placeholder(v: &str, placeholder: &str) -> String {
    if v.is_empty() { placeholder } else { v }.to_string()
}

/// Go's printBool / printBoolPtr.
pub(super) fn bool_ptr(v: Option<bool>) -> &'static str {
    match v {
        Some(true) => "True",
        Some(false) => "False",
        None => "<unset>",
    }
}

/// labels.FormatLabels: sorted `k=v` pairs, "<none>" when empty.
pub(super) fn format_labels(m: Option<&Map<String, Value>>) -> String {
    let mut pairs: Vec<String> = m
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
        .collect();
    pairs.sort();
    if pairs.is_empty() {
        "<none>".into()
    } else {
        pairs.join(",")
    }
}

fn valid_name_part(n: &str) -> bool {
    let b = n.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// Label keys are an optional DNS prefix plus a name part.
fn valid_label_key(k: &str) -> bool {
    match k.rsplit_once('/') {
        Some((prefix, n)) => {
            !prefix.is_empty()
                && prefix.len() <= 253
                && prefix.split('.').all(|p| {
                    let b = p.as_bytes();
                    !b.is_empty()
                        && b[0].is_ascii_alphanumeric()
                        && b[b.len() - 1].is_ascii_alphanumeric()
                        && b.iter()
                            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
                })
                && valid_name_part(n)
        }
        None => valid_name_part(k),
    }
}

fn valid_label_value(v: &str) -> bool {
    v.is_empty() || valid_name_part(v)
}

/// metav1.LabelSelectorAsSelector(...).String(). Err stands for Go's error result.
/// A nil or empty selector renders as "".
pub(super) fn selector_string(sel: Option<&Value>) -> Result<String, ()> {
    let sel = match sel {
        None | Some(Value::Null) => return Ok(String::new()),
        Some(Value::Object(m)) => m,
        Some(_) => return Err(()),
    };
    let mut reqs: Vec<(String, String)> = Vec::new();
    if let Some(labels) = sel.get("matchLabels").and_then(Value::as_object) {
        for (k, v) in labels {
            let v = v.as_str().ok_or(())?;
            if !valid_label_key(k) || !valid_label_value(v) {
                return Err(());
            }
            reqs.push((k.clone(), format!("{k}={v}")));
        }
    }
    for e in sel
        .get("matchExpressions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let key = s(e, &["key"]);
        let mut values: Vec<&str> = arr(e, &["values"])
            .iter()
            .filter_map(Value::as_str)
            .collect();
        if !valid_label_key(key) || !values.iter().all(|v| valid_label_value(v)) {
            return Err(());
        }
        values.sort_unstable();
        let text = match (s(e, &["operator"]), values.is_empty()) {
            ("In", false) => format!("{key} in ({})", values.join(",")),
            ("NotIn", false) => format!("{key} notin ({})", values.join(",")),
            ("Exists", true) => key.to_string(),
            ("DoesNotExist", true) => format!("!{key}"),
            _ => return Err(()),
        };
        reqs.push((key.to_string(), text));
    }
    // Upstream's selector keeps its requirements sorted by key.
    reqs.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(reqs
        .into_iter()
        .map(|(_, t)| t)
        .collect::<Vec<_>>()
        .join(","))
}

/// metav1.FormatLabelSelector: "<none>" when empty, "<error>" when invalid.
pub(super) fn format_label_selector(sel: Option<&Value>) -> String {
    match selector_string(sel) {
        Ok(s) if s.is_empty() => "<none>".into(),
        Ok(s) => s,
        Err(()) => "<error>".into(),
    }
}

/// layoutContainerCells: comma-joined container names and images.
pub(super) fn containers(pod_spec_containers: &[Value]) -> (Value, Value) {
    let names: Vec<&str> = pod_spec_containers
        .iter()
        .map(|c| s(c, &["name"]))
        .collect();
    let images: Vec<&str> = pod_spec_containers
        .iter()
        .map(|c| s(c, &["image"]))
        .collect();
    (Value::from(names.join(",")), Value::from(images.join(",")))
}

/// intstr.IntOrString.String().
pub(super) fn int_or_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n
            .as_i64()
            .map(|n| n.to_string())
            .unwrap_or_else(|| n.to_string()),
        _ => String::new(),
    }
}

/// Joins at most `max` items, then " + N more..." (upstream's listWithMoreString);
/// `empty` is what an empty list prints.
pub(super) fn list_with_more(items: &[String], max: usize, empty: &str) -> String {
    if items.len() > max {
        return format!("{} + {} more...", items[..max].join(","), items.len() - max);
    }
    or_placeholder(&items.join(","), empty)
}
