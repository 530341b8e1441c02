//! Label and field selectors with upstream Kubernetes' syntax, semantics
//! and error texts (`k8s.io/apimachinery/pkg/labels` and `.../fields`).

mod field;
mod fieldlabels;
mod label;
mod lexer;

use serde_json::{Map, Value};

pub use field::FieldSelector;
use label::{new_requirement, Operator, Requirement};

/// A selector that cannot be used; `Display` is upstream's message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// A label selector that does not parse or validate.
    #[error("{0}")]
    Label(String),
    /// A field selector that does not parse.
    #[error("{0}")]
    Field(String),
    /// A field label the resource does not support (400 BadRequest upstream).
    #[error("{0}")]
    FieldLabelNotSupported(String),
}

/// A parsed label selector: the AND of its requirements, sorted by key.
/// The default (no requirements) matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
}

/// Reads a list of strings from a metav1.LabelSelector field.
fn strings(v: Option<&Value>, what: &str) -> Result<Option<Vec<String>>, SelectorError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| {
                i.as_str().map(str::to_string).ok_or_else(|| {
                    SelectorError::Label(format!("{what} must be a list of strings"))
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(_) => Err(SelectorError::Label(format!(
            "{what} must be a list of strings"
        ))),
    }
}

impl LabelSelector {
    /// Upstream `labels.Parse` of the query-string form.
    pub fn parse(s: &str) -> Result<Self, SelectorError> {
        lexer::parse(s)
            .map(|requirements| LabelSelector { requirements })
            .map_err(SelectorError::Label)
    }

    /// Upstream `metav1.LabelSelectorAsSelector` of a `metav1.LabelSelector`
    /// in JSON. Null or `{}` selects everything; callers for which a missing
    /// selector selects nothing must check for that themselves.
    pub fn from_json(v: &Value) -> Result<Self, SelectorError> {
        let obj = match v {
            Value::Null => return Ok(LabelSelector::default()),
            Value::Object(m) => m,
            _ => {
                return Err(SelectorError::Label(
                    "label selector must be an object".into(),
                ))
            }
        };
        let mut requirements = Vec::new();
        match obj.get("matchLabels") {
            None | Some(Value::Null) => {}
            Some(Value::Object(labels)) => {
                for (k, v) in labels {
                    let v = v.as_str().ok_or_else(|| {
                        SelectorError::Label("matchLabels values must be strings".into())
                    })?;
                    let r = new_requirement(k, Operator::Equals, vec![v.to_string()], true)
                        .map_err(SelectorError::Label)?;
                    requirements.push(r);
                }
            }
            Some(_) => return Err(SelectorError::Label("matchLabels must be an object".into())),
        }
        let exprs = match obj.get("matchExpressions") {
            None | Some(Value::Null) => &Vec::new(),
            Some(Value::Array(items)) => items,
            Some(_) => {
                return Err(SelectorError::Label(
                    "matchExpressions must be a list".into(),
                ))
            }
        };
        for expr in exprs {
            let text = |k: &str| expr.get(k).and_then(Value::as_str).unwrap_or("");
            let op = match text("operator") {
                "In" => Operator::In,
                "NotIn" => Operator::NotIn,
                "Exists" => Operator::Exists,
                "DoesNotExist" => Operator::DoesNotExist,
                other => {
                    return Err(SelectorError::Label(format!(
                        "{} is not a valid label selector operator",
                        crate::api::validation::go_quote(other)
                    )))
                }
            };
            let values = strings(expr.get("values"), "matchExpressions values")?;
            // Upstream copies with append([]string(nil), ...): empty is nil.
            let given = values.as_ref().is_some_and(|v| !v.is_empty());
            let r = new_requirement(text("key"), op, values.unwrap_or_default(), given)
                .map_err(SelectorError::Label)?;
            requirements.push(r);
        }
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(LabelSelector { requirements })
    }

    /// Whether a set of labels (as in `metadata.labels`) satisfies every requirement.
    pub fn matches(&self, labels: &Map<String, Value>) -> bool {
        self.requirements.iter().all(|r| r.matches(labels))
    }

    /// Matches against an object's `metadata.labels` (absent = no labels).
    pub fn matches_object(&self, obj: &Value) -> bool {
        let empty = Map::new();
        let labels = obj
            .pointer("/metadata/labels")
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        self.matches(labels)
    }

    pub fn is_everything(&self) -> bool {
        self.requirements.is_empty()
    }
}

impl std::fmt::Display for LabelSelector {
    /// Upstream `String()`: requirements joined by commas.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self.requirements.iter().map(|r| r.to_string()).collect();
        f.write_str(&parts.join(","))
    }
}

#[cfg(test)]
mod tests;
