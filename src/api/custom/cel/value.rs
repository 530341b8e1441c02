//! JSON to CEL values, typed by the schema the way upstream's
//! `UnstructuredToVal` does: `integer` → int, `number` → double, formatted
//! strings → timestamp/duration, declared properties under their escaped
//! names, and only `apiVersion`, `kind` and `metadata.name`/`generateName`
//! at a resource root.

use std::collections::HashMap;
use std::sync::Arc;

use cel::objects::{Key, Map};
use cel::{Context, Env, Program, Value as Cel};
use serde_json::Value;

/// CEL's reserved words; a property named like one is reachable as
/// `__<word>__` (upstream `cel.Escape`).
const RESERVED: &[&str] = &[
    "true",
    "false",
    "null",
    "in",
    "as",
    "break",
    "const",
    "continue",
    "else",
    "for",
    "function",
    "if",
    "import",
    "let",
    "loop",
    "package",
    "namespace",
    "return",
    "var",
    "void",
    "while",
];

/// Upstream `cel.Escape`: the identifier a property is visible under, or
/// None when no CEL identifier can name it (the field is then left out).
pub(super) fn escape(name: &str) -> Option<String> {
    let first = name.chars().next()?;
    if first.is_ascii_digit() {
        return None;
    }
    if RESERVED.contains(&name) {
        return Some(format!("__{name}__"));
    }
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(c) = rest.chars().next() {
        if rest.starts_with("__") {
            out.push_str("__underscores__");
            rest = &rest[2..];
            continue;
        }
        match c {
            '.' => out.push_str("__dot__"),
            '-' => out.push_str("__dash__"),
            '/' => out.push_str("__slash__"),
            c if c.is_ascii_alphanumeric() || c == '_' => out.push(c),
            _ => return None,
        }
        rest = &rest[c.len_utf8()..];
    }
    Some(out)
}

/// Builds CEL values; holds the tiny programs that parse formatted strings
/// so no date library is needed beside the CEL crate's own.
pub(super) struct Converter {
    env: Arc<Env>,
    timestamp: Option<Program>,
    duration: Option<Program>,
}

impl Converter {
    pub(super) fn new(env: Arc<Env>) -> Self {
        Converter {
            timestamp: env.compile("timestamp(s)").ok(),
            duration: env.compile("duration(s)").ok(),
            env,
        }
    }

    /// `v` as CEL sees it under `schema`; `root` marks a resource root
    /// (the custom resource itself or an embedded resource).
    pub(super) fn convert(&self, v: &Value, schema: &Value, root: bool) -> Cel {
        match v {
            Value::Null => Cel::Null,
            Value::Bool(b) => Cel::Bool(*b),
            Value::Number(n) => number(n, type_of(schema)),
            Value::String(s) => self.string(s, schema),
            Value::Array(items) => {
                let item_schema = schema.get("items").unwrap_or(&Value::Null);
                let list = items
                    .iter()
                    .map(|i| self.convert(i, item_schema, embedded(item_schema)))
                    .collect();
                Cel::List(Arc::new(list))
            }
            Value::Object(obj) => self.object(obj, schema, root),
        }
    }

    fn object(&self, obj: &serde_json::Map<String, Value>, schema: &Value, root: bool) -> Cel {
        let props = schema.get("properties").and_then(Value::as_object);
        let additional = schema.get("additionalProperties").filter(|a| a.is_object());
        let mut map: HashMap<Key, Cel> = HashMap::with_capacity(obj.len());
        for (k, v) in obj {
            if root && (k == "apiVersion" || k == "kind") {
                map.insert(key(k), self.convert(v, &Value::Null, false));
                continue;
            }
            if root && k == "metadata" {
                map.insert(key(k), meta(v));
                continue;
            }
            if let Some(props) = props {
                // An object type: only declared fields, by their escaped names.
                let (Some(sub), Some(name)) = (props.get(k), escape(k)) else {
                    continue;
                };
                map.insert(key(&name), self.convert(v, sub, embedded(sub)));
            } else if let Some(sub) = additional {
                map.insert(key(k), self.convert(v, sub, embedded(sub)));
            } else {
                // Preserved unknown fields: dynamically typed.
                map.insert(key(k), self.convert(v, &Value::Null, false));
            }
        }
        Cel::Map(Map { map: Arc::new(map) })
    }

    fn string(&self, s: &str, schema: &Value) -> Cel {
        let program = match schema.get("format").and_then(Value::as_str) {
            Some("date-time") | Some("datetime") => self.timestamp.as_ref(),
            Some("duration") => self.duration.as_ref(),
            _ => None,
        };
        if let Some(program) = program {
            let mut ctx = Context::with_env(self.env.clone());
            ctx.add_variable_from_value("s", s.to_string());
            if let Ok(parsed) = program.execute(&ctx) {
                return parsed;
            }
        }
        Cel::String(Arc::new(s.to_string()))
    }
}

fn key(k: &str) -> Key {
    Key::String(Arc::new(k.to_string()))
}

/// A resource root's metadata: only the name fields are visible to rules.
fn meta(v: &Value) -> Cel {
    let mut map: HashMap<Key, Cel> = HashMap::new();
    for field in ["name", "generateName"] {
        if let Some(Value::String(s)) = v.get(field) {
            map.insert(key(field), Cel::String(Arc::new(s.clone())));
        }
    }
    Cel::Map(Map { map: Arc::new(map) })
}

pub(super) fn type_of(schema: &Value) -> &str {
    schema.get("type").and_then(Value::as_str).unwrap_or("")
}

pub(super) fn embedded(schema: &Value) -> bool {
    schema.get("x-kubernetes-embedded-resource") == Some(&Value::Bool(true))
}

fn number(n: &serde_json::Number, ty: &str) -> Cel {
    if ty == "number" {
        return Cel::Float(n.as_f64().unwrap_or(f64::NAN));
    }
    if let Some(i) = n.as_i64() {
        return Cel::Int(i);
    }
    match n.as_f64() {
        // An integer field written as `2.0` is still an int.
        Some(f) if ty == "integer" && f.fract() == 0.0 && f.abs() < 9.2e18 => Cel::Int(f as i64),
        Some(f) => Cel::Float(f),
        None => Cel::Float(f64::NAN),
    }
}
