//! One protobuf message to the JSON a client would have sent, following the
//! field tables.

use base64::Engine;
use serde_json::{Map, Number, Value};

use super::tables::{message, Card, Field, Ty};
use super::wire::{Reader, Val, FIXED64, LEN, VARINT};
use super::{special, ProtoError, MAGIC, MAX_DEPTH};

/// Decodes `bytes` as the message `name` into a JSON object.
pub(super) fn object(
    name: &str,
    bytes: &[u8],
    depth: usize,
) -> Result<Map<String, Value>, ProtoError> {
    if depth > MAX_DEPTH {
        return Err(ProtoError::TooDeep);
    }
    let fields = message(name)
        .ok_or_else(|| ProtoError::Invalid(format!("no schema for message {name}")))?;
    let mut out = Map::new();
    let mut r = Reader::new(bytes);
    while let Some((tag, val)) = r.next_field()? {
        // Fields this schema does not know are skipped, as upstream does.
        let Some(field) = fields.iter().find(|f| f.0 == tag) else {
            continue;
        };
        put(&mut out, name, field, val, depth)?;
    }
    Ok(out)
}

fn put(
    out: &mut Map<String, Value>,
    msg: &str,
    field: &Field,
    val: Val,
    depth: usize,
) -> Result<(), ProtoError> {
    let &(tag, json, card, ty) = field;
    let wrong = |want: u8| ProtoError::WireType {
        message: msg.to_string(),
        field: tag,
        got: val.wire_type(),
        want,
    };
    match card {
        Card::O | Card::P => {
            check(val, ty).map_err(wrong)?;
            match single(ty, val, depth)? {
                // A later occurrence of a scalar replaces an earlier one.
                Some(v) if card == Card::P || !is_zero(ty, &v) => merge(out, json, v),
                _ => {
                    out.remove(json);
                }
            }
        }
        Card::R => {
            let items = out.entry(json).or_insert_with(|| Value::Array(Vec::new()));
            let Value::Array(items) = items else {
                return Err(ProtoError::Invalid(format!(
                    "field {json} of {msg} repeats a non-list"
                )));
            };
            match (ty, val) {
                // Packed numbers and bools: one length-delimited run.
                (Ty::I | Ty::L | Ty::Z | Ty::D, Val::Len(bytes)) => {
                    let mut r = Reader::new(bytes);
                    while !r.is_empty() {
                        let v = if ty == Ty::D {
                            Val::Fixed64(r.fixed64()?)
                        } else {
                            Val::Varint(r.varint()?)
                        };
                        items.extend(single(ty, v, depth)?);
                    }
                }
                _ => {
                    check(val, ty).map_err(wrong)?;
                    // A repeated element is kept even when empty or zero.
                    items.push(single(ty, val, depth)?.unwrap_or(Value::Null));
                }
            }
        }
        Card::M => {
            let Val::Len(entry) = val else {
                return Err(wrong(LEN));
            };
            let (key, value) = map_entry(msg, json, ty, entry, depth)?;
            if let Value::Object(map) = out.entry(json).or_insert_with(|| Value::Object(Map::new()))
            {
                map.insert(key, value);
            }
        }
        Card::Inl => {
            let (Val::Len(bytes), Ty::Obj(inner)) = (val, ty) else {
                return Err(wrong(LEN));
            };
            for (k, v) in object(inner, bytes, depth + 1)? {
                merge(out, &k, v);
            }
        }
    }
    Ok(())
}

/// A map entry: key = 1 (string), value = 2.
fn map_entry(
    msg: &str,
    json: &str,
    ty: Ty,
    entry: &[u8],
    depth: usize,
) -> Result<(String, Value), ProtoError> {
    let (mut key, mut value) = (String::new(), None);
    let mut r = Reader::new(entry);
    while let Some((tag, val)) = r.next_field()? {
        let want = match (tag, val) {
            (1, Val::Len(b)) => {
                key = text(b);
                continue;
            }
            (1, _) => LEN,
            (2, v) if check(v, ty).is_ok() => {
                value = single(ty, v, depth)?;
                continue;
            }
            (2, _) => check(val, ty).err().unwrap_or(LEN),
            _ => continue,
        };
        return Err(ProtoError::WireType {
            message: format!("{msg}.{json}"),
            field: tag,
            got: val.wire_type(),
            want,
        });
    }
    // An absent value is the type's zero value.
    let value = match value {
        Some(v) => v,
        None => single(ty, Val::Len(&[]), depth)?.unwrap_or(Value::Null),
    };
    Ok((key, value))
}

/// Checks the wire type of a non-packed value; Err carries the one expected.
fn check(val: Val, ty: Ty) -> Result<(), u8> {
    let want = match ty {
        Ty::I | Ty::L | Ty::Z => VARINT,
        Ty::D => FIXED64,
        _ => LEN,
    };
    if val.wire_type() == want {
        Ok(())
    } else {
        Err(want)
    }
}

/// One value of type `ty`; None when it reads as absent in JSON (an empty
/// Time, a RawExtension without bytes).
pub(super) fn single(ty: Ty, val: Val, depth: usize) -> Result<Option<Value>, ProtoError> {
    let bytes = match val {
        Val::Len(b) => b,
        Val::Varint(v) => {
            return Ok(Some(match ty {
                // Go truncates an int32's varint to its low 32 bits.
                Ty::I => Value::from(v as i32),
                Ty::L => Value::from(v as i64),
                _ => Value::Bool(v != 0),
            }));
        }
        Val::Fixed64(v) => {
            let n = Number::from_f64(f64::from_bits(v))
                .ok_or_else(|| ProtoError::Invalid("a double is not a finite number".into()))?;
            return Ok(Some(Value::Number(n)));
        }
        Val::Fixed32 => return Err(ProtoError::Invalid("unexpected fixed32 value".into())),
    };
    let depth = depth + 1;
    if depth > MAX_DEPTH {
        return Err(ProtoError::TooDeep);
    }
    Ok(match ty {
        Ty::S => Some(Value::String(text(bytes))),
        Ty::B => Some(Value::String(
            base64::engine::general_purpose::STANDARD.encode(bytes),
        )),
        Ty::Obj(name) => Some(Value::Object(object(name, bytes, depth)?)),
        Ty::T => special::time(bytes, false)?,
        Ty::U => special::time(bytes, true)?,
        Ty::N => Some(special::duration(bytes)?),
        Ty::X => Some(special::int_or_string(bytes)?),
        Ty::Q => Some(Value::String(special::first_string(bytes)?)),
        Ty::E => raw_json(bytes, depth, true)?,
        Ty::F | Ty::J => raw_json(bytes, depth, false)?,
        Ty::W => Some(special::string_list(bytes)?),
        Ty::OrArray | Ty::OrBool | Ty::OrStrings => special::schema_or(ty, bytes, depth)?,
        Ty::I | Ty::L | Ty::Z | Ty::D => {
            // Only reached for a map entry with no value: the zero.
            Some(match ty {
                Ty::Z => Value::Bool(false),
                _ => Value::from(0),
            })
        }
    })
}

/// A message whose field 1 holds raw bytes of JSON: RawExtension
/// (which may also embed a protobuf object), FieldsV1, apiextensions JSON.
fn raw_json(bytes: &[u8], depth: usize, may_nest: bool) -> Result<Option<Value>, ProtoError> {
    let mut raw: &[u8] = &[];
    let mut r = Reader::new(bytes);
    while let Some((tag, val)) = r.next_field()? {
        if let (1, Val::Len(b)) = (tag, val) {
            raw = b;
        }
    }
    if raw.is_empty() {
        return Ok(None);
    }
    if may_nest && raw.starts_with(&MAGIC) {
        return super::decode_at(raw, depth + 1).map(Some);
    }
    serde_json::from_slice(raw)
        .map(Some)
        .map_err(|e| ProtoError::Invalid(format!("embedded json: {e}")))
}

/// Strings as Go's JSON writes them: invalid UTF-8 becomes U+FFFD.
pub(super) fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Whether a scalar is its zero value, which `omitempty` drops; special
/// and message types are never dropped: Go's JSON writes struct values.
fn is_zero(ty: Ty, v: &Value) -> bool {
    if !matches!(ty, Ty::S | Ty::B | Ty::I | Ty::L | Ty::Z | Ty::D) {
        return false;
    }
    match v {
        Value::String(s) => s.is_empty(),
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::Null => true,
        Value::Array(_) | Value::Object(_) => false,
    }
}

/// Sets `key`, merging objects the way protobuf merges a repeated
/// embedded message.
fn merge(out: &mut Map<String, Value>, key: &str, v: Value) {
    match (out.get_mut(key), v) {
        (Some(Value::Object(old)), Value::Object(new)) => old.extend(new),
        (_, v) => {
            out.insert(key.to_string(), v);
        }
    }
}
