//! The part of Kubernetes' CEL libraries that CRD authors use most and the
//! crate lacks: list helpers (`isSorted`, `sum`), regex `find`/`findAll`,
//! `isURL`, `isIP`/`isCIDR`, and quantities. A quantity is carried as its
//! approximate float value, which keeps comparisons and arithmetic right
//! for every size a manifest writes.

use std::net::IpAddr;
use std::sync::Arc;

use cel::extractors::This;
use cel::{Context, ExecutionError, Value as Cel};

type Res = Result<Cel, ExecutionError>;

/// Adds the functions to an evaluation's context. A name the environment
/// already declares is skipped (the crate's overload wins).
pub(super) fn register(ctx: &mut Context) {
    let _ = ctx.add_function("isSorted", is_sorted);
    let _ = ctx.add_function("sum", sum);
    let _ = ctx.add_function("find", find);
    let _ = ctx.add_function("findAll", find_all);
    let _ = ctx.add_function("isURL", |s: Arc<String>| is_url(&s));
    let _ = ctx.add_function("isIP", |s: Arc<String>| s.parse::<IpAddr>().is_ok());
    let _ = ctx.add_function("isCIDR", |s: Arc<String>| cidr(&s).is_some());
    let _ = ctx.add_function("isQuantity", |s: Arc<String>| parse_quantity(&s).is_some());
    let _ = ctx.add_function("quantity", quantity);
    let _ = ctx.add_function("isGreaterThan", |This(a): This<f64>, b: f64| a > b);
    let _ = ctx.add_function("isLessThan", |This(a): This<f64>, b: f64| a < b);
    let _ = ctx.add_function("compareTo", |This(a): This<f64>, b: f64| {
        a.partial_cmp(&b).map(|o| o as i64).unwrap_or(0)
    });
    let _ = ctx.add_function("asApproximateFloat", |This(a): This<f64>| a);
    let _ = ctx.add_function("isInteger", |This(a): This<f64>| {
        a.fract() == 0.0 && a.abs() < 9.2e18
    });
    let _ = ctx.add_function("asInteger", as_integer);
    let _ = ctx.add_function("sign", |This(a): This<f64>| {
        if a > 0.0 {
            1i64
        } else if a < 0.0 {
            -1
        } else {
            0
        }
    });
    let _ = ctx.add_function("add", |This(a): This<f64>, b: Cel| a + number(&b));
    let _ = ctx.add_function("sub", |This(a): This<f64>, b: Cel| a - number(&b));
}

fn err(function: &str, msg: impl ToString) -> ExecutionError {
    ExecutionError::function_error(function, msg.to_string())
}

fn number(v: &Cel) -> f64 {
    match v {
        Cel::Int(i) => *i as f64,
        Cel::UInt(u) => *u as f64,
        Cel::Float(f) => *f,
        _ => f64::NAN,
    }
}

fn is_sorted(This(list): This<Arc<Vec<Cel>>>) -> Res {
    for pair in list.windows(2) {
        let ordered = match (&pair[0], &pair[1]) {
            (Cel::String(a), Cel::String(b)) => a <= b,
            (Cel::Int(a), Cel::Int(b)) => a <= b,
            (a, b) => number(a) <= number(b),
        };
        if !ordered {
            return Ok(Cel::Bool(false));
        }
    }
    Ok(Cel::Bool(true))
}

fn sum(This(list): This<Arc<Vec<Cel>>>) -> Res {
    if list.iter().all(|v| matches!(v, Cel::Int(_))) {
        let mut total: i64 = 0;
        for v in list.iter() {
            if let Cel::Int(i) = v {
                total = total
                    .checked_add(*i)
                    .ok_or_else(|| err("sum", "integer overflow"))?;
            }
        }
        return Ok(Cel::Int(total));
    }
    Ok(Cel::Float(list.iter().map(number).sum()))
}

fn regex(pattern: &str) -> Result<regex::Regex, ExecutionError> {
    regex::Regex::new(pattern).map_err(|e| err("find", e))
}

fn find(This(s): This<Arc<String>>, pattern: Arc<String>) -> Res {
    let re = regex(&pattern)?;
    let found = re
        .find(&s)
        .map(|m| m.as_str().to_string())
        .unwrap_or_default();
    Ok(Cel::String(Arc::new(found)))
}

fn find_all(This(s): This<Arc<String>>, pattern: Arc<String>) -> Res {
    let re = regex(&pattern)?;
    let all = re
        .find_iter(&s)
        .map(|m| Cel::String(Arc::new(m.as_str().to_string())))
        .collect();
    Ok(Cel::List(Arc::new(all)))
}

/// Go's `url.ParseRequestURI` accepts absolute URLs and absolute paths.
fn is_url(s: &str) -> bool {
    if s.starts_with('/') {
        return !s.contains(char::is_whitespace);
    }
    let Some((scheme, rest)) = s.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    let scheme_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    scheme_ok && !rest.is_empty() && !s.contains(char::is_whitespace)
}

fn cidr(s: &str) -> Option<(IpAddr, u8)> {
    let (ip, bits) = s.split_once('/')?;
    let ip: IpAddr = ip.parse().ok()?;
    let bits: u8 = bits.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    (bits <= max).then_some((ip, bits))
}

fn quantity(s: Arc<String>) -> Res {
    parse_quantity(&s)
        .map(Cel::Float)
        .ok_or_else(|| err("quantity", format!("quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$': {s}")))
}

fn as_integer(This(a): This<f64>) -> Res {
    if a.fract() == 0.0 && a.abs() < 9.2e18 {
        Ok(Cel::Int(a as i64))
    } else {
        Err(err("asInteger", "cannot convert value to integer"))
    }
}

/// A Kubernetes resource quantity (`1.5Gi`, `500m`, `1e3`) as a float.
pub(super) fn parse_quantity(s: &str) -> Option<f64> {
    let split = s
        .char_indices()
        .find(|(i, c)| !(c.is_ascii_digit() || *c == '.' || (*i == 0 && (*c == '+' || *c == '-'))))
        .map(|(i, _)| i)
        .unwrap_or(s.len());
    let (num, suffix) = s.split_at(split);
    let digits = num.trim_start_matches(['+', '-']);
    if digits.is_empty() || digits == "." || digits.matches('.').count() > 1 {
        return None;
    }
    let value: f64 = num.parse().ok()?;
    let factor = match suffix {
        "" => 1.0,
        "Ki" => 1024f64,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        exp => {
            let e = exp.strip_prefix(['e', 'E'])?;
            let e: i32 = e.parse().ok()?;
            10f64.powi(e)
        }
    };
    Some(value * factor)
}
