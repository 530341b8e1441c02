//! Upstream's static cost estimate of a rule (cel-go's checker coster with
//! the apiextensions size estimator), as a lower bound: every term counted
//! here is one upstream counts at least as high, and everything unsure
//! counts zero. So a rule refused here is refused upstream, and what
//! upstream accepts is never refused. What decides the real cases, nested
//! comprehensions over unbounded lists and maps, is counted the way
//! upstream does: a list's size is its maxItems or what fits in a 3 MiB
//! request at the element's minimum serialized size.

use cel::common::ast::{EntryExpr, Expr, LiteralValue};
use cel::IdedExpr;
use serde_json::Value;

use super::ast::METER;
use super::typecheck::{int_or_string, Scope, Ty, Typer};
use super::value::type_of;

/// Upstream `StaticEstimatedCostLimit`: one rule, times its cardinality.
pub(super) const RULE_LIMIT: u64 = 10_000_000;
/// Upstream `StaticEstimatedCRDCostLimit`: all rules of one schema.
pub(super) const CRD_LIMIT: u64 = 100_000_000;
/// Upstream `celconfig.MaxRequestSizeBytes`.
const MAX_REQUEST: u64 = 3 * 1024 * 1024;

/// Lower bound of the estimated cost of one evaluation of `expr`.
pub(super) fn estimate(expr: &IdedExpr, scope: Scope) -> u64 {
    let mut c = Coster {
        typer: Typer::new(scope),
    };
    c.cost(expr).0
}

struct Coster<'a> {
    typer: Typer<'a>,
}

impl<'a> Coster<'a> {
    fn cost(&mut self, e: &IdedExpr) -> (u64, Ty<'a>) {
        match &e.expr {
            Expr::Literal(_) | Expr::Unspecified => (0, Ty::Dyn),
            Expr::Ident(name) => (1, self.typer.ident(name)),
            Expr::Select(s) => {
                let (c, operand) = self.cost(&s.operand);
                if s.test {
                    // Presence tests may cost nothing (PresenceTestHasCost).
                    return (c, Ty::Dyn);
                }
                let own = u64::from(operand.is_struct_or_map());
                (
                    c.saturating_add(own),
                    operand.field(&s.field).unwrap_or(Ty::Dyn),
                )
            }
            Expr::Call(call) => {
                let target = call.target.as_ref().map(|t| self.cost(t));
                let args: Vec<(u64, Ty)> = call.args.iter().map(|a| self.cost(a)).collect();
                let sum = args
                    .iter()
                    .map(|a| a.0)
                    .chain(target.map(|t| t.0))
                    .fold(0u64, u64::saturating_add);
                if let (Some((_, t)), Some(target_expr)) = (target, call.target.as_deref()) {
                    let own = string_call(&call.func_name, (target_expr, t), &call.args, &args);
                    if let Some(own) = own {
                        return (sum.saturating_add(own), Ty::Dyn);
                    }
                }
                match (call.func_name.as_str(), args.as_slice()) {
                    (METER, [only]) => *only,
                    ("_[_]", [container, _]) => (sum, container.1.element()),
                    ("_?_:_", [c, t, f]) => (c.0.saturating_add(t.0.max(f.0)), Ty::Dyn),
                    // `in` a list walks it: one unit per element.
                    ("@in", [_, list]) => {
                        let walked = match (&call.args[1].expr, list.1) {
                            (Expr::List(l), _) => l.elements.len() as u64,
                            (_, Ty::Node(s, _)) if type_of(s) == "array" => max_elements(list.1),
                            _ => 0,
                        };
                        (sum.saturating_add(walked), Ty::Dyn)
                    }
                    // Calls cel-go charges one unit and no library overrides.
                    ("@not_strictly_false" | "!_" | "dyn", _) => (sum.saturating_add(1), Ty::Dyn),
                    // `&&`/`||` cost both sides at most; every other
                    // function at least its arguments.
                    _ => (sum, Ty::Dyn),
                }
            }
            Expr::List(l) => (self.sum(l.elements.iter()), Ty::Dyn),
            Expr::Map(m) => {
                let parts = m.entries.iter().filter_map(|en| match &en.expr {
                    EntryExpr::MapEntry(me) => Some([&me.key, &me.value]),
                    _ => None,
                });
                let all: Vec<&IdedExpr> = parts.flatten().collect();
                (self.sum(all.into_iter()), Ty::Dyn)
            }
            Expr::Struct(s) => {
                let fields: Vec<&IdedExpr> = s
                    .entries
                    .iter()
                    .filter_map(|en| match &en.expr {
                        EntryExpr::StructField(f) => Some(&f.value),
                        _ => None,
                    })
                    .collect();
                (self.sum(fields.into_iter()), Ty::Dyn)
            }
            Expr::Comprehension(c) => {
                let (range_cost, range) = self.cost(&c.iter_range);
                let init = self.cost(&c.accu_init).0;
                self.typer.push(&c.accu_var, Ty::Dyn);
                match &c.iter_var2 {
                    None => self.typer.push(&c.iter_var, range.iteration()),
                    Some(v2) => {
                        self.typer.push(&c.iter_var, Ty::Dyn);
                        self.typer.push(v2, Ty::Dyn);
                    }
                }
                let per_item = self
                    .cost(&c.loop_cond)
                    .0
                    .saturating_add(self.cost(&c.loop_step).0);
                self.typer.pop();
                if c.iter_var2.is_some() {
                    self.typer.pop();
                }
                let result = self.cost(&c.result).0;
                self.typer.pop();
                let total = range_cost
                    .saturating_add(init)
                    .saturating_add(result)
                    .saturating_add(max_elements(range).saturating_mul(per_item));
                (total, Ty::Dyn)
            }
        }
    }

    fn sum<'e>(&mut self, exprs: impl Iterator<Item = &'e IdedExpr>) -> u64 {
        exprs.fold(0, |acc, e| acc.saturating_add(self.cost(e).0))
    }
}

/// cel-go's own cost of the string functions it sizes (receiver style):
/// traversal at 0.1 per character, a regex at 0.25 per pattern character.
fn string_call(
    name: &str,
    target: (&IdedExpr, Ty),
    arg_exprs: &[IdedExpr],
    args: &[(u64, Ty)],
) -> Option<u64> {
    let [arg] = arg_exprs else { return None };
    let arg_size = str_size(arg, args.first().map_or(Ty::Dyn, |a| a.1));
    let tenth = |n: u64| n.div_ceil(10);
    match name {
        "matches" => {
            let t = str_size(target.0, target.1);
            Some(tenth(t.saturating_add(1)).saturating_mul(arg_size.div_ceil(4)))
        }
        "contains" => Some(tenth(str_size(target.0, target.1)).saturating_mul(tenth(arg_size))),
        "startsWith" | "endsWith" => Some(tenth(arg_size)),
        _ => None,
    }
}

/// The least size upstream gives a string: a literal's characters, or a
/// string field's maxLength, longest enum value or the request size.
fn str_size(e: &IdedExpr, t: Ty) -> u64 {
    if let Expr::Literal(LiteralValue::String(s)) = &e.expr {
        return s.inner().chars().count() as u64;
    }
    let Ty::Node(s, _) = t else { return 0 };
    if type_of(s) != "string" || int_or_string(s) || s.get("format").is_some() {
        return 0;
    }
    if let Some(n) = s.get("maxLength").and_then(Value::as_i64) {
        return n.max(0) as u64;
    }
    if let Some(values) = s.get("enum").and_then(Value::as_array) {
        return values
            .iter()
            .filter_map(Value::as_str)
            .map(|v| v.len() as u64)
            .max()
            .unwrap_or(0);
    }
    MAX_REQUEST - 2
}

/// Upstream's `MaxElements` of a list or map value: its maxItems or
/// maxProperties, else as many minimal elements as fit in a request; zero
/// for anything else (unknown counts as nothing).
fn max_elements(t: Ty) -> u64 {
    let Ty::Node(s, _) = t else {
        return 0;
    };
    let limit = |key: &str| s.get(key).and_then(Value::as_i64).map(|n| n.max(0) as u64);
    match type_of(s) {
        "array" => {
            let Some(min) = s.get("items").and_then(min_size) else {
                return 0;
            };
            limit("maxItems").unwrap_or((MAX_REQUEST - 2) / (min + 1))
        }
        "object" if !int_or_string(s) => {
            let Some(a) = s.get("additionalProperties").filter(|a| a.is_object()) else {
                return 0;
            };
            let Some(min) = min_size(a) else {
                return 0;
            };
            limit("maxProperties").unwrap_or((MAX_REQUEST - 2) / (min + 6))
        }
        _ => 0,
    }
}

/// Upstream `DeclType.MinSerializedSize` of a schema, or `None` where
/// upstream has no CEL type for it (unknown type: the value is invisible).
pub(super) fn min_size(s: &Value) -> Option<u64> {
    if int_or_string(s) {
        return Some(1);
    }
    match type_of(s) {
        "array" => {
            let items = s.get("items")?;
            min_size(items).map(|_| 2)
        }
        "object" => {
            if let Some(a) = s.get("additionalProperties").filter(|a| a.is_object()) {
                return min_size(a).map(|_| 2);
            }
            let required: Vec<&str> = s
                .get("required")
                .and_then(Value::as_array)
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let mut size = 2u64;
            if let Some(props) = s.get("properties").and_then(Value::as_object) {
                for (name, prop) in props {
                    if !required.contains(&name.as_str()) || prop.get("default").is_some() {
                        continue;
                    }
                    if let Some(m) = min_size(prop) {
                        size = size.saturating_add(name.len() as u64 + m + 4);
                    }
                }
            }
            Some(size)
        }
        "string" => Some(match s.get("format").and_then(Value::as_str) {
            Some("duration") => 3,
            Some("date") => 12,
            Some("date-time") => 21,
            _ => 2,
        }),
        "boolean" => Some(4),
        "number" | "integer" => Some(1),
        _ => None,
    }
}

/// Upstream `extractMaxElements`: how many times each child of `s` can
/// occur per occurrence of `s`; `None` when unbounded.
pub(super) fn child_factor(s: &Value) -> Option<u64> {
    let limit = |key: &str| s.get(key).and_then(Value::as_i64).map(|n| n.max(0) as u64);
    match type_of(s) {
        "object" if s.get("additionalProperties").is_some() => limit("maxProperties"),
        "array" => limit("maxItems"),
        _ => Some(1),
    }
}

/// How many times a rule runs at most: the product of its ancestors'
/// limits, or (under an unbounded list or map) as many minimal values as
/// fit in a request.
pub(super) fn cardinality(bounded: Option<u64>, s: &Value) -> u64 {
    match bounded {
        Some(n) => n,
        None => MAX_REQUEST / (min_size(s).unwrap_or(MAX_REQUEST) + 1),
    }
}

/// Upstream `getCostErrorMessage`.
pub(super) fn exceeds(what: &str, cost: u64, limit: u64) -> String {
    let factor = cost as f64 / limit as f64;
    let shown = if factor > 100.0 {
        "more than 100x".to_string()
    } else if factor < 1.5 {
        format!("{factor:.6}x")
    } else {
        format!("{factor:.1}x")
    };
    format!("{what} exceeds budget by factor of {shown} (try simplifying the rule, or adding maxItems, maxProperties, and maxLength where arrays, maps, and strings are declared)")
}

/// The running total of one schema's rules (upstream `TotalCost`).
#[derive(Default)]
pub(super) struct Total {
    pub total: u64,
    /// The four most expensive rules of at least 1% of the limit.
    pub most_expensive: Vec<(String, u64)>,
}

impl Total {
    pub(super) fn observe(&mut self, path: &str, cost: u64) {
        self.total = self.total.saturating_add(cost);
        if cost < CRD_LIMIT / 100 {
            return;
        }
        self.most_expensive.push((path.to_string(), cost));
        self.most_expensive.sort_by_key(|e| std::cmp::Reverse(e.1));
        self.most_expensive.truncate(4);
    }
}
