//! Go's rendering of decoded JSON values inside upstream's messages, and
//! the field causes built from them.
//!
//! Upstream decodes custom resources into `interface{}` trees (int64,
//! float64, string, bool, nil, `[]interface{}`, `map[string]interface{}`)
//! and prints them with `%v` and `%#v`; clients compare those texts.

use serde_json::{Number, Value};

use crate::api::validation::{go_quote, FieldCause};

/// A JSON number as Go's decoder holds it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Num {
    Int(i64),
    Float(f64),
}

impl Num {
    pub(super) fn of(n: &Number) -> Num {
        match n.as_i64() {
            Some(i) => Num::Int(i),
            None => Num::Float(n.as_f64().unwrap_or(f64::NAN)),
        }
    }

    pub(super) fn as_f64(self) -> f64 {
        match self {
            Num::Int(i) => i as f64,
            Num::Float(f) => f,
        }
    }

    /// `%v`.
    pub(super) fn render(self) -> String {
        match self {
            Num::Int(i) => i.to_string(),
            Num::Float(f) => go_float(f),
        }
    }
}

/// Go's `%v` of a float64: shortest digits, `%e` form when the exponent is
/// below -4 or at least 6 (with a two-digit exponent, e.g. `1e+06`).
pub(super) fn go_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    if f == 0.0 {
        return if f.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    // Rust's `{:e}` gives the shortest round-trip digits, as Go's does.
    let sci = format!("{:e}", f.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| c.is_ascii_digit()).collect();
    let sign = if f < 0.0 { "-" } else { "" };
    if !(-4..6).contains(&exp) {
        let (first, rest) = digits.split_at(1);
        let frac = if rest.is_empty() {
            String::new()
        } else {
            format!(".{rest}")
        };
        let esign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{first}{frac}e{esign}{:02}", exp.abs());
    }
    let dp = exp + 1; // digits before the decimal point
    let nd = digits.len() as i32;
    let body = if dp <= 0 {
        format!("0.{}{digits}", "0".repeat((-dp) as usize))
    } else if dp >= nd {
        format!("{digits}{}", "0".repeat((dp - nd) as usize))
    } else {
        let (a, b) = digits.split_at(dp as usize);
        format!("{a}.{b}")
    };
    format!("{sign}{body}")
}

/// `%#v` of a decoded JSON value as an `interface{}` element.
pub(super) fn sharp_v(v: &Value) -> String {
    match v {
        Value::Null => "interface {}(nil)".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => Num::of(n).render(),
        Value::String(s) => go_quote(s),
        Value::Array(a) => {
            let items: Vec<String> = a.iter().map(sharp_v).collect();
            format!("[]interface {{}}{{{}}}", items.join(", "))
        }
        Value::Object(m) => {
            // Go's fmt prints map keys sorted; serde's map may keep
            // insertion order.
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let items: Vec<String> = keys
                .iter()
                .map(|k| format!("{}:{}", go_quote(k), sharp_v(&m[k.as_str()])))
                .collect();
            format!("map[string]interface {{}}{{{}}}", items.join(", "))
        }
    }
}

/// A bad value as `field.Error.ErrorBody` prints it: nil as `"null"`,
/// scalars with `%v`, strings quoted, composites with `%#v`.
pub(super) fn body_value(v: &Value) -> String {
    match v {
        Value::Null => "\"null\"".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => Num::of(n).render(),
        Value::String(s) => go_quote(s),
        other => sharp_v(other),
    }
}

fn cause(reason: &'static str, field: &str, message: String) -> FieldCause {
    FieldCause {
        reason,
        message,
        field: field.to_string(),
    }
}

fn with_detail(head: String, detail: &str) -> String {
    if detail.is_empty() {
        head
    } else {
        format!("{head}: {detail}")
    }
}

/// `field.Invalid` with a value rendered as Go would.
pub(super) fn invalid(field: &str, v: &Value, detail: &str) -> FieldCause {
    let head = format!("Invalid value: {}", body_value(v));
    cause("FieldValueInvalid", field, with_detail(head, detail))
}

/// `field.Invalid` whose value is an already rendered Go number.
pub(super) fn invalid_num(field: &str, n: Num, detail: &str) -> FieldCause {
    let head = format!("Invalid value: {}", n.render());
    cause("FieldValueInvalid", field, with_detail(head, detail))
}

/// `field.TypeInvalid`.
pub(super) fn type_invalid(field: &str, v: &Value, detail: &str) -> FieldCause {
    let head = format!("Invalid value: {}", body_value(v));
    cause("FieldValueTypeInvalid", field, with_detail(head, detail))
}

/// `field.NotSupported`: valid values each quoted with `strconv.Quote`.
pub(super) fn not_supported(field: &str, v: &Value, valid: &[String]) -> FieldCause {
    let head = format!("Unsupported value: {}", body_value(v));
    let quoted: Vec<String> = valid.iter().map(|s| go_quote(s)).collect();
    let detail = if quoted.is_empty() {
        String::new()
    } else {
        format!("supported values: {}", quoted.join(", "))
    };
    cause("FieldValueNotSupported", field, with_detail(head, &detail))
}

/// `field.Duplicate`.
pub(super) fn duplicate(field: &str, v: &Value) -> FieldCause {
    let body = format!("Duplicate value: {}", body_value(v));
    cause("FieldValueDuplicate", field, body)
}

/// `field.TooLong` as of v1.33 (the value is omitted).
pub(super) fn too_long(field: &str, max: i64) -> FieldCause {
    let detail = if max >= 0 {
        format!("may not be more than {max} bytes")
    } else {
        "value is too long".into()
    };
    cause("FieldValueTooLong", field, format!("Too long: {detail}"))
}

/// `field.TooMany`.
pub(super) fn too_many(field: &str, actual: i64, max: i64) -> FieldCause {
    let detail = if max >= 0 {
        format!("must have at most {max} items")
    } else {
        "has too many items".into()
    };
    let head = if actual >= 0 {
        format!("Too many: {actual}")
    } else {
        "Too many".into()
    };
    cause("FieldValueTooMany", field, format!("{head}: {detail}"))
}
