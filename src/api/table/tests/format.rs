//! Shared formatting: HumanDuration, RFC 3339, quantities, selectors, labels.

use serde_json::{json, Value};

use super::super::clock::{format_rfc3339, human_duration, parse_rfc3339};
use super::super::format::{format_label_selector, format_labels, selector_string};
use super::super::quantity::{quantity, quantity_ptr};

const S: i128 = 1_000_000_000;

#[test]
fn human_duration_matches_upstream_table() {
    let cases: &[(i128, &str)] = &[
        (-2 * S, "<invalid>"),
        (-S, "0s"),
        (0, "0s"),
        (S / 2, "0s"),
        (59 * S, "59s"),
        (119 * S, "119s"),
        (120 * S, "2m"),
        (121 * S, "2m1s"),
        ((9 * 60 + 59) * S, "9m59s"),
        (600 * S, "10m"),
        ((2 * 3600 + 59 * 60 + 59) * S, "179m"),
        (3 * 3600 * S, "3h"),
        ((3 * 3600 + 60) * S, "3h1m"),
        ((7 * 3600 + 59 * 60) * S, "7h59m"),
        (8 * 3600 * S, "8h"),
        ((47 * 3600 + 3599) * S, "47h"),
        (48 * 3600 * S, "2d"),
        (49 * 3600 * S, "2d1h"),
        ((7 * 24 + 23) * 3600 * S, "7d23h"),
        (8 * 24 * 3600 * S, "8d"),
        (729 * 24 * 3600 * S, "729d"),
        (730 * 24 * 3600 * S, "2y"),
        (731 * 24 * 3600 * S, "2y1d"),
        (8 * 365 * 24 * 3600 * S, "8y"),
        (10 * 365 * 24 * 3600 * S, "10y"),
    ];
    for (d, want) in cases {
        assert_eq!(human_duration(*d), *want, "{d}ns");
    }
}

#[test]
fn rfc3339_parse_and_format() {
    assert_eq!(
        parse_rfc3339("2024-05-01T12:00:00Z"),
        Some(1_714_564_800 * S)
    );
    assert_eq!(
        parse_rfc3339("2024-05-01T14:00:00+02:00"),
        Some(1_714_564_800 * S)
    );
    assert_eq!(
        parse_rfc3339("2024-05-01T11:30:00-00:30"),
        Some(1_714_564_800 * S)
    );
    assert_eq!(
        parse_rfc3339("2024-05-01T12:00:00.250000Z"),
        Some(1_714_564_800 * S + S / 4)
    );
    assert_eq!(parse_rfc3339("1969-12-31T23:59:59Z"), Some(-S));
    for bad in [
        "",
        "2024-05-01",
        "2024-05-01T12:00:00",
        "2024-13-01T12:00:00Z",
        "2024-05-01T12:00:00.Z",
        "x024-05-01T12:00:00Z",
    ] {
        assert_eq!(parse_rfc3339(bad), None, "{bad}");
    }
    assert_eq!(
        format_rfc3339(1_714_564_800 * S + S / 4),
        "2024-05-01T12:00:00Z"
    );
    assert_eq!(format_rfc3339(-S), "1969-12-31T23:59:59Z");
    assert_eq!(format_rfc3339(951_782_400 * S), "2000-02-29T00:00:00Z");
}

#[test]
fn quantities_print_like_upstream() {
    let cases = [
        ("1Gi", "1Gi"),
        ("10Gi", "10Gi"),
        ("8Gi", "8Gi"),
        ("1024Mi", "1Gi"),
        ("1536Mi", "1536Mi"),
        ("1.5Gi", "1536Mi"),
        ("0.5Gi", "512Mi"),
        ("1.5Ki", "1536"),
        ("100Mi", "100Mi"),
        ("500m", "500m"),
        ("0.5", "500m"),
        ("1000m", "1"),
        ("1.5G", "1500M"),
        ("2000M", "2G"),
        ("512", "512"),
        ("2048", "2048"),
        ("1e3", "1e3"),
        ("0", "0"),
        ("0Gi", "0"),
        (" 2 ", "2"),
        ("bogus", "bogus"),
    ];
    for (input, want) in cases {
        assert_eq!(quantity(Some(&json!(input))), want, "{input}");
    }
    assert_eq!(quantity(Some(&json!(4))), "4");
    assert_eq!(quantity(None), "0");
    assert_eq!(quantity_ptr(None), "<nil>");
    assert_eq!(quantity_ptr(Some(&Value::Null)), "<nil>");
}

#[test]
fn label_selectors() {
    let sel = json!({"matchLabels": {"b": "2", "a": "1"},
        "matchExpressions": [{"key": "env", "operator": "In", "values": ["prod", "dev"]},
                             {"key": "c", "operator": "Exists"},
                             {"key": "app.kubernetes.io/tier", "operator": "DoesNotExist"},
                             {"key": "z", "operator": "NotIn", "values": ["q"]}]});
    assert_eq!(
        selector_string(Some(&sel)).as_deref(),
        Ok("a=1,!app.kubernetes.io/tier,b=2,c,env in (dev,prod),z notin (q)")
    );
    assert_eq!(selector_string(None).as_deref(), Ok(""));
    assert_eq!(format_label_selector(None), "<none>");
    assert_eq!(format_label_selector(Some(&json!({}))), "<none>");
    assert_eq!(
        format_label_selector(Some(&json!({"matchLabels": {"app": "web"}}))),
        "app=web"
    );
    let bad = [
        json!({"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]}),
        json!({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]}),
        json!({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]}),
        json!({"matchLabels": {"bad key": "v"}}),
        json!({"matchLabels": {"k": "not valid!"}}),
        json!("app=web"),
    ];
    for b in &bad {
        assert_eq!(format_label_selector(Some(b)), "<error>", "{b}");
    }
}

#[test]
fn label_maps() {
    let m = json!({"z": "1", "a": "2"});
    assert_eq!(format_labels(m.as_object()), "a=2,z=1");
    assert_eq!(format_labels(None), "<none>");
    assert_eq!(format_labels(json!({}).as_object()), "<none>");
}
