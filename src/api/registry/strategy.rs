//! What differs between kinds on the write path: defaults, validation,
//! update rules and version conversion. Plain function pointers so entries
//! stay `static` data.

use serde_json::Value;

use crate::api::validation::FieldCause;

#[derive(Debug, Clone, Copy)]
pub struct Strategy {
    /// Fills upstream defaults; runs on create and update bodies.
    pub defaults: fn(&mut Value),
    /// Create-time preparation beyond defaults (e.g. initial status).
    pub prepare_create: fn(&mut Value),
    /// Kind rules checked on create and update (metadata rules are generic).
    pub validate: fn(&Value) -> Vec<FieldCause>,
    /// Extra checks on update: immutable fields and transitions.
    pub validate_update: fn(&Value, &Value) -> Vec<FieldCause>,
    /// Whether `metadata.generation` starts at 1 and grows on spec changes.
    pub generation: bool,
    /// Converts a body of this version into the storage version.
    pub to_storage: Option<fn(Value) -> Value>,
    /// Converts a stored object into this version.
    pub from_storage: Option<fn(Value) -> Value>,
}

fn no_change(_: &mut Value) {}

fn no_causes(_: &Value) -> Vec<FieldCause> {
    Vec::new()
}

fn no_update_causes(_: &Value, _: &Value) -> Vec<FieldCause> {
    Vec::new()
}

impl Strategy {
    /// A kind without spec/status rules (configmaps, secrets, ...).
    pub const PLAIN: Strategy = Strategy {
        defaults: no_change,
        prepare_create: no_change,
        validate: no_causes,
        validate_update: no_update_causes,
        generation: false,
        to_storage: None,
        from_storage: None,
    };

    /// A spec/status kind whose generation tracks spec changes.
    pub const SPEC: Strategy = Strategy {
        generation: true,
        ..Strategy::PLAIN
    };
}
