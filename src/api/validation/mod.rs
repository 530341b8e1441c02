//! Field-level validation with upstream Kubernetes' rules and message texts.
//!
//! A [`FieldCause`] is upstream's `field.Error` already rendered: `message`
//! is `ErrorBody()` (what a Status cause carries) and [`FieldCause::summary`]
//! is `Error()` (what the Status message aggregates). Kind strategies build
//! causes with the helpers here so every text matches what kubectl expects.

mod meta;
mod names;
mod owners;
mod render;
mod webhook;

use serde_json::{json, Value};

pub use meta::{validate_object_meta, validate_object_meta_update};
pub use names::{
    is_dns1035_label, is_dns1123_label, is_dns1123_subdomain, is_qualified_name,
    is_valid_label_value, NameRule,
};
/// Go's `%q` (`strconv.Quote`), which upstream uses for names in messages
/// such as `pods "x" not found`.
pub use render::go_quote;
pub use webhook::webhook_client_config;

/// One invalid field, as a Status cause.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldCause {
    /// Upstream's CauseType, e.g. "FieldValueInvalid".
    pub reason: &'static str,
    /// The body without the field path, e.g. `Invalid value: "x": ...`.
    pub message: String,
    /// The field path, e.g. "metadata.name".
    pub field: String,
}

impl FieldCause {
    fn new(reason: &'static str, field: &str, message: String) -> Self {
        FieldCause {
            reason,
            message,
            field: field.to_string(),
        }
    }

    /// The cause as it appears in `Status.details.causes`.
    pub fn to_status_cause(&self) -> Value {
        json!({"reason": self.reason, "message": self.message, "field": self.field})
    }

    /// Upstream `field.Error.Error()`: `<field>: <body>`.
    pub fn summary(&self) -> String {
        format!("{}: {}", self.field, self.message)
    }
}

/// Appends upstream's `: <detail>` only when there is a detail.
fn with_detail(head: String, detail: &str) -> String {
    if detail.is_empty() {
        head
    } else {
        format!("{head}: {detail}")
    }
}

/// Upstream `field.Invalid`.
pub fn invalid(field: &str, value: &Value, msg: &str) -> FieldCause {
    let body = with_detail(format!("Invalid value: {}", render::go_value(value)), msg);
    FieldCause::new("FieldValueInvalid", field, body)
}

/// `field.Invalid` whose bad value is a Go `[]string` (`None` = nil slice),
/// which upstream prints with `%#v`.
pub fn invalid_string_list(field: &str, values: Option<&[String]>, msg: &str) -> FieldCause {
    invalid_rendered(field, render::go_string_slice(values), msg)
}

/// `field.Invalid` for a bad value already rendered the way Go prints it.
fn invalid_rendered(field: &str, rendered: String, msg: &str) -> FieldCause {
    let body = with_detail(format!("Invalid value: {rendered}"), msg);
    FieldCause::new("FieldValueInvalid", field, body)
}

/// Upstream `field.Required`.
pub fn required(field: &str, msg: &str) -> FieldCause {
    FieldCause::new(
        "FieldValueRequired",
        field,
        with_detail("Required value".into(), msg),
    )
}

/// Upstream `field.Forbidden`.
pub fn forbidden(field: &str, msg: &str) -> FieldCause {
    FieldCause::new(
        "FieldValueForbidden",
        field,
        with_detail("Forbidden".into(), msg),
    )
}

/// Upstream `field.Duplicate`.
pub fn duplicate(field: &str, value: &Value) -> FieldCause {
    let body = format!("Duplicate value: {}", render::go_value(value));
    FieldCause::new("FieldValueDuplicate", field, body)
}

/// Upstream `field.TooLong` (v1.32+ wording; the value is never shown).
pub fn too_long(field: &str, max_bytes: usize) -> FieldCause {
    let body = format!("Too long: must have at most {max_bytes} bytes");
    FieldCause::new("FieldValueTooLong", field, body)
}

/// Upstream `field.TypeInvalid`: the JSON has the wrong type for the field.
pub fn type_invalid(field: &str, value: &Value, msg: &str) -> FieldCause {
    let body = with_detail(format!("Invalid value: {}", render::go_value(value)), msg);
    FieldCause::new("FieldValueTypeInvalid", field, body)
}

/// Upstream `field.NotSupported`: lists the valid values, each Go-quoted.
pub fn not_supported(field: &str, value: &Value, valid: &[&str]) -> FieldCause {
    let quoted: Vec<String> = valid.iter().map(|v| render::go_quote(v)).collect();
    let detail = if quoted.is_empty() {
        String::new()
    } else {
        format!("supported values: {}", quoted.join(", "))
    };
    let body = with_detail(
        format!("Unsupported value: {}", render::go_value(value)),
        &detail,
    );
    FieldCause::new("FieldValueNotSupported", field, body)
}

/// Upstream `ValidateImmutableField`'s cause; `value` is the new value.
pub fn immutable(field: &str, value: &Value) -> FieldCause {
    invalid(field, value, "field is immutable")
}

/// Upstream `ErrorList.ToAggregate().Error()`: repeated texts once, one
/// cause bare, several as `[a, b]`.
pub fn aggregate(causes: &[FieldCause]) -> String {
    let mut seen: Vec<String> = Vec::new();
    for cause in causes {
        let text = cause.summary();
        if !seen.contains(&text) {
            seen.push(text);
        }
    }
    if seen.len() == 1 {
        seen.remove(0)
    } else {
        format!("[{}]", seen.join(", "))
    }
}

/// Upstream `NewInvalid`'s message: `<Kind> "<name>" is invalid: <causes>`.
/// `kind` is the qualified kind as upstream prints it (`Deployment.apps`,
/// or just `Pod` for the core group).
pub fn invalid_message(kind: &str, name: &str, causes: &[FieldCause]) -> String {
    let head = format!("{kind} {} is invalid", render::go_quote(name));
    if causes.is_empty() {
        head
    } else {
        format!("{head}: {}", aggregate(causes))
    }
}

#[cfg(test)]
mod tests;
