//! Running the compiled rules over an object (and its old version) the way
//! upstream's `Validator.validate` does: rules of a node see its value as
//! `self`, transition rules run only where an old value correlates, null
//! values are skipped, and every failure is a field cause with upstream's
//! text. A cost meter bounds each rule and the whole object.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cel::objects::OptionalValue;
use cel::{Context, Env, ExecutionError, Value as Cel};
use serde_json::Value;

use super::ast::METER;
use super::tree::{Node, Rule};
use super::value::Converter;
use super::CelError;
use crate::api::validation::{self, FieldCause};

/// Comprehension iterations one rule may run (upstream's per-call limit
/// is a cost of 1,000,000, roughly one unit per iteration).
const PER_CALL_LIMIT: u64 = 1_000_000;
/// Iterations all rules of one object may run together.
const OBJECT_BUDGET: u64 = 10_000_000;
/// Wall-clock cap on one rule, a backstop for costs the meter cannot see.
const PER_CALL_TIME: Duration = Duration::from_secs(1);
/// Upstream `MaxEvaluatedMessageExpressionSizeBytes`.
const MAX_MESSAGE_BYTES: usize = 5 * 1024;

const OUT_OF_BUDGET: &str =
    "validation failed due to running out of cost budget, no further validation rules will be run";

/// Counts iterations of one evaluation; shared with the meter function.
struct Meter {
    used: AtomicU64,
    exceeded: AtomicBool,
    limit: u64,
    deadline: Instant,
}

impl Meter {
    fn charge(&self, v: &Cel) -> Result<(), ExecutionError> {
        let n = match v {
            Cel::List(l) => l.len() as u64,
            Cel::Map(m) => m.map.len() as u64,
            _ => 1,
        };
        let used = self.used.fetch_add(n.max(1), Ordering::Relaxed) + n.max(1);
        if used > self.limit || Instant::now() > self.deadline {
            self.exceeded.store(true, Ordering::Relaxed);
            return Err(ExecutionError::function_error(
                METER,
                CelError::CostExceeded,
            ));
        }
        Ok(())
    }
}

pub(super) struct Evaluator<'a> {
    pub env: &'a Arc<Env>,
    pub conv: &'a Converter,
    pub budget: u64,
    pub out: Vec<FieldCause>,
    pub stopped: bool,
}

impl<'a> Evaluator<'a> {
    pub(super) fn new(env: &'a Arc<Env>, conv: &'a Converter) -> Self {
        Evaluator {
            env,
            conv,
            budget: OBJECT_BUDGET,
            out: Vec::new(),
            stopped: false,
        }
    }

    /// Validates `new` at `node`. `ratchet` is upstream's ratcheting: the
    /// nearest correlated ancestor is unchanged, so failures of rules that
    /// do not read oldSelf are dropped (upstream turns them into warnings).
    pub(super) fn walk(
        &mut self,
        node: &Node,
        path: &str,
        new: &Value,
        old: Option<&Value>,
        ratchet: bool,
    ) {
        if self.stopped || new.is_null() {
            return;
        }
        let old = old.filter(|o| !o.is_null());
        let ratchet = match old {
            Some(o) => o == new,
            None => ratchet,
        };
        if !node.rules.is_empty() {
            self.rules(node, path, new, old, ratchet);
        }
        match new {
            Value::Object(obj) => {
                for (name, child) in &node.props {
                    if let Some(v) = obj.get(name) {
                        let o = old.and_then(|o| o.get(name));
                        self.walk(child, &child_path(path, name), v, o, ratchet);
                    }
                }
                if let Some(child) = &node.additional {
                    for (k, v) in obj {
                        let o = old.and_then(|o| o.get(k));
                        self.walk(child, &format!("{path}[{k}]"), v, o, ratchet);
                    }
                }
            }
            Value::Array(items) => {
                let Some(child) = &node.items else { return };
                let old_items = old.and_then(Value::as_array);
                for (i, v) in items.iter().enumerate() {
                    let o = match (&node.map_keys, old_items) {
                        (Some(keys), Some(olds)) => correlate(keys, v, olds),
                        _ => None,
                    };
                    self.walk(child, &format!("{path}[{i}]"), v, o, ratchet);
                }
            }
            _ => {}
        }
    }

    fn rules(&mut self, node: &Node, path: &str, new: &Value, old: Option<&Value>, ratchet: bool) {
        let ty = Value::String(node.type_name().to_string());
        let at = shown(path);
        if self.budget == 0 {
            self.out.push(validation::invalid(&at, &ty, OUT_OF_BUDGET));
            self.stopped = true;
            return;
        }
        let this = self.conv.convert(new, &node.schema, node.resource_root);
        let before = old.map(|o| self.conv.convert(o, &node.schema, node.resource_root));
        for rule in &node.rules {
            if rule.uses_old_self && before.is_none() && !rule.optional_old_self {
                continue;
            }
            let old_self = if rule.optional_old_self {
                let opt = match &before {
                    Some(b) => OptionalValue::of(b.clone()),
                    None => OptionalValue::none(),
                };
                Some(Cel::Opaque(Arc::new(opt)))
            } else {
                before.clone()
            };
            let (result, meter) = self.run(&rule.program, &this, old_self.as_ref());
            if meter.exceeded.load(Ordering::Relaxed) {
                let detail = format!(
                    "'operation cancelled: actual cost limit exceeded': no further validation rules will be run due to call cost exceeds limit for rule: {}",
                    rule_error_string(rule)
                );
                self.out.push(validation::invalid(&at, &ty, &detail));
                self.stopped = true;
                return;
            }
            if !self.spend(meter.used.load(Ordering::Relaxed)) {
                self.out.push(validation::invalid(&at, &ty, OUT_OF_BUDGET));
                self.stopped = true;
                return;
            }
            match result {
                Ok(Cel::Bool(true)) => continue,
                Ok(_) => {}
                Err(e) => {
                    self.out
                        .push(validation::invalid(&at, &ty, &eval_error(&e, rule)));
                    continue;
                }
            }
            if ratchet && !rule.uses_old_self {
                continue;
            }
            let failed_at = match &rule.field_path {
                Some(fp) => shown(&child_path(path, fp)),
                None => at.clone(),
            };
            let detail = match &rule.message_program {
                Some(p) => {
                    let (result, meter) = self.run(p, &this, before.as_ref());
                    if meter.exceeded.load(Ordering::Relaxed)
                        || !self.spend(meter.used.load(Ordering::Relaxed))
                    {
                        let detail = "messageExpression evaluation failed due to running out of cost budget, no further validation rules will be run";
                        self.out.push(validation::invalid(&failed_at, &ty, detail));
                        self.stopped = true;
                        return;
                    }
                    message_text(result).unwrap_or_else(|| message_or_default(rule))
                }
                None => message_or_default(rule),
            };
            self.out
                .push(for_reason(&failed_at, &ty, &detail, rule.reason.as_deref()));
        }
    }

    fn run(
        &self,
        program: &cel::IdedExpr,
        this: &Cel,
        before: Option<&Cel>,
    ) -> (Result<Cel, ExecutionError>, Arc<Meter>) {
        let meter = Arc::new(Meter {
            used: AtomicU64::new(0),
            exceeded: AtomicBool::new(false),
            limit: PER_CALL_LIMIT.min(self.budget),
            deadline: Instant::now() + PER_CALL_TIME,
        });
        let mut ctx = Context::with_env(self.env.clone());
        ctx.add_variable_from_value("self", this.clone());
        if let Some(b) = before {
            ctx.add_variable_from_value("oldSelf", b.clone());
        }
        let m = meter.clone();
        let added = ctx.add_function(METER, move |v: Cel| -> Result<Cel, ExecutionError> {
            m.charge(&v)?;
            Ok(v)
        });
        super::k8s::register(&mut ctx);
        if let Err(e) = added {
            let err = ExecutionError::function_error(METER, e);
            return (Err(err), meter);
        }
        (ctx.resolve(program), meter)
    }

    fn spend(&mut self, used: u64) -> bool {
        match self.budget.checked_sub(used) {
            Some(left) => {
                self.budget = left;
                true
            }
            None => {
                self.budget = 0;
                false
            }
        }
    }
}

/// The old item of a map-type list with the same key values as `item`.
fn correlate<'v>(keys: &[String], item: &Value, olds: &'v [Value]) -> Option<&'v Value> {
    olds.iter()
        .find(|o| keys.iter().all(|k| o.get(k) == item.get(k)))
}

/// `field.Path.Child`: the root path is empty.
fn child_path(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

/// A nil `field.Path` prints as `<nil>`, which is what rules at the root
/// of a custom resource report.
fn shown(path: &str) -> String {
    if path.is_empty() {
        "<nil>".to_string()
    } else {
        path.to_string()
    }
}

/// Upstream `ruleErrorString`: the message if set, else the rule, trimmed.
fn rule_error_string(rule: &Rule) -> String {
    if rule.message.is_empty() {
        rule.rule.trim().to_string()
    } else {
        rule.message.trim().to_string()
    }
}

/// Upstream `ruleMessageOrDefault`.
fn message_or_default(rule: &Rule) -> String {
    if rule.message.is_empty() {
        format!("failed rule: {}", rule_error_string(rule))
    } else {
        rule.message.trim().to_string()
    }
}

/// A messageExpression's result when upstream would use it: a non-empty
/// single-line string within the size limit; otherwise the static message.
fn message_text(result: Result<Cel, ExecutionError>) -> Option<String> {
    let Ok(Cel::String(s)) = result else {
        return None;
    };
    let t = s.trim();
    let usable = !t.is_empty() && !t.contains('\n') && t.len() <= MAX_MESSAGE_BYTES;
    usable.then(|| t.to_string())
}

/// Upstream `fieldErrorForReason`.
fn for_reason(at: &str, ty: &Value, detail: &str, reason: Option<&str>) -> FieldCause {
    match reason {
        Some("FieldValueForbidden") => validation::forbidden(at, detail),
        Some("FieldValueRequired") => validation::required(at, detail),
        Some("FieldValueDuplicate") => validation::duplicate(at, ty),
        _ => validation::invalid(at, ty, detail),
    }
}

/// An evaluation error in cel-go's words, framed as upstream frames it.
fn eval_error(e: &ExecutionError, rule: &Rule) -> String {
    let rule_text = rule_error_string(rule);
    let text = match e {
        ExecutionError::NoSuchOverload(_)
        | ExecutionError::UnsupportedBinaryOperator(..)
        | ExecutionError::ValuesNotComparable(..)
        | ExecutionError::UnexpectedType { .. } => {
            return format!("'no such overload': call arguments did not match a supported operator, function or macro signature for rule: {rule_text}");
        }
        ExecutionError::NoSuchKey(k) => format!("no such key: {k}"),
        ExecutionError::DivisionByZero(_) => "division by zero".to_string(),
        ExecutionError::RemainderByZero(_) => "modulus by zero".to_string(),
        ExecutionError::Overflow(..) => "integer overflow".to_string(),
        ExecutionError::IndexOutOfBounds(i) => format!("index out of bounds: {}", bare(i)),
        ExecutionError::UndeclaredReference(n) => format!("no such attribute(s): {n}"),
        ExecutionError::FunctionError { message, .. } => message.clone(),
        other => lower_first(&other.to_string()),
    };
    format!("{text} evaluating rule: {rule_text}")
}

fn bare(v: &Cel) -> String {
    match v {
        Cel::Int(i) => i.to_string(),
        Cel::UInt(u) => u.to_string(),
        other => format!("{other:?}"),
    }
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}
