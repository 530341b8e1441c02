use serde_json::{json, Value};

use super::Rules;
use crate::api::validation::FieldCause;

const BASE: &str = "spec.versions[0].schema.openAPIV3Schema";

/// A custom resource schema with `spec` as given.
fn crd(spec: Value) -> Value {
    json!({"type": "object", "properties": {
        "apiVersion": {"type": "string"},
        "kind": {"type": "string"},
        "metadata": {"type": "object"},
        "spec": spec,
    }})
}

fn compiled(schema: Value) -> Rules {
    match Rules::compile(&schema, BASE) {
        Ok(r) => r,
        Err(e) => panic!("compile failed: {:?}", summaries(&e)),
    }
}

fn compile_errors(schema: Value) -> Vec<String> {
    match Rules::compile(&schema, BASE) {
        Ok(_) => panic!("expected compile errors"),
        Err(e) => summaries(&e),
    }
}

fn summaries(causes: &[FieldCause]) -> Vec<String> {
    causes.iter().map(FieldCause::summary).collect()
}

fn obj(spec: Value) -> Value {
    json!({"apiVersion": "example.com/v1", "kind": "Widget",
           "metadata": {"name": "w1", "namespace": "default", "labels": {"a": "b"}},
           "spec": spec})
}

fn check(rules: &Rules, new: Value, old: Option<Value>) -> Vec<String> {
    summaries(&rules.validate(&new, old.as_ref()))
}

fn spec_rule(props: Value, rule: Value) -> Rules {
    compiled(crd(
        json!({"type": "object", "properties": props, "x-kubernetes-validations": [rule]}),
    ))
}

#[test]
fn syntax_error_is_reported_with_the_rule_and_its_path() {
    let errs = compile_errors(
        json!({"type": "object", "x-kubernetes-validations": [{"rule": "self.x =="}]}),
    );
    assert_eq!(errs.len(), 1);
    let want = format!(
        "{BASE}.x-kubernetes-validations[0].rule: Invalid value: apiextensions.ValidationRule{{Rule:\"self.x ==\", Message:\"\", MessageExpression:\"\", Reason:(*apiextensions.FieldValueErrorReason)(nil), FieldPath:\"\", OptionalOldSelf:(*bool)(nil)}}: compilation failed: ERROR: <input>:1:"
    );
    assert!(errs[0].starts_with(&want), "{}", errs[0]);
    assert!(errs[0].contains("\n | self.x =="), "{}", errs[0]);
}

#[test]
fn nested_rule_errors_carry_the_schema_path() {
    let errs = compile_errors(crd(json!({"type": "object", "properties": {
        "replicas": {"type": "integer", "x-kubernetes-validations": [{"rule": "self >"}]}}})));
    let at =
        format!("{BASE}.properties[spec].properties[replicas].x-kubernetes-validations[0].rule: ");
    assert!(errs[0].starts_with(&at), "{}", errs[0]);
}

#[test]
fn undeclared_reference_is_a_compile_error() {
    let errs = compile_errors(
        json!({"type": "object", "x-kubernetes-validations": [{"rule": "self.a == foo"}]}),
    );
    assert!(
        errs[0].ends_with("compilation failed: ERROR: <input>:1:11: undeclared reference to 'foo' (in container '')\n | self.a == foo\n | ..........^"),
        "{}",
        errs[0]
    );
    // Comprehension variables are declared inside their macro.
    compiled(json!({"type": "array", "items": {"type": "string"},
        "x-kubernetes-validations": [{"rule": "self.all(x, x != '')"}]}));
}

#[test]
fn rule_and_message_shape_checks() {
    let errs = compile_errors(json!({"type": "object", "x-kubernetes-validations": [
        {"rule": "  "},
        {"rule": "true", "message": "two\nlines"},
        {"rule": "true &&\ntrue"},
        {"rule": "true", "reason": "Nope"},
    ]}));
    let v = format!("{BASE}.x-kubernetes-validations");
    assert_eq!(
        errs,
        vec![
            format!("{v}[0].rule: Required value: rule is not specified"),
            format!("{v}[1].message: Invalid value: \"two\\nlines\": message must not contain line breaks"),
            format!("{v}[2].message: Required value: message must be specified if rule contains line breaks"),
            format!("{v}[3].reason: Unsupported value: \"Nope\": supported values: \"FieldValueDuplicate\", \"FieldValueForbidden\", \"FieldValueInvalid\", \"FieldValueRequired\""),
        ]
    );
}

#[test]
fn field_path_must_name_a_field() {
    let errs = compile_errors(crd(json!({"type": "object",
        "properties": {"a": {"type": "string"}},
        "x-kubernetes-validations": [{"rule": "true", "fieldPath": ".b"}]})));
    assert_eq!(
        errs,
        vec![format!("{BASE}.properties[spec].x-kubernetes-validations[0].fieldPath: Invalid value: \".b\": fieldPath must be a valid path: does not refer to a valid field")]
    );
}

#[test]
fn old_self_is_refused_under_a_list_that_cannot_correlate() {
    let errs = compile_errors(crd(json!({"type": "object", "properties": {"names": {
        "type": "array",
        "items": {"type": "string", "x-kubernetes-validations": [{"rule": "self == oldSelf"}]}}}})));
    assert_eq!(
        errs,
        vec![format!("{BASE}.properties[spec].properties[names].items.x-kubernetes-validations[0].rule: Invalid value: \"self == oldSelf\": oldSelf cannot be used on the uncorrelatable portion of the schema within {BASE}.properties[spec].properties[names].items")]
    );
}

#[test]
fn message_expression_compile_error() {
    let errs = compile_errors(json!({"type": "object", "x-kubernetes-validations": [
        {"rule": "true", "messageExpression": "'a' +"}]}));
    assert!(errs[0].starts_with(&format!("{BASE}.x-kubernetes-validations[0].messageExpression: Invalid value: apiextensions.ValidationRule{{Rule:\"true\", Message:\"\", MessageExpression:\"'a' +\"")), "{}", errs[0]);
    assert!(
        errs[0].contains("messageExpression compilation failed: ERROR: <input>:1:"),
        "{}",
        errs[0]
    );
}

#[test]
fn no_rules_is_empty() {
    let r = compiled(crd(
        json!({"type": "object", "properties": {"a": {"type": "string"}}}),
    ));
    assert!(r.is_empty());
    assert!(r.validate(&obj(json!({"a": "x"})), None).is_empty());
    let r = spec_rule(json!({}), json!({"rule": "true"}));
    assert!(!r.is_empty());
}

#[test]
fn root_rule_failure_is_reported_at_nil() {
    let mut schema = crd(json!({"type": "object", "properties": {
        "replicas": {"type": "integer"}, "max": {"type": "integer"}}}));
    schema["x-kubernetes-validations"] = json!([{"rule": "self.spec.replicas <= self.spec.max"}]);
    let r = compiled(schema);
    assert!(check(&r, obj(json!({"replicas": 1, "max": 3})), None).is_empty());
    assert_eq!(
        check(&r, obj(json!({"replicas": 5, "max": 3})), None),
        vec!["<nil>: Invalid value: \"object\": failed rule: self.spec.replicas <= self.spec.max"]
    );
}

#[test]
fn root_sees_only_name_fields_of_metadata() {
    let mut schema = crd(json!({"type": "object"}));
    schema["x-kubernetes-validations"] = json!([
        {"rule": "self.metadata.name == 'w1' && self.kind == 'Widget'"},
        {"rule": "!has(self.metadata.labels) && !has(self.metadata.namespace)"},
    ]);
    let r = compiled(schema);
    assert!(check(&r, obj(json!({})), None).is_empty());
}

#[test]
fn message_and_message_expression() {
    let props = json!({"replicas": {"type": "integer"}});
    let r = spec_rule(
        props.clone(),
        json!({"rule": "self.replicas < 10", "message": " too many replicas "}),
    );
    assert_eq!(
        check(&r, obj(json!({"replicas": 12})), None),
        vec!["spec: Invalid value: \"object\": too many replicas"]
    );
    let r = spec_rule(
        props.clone(),
        json!({"rule": "self.replicas < 10",
        "messageExpression": "'replicas ' + string(self.replicas) + ' exceeds 9'"}),
    );
    assert_eq!(
        check(&r, obj(json!({"replicas": 12})), None),
        vec!["spec: Invalid value: \"object\": replicas 12 exceeds 9"]
    );
    // A messageExpression that fails falls back to the message.
    let r = spec_rule(
        props,
        json!({"rule": "self.replicas < 10", "message": "static",
        "messageExpression": "self.missing"}),
    );
    assert_eq!(
        check(&r, obj(json!({"replicas": 12})), None),
        vec!["spec: Invalid value: \"object\": static"]
    );
}

#[test]
fn reason_picks_the_cause_type() {
    let props = json!({"a": {"type": "string"}});
    let r = spec_rule(
        props.clone(),
        json!({"rule": "!has(self.a)", "message": "a is not allowed", "reason": "FieldValueForbidden"}),
    );
    let causes = r.validate(&obj(json!({"a": "x"})), None);
    assert_eq!(causes[0].reason, "FieldValueForbidden");
    assert_eq!(causes[0].summary(), "spec: Forbidden: a is not allowed");
    let r = spec_rule(
        props.clone(),
        json!({"rule": "has(self.a)", "message": "a is needed", "reason": "FieldValueRequired"}),
    );
    assert_eq!(
        check(&r, obj(json!({})), None),
        vec!["spec: Required value: a is needed"]
    );
    let r = spec_rule(
        props,
        json!({"rule": "false", "reason": "FieldValueDuplicate"}),
    );
    assert_eq!(
        check(&r, obj(json!({})), None),
        vec!["spec: Duplicate value: \"object\""]
    );
}

#[test]
fn field_path_moves_the_failure() {
    let props = json!({"limits": {"type": "object", "properties": {"max": {"type": "integer"}}},
                       "labels": {"type": "object", "additionalProperties": {"type": "string"}}});
    let r = spec_rule(
        props.clone(),
        json!({"rule": "self.limits.max > 0", "fieldPath": ".limits.max"}),
    );
    assert_eq!(
        check(&r, obj(json!({"limits": {"max": 0}})), None),
        vec!["spec.limits.max: Invalid value: \"object\": failed rule: self.limits.max > 0"]
    );
    let r = spec_rule(
        props,
        json!({"rule": "false", "fieldPath": ".labels['app.kubernetes.io/name']"}),
    );
    assert_eq!(
        check(&r, obj(json!({})), None),
        vec!["spec.labels[app.kubernetes.io/name]: Invalid value: \"object\": failed rule: false"]
    );
}

#[test]
fn evaluation_error_is_a_cause_not_a_panic() {
    let r = spec_rule(
        json!({"foo": {"type": "integer"}}),
        json!({"rule": "self.foo == 1"}),
    );
    assert_eq!(
        check(&r, obj(json!({})), None),
        vec!["spec: Invalid value: \"object\": no such key: foo evaluating rule: self.foo == 1"]
    );
    let r = spec_rule(
        json!({"n": {"type": "integer"}}),
        json!({"rule": "10 / self.n > 1", "message": "ratio"}),
    );
    assert_eq!(
        check(&r, obj(json!({"n": 0})), None),
        vec!["spec: Invalid value: \"object\": division by zero evaluating rule: ratio"]
    );
}

#[test]
fn transition_rules_need_an_old_value() {
    let r = compiled(crd(json!({"type": "object", "properties": {
        "mode": {"type": "string", "x-kubernetes-validations": [{"rule": "self == oldSelf", "message": "Value is immutable"}]}}})));
    // Create: no old object, the rule does not run.
    assert!(check(&r, obj(json!({"mode": "a"})), None).is_empty());
    // Update that keeps the value.
    assert!(check(
        &r,
        obj(json!({"mode": "a"})),
        Some(obj(json!({"mode": "a"})))
    )
    .is_empty());
    assert_eq!(
        check(
            &r,
            obj(json!({"mode": "b"})),
            Some(obj(json!({"mode": "a"})))
        ),
        vec!["spec.mode: Invalid value: \"string\": Value is immutable"]
    );
    // The field was absent before: no old value at that path.
    assert!(check(&r, obj(json!({"mode": "b"})), Some(obj(json!({})))).is_empty());
}

#[test]
fn map_lists_correlate_items_by_key() {
    let r = compiled(crd(json!({"type": "object", "properties": {"ports": {
        "type": "array",
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["name"],
        "items": {"type": "object",
            "properties": {"name": {"type": "string"}, "port": {"type": "integer"}},
            "x-kubernetes-validations": [{"rule": "self.port >= oldSelf.port", "message": "port may only grow"}]}}}})));
    let old = obj(json!({"ports": [{"name": "a", "port": 80}, {"name": "b", "port": 90}]}));
    // Reordered, "a" lowered, "c" new (no old value, skipped).
    let new = obj(
        json!({"ports": [{"name": "b", "port": 90}, {"name": "c", "port": 1}, {"name": "a", "port": 70}]}),
    );
    assert_eq!(
        check(&r, new, Some(old)),
        vec!["spec.ports[2]: Invalid value: \"object\": port may only grow"]
    );
}

#[test]
fn list_items_and_map_values_get_their_own_paths() {
    let r = compiled(crd(json!({"type": "object", "properties": {
        "names": {"type": "array", "items": {"type": "string",
            "x-kubernetes-validations": [{"rule": "self.startsWith('a')"}]}},
        "labels": {"type": "object", "additionalProperties": {"type": "string",
            "x-kubernetes-validations": [{"rule": "size(self) <= 3"}]}}}})));
    assert_eq!(
        check(
            &r,
            obj(json!({"names": ["ab", "b"], "labels": {"k": "long", "j": "ok"}})),
            None
        ),
        vec![
            "spec.labels[k]: Invalid value: \"string\": failed rule: size(self) <= 3",
            "spec.names[1]: Invalid value: \"string\": failed rule: self.startsWith('a')",
        ]
    );
}

#[test]
fn common_functions_and_macros() {
    let props = json!({
        "items": {"type": "array", "items": {"type": "integer"}},
        "name": {"type": "string"},
        "tags": {"type": "object", "additionalProperties": {"type": "string"}},
        "ratio": {"type": "number"},
        "count": {"type": "integer"},
    });
    let rules = [
        "self.items.all(i, i > 0)",
        "self.items.exists(i, i == 2)",
        "self.items.exists_one(i, i == 3)",
        "self.items.map(i, i * 2) == [2, 4, 6]",
        "self.items.filter(i, i > 1).size() == 2",
        "size(self.items) == 3 && size(self.name) == 5",
        "has(self.tags) && !has(self.missing)",
        "'env' in self.tags && 2 in self.items",
        "self.name.startsWith('we') && self.name.endsWith('go') && self.name.contains('dg')",
        "self.name.matches('^[a-z]+$')",
        "(self.count > 1 ? 'big' : 'small') == 'big'",
        "int('5') == 5 && string(self.count) == '7'",
        "self.ratio == 1.0 && self.count == 7",
        "self.tags.all(k, self.tags[k] != '')",
        "self.name.lowerAscii() == 'wedgo' && self.name.split('d') == ['we', 'go']",
    ];
    let list: Vec<Value> = rules.iter().map(|r| json!({"rule": r})).collect();
    let r = compiled(crd(
        json!({"type": "object", "properties": props, "x-kubernetes-validations": list}),
    ));
    let o = obj(
        json!({"items": [1, 2, 3], "name": "wedgo", "tags": {"env": "prod"}, "ratio": 1, "count": 7}),
    );
    assert_eq!(check(&r, o, None), Vec::<String>::new());
}

#[test]
fn escaped_property_names_and_formats() {
    let r = spec_rule(
        json!({"my-field": {"type": "integer"}, "if": {"type": "string"},
               "at": {"type": "string", "format": "date-time"},
               "every": {"type": "string", "format": "duration"}}),
        json!({"rule": "self.my__dash__field == 1 && self.__if__ == 'x' && self.at < timestamp('2030-01-01T00:00:00Z') && self.every > duration('1m')"}),
    );
    let o = obj(json!({"my-field": 1, "if": "x", "at": "2024-05-01T10:00:00Z", "every": "1h"}));
    assert_eq!(check(&r, o, None), Vec::<String>::new());
}

#[test]
fn null_values_are_not_validated() {
    let r = compiled(crd(json!({"type": "object", "properties": {
        "a": {"type": "string", "nullable": true, "x-kubernetes-validations": [{"rule": "self != ''"}]}}})));
    assert!(check(&r, obj(json!({"a": null})), None).is_empty());
    assert_eq!(check(&r, obj(json!({"a": ""})), None).len(), 1);
}

#[test]
fn int_or_string_is_dynamic() {
    let r = compiled(crd(json!({"type": "object", "properties": {"port": {
        "x-kubernetes-int-or-string": true,
        "x-kubernetes-validations": [{"rule": "type(self) == int ? self > 0 : self.endsWith('%')"}]}}})));
    assert!(check(&r, obj(json!({"port": 8080})), None).is_empty());
    assert!(check(&r, obj(json!({"port": "50%"})), None).is_empty());
    assert_eq!(
        check(&r, obj(json!({"port": "http"})), None),
        vec!["spec.port: Invalid value: \"\": failed rule: type(self) == int ? self > 0 : self.endsWith('%')"]
    );
}

#[test]
fn runaway_rule_is_cut_off_by_the_cost_limit() {
    let r = spec_rule(
        json!({"xs": {"type": "array", "items": {"type": "integer"}}}),
        json!({"rule": "self.xs.all(a, self.xs.all(b, self.xs.all(c, a + b + c >= 0)))"}),
    );
    let xs: Vec<i64> = (0..200).collect();
    let out = check(&r, obj(json!({"xs": xs})), None);
    assert_eq!(
        out,
        vec!["spec: Invalid value: \"object\": 'operation cancelled: actual cost limit exceeded': no further validation rules will be run due to call cost exceeds limit for rule: self.xs.all(a, self.xs.all(b, self.xs.all(c, a + b + c >= 0)))"]
    );
    // A small list stays well within the budget.
    assert!(check(&r, obj(json!({"xs": [1, 2, 3]})), None).is_empty());
}

#[test]
fn embedded_resource_is_a_resource_root() {
    let r = compiled(crd(json!({"type": "object", "properties": {"template": {
        "type": "object",
        "x-kubernetes-embedded-resource": true,
        "x-kubernetes-preserve-unknown-fields": true,
        "x-kubernetes-validations": [{"rule": "self.kind == 'Pod' && !has(self.metadata.labels)"}]}}})));
    let o = obj(
        json!({"template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "labels": {"x": "y"}}}}),
    );
    assert!(check(&r, o, None).is_empty());
}

#[test]
fn unchanged_values_ratchet_failures_of_plain_rules() {
    let r = compiled(crd(json!({"type": "object", "properties": {
        "a": {"type": "string", "x-kubernetes-validations": [{"rule": "self.size() < 3"}]},
        "b": {"type": "string"}}})));
    let old = obj(json!({"a": "long", "b": "x"}));
    // `a` already failed before and is unchanged: no error on update.
    assert!(check(&r, obj(json!({"a": "long", "b": "y"})), Some(old.clone())).is_empty());
    // Changing `a` to another bad value fails.
    assert_eq!(
        check(&r, obj(json!({"a": "longer", "b": "x"})), Some(old)),
        vec!["spec.a: Invalid value: \"string\": failed rule: self.size() < 3"]
    );
}

#[test]
fn optional_old_self_runs_on_create_too() {
    let r = compiled(crd(
        json!({"type": "object", "properties": {"n": {"type": "integer",
        "x-kubernetes-validations": [{"rule": "oldSelf.hasValue() ? self >= oldSelf.value() : self < 100",
                                      "optionalOldSelf": true}]}}}),
    ));
    assert_eq!(check(&r, obj(json!({"n": 150})), None).len(), 1);
    assert!(check(&r, obj(json!({"n": 5})), None).is_empty());
    assert!(check(&r, obj(json!({"n": 150})), Some(obj(json!({"n": 120})))).is_empty());
    assert_eq!(
        check(&r, obj(json!({"n": 110})), Some(obj(json!({"n": 120})))).len(),
        1
    );
    // Not allowed without oldSelf in the rule.
    let errs = compile_errors(json!({"type": "object", "x-kubernetes-validations": [
        {"rule": "true", "optionalOldSelf": true}]}));
    assert_eq!(
        errs,
        vec![format!("{BASE}.x-kubernetes-validations[0].optionalOldSelf: Invalid value: true: may not be set if oldSelf is not used in rule")]
    );
}

#[test]
fn kubernetes_library_functions() {
    let props = json!({
        "xs": {"type": "array", "items": {"type": "integer"}},
        "url": {"type": "string"}, "ip": {"type": "string"}, "net": {"type": "string"},
        "mem": {"type": "string"}, "name": {"type": "string"},
    });
    let rules = [
        "self.xs.isSorted() && self.xs.sum() == 6",
        "isURL(self.url) && !isURL('not a url')",
        "isIP(self.ip) && !isIP('1.2.3') && isCIDR(self.net) && !isCIDR('10.0.0.0/33')",
        "isQuantity(self.mem) && quantity(self.mem).isGreaterThan(quantity('1Gi'))",
        "quantity('1Gi').compareTo(quantity('1024Mi')) == 0 && quantity('500m').asApproximateFloat() == 0.5",
        "self.name.find('[0-9]+') == '42' && self.name.findAll('[a-z]') == ['a', 'b']",
    ];
    let list: Vec<Value> = rules.iter().map(|r| json!({"rule": r})).collect();
    let r = compiled(crd(
        json!({"type": "object", "properties": props, "x-kubernetes-validations": list}),
    ));
    let o = obj(
        json!({"xs": [1, 2, 3], "url": "https://example.com/x", "ip": "10.0.0.1",
        "net": "10.0.0.0/8", "mem": "2Gi", "name": "a42b"}),
    );
    assert_eq!(check(&r, o, None), Vec::<String>::new());
    let o = obj(
        json!({"xs": [3, 2], "url": "https://example.com/x", "ip": "10.0.0.1",
        "net": "10.0.0.0/8", "mem": "512Mi", "name": "a42b"}),
    );
    assert_eq!(check(&r, o, None).len(), 2);
}

#[test]
fn unknown_function_fails_the_object_not_the_server() {
    let r = spec_rule(
        json!({"name": {"type": "string"}}),
        json!({"rule": "self.name.bogus()"}),
    );
    let out = check(&r, obj(json!({"name": "x"})), None);
    assert_eq!(out.len(), 1);
    assert!(
        out[0].starts_with("spec: Invalid value: \"object\": "),
        "{}",
        out[0]
    );
    assert!(
        out[0].ends_with(" evaluating rule: self.name.bogus()"),
        "{}",
        out[0]
    );
}

#[test]
fn rules_can_be_shared_between_threads() {
    fn shared<T: Send + Sync + std::fmt::Debug>(_: &T) {}
    let r = compiled(crd(
        json!({"type": "object", "properties": {"a": {"type": "string",
        "x-kubernetes-validations": [{"rule": "self != ''"}, {"rule": "size(self) < 9"}]}}}),
    ));
    shared(&r);
    assert_eq!(format!("{r:?}"), "Rules { rules: 2 }");
}
