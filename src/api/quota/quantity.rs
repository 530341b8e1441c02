//! Resource quantities ("500m", "1Gi", "2") as exact integers of
//! nano-units, with upstream's canonical printing: the format of the first
//! operand (binary when it had a binary suffix) and the largest suffix that
//! keeps the number whole.

use std::ops::{Add, AddAssign, Sub};

use crate::api::quantity::{self, BINARY, DECIMAL};

/// Whether a quantity was written with a binary (Ki, Mi, …) suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    #[default]
    Decimal,
    Binary,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Quantity {
    /// Value in units of 10^-9.
    pub nanos: i128,
    pub format: Format,
}

const NANO: i128 = 1_000_000_000;
fn pow10(exp: i32) -> Option<i128> {
    10i128.checked_pow(u32::try_from(exp).ok()?)
}

impl Quantity {
    pub fn from_count(n: i64) -> Self {
        Quantity {
            nanos: i128::from(n) * NANO,
            format: Format::Decimal,
        }
    }

    /// Parses a quantity; fractions below a nano-unit are rounded up, as
    /// upstream rounds to its smallest scale.
    pub fn parse(text: &str) -> Option<Self> {
        let parsed = quantity::parse(text)?;
        Some(Quantity {
            nanos: parsed.in_units(-9)?,
            format: match parsed.format {
                quantity::Format::BinarySI => Format::Binary,
                _ => Format::Decimal,
            },
        })
    }

    /// Upstream's canonical string.
    pub fn canonical(&self) -> String {
        let n = self.nanos;
        if n == 0 {
            return "0".into();
        }
        if self.format == Format::Binary && n % NANO == 0 && (n / NANO).abs() >= 1024 {
            let units = n / NANO;
            let (suffix, shift) = BINARY
                .iter()
                .rev()
                .find(|(_, k)| units % (1i128 << (10 * k)) == 0)
                .copied()
                .unwrap_or(("", 0));
            return format!("{}{suffix}", units >> (10 * shift));
        }
        if self.format == Format::Binary && n % NANO == 0 {
            return (n / NANO).to_string();
        }
        // Decimal: the largest power of 1000 that divides the value.
        let (suffix, exp) = DECIMAL
            .iter()
            .rev()
            .find(|(_, e)| {
                let scale = e + 9;
                pow10(scale).is_some_and(|p| n % p == 0)
            })
            .copied()
            .unwrap_or(("n", -9));
        let p = pow10(exp + 9).unwrap_or(1);
        format!("{}{suffix}", n / p)
    }
}

impl Add for Quantity {
    type Output = Quantity;
    /// The sum keeps the first operand's format (upstream Quantity.Add).
    fn add(self, other: Quantity) -> Quantity {
        Quantity {
            nanos: self.nanos + other.nanos,
            format: self.format,
        }
    }
}

impl Sub for Quantity {
    type Output = Quantity;
    fn sub(self, other: Quantity) -> Quantity {
        Quantity {
            nanos: self.nanos - other.nanos,
            format: self.format,
        }
    }
}

impl AddAssign for Quantity {
    fn add_assign(&mut self, other: Quantity) {
        self.nanos += other.nanos;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Quantity {
        Quantity::parse(s).unwrap()
    }

    #[test]
    fn parses_suffixes_and_fractions() {
        assert_eq!(q("500m").nanos, 500_000_000);
        assert_eq!(q("1").nanos, NANO);
        assert_eq!(q("1Ki").nanos, 1024 * NANO);
        assert_eq!(q("1.5Gi").nanos, 1536 * 1024 * 1024 * NANO);
        assert_eq!(q("0.1").nanos, 100_000_000);
        assert_eq!(q("1e3").nanos, 1000 * NANO);
        assert_eq!(q("2k").nanos, 2000 * NANO);
        assert_eq!(q("-1").nanos, -NANO);
        assert!(Quantity::parse("ten").is_none());
        assert!(Quantity::parse("1Zi").is_none());
        assert!(Quantity::parse("").is_none());
    }

    #[test]
    fn prints_canonically() {
        assert_eq!((q("250m") + q("250m")).canonical(), "500m");
        assert_eq!((q("500m") + q("1500m")).canonical(), "2");
        assert_eq!((q("512Mi") + q("512Mi")).canonical(), "1Gi");
        assert_eq!((q("64Mi") + q("128Mi")).canonical(), "192Mi");
        assert_eq!(q("1000").canonical(), "1k");
        assert_eq!(q("1500").canonical(), "1500");
        assert_eq!(q("100Mi").canonical(), "100Mi");
        assert_eq!(q("1000Ki").canonical(), "1000Ki");
        assert_eq!(Quantity::default().canonical(), "0");
        assert_eq!(Quantity::from_count(3).canonical(), "3");
        // A decimal first operand keeps the sum decimal.
        assert_eq!((q("1G") + q("1Gi")).canonical(), "2073741824");
    }
}
