//! The schema walk: every `x-kubernetes-validations` entry compiled once
//! into a tree that mirrors the schema's properties/items/
//! additionalProperties, keeping only branches that hold rules. CRD-time
//! checks (empty rule, message line breaks, reason, fieldPath, oldSelf on
//! uncorrelatable nodes) report upstream's causes.

use serde_json::Value;

use super::ast;
use super::cost;
use super::path;
use super::typecheck::{self, Scope};
use super::value::type_of;
use crate::api::validation::{self, go_quote, FieldCause};

const REASONS: &[&str] = &[
    "FieldValueDuplicate",
    "FieldValueForbidden",
    "FieldValueInvalid",
    "FieldValueRequired",
];

/// One compiled validation rule.
pub(super) struct Rule {
    pub rule: String,
    pub message: String,
    pub message_expression: String,
    pub reason: Option<String>,
    /// The fieldPath turned into the suffix upstream appends (`foo.bar`).
    pub field_path: Option<String>,
    pub program: cel::IdedExpr,
    pub message_program: Option<cel::IdedExpr>,
    pub uses_old_self: bool,
    /// `optionalOldSelf: true`: the rule also runs without an old value,
    /// seeing oldSelf as an optional.
    pub optional_old_self: bool,
}

/// A schema node with rules at or below it.
pub(super) struct Node {
    pub schema: Value,
    pub resource_root: bool,
    pub rules: Vec<Rule>,
    pub props: Vec<(String, Node)>,
    pub items: Option<Box<Node>>,
    pub additional: Option<Box<Node>>,
    /// `x-kubernetes-list-map-keys` of a map-type list: its items correlate.
    pub map_keys: Option<Vec<String>>,
}

impl Node {
    pub(super) fn type_name(&self) -> &str {
        type_of(&self.schema)
    }

    /// Rules at this node and below.
    pub(super) fn rule_count(&self) -> usize {
        self.rules.len()
            + self
                .props
                .iter()
                .map(|(_, n)| n.rule_count())
                .sum::<usize>()
            + self.items.as_ref().map_or(0, |n| n.rule_count())
            + self.additional.as_ref().map_or(0, |n| n.rule_count())
    }
}

pub(super) struct Compiler<'a> {
    pub env: &'a cel::Env,
    pub errors: Vec<FieldCause>,
    /// CRD-time checks (undefined fields, result types, cost), with the
    /// schema's running cost total; off when serving a stored CRD.
    pub checks: Option<cost::Total>,
}

impl Compiler<'_> {
    /// `uncorrelatable` is the schema path of the nearest non-map list's
    /// items above this node, where oldSelf can never have a value; `card`
    /// how often the node can occur (`None`: under an unbounded list/map).
    pub(super) fn node(
        &mut self,
        schema: &Value,
        at: &str,
        root: bool,
        uncorrelatable: Option<&str>,
        card: Option<u64>,
    ) -> Option<Node> {
        let child_card = card
            .zip(cost::child_factor(schema))
            .map(|(a, b)| a.saturating_mul(b));
        let mut props = Vec::new();
        if let Some(p) = schema.get("properties").and_then(Value::as_object) {
            for (name, sub) in p {
                let sub_at = format!("{at}.properties[{name}]");
                let embedded = super::value::embedded(sub);
                if let Some(n) = self.node(sub, &sub_at, embedded, uncorrelatable, child_card) {
                    props.push((name.clone(), n));
                }
            }
        }
        let map_keys = map_keys(schema);
        let items = schema.get("items").filter(|i| i.is_object()).and_then(|i| {
            let items_at = format!("{at}.items");
            let unc = match (&map_keys, uncorrelatable) {
                (_, Some(u)) => Some(u.to_string()),
                (None, None) => Some(items_at.clone()),
                (Some(_), None) => None,
            };
            let embedded = super::value::embedded(i);
            self.node(i, &items_at, embedded, unc.as_deref(), child_card)
        });
        let additional = schema
            .get("additionalProperties")
            .filter(|a| a.is_object())
            .and_then(|a| {
                let embedded = super::value::embedded(a);
                let sub_at = format!("{at}.additionalProperties");
                self.node(a, &sub_at, embedded, uncorrelatable, child_card)
            });
        let rules = self.rules(schema, at, uncorrelatable, Place { root, card });
        if rules.is_empty() && props.is_empty() && items.is_none() && additional.is_none() {
            return None;
        }
        // Only a node with rules converts its value (and needs its whole
        // subtree); the others keep their type for nothing but its name.
        let own = if rules.is_empty() {
            serde_json::json!({"type": type_of(schema)})
        } else {
            schema.clone()
        };
        Some(Node {
            schema: own,
            resource_root: root,
            rules,
            props,
            items: items.map(Box::new),
            additional: additional.map(Box::new),
            map_keys,
        })
    }

    fn rules(
        &mut self,
        schema: &Value,
        at: &str,
        uncorrelatable: Option<&str>,
        place: Place,
    ) -> Vec<Rule> {
        let Some(list) = schema
            .get("x-kubernetes-validations")
            .and_then(Value::as_array)
        else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for (i, raw) in list.iter().enumerate() {
            let vp = format!("{at}.x-kubernetes-validations[{i}]");
            if let Some(rule) = self.rule(raw, schema, &vp, uncorrelatable, place) {
                out.push(rule);
            }
        }
        out
    }

    fn rule(
        &mut self,
        raw: &Value,
        schema: &Value,
        vp: &str,
        unc: Option<&str>,
        place: Place,
    ) -> Option<Rule> {
        let text = |k: &str| raw.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let (rule, message, msg_expr) = (text("rule"), text("message"), text("messageExpression"));
        let reason = raw
            .get("reason")
            .and_then(Value::as_str)
            .map(str::to_string);
        let fp = raw
            .get("fieldPath")
            .and_then(Value::as_str)
            .map(str::to_string);
        let before = self.errors.len();
        let (trim_rule, trim_msg) = (rule.trim(), message.trim());
        let msg_at = format!("{vp}.message");
        if trim_rule.is_empty() {
            self.errors.push(validation::required(
                &format!("{vp}.rule"),
                "rule is not specified",
            ));
        } else if !message.is_empty() && trim_msg.is_empty() {
            let bad = Value::String(message.clone());
            self.errors.push(validation::invalid(
                &msg_at,
                &bad,
                "message must be non-empty if specified",
            ));
        } else if has_newlines(trim_msg) {
            let bad = Value::String(message.clone());
            self.errors.push(validation::invalid(
                &msg_at,
                &bad,
                "message must not contain line breaks",
            ));
        } else if has_newlines(trim_rule) && trim_msg.is_empty() {
            let detail = "message must be specified if rule contains line breaks";
            self.errors.push(validation::required(&msg_at, detail));
        }
        if !msg_expr.is_empty() && msg_expr.trim().is_empty() {
            let detail = "messageExpression must be non-empty if specified";
            self.errors.push(validation::required(
                &format!("{vp}.messageExpression"),
                detail,
            ));
        }
        if let Some(r) = reason.as_deref().filter(|r| !REASONS.contains(r)) {
            let bad = Value::String(r.to_string());
            self.errors.push(validation::not_supported(
                &format!("{vp}.reason"),
                &bad,
                REASONS,
            ));
        }
        let field_path = match fp.as_deref() {
            Some(fp) => self.field_path(fp, schema, vp),
            None => None,
        };
        if self.errors.len() > before {
            return None;
        }
        let shown = render_rule(raw);
        let scope = self.checks.is_some().then_some(Scope {
            schema,
            root: place.root,
            optional_old_self: raw.get("optionalOldSelf") == Some(&Value::Bool(true)),
        });
        let program = match ast::compile(self.env, &rule, scope) {
            Ok(p) => p,
            Err(e) => {
                let detail = format!("compilation failed: {e}");
                self.errors
                    .push(invalid_rendered(&format!("{vp}.rule"), &shown, &detail));
                return None;
            }
        };
        if let Some(scope) = scope {
            if !self.checked_rule(&program, scope, place, vp, &shown) {
                return None;
            }
        }
        let uses_old_self = ast::uses_old_self(&program);
        if let (true, Some(within)) = (uses_old_self, unc) {
            let detail = format!("oldSelf cannot be used on the uncorrelatable portion of the schema within {within}");
            let bad = Value::String(rule.clone());
            self.errors
                .push(validation::invalid(&format!("{vp}.rule"), &bad, &detail));
            return None;
        }
        if let (false, Some(flag)) = (
            uses_old_self,
            raw.get("optionalOldSelf").filter(|f| f.is_boolean()),
        ) {
            let detail = "may not be set if oldSelf is not used in rule";
            self.errors.push(validation::invalid(
                &format!("{vp}.optionalOldSelf"),
                flag,
                detail,
            ));
            return None;
        }
        let message_program = if msg_expr.trim().is_empty() {
            None
        } else {
            match ast::compile(self.env, &msg_expr, scope) {
                Ok(p) if !self.checked_message(&p, scope, vp, &shown) => {
                    return None;
                }
                Ok(p) => Some(p),
                Err(e) => {
                    let detail = format!("messageExpression compilation failed: {e}");
                    let at = format!("{vp}.messageExpression");
                    self.errors.push(invalid_rendered(&at, &shown, &detail));
                    return None;
                }
            }
        };
        Some(Rule {
            rule,
            message,
            message_expression: msg_expr,
            reason,
            field_path,
            program,
            message_program,
            uses_old_self,
            optional_old_self: raw.get("optionalOldSelf") == Some(&Value::Bool(true)),
        })
    }

    /// The rule's result type and cost against upstream's limits; false
    /// when the rule is refused.
    fn checked_rule(
        &mut self,
        program: &cel::IdedExpr,
        scope: Scope,
        place: Place,
        vp: &str,
        shown: &str,
    ) -> bool {
        let at = format!("{vp}.rule");
        if matches!(
            typecheck::literal(program),
            Some(typecheck::Literal::String | typecheck::Literal::Other)
        ) {
            let detail = "cel expression must evaluate to a bool";
            self.errors.push(invalid_rendered(&at, shown, detail));
            return false;
        }
        let per_call = cost::estimate(program, scope);
        let card = cost::cardinality(place.card, scope.schema);
        let total = per_call.saturating_mul(card);
        if total > cost::RULE_LIMIT {
            let detail = cost::exceeds("estimated rule cost", total, cost::RULE_LIMIT);
            self.errors.push(validation::forbidden(&at, &detail));
        }
        if let Some(t) = self.checks.as_mut() {
            t.observe(&at, total);
        }
        true
    }

    /// A messageExpression's result type and cost; false when refused.
    fn checked_message(
        &mut self,
        program: &cel::IdedExpr,
        scope: Option<Scope>,
        vp: &str,
        shown: &str,
    ) -> bool {
        let Some(scope) = scope else { return true };
        let at = format!("{vp}.messageExpression");
        if matches!(
            typecheck::literal(program),
            Some(typecheck::Literal::Bool | typecheck::Literal::Other)
        ) {
            let detail = "messageExpression must evaluate to a string";
            self.errors.push(invalid_rendered(&at, shown, detail));
            return false;
        }
        let c = cost::estimate(program, scope);
        if c > cost::RULE_LIMIT {
            let detail = cost::exceeds("estimated messageExpression cost", c, cost::RULE_LIMIT);
            self.errors.push(validation::forbidden(&at, &detail));
        }
        if let Some(t) = self.checks.as_mut() {
            t.observe(&at, c);
        }
        true
    }

    fn field_path(&mut self, fp: &str, schema: &Value, vp: &str) -> Option<String> {
        let at = format!("{vp}.fieldPath");
        let bad = Value::String(fp.to_string());
        if fp.trim().is_empty() {
            let detail = "fieldPath must be non-empty if specified";
            self.errors.push(validation::invalid(&at, &bad, detail));
            return None;
        }
        if has_newlines(fp) {
            let detail = "fieldPath must not contain line breaks";
            self.errors.push(validation::invalid(&at, &bad, detail));
            return None;
        }
        match path::resolve(fp, schema) {
            Ok(p) => Some(p),
            Err(e) => {
                let detail = format!("fieldPath must be a valid path: {e}");
                self.errors.push(validation::invalid(&at, &bad, &detail));
                None
            }
        }
    }
}

/// Where a schema node sits: at a resource root, and how often it occurs.
#[derive(Clone, Copy)]
struct Place {
    root: bool,
    card: Option<u64>,
}

fn has_newlines(s: &str) -> bool {
    s.contains(['\n', '\r'])
}

fn map_keys(schema: &Value) -> Option<Vec<String>> {
    if schema.get("x-kubernetes-list-type").and_then(Value::as_str) != Some("map") {
        return None;
    }
    let keys = schema
        .get("x-kubernetes-list-map-keys")
        .and_then(Value::as_array)?;
    Some(
        keys.iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
    )
}

/// `field.Invalid` whose bad value is already rendered the way Go prints it.
fn invalid_rendered(field: &str, rendered: &str, detail: &str) -> FieldCause {
    FieldCause {
        reason: "FieldValueInvalid",
        message: format!("Invalid value: {rendered}: {detail}"),
        field: field.to_string(),
    }
}

/// `%#v` of upstream's internal `apiextensions.ValidationRule`. Go prints
/// set pointers as addresses; a fixed one stands in for them.
fn render_rule(raw: &Value) -> String {
    let text = |k: &str| go_quote(raw.get(k).and_then(Value::as_str).unwrap_or(""));
    let reason = match raw.get("reason") {
        Some(Value::String(_)) => "(*apiextensions.FieldValueErrorReason)(0xc000010000)",
        _ => "(*apiextensions.FieldValueErrorReason)(nil)",
    };
    let optional = match raw.get("optionalOldSelf") {
        Some(Value::Bool(_)) => "(*bool)(0xc000010008)",
        _ => "(*bool)(nil)",
    };
    format!(
        "apiextensions.ValidationRule{{Rule:{}, Message:{}, MessageExpression:{}, Reason:{reason}, FieldPath:{}, OptionalOldSelf:{optional}}}",
        text("rule"),
        text("message"),
        text("messageExpression"),
        text("fieldPath"),
    )
}
