//! Block-style YAML for the values of vendor extensions in the protobuf
//! document. gnostic stores each extension as the YAML text of its value
//! (go-yaml's marshalling) and kube-openapi's readers parse it back with a
//! YAML decoder, so the text only has to be YAML that reads back as the
//! same value; it is laid out the way go-yaml lays it out.

use serde_json::Value;

/// `value` as a YAML document, ending in a newline.
pub(super) fn to_yaml(value: &Value) -> String {
    let mut out = String::new();
    block(value, 0, &mut out);
    out
}

fn is_collection(value: &Value) -> bool {
    match value {
        Value::Array(items) => !items.is_empty(),
        Value::Object(map) => !map.is_empty(),
        _ => false,
    }
}

/// Writes `value` starting at the current position; nested lines are
/// indented by `indent`.
fn block(value: &Value, indent: usize, out: &mut String) {
    match value {
        Value::Array(items) if !items.is_empty() => {
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    pad(indent, out);
                }
                out.push_str("- ");
                if is_collection(item) {
                    // The first line of a nested collection follows the
                    // dash; the rest lines up under it.
                    block(item, indent + 2, out);
                } else {
                    scalar(item, out);
                    out.push('\n');
                }
            }
        }
        Value::Object(map) if !map.is_empty() => {
            for (i, (key, item)) in map.iter().enumerate() {
                if i > 0 {
                    pad(indent, out);
                }
                string(key, out);
                out.push(':');
                match item {
                    Value::Object(_) if is_collection(item) => {
                        out.push('\n');
                        pad(indent + 4, out);
                        block(item, indent + 4, out);
                    }
                    Value::Array(_) if is_collection(item) => {
                        out.push('\n');
                        pad(indent + 4, out);
                        block(item, indent + 4, out);
                    }
                    _ => {
                        out.push(' ');
                        scalar(item, out);
                        out.push('\n');
                    }
                }
            }
        }
        _ => {
            scalar(value, out);
            out.push('\n');
        }
    }
}

fn pad(indent: usize, out: &mut String) {
    out.extend(std::iter::repeat_n(' ', indent));
}

fn scalar(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => string(s, out),
        Value::Array(_) => out.push_str("[]"),
        Value::Object(_) => out.push_str("{}"),
    }
}

/// Plain when the text cannot be read as anything but this string;
/// double-quoted (JSON escapes are valid YAML escapes) otherwise.
fn string(s: &str, out: &mut String) {
    let plain = s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '/'))
        && !matches!(
            s.to_ascii_lowercase().as_str(),
            "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "y" | "n"
        );
    if plain {
        out.push_str(s);
    } else {
        // A string always serializes.
        out.push_str(&serde_json::to_string(s).unwrap_or_default());
    }
}
