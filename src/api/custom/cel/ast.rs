//! Compiling one expression: parse with the crate, report what upstream's
//! checker would refuse that the parser alone lets through (references to
//! undeclared variables), and insert the cost meter in front of every
//! comprehension's range so a rule's iterations can be counted.

use cel::common::ast::{CallExpr, EntryExpr, Expr};
use cel::{Env, IdedExpr};

use super::typecheck::{self, Scope};

/// The function the meter is called as; no rule can spell it (CEL
/// identifiers cannot start with `@`).
pub(super) const METER: &str = "@nanokube_meter";

/// Identifiers a rule may use besides its comprehension variables.
const DECLARED: &[&str] = &["self", "oldSelf", "optional"];

/// Type names CEL lets every expression mention.
const TYPE_NAMES: &[&str] = &[
    "int",
    "uint",
    "double",
    "bool",
    "string",
    "bytes",
    "list",
    "map",
    "null_type",
    "type",
];

/// `source` compiled and metered, or upstream-style compiler errors
/// (`ERROR: <input>:1:6: ...` with the source line and a caret). With a
/// `scope`, fields the schema does not declare are errors too.
pub(super) fn compile(env: &Env, source: &str, scope: Option<Scope>) -> Result<IdedExpr, String> {
    let mut expr = parse(env, source, DECLARED, scope)?;
    meter(&mut expr);
    Ok(expr)
}

/// `source` parsed, or cel-go's errors for what its checker refuses that
/// the parser lets through: names outside `declared` (and the type names),
/// and, with a `scope`, fields the schema does not declare.
pub(super) fn parse(
    env: &Env,
    source: &str,
    declared: &[&str],
    scope: Option<Scope>,
) -> Result<IdedExpr, String> {
    let program = env.compile(source).map_err(|e| go_layout(&e.to_string()))?;
    let expr = program.expression().clone();
    let mut errors: Vec<(u64, String)> = Vec::new();
    let mut undeclared = Vec::new();
    free_idents_all(&expr, &mut Vec::new(), &mut undeclared);
    undeclared
        .retain(|(_, n)| !declared.contains(&n.as_str()) && !TYPE_NAMES.contains(&n.as_str()));
    for (id, name) in undeclared {
        errors.push((
            id,
            format!("undeclared reference to '{name}' (in container '')"),
        ));
    }
    if let Some(scope) = scope {
        errors.extend(typecheck::undefined_fields(&expr, scope));
    }
    if !errors.is_empty() {
        let offset = |id: u64| program.source_info().offset_for(id).map_or(0, |(s, _)| s);
        let mut located: Vec<(u32, String)> =
            errors.into_iter().map(|(id, m)| (offset(id), m)).collect();
        // cel-go lists a checker's errors by position.
        located.sort_by_key(|(o, _)| *o);
        let shown: Vec<String> = located
            .iter()
            .map(|(o, m)| error_at(source, *o as usize, m))
            .collect();
        return Err(shown.join("\n"));
    }
    Ok(expr)
}

/// Whether the rule reads `oldSelf`: a transition rule.
pub(super) fn uses_old_self(expr: &IdedExpr) -> bool {
    let mut names = Vec::new();
    free_idents_all(expr, &mut Vec::new(), &mut names);
    names.iter().any(|(_, n)| n == "oldSelf")
}

/// cel-go indents snippet lines with a space before the bar.
fn go_layout(msg: &str) -> String {
    msg.replace("\n| ", "\n | ")
}

/// cel-go's `Error.ToDisplayString`: position, message, the source line
/// (tabs as spaces) and a caret under the offending character.
fn error_at(source: &str, offset: usize, msg: &str) -> String {
    // The parser's offsets are in bytes; cel-go's columns in characters.
    let before = source.get(..offset).unwrap_or(source);
    let line_no = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let col = before[line_start..].chars().count();
    let line = source
        .split('\n')
        .nth(line_no - 1)
        .unwrap_or("")
        .replace('\t', " ");
    let mut caret: String = line
        .chars()
        .take(col)
        .map(|c| if c.len_utf8() > 1 { '\u{ff0e}' } else { '.' })
        .collect();
    let wide = line.chars().nth(col).is_some_and(|c| c.len_utf8() > 1);
    caret.push(if wide { '\u{ff3e}' } else { '^' });
    format!(
        "ERROR: <input>:{line_no}:{}: {msg}\n | {line}\n | {caret}",
        col + 1
    )
}

/// Every identifier not bound by an enclosing comprehension.
fn free_idents_all(e: &IdedExpr, bound: &mut Vec<String>, out: &mut Vec<(u64, String)>) {
    match &e.expr {
        Expr::Ident(name) => {
            if !bound.contains(name) {
                out.push((e.id, name.clone()));
            }
        }
        Expr::Call(c) => {
            if let Some(t) = &c.target {
                free_idents_all(t, bound, out);
            }
            for a in &c.args {
                free_idents_all(a, bound, out);
            }
        }
        Expr::Select(s) => free_idents_all(&s.operand, bound, out),
        Expr::List(l) => {
            for el in &l.elements {
                free_idents_all(el, bound, out);
            }
        }
        Expr::Map(m) => {
            for entry in &m.entries {
                if let EntryExpr::MapEntry(me) = &entry.expr {
                    free_idents_all(&me.key, bound, out);
                    free_idents_all(&me.value, bound, out);
                }
            }
        }
        Expr::Struct(s) => {
            for entry in &s.entries {
                if let EntryExpr::StructField(f) = &entry.expr {
                    free_idents_all(&f.value, bound, out);
                }
            }
        }
        Expr::Comprehension(c) => {
            free_idents_all(&c.iter_range, bound, out);
            free_idents_all(&c.accu_init, bound, out);
            let depth = bound.len();
            bound.push(c.iter_var.clone());
            if let Some(v2) = &c.iter_var2 {
                bound.push(v2.clone());
            }
            bound.push(c.accu_var.clone());
            free_idents_all(&c.loop_cond, bound, out);
            free_idents_all(&c.loop_step, bound, out);
            free_idents_all(&c.result, bound, out);
            bound.truncate(depth);
        }
        Expr::Literal(_) | Expr::Unspecified => {}
    }
}

/// Wraps every comprehension's range in a call to [`METER`], which charges
/// the range's size before the loop runs (nested loops are charged once
/// per outer iteration, as they run).
fn meter(e: &mut IdedExpr) {
    match &mut e.expr {
        Expr::Call(c) => {
            if let Some(t) = c.target.as_mut() {
                meter(t);
            }
            c.args.iter_mut().for_each(meter);
        }
        Expr::Select(s) => meter(&mut s.operand),
        Expr::List(l) => l.elements.iter_mut().for_each(meter),
        Expr::Map(m) => {
            for entry in &mut m.entries {
                if let EntryExpr::MapEntry(me) = &mut entry.expr {
                    meter(&mut me.key);
                    meter(&mut me.value);
                }
            }
        }
        Expr::Struct(s) => {
            for entry in &mut s.entries {
                if let EntryExpr::StructField(f) = &mut entry.expr {
                    meter(&mut f.value);
                }
            }
        }
        Expr::Comprehension(c) => {
            meter(&mut c.iter_range);
            meter(&mut c.accu_init);
            meter(&mut c.loop_cond);
            meter(&mut c.loop_step);
            meter(&mut c.result);
            let range = std::mem::take(&mut c.iter_range);
            c.iter_range = IdedExpr {
                id: range.id,
                expr: Expr::Call(CallExpr {
                    func_name: METER.to_string(),
                    target: None,
                    args: vec![range],
                }),
            };
        }
        Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => {}
    }
}
