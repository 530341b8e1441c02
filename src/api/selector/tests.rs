//! Selector tests; expected texts are upstream's, byte for byte.

use super::*;
use serde_json::json;

const KEY_NAME_ERR: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const VALUE_ERR: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

fn labels(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

fn parse_err(s: &str) -> String {
    match LabelSelector::parse(s) {
        Ok(sel) => panic!("{s:?} parsed as {sel}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn parses_and_prints_canonically() {
    let cases = [
        ("", ""),
        ("a=b", "a=b"),
        ("a==b", "a==b"),
        ("a!=b", "a!=b"),
        ("a=", "a="),
        ("  env  =  prod ", "env=prod"),
        ("b=2,a=1", "a=1,b=2"),
        ("a,!b", "a,!b"),
        ("a>1,b<2", "a>1,b<2"),
        (
            "x in (foo,,baz),y,z notin ()",
            "x in (,baz,foo),y,z notin ()",
        ),
        ("x in (in,notin)", "x in (in,notin)"),
        ("x in (b,a,b)", "x in (a,b)"),
        ("x in (a,)", "x in (,a)"),
        ("example.com/app notin (a)", "example.com/app notin (a)"),
    ];
    for (input, want) in cases {
        let sel = LabelSelector::parse(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
        assert_eq!(sel.to_string(), want, "{input:?}");
        // The canonical form parses back to the same selector.
        assert_eq!(LabelSelector::parse(want), Ok(sel), "{want:?}");
    }
    assert!(LabelSelector::parse("").is_ok_and(|s| s.is_everything()));
    assert!(!LabelSelector::parse("a").is_ok_and(|s| s.is_everything()));
}

#[test]
fn syntax_errors_have_upstream_texts() {
    let cases = [
        ("a b", "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"),
        ("a,", "found '', expected: identifier after ','"),
        (",a", "found ',', expected: !, identifier, or 'end of string'"),
        ("a in b", "unable to parse requirement: found 'b' expected: '('"),
        ("a in (b", "unable to parse requirement: found '', expected: ',' or ')'"),
        ("a in (=)", "unable to parse requirement: found '=', expected: ',', ')' or identifier"),
        ("a in (b c)", "unable to parse requirement: found 'c', expected: ',' or ')'"),
        ("a=b c", "found 'c', expected: ',' or 'end of string'"),
        ("!", "unable to parse requirement: found '', expected: identifier"),
        ("!a=b", "found '=', expected: ',' or 'end of string'"),
        ("a=(", "unable to parse requirement: found '(', expected: identifier"),
        (
            "a>b",
            "unable to parse requirement: values[0]: Invalid value: \"b\": for 'Gt', 'Lt' operators, the value must be an integer",
        ),
    ];
    for (input, want) in cases {
        assert_eq!(parse_err(input), want, "{input:?}");
    }
}

#[test]
fn keys_and_values_are_validated() {
    assert_eq!(
        parse_err("-a=b"),
        format!("unable to parse requirement: <nil>: Invalid value: \"-a\": {KEY_NAME_ERR}")
    );
    assert_eq!(
        parse_err("a=b$"),
        format!("unable to parse requirement: values[0][a]: Invalid value: \"b$\": {VALUE_ERR}")
    );
    assert_eq!(
        parse_err("a in (y$,x$)"),
        format!(
            "unable to parse requirement: [values[0][a]: Invalid value: \"x$\": {VALUE_ERR}, values[1][a]: Invalid value: \"y$\": {VALUE_ERR}]"
        )
    );
    let long = "v".repeat(64);
    assert_eq!(
        parse_err(&format!("a={long}")),
        format!("unable to parse requirement: values[0][a]: Invalid value: \"{long}\": must be no more than 63 characters")
    );
    assert!(LabelSelector::parse(&format!("a={}", "v".repeat(63))).is_ok());
}

#[test]
fn matches_like_upstream() {
    let l = labels(json!({"app": "web", "tier": "front", "n": "5"}));
    let yes = [
        "app=web",
        "app==web",
        "app!=db",
        "app in (web,db)",
        "x notin (a)",
        "app",
        "!x",
        "n>4",
        "n<6",
        "app=web,tier=front",
        "tier notin (back)",
        "",
    ];
    let no = [
        "app=db",
        "app!=web",
        "app in (db)",
        "x in (a)",
        "x",
        "!app",
        "n>5",
        "n<5",
        "app>1",
        "x>1",
        "x=",
        "app=web,tier=back",
    ];
    for s in yes {
        assert!(
            LabelSelector::parse(s).is_ok_and(|sel| sel.matches(&l)),
            "{s:?} should match"
        );
    }
    for s in no {
        assert!(
            LabelSelector::parse(s).is_ok_and(|sel| !sel.matches(&l)),
            "{s:?} should not match"
        );
    }
    let sel = LabelSelector::parse("app=web").unwrap_or_default();
    assert!(sel.matches_object(&json!({"metadata": {"labels": {"app": "web"}}})));
    assert!(!sel.matches_object(&json!({"metadata": {}})));
    assert!(!sel.matches_object(&json!({"metadata": {"labels": "app=web"}})));
}

#[test]
fn from_json_follows_label_selector_as_selector() {
    let sel = LabelSelector::from_json(&json!({
        "matchLabels": {"app": "web"},
        "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["b", "a"]},
            {"key": "x", "operator": "DoesNotExist"}
        ]
    }));
    let Ok(sel) = sel else { panic!("{sel:?}") };
    assert_eq!(sel.to_string(), "app=web,tier in (a,b),!x");
    assert!(sel.matches(&labels(json!({"app": "web", "tier": "a"}))));
    assert!(!sel.matches(&labels(json!({"app": "web", "tier": "a", "x": ""}))));
    for everything in [
        json!(null),
        json!({}),
        json!({"matchLabels": {}, "matchExpressions": []}),
    ] {
        assert_eq!(
            LabelSelector::from_json(&everything).map(|s| s.is_everything()),
            Ok(true)
        );
    }
    let err = |v: Value| {
        LabelSelector::from_json(&v)
            .map_err(|e| e.to_string())
            .err()
    };
    assert_eq!(
        err(json!({"matchExpressions": [{"key": "a", "operator": "Foo"}]})).as_deref(),
        Some("\"Foo\" is not a valid label selector operator")
    );
    assert_eq!(
        err(json!({"matchExpressions": [{"key": "a", "operator": "In", "values": []}]})).as_deref(),
        Some("values: Invalid value: []string(nil): for 'in', 'notin' operators, values set can't be empty")
    );
    assert_eq!(
        err(json!({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["v"]}]})).as_deref(),
        Some("values: Invalid value: []string{\"v\"}: values set must be empty for exists and does not exist")
    );
    assert_eq!(
        err(json!({"matchLabels": {"a/b/c": "x"}})).as_deref(),
        Some("key: Invalid value: \"a/b/c\": a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')")
    );
    assert!(err(json!("app=web")).is_some());
    assert!(err(json!({"matchLabels": "app"})).is_some());
    assert!(err(json!({"matchLabels": {"app": 1}})).is_some());
    assert!(
        err(json!({"matchExpressions": [{"key": "a", "operator": "In", "values": "x"}]})).is_some()
    );
}

fn field_err(s: &str) -> String {
    FieldSelector::parse(s)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default()
}

#[test]
fn field_selectors_parse_with_escapes() {
    let sel = FieldSelector::parse("status.phase==Running,metadata.name=x,spec.nodeName!=");
    let Ok(sel) = sel else { panic!("{sel:?}") };
    assert_eq!(
        sel.to_string(),
        "metadata.name=x,spec.nodeName!=,status.phase=Running"
    );
    assert_eq!(sel.exact_value("metadata.name"), Some("x"));
    assert_eq!(sel.exact_value("spec.nodeName"), None);
    let esc = FieldSelector::parse(r"metadata.name=a\,b\=c\\d,,");
    let Ok(esc) = esc else { panic!("{esc:?}") };
    assert_eq!(esc.exact_value("metadata.name"), Some(r"a,b=c\d"));
    assert_eq!(esc.to_string(), r"metadata.name=a\,b\=c\\d");
    assert!(FieldSelector::parse("").is_ok_and(|s| s.is_everything()));
    assert!(FieldSelector::parse(",").is_ok_and(|s| s.is_everything()));
    assert_eq!(
        field_err("a=b=c"),
        "invalid field selector: unescaped character in value: 61"
    );
    assert_eq!(
        field_err(r"a=b\x"),
        r"invalid field selector: invalid escape sequence: \x"
    );
    assert_eq!(
        field_err(r"a=b\"),
        r"invalid field selector: invalid escape sequence: \"
    );
    assert_eq!(
        field_err("a=b,abc"),
        "invalid selector: 'a=b,abc'; can't understand 'abc'"
    );
}

#[test]
fn field_labels_are_checked_per_resource() {
    let check = |sel: &str, group: &str, resource: &str| {
        FieldSelector::parse(sel)
            .and_then(|s| s.check_supported(group, resource))
            .map_err(|e| e.to_string())
    };
    assert_eq!(
        check(
            "spec.nodeName=n,status.phase=Running,spec.host=n",
            "",
            "pods"
        ),
        Ok(())
    );
    assert_eq!(
        check("spec.foo=x", "", "pods"),
        Err("field label not supported: spec.foo".into())
    );
    assert_eq!(
        check("metadata.namespace=x", "", "nodes"),
        Err("field label not supported: metadata.namespace".into())
    );
    assert_eq!(
        check("metadata.namespace=x,metadata.name=y", "", "configmaps"),
        Ok(())
    );
    assert_eq!(
        check("status.replicas=1", "apps", "replicasets"),
        Err("\"status.replicas\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\"".into())
    );
    assert_eq!(
        check("status.active=1", "batch", "jobs"),
        Err("field label \"status.active\" not supported for Job".into())
    );
    assert_eq!(
        check("involvedObject.name=x,reportingComponent=k", "", "events"),
        Ok(())
    );
    assert_eq!(
        check("regarding.name=x", "", "events"),
        Err("field label not supported: regarding.name".into())
    );
    assert_eq!(
        check(
            "regarding.name=x,reportingController=k",
            "events.k8s.io",
            "events"
        ),
        Ok(())
    );
    assert_eq!(check("type=Opaque", "", "secrets"), Ok(()));
    assert!(matches!(
        FieldSelector::parse("x=1").and_then(|s| s.check_supported("", "pods")),
        Err(SelectorError::FieldLabelNotSupported(_))
    ));
}

#[test]
fn field_values_come_from_the_object() {
    let m = |sel: &str, group: &str, resource: &str, obj: &Value| {
        FieldSelector::parse(sel).is_ok_and(|s| s.matches(group, resource, obj))
    };
    let pod = json!({"metadata": {"name": "p", "namespace": "ns"},
        "spec": {"nodeName": "n1"}, "status": {"phase": "Running", "podIPs": [{"ip": "10.0.0.1"}]}});
    assert!(m("metadata.name=p,metadata.namespace=ns", "", "pods", &pod));
    assert!(m(
        "spec.nodeName=n1,spec.host=n1,status.phase!=Pending",
        "",
        "pods",
        &pod
    ));
    assert!(m(
        "spec.hostNetwork=false,status.podIP=10.0.0.1",
        "",
        "pods",
        &pod
    ));
    assert!(m("status.podIPs=", "", "pods", &pod));
    assert!(!m("spec.nodeName=", "", "pods", &pod));
    assert!(m("spec.schedulerName=", "", "pods", &pod));
    assert!(m(
        "spec.unschedulable=true",
        "",
        "nodes",
        &json!({"spec": {"unschedulable": true}})
    ));
    assert!(m(
        "spec.unschedulable=false",
        "",
        "nodes",
        &json!({"spec": {}})
    ));
    assert!(m(
        "status.successful=0",
        "batch",
        "jobs",
        &json!({"status": {}})
    ));
    assert!(m(
        "status.successful=2",
        "batch",
        "jobs",
        &json!({"status": {"succeeded": 2}})
    ));
    assert!(m(
        "metadata.namespace=",
        "rbac.authorization.k8s.io",
        "clusterroles",
        &json!({"metadata": {"name": "c"}})
    ));
    let ev =
        json!({"involvedObject": {"name": "p"}, "reportingComponent": "kubelet", "source": {}});
    assert!(m(
        "involvedObject.name=p,source=kubelet,reportingComponent=kubelet",
        "",
        "events",
        &ev
    ));
    let ev2 = json!({"regarding": {"name": "p"}, "reportingController": "kubelet"});
    assert!(m(
        "regarding.name=p,reportingController=kubelet,source=kubelet",
        "events.k8s.io",
        "events",
        &ev2
    ));
    assert!(!m("spec.foo=x", "", "pods", &pod));
    assert!(m("spec.foo!=x", "", "pods", &pod));
    let sel = FieldSelector::parse("spec.host=n1");
    assert_eq!(
        sel.as_ref()
            .ok()
            .and_then(|s| s.exact_value("spec.nodeName")),
        Some("n1")
    );
}
