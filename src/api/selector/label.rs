//! Label selector requirements: construction with upstream's validation
//! (`labels.NewRequirement`), matching and canonical string form.

use serde_json::{Map, Value};

use crate::api::validation::{
    aggregate, invalid, invalid_string_list, is_qualified_name, is_valid_label_value, FieldCause,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Operator {
    In,
    NotIn,
    Equals,
    DoubleEquals,
    NotEquals,
    Exists,
    DoesNotExist,
    GreaterThan,
    LessThan,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Requirement {
    pub(super) key: String,
    pub(super) op: Operator,
    pub(super) values: Vec<String>,
}

/// Upstream `validateLabelKey`: one cause whose detail joins every message.
/// `field` is the path upstream would print ("<nil>" when it has none).
pub(super) fn key_error(key: &str, field: &str) -> Option<FieldCause> {
    let msgs = is_qualified_name(key);
    (!msgs.is_empty()).then(|| invalid(field, &Value::from(key), &msgs.join("; ")))
}

/// Upstream `NewRequirement` with no path option, so errors name `key` and
/// `values[i][key]`. `values_given` is false when upstream would hold a nil
/// slice, which only matters for how an error prints it.
pub(super) fn new_requirement(
    key: &str,
    op: Operator,
    values: Vec<String>,
    values_given: bool,
) -> Result<Requirement, String> {
    let mut errs: Vec<FieldCause> = Vec::new();
    if let Some(e) = key_error(key, "key") {
        errs.push(e);
    }
    let shown = |vals: &[String]| {
        if vals.is_empty() && !values_given {
            None
        } else {
            Some(vals.to_vec())
        }
    };
    let list_error = |msg: &str| invalid_string_list("values", shown(&values).as_deref(), msg);
    match op {
        Operator::In | Operator::NotIn if values.is_empty() => {
            errs.push(list_error(
                "for 'in', 'notin' operators, values set can't be empty",
            ));
        }
        Operator::Equals | Operator::DoubleEquals | Operator::NotEquals if values.len() != 1 => {
            errs.push(list_error(
                "exact-match compatibility requires one single value",
            ));
        }
        Operator::Exists | Operator::DoesNotExist if !values.is_empty() => {
            errs.push(list_error(
                "values set must be empty for exists and does not exist",
            ));
        }
        Operator::GreaterThan | Operator::LessThan => {
            if values.len() != 1 {
                errs.push(list_error(
                    "for 'Gt', 'Lt' operators, exactly one value is required",
                ));
            }
            for (i, v) in values.iter().enumerate() {
                if v.parse::<i64>().is_err() {
                    errs.push(invalid(
                        &format!("values[{i}]"),
                        &Value::from(v.as_str()),
                        "for 'Gt', 'Lt' operators, the value must be an integer",
                    ));
                }
            }
        }
        _ => {}
    }
    for (i, v) in values.iter().enumerate() {
        let msgs = is_valid_label_value(v);
        if !msgs.is_empty() {
            let field = format!("values[{i}][{key}]");
            errs.push(invalid(&field, &Value::from(v.as_str()), &msgs.join("; ")));
        }
    }
    if errs.is_empty() {
        Ok(Requirement {
            key: key.to_string(),
            op,
            values,
        })
    } else {
        Err(aggregate(&errs))
    }
}

impl Requirement {
    fn has_value(&self, v: &str) -> bool {
        self.values.iter().any(|x| x == v)
    }

    /// Upstream `Requirement.Matches`. Non-string label values cannot occur
    /// in a valid object; they are treated as absent.
    pub(super) fn matches(&self, labels: &Map<String, Value>) -> bool {
        let value = labels.get(&self.key).and_then(Value::as_str);
        match self.op {
            Operator::In | Operator::Equals | Operator::DoubleEquals => {
                value.is_some_and(|v| self.has_value(v))
            }
            Operator::NotIn | Operator::NotEquals => value.is_none_or(|v| !self.has_value(v)),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
            Operator::GreaterThan | Operator::LessThan => {
                let Some(have) = value.and_then(|v| v.parse::<i64>().ok()) else {
                    return false;
                };
                let [want] = self.values.as_slice() else {
                    return false;
                };
                let Ok(want) = want.parse::<i64>() else {
                    return false;
                };
                if self.op == Operator::GreaterThan {
                    have > want
                } else {
                    have < want
                }
            }
        }
    }
}

impl std::fmt::Display for Requirement {
    /// Upstream `Requirement.String()`: several values are printed sorted.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.op == Operator::DoesNotExist {
            f.write_str("!")?;
        }
        f.write_str(&self.key)?;
        let op = match self.op {
            Operator::Exists | Operator::DoesNotExist => return Ok(()),
            Operator::Equals => "=",
            Operator::DoubleEquals => "==",
            Operator::NotEquals => "!=",
            Operator::In => " in ",
            Operator::NotIn => " notin ",
            Operator::GreaterThan => ">",
            Operator::LessThan => "<",
        };
        f.write_str(op)?;
        let set = matches!(self.op, Operator::In | Operator::NotIn);
        if set {
            f.write_str("(")?;
        }
        let mut values = self.values.clone();
        values.sort();
        f.write_str(&values.join(","))?;
        if set {
            f.write_str(")")?;
        }
        Ok(())
    }
}
