//! Protobuf wire encoding for the gnostic messages: varints,
//! length-delimited fields, and gnostic's `Any`/`NamedAny` for vendor
//! extensions.

use serde_json::{Map, Value};

use super::yaml;

/// A protobuf message under construction. Proto3 leaves fields at their
/// zero value out of the encoding, as Go's marshaller does; oneof members
/// are written even when zero, because their presence is the information.
#[derive(Default)]
pub(super) struct Msg(pub(super) Vec<u8>);

impl Msg {
    fn varint(&mut self, mut value: u64) {
        while value >= 0x80 {
            self.0.push((value as u8) | 0x80);
            value >>= 7;
        }
        self.0.push(value as u8);
    }

    fn key(&mut self, field: u32, wire_type: u8) {
        self.varint(u64::from(field) << 3 | u64::from(wire_type));
    }

    pub(super) fn bytes(&mut self, field: u32, bytes: &[u8]) {
        self.key(field, 2);
        self.varint(bytes.len() as u64);
        self.0.extend_from_slice(bytes);
    }

    pub(super) fn message(&mut self, field: u32, msg: Msg) {
        self.bytes(field, &msg.0);
    }

    pub(super) fn string(&mut self, field: u32, value: Option<&Value>) {
        if let Some(Value::String(s)) = value {
            if !s.is_empty() {
                self.bytes(field, s.as_bytes());
            }
        }
    }

    /// `repeated string`: every element, empty ones too.
    pub(super) fn strings(&mut self, field: u32, value: Option<&Value>) {
        for s in value.and_then(Value::as_array).into_iter().flatten() {
            if let Value::String(s) = s {
                self.bytes(field, s.as_bytes());
            }
        }
    }

    pub(super) fn bool_always(&mut self, field: u32, value: bool) {
        self.key(field, 0);
        self.varint(u64::from(value));
    }

    pub(super) fn bool(&mut self, field: u32, value: Option<&Value>) {
        if value.and_then(Value::as_bool) == Some(true) {
            self.bool_always(field, true);
        }
    }

    pub(super) fn int64(&mut self, field: u32, value: Option<&Value>) {
        if let Some(n) = value.and_then(Value::as_i64).filter(|n| *n != 0) {
            self.key(field, 0);
            // int64 is encoded as its two's complement, as protobuf does.
            self.varint(n as u64);
        }
    }

    pub(super) fn double(&mut self, field: u32, value: Option<&Value>) {
        if let Some(f) = value.and_then(Value::as_f64).filter(|f| *f != 0.0) {
            self.key(field, 1);
            self.0.extend_from_slice(&f.to_le_bytes());
        }
    }

    /// gnostic `Any`: the value as YAML text (`google.protobuf.Any` unset).
    pub(super) fn any(&mut self, field: u32, value: Option<&Value>) {
        if let Some(value) = value {
            self.message(field, any(value));
        }
    }

    pub(super) fn anys(&mut self, field: u32, value: Option<&Value>) {
        for item in value.and_then(Value::as_array).into_iter().flatten() {
            self.message(field, any(item));
        }
    }

    /// Every `x-*` key of `obj` as a `NamedAny`, in document order.
    pub(super) fn extensions(&mut self, field: u32, obj: &Map<String, Value>) {
        for (name, value) in obj.iter().filter(|(k, _)| k.starts_with("x-")) {
            let mut named = Msg::default();
            named.bytes(1, name.as_bytes());
            named.message(2, any(value));
            self.message(field, named);
        }
    }
}

fn any(value: &Value) -> Msg {
    let mut msg = Msg::default();
    msg.bytes(2, yaml::to_yaml(value).as_bytes());
    msg
}
