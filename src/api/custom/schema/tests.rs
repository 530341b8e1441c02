use serde_json::{json, Value};

use super::gofmt::{go_float, sharp_v};
use super::{ListType, Structural};

const BASE: &str = "spec.versions[0].schema.openAPIV3Schema";

fn schema(spec: Value) -> Structural {
    let root = json!({"type": "object", "properties": {"spec": spec}});
    match Structural::parse(&root, BASE) {
        Ok(s) => s,
        Err(e) => panic!("schema refused: {e:?}"),
    }
}

fn errors(s: &Structural, spec: Value) -> Vec<String> {
    let obj =
        json!({"apiVersion": "x.io/v1", "kind": "X", "metadata": {"name": "a"}, "spec": spec});
    s.validate(&obj).iter().map(|c| c.summary()).collect()
}

fn parse_errors(root: Value) -> Vec<String> {
    match Structural::parse(&root, BASE) {
        Ok(_) => Vec::new(),
        Err(e) => e.iter().map(|c| c.summary()).collect(),
    }
}

#[test]
fn type_mismatch_has_upstream_text() {
    let s = schema(json!({"type": "object", "properties": {"replicas": {"type": "integer"}}}));
    assert_eq!(
        errors(&s, json!({"replicas": "3"})),
        [
            r#"spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer: "string""#
        ]
    );
    let c = &s.validate(&json!({"spec": {"replicas": true}}))[0];
    assert_eq!(c.reason, "FieldValueTypeInvalid");
    assert!(errors(&s, json!({"replicas": 3})).is_empty());
}

#[test]
fn integer_accepts_integral_floats_only() {
    let s = schema(
        json!({"type": "object", "properties": {"n": {"type": "integer"}, "f": {"type": "number"}}}),
    );
    assert!(errors(&s, json!({"n": 1.0, "f": 2})).is_empty());
    assert_eq!(
        errors(&s, json!({"n": 1.5})),
        [r#"spec.n: Invalid value: "number": spec.n in body must be of type integer: "number""#]
    );
}

#[test]
fn null_needs_nullable() {
    let s = schema(json!({"type": "object", "properties": {
        "a": {"type": "string"}, "b": {"type": "string", "nullable": true}}}));
    assert_eq!(
        errors(&s, json!({"a": null, "b": null})),
        [r#"spec.a: Invalid value: "null": spec.a in body must be of type string: "null""#]
    );
}

#[test]
fn maximum_and_minimum() {
    let s = schema(json!({"type": "object", "properties": {
        "replicas": {"type": "integer", "minimum": 1, "maximum": 100},
        "ratio": {"type": "number", "maximum": 1.5, "exclusiveMaximum": true}}}));
    assert_eq!(
        errors(&s, json!({"replicas": 200})),
        ["spec.replicas: Invalid value: 200: spec.replicas in body should be less than or equal to 100"]
    );
    assert_eq!(
        errors(&s, json!({"replicas": 0})),
        ["spec.replicas: Invalid value: 0: spec.replicas in body should be greater than or equal to 1"]
    );
    assert_eq!(
        errors(&s, json!({"ratio": 1.5})),
        ["spec.ratio: Invalid value: 1.5: spec.ratio in body should be less than 1.5"]
    );
}

#[test]
fn multiple_of() {
    let s = schema(json!({"type": "object", "properties": {
        "n": {"type": "integer", "multipleOf": 5}, "f": {"type": "number", "multipleOf": 0.5}}}));
    assert_eq!(
        errors(&s, json!({"n": 7})),
        ["spec.n: Invalid value: 7: spec.n in body should be a multiple of 5"]
    );
    assert!(errors(&s, json!({"n": 10, "f": 2.5})).is_empty());
    assert_eq!(
        errors(&s, json!({"f": 0.3})),
        ["spec.f: Invalid value: 0.3: spec.f in body should be a multiple of 0.5"]
    );
}

#[test]
fn enum_lists_supported_values() {
    let s = schema(json!({"type": "object", "properties": {
        "color": {"type": "string", "enum": ["red", "blue"]}, "n": {"type": "integer", "enum": [1, 2]}}}));
    assert_eq!(
        errors(&s, json!({"color": "pink"})),
        [r#"spec.color: Unsupported value: "pink": supported values: "red", "blue""#]
    );
    assert_eq!(
        errors(&s, json!({"n": 3})),
        [r#"spec.n: Unsupported value: 3: supported values: "1", "2""#]
    );
    assert!(errors(&s, json!({"color": "red", "n": 2.0})).is_empty());
}

#[test]
fn required_fields() {
    let s = schema(
        json!({"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}),
    );
    assert_eq!(errors(&s, json!({})), ["spec.name: Required value"]);
    let root = Structural::parse(
        &json!({"type": "object", "required": ["spec"], "properties": {"spec": {"type": "object"}}}),
        BASE,
    )
    .unwrap();
    let causes = root.validate(&json!({"metadata": {"name": "a"}}));
    assert_eq!(causes[0].summary(), "spec: Required value");
    assert_eq!(causes[0].reason, "FieldValueRequired");
}

#[test]
fn string_lengths_count_runes_and_pattern() {
    let s = schema(json!({"type": "object", "properties": {
        "s": {"type": "string", "maxLength": 3, "minLength": 2, "pattern": "^[a-zé]+$"}}}));
    assert!(errors(&s, json!({"s": "éé"})).is_empty());
    assert_eq!(
        errors(&s, json!({"s": "abcd"})),
        ["spec.s: Too long: may not be more than 3 bytes"]
    );
    assert_eq!(
        errors(&s, json!({"s": "a"})),
        [r#"spec.s: Invalid value: "a": spec.s in body should be at least 2 chars long"#]
    );
    assert_eq!(
        errors(&s, json!({"s": "A1"})),
        [r#"spec.s: Invalid value: "A1": spec.s in body should match '^[a-zé]+$'"#]
    );
}

#[test]
fn array_sizes_and_items_paths() {
    let s = schema(json!({"type": "object", "properties": {"items": {
        "type": "array", "minItems": 1, "maxItems": 2,
        "items": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}}}}));
    assert_eq!(
        errors(&s, json!({"items": []})),
        ["spec.items: Invalid value: 0: spec.items in body should have at least 1 items"]
    );
    assert_eq!(
        errors(&s, json!({"items": [{"name": "a"}, {}, {"name": 1}]})),
        [
            "spec.items[1].name: Required value",
            r#"spec.items[2].name: Invalid value: "integer": spec.items[2].name in body must be of type string: "integer""#,
            "spec.items: Too many: 3: must have at most 2 items",
        ]
    );
}

#[test]
fn object_property_counts() {
    let s = schema(json!({"type": "object", "properties": {"m": {
        "type": "object", "minProperties": 1, "maxProperties": 1,
        "additionalProperties": {"type": "string"}}}}));
    assert_eq!(
        errors(&s, json!({"m": {}})),
        ["spec.m: Invalid value: 0: spec.m in body should have at least 1 properties"]
    );
    assert_eq!(
        errors(&s, json!({"m": {"a": "x", "b": "y"}})),
        ["spec.m: Too many: 2: must have at most 1 items"]
    );
}

#[test]
fn additional_properties_schema_uses_dotted_paths() {
    let s = schema(json!({"type": "object", "properties": {"labels": {
        "type": "object", "additionalProperties": {"type": "string"}}}}));
    assert_eq!(
        errors(&s, json!({"labels": {"foo": 1}})),
        [
            r#"spec.labels.foo: Invalid value: "integer": spec.labels.foo in body must be of type string: "integer""#
        ]
    );
}

#[test]
fn int_or_string() {
    let s = schema(
        json!({"type": "object", "properties": {"port": {"x-kubernetes-int-or-string": true}}}),
    );
    assert!(errors(&s, json!({"port": 80})).is_empty());
    assert!(errors(&s, json!({"port": "http"})).is_empty());
    assert_eq!(
        errors(&s, json!({"port": true})),
        [
            r#"spec.port: Invalid value: "boolean": spec.port in body must be of type integer,string: "boolean""#
        ]
    );
    // The anyOf form upstream allows next to it.
    let s = schema(json!({"type": "object", "properties": {"port": {
        "x-kubernetes-int-or-string": true,
        "anyOf": [{"type": "integer"}, {"type": "string"}]}}}));
    assert!(errors(&s, json!({"port": 80})).is_empty());
}

#[test]
fn formats() {
    let s = schema(json!({"type": "object", "properties": {
        "when": {"type": "string", "format": "date-time"},
        "day": {"type": "string", "format": "date"},
        "id": {"type": "string", "format": "uuid"},
        "ip": {"type": "string", "format": "ipv4"},
        "net": {"type": "string", "format": "cidr"},
        "d": {"type": "string", "format": "duration"},
        "b": {"type": "string", "format": "byte"},
        "n": {"type": "integer", "format": "int32"}}}));
    let good = json!({"when": "2024-01-02T03:04:05Z", "day": "2024-02-29", "id": "123e4567-e89b-12d3-a456-426614174000",
        "ip": "10.0.0.1", "net": "10.0.0.0/8", "d": "1h30m", "b": "aGVsbG8=", "n": 5_000_000_000i64});
    assert!(errors(&s, good).is_empty());
    assert_eq!(
        errors(&s, json!({"when": "yesterday"})),
        [
            r#"spec.when: Invalid value: "yesterday": spec.when in body must be of type date-time: "yesterday""#
        ]
    );
    for (k, v) in [
        ("day", "2023-02-29"),
        ("id", "nope"),
        ("ip", "10.0.0"),
        ("net", "10.0.0.0/33"),
        ("d", "soon"),
        ("b", "a"),
    ] {
        let e = errors(&s, json!({k: v}));
        assert_eq!(e.len(), 1, "{k}={v}: {e:?}");
        assert!(e[0].contains("in body must be of type"), "{e:?}");
    }
}

#[test]
fn format_check_helpers() {
    use super::formats::valid;
    assert!(valid("email", "a.b@example.com"));
    assert!(!valid("email", "nobody"));
    assert!(valid("hostname", "example.com"));
    assert!(!valid("hostname", "-bad-.com"));
    assert!(valid("ipv6", "fe80::1"));
    assert!(!valid("ipv6", "1.2.3.4"));
    assert!(valid("mac", "01:23:45:67:89:ab"));
    assert!(valid("uri", "https://example.com/x"));
    assert!(!valid("uri", "example"));
    assert!(valid("isbn10", "0321751043"));
    assert!(valid("creditcard", "4111 1111 1111 1111"));
    assert!(valid("duration", "3 days"));
    assert!(valid("bsonobjectid", "507f1f77bcf86cd799439011"));
}

#[test]
fn combinators() {
    let s = schema(json!({"type": "object", "properties": {
        "a": {"type": "integer", "anyOf": [{"minimum": 10}, {"maximum": 0}]},
        "o": {"type": "integer", "oneOf": [{"minimum": 0}, {"maximum": 5}]},
        "n": {"type": "string", "not": {"enum": ["x"]}},
        "all": {"type": "integer", "allOf": [{"minimum": 1}, {"maximum": 3}]}}}));
    assert!(errors(&s, json!({"a": 11, "o": 7, "n": "y", "all": 2})).is_empty());
    assert_eq!(
        errors(&s, json!({"a": 5})),
        [
            r#"<nil>: Invalid value: "": "spec.a" must validate at least one schema (anyOf)"#,
            "spec.a: Invalid value: 5: spec.a in body should be greater than or equal to 10",
        ]
    );
    assert_eq!(
        errors(&s, json!({"o": 3})),
        [
            r#"<nil>: Invalid value: "": "spec.o" must validate one and only one schema (oneOf). Found 2 valid alternatives"#
        ]
    );
    assert_eq!(
        errors(&s, json!({"n": "x"})),
        [r#"<nil>: Invalid value: "": "spec.n" must not validate the schema (not)"#]
    );
    assert_eq!(
        errors(&s, json!({"all": 9})),
        [
            "spec.all: Invalid value: 9: spec.all in body should be less than or equal to 3",
            r#"<nil>: Invalid value: "": "spec.all" must validate all the schemas (allOf)"#,
        ]
    );
}

#[test]
fn list_type_set_and_map() {
    let s = schema(json!({"type": "object", "properties": {
        "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
        "ports": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
            "items": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}, "port": {"type": "integer"}}}}}}));
    assert_eq!(
        errors(&s, json!({"tags": ["a", "b", "a", "a"]})),
        [r#"spec.tags[2]: Duplicate value: "a""#]
    );
    assert_eq!(
        errors(
            &s,
            json!({"ports": [{"name": "a", "port": 1}, {"name": "a", "port": 2}]})
        ),
        [r#"spec.ports[1]: Duplicate value: map[string]interface {}{"name":"a"}"#]
    );
    assert_eq!(
        s.child("spec").unwrap().child("tags").unwrap().list_type(),
        ListType::Set
    );
    assert_eq!(
        s.child("spec").unwrap().child("ports").unwrap().list_type(),
        ListType::Map(vec!["name".into()])
    );
}

#[test]
fn embedded_resource_needs_type_meta() {
    let s = schema(json!({"type": "object", "properties": {"template": {
        "type": "object", "x-kubernetes-embedded-resource": true, "x-kubernetes-preserve-unknown-fields": true}}}));
    assert_eq!(
        errors(&s, json!({"template": {"metadata": {"name": "Bad_Name"}}})),
        [
            "spec.template.apiVersion: Required value: must not be empty",
            "spec.template.kind: Required value: must not be empty",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain(
            errors(&s, json!({"template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "Bad_Name"}}}))
                .into_iter()
                .filter(|e| e.starts_with("spec.template.metadata.name"))
        )
        .collect::<Vec<_>>()
    );
    assert!(errors(
        &s,
        json!({"template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "ok"}}})
    )
    .is_empty());
    let e = errors(
        &s,
        json!({"template": {"apiVersion": "a/b/c", "kind": "not a kind"}}),
    );
    assert_eq!(e.len(), 2, "{e:?}");
    assert!(e
        .iter()
        .any(|x| x.contains("unexpected GroupVersion string: a/b/c")));
    assert!(e
        .iter()
        .any(|x| x.contains("may have mixed case, but should otherwise match")));
}

#[test]
fn defaults_fill_absent_and_non_nullable_nulls() {
    let s = schema(json!({"type": "object", "default": {}, "properties": {
        "replicas": {"type": "integer", "default": 1},
        "mode": {"type": "string", "default": "auto"},
        "opt": {"type": "string", "nullable": true, "default": "x"},
        "gone": {"type": "string"},
        "list": {"type": "array", "items": {"type": "object", "properties": {"p": {"type": "integer", "default": 80}}}},
        "map": {"type": "object", "additionalProperties": {"type": "object", "properties": {"on": {"type": "boolean", "default": true}}}}}}));
    let mut obj = json!({"spec": {"mode": null, "opt": null, "gone": null, "list": [{}, {"p": 1}], "map": {"a": {}}}});
    s.apply_defaults(&mut obj);
    assert_eq!(
        obj["spec"],
        json!({"replicas": 1, "mode": "auto", "opt": null, "list": [{"p": 80}, {"p": 1}], "map": {"a": {"on": true}}})
    );
    // A defaulted object is itself defaulted.
    let mut obj = json!({});
    let root = Structural::parse(
        &json!({"type": "object", "properties": {"spec": {"type": "object", "default": {}, "properties": {"n": {"type": "integer", "default": 3}}}}}),
        BASE,
    )
    .unwrap();
    root.apply_defaults(&mut obj);
    assert_eq!(obj, json!({"spec": {"n": 3}}));
}

#[test]
fn pruning_drops_unknown_fields() {
    let s = schema(json!({"type": "object", "properties": {
        "known": {"type": "string"},
        "items": {"type": "array", "items": {"type": "object", "properties": {"a": {"type": "string"}}}},
        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true, "properties": {"k": {"type": "object"}}}}}));
    let mut obj = json!({"apiVersion": "x.io/v1", "kind": "X", "metadata": {"name": "a", "labels": {"x": "y"}},
        "status": {"s": 1},
        "spec": {"known": "k", "foo": 1, "items": [{"a": "1", "b": 2}], "free": {"anything": {"x": 1}, "k": {"drop": 1}}}});
    let pruned = s.prune(&mut obj);
    assert_eq!(
        pruned,
        ["spec.foo", "spec.free.k.drop", "spec.items[0].b", "status"]
    );
    assert_eq!(
        obj,
        json!({"apiVersion": "x.io/v1", "kind": "X", "metadata": {"name": "a", "labels": {"x": "y"}},
            "spec": {"known": "k", "items": [{"a": "1"}], "free": {"anything": {"x": 1}, "k": {}}}})
    );
}

#[test]
fn pruning_keeps_embedded_type_meta() {
    let s = schema(json!({"type": "object", "properties": {"template": {
        "type": "object", "x-kubernetes-embedded-resource": true, "properties": {"spec": {"type": "object"}}}}}));
    let mut obj = json!({"spec": {"template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"}, "spec": {}, "extra": 1}}});
    assert_eq!(s.prune(&mut obj), ["spec.template.extra"]);
    assert_eq!(obj["spec"]["template"]["kind"], "Pod");
}

#[test]
fn parse_requires_types() {
    let e = parse_errors(
        json!({"type": "object", "properties": {"spec": {"properties": {"a": {"type": "string"}}}}}),
    );
    assert_eq!(
        e,
        [format!("{BASE}.properties[spec].type: Required value: must not be empty for specified object fields")]
    );
    let e = parse_errors(json!({"type": "object", "properties": {"l": {"type": "array"}}}));
    assert_eq!(
        e,
        [format!(
            "{BASE}.properties[l].items: Required value: must be specified"
        )]
    );
    let e = parse_errors(json!({"properties": {}}));
    assert_eq!(
        e,
        [format!(
            "{BASE}.type: Required value: must not be empty at the root"
        )]
    );
    let e = parse_errors(json!({"type": "string"}));
    assert_eq!(
        e,
        [format!(
            r#"{BASE}.type: Invalid value: "string": must be object at the root"#
        )]
    );
}

#[test]
fn parse_refuses_nested_generic_fields() {
    let e = parse_errors(
        json!({"type": "object", "properties": {"a": {"type": "string",
        "anyOf": [{"type": "string", "description": "d"}]}}}),
    );
    assert_eq!(
        e,
        [
            format!("{BASE}.properties[a].anyOf[0].description: Forbidden: must be empty to be structural"),
            format!("{BASE}.properties[a].anyOf[0].type: Forbidden: must be empty to be structural"),
        ]
    );
}

#[test]
fn parse_checks_completeness() {
    let e = parse_errors(
        json!({"type": "object", "properties": {"spec": {"type": "object"}},
        "anyOf": [{"properties": {"spec": {"properties": {"x": {"minimum": 1}}}}}]}),
    );
    assert_eq!(
        e,
        [format!(
            "{BASE}.properties[spec].properties[x]: Required value: because it is defined in {BASE}.anyOf[0].properties[spec].properties[x]"
        )]
    );
}

#[test]
fn parse_checks_metadata_and_root_rules() {
    let e = parse_errors(json!({"type": "object", "additionalProperties": {"type": "string"}}));
    assert_eq!(
        e,
        [format!(
            "{BASE}.additionalProperties: Forbidden: must not be used at the root"
        )]
    );
    let ok = json!({"type": "object", "properties": {"metadata": {"type": "object",
        "properties": {"name": {"type": "string", "maxLength": 5}}}}});
    assert!(parse_errors(ok.clone()).is_empty());
    let s = Structural::parse(&ok, BASE).unwrap();
    assert_eq!(
        s.validate(&json!({"metadata": {"name": "toolong"}}))[0].summary(),
        "metadata.name: Too long: may not be more than 5 bytes"
    );
    let e = parse_errors(
        json!({"type": "object", "properties": {"metadata": {"type": "object",
        "properties": {"labels": {"type": "object"}}}}}),
    );
    assert_eq!(
        e,
        [format!("{BASE}.properties[metadata]: Forbidden: must not specify anything other than name and generateName, but metadata is implicitly specified")]
    );
    let e = parse_errors(json!({"type": "object", "nullable": true}));
    assert_eq!(
        e,
        [format!(
            "{BASE}.nullable: Forbidden: nullable cannot be true at the root"
        )]
    );
}

#[test]
fn parse_checks_crd_schema_rules() {
    let e = parse_errors(json!({"type": "object", "properties": {
        "a": {"type": "foo"},
        "b": {"type": "array", "uniqueItems": true, "items": {"type": "string"}},
        "c": {"type": "object", "$ref": "#/x"},
        "d": {"type": "string", "x-kubernetes-preserve-unknown-fields": false}}}));
    assert_eq!(
        e,
        [
            format!(r#"{BASE}.properties[a].type: Unsupported value: "foo": supported values: "array", "boolean", "integer", "number", "object", "string""#),
            format!("{BASE}.properties[b].uniqueItems: Forbidden: uniqueItems cannot be set to true since the runtime complexity becomes quadratic"),
            format!("{BASE}.properties[c].$ref: Forbidden: $ref is not supported"),
            format!("{BASE}.properties[d].x-kubernetes-preserve-unknown-fields: Invalid value: false: must be true or undefined"),
        ]
    );
    let e = parse_errors(
        json!({"type": "object", "properties": {"metadata": {"type": "object", "default": {}}}}),
    );
    assert_eq!(
        e,
        [format!(
            "{BASE}.properties[metadata].default: Forbidden: must not be set in top-level metadata"
        )]
    );
}

#[test]
fn parse_checks_list_types() {
    let e = parse_errors(json!({"type": "object", "properties": {
        "a": {"type": "string", "x-kubernetes-list-type": "set"},
        "b": {"type": "array", "x-kubernetes-list-type": "map", "items": {"type": "object", "properties": {"k": {"type": "string"}}}},
        "c": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["k", "z"],
            "items": {"type": "object", "properties": {"k": {"type": "string"}}}},
        "d": {"type": "array", "x-kubernetes-list-type": "bag", "items": {"type": "string"}}}}));
    assert_eq!(
        e,
        [
            format!(r#"{BASE}.properties[a].type: Invalid value: "string": must be array if x-kubernetes-list-type is specified"#),
            format!("{BASE}.properties[b].x-kubernetes-list-map-keys: Required value: must not be empty if x-kubernetes-list-type is map"),
            format!(r#"{BASE}.properties[c].x-kubernetes-list-map-keys: Invalid value: []string{{"k", "z"}}: entries must all be names of item properties"#),
            format!("{BASE}.properties[c].items.properties[k].default: Required value: this property is in x-kubernetes-list-map-keys, so it must have a default or be a required property"),
            format!(r#"{BASE}.properties[d].x-kubernetes-list-type: Unsupported value: "bag": supported values: "atomic", "set", "map""#),
        ]
    );
}

#[test]
fn parse_reports_bad_patterns_and_embedded_rules() {
    let e = parse_errors(
        json!({"type": "object", "properties": {"a": {"type": "string", "pattern": "("}}}),
    );
    assert_eq!(e.len(), 1);
    assert!(e[0].starts_with(&format!(
        r#"{BASE}.properties[a].pattern: Invalid value: "(": must be a valid regular expression, but isn't: "#
    )));
    let e = parse_errors(
        json!({"type": "object", "properties": {"t": {"type": "object", "x-kubernetes-embedded-resource": true}}}),
    );
    assert_eq!(
        e,
        [format!("{BASE}.properties[t].properties: Required value: must not be empty if x-kubernetes-embedded-resource is true without x-kubernetes-preserve-unknown-fields")]
    );
}

#[test]
fn navigation() {
    let s = schema(json!({"type": "object", "properties": {
        "m": {"type": "object", "x-kubernetes-map-type": "atomic", "additionalProperties": {"type": "integer"}},
        "l": {"type": "array", "items": {"type": "string"}}}}));
    let spec = s.child("spec").unwrap();
    assert_eq!(spec.type_name(), "object");
    assert!(spec.child("m").unwrap().map_type_atomic());
    assert_eq!(
        spec.child("m")
            .unwrap()
            .child("anykey")
            .unwrap()
            .type_name(),
        "integer"
    );
    assert_eq!(
        spec.child("l").unwrap().items().unwrap().type_name(),
        "string"
    );
    assert_eq!(spec.child("l").unwrap().list_type(), ListType::Atomic);
    assert!(spec.child("nope").is_none());
}

#[test]
fn go_rendering() {
    assert_eq!(go_float(100.0), "100");
    assert_eq!(go_float(1.5), "1.5");
    assert_eq!(go_float(1e6), "1e+06");
    assert_eq!(go_float(123456.0), "123456");
    assert_eq!(go_float(0.0001), "0.0001");
    assert_eq!(go_float(0.00001), "1e-05");
    assert_eq!(go_float(-2.5e21), "-2.5e+21");
    assert_eq!(
        sharp_v(&json!({"b": [1, "x", null], "a": true})),
        r#"map[string]interface {}{"a":true, "b":[]interface {}{1, "x", interface {}(nil)}}"#
    );
}

#[test]
fn odd_input_never_panics() {
    let s = schema(json!({"type": "object", "properties": {
        "n": {"type": "integer", "minimum": -5, "maximum": 5, "multipleOf": 0.5},
        "s": {"type": "string", "format": "date-time", "maxLength": 2, "pattern": "^a"},
        "l": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["k"],
            "items": {"type": "object", "required": ["k"], "properties": {"k": {"type": "string"}}}},
        "e": {"type": "object", "x-kubernetes-embedded-resource": true, "x-kubernetes-preserve-unknown-fields": true}}}));
    let mut deep = json!(1);
    for _ in 0..100 {
        deep = json!({"x": [deep]});
    }
    let odd = [
        json!(null),
        json!([1, 2]),
        json!("spec"),
        json!({"spec": null}),
        json!({"spec": {"n": 1e300, "s": 12, "l": [1, null, {"k": null}, {"k": null}], "e": {"metadata": 5, "kind": 3}}}),
        json!({"spec": {"n": -9223372036854775808i64, "l": "x", "e": []}}),
        json!({"spec": {"n": 18446744073709551615u64, "s": "\u{0}\u{ffff}"}}),
        json!({"spec": deep.clone(), "metadata": deep.clone()}),
    ];
    for o in odd {
        let mut o = o;
        let _ = s.validate(&o);
        s.apply_defaults(&mut o);
        let _ = s.prune(&mut o);
        let _ = s.validate(&o);
    }
    for raw in [
        json!(null),
        json!(5),
        json!({"type": 5, "properties": [], "items": [1], "enum": 3, "required": "x"}),
        json!({"type": "object", "properties": {"a": null}}),
    ] {
        let _ = Structural::parse(&raw, BASE);
    }
}

#[test]
fn unique_items_and_forbidden_properties() {
    // Not structural-schema legal in CRDs (uniqueItems), but the validator
    // still implements it for completeness of the keyword set.
    let mut s = schema(
        json!({"type": "object", "properties": {"l": {"type": "array", "items": {"type": "string"}}}}),
    );
    if let Some(spec) = s.properties.get_mut("spec") {
        if let Some(l) = spec.properties.get_mut("l") {
            l.vv.unique_items = true;
        }
        spec.additional = Some(super::Additional::Allows(false));
    }
    assert_eq!(
        errors(&s, json!({"l": ["a", "a"], "zz": 1})),
        [
            r#"spec: Invalid value: "zz": spec.zz in body is a forbidden property"#,
            r#"spec.l: Invalid value: "": spec.l in body shouldn't contain duplicates"#,
        ]
    );
}

#[test]
fn defaults_must_validate_and_be_pruned() {
    let e = parse_errors(
        json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
        "replicas": {"type": "integer", "default": "one"},
        "size": {"type": "integer", "maximum": 5, "default": 9},
        "obj": {"type": "object", "properties": {"a": {"type": "string"}}, "default": {"a": "x", "b": 1}}}}}}),
    );
    let p = format!("{BASE}.properties[spec].properties");
    assert_eq!(
        e,
        [
            format!(
                r#"{p}[obj].default: Invalid value: map[string]interface {{}}{{"a":"x", "b":1}}: must not have unknown fields"#
            ),
            format!(
                r#"{p}[replicas].default: Invalid value: "string":  in body must be of type integer: "string""#
            ),
            format!(
                r#"{p}[size].default: Invalid value: 9:  in body should be less than or equal to 5"#
            ),
        ]
    );
}

#[test]
fn updates_ratchet_unchanged_values() {
    let s = schema(json!({"type": "object", "properties": {
        "a": {"type": "integer", "maximum": 5},
        "b": {"type": "integer", "maximum": 5},
        "ports": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
            "items": {"type": "object", "required": ["name"], "properties": {
                "name": {"type": "string"}, "port": {"type": "integer", "maximum": 10}}}}}}));
    let old = json!({"spec": {"a": 9, "b": 1, "ports": [{"name": "x", "port": 99}]}});
    let new = json!({"spec": {"a": 9, "b": 7, "ports": [{"name": "y", "port": 1}, {"name": "x", "port": 99}]}});
    let e: Vec<String> = s
        .validate_update(&new, &old)
        .iter()
        .map(|c| c.summary())
        .collect();
    assert_eq!(
        e,
        ["spec.b: Invalid value: 7: spec.b in body should be less than or equal to 5"]
    );
    assert_eq!(s.validate(&new).len(), 3);
    // A changed value is validated again.
    let newer = json!({"spec": {"a": 8, "b": 1, "ports": [{"name": "x", "port": 98}]}});
    assert_eq!(s.validate_update(&newer, &old).len(), 2);
}

/// A schema the way controller-gen writes them (cert-manager style):
/// int32 formats, conditions as a list-type map, int-or-string with anyOf,
/// date-time formats, metadata as a bare object, status alongside spec.
#[test]
fn controller_gen_style_crd() {
    let condition = json!({"type": "object", "required": ["status", "type"], "properties": {
        "lastTransitionTime": {"type": "string", "format": "date-time"},
        "message": {"type": "string", "maxLength": 32768},
        "observedGeneration": {"type": "integer", "format": "int64", "minimum": 0},
        "status": {"type": "string", "enum": ["True", "False", "Unknown"]},
        "type": {"type": "string", "maxLength": 316,
            "pattern": r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"}}});
    let root = json!({"type": "object", "description": "Certificate", "properties": {
        "apiVersion": {"type": "string", "description": "APIVersion"},
        "kind": {"type": "string"},
        "metadata": {"type": "object"},
        "spec": {"type": "object", "required": ["secretName"], "properties": {
            "secretName": {"type": "string"},
            "duration": {"type": "string"},
            "revisionHistoryLimit": {"type": "integer", "format": "int32"},
            "privateKey": {"type": "object", "properties": {
                "algorithm": {"type": "string", "enum": ["RSA", "ECDSA", "Ed25519"]},
                "size": {"type": "integer"}}},
            "dnsNames": {"type": "array", "items": {"type": "string"}},
            "port": {"anyOf": [{"type": "integer"}, {"type": "string"}], "x-kubernetes-int-or-string": true},
            "keystores": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}},
        "status": {"type": "object", "properties": {
            "conditions": {"type": "array", "items": condition,
                "x-kubernetes-list-map-keys": ["type"], "x-kubernetes-list-type": "map"},
            "notAfter": {"type": "string", "format": "date-time"}}}}});
    let s = match Structural::parse(&root, BASE) {
        Ok(s) => s,
        Err(e) => panic!("{e:?}"),
    };
    let mut obj = json!({"apiVersion": "cert-manager.io/v1", "kind": "Certificate",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"secretName": "web-tls", "dnsNames": ["a.example.com"], "port": "https",
            "privateKey": {"algorithm": "RSA", "size": 2048}, "keystores": {"jks": {"create": true}}, "typo": 1},
        "status": {"conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2024-05-01T10:00:00Z"}]}});
    assert_eq!(s.prune(&mut obj), ["spec.typo"]);
    s.apply_defaults(&mut obj);
    assert!(s.validate(&obj).is_empty(), "{:?}", s.validate(&obj));
    obj["spec"]["privateKey"]["algorithm"] = json!("DSA");
    obj["status"]["conditions"] =
        json!([{"type": "Ready", "status": "Maybe"}, {"type": "Ready", "status": "True"}]);
    let e: Vec<String> = s.validate(&obj).iter().map(|c| c.summary()).collect();
    assert_eq!(
        e,
        [
            r#"spec.privateKey.algorithm: Unsupported value: "DSA": supported values: "RSA", "ECDSA", "Ed25519""#,
            r#"status.conditions[0].status: Unsupported value: "Maybe": supported values: "True", "False", "Unknown""#,
            r#"status.conditions[1]: Duplicate value: map[string]interface {}{"type":"Ready"}"#,
        ]
    );
}

#[test]
fn status_updates_validate_status_alone() {
    let root = Structural::parse(
        &json!({"type": "object", "properties": {
            "spec": {"type": "object", "properties": {"n": {"type": "integer", "maximum": 1}}},
            "status": {"type": "object", "required": ["phase"], "properties": {
                "phase": {"type": "string"}, "replicas": {"type": "integer"}}}}}),
        BASE,
    )
    .unwrap();
    let old = json!({"spec": {"n": 5}, "status": {"phase": "A"}});
    let new = json!({"spec": {"n": 5}, "status": {"phase": "B", "replicas": "x"}});
    let e: Vec<String> = root
        .validate_status_update(&new, &old)
        .iter()
        .map(|c| c.summary())
        .collect();
    assert_eq!(
        e,
        [
            r#"status.replicas: Invalid value: "string": replicas in body must be of type integer: "string""#
        ]
    );
    let e: Vec<String> = root
        .validate_status_update(&json!({"status": {}}), &old)
        .iter()
        .map(|c| c.summary())
        .collect();
    assert_eq!(e, ["status.phase: Required value"]);
}
