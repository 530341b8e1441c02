//! Renders values the way Go's `fmt` does inside upstream's field errors.
//!
//! Clients (kubectl, controllers, tests written against a real cluster)
//! compare error texts verbatim, so `Invalid value: "x"` has to quote
//! exactly like `strconv.Quote` and slices/times have to look like `%#v`
//! and `time.Time.String()`.

use serde_json::Value;

/// `strconv.Quote`: double quotes, Go escapes, printable Unicode kept as is.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{07}' => out.push_str("\\a"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{0b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            // Go's unicode.IsPrint rejects C1 controls and every space but
            // U+0020; those come out as \u escapes.
            c if c.is_control() || (c.is_whitespace() && c != ' ') => {
                if (c as u32) > 0xffff {
                    out.push_str(&format!("\\U{:08x}", c as u32));
                } else {
                    out.push_str(&format!("\\u{:04x}", c as u32));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A bad value as upstream's `ErrorBody` prints it: strings quoted, numbers
/// and booleans bare, nil as `null`. Composite values have no faithful Go
/// form here (upstream prints Go structs), so they are shown as JSON.
pub(crate) fn go_value(v: &Value) -> String {
    match v {
        Value::String(s) => go_quote(s),
        Value::Null => "null".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        other => other.to_string(),
    }
}

/// `%#v` of a `[]string`; `None` is a nil slice.
pub(crate) fn go_string_slice(items: Option<&[String]>) -> String {
    match items {
        None => "[]string(nil)".to_string(),
        Some(items) => {
            let quoted: Vec<String> = items.iter().map(|s| go_quote(s)).collect();
            format!("[]string{{{}}}", quoted.join(", "))
        }
    }
}

/// `metav1.Time.String()` for an RFC 3339 timestamp as stored in JSON.
/// The apiserver keeps times in UTC, where Go prints `+0000 UTC`; a zero
/// (absent) time prints as Go's zero time.
pub(crate) fn go_time(ts: Option<&str>) -> String {
    let Some(ts) = ts.filter(|t| !t.is_empty()) else {
        return "0001-01-01 00:00:00 +0000 UTC".to_string();
    };
    let Some((date, time)) = ts.split_once('T') else {
        return ts.to_string();
    };
    if let Some(clock) = time.strip_suffix('Z') {
        return format!("{date} {clock} +0000 UTC");
    }
    // A numeric offset: Go names such a zone after the offset itself.
    let split = time.rfind(['+', '-']).unwrap_or(time.len());
    let (clock, offset) = time.split_at(split);
    let offset = offset.replace(':', "");
    format!("{date} {clock} {offset} {offset}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn quotes_like_strconv() {
        assert_eq!(go_quote("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(go_quote("tab\there\n"), r#""tab\there\n""#);
        assert_eq!(go_quote("\u{1}"), r#""\x01""#);
        assert_eq!(go_quote("héllo"), "\"héllo\"");
        assert_eq!(go_quote("\u{a0}"), r#""\u00a0""#);
    }

    #[test]
    fn values_and_slices() {
        assert_eq!(go_value(&json!(-1)), "-1");
        assert_eq!(go_value(&json!(true)), "true");
        assert_eq!(go_value(&Value::Null), "null");
        assert_eq!(go_string_slice(None), "[]string(nil)");
        let v = vec!["a".to_string(), "b".to_string()];
        assert_eq!(go_string_slice(Some(&v)), r#"[]string{"a", "b"}"#);
    }

    #[test]
    fn times() {
        assert_eq!(
            go_time(Some("2024-01-02T03:04:05Z")),
            "2024-01-02 03:04:05 +0000 UTC"
        );
        assert_eq!(go_time(None), "0001-01-01 00:00:00 +0000 UTC");
        assert_eq!(
            go_time(Some("2024-01-02T03:04:05+02:00")),
            "2024-01-02 03:04:05 +0200 +0200"
        );
    }
}
