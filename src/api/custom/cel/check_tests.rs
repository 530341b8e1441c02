//! CRD-time checks: undefined fields, result types and estimated costs,
//! and real CRDs that upstream accepts.

use serde_json::{json, Value};

use super::Rules;
use crate::api::validation::FieldCause;

const BASE: &str = "spec.versions[0].schema.openAPIV3Schema";
const RULE_AT: &str =
    "spec.versions[0].schema.openAPIV3Schema.properties[spec].x-kubernetes-validations[0].rule";

fn summaries(causes: &[FieldCause]) -> Vec<String> {
    causes.iter().map(FieldCause::summary).collect()
}

/// A resource schema whose `spec` has `props` and one rule.
fn with_rule(props: Value, rule: &str) -> Value {
    json!({"type": "object", "properties": {"spec": {"type": "object", "properties": props,
        "x-kubernetes-validations": [{"rule": rule}]}}})
}

fn check(schema: Value) -> Vec<String> {
    summaries(&Rules::check(&schema, BASE))
}

fn rendered(rule: &str) -> String {
    format!("apiextensions.ValidationRule{{Rule:{rule:?}, Message:\"\", MessageExpression:\"\", Reason:(*apiextensions.FieldValueErrorReason)(nil), FieldPath:\"\", OptionalOldSelf:(*bool)(nil)}}")
}

fn undefined(rule: &str, col: usize, field: &str) -> String {
    format!(
        "{RULE_AT}: Invalid value: {}: compilation failed: ERROR: <input>:1:{col}: undefined field '{field}'\n | {rule}\n | {}^",
        rendered(rule),
        ".".repeat(col - 1)
    )
}

#[test]
fn an_undeclared_field_is_refused_with_cel_go_text() {
    let props = json!({"bar": {"type": "integer"}});
    let rule = "self.foo == 1";
    assert_eq!(
        check(with_rule(props.clone(), rule)),
        vec![undefined(rule, 5, "foo")]
    );
    assert!(check(with_rule(props, "self.bar == 1")).is_empty());
}

#[test]
fn has_and_old_self_are_checked_too() {
    let props = json!({"bar": {"type": "string"}});
    let rule = "has(self.x)";
    assert_eq!(
        check(with_rule(props.clone(), rule)),
        vec![undefined(rule, 4, "x")]
    );
    let rule = "oldSelf.y == self.bar";
    assert_eq!(
        check(with_rule(props.clone(), rule)),
        vec![undefined(rule, 8, "y")]
    );
    // Two errors, listed by position.
    let errs = check(with_rule(props, "self.a == self.b"));
    assert_eq!(errs.len(), 1);
    assert!(errs[0].contains("1:5: undefined field 'a'"), "{}", errs[0]);
    assert!(errs[0].contains("\nERROR: <input>:1:15: undefined field 'b'"));
}

#[test]
fn columns_count_characters_and_wide_ones_show_wide() {
    let rule = "'é' == self.foo";
    let errs = check(with_rule(json!({}), rule));
    assert!(
        errs[0].ends_with("ERROR: <input>:1:12: undefined field 'foo'\n | 'é' == self.foo\n | .\u{ff0e}.........^"),
        "{errs:?}"
    );
}

#[test]
fn lists_and_maps_are_followed() {
    let props = json!({
        "items": {"type": "array", "items": {"type": "object", "properties": {"baz": {"type": "string"}}}},
        "labels": {"type": "object", "additionalProperties": {"type": "object",
            "properties": {"v": {"type": "string"}}}},
    });
    let rule = "self.items.all(i, i.bar == '')";
    assert_eq!(
        check(with_rule(props.clone(), rule)),
        vec![undefined(rule, 20, "bar")]
    );
    assert_eq!(
        check(with_rule(props.clone(), "self.items[0].nope == ''")).len(),
        1
    );
    let ok = [
        "self.items.all(i, i.baz == '')",
        "self.labels.anything.v == ''",
        "self.labels.all(k, self.labels[k].v != '')",
        "self.items.map(i, i.baz).size() > 0",
    ];
    for rule in ok {
        assert!(check(with_rule(props.clone(), rule)).is_empty(), "{rule}");
    }
    let errs = check(with_rule(
        props,
        "self.labels.all(k, self.labels[k].w != '')",
    ));
    assert!(errs[0].contains("undefined field 'w'"), "{errs:?}");
}

#[test]
fn dynamic_values_are_not_checked() {
    let props = json!({
        "ios": {"x-kubernetes-int-or-string": true},
        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
        "loose": {"type": "object", "x-kubernetes-preserve-unknown-fields": true,
                  "properties": {"a": {"type": "string"}}},
        "esc-aped": {"type": "string"},
    });
    for rule in [
        "self.ios == 1 || self.ios == 'a'",
        "self.free.anything.deeper == 1",
        "has(self.loose.b)",
        "self.esc__dash__aped == ''",
    ] {
        assert!(check(with_rule(props.clone(), rule)).is_empty(), "{rule}");
    }
}

#[test]
fn resource_roots_see_only_names_in_metadata() {
    let embedded = json!({"type": "object", "x-kubernetes-embedded-resource": true,
        "properties": {"spec": {"type": "object"}}});
    let schema = |rule: &str| {
        json!({"type": "object", "properties": {"e": embedded.clone()},
            "x-kubernetes-validations": [{"rule": rule}]})
    };
    for rule in [
        "self.metadata.name != ''",
        "has(self.metadata.generateName)",
        "self.kind == 'X' && self.apiVersion == 'v1'",
        "self.e.metadata.name == self.e.kind",
        "has(self.e.spec)",
    ] {
        assert!(check(schema(rule)).is_empty(), "{rule}");
    }
    let errs = check(schema("has(self.metadata.namespace)"));
    assert!(
        errs[0].contains("ERROR: <input>:1:4: undefined field 'namespace'"),
        "{errs:?}"
    );
    let errs = check(schema("self.e.metadata.labels.size() == 0"));
    assert!(errs[0].contains("undefined field 'labels'"), "{errs:?}");
}

#[test]
fn a_literal_that_is_not_bool_is_refused() {
    let errs = check(with_rule(json!({}), "'abc'"));
    assert_eq!(
        errs,
        vec![format!(
            "{RULE_AT}: Invalid value: {}: cel expression must evaluate to a bool",
            rendered("'abc'")
        )]
    );
    assert!(check(with_rule(json!({}), "true")).is_empty());
}

#[test]
fn message_expressions_are_checked_like_rules() {
    let schema = json!({"type": "object", "properties": {"spec": {"type": "object",
        "properties": {"a": {"type": "string"}},
        "x-kubernetes-validations": [{"rule": "self.a != ''", "messageExpression": "self.b"}]}}});
    let errs = check(schema);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(errs[0].starts_with("spec.versions[0].schema.openAPIV3Schema.properties[spec].x-kubernetes-validations[0].messageExpression: Invalid value: "), "{errs:?}");
    assert!(errs[0].ends_with(": messageExpression compilation failed: ERROR: <input>:1:5: undefined field 'b'\n | self.b\n | ....^"), "{errs:?}");
    let schema = json!({"type": "object", "properties": {"spec": {"type": "object",
        "x-kubernetes-validations": [{"rule": "true", "messageExpression": "1"}]}}});
    let errs = check(schema);
    assert!(
        errs[0].ends_with(": messageExpression must evaluate to a string"),
        "{errs:?}"
    );
}

#[test]
fn serving_a_stored_crd_does_not_type_check() {
    let schema = with_rule(json!({"bar": {"type": "integer"}}), "self.foo == 1");
    assert!(Rules::compile(&schema, BASE).is_ok());
}

fn list_of_strings(max_items: Option<u64>, rule: &str) -> Value {
    let mut list = json!({"type": "array", "items": {"type": "string"}});
    if let Some(n) = max_items {
        list["maxItems"] = json!(n);
    }
    with_rule(json!({"items": list}), rule)
}

#[test]
fn a_quadratic_rule_over_an_unbounded_list_is_too_expensive() {
    let rule = "self.items.all(x, self.items.all(y, x == y))";
    let hint = "(try simplifying the rule, or adding maxItems, maxProperties, and maxLength where arrays, maps, and strings are declared)";
    // The rule alone is over its limit, and so the schema's total.
    assert_eq!(
        check(list_of_strings(None, rule)),
        vec![
            format!("{RULE_AT}: Forbidden: estimated rule cost exceeds budget by factor of more than 100x {hint}"),
            format!("{RULE_AT}: Forbidden: contributed to estimated rule cost total exceeding cost limit for entire OpenAPIv3 schema"),
            format!("{BASE}: Forbidden: x-kubernetes-validations estimated rule cost total for entire OpenAPIv3 schema exceeds budget by factor of more than 100x {hint}"),
        ]
    );
    assert!(check(list_of_strings(Some(10), rule)).is_empty());
    // One pass over the same unbounded list is within the budget.
    assert!(check(list_of_strings(None, "self.items.all(x, x != '')")).is_empty());
}

#[test]
fn membership_in_an_unbounded_list_inside_a_loop_over_another_is_too_expensive() {
    let lists = |max: Option<u64>| {
        let mut list = json!({"type": "array", "items": {"type": "string"}});
        if let Some(n) = max {
            list["maxItems"] = json!(n);
        }
        json!({"a": list.clone(), "b": list})
    };
    let rule = "self.a.all(x, x in self.b)";
    let errs = check(with_rule(lists(None), rule));
    assert!(
        errs[0].starts_with(&format!(
            "{RULE_AT}: Forbidden: estimated rule cost exceeds budget by factor of more than 100x"
        )),
        "{errs:?}"
    );
    assert!(check(with_rule(lists(Some(64)), rule)).is_empty());
}

#[test]
fn a_regex_over_unbounded_strings_in_an_unbounded_list_is_too_expensive() {
    let rule = "self.items.all(x, x.matches('^[a-z]+$'))";
    let errs = check(list_of_strings(None, rule));
    assert!(
        errs[0].starts_with(&format!(
            "{RULE_AT}: Forbidden: estimated rule cost exceeds budget by factor of more than 100x"
        )),
        "{errs:?}"
    );
    let mut bounded = list_of_strings(Some(100), rule);
    bounded["properties"]["spec"]["properties"]["items"]["items"]["maxLength"] = json!(63);
    assert!(check(bounded).is_empty());
    // One regex on one unbounded string is fine.
    let one = with_rule(
        json!({"name": {"type": "string"}}),
        "self.name.matches('^[a-z]+$')",
    );
    assert!(check(one).is_empty());
}

#[test]
fn rules_under_unbounded_lists_are_multiplied_by_their_cardinality() {
    // Each rule on an item of an unbounded list runs once per item that fits
    // in a request; a loop over a nested unbounded list per item is too much.
    let item = json!({"type": "object", "properties": {"names": {"type": "array",
        "items": {"type": "string"}}},
        "x-kubernetes-validations": [{"rule": "self.names.all(n, n != '')"}]});
    let schema = json!({"type": "object", "properties": {"spec": {"type": "object",
        "properties": {"list": {"type": "array", "items": item}}}}});
    let errs = check(schema.clone());
    assert_eq!(errs.len(), 3, "{errs:?}");
    assert!(errs[0].starts_with("spec.versions[0].schema.openAPIV3Schema.properties[spec].properties[list].items.x-kubernetes-validations[0].rule: Forbidden: estimated rule cost exceeds budget"));
    let mut bounded = schema;
    bounded["properties"]["spec"]["properties"]["list"]["maxItems"] = json!(2);
    assert!(check(bounded).is_empty());
}

#[test]
fn the_total_of_all_rules_has_its_own_limit() {
    // ~4.2M each (a pass over ~1M strings): 25 of them pass one by one but
    // not together.
    let rules: Vec<Value> = (0..25)
        .map(|i| json!({"rule": format!("self.items.all(x, x != '{i}')")}))
        .collect();
    let schema = json!({"type": "object", "properties": {"spec": {"type": "object",
        "properties": {"items": {"type": "array", "items": {"type": "string"}}},
        "x-kubernetes-validations": rules}}});
    let errs = check(schema);
    assert_eq!(errs.len(), 5, "{errs:?}");
    assert!(errs[0].ends_with(".rule: Forbidden: contributed to estimated rule cost total exceeding cost limit for entire OpenAPIv3 schema"));
    assert!(errs[4].starts_with(&format!("{BASE}: Forbidden: x-kubernetes-validations estimated rule cost total for entire OpenAPIv3 schema exceeds budget by factor of 1.0")), "{}", errs[4]);
}

/// Every version schema of every CRD under `dir` (one per file).
fn fixture_causes(dir: &str) -> Vec<String> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut out = Vec::new();
    let mut paths: Vec<_> = std::fs::read_dir(&root)
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    paths.sort();
    assert!(!paths.is_empty(), "no fixtures in {dir}");
    for path in paths
        .iter()
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
    {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let crd: Value = match serde_saphyr::from_str(&text) {
            Ok(v) => v,
            Err(e) => panic!("{}: {e}", path.display()),
        };
        out.extend(
            super::super::check::definition(&crd, None)
                .iter()
                .map(|c| format!("{}: {}", path.display(), c.summary())),
        );
    }
    out
}

#[test]
fn real_crds_with_rules_are_accepted() {
    for dir in [
        "tests/fixtures/crds/gateway-api",
        "tests/fixtures/crds/cert-manager",
        "tests/fixtures/crds/prometheus-operator",
    ] {
        let causes = fixture_causes(dir);
        assert!(causes.is_empty(), "{causes:#?}");
    }
}
