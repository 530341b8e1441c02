//! Token lifetimes: `--ttl` in Go's duration syntax (what kubeadm and k3s
//! take), and the short human form `token list` prints.

use std::time::Duration;

use super::Error;

/// `24h`, `1h30m`, `90s`, `0` (never expires → `None`). Units h, m, s;
/// whole numbers only.
pub fn parse(text: &str) -> Result<Option<Duration>, Error> {
    let bad = || Error::Ttl(text.to_string());
    let t = text.trim();
    if t == "0" {
        return Ok(None);
    }
    if t.is_empty() {
        return Err(bad());
    }
    let mut total: u64 = 0;
    let mut rest = t;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (number, tail) = rest.split_at(digits);
        let value: u64 = number.parse().map_err(|_| bad())?;
        let unit_len = tail.bytes().take_while(u8::is_ascii_alphabetic).count();
        let (unit, tail) = tail.split_at(unit_len);
        let scale = match unit {
            "h" => 3600,
            "m" => 60,
            "s" => 1,
            _ => return Err(bad()),
        };
        total = value
            .checked_mul(scale)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(bad)?;
        rest = tail;
    }
    Ok((total > 0).then(|| Duration::from_secs(total)))
}

/// Upstream's ShortHumanDuration of what is left (`left` < 0: expired).
pub fn human(left_secs: i64) -> String {
    match left_secs {
        s if s < -1 => "<invalid>".into(),
        s if s < 0 => "0s".into(),
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h", s / 3600),
        s if s < 86_400 * 365 => format!("{}d", s / 86_400),
        s => format!("{}y", s / (86_400 * 365)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_parse() {
        let secs = |t: &str| parse(t).unwrap().map(|d| d.as_secs());
        assert_eq!(secs("24h"), Some(86_400));
        assert_eq!(secs("1h30m"), Some(5400));
        assert_eq!(secs("90s"), Some(90));
        assert_eq!(secs(" 2m "), Some(120));
        assert_eq!(secs("0"), None);
        assert_eq!(secs("0s"), None);
        for bad in [
            "",
            "h",
            "24",
            "1d",
            "-1h",
            "1.5h",
            "24 h",
            "abc",
            "99999999999999999999h",
        ] {
            let err = parse(bad).unwrap_err().to_string();
            assert!(err.contains("invalid --ttl"), "{bad}: {err}");
        }
    }

    #[test]
    fn lifetimes_print_short() {
        assert_eq!(human(-5), "<invalid>");
        assert_eq!(human(59), "59s");
        assert_eq!(human(3599), "59m");
        assert_eq!(human(86_399), "23h");
        assert_eq!(human(86_400 * 2), "2d");
        assert_eq!(human(86_400 * 800), "2y");
    }
}
