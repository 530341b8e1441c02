//! Messages whose JSON form is not an object of their fields: times,
//! durations, IntOrString, Quantity, string-list wrappers and the
//! apiextensions "schema or ..." unions.

use serde_json::Value;

use super::decode::{object, single, text};
use super::tables::Ty;
use super::wire::{Reader, Val};
use super::ProtoError;

const SCHEMA: &str = "apiextensions.v1.JSONSchemaProps";

/// Time / MicroTime ({seconds int64 = 1, nanos int32 = 2}) as RFC 3339 in
/// UTC. An empty message is Go's zero time, which JSON writes as null: it
/// reads as absent. Time keeps seconds only (upstream drops nanos);
/// MicroTime keeps microseconds, always six digits.
pub(super) fn time(bytes: &[u8], micro: bool) -> Result<Option<Value>, ProtoError> {
    if bytes.is_empty() {
        return Ok(None);
    }
    let (mut seconds, mut nanos) = (0i64, 0i64);
    let mut r = Reader::new(bytes);
    while let Some((tag, val)) = r.next_field()? {
        match (tag, val) {
            (1, Val::Varint(v)) => seconds = v as i64,
            // Go's int32 field: the varint's low 32 bits.
            (2, Val::Varint(v)) => nanos = i64::from(v as i32),
            _ => {}
        }
    }
    // Go's time.Unix normalizes nanos outside [0, 1e9).
    seconds = seconds
        .checked_add(nanos.div_euclid(1_000_000_000))
        .ok_or_else(out_of_range)?;
    let nanos = nanos.rem_euclid(1_000_000_000);
    let t = time::OffsetDateTime::from_unix_timestamp(seconds).map_err(|_| out_of_range())?;
    if !(0..=9999).contains(&t.year()) {
        return Err(out_of_range());
    }
    let date = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    );
    Ok(Some(Value::String(if micro {
        format!("{date}.{:06}Z", nanos / 1000)
    } else {
        format!("{date}Z")
    })))
}

fn out_of_range() -> ProtoError {
    ProtoError::Invalid("time outside of the years 0 to 9999".into())
}

/// Duration ({duration int64 = 1}, nanoseconds) as Go's
/// `time.Duration.String()`: "1h2m3.5s", "1.5ms", "0s".
pub(super) fn duration(bytes: &[u8]) -> Result<Value, ProtoError> {
    let mut d = 0i64;
    let mut r = Reader::new(bytes);
    while let Some((tag, val)) = r.next_field()? {
        if let (1, Val::Varint(v)) = (tag, val) {
            d = v as i64;
        }
    }
    Ok(Value::String(go_duration(d)))
}

pub(super) fn go_duration(d: i64) -> String {
    if d == 0 {
        return "0s".into();
    }
    let sign = if d < 0 { "-" } else { "" };
    let u = d.unsigned_abs();
    if u < 1_000_000_000 {
        let (unit, digits) = match u {
            0..=999 => ("ns", 0),
            1_000..=999_999 => ("µs", 3),
            _ => ("ms", 6),
        };
        return format!("{sign}{}{unit}", fraction(u, digits));
    }
    let secs = u / 1_000_000_000;
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut out = sign.to_string();
    if h > 0 {
        out += &format!("{h}h");
    }
    if h > 0 || m > 0 {
        out += &format!("{m}m");
    }
    out + &fraction(s * 1_000_000_000 + u % 1_000_000_000, 9) + "s"
}

/// `v / 10^digits` with the fraction's trailing zeros dropped.
fn fraction(v: u64, digits: u32) -> String {
    let scale = 10u64.pow(digits);
    let (int, frac) = (v / scale, v % scale);
    if frac == 0 {
        return int.to_string();
    }
    let f = format!("{frac:0width$}", width = digits as usize);
    format!("{int}.{}", f.trim_end_matches('0'))
}

/// IntOrString ({type int64 = 1: 0 int, 1 string; intVal = 2; strVal = 3}).
pub(super) fn int_or_string(bytes: &[u8]) -> Result<Value, ProtoError> {
    let (mut is_str, mut int, mut s) = (false, 0i32, String::new());
    let mut r = Reader::new(bytes);
    while let Some((tag, val)) = r.next_field()? {
        match (tag, val) {
            (1, Val::Varint(v)) => is_str = v == 1,
            (2, Val::Varint(v)) => int = v as i32,
            (3, Val::Len(b)) => s = text(b),
            _ => {}
        }
    }
    Ok(if is_str {
        Value::String(s)
    } else {
        Value::from(int)
    })
}

/// Field 1 as a string (Quantity's `string = 1`).
pub(super) fn first_string(bytes: &[u8]) -> Result<String, ProtoError> {
    let mut out = String::new();
    let mut r = Reader::new(bytes);
    while let Some((tag, val)) = r.next_field()? {
        if let (1, Val::Len(b)) = (tag, val) {
            out = text(b);
        }
    }
    Ok(out)
}

/// A `type X []string` wrapper ({items repeated string = 1}) as an array.
pub(super) fn string_list(bytes: &[u8]) -> Result<Value, ProtoError> {
    let mut items = Vec::new();
    let mut r = Reader::new(bytes);
    while let Some((tag, val)) = r.next_field()? {
        if let (1, Val::Len(b)) = (tag, val) {
            items.push(Value::String(text(b)));
        }
    }
    Ok(Value::Array(items))
}

/// The apiextensions unions, as their Go MarshalJSON writes them:
/// OrArray {schema = 1, jSONSchemas = 2 repeated}: the array when it has
/// items, else the schema; OrBool {allows = 1, schema = 2}: the schema, else
/// the bool; OrStrings {schema = 1, property = 2 repeated string}: the
/// strings when there are any, else the schema. Nothing set reads as absent
/// (Go writes null), except OrBool's bool.
pub(super) fn schema_or(ty: Ty, bytes: &[u8], depth: usize) -> Result<Option<Value>, ProtoError> {
    let (schema_tag, list_tag) = if ty == Ty::OrBool { (2, 0) } else { (1, 2) };
    let (mut schema, mut list, mut allows) = (None, Vec::new(), false);
    let mut r = Reader::new(bytes);
    while let Some((tag, val)) = r.next_field()? {
        match (tag, val) {
            (t, Val::Len(b)) if t == schema_tag => {
                schema = Some(Value::Object(object(SCHEMA, b, depth + 1)?))
            }
            (t, Val::Len(b)) if t == list_tag && ty == Ty::OrArray => {
                list.extend(single(Ty::Obj(SCHEMA), Val::Len(b), depth)?);
            }
            (t, Val::Len(b)) if t == list_tag => list.push(Value::String(text(b))),
            (1, Val::Varint(v)) if ty == Ty::OrBool => allows = v != 0,
            _ => {}
        }
    }
    Ok(match ty {
        Ty::OrBool => Some(schema.unwrap_or(Value::Bool(allows))),
        _ if !list.is_empty() => Some(Value::Array(list)),
        _ => schema,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_go() {
        for (ns, want) in [
            (0, "0s"),
            (1, "1ns"),
            (1_500, "1.5µs"),
            (2_000_000, "2ms"),
            (1_000_000_000, "1s"),
            (90_000_000_000, "1m30s"),
            (3_600_000_000_000, "1h0m0s"),
            (3_723_500_000_000, "1h2m3.5s"),
            (-1_500_000_000, "-1.5s"),
        ] {
            assert_eq!(go_duration(ns), want, "{ns}");
        }
        assert_eq!(go_duration(i64::MIN), "-2562047h47m16.854775808s");
    }
}
