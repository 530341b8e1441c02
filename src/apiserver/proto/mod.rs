//! Kubernetes protobuf request bodies (`application/vnd.kubernetes.protobuf`)
//! decoded into the JSON object the client would have sent as JSON.
//!
//! kubectl's typed clients send protobuf; everything past the request
//! decoder works on JSON. The wire schema comes from generated tables
//! (`fields_*.rs`, see `packaging/gen-proto-fields.py`): per message, the
//! field numbers with their JSON names and types. gogo-protobuf writes
//! non-pointer scalars even when zero, so the tables also say which zeros
//! JSON (`omitempty`) would have dropped.

mod decode;
mod fields_apiext;
mod fields_apps;
mod fields_core;
mod fields_meta;
mod fields_other;
mod special;
mod tables;
mod wire;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_more;

use serde_json::{Map, Value};

use wire::{Reader, Val};

pub const CONTENT_TYPE: &str = "application/vnd.kubernetes.protobuf";

/// Every protobuf object starts with this (`k8s\0`).
const MAGIC: [u8; 4] = *b"k8s\0";
/// Deeper messages are refused rather than recursed into.
const MAX_DEPTH: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum ProtoError {
    #[error("the protobuf body does not start with the kubernetes prefix")]
    Magic,
    #[error("the protobuf data is truncated")]
    Truncated,
    #[error("the protobuf data has a malformed varint")]
    Varint,
    #[error("the protobuf data has an invalid field number")]
    FieldNumber,
    #[error("the protobuf data has unsupported wire type {0}")]
    UnsupportedWireType(u8),
    #[error("wrong wire type {got} for field {field} of {message}, expected {want}")]
    WireType {
        message: String,
        field: u32,
        got: u8,
        want: u8,
    },
    #[error("the protobuf data nests deeper than {MAX_DEPTH} levels")]
    TooDeep,
    #[error("the protobuf envelope has no apiVersion and kind")]
    NoKind,
    #[error("no protobuf schema for kind {kind} in {api_version}")]
    UnknownKind { api_version: String, kind: String },
    #[error("unsupported protobuf content encoding {0:?}")]
    ContentEncoding(String),
    #[error("invalid protobuf data: {0}")]
    Invalid(String),
}

/// Decodes a Kubernetes protobuf envelope (the magic `k8s\0`, then
/// runtime.Unknown {typeMeta {apiVersion = 1, kind = 2} = 1, raw = 2,
/// contentEncoding = 3, contentType = 4}) into the object's JSON, with
/// apiVersion and kind set from typeMeta.
pub fn decode(body: &[u8]) -> Result<Value, ProtoError> {
    decode_at(body, 0)
}

/// [`decode`] at a nesting depth (a RawExtension may embed an envelope).
fn decode_at(body: &[u8], depth: usize) -> Result<Value, ProtoError> {
    let unknown = body.strip_prefix(&MAGIC).ok_or(ProtoError::Magic)?;
    let (mut api_version, mut kind, mut raw) = (String::new(), String::new(), &[][..]);
    let mut r = Reader::new(unknown);
    while let Some((tag, val)) = r.next_field()? {
        match (tag, val) {
            (1, Val::Len(type_meta)) => {
                let mut t = Reader::new(type_meta);
                while let Some((tag, val)) = t.next_field()? {
                    match (tag, val) {
                        (1, Val::Len(b)) => api_version = decode::text(b),
                        (2, Val::Len(b)) => kind = decode::text(b),
                        _ => {}
                    }
                }
            }
            (2, Val::Len(b)) => raw = b,
            // Upstream defines no content encodings; a set one is unreadable.
            (3, Val::Len(b)) if !b.is_empty() => {
                return Err(ProtoError::ContentEncoding(decode::text(b)))
            }
            (3, Val::Len(_)) => {}
            (1..=3, v) => {
                return Err(ProtoError::WireType {
                    message: "runtime.Unknown".into(),
                    field: tag,
                    got: v.wire_type(),
                    want: wire::LEN,
                })
            }
            _ => {}
        }
    }
    if kind.is_empty() || api_version.is_empty() {
        return Err(ProtoError::NoKind);
    }
    let name =
        tables::kind_message(&api_version, &kind).ok_or_else(|| ProtoError::UnknownKind {
            api_version: api_version.clone(),
            kind: kind.clone(),
        })?;
    let fields = decode::object(&name, raw, depth + 1)?;
    let mut out = Map::new();
    out.insert("apiVersion".into(), Value::String(api_version));
    out.insert("kind".into(), Value::String(kind));
    out.extend(fields);
    Ok(Value::Object(out))
}
