//! Is a parsed schema structural, and a valid CRD schema? Upstream's
//! `ValidateStructural` (invariants and completeness, sorted by text) and
//! the schema part of `ValidateCustomResourceDefinitionOpenAPISchema`, in
//! that order and with their texts.

use serde_json::json;

use super::gofmt::{invalid, not_supported};
use super::{default_check, lists};
use super::{Additional, Structural};
use crate::api::validation::{forbidden, required, FieldCause};

#[derive(Clone, Copy, PartialEq)]
enum Level {
    Root,
    Item,
    Field,
}

const TYPES: &[&str] = &["array", "boolean", "integer", "number", "object", "string"];
const META_FIELDS: &[&str] = &["apiVersion", "kind", "metadata"];

/// All causes for the root schema at `base`.
pub(super) fn check(root: &Structural, base: &str) -> Vec<FieldCause> {
    let mut errs = Vec::new();
    if root.nullable {
        errs.push(forbidden(
            &format!("{base}.nullable"),
            "nullable cannot be true at the root",
        ));
    }
    let mut structural = Vec::new();
    invariants(root, Level::Root, base, &mut structural);
    completeness_vv(root, root, base, base, &mut structural);
    structural.sort_by_key(|c| c.summary());
    if structural.is_empty() {
        errs.extend(default_check::validate_defaults(root, base));
    }
    errs.extend(structural);
    let ctx = Ctx {
        inside_meta: false,
        no_defaults: None,
    };
    crd_schema(root, base, ctx, true, &mut errs);
    errs
}

fn child(path: &str, name: &str) -> String {
    format!("{path}.{name}")
}

fn prop(path: &str, name: &str) -> String {
    format!("{path}.properties[{name}]")
}

fn invariants(s: &Structural, lvl: Level, path: &str, errs: &mut Vec<FieldCause>) {
    if s.type_ == "array" && s.items.is_none() {
        errs.push(required(&child(path, "items"), "must be specified"));
    }
    if let Some(items) = &s.items {
        invariants(items, Level::Item, &child(path, "items"), errs);
    }
    for (k, v) in &s.properties {
        invariants(v, Level::Field, &prop(path, k), errs);
    }
    if let Some(add) = &s.additional {
        if lvl == Level::Root {
            errs.push(forbidden(
                &child(path, "additionalProperties"),
                "must not be used at the root",
            ));
        }
        if let Additional::Schema(a) = add {
            invariants(a, Level::Field, &child(path, "additionalProperties"), errs);
        }
    }
    let preserve = s.preserve_unknown == Some(true);
    if s.int_or_string && preserve {
        errs.push(invalid(
            &child(path, "x-kubernetes-preserve-unknown-fields"),
            &json!(true),
            "must be false if x-kubernetes-int-or-string is true",
        ));
    }
    if s.int_or_string && s.embedded {
        errs.push(invalid(
            &child(path, "x-kubernetes-embedded-resource"),
            &json!(true),
            "must be false if x-kubernetes-int-or-string is true",
        ));
    }
    let skip_any_of = int_or_string_pair(&s.vv.any_of);
    let skip_first_all_of =
        s.vv.all_of
            .first()
            .is_some_and(|a| int_or_string_pair(&a.vv.any_of));
    value_validation(s, skip_any_of, skip_first_all_of, path, errs);

    let check_metadata = lvl == Level::Root || s.embedded;
    let type_path = child(path, "type");
    if s.embedded && s.type_ != "object" {
        let msg = "must be object if x-kubernetes-embedded-resource is true";
        errs.push(if s.type_.is_empty() {
            required(&type_path, msg)
        } else {
            invalid(&type_path, &json!(s.type_), msg)
        });
    } else if s.type_.is_empty() && !s.int_or_string && !preserve {
        let msg = match lvl {
            Level::Root => "must not be empty at the root",
            Level::Item => "must not be empty for specified array items",
            Level::Field => "must not be empty for specified object fields",
        };
        errs.push(required(&type_path, msg));
    }
    if s.embedded && s.additional.is_some() {
        errs.push(forbidden(
            &child(path, "additionalProperties"),
            "must not be used if x-kubernetes-embedded-resource is set",
        ));
    }
    if lvl == Level::Root && !s.type_.is_empty() && s.type_ != "object" {
        errs.push(invalid(
            &type_path,
            &json!(s.type_),
            "must be object at the root",
        ));
    }
    for key in ["kind", "apiVersion"] {
        if let Some(p) = s.properties.get(key).filter(|_| check_metadata) {
            if p.type_ != "string" {
                let at = child(&prop(path, key), "type");
                errs.push(invalid(&at, &json!(p.type_), "must be string"));
            }
        }
    }
    if let Some(meta) = s.properties.get("metadata") {
        let at = prop(path, "metadata");
        if check_metadata && meta.type_ != "object" {
            errs.push(invalid(
                &child(&at, "type"),
                &json!(meta.type_),
                "must be object",
            ));
        }
        if lvl == Level::Root && !only_name_restrictions(meta) {
            errs.push(forbidden(
                &at,
                "must not specify anything other than name and generateName, but metadata is implicitly specified",
            ));
        }
    }
    if s.embedded && !preserve && s.properties.is_empty() {
        errs.push(required(
            &child(path, "properties"),
            "must not be empty if x-kubernetes-embedded-resource is true without x-kubernetes-preserve-unknown-fields",
        ));
    }
}

/// Root metadata may only say something about name and generateName.
fn only_name_restrictions(m: &Structural) -> bool {
    let props_ok = m
        .properties
        .keys()
        .all(|k| k == "name" || k == "generateName");
    let mut bare = m.clone();
    bare.properties.clear();
    bare.type_.clear();
    bare.default = None;
    props_ok && is_empty_node(&bare)
}

fn is_empty_node(s: &Structural) -> bool {
    let vv = &s.vv;
    s.type_.is_empty()
        && s.format.is_empty()
        && !s.nullable
        && s.default.is_none()
        && !s.has_title
        && !s.has_description
        && s.properties.is_empty()
        && s.additional.is_none()
        && s.items.is_none()
        && s.preserve_unknown != Some(true)
        && !s.embedded
        && !s.int_or_string
        && s.list_type.is_none()
        && s.list_map_keys.is_empty()
        && s.map_type.is_none()
        && !s.has_validations
        && vv.maximum.is_none()
        && !vv.exclusive_maximum
        && vv.minimum.is_none()
        && !vv.exclusive_minimum
        && vv.max_length.is_none()
        && vv.min_length.is_none()
        && vv.pattern.is_none()
        && vv.max_items.is_none()
        && vv.min_items.is_none()
        && !vv.unique_items
        && vv.multiple_of.is_none()
        && vv.enum_.is_none()
        && vv.max_properties.is_none()
        && vv.min_properties.is_none()
        && vv.required.is_empty()
        && vv.all_of.is_empty()
        && vv.any_of.is_empty()
        && vv.one_of.is_empty()
        && vv.not.is_none()
}

/// `anyOf: [{type: integer}, {type: string}]`, the int-or-string shape.
fn int_or_string_pair(any_of: &[Structural]) -> bool {
    let only = |s: &Structural, t: &str| {
        let mut bare = s.clone();
        bare.type_.clear();
        s.type_ == t && is_empty_node(&bare)
    };
    any_of.len() == 2 && only(&any_of[0], "integer") && only(&any_of[1], "string")
}

fn value_validation(
    s: &Structural,
    skip_any_of: bool,
    skip_first_all_of: bool,
    path: &str,
    errs: &mut Vec<FieldCause>,
) {
    let vv = &s.vv;
    if !skip_any_of {
        for (i, n) in vv.any_of.iter().enumerate() {
            nested(n, false, &format!("{path}.anyOf[{i}]"), errs);
        }
    }
    for (i, n) in vv.all_of.iter().enumerate() {
        nested(
            n,
            skip_first_all_of && i == 0,
            &format!("{path}.allOf[{i}]"),
            errs,
        );
    }
    for (i, n) in vv.one_of.iter().enumerate() {
        nested(n, false, &format!("{path}.oneOf[{i}]"), errs);
    }
    if let Some(n) = &vv.not {
        nested(n, false, &child(path, "not"), errs);
    }
    if let Some(p) = vv.pattern.as_ref().filter(|p| p.regex.is_none()) {
        let why = regex::Regex::new(&p.source)
            .err()
            .map(|e| {
                e.to_string()
                    .lines()
                    .last()
                    .unwrap_or_default()
                    .trim()
                    .to_string()
            })
            .unwrap_or_default();
        errs.push(invalid(
            &child(path, "pattern"),
            &json!(p.source),
            &format!("must be a valid regular expression, but isn't: error parsing regexp: {why}"),
        ));
    }
}

/// A schema under allOf/anyOf/oneOf/not: value validations only.
fn nested(s: &Structural, skip_any_of: bool, path: &str, errs: &mut Vec<FieldCause>) {
    value_validation(s, skip_any_of, false, path, errs);
    if let Some(items) = &s.items {
        nested(items, false, &child(path, "items"), errs);
    }
    for (k, v) in &s.properties {
        nested(v, false, &prop(path, k), errs);
    }
    let f = |errs: &mut Vec<FieldCause>, key: &str, msg: &str| {
        errs.push(forbidden(&child(path, key), msg));
    };
    if !s.type_.is_empty() {
        f(errs, "type", "must be empty to be structural");
    }
    // `additionalProperties: false` converts to nothing in a nested context.
    if !matches!(s.additional, None | Some(Additional::Allows(false))) {
        f(
            errs,
            "additionalProperties",
            "must be undefined to be structural",
        );
    }
    if s.default.is_some() {
        f(errs, "default", "must be undefined to be structural");
    }
    if s.has_title {
        f(errs, "title", "must be empty to be structural");
    }
    if s.has_description {
        f(errs, "description", "must be empty to be structural");
    }
    if s.nullable {
        f(errs, "nullable", "must be false to be structural");
    }
    let flags = [
        (
            s.preserve_unknown == Some(true),
            "x-kubernetes-preserve-unknown-fields",
            "must be false to be structural",
        ),
        (
            s.embedded,
            "x-kubernetes-embedded-resource",
            "must be false to be structural",
        ),
        (
            s.int_or_string,
            "x-kubernetes-int-or-string",
            "must be false to be structural",
        ),
        (
            !s.list_map_keys.is_empty(),
            "x-kubernetes-list-map-keys",
            "must be empty to be structural",
        ),
        (
            s.list_type.is_some(),
            "x-kubernetes-list-type",
            "must be undefined to be structural",
        ),
        (
            s.map_type.is_some(),
            "x-kubernetes-map-type",
            "must be undefined to be structural",
        ),
        (
            s.has_validations,
            "x-kubernetes-validations",
            "must be empty to be structural",
        ),
    ];
    for (set, key, msg) in flags {
        if set {
            f(errs, key, msg);
        }
    }
    if s.properties.contains_key("metadata") {
        errs.push(forbidden(
            &prop(path, "metadata"),
            "must not be specified in a nested context",
        ));
    }
}

/// Every property or items a value validation names must exist in the
/// structural part (checked from the root's value validations, as upstream).
fn completeness_vv(
    v: &Structural,
    s: &Structural,
    s_path: &str,
    v_path: &str,
    errs: &mut Vec<FieldCause>,
) {
    let vv = &v.vv;
    if let Some(n) = &vv.not {
        completeness_nested(n, Some(s), s_path, &child(v_path, "not"), errs);
    }
    let lists = [
        ("allOf", &vv.all_of),
        ("anyOf", &vv.any_of),
        ("oneOf", &vv.one_of),
    ];
    for (name, list) in lists {
        for (i, n) in list.iter().enumerate() {
            completeness_nested(n, Some(s), s_path, &format!("{v_path}.{name}[{i}]"), errs);
        }
    }
}

fn completeness_nested(
    v: &Structural,
    s: Option<&Structural>,
    s_path: &str,
    v_path: &str,
    errs: &mut Vec<FieldCause>,
) {
    let Some(s) = s else {
        errs.push(required(
            s_path,
            &format!("because it is defined in {v_path}"),
        ));
        return;
    };
    completeness_vv(v, s, s_path, v_path, errs);
    if let Some(items) = &v.items {
        let si = s.items.as_deref();
        completeness_nested(
            items,
            si,
            &child(s_path, "items"),
            &child(v_path, "items"),
            errs,
        );
    }
    for (k, vf) in &v.properties {
        match s.properties.get(k) {
            Some(sf) => completeness_nested(vf, Some(sf), &prop(s_path, k), &prop(v_path, k), errs),
            None => errs.push(required(
                &prop(s_path, k),
                &format!("because it is defined in {}", prop(v_path, k)),
            )),
        }
    }
}

#[derive(Clone, Copy)]
struct Ctx {
    inside_meta: bool,
    /// Why defaults are forbidden here, if they are.
    no_defaults: Option<&'static str>,
}

fn crd_schema(s: &Structural, path: &str, ctx: Ctx, root: bool, errs: &mut Vec<FieldCause>) {
    if !s.type_.is_empty() && !TYPES.contains(&s.type_.as_str()) {
        let valid: Vec<String> = TYPES.iter().map(|t| t.to_string()).collect();
        errs.push(not_supported(&child(path, "type"), &json!(s.type_), &valid));
    }
    if let (Some(_), Some(why)) = (&s.default, ctx.no_defaults) {
        errs.push(forbidden(
            &child(path, "default"),
            &format!("must not be set {why}"),
        ));
    }
    for (key, msg) in &s.unsupported {
        errs.push(forbidden(&child(path, key), msg));
    }
    if s.type_ == "null" {
        errs.push(forbidden(
            &child(path, "type"),
            "type cannot be set to null, use nullable as an alternative",
        ));
    }
    if s.items_is_array {
        errs.push(forbidden(
            &child(path, "items"),
            "items must be a schema object and not an array",
        ));
    }
    if ctx.inside_meta && s.embedded {
        errs.push(forbidden(
            &child(path, "x-kubernetes-embedded-resource"),
            "must not be used inside of resource meta",
        ));
    }
    if s.vv.unique_items {
        errs.push(forbidden(
            &child(path, "uniqueItems"),
            "uniqueItems cannot be set to true since the runtime complexity becomes quadratic",
        ));
    }
    if let Some(add) = &s.additional {
        if !s.properties.is_empty() && !matches!(add, Additional::Allows(true)) {
            errs.push(forbidden(
                &child(path, "additionalProperties"),
                "additionalProperties and properties are mutual exclusive",
            ));
        }
        if let Additional::Schema(a) = add {
            let mut sub = ctx;
            if ctx.inside_meta {
                sub.no_defaults = Some("inside additionalProperties applying to object metadata");
            }
            crd_schema(a, &child(path, "additionalProperties"), sub, false, errs);
        }
    }
    for (k, p) in &s.properties {
        let mut sub = ctx;
        if (root || s.embedded) && META_FIELDS.contains(&k.as_str()) {
            sub.inside_meta = true;
            if root {
                sub.no_defaults = Some(match k.as_str() {
                    "apiVersion" => "in top-level apiVersion",
                    "kind" => "in top-level kind",
                    _ => "in top-level metadata",
                });
            }
        }
        crd_schema(p, &prop(path, k), sub, false, errs);
    }
    if let Some(n) = &s.vv.not {
        crd_schema(n, &child(path, "not"), ctx, false, errs);
    }
    let lists = [
        ("allOf", &s.vv.all_of),
        ("oneOf", &s.vv.one_of),
        ("anyOf", &s.vv.any_of),
    ];
    for (name, list) in lists {
        for (i, n) in list.iter().enumerate() {
            crd_schema(n, &format!("{path}.{name}[{i}]"), ctx, false, errs);
        }
    }
    if let Some(items) = &s.items {
        crd_schema(items, &child(path, "items"), ctx, false, errs);
    }
    if s.preserve_unknown == Some(false) {
        errs.push(invalid(
            &child(path, "x-kubernetes-preserve-unknown-fields"),
            &json!(false),
            "must be true or undefined",
        ));
    }
    lists::list_and_map_types(s, path, errs);
}
