//! Tables of custom resources: `additionalPrinterColumns` (JSONPath cells
//! typed as the column says), or Name + Age when a version declares none.

use serde_json::{json, Value};

use super::clock::{self, Nanos};
use super::docs;
use super::format::{self, Col};

/// The columnDefinitions: Name, then the declared columns.
pub(super) fn definitions(columns: &Value) -> Value {
    let mut out = vec![Col::NAME.to_json()];
    match columns.as_array().filter(|a| !a.is_empty()) {
        None => out.push(Col::new("Age", "date", docs::META_CREATED).to_json()),
        Some(cols) => out.extend(cols.iter().map(|c| {
            json!({
                "name": c["name"].as_str().unwrap_or_default(),
                "type": c["type"].as_str().unwrap_or("string"),
                "format": c["format"].as_str().unwrap_or_default(),
                "description": c["description"].as_str().unwrap_or_default(),
                "priority": c["priority"].as_i64().unwrap_or(0),
            })
        })),
    }
    Value::Array(out)
}

/// One row's cells.
pub(super) fn cells(columns: &Value, obj: &Value, now: Nanos) -> Vec<Value> {
    let mut out = vec![format::name(obj)];
    match columns.as_array().filter(|a| !a.is_empty()) {
        None => out.push(clock::age(obj, now)),
        Some(cols) => out.extend(cols.iter().map(|c| {
            let path = c["jsonPath"].as_str().unwrap_or_default();
            let ty = c["type"].as_str().unwrap_or("string");
            match find(obj, path).into_iter().next() {
                Some(v) => cell(ty, v, now),
                None => Value::Null,
            }
        })),
    }
    out
}

/// Upstream's cellForJSONValue: the JSON value as the column's type.
fn cell(ty: &str, v: &Value, now: Nanos) -> Value {
    match ty {
        "integer" => match v {
            Value::Number(n) if n.is_i64() => v.clone(),
            Value::Number(n) => n
                .as_f64()
                .filter(|f| f.fract() == 0.0)
                .map(|f| json!(f as i64))
                .unwrap_or(Value::Null),
            _ => Value::Null,
        },
        "number" => v.as_f64().map(|f| json!(f)).unwrap_or(Value::Null),
        "boolean" => v.as_bool().map(Value::from).unwrap_or(Value::Null),
        "date" => match v.as_str().and_then(clock::parse_rfc3339) {
            Some(t) => Value::from(clock::since(Some(t), now)),
            None => Value::Null,
        },
        // Strings print as kubectl's JSONPath would: objects as JSON.
        _ => match v {
            Value::String(s) => Value::from(s.clone()),
            Value::Null => Value::Null,
            other => Value::from(other.to_string()),
        },
    }
}

/// The values a simple JSONPath (`.status.conditions[0].type`,
/// `.items[*].name`, `.conditions[?(@.type=="Ready")].status`,
/// `{.spec.x}`) selects, in document order.
fn find<'a>(obj: &'a Value, path: &str) -> Vec<&'a Value> {
    let path = path.trim();
    let path = path
        .strip_prefix('{')
        .and_then(|p| p.strip_suffix('}'))
        .unwrap_or(path);
    let mut current = vec![obj];
    for step in steps(path) {
        let mut next = Vec::new();
        for v in current {
            match &step {
                Step::Field(f) => next.extend(v.get(f.as_str())),
                Step::Index(i) => {
                    if let Some(a) = v.as_array() {
                        let at = if *i < 0 { a.len() as i64 + i } else { *i };
                        next.extend(usize::try_from(at).ok().and_then(|at| a.get(at)));
                    }
                }
                Step::All => match v {
                    Value::Array(a) => next.extend(a.iter()),
                    Value::Object(m) => next.extend(m.values()),
                    _ => {}
                },
                Step::Filter(field, want) => {
                    if let Some(a) = v.as_array() {
                        next.extend(a.iter().filter(|item| {
                            item.get(field.as_str()).is_some_and(|x| match x {
                                Value::String(s) => s == want,
                                other => {
                                    serde_json::from_str::<Value>(want).is_ok_and(|w| w == *other)
                                }
                            })
                        }));
                    }
                }
            }
        }
        current = next;
    }
    current
}

enum Step {
    Field(String),
    Index(i64),
    All,
    /// `[?(@.field=="value")]`
    Filter(String, String),
}

fn steps(path: &str) -> Vec<Step> {
    let mut out = Vec::new();
    let mut rest = path.trim_start_matches('$');
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            if end > 0 {
                out.push(Step::Field(r[..end].to_string()));
            }
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let Some(end) = r.find(']') else { break };
            let inner = r[..end].trim();
            rest = &r[end + 1..];
            if inner == "*" {
                out.push(Step::All);
            } else if let Ok(i) = inner.parse::<i64>() {
                out.push(Step::Index(i));
            } else if let Some(f) = inner.strip_prefix("?(@.").and_then(|f| f.strip_suffix(')')) {
                if let Some((field, value)) = f.split_once("==") {
                    let value = value.trim().trim_matches(|c| c == '"' || c == '\'');
                    out.push(Step::Filter(field.trim().to_string(), value.to_string()));
                }
            } else {
                out.push(Step::Field(
                    inner.trim_matches(|c| c == '"' || c == '\'').to_string(),
                ));
            }
        } else {
            // A path without a leading dot names a field.
            let end = rest.find(['.', '[']).unwrap_or(rest.len());
            out.push(Step::Field(rest[..end].to_string()));
            rest = &rest[end..];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn widget() -> Value {
        json!({"metadata": {"name": "w", "creationTimestamp": "2026-01-01T00:00:00Z"},
               "spec": {"replicas": 3, "color": "red", "ratio": 0.5, "on": true,
                        "items": [{"name": "a"}, {"name": "b"}]},
               "status": {"conditions": [{"type": "Synced", "status": "False"},
                                         {"type": "Ready", "status": "True"}]}})
    }

    #[test]
    fn paths_fields_indexes_and_filters() {
        let w = widget();
        assert_eq!(find(&w, ".spec.replicas"), vec![&json!(3)]);
        assert_eq!(find(&w, "{.spec.items[1].name}"), vec![&json!("b")]);
        assert_eq!(find(&w, ".spec.items[-1].name"), vec![&json!("b")]);
        assert_eq!(find(&w, ".spec.items[*].name").len(), 2);
        assert_eq!(
            find(&w, ".status.conditions[?(@.type==\"Ready\")].status"),
            vec![&json!("True")]
        );
        assert!(find(&w, ".spec.missing").is_empty());
        assert!(find(&w, ".spec.items[9]").is_empty());
    }

    #[test]
    fn cells_take_the_column_type() {
        let cols = json!([
            {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
            {"name": "Color", "type": "string", "jsonPath": ".spec.color"},
            {"name": "Ratio", "type": "number", "jsonPath": ".spec.ratio"},
            {"name": "On", "type": "boolean", "jsonPath": ".spec.on"},
            {"name": "Missing", "type": "string", "jsonPath": ".spec.nothing"},
            {"name": "Wrong", "type": "integer", "jsonPath": ".spec.color"}
        ]);
        let now = clock::now_nanos(std::time::SystemTime::now());
        let c = cells(&cols, &widget(), now);
        assert_eq!(c[0], json!("w"));
        assert_eq!(c[1], json!(3));
        assert_eq!(c[2], json!("red"));
        assert_eq!(c[3], json!(0.5));
        assert_eq!(c[4], json!(true));
        assert_eq!(c[5], Value::Null);
        assert_eq!(c[6], Value::Null);
        let defs = definitions(&cols);
        assert_eq!(defs[0]["name"], "Name");
        assert_eq!(defs[1]["name"], "Replicas");
    }

    #[test]
    fn no_columns_means_name_and_age() {
        let defs = definitions(&Value::Null);
        assert_eq!(defs.as_array().map(Vec::len), Some(2));
        assert_eq!(defs[1]["name"], "Age");
        let now = clock::now_nanos(std::time::SystemTime::now());
        assert_eq!(cells(&Value::Null, &widget(), now).len(), 2);
    }
}
