//! `matchConditions` of admission webhooks (upstream
//! `k8s.io/apiserver/pkg/admission/plugin/webhook/matchconditions`): CEL
//! expressions over `object`, `oldObject` and `request`, run with the `cel`
//! crate before a matching webhook is called. Any false skips the webhook;
//! otherwise errors go to its failurePolicy. `authorizer` is declared (so
//! configurations using it are accepted) but not provided: an expression
//! that reads it fails evaluation and its failurePolicy decides.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use cel::common::ast::Expr;
use cel::objects::{Key, Map};
use cel::{Context, Env, IdedExpr, Value as Cel};
use serde_json::Value;

use crate::api::validation::{self as v, FieldCause};

/// Upstream's limit on conditions per webhook.
const MAX_CONDITIONS: usize = 64;

/// Variables of the webhook match-condition environment.
const DECLARED: &[&str] = &["object", "oldObject", "request", "authorizer"];

static ENV: LazyLock<Arc<Env>> = LazyLock::new(|| Arc::new(crate::api::custom::cel_environment()));

/// One `matchConditions[]` entry.
#[derive(Debug, Clone)]
pub(super) struct Condition {
    pub name: String,
    pub expression: String,
}

/// What the conditions decided for one request.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Outcome {
    /// All true (or none): call the webhook.
    Call,
    /// One was false (its name): skip it, whatever the others did.
    Skip(String),
    /// None false, some failed: upstream's aggregated error text.
    Error(String),
}

/// The inputs of one evaluation, as the webhook would be sent them.
pub(super) struct Input<'a> {
    pub object: Option<&'a Value>,
    pub old: Option<&'a Value>,
    pub request: &'a Value,
}

/// `source` parsed, with what upstream's checker refuses that the parser
/// lets through (undeclared names, a literal that is not a bool); `Err` is
/// the detail after `compilation failed: `.
fn compile(source: &str) -> Result<IdedExpr, String> {
    let expr = crate::api::custom::cel_parse(&ENV, source, DECLARED)?;
    if matches!(&expr.expr, Expr::Literal(l) if !matches!(l, cel::common::ast::LiteralValue::Boolean(_)))
        || matches!(&expr.expr, Expr::List(_) | Expr::Map(_))
    {
        return Err("must evaluate to bool".into());
    }
    Ok(expr)
}

/// JSON as CEL's dynamic values.
fn to_cel(v: &Value) -> Cel {
    match v {
        Value::Null => Cel::Null,
        Value::Bool(b) => Cel::Bool(*b),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Cel::Int(i),
            (None, Some(u)) => Cel::UInt(u),
            _ => Cel::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => Cel::String(Arc::new(s.clone())),
        Value::Array(a) => Cel::List(Arc::new(a.iter().map(to_cel).collect())),
        Value::Object(m) => {
            let map: HashMap<Key, Cel> = m
                .iter()
                .map(|(k, v)| (Key::String(Arc::new(k.clone())), to_cel(v)))
                .collect();
            Cel::Map(Map { map: Arc::new(map) })
        }
    }
}

/// Runs the conditions as upstream's matcher: a false wins over errors.
pub(super) fn evaluate(conditions: &[Condition], input: &Input<'_>) -> Outcome {
    if conditions.is_empty() {
        return Outcome::Call;
    }
    let mut ctx = Context::with_env(ENV.clone());
    ctx.add_variable_from_value("object", input.object.map_or(Cel::Null, to_cel));
    ctx.add_variable_from_value("oldObject", input.old.map_or(Cel::Null, to_cel));
    ctx.add_variable_from_value("request", to_cel(input.request));
    let mut errors = Vec::new();
    for c in conditions {
        let result =
            compile(c.expression.trim()).and_then(|e| ctx.resolve(&e).map_err(|e| e.to_string()));
        match result {
            Ok(Cel::Bool(false)) => return Outcome::Skip(c.name.clone()),
            Ok(Cel::Bool(true)) => {}
            Ok(_) => errors.push(format!(
                "expression '{}' resulted in error: must evaluate to bool",
                c.expression
            )),
            Err(e) => errors.push(format!(
                "expression '{}' resulted in error: {e}",
                c.expression
            )),
        }
    }
    match errors.len() {
        0 => Outcome::Call,
        // Go's `utilerrors.NewAggregate(...).Error()`.
        1 => Outcome::Error(errors.remove(0)),
        _ => Outcome::Error(format!("[{}]", errors.join(", "))),
    }
}

/// `matchConditions` of one configuration's webhook `at` (e.g.
/// `webhooks[0]`), as upstream's `validateMatchConditions`.
pub(crate) fn validate(hook: &Value, at: &str) -> Vec<FieldCause> {
    let mut out = Vec::new();
    let Some(list) = hook.get("matchConditions").and_then(Value::as_array) else {
        return out;
    };
    let path = format!("{at}.matchConditions");
    if list.len() > MAX_CONDITIONS {
        out.push(FieldCause {
            reason: "FieldValueTooMany",
            message: format!(
                "Too many: {}: must have at most {MAX_CONDITIONS} items",
                list.len()
            ),
            field: path.clone(),
        });
    }
    let mut names: Vec<&str> = Vec::new();
    for (i, c) in list.iter().enumerate() {
        let at = format!("{path}[{i}]");
        let expression = c.get("expression").and_then(Value::as_str).unwrap_or("");
        if expression.trim().is_empty() {
            out.push(v::required(&format!("{at}.expression"), ""));
        } else if let Err(e) = compile(expression.trim()) {
            out.push(v::invalid(
                &format!("{at}.expression"),
                &expression.into(),
                &format!("compilation failed: {e}"),
            ));
        }
        let name = c.get("name").and_then(Value::as_str).unwrap_or("");
        if name.is_empty() {
            out.push(v::required(&format!("{at}.name"), ""));
        } else {
            for msg in v::is_qualified_name(name) {
                out.push(v::invalid(&format!("{at}.name"), &name.into(), &msg));
            }
            if names.contains(&name) {
                out.push(v::duplicate(&format!("{at}.name"), &name.into()));
            }
            names.push(name);
        }
    }
    out
}

/// The conditions of one `webhooks[]` entry (validation refused bad ones).
pub(super) fn parse(hook: &Value) -> Vec<Condition> {
    hook.get("matchConditions")
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .map(|c| {
                    let text = |k: &str| c.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                    Condition {
                        name: text("name"),
                        expression: text("expression"),
                    }
                })
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn conditions(list: &[(&str, &str)]) -> Vec<Condition> {
        list.iter()
            .map(|(n, e)| Condition {
                name: n.to_string(),
                expression: e.to_string(),
            })
            .collect()
    }

    #[test]
    fn false_skips_true_calls_errors_aggregate() {
        let obj = json!({"metadata": {"name": "skip-me", "labels": {"a": "b"}}});
        let req = json!({"operation": "CREATE", "userInfo": {"username": "u"}});
        let input = Input {
            object: Some(&obj),
            old: None,
            request: &req,
        };
        let run = |l: &[(&str, &str)]| evaluate(&conditions(l), &input);
        assert_eq!(run(&[]), Outcome::Call);
        assert_eq!(
            run(&[("a", "object.metadata.name != 'skip-me'")]),
            Outcome::Skip("a".into())
        );
        assert_eq!(
            run(&[
                ("a", "request.operation == 'CREATE'"),
                ("b", "oldObject == null"),
                ("c", "'a' in object.metadata.labels"),
            ]),
            Outcome::Call
        );
        // A false wins over an error.
        assert_eq!(
            run(&[("e", "object.spec.x == 1"), ("f", "false")]),
            Outcome::Skip("f".into())
        );
        assert_eq!(
            run(&[("e", "object.spec.x == 1")]),
            Outcome::Error(
                "expression 'object.spec.x == 1' resulted in error: No such key: spec".into()
            )
        );
        match run(&[("e", "object.spec.x == 1"), ("g", "authorizer.x")]) {
            Outcome::Error(e) => assert!(e.starts_with("[expression 'object.spec.x"), "{e}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            run(&[("h", "request.operation")]),
            Outcome::Error(_)
        ));
    }

    #[test]
    fn validation_follows_upstream() {
        let mut many: Vec<Value> = (0..65)
            .map(|i| json!({"name": format!("c{i}"), "expression": "true"}))
            .collect();
        many[1] = json!({"name": "c0", "expression": "true"});
        many[2] = json!({"name": "bad name!", "expression": ""});
        many[3] = json!({"name": "", "expression": "foo == 1"});
        many[4] = json!({"name": "c4", "expression": "object.metadata.name =="});
        many[5] = json!({"name": "c5", "expression": "'text'"});
        let hook = json!({"matchConditions": many});
        let got: Vec<String> = validate(&hook, "webhooks[0]")
            .iter()
            .map(FieldCause::summary)
            .collect();
        assert_eq!(
            got[0],
            "webhooks[0].matchConditions: Too many: 65: must have at most 64 items"
        );
        assert_eq!(
            got[1],
            "webhooks[0].matchConditions[1].name: Duplicate value: \"c0\""
        );
        assert_eq!(
            got[2],
            "webhooks[0].matchConditions[2].expression: Required value"
        );
        assert!(
            got[3].starts_with("webhooks[0].matchConditions[2].name: Invalid value: \"bad name!\": name part must consist of alphanumeric characters"),
            "{}",
            got[3]
        );
        assert_eq!(
            got[4],
            "webhooks[0].matchConditions[3].expression: Invalid value: \"foo == 1\": compilation failed: \
             ERROR: <input>:1:1: undeclared reference to 'foo' (in container '')\n | foo == 1\n | ^"
        );
        assert_eq!(
            got[5],
            "webhooks[0].matchConditions[3].name: Required value"
        );
        assert!(
            got[6].starts_with("webhooks[0].matchConditions[4].expression: Invalid value: \"object.metadata.name ==\": compilation failed: "),
            "{}",
            got[6]
        );
        assert_eq!(
            got[7],
            "webhooks[0].matchConditions[5].expression: Invalid value: \"'text'\": compilation failed: must evaluate to bool"
        );
        assert_eq!(got.len(), 8, "{got:#?}");
        // Comprehension variables are bound; the declared ones compile.
        let ok = json!({"matchConditions": [
            {"name": "a", "expression": "object.metadata.labels.all(k, k != 'x')"},
            {"name": "b", "expression": "request.userInfo.username != '' && oldObject == null"},
        ]});
        assert_eq!(validate(&ok, "webhooks[0]"), Vec::new());
    }
}
