//! The two scalar decoders whose failures upstream reports in their own
//! words: Go's base64 for `[]byte` fields and apimachinery's Quantity
//! parser.

use serde_json::Value;

const QUANTITY_FORMAT: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";
const QUANTITY_SUFFIX: &str = "unable to parse quantity's suffix";

/// The offset Go's `base64.StdEncoding` reports for `s`
/// (`illegal base64 data at input byte N`), or None when it decodes.
/// Follows Go's quantum-by-quantum decoder: CR and LF are skipped,
/// padding is required, trailing bits are not checked.
pub(super) fn base64_error(s: &str) -> Option<usize> {
    let src = s.as_bytes();
    let mut si = 0;
    while si < src.len() {
        let mut j = 0;
        while j < 4 {
            let Some(&byte) = src.get(si) else {
                return if j == 0 { None } else { Some(si - j) };
            };
            si += 1;
            if byte.is_ascii_alphanumeric() || byte == b'+' || byte == b'/' {
                j += 1;
                continue;
            }
            if byte == b'\n' || byte == b'\r' {
                continue;
            }
            if byte != b'=' || j < 2 {
                return Some(si - 1);
            }
            if j == 2 {
                // "==" is expected; the first "=" is consumed.
                si = skip_newlines(src, si);
                match src.get(si) {
                    None => return Some(src.len()),
                    Some(b'=') => si += 1,
                    Some(_) => return Some(si - 1),
                }
            }
            si = skip_newlines(src, si);
            // Padding ends the input: anything after it is garbage.
            return (si < src.len()).then_some(si);
        }
    }
    None
}

fn skip_newlines(src: &[u8], mut si: usize) -> usize {
    while matches!(src.get(si), Some(b'\n' | b'\r')) {
        si += 1;
    }
    si
}

/// The error apimachinery's `Quantity.UnmarshalJSON` returns for `value`
/// (a JSON string or number; anything else is parsed as its JSON text and
/// fails the format), or None when it parses.
pub(super) fn quantity_error(value: &Value) -> Option<&'static str> {
    let text = match value {
        Value::Null => return None,
        Value::String(s) => s.trim().to_owned(),
        other => other.to_string(),
    };
    parse_quantity(&text).err()
}

/// `resource.ParseQuantity`'s syntax: sign, digits, fraction, suffix.
fn parse_quantity(s: &str) -> Result<(), &'static str> {
    if s.is_empty() {
        return Err(QUANTITY_FORMAT);
    }
    let bytes = s.as_bytes();
    let mut pos = usize::from(matches!(bytes.first(), Some(b'+' | b'-')));
    let digits = |from: usize| {
        bytes.get(from..).map_or(0, |rest| {
            rest.iter().take_while(|b| b.is_ascii_digit()).count()
        })
    };
    pos += digits(pos);
    if bytes.get(pos) == Some(&b'.') {
        pos += 1;
        pos += digits(pos);
    }
    let suffix_start = pos;
    pos += bytes.get(pos..).map_or(0, |rest| {
        rest.iter()
            .take_while(|b| b"eEinumkKMGTP".contains(b))
            .count()
    });
    if matches!(bytes.get(pos), Some(b'+' | b'-')) {
        pos += 1;
    }
    pos += digits(pos);
    if pos < bytes.len() {
        return Err(QUANTITY_FORMAT);
    }
    let suffix = s.get(suffix_start..).unwrap_or_default();
    if suffix_known(suffix) {
        Ok(())
    } else {
        Err(QUANTITY_SUFFIX)
    }
}

fn suffix_known(suffix: &str) -> bool {
    match suffix {
        "" | "Ki" | "Mi" | "Gi" | "Ti" | "Pi" | "Ei" | "n" | "u" | "m" | "k" | "M" | "G" | "T"
        | "P" | "E" => true,
        _ => suffix
            .strip_prefix(['e', 'E'])
            .is_some_and(|exp| exp.parse::<i64>().is_ok()),
    }
}
