//! Validation pieces several kinds share: numbers, ports, label maps and
//! selectors, int-or-percent values, config keys and resource quantities.
//! Messages are upstream's (apimachinery's `validation` package).

use serde_json::{json, Value};

use crate::api::validation::{self as v, FieldCause};

pub(super) const NON_NEGATIVE: &str = "must be greater than or equal to 0";
pub(super) const PORT_RANGE: &str = "must be between 1 and 65535, inclusive";
pub(super) const QUANTITY_FORMAT: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";

/// Upstream `field.NotFound` for a string value (a volume a mount names).
pub(super) fn not_found(field: &str, value: &str) -> FieldCause {
    FieldCause {
        reason: "FieldValueNotFound",
        message: format!("Not found: {}", v::go_quote(value)),
        field: field.to_string(),
    }
}

/// `"a[0].b"`-style child path.
pub(super) fn idx(base: &str, i: usize) -> String {
    format!("{base}[{i}]")
}

/// `"data[key]"`-style map entry path.
pub(super) fn key(base: &str, k: &str) -> String {
    format!("{base}[{k}]")
}

/// An optional integer field: wrong types and negatives are causes.
pub(super) fn non_negative(field: &str, value: Option<&Value>, out: &mut Vec<FieldCause>) {
    match value {
        None | Some(Value::Null) => {}
        Some(n) if n.as_i64().is_some_and(|n| n >= 0) => {}
        Some(n) if n.as_i64().is_some() => out.push(v::invalid(field, n, NON_NEGATIVE)),
        Some(other) => out.push(v::invalid(field, other, "must be an integer")),
    }
}

/// A port number field (1–65535), when present.
/// `spec.replicas` and `spec.minReadySeconds` of a replicated workload.
pub(super) fn replica_counts(spec: &Value, out: &mut Vec<FieldCause>) {
    non_negative("spec.replicas", spec.get("replicas"), out);
    non_negative("spec.minReadySeconds", spec.get("minReadySeconds"), out);
}

pub(super) fn port_number(field: &str, value: &Value, out: &mut Vec<FieldCause>) {
    if !value.as_i64().is_some_and(|p| (1..=65535).contains(&p)) {
        out.push(v::invalid(field, value, PORT_RANGE));
    }
}

/// IANA service name rules for named ports (IsValidPortName).
pub(super) fn port_name(name: &str) -> Vec<String> {
    let mut msgs = Vec::new();
    if name.len() > 15 {
        msgs.push("must be no more than 15 characters".to_string());
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        msgs.push(
            "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)".to_string(),
        );
    }
    if !name.bytes().any(|b| b.is_ascii_lowercase()) {
        msgs.push("must contain at least one letter (a-z)".to_string());
    }
    if name.contains("--") {
        msgs.push("must not contain consecutive hyphens".to_string());
    }
    if name.starts_with('-') || name.ends_with('-') {
        msgs.push("must not begin or end with a hyphen".to_string());
    }
    msgs
}

/// A port given as number or name (service targetPort, probe ports).
pub(super) fn port_num_or_name(field: &str, value: &Value, out: &mut Vec<FieldCause>) {
    match value {
        Value::String(s) => out.extend(port_name(s).iter().map(|m| v::invalid(field, value, m))),
        _ => port_number(field, value, out),
    }
}

/// A label map (keys qualified names, values label values).
pub(super) fn labels(field: &str, map: Option<&Value>, out: &mut Vec<FieldCause>) {
    let Some(map) = map.filter(|m| !m.is_null()) else {
        return;
    };
    let Some(map) = map.as_object() else {
        out.push(v::invalid(
            field,
            map,
            "must be a map of string keys and values",
        ));
        return;
    };
    for (k, val) in map {
        out.extend(
            v::is_qualified_name(k)
                .iter()
                .map(|m| v::invalid(field, &json!(k), m)),
        );
        match val.as_str() {
            Some(s) => out.extend(
                v::is_valid_label_value(s)
                    .iter()
                    .map(|m| v::invalid(field, val, m)),
            ),
            None => out.push(v::invalid(field, val, "must be a string")),
        }
    }
}

/// A metav1.LabelSelector's syntax.
pub(super) fn label_selector(field: &str, sel: &Value, out: &mut Vec<FieldCause>) {
    if !sel.is_object() {
        out.push(v::invalid(field, sel, "must be a label selector object"));
        return;
    }
    labels(&format!("{field}.matchLabels"), sel.get("matchLabels"), out);
    for (i, req) in list(sel, "matchExpressions").iter().enumerate() {
        let path = idx(&format!("{field}.matchExpressions"), i);
        let values = list(req, "values");
        match req.get("operator").and_then(Value::as_str) {
            Some("In" | "NotIn") if values.is_empty() => out.push(v::required(
                &format!("{path}.values"),
                "must be specified when `operator` is 'In' or 'NotIn'",
            )),
            Some("Exists" | "DoesNotExist") if !values.is_empty() => out.push(v::forbidden(
                &format!("{path}.values"),
                "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
            )),
            Some("In" | "NotIn" | "Exists" | "DoesNotExist") => {}
            _ => out.push(v::invalid(
                &format!("{path}.operator"),
                req.get("operator").unwrap_or(&Value::Null),
                "not a valid selector operator",
            )),
        }
        let k = req.get("key").and_then(Value::as_str).unwrap_or("");
        let msgs = v::is_qualified_name(k);
        out.extend(
            msgs.iter()
                .map(|m| v::invalid(&format!("{path}.key"), &json!(k), m)),
        );
    }
}

fn list<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    super::json::list(v, key)
}

/// Whether a selector has no terms (selects everything).
pub(super) fn selector_empty(sel: &Value) -> bool {
    let labels = sel
        .get("matchLabels")
        .and_then(Value::as_object)
        .is_none_or(|m| m.is_empty());
    labels && list(sel, "matchExpressions").is_empty()
}

/// Whether a label set satisfies a metav1.LabelSelector.
pub(super) fn selector_matches(sel: &Value, labels: Option<&Value>) -> bool {
    let get = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
    let plain = sel
        .get("matchLabels")
        .and_then(Value::as_object)
        .is_none_or(|m| {
            m.iter()
                .all(|(k, want)| get(k).is_some_and(|have| Some(have) == want.as_str()))
        });
    plain
        && list(sel, "matchExpressions").iter().all(|req| {
            let have = get(req.get("key").and_then(Value::as_str).unwrap_or(""));
            let listed = |h: &str| list(req, "values").iter().any(|x| x.as_str() == Some(h));
            match req.get("operator").and_then(Value::as_str) {
                Some("In") => have.is_some_and(listed),
                Some("NotIn") => !have.is_some_and(listed),
                Some("Exists") => have.is_some(),
                Some("DoesNotExist") => have.is_none(),
                _ => false,
            }
        })
}

/// An int-or-string that must be a non-negative count or a percentage.
/// Returns the parsed value: `(number, is_percent)`.
pub(super) fn int_or_percent(
    field: &str,
    value: &Value,
    out: &mut Vec<FieldCause>,
) -> Option<(i64, bool)> {
    let parsed = match value {
        Value::String(s) => match s.strip_suffix('%').and_then(|n| n.parse::<i64>().ok()) {
            Some(n) => (n, true),
            None => {
                out.push(v::invalid(
                    field,
                    value,
                    "a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')",
                ));
                return None;
            }
        },
        other => match other.as_i64() {
            Some(n) => (n, false),
            None => {
                out.push(v::invalid(
                    field,
                    value,
                    "must be an integer or percentage (e.g '5%')",
                ));
                return None;
            }
        },
    };
    if parsed.0 < 0 {
        out.push(v::invalid(field, value, NON_NEGATIVE));
    } else if parsed.1 && parsed.0 > 100 {
        out.push(v::invalid(field, value, "must not be greater than 100%"));
    }
    Some(parsed)
}

/// Keys of configmaps and secrets (IsConfigMapKey).
pub(super) fn config_key(k: &str) -> Vec<String> {
    let mut msgs = Vec::new();
    if k.len() > 253 {
        msgs.push("must be no more than 253 characters".to_string());
    }
    if k.is_empty()
        || !k
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
    {
        msgs.push("a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')".to_string());
    }
    match k {
        "." => msgs.push("must not be '.'".to_string()),
        ".." => msgs.push("must not be '..'".to_string()),
        _ if k.starts_with("..") => msgs.push("must not start with '..'".to_string()),
        _ => {}
    }
    msgs
}

/// A resource quantity in nano-units, exact for every suffix upstream
/// accepts; `None` when the text is not a quantity.
pub(super) fn quantity_nanos(q: &Value) -> Option<i128> {
    let text = match q {
        Value::String(s) => s.trim().to_string(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    quantity_parts(number, suffix)
}

fn quantity_parts(number: &str, suffix: &str) -> Option<i128> {
    let (neg, digits) = match number.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, number.strip_prefix('+').unwrap_or(number)),
    };
    let (whole, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if whole.is_empty() && frac.is_empty()
        || !(whole
            .bytes()
            .chain(frac.bytes())
            .all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    let mantissa: i128 = format!("{whole}{frac}").parse().ok()?;
    let scale = 10i128.checked_pow(u32::try_from(frac.len()).ok()?)?;
    let unit: i128 = match suffix {
        "" => 1_000_000_000,
        "n" => 1,
        "u" => 1_000,
        "m" => 1_000_000,
        "k" => 1_000_000_000_000,
        "M" => 10i128.pow(15),
        "G" => 10i128.pow(18),
        "T" => 10i128.pow(21),
        "P" => 10i128.pow(24),
        "E" => 10i128.pow(27),
        "Ki" => 1_000_000_000 << 10,
        "Mi" => 1_000_000_000 << 20,
        "Gi" => 1_000_000_000 << 30,
        "Ti" => 1_000_000_000 << 40,
        "Pi" => 1_000_000_000 << 50,
        "Ei" => 1_000_000_000 << 60,
        exp if exp.starts_with(['e', 'E']) => {
            let e: u32 = exp[1..].parse().ok().filter(|e| *e <= 18)?;
            1_000_000_000 * 10i128.pow(e)
        }
        _ => return None,
    };
    let nanos = mantissa.checked_mul(unit)? / scale;
    Some(if neg { -nanos } else { nanos })
}

const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];

/// A port protocol: required, one of SCTP/TCP/UDP.
pub(super) fn protocol(p: Option<&Value>, field: &str, out: &mut Vec<FieldCause>) {
    match p {
        None | Some(Value::Null) => out.push(v::required(field, "")),
        Some(p) if p.as_str().is_some_and(|s| PROTOCOLS.contains(&s)) => {}
        Some(p) if p.as_str() == Some("") => out.push(v::required(field, "")),
        Some(p) => out.push(v::not_supported(field, p, PROTOCOLS)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_parse_exactly() {
        assert_eq!(quantity_nanos(&json!("500m")), Some(500_000_000));
        assert_eq!(quantity_nanos(&json!("1")), Some(1_000_000_000));
        assert_eq!(quantity_nanos(&json!(2)), Some(2_000_000_000));
        assert_eq!(
            quantity_nanos(&json!("1Gi")),
            quantity_nanos(&json!("1024Mi"))
        );
        assert_eq!(
            quantity_nanos(&json!("0.5")),
            quantity_nanos(&json!("500m"))
        );
        assert_eq!(quantity_nanos(&json!("1e3")), quantity_nanos(&json!("1k")));
        assert_eq!(quantity_nanos(&json!("abc")), None);
        assert_eq!(quantity_nanos(&json!("1Qi")), None);
        assert_eq!(quantity_nanos(&json!(".")), None);
    }

    #[test]
    fn selectors_match_like_upstream() {
        let sel = json!({"matchLabels": {"app": "a"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["web"]}]});
        assert!(selector_matches(
            &sel,
            Some(&json!({"app": "a", "tier": "web"}))
        ));
        assert!(!selector_matches(&sel, Some(&json!({"app": "a"}))));
        assert!(!selector_matches(&sel, None));
        assert!(selector_empty(&json!({})));
        let mut out = Vec::new();
        label_selector(
            "s",
            &json!({"matchExpressions": [{"key": "k", "operator": "In"}]}),
            &mut out,
        );
        assert_eq!(out[0].field, "s.matchExpressions[0].values");
    }

    #[test]
    fn percentages_and_ports() {
        let mut out = Vec::new();
        assert_eq!(
            int_or_percent("f", &json!("25%"), &mut out),
            Some((25, true))
        );
        assert_eq!(int_or_percent("f", &json!("x"), &mut out), None);
        int_or_percent("f", &json!("120%"), &mut out);
        port_number("p", &json!(0), &mut out);
        assert_eq!(out.len(), 3);
        assert!(port_name("http").is_empty());
        assert_eq!(port_name("8080").len(), 1);
        assert!(config_key("a.b_c-D").is_empty());
        assert!(!config_key("a/b").is_empty());
    }
}
