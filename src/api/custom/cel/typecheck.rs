//! The part of upstream's type checker that can be decided from the schema
//! alone: a field selected (or tested with `has`) on an object whose
//! properties are declared must be one of them, and a rule that is a bare
//! non-bool literal cannot be a rule. Anything not certain is typed `Dyn`
//! and never refused, so a rule upstream accepts is never refused here.

use cel::common::ast::{EntryExpr, Expr, LiteralValue};
use cel::IdedExpr;
use serde_json::Value;

use super::ast::METER;
use super::value::{embedded, escape, type_of};

/// What the checker knows about an expression's value.
#[derive(Clone, Copy)]
pub(super) enum Ty<'a> {
    /// Nothing sure: no check below it.
    Dyn,
    /// A value of this schema node; `true` at a resource root (the custom
    /// resource itself or an embedded resource).
    Node(&'a Value, bool),
    /// A resource root's `metadata`: only `name` and `generateName`.
    Meta,
    /// Already reported; selections on it report nothing more.
    Error,
}

impl<'a> Ty<'a> {
    /// The type of `.field`, or `None` when upstream's checker reports
    /// `undefined field`.
    pub(super) fn field(self, field: &str) -> Option<Ty<'a>> {
        let (s, root) = match self {
            Ty::Node(s, root) => (s, root),
            Ty::Meta => {
                return matches!(field, "name" | "generateName").then_some(Ty::Dyn);
            }
            other => return Some(other),
        };
        if int_or_string(s) || type_of(s) != "object" {
            return Some(Ty::Dyn);
        }
        if let Some(a) = s.get("additionalProperties") {
            return Some(node_or_dyn(a));
        }
        let props = s.get("properties").and_then(Value::as_object);
        if root {
            // Upstream replaces these three at a resource root unless the
            // schema already declares them all as the strings it needs.
            match field {
                "apiVersion" | "kind" => return Some(Ty::Dyn),
                "metadata" => return Some(root_meta(props)),
                _ => {}
            }
        }
        let Some(props) = props else {
            return Some(Ty::Dyn);
        };
        if let Some(sub) = props
            .iter()
            .find(|(name, _)| *name == field || escape(name).as_deref() == Some(field))
            .map(|(_, sub)| sub)
        {
            return Some(node_or_dyn(sub));
        }
        let preserve = s.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
        preserve.then_some(Ty::Dyn)
    }

    /// The type of an element: `list[i]`, `map[k]`, or the variable of a
    /// comprehension over a list.
    pub(super) fn element(self) -> Ty<'a> {
        let Ty::Node(s, _) = self else {
            return Ty::Dyn;
        };
        match type_of(s) {
            "array" => s.get("items").map_or(Ty::Dyn, node_or_dyn),
            "object" => s.get("additionalProperties").map_or(Ty::Dyn, node_or_dyn),
            _ => Ty::Dyn,
        }
    }

    /// The type of a comprehension's single variable over a value of this
    /// type (list items; map keys are strings).
    pub(super) fn iteration(self) -> Ty<'a> {
        match self {
            Ty::Node(s, _) if type_of(s) == "array" => self.element(),
            _ => Ty::Dyn,
        }
    }

    /// True for an object or map value: selecting on it costs one unit.
    pub(super) fn is_struct_or_map(self) -> bool {
        match self {
            Ty::Node(s, _) => type_of(s) == "object" && !int_or_string(s),
            Ty::Meta => true,
            _ => false,
        }
    }
}

fn node_or_dyn(s: &Value) -> Ty<'_> {
    if s.is_object() {
        Ty::Node(s, embedded(s))
    } else {
        Ty::Dyn
    }
}

pub(super) fn int_or_string(s: &Value) -> bool {
    s.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true))
}

fn root_meta(props: Option<&serde_json::Map<String, Value>>) -> Ty<'static> {
    let declared = props
        .and_then(|p| p.get("metadata"))
        .and_then(|m| m.get("properties"))
        .is_some_and(|mp| {
            ["name", "generateName"]
                .iter()
                .all(|f| mp.get(*f).map(type_of) == Some("string"))
        });
    // A full declaration is kept as written; its properties are not
    // followed (the value shown to rules has only the names).
    if declared {
        Ty::Dyn
    } else {
        Ty::Meta
    }
}

/// What `self` and `oldSelf` are for one rule.
#[derive(Clone, Copy)]
pub(super) struct Scope<'a> {
    pub schema: &'a Value,
    pub root: bool,
    /// `optionalOldSelf: true`: oldSelf is an optional, not the schema type.
    pub optional_old_self: bool,
}

/// Walks an expression with the types of its variables in scope.
pub(super) struct Typer<'a> {
    scope: Scope<'a>,
    vars: Vec<(String, Ty<'a>)>,
    /// (expression id, message) of each undefined field.
    pub errors: Vec<(u64, String)>,
}

impl<'a> Typer<'a> {
    pub(super) fn new(scope: Scope<'a>) -> Self {
        Typer {
            scope,
            vars: Vec::new(),
            errors: Vec::new(),
        }
    }

    pub(super) fn ident(&self, name: &str) -> Ty<'a> {
        if let Some((_, t)) = self.vars.iter().rev().find(|(n, _)| n == name) {
            return *t;
        }
        match name {
            "self" => Ty::Node(self.scope.schema, self.scope.root),
            "oldSelf" if !self.scope.optional_old_self => {
                Ty::Node(self.scope.schema, self.scope.root)
            }
            _ => Ty::Dyn,
        }
    }

    pub(super) fn push(&mut self, name: &str, t: Ty<'a>) {
        self.vars.push((name.to_string(), t));
    }

    pub(super) fn pop(&mut self) {
        self.vars.pop();
    }

    /// The type of `e`, recording undefined fields on the way.
    pub(super) fn ty(&mut self, e: &IdedExpr) -> Ty<'a> {
        match &e.expr {
            Expr::Ident(name) => self.ident(name),
            Expr::Select(s) => {
                let operand = self.ty(&s.operand);
                match operand.field(&s.field) {
                    Some(_) if s.test => Ty::Dyn,
                    Some(t) => t,
                    None => {
                        self.errors
                            .push((e.id, format!("undefined field '{}'", s.field)));
                        Ty::Error
                    }
                }
            }
            Expr::Call(c) => {
                let target = c.target.as_ref().map(|t| self.ty(t));
                let args: Vec<Ty> = c.args.iter().map(|a| self.ty(a)).collect();
                match (c.func_name.as_str(), target, args.as_slice()) {
                    (METER, None, [t]) => *t,
                    ("_[_]", None, [container, _]) => container.element(),
                    _ => Ty::Dyn,
                }
            }
            Expr::List(l) => {
                for el in &l.elements {
                    self.ty(el);
                }
                Ty::Dyn
            }
            Expr::Map(m) => {
                for entry in &m.entries {
                    if let EntryExpr::MapEntry(me) = &entry.expr {
                        self.ty(&me.key);
                        self.ty(&me.value);
                    }
                }
                Ty::Dyn
            }
            Expr::Struct(s) => {
                for entry in &s.entries {
                    if let EntryExpr::StructField(f) = &entry.expr {
                        self.ty(&f.value);
                    }
                }
                Ty::Dyn
            }
            Expr::Comprehension(c) => {
                let range = self.ty(&c.iter_range);
                self.ty(&c.accu_init);
                self.push(&c.accu_var, Ty::Dyn);
                match &c.iter_var2 {
                    None => self.push(&c.iter_var, range.iteration()),
                    Some(v2) => {
                        self.push(&c.iter_var, Ty::Dyn);
                        self.push(v2, Ty::Dyn);
                    }
                }
                self.ty(&c.loop_cond);
                self.ty(&c.loop_step);
                self.pop();
                if c.iter_var2.is_some() {
                    self.pop();
                }
                self.ty(&c.result);
                self.pop();
                Ty::Dyn
            }
            Expr::Literal(_) | Expr::Unspecified => Ty::Dyn,
        }
    }
}

/// Every undefined field of `expr` under `scope`, as (id, message).
pub(super) fn undefined_fields(expr: &IdedExpr, scope: Scope) -> Vec<(u64, String)> {
    let mut typer = Typer::new(scope);
    typer.ty(expr);
    typer.errors
}

/// The kind of value an expression certainly has when it is a literal.
pub(super) enum Literal {
    Bool,
    String,
    Other,
}

/// `Some` only when the expression is a literal whose type is plain.
pub(super) fn literal(expr: &IdedExpr) -> Option<Literal> {
    match &expr.expr {
        Expr::Literal(LiteralValue::Boolean(_)) => Some(Literal::Bool),
        Expr::Literal(LiteralValue::String(_)) => Some(Literal::String),
        Expr::Literal(_) | Expr::List(_) | Expr::Map(_) => Some(Literal::Other),
        _ => None,
    }
}
