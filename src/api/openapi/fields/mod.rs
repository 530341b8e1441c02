//! Request bodies checked the way upstream's typed JSON decoding checks
//! them: a value of the wrong JSON type is a decode error (400, with Go's
//! `json: cannot unmarshal ...` text), and a field the Go struct does not
//! have is a strict-decoding error (`unknown field "spec.foo"`) that
//! `fieldValidation` turns into a 400, a warning, or nothing; in every case
//! the field is dropped, as the typed struct has no place for it.
//!
//! Go's decoder reports the first type error only, and stops at the first
//! error of a type with its own decoder (IntOrString, Quantity, Time);
//! `type_errors[0]` is that error. Type errors take precedence over
//! strict errors.

mod index;
mod scalar;

use serde_json::{Map, Value};

use index::{Index, Struct, Ty};

/// What decoding a body into its Go type would have complained about.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FieldReport {
    /// Full upstream messages (`json: cannot unmarshal string into Go
    /// struct field DeploymentSpec.spec.replicas of type int32`); the one
    /// upstream reports first. Wrap as `<Kind> in version "<v>" cannot be
    /// handled as a <Kind>: <message>`.
    pub type_errors: Vec<String>,
    /// Paths of unknown fields in document order (`spec.foo`,
    /// `spec.template.spec.containers[0].bogus`), at most 100 as upstream.
    pub unknown: Vec<String>,
}

/// Upstream stops collecting strict errors here.
const MAX_STRICT: usize = 100;

impl FieldReport {
    /// `unknown field "spec.foo"`, one per unknown field: the warning texts
    /// (`Warning: 299 - "<text>"`) and the parts of the strict error.
    pub fn strict_messages(&self) -> Vec<String> {
        self.unknown
            .iter()
            .map(|path| format!("unknown field {}", crate::api::validation::go_quote(path)))
            .collect()
    }

    /// `strict decoding error: unknown field "spec.foo", unknown field
    /// "bogus"`, or None when nothing is unknown.
    pub fn strict_error(&self) -> Option<String> {
        if self.unknown.is_empty() {
            return None;
        }
        Some(format!(
            "strict decoding error: {}",
            self.strict_messages().join(", ")
        ))
    }
}

/// Checks `obj` against the Go type of `definition`
/// ("io.k8s.api.apps.v1.Deployment") and removes the fields that type does
/// not have. None when the definition is not one we know (custom
/// resources: nothing to check).
pub fn check_fields(definition: &str, obj: &mut Value) -> Option<FieldReport> {
    let (guard, root) = index::with_root(definition)?;
    let index = guard.as_ref()?;
    let mut walker = Walker {
        index,
        report: FieldReport::default(),
        strict_path: String::new(),
        struct_name: None,
        type_path: Vec::new(),
        fatal: false,
    };
    if let Value::Object(map) = obj {
        walker.type_meta(map);
    }
    if !walker.fatal {
        walker.check(&Ty::Struct(root), obj);
    }
    Some(walker.report)
}

struct Walker<'a> {
    index: &'a Index,
    report: FieldReport,
    /// `spec.containers[0]`: where strict errors say a field is.
    strict_path: String,
    /// Go's error context: the struct whose field is being decoded and the
    /// JSON names from the root (no indices, no map keys).
    struct_name: Option<&'a str>,
    type_path: Vec<String>,
    /// Set by the errors Go returns at once; nothing after them counts.
    fatal: bool,
}

impl<'a> Walker<'a> {
    /// `apiVersion` and `kind` are read first, into an anonymous struct,
    /// before the body is decoded into its type.
    fn type_meta(&mut self, map: &Map<String, Value>) {
        for key in ["apiVersion", "kind"] {
            match map.get(key) {
                None | Some(Value::Null | Value::String(_)) => {}
                Some(other) => {
                    self.report.type_errors.insert(
                        0,
                        format!(
                            "couldn't get version/kind; json parse error: json: cannot unmarshal {} into Go struct field .{key} of type string",
                            json_kind(other)
                        ),
                    );
                    self.fatal = true;
                    return;
                }
            }
        }
    }

    fn check(&mut self, ty: &Ty, value: &mut Value) {
        if self.fatal || value.is_null() {
            // Go decodes null as the zero value of anything.
            return;
        }
        match ty {
            Ty::Any => {}
            Ty::String => {
                if !value.is_string() {
                    self.mismatch(json_kind(value), ty);
                }
            }
            Ty::Bool => {
                if !value.is_boolean() {
                    self.mismatch(json_kind(value), ty);
                }
            }
            Ty::Float => {
                if !value.is_number() {
                    self.mismatch(json_kind(value), ty);
                }
            }
            Ty::Int32 | Ty::Int64 => match value {
                Value::Number(n) if !fits(n, ty) => self.mismatch(format!("number {n}"), ty),
                Value::Number(_) => {}
                other => self.mismatch(json_kind(other), ty),
            },
            Ty::Bytes => match value {
                Value::String(s) => {
                    if let Some(offset) = scalar::base64_error(s) {
                        self.error(format!("illegal base64 data at input byte {offset}"), false);
                    }
                }
                // Go fills a byte slice from an array of numbers too.
                Value::Array(_) => {}
                other => self.mismatch(json_kind(other), ty),
            },
            Ty::IntOrString => match value {
                Value::String(_) => {}
                Value::Number(n) if fits(n, &Ty::Int32) => {}
                other => {
                    let what = match other {
                        Value::Number(n) => format!("number {n}"),
                        other => json_kind(other),
                    };
                    let message = self.type_message(&what, "int32");
                    self.error(message, true);
                }
            },
            Ty::Quantity => {
                if let Some(message) = scalar::quantity_error(value) {
                    self.error(message.into(), true);
                }
            }
            Ty::Time => {
                if !value.is_string() {
                    let message = self.type_message(&json_kind(value), "string");
                    self.error(message, true);
                }
            }
            Ty::Struct(id) => match (value, self.index.get(*id)) {
                (Value::Object(map), Some(st)) => self.object(st, map),
                (Value::Object(_), None) => {}
                (other, _) => self.mismatch(json_kind(other), ty),
            },
            Ty::Array(item) => match value {
                Value::Array(items) => {
                    for (i, element) in items.iter_mut().enumerate() {
                        let len = self.strict_path.len();
                        self.strict_path.push_str(&format!("[{i}]"));
                        self.check(item, element);
                        self.strict_path.truncate(len);
                    }
                }
                other => self.mismatch(json_kind(other), ty),
            },
            Ty::Map(item) => match value {
                Value::Object(map) => {
                    for (key, element) in map.iter_mut() {
                        let len = self.push_strict(key);
                        self.check(item, element);
                        self.strict_path.truncate(len);
                    }
                }
                other => self.mismatch(json_kind(other), ty),
            },
        }
    }

    fn object(&mut self, st: &'a Struct, map: &mut Map<String, Value>) {
        let mut unknown = Vec::new();
        for (key, value) in map.iter_mut() {
            let Some(field) = st.field(key) else {
                unknown.push(key.clone());
                if self.report.unknown.len() < MAX_STRICT {
                    let len = self.push_strict(key);
                    if !self.report.unknown.contains(&self.strict_path) {
                        self.report.unknown.push(self.strict_path.clone());
                    }
                    self.strict_path.truncate(len);
                }
                continue;
            };
            let saved_struct = self.struct_name.replace(&*st.name);
            let depth = self.type_path.len();
            if let Some(inline) = field.embedded {
                self.type_path.push(inline.into());
            }
            self.type_path.push(key.clone());
            let len = self.push_strict(key);
            self.check(&field.ty, value);
            self.strict_path.truncate(len);
            self.type_path.truncate(depth);
            self.struct_name = saved_struct;
            if self.fatal {
                return;
            }
        }
        for key in unknown {
            map.remove(&key);
        }
    }

    /// Appends `.key` (or `key` at the root); returns the length to
    /// truncate back to.
    fn push_strict(&mut self, key: &str) -> usize {
        let len = self.strict_path.len();
        if len > 0 {
            self.strict_path.push('.');
        }
        self.strict_path.push_str(key);
        len
    }

    fn mismatch(&mut self, what: String, ty: &Ty) {
        let go_type = self.index.go_type(ty);
        let message = self.type_message(&what, &go_type);
        self.error(message, false);
    }

    /// Go's `UnmarshalTypeError` text, with the field context when there
    /// is one.
    fn type_message(&self, what: &str, go_type: &str) -> String {
        match self.struct_name {
            Some(name) => format!(
                "json: cannot unmarshal {what} into Go struct field {name}.{} of type {go_type}",
                self.type_path.join(".")
            ),
            None => format!("json: cannot unmarshal {what} into Go value of type {go_type}"),
        }
    }

    /// Records an error; a fatal one is what Go returns, ahead of any
    /// error saved before it.
    fn error(&mut self, message: String, fatal: bool) {
        if fatal {
            self.report.type_errors.insert(0, message);
            self.fatal = true;
        } else {
            self.report.type_errors.push(message);
        }
    }
}

/// How Go's decoder names a JSON value in type errors.
fn json_kind(value: &Value) -> String {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
    .into()
}

/// Whether a JSON number parses as the integer type (Go's ParseInt plus
/// range check: fractions and exponents never do).
fn fits(n: &serde_json::Number, ty: &Ty) -> bool {
    match (n.as_i64(), ty) {
        (Some(i), Ty::Int32) => i32::try_from(i).is_ok(),
        (Some(_), _) => true,
        (None, _) => false,
    }
}
