//! The grammar of `resource.Quantity` ("500m", "1.5Gi", "1e3", "-2"),
//! parsed once for every user: quota arithmetic (nano-units), scheduler
//! requests (milli-units) and table printing (upstream's String()).

/// How the quantity was written, which upstream keeps for printing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Ki, Mi, … (powers of 1024).
    BinarySI,
    /// n, u, m, none, k, M, … (powers of 1000).
    DecimalSI,
    /// e3, E-2.
    DecimalExponent,
}

/// Upstream's decimal suffixes and their powers of ten.
pub const DECIMAL: [(&str, i32); 10] = [
    ("n", -9),
    ("u", -6),
    ("m", -3),
    ("", 0),
    ("k", 3),
    ("M", 6),
    ("G", 9),
    ("T", 12),
    ("P", 15),
    ("E", 18),
];

/// Upstream's binary suffixes and their powers of 1024.
pub const BINARY: [(&str, u32); 7] = [
    ("", 0),
    ("Ki", 1),
    ("Mi", 2),
    ("Gi", 3),
    ("Ti", 4),
    ("Pi", 5),
    ("Ei", 6),
];

/// A quantity as written: sign, integer and fraction digits, suffix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub negative: bool,
    /// Digits before the point.
    pub num: String,
    /// Digits after the point.
    pub denom: String,
    pub format: Format,
    /// Power of ten (decimal formats) or of 1024 (binary).
    pub exponent: i32,
}

/// Parses a quantity (surrounding whitespace ignored); `None` when it does
/// not follow the grammar. A bare suffix-less number is [`Format::DecimalSI`].
pub fn parse(s: &str) -> Option<Parsed> {
    let s = s.trim();
    let (negative, rest) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
    let num = &rest[..int_len];
    let mut rest = &rest[int_len..];
    let mut denom = "";
    if let Some(r) = rest.strip_prefix('.') {
        let n = r.bytes().take_while(u8::is_ascii_digit).count();
        denom = &r[..n];
        rest = &r[n..];
    }
    if num.is_empty() && denom.is_empty() {
        return None;
    }
    let (format, exponent) = if let Some(&(_, e)) = DECIMAL.iter().find(|(sfx, _)| *sfx == rest) {
        (Format::DecimalSI, e)
    } else if let Some(&(_, e)) = BINARY.iter().find(|(sfx, _)| *sfx == rest) {
        (Format::BinarySI, e as i32)
    } else if let Some(e) = rest.strip_prefix(['e', 'E']) {
        (Format::DecimalExponent, e.parse::<i32>().ok()?)
    } else {
        return None;
    };
    Some(Parsed {
        negative,
        num: num.to_string(),
        denom: denom.to_string(),
        format,
        exponent,
    })
}

impl Parsed {
    /// The value in units of 10^`unit_exp` (-9: nano-units, -3: milli),
    /// rounded up in magnitude as upstream rounds to its smallest scale;
    /// `None` when it does not fit.
    pub fn in_units(&self, unit_exp: i32) -> Option<i128> {
        let digits = format!("{}{}", self.num, self.denom);
        let digits = digits.trim_start_matches('0');
        let mantissa: i128 = if digits.is_empty() {
            0
        } else {
            digits.parse().ok()?
        };
        let (mantissa, exp10) = match self.format {
            Format::BinarySI => (
                mantissa.checked_mul(1i128.checked_shl(10 * self.exponent as u32)?)?,
                0,
            ),
            _ => (mantissa, self.exponent),
        };
        // value = mantissa * 10^(exp10 - unit_exp - fraction digits)
        let exp = exp10 - unit_exp - self.denom.len() as i32;
        let value = if mantissa == 0 {
            0
        } else if exp >= 0 {
            mantissa.checked_mul(10i128.checked_pow(exp as u32)?)?
        } else {
            let d = 10i128.checked_pow((-exp) as u32)?;
            (mantissa + d - 1) / d
        };
        Some(if self.negative { -value } else { value })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn units(s: &str, unit_exp: i32) -> Option<i128> {
        parse(s)?.in_units(unit_exp)
    }

    #[test]
    fn parses_the_grammar() {
        let p = parse(" -1.5Gi ").unwrap();
        assert!(p.negative);
        assert_eq!((p.num.as_str(), p.denom.as_str()), ("1", "5"));
        assert_eq!((p.format, p.exponent), (Format::BinarySI, 3));
        assert_eq!(parse("2").unwrap().format, Format::DecimalSI);
        assert_eq!(parse("1E").unwrap().exponent, 18);
        let e = parse("1e-3").unwrap();
        assert_eq!((e.format, e.exponent), (Format::DecimalExponent, -3));
        for bad in ["", "ten", "1Zi", "1Qi", ".", "-", "1e", "+-1", "1.2.3"] {
            assert!(parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn values_round_up_to_the_unit() {
        assert_eq!(units("500m", -9), Some(500_000_000));
        assert_eq!(units("1.5Ki", -3), Some(1536 * 1000));
        assert_eq!(units("1n", -3), Some(1));
        assert_eq!(units("-1n", -3), Some(-1));
        assert_eq!(units("0.1", -9), Some(100_000_000));
        assert_eq!(units("1e3", 0), Some(1000));
        assert_eq!(units("1E", -3), Some(1_000_000_000_000_000_000_000));
        assert_eq!(units("0", -9), Some(0));
        assert_eq!(units("1e100", -9), None);
    }
}
