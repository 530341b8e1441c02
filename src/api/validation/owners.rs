//! `metadata.ownerReferences` checks (upstream `ValidateOwnerReferences`).
//!
//! Upstream reports these at `metadata.ownerReferences.<field>` without an
//! index, and prints whole references as Go structs; both are mirrored.

use serde_json::Value;

use super::{invalid, invalid_rendered, type_invalid, FieldCause};

const PATH: &str = "metadata.ownerReferences";

/// The fields of one reference, with absent strings as "".
struct OwnerRef<'a> {
    api_version: &'a str,
    kind: &'a str,
    name: &'a str,
    uid: &'a str,
    controller: Option<bool>,
    block_owner_deletion: Option<bool>,
}

impl<'a> OwnerRef<'a> {
    fn read(v: &'a Value) -> Self {
        let text = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("");
        OwnerRef {
            api_version: text("apiVersion"),
            kind: text("kind"),
            name: text("name"),
            uid: text("uid"),
            controller: v.get("controller").and_then(Value::as_bool),
            block_owner_deletion: v.get("blockOwnerDeletion").and_then(Value::as_bool),
        }
    }

    /// `%#v` of a `metav1.OwnerReference`. Go would print pointer addresses
    /// for the two `*bool` fields; their values are more useful and no
    /// client can depend on an address.
    fn go_syntax(&self) -> String {
        let ptr = |b: Option<bool>| match b {
            None => "(*bool)(nil)".to_string(),
            Some(b) => format!("(*bool)({b})"),
        };
        let q = super::render::go_quote;
        format!(
            "v1.OwnerReference{{APIVersion:{}, Kind:{}, Name:{}, UID:{}, Controller:{}, BlockOwnerDeletion:{}}}",
            q(self.api_version),
            q(self.kind),
            q(self.name),
            q(self.uid),
            ptr(self.controller),
            ptr(self.block_owner_deletion)
        )
    }

    /// Upstream `schema.FromAPIVersionAndKind`: (group, version), both empty
    /// when the apiVersion does not parse.
    fn group_version(&self) -> (&'a str, &'a str) {
        let gv = self.api_version;
        if gv.is_empty() || gv == "/" {
            return ("", "");
        }
        match gv.matches('/').count() {
            0 => ("", gv),
            1 => gv.split_once('/').unwrap_or(("", "")),
            _ => ("", ""),
        }
    }
}

pub(super) fn validate_owner_references(refs: Option<&Value>, errs: &mut Vec<FieldCause>) {
    let items = match refs {
        None | Some(Value::Null) => return,
        Some(Value::Array(items)) => items,
        Some(other) => {
            errs.push(type_invalid(PATH, other, "must be a list"));
            return;
        }
    };
    let mut parsed = Vec::new();
    for item in items {
        if !item.is_object() {
            errs.push(type_invalid(PATH, item, "must be an object"));
            continue;
        }
        parsed.push(OwnerRef::read(item));
    }
    let mut first_controller: Option<String> = None;
    for r in &parsed {
        let (group, version) = r.group_version();
        if version.is_empty() {
            let f = format!("{PATH}.apiVersion");
            errs.push(invalid(
                &f,
                &Value::from(r.api_version),
                "version must not be empty",
            ));
        }
        for (key, value) in [("kind", r.kind), ("name", r.name), ("uid", r.uid)] {
            if value.is_empty() {
                errs.push(invalid(
                    &format!("{PATH}.{key}"),
                    &Value::from(value),
                    "must not be empty",
                ));
            }
        }
        if group.is_empty() && version == "v1" && r.kind == "Event" {
            let msg = format!(
                "{group}/{version}, Kind={} is disallowed from being an owner",
                r.kind
            );
            errs.push(invalid_rendered(PATH, r.go_syntax(), &msg));
        }
        if r.controller == Some(true) {
            let current = format!("{}/{}", r.kind, r.name);
            match &first_controller {
                Some(first) => {
                    let all: Vec<String> = parsed.iter().map(OwnerRef::go_syntax).collect();
                    let msg = format!(
                        "Only one reference can have Controller set to true. Found \"true\" in references for {first} and {current}"
                    );
                    let rendered = format!("[]v1.OwnerReference{{{}}}", all.join(", "));
                    errs.push(invalid_rendered(PATH, rendered, &msg));
                }
                None => first_controller = Some(current),
            }
        }
    }
}
