//! Structural OpenAPI v3 schemas of custom resources: validation,
//! defaulting and pruning.
//!
//! One CRD version's `schema.openAPIV3Schema` is parsed once into a
//! [`Structural`] tree (checked with upstream apiextensions' structural and
//! CRD-schema rules), then used on every write: [`Structural::prune`] drops
//! unknown fields, [`Structural::apply_defaults`] fills `default`s and
//! [`Structural::validate`] reports kube-openapi's errors converted to field
//! causes, word for word. Nested value validations (`allOf`, `anyOf`,
//! `oneOf`, `not`) are kept as trees of the same type: structural rules
//! allow them only value validations, which the same validator evaluates.

mod check;
mod default_check;
mod defaults;
mod formats;
mod gofmt;
mod lists;
mod parse;
mod resource;
mod validate;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use serde_json::Value;

use crate::api::validation::FieldCause;

/// `x-kubernetes-list-type` (with `x-kubernetes-list-map-keys` for maps).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListType {
    Atomic,
    Set,
    Map(Vec<String>),
}

/// `additionalProperties`: a bool or a schema.
#[derive(Clone, Debug)]
enum Additional {
    Allows(bool),
    Schema(Box<Structural>),
}

/// A parsed schema node (JSONSchemaProps restricted to what CRDs allow).
#[derive(Clone, Debug, Default)]
pub struct Structural {
    type_: String,
    /// Only formats upstream validates in CRDs; others are dropped at parse
    /// time as upstream's `StripUnsupportedFormatsPostProcess` does.
    format: String,
    nullable: bool,
    default: Option<Value>,
    has_title: bool,
    has_description: bool,
    properties: BTreeMap<String, Structural>,
    additional: Option<Additional>,
    items: Option<Box<Structural>>,
    preserve_unknown: Option<bool>,
    embedded: bool,
    int_or_string: bool,
    list_type: Option<String>,
    list_map_keys: Vec<String>,
    map_type: Option<String>,
    has_validations: bool,
    /// `items` given as a list of schemas (refused by check).
    items_is_array: bool,
    /// Present keywords CRDs refuse: (path child, upstream detail).
    unsupported: Vec<(&'static str, &'static str)>,
    vv: ValueValidation,
}

/// The value-validation keywords of one node.
#[derive(Clone, Debug, Default)]
struct ValueValidation {
    maximum: Option<f64>,
    exclusive_maximum: bool,
    minimum: Option<f64>,
    exclusive_minimum: bool,
    max_length: Option<i64>,
    min_length: Option<i64>,
    pattern: Option<Pattern>,
    max_items: Option<i64>,
    min_items: Option<i64>,
    unique_items: bool,
    multiple_of: Option<f64>,
    enum_: Option<Vec<Value>>,
    max_properties: Option<i64>,
    min_properties: Option<i64>,
    required: Vec<String>,
    all_of: Vec<Structural>,
    any_of: Vec<Structural>,
    one_of: Vec<Structural>,
    not: Option<Box<Structural>>,
}

/// A `pattern` as written plus its compiled form (None when it does not
/// compile; parse reports that, validation then reports it per value as
/// kube-openapi does).
#[derive(Clone, Debug)]
struct Pattern {
    source: String,
    regex: Option<regex::Regex>,
}

impl Structural {
    /// Parses `schema` and checks it is structural and a valid CRD schema;
    /// causes carry `base` (e.g. `spec.versions[0].schema.openAPIV3Schema`)
    /// as their path prefix.
    pub fn parse(schema: &Value, base: &str) -> Result<Structural, Vec<FieldCause>> {
        let mut errs = Vec::new();
        let root = parse::node(schema, base, &mut errs);
        if !errs.is_empty() {
            return Err(errs);
        }
        let errs = check::check(&root, base);
        if errs.is_empty() {
            Ok(root)
        } else {
            Err(errs)
        }
    }

    /// Validates a whole custom resource (the root is the object) as
    /// upstream's CR strategy does: kube-openapi schema validation, then
    /// embedded resources, then list-type set/map uniqueness.
    pub fn validate(&self, obj: &Value) -> Vec<FieldCause> {
        validate::validate(self, obj)
    }

    /// Validates an update: as [`Structural::validate`], but schema errors
    /// on values unchanged from `old` are dropped (upstream's ratcheting)
    /// and list-type uniqueness is only enforced when `old` satisfied it.
    pub fn validate_update(&self, obj: &Value, old: &Value) -> Vec<FieldCause> {
        validate::validate_update(self, obj, old)
    }

    /// Validates a write to the status subresource: only `status`, by its
    /// own schema (upstream's status validator: messages name the field
    /// relative to status), ratcheted against `old`, plus list types.
    pub fn validate_status_update(&self, obj: &Value, old: &Value) -> Vec<FieldCause> {
        validate::validate_status_update(self, obj, old)
    }

    /// Drops non-nullable nulls that have no default, then fills defaults
    /// (upstream `PruneNonNullableNullsWithoutDefaults` then `Default`).
    pub fn apply_defaults(&self, obj: &mut Value) {
        defaults::prune_nulls(obj, Some(self));
        defaults::default(obj, self);
    }

    /// Removes fields the schema does not specify; returns their paths
    /// sorted (`spec.foo`, `spec.items[0].bar`).
    pub fn prune(&self, obj: &mut Value) -> Vec<String> {
        let mut out = Vec::new();
        // The root is a resource: its apiVersion, kind and metadata stay.
        defaults::prune(obj, Some(self), true, "", &mut out);
        out.sort();
        out
    }

    /// The schema of a field: `properties[field]`, else the
    /// `additionalProperties` schema.
    pub fn child(&self, field: &str) -> Option<&Structural> {
        self.properties.get(field).or(match &self.additional {
            Some(Additional::Schema(s)) => Some(s),
            _ => None,
        })
    }

    /// The schema of array items.
    pub fn items(&self) -> Option<&Structural> {
        self.items.as_deref()
    }

    pub fn list_type(&self) -> ListType {
        match self.list_type.as_deref() {
            Some("set") => ListType::Set,
            Some("map") => ListType::Map(self.list_map_keys.clone()),
            _ => ListType::Atomic,
        }
    }

    /// `x-kubernetes-map-type: atomic`.
    pub fn map_type_atomic(&self) -> bool {
        self.map_type.as_deref() == Some("atomic")
    }

    /// The declared `type` ("object", "array", "string", ...; empty when
    /// unset, e.g. under `x-kubernetes-int-or-string`).
    pub fn type_name(&self) -> &str {
        &self.type_
    }
}
