//! Name and ObjectMeta validation tests; expected texts are upstream's.

use super::*;
use serde_json::json;

const SUBDOMAIN_ERR: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL_ERR: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";

fn summaries(causes: &[FieldCause]) -> Vec<String> {
    causes.iter().map(FieldCause::summary).collect()
}

#[test]
fn dns_names_and_lengths() {
    assert!(is_dns1123_subdomain("example.com").is_empty());
    assert!(is_dns1123_subdomain(&"a".repeat(253)).is_empty());
    assert_eq!(
        is_dns1123_subdomain(&"a".repeat(254)),
        ["must be no more than 253 characters"]
    );
    assert_eq!(is_dns1123_subdomain("Foo_bar"), [SUBDOMAIN_ERR]);
    for bad in ["", "-a", "a-", "a..b", ".a", "a."] {
        assert_eq!(is_dns1123_subdomain(bad), [SUBDOMAIN_ERR], "{bad:?}");
    }
    assert!(is_dns1123_label("my-name").is_empty());
    assert!(is_dns1123_label(&"a".repeat(63)).is_empty());
    assert_eq!(
        is_dns1123_label(&"a".repeat(64)),
        ["must be no more than 63 characters"]
    );
    assert_eq!(is_dns1123_label("a.b"), ["must not contain dots"]);
    assert_eq!(is_dns1123_label("A"), [LABEL_ERR]);
    assert!(is_dns1035_label("abc-123").is_empty());
    assert_eq!(
        is_dns1035_label("1abc"),
        ["a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')"]
    );
}

#[test]
fn qualified_names_and_label_values() {
    for ok in [
        "a",
        "MyName",
        "my.name",
        "123-abc",
        "example.com/MyName",
        "a_b",
    ] {
        assert!(is_qualified_name(ok).is_empty(), "{ok:?}");
    }
    assert_eq!(is_qualified_name("/a"), ["prefix part must be non-empty"]);
    assert_eq!(
        is_qualified_name("Ex.com/a"),
        [format!("prefix part {SUBDOMAIN_ERR}")]
    );
    let name_err = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
    assert_eq!(
        is_qualified_name("a/"),
        ["name part must be non-empty", name_err]
    );
    assert_eq!(is_qualified_name("-a"), [name_err]);
    assert_eq!(
        is_qualified_name(&"a".repeat(64)),
        ["name part must be no more than 63 characters"]
    );
    assert!(is_valid_label_value("").is_empty());
    assert!(is_valid_label_value("my_value").is_empty());
    assert_eq!(
        is_valid_label_value(&"a".repeat(64)),
        ["must be no more than 63 characters"]
    );
    assert_eq!(is_valid_label_value("-x").len(), 1);
}

#[test]
fn name_rules() {
    assert!(NameRule::Dns1123Subdomain.check("foo-", true).is_empty());
    assert_eq!(
        NameRule::Dns1123Subdomain.check("foo-", false),
        [SUBDOMAIN_ERR]
    );
    assert!(NameRule::Dns1123Label.check("x-", true).is_empty());
    assert_eq!(NameRule::PathSegment.check(".", false), ["may not be '.'"]);
    assert_eq!(
        NameRule::PathSegment.check("..", false),
        ["may not be '..'"]
    );
    assert!(NameRule::PathSegment.check(".", true).is_empty());
    assert_eq!(
        NameRule::PathSegment.check("a/b%", false),
        ["may not contain '/'", "may not contain '%'"]
    );
    assert!(NameRule::PathSegment
        .check("system:Admin", false)
        .is_empty());
    // A multi-byte character before the dash must not panic.
    assert_eq!(NameRule::Dns1123Label.check("é-", true).len(), 1);
}

#[test]
fn object_meta_on_create() {
    let ok = json!({"name": "web", "namespace": "default", "labels": {"app": "web"},
        "annotations": {"Example.com/Note": "x"}, "finalizers": ["example.com/f"]});
    assert!(validate_object_meta(&ok, true, NameRule::Dns1123Subdomain).is_empty());
    let bad = validate_object_meta(
        &json!({"name": "Foo_bar"}),
        false,
        NameRule::Dns1123Subdomain,
    );
    assert_eq!(
        summaries(&bad),
        [format!(
            "metadata.name: Invalid value: \"Foo_bar\": {SUBDOMAIN_ERR}"
        )]
    );
    assert_eq!(
        summaries(&validate_object_meta(
            &json!({}),
            true,
            NameRule::Dns1123Label
        )),
        [
            "metadata.name: Required value: name or generateName is required",
            "metadata.namespace: Required value"
        ]
    );
    assert_eq!(
        summaries(&validate_object_meta(
            &json!({"name": "n", "namespace": "x"}),
            false,
            NameRule::Dns1123Label
        )),
        ["metadata.namespace: Forbidden: not allowed on this type"]
    );
    let gen = validate_object_meta(
        &json!({"generateName": "Web-", "name": "web-x"}),
        false,
        NameRule::Dns1123Subdomain,
    );
    assert_eq!(
        summaries(&gen),
        [format!(
            "metadata.generateName: Invalid value: \"Web-\": {SUBDOMAIN_ERR}"
        )]
    );
    let neg = validate_object_meta(
        &json!({"name": "a", "generation": -1}),
        false,
        NameRule::Dns1123Label,
    );
    assert_eq!(
        summaries(&neg),
        ["metadata.generation: Invalid value: -1: must be greater than or equal to 0"]
    );
}

#[test]
fn labels_annotations_finalizers() {
    let meta = json!({"name": "a", "labels": {"app": "b$"}, "finalizers": ["orphan", "foregroundDeletion"]});
    let errs = summaries(&validate_object_meta(&meta, false, NameRule::Dns1123Label));
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert!(errs[0].starts_with("metadata.labels: Invalid value: \"b$\": a valid label must be"));
    assert_eq!(
        errs[1],
        "metadata.finalizers: Invalid value: []string{\"orphan\", \"foregroundDeletion\"}: finalizer orphan and foregroundDeletion cannot be both set"
    );
    let big = json!({"name": "a", "annotations": {"k": "v".repeat(256 * 1024)}});
    let errs = validate_object_meta(&big, false, NameRule::Dns1123Label);
    assert_eq!(
        summaries(&errs),
        ["metadata.annotations: Too long: must have at most 262144 bytes"]
    );
    assert_eq!(errs[0].reason, "FieldValueTooLong");
    let bad_key = validate_object_meta(
        &json!({"name": "a", "labels": {"a/b/c": "x"}}),
        false,
        NameRule::Dns1123Label,
    );
    assert_eq!(bad_key[0].field, "metadata.labels");
    assert!(bad_key[0]
        .message
        .starts_with("Invalid value: \"a/b/c\": a qualified name must consist"));
}

#[test]
fn wrong_json_types_are_causes() {
    let meta = json!({"name": 5, "labels": "app=web", "annotations": {"a": 1}, "finalizers": "x",
        "ownerReferences": {}, "managedFields": [{"operation": "Patch"}]});
    let errs = validate_object_meta(&meta, false, NameRule::Dns1123Label);
    let fields: Vec<&str> = errs.iter().map(|c| c.field.as_str()).collect();
    for want in [
        "metadata.name",
        "metadata.labels",
        "metadata.annotations",
        "metadata.finalizers",
        "metadata.ownerReferences",
        "metadata.managedFields[0].operation",
    ] {
        assert!(fields.contains(&want), "{want} missing from {fields:?}");
    }
    assert!(errs.iter().any(|c| c.reason == "FieldValueTypeInvalid"));
    let not_object = validate_object_meta(&json!("meta"), true, NameRule::Dns1123Label);
    assert_eq!(not_object[0].field, "metadata");
    assert!(
        !validate_object_meta_update(&json!([]), &json!(null), true, NameRule::Dns1123Label)
            .is_empty()
    );
}

#[test]
fn owner_references() {
    let meta = json!({"name": "a", "ownerReferences": [
        {"apiVersion": "apps/", "kind": "", "name": "", "uid": ""},
        {"apiVersion": "v1", "kind": "Event", "name": "e", "uid": "u"},
        {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "r1", "uid": "1", "controller": true},
        {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "r2", "uid": "2", "controller": true}
    ]});
    let errs = summaries(&validate_object_meta(&meta, false, NameRule::Dns1123Label));
    assert_eq!(
        errs[0],
        "metadata.ownerReferences.apiVersion: Invalid value: \"apps/\": version must not be empty"
    );
    assert_eq!(
        errs[1],
        "metadata.ownerReferences.kind: Invalid value: \"\": must not be empty"
    );
    assert_eq!(
        errs[3],
        "metadata.ownerReferences.uid: Invalid value: \"\": must not be empty"
    );
    assert!(
        errs[4].ends_with(": /v1, Kind=Event is disallowed from being an owner"),
        "{}",
        errs[4]
    );
    assert!(errs[5].ends_with("Only one reference can have Controller set to true. Found \"true\" in references for ReplicaSet/r1 and ReplicaSet/r2"));
    assert_eq!(errs.len(), 6);
}

#[test]
fn object_meta_on_update() {
    let old = json!({"name": "a", "namespace": "ns", "uid": "u1", "resourceVersion": "5",
        "generation": 3, "creationTimestamp": "2024-01-02T03:04:05Z"});
    let mut new = old.clone();
    assert!(validate_object_meta_update(&new, &old, true, NameRule::Dns1123Label).is_empty());
    new["name"] = json!("b");
    new["uid"] = json!("u2");
    new["generation"] = json!(2);
    new["creationTimestamp"] = json!("2025-01-01T00:00:00Z");
    new["deletionGracePeriodSeconds"] = json!(30);
    new.as_object_mut().map(|m| m.remove("resourceVersion"));
    assert_eq!(
        summaries(&validate_object_meta_update(&new, &old, true, NameRule::Dns1123Label)),
        [
            "metadata.resourceVersion: Invalid value: \"\": must be specified for an update",
            "metadata.generation: Invalid value: 2: must not be decremented",
            "metadata.name: Invalid value: \"b\": field is immutable",
            "metadata.uid: Invalid value: \"u2\": field is immutable",
            "metadata.creationTimestamp: Invalid value: 2025-01-01 00:00:00 +0000 UTC: field is immutable",
            "metadata.deletionGracePeriodSeconds: Invalid value: 30: field is immutable",
        ]
    );
    let deleting = json!({"name": "a", "resourceVersion": "1", "deletionTimestamp": "2024-01-01T00:00:00Z", "finalizers": ["x/a"]});
    let mut more = deleting.clone();
    more["finalizers"] = json!(["x/a", "x/c", "x/b"]);
    assert_eq!(
        summaries(&validate_object_meta_update(&more, &deleting, false, NameRule::Dns1123Label)),
        ["metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{\"x/b\", \"x/c\"}"]
    );
    let mut undeleted = deleting.clone();
    undeleted
        .as_object_mut()
        .map(|m| m.remove("deletionTimestamp"));
    assert_eq!(
        summaries(&validate_object_meta_update(
            &undeleted,
            &deleting,
            false,
            NameRule::Dns1123Label
        )),
        ["metadata.deletionTimestamp: Invalid value: null: field is immutable"]
    );
}

#[test]
fn cause_texts() {
    let c = invalid("metadata.name", &json!("Foo_bar"), "bad");
    assert_eq!(
        c.summary(),
        r#"metadata.name: Invalid value: "Foo_bar": bad"#
    );
    assert_eq!(
        c.to_status_cause(),
        json!({"reason": "FieldValueInvalid", "message": "Invalid value: \"Foo_bar\": bad", "field": "metadata.name"})
    );
    assert_eq!(required("metadata.namespace", "").message, "Required value");
    assert_eq!(
        forbidden("metadata.namespace", "not allowed on this type").summary(),
        "metadata.namespace: Forbidden: not allowed on this type"
    );
    assert_eq!(
        not_supported(
            "spec.restartPolicy",
            &json!("Sometimes"),
            &["Always", "Never"]
        )
        .message,
        r#"Unsupported value: "Sometimes": supported values: "Always", "Never""#
    );
    assert_eq!(
        immutable("spec.selector", &json!(3)).message,
        "Invalid value: 3: field is immutable"
    );
    assert_eq!(
        duplicate("spec.ports[1].name", &json!("http")).message,
        r#"Duplicate value: "http""#
    );
    assert_eq!(too_long("x", 5).reason, "FieldValueTooLong");
}

#[test]
fn invalid_message_brackets_only_several_distinct_causes() {
    let a = required("metadata.name", "name or generateName is required");
    let b = forbidden("metadata.namespace", "not allowed on this type");
    assert_eq!(
        invalid_message("Pod", "p", std::slice::from_ref(&a)),
        r#"Pod "p" is invalid: metadata.name: Required value: name or generateName is required"#
    );
    assert_eq!(
        invalid_message("Deployment.apps", "d", &[a.clone(), a.clone()]),
        r#"Deployment.apps "d" is invalid: metadata.name: Required value: name or generateName is required"#
    );
    assert_eq!(
        invalid_message("Namespace", "n", &[a, b]),
        "Namespace \"n\" is invalid: [metadata.name: Required value: name or generateName is required, metadata.namespace: Forbidden: not allowed on this type]"
    );
}
