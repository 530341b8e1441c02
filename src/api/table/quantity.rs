//! resource.Quantity's String(): the stored text when upstream considers it
//! canonical already, otherwise the canonical re-rendering ("1024Mi" -> "1Gi",
//! "0.5" -> "500m"), so capacities and quota usage print as upstream does.

use serde_json::Value;

use crate::api::quantity::{parse, Format, Parsed, BINARY as BIN, DECIMAL as DEC};

/// Whether upstream's parser keeps the caller's text as the String() form.
fn keeps_original(p: &Parsed) -> bool {
    let shifted = format!("{}{}", p.num, p.denom);
    match p.format {
        Format::BinarySI => {
            let precision =
                15 - p.num.len() as i32 - (p.exponent as f32 * 10.0 * 3.0 / 10.0) as i32 - 1;
            p.denom.is_empty()
                && precision >= 0
                && shifted.parse::<i64>().is_ok_and(|v| v & 0x07 != 0)
        }
        _ => {
            let scale = p.exponent - p.denom.len() as i32;
            18 - (shifted.len() as i32) >= 0
                && scale >= -9
                && scale % 3 == 0
                && !shifted.ends_with("000")
                && !shifted.starts_with('0')
        }
    }
}

fn strip_factor(mut v: i128, f: i128) -> (i128, u32) {
    let mut times = 0;
    while v != 0 && v % f == 0 {
        v /= f;
        times += 1;
    }
    (v, times)
}

fn canonical(p: &Parsed) -> Option<String> {
    let digits = format!("{}{}", p.num, p.denom);
    if digits.len() > 30 {
        return None;
    }
    let mut mantissa: i128 = digits.parse().ok()?;
    if p.negative {
        mantissa = -mantissa;
    }
    if mantissa == 0 {
        return Some("0".into());
    }
    // value = mantissa * 10^exp10 (times 1024^k for binary suffixes).
    let mut exp10 = -(p.denom.len() as i32);
    let mut format = p.format;
    if format == Format::BinarySI {
        mantissa = mantissa.checked_mul(1_i128.checked_shl(10 * p.exponent as u32)?)?;
        let whole = if exp10 == 0 {
            Some(mantissa)
        } else {
            let div = 10_i128.checked_pow(-exp10 as u32)?;
            (mantissa % div == 0).then(|| mantissa / div)
        };
        match whole {
            // Binary form only for exact integers outside (-1024, 1024).
            Some(w) if w.abs() >= 1024 => {
                let (amount, k) = strip_factor(w, 1024);
                return Some(format!("{amount}{}", BIN.get(k as usize)?.0));
            }
            _ => format = Format::DecimalSI,
        }
    } else {
        exp10 += p.exponent;
    }
    let (mut amount, times) = strip_factor(mantissa, 10);
    exp10 += times as i32;
    match exp10.rem_euclid(3) {
        1 => {
            amount *= 10;
            exp10 -= 1;
        }
        2 => {
            amount *= 100;
            exp10 -= 2;
        }
        _ => {}
    }
    let suffix = match (format, DEC.iter().find(|(_, e)| *e == exp10)) {
        (Format::DecimalExponent, _) if exp10 == 0 => String::new(),
        (Format::DecimalExponent, _) | (_, None) => format!("e{exp10}"),
        (_, Some((sfx, _))) => sfx.to_string(),
    };
    Some(format!("{amount}{suffix}"))
}

/// Quantity.String() of a stored quantity; a missing one is the zero quantity.
pub(super) fn quantity(v: Option<&Value>) -> String {
    let text = match v {
        None | Some(Value::Null) => return "0".into(),
        Some(Value::String(s)) => s.trim().to_string(),
        Some(Value::Number(n)) => n.to_string(),
        Some(other) => return other.to_string(),
    };
    match parse(&text) {
        Some(p) if keeps_original(&p) => text,
        Some(p) => canonical(&p).unwrap_or(text),
        None => text,
    }
}

/// Quantity.String() on a pointer: Go prints "<nil>" when it is unset.
pub(super) fn quantity_ptr(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "<nil>".into(),
        some => quantity(some),
    }
}
