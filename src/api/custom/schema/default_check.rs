//! Upstream `ValidateDefaults`: every `default` must be pruned already and
//! valid against its own schema.
//!
//! Defaults inside the metadata of embedded resources are not checked here
//! (upstream validates them inside a synthetic object); defaults in
//! top-level metadata are refused by the CRD checks anyway.

use super::gofmt::invalid;
use super::{defaults, validate, Structural};
use crate::api::validation::FieldCause;

pub(super) fn validate_defaults(root: &Structural, base: &str) -> Vec<FieldCause> {
    let mut errs = Vec::new();
    walk(root, base, true, false, &mut errs);
    errs
}

fn walk(s: &Structural, path: &str, root: bool, inside_meta: bool, errs: &mut Vec<FieldCause>) {
    let embedded = root || s.embedded;
    let inside_meta = inside_meta && !s.embedded;
    if let (Some(d), false) = (&s.default, inside_meta) {
        let at = format!("{path}.default");
        let mut pruned = d.clone();
        let mut dropped = Vec::new();
        defaults::prune(&mut pruned, Some(s), s.embedded, "", &mut dropped);
        if &pruned != d {
            errs.push(invalid(&at, d, "must not have unknown fields"));
        }
        let meta = validate::embedded_causes(s, d, &at);
        if !meta.is_empty() {
            errs.extend(meta);
        } else {
            errs.extend(validate::schema_causes(s, d).into_iter().map(|mut c| {
                // Upstream validates the default with its path as the base.
                c.field = if c.field == "<nil>" {
                    at.clone()
                } else {
                    format!("{at}.{}", c.field)
                };
                c
            }));
        }
    }
    if let Some(items) = &s.items {
        walk(items, &format!("{path}.items"), false, inside_meta, errs);
    }
    for (k, p) in &s.properties {
        let meta =
            inside_meta || (embedded && ["apiVersion", "kind", "metadata"].contains(&k.as_str()));
        walk(p, &format!("{path}.properties[{k}]"), false, meta, errs);
    }
}
