//! A rule's `fieldPath` (`.spec.foo` or `.labels['a.b']`) checked against
//! the schema and turned into the field path upstream reports, with
//! upstream's `ValidFieldPath` error texts.

use serde_json::Value;

/// Splits on `.`, `[` and `]`, keeping single-quoted strings whole.
fn tokens(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '\'' {
            let mut j = i + 1;
            while j < chars.len() && !(chars[j] == '\'' && chars[j - 1] != '\\') {
                j += 1;
            }
            let end = (j + 1).min(chars.len());
            out.push(chars[i..end].iter().collect());
            i = end;
        } else if matches!(chars[i], '.' | '[' | ']') {
            out.push(chars[i].to_string());
            i += 1;
        } else {
            let mut j = i;
            while j < chars.len() && !matches!(chars[j], '.' | '[' | ']') {
                j += 1;
            }
            out.push(chars[i..j].iter().collect());
            i = j;
        }
    }
    out
}

fn unescape(s: &str) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some(d) = it.next() else {
            out.push('\\');
            break;
        };
        out.push(match d {
            'a' => '\u{07}',
            'b' => '\u{08}',
            'f' => '\u{0c}',
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            'v' => '\u{0b}',
            '\'' => '\'',
            '\\' => '\\',
            other => {
                return Err(format!(
                    "invalid string literal: invalid escape char \\{other}"
                ))
            }
        });
    }
    Ok(out)
}

/// The normalized path (`spec.foo`, `labels[a.b]`) of `json_path` under
/// `schema`, or upstream's reason it is not a valid field path.
pub(super) fn resolve(json_path: &str, schema: &Value) -> Result<String, String> {
    let toks = tokens(json_path);
    let mut it = toks.into_iter();
    let mut out = String::new();
    let mut node = schema;
    let end = || "unexpected end of JSON path".to_string();
    while let Some(tok) = it.next() {
        let name = match tok.as_str() {
            "[" => {
                let quoted = it.next().ok_or_else(end)?;
                let inner = quoted
                    .strip_prefix('\'')
                    .and_then(|q| q.strip_suffix('\''))
                    .filter(|_| quoted.len() >= 2)
                    .ok_or_else(|| format!("expected single quoted string but got {quoted}"))?;
                let name = unescape(inner)?;
                let close = it.next().ok_or_else(end)?;
                if close != "]" {
                    return Err(format!("expected ] but got {close}"));
                }
                name
            }
            "." => it.next().ok_or_else(end)?,
            other => return Err(format!("expected [ or . but got: {other}")),
        };
        node = step(node, &name, &mut out)?;
    }
    Ok(out)
}

/// Descends one field: a declared property (`.name`) or a map key (`[name]`).
fn step<'a>(node: &'a Value, name: &str, out: &mut String) -> Result<&'a Value, String> {
    let invalid = || "does not refer to a valid field".to_string();
    if let Some(props) = node.get("properties").and_then(Value::as_object) {
        let sub = props.get(name).ok_or_else(invalid)?;
        if !out.is_empty() {
            out.push('.');
        }
        out.push_str(name);
        return Ok(sub);
    }
    if let Some(sub) = node.get("additionalProperties").filter(|a| a.is_object()) {
        out.push_str(&format!("[{name}]"));
        return Ok(sub);
    }
    Err(invalid())
}
