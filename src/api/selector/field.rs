//! Field selectors (upstream `fields.ParseSelector`): comma-separated
//! `field=value`, `field==value` or `field!=value` terms, where `\,`, `\=`
//! and `\\` escape characters in a value.

use serde_json::Value;

use super::{fieldlabels, SelectorError};

#[derive(Clone, Debug, PartialEq, Eq)]
struct Term {
    field: String,
    value: String,
    negated: bool,
}

/// A parsed field selector; empty matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSelector {
    terms: Vec<Term>,
}

/// Splits on commas that are not escaped; escapes stay in the terms.
fn split_terms(s: &str) -> Vec<&str> {
    if s.is_empty() {
        return Vec::new();
    }
    let mut terms = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == ',' {
            terms.push(&s[start..i]);
            start = i + 1;
        }
    }
    terms.push(&s[start..]);
    terms
}

/// The first operator occurrence splits the term; "!=" and "==" are tried
/// before "=" at each position so "a==b" does not leave "=b" as the value.
fn split_term(term: &str) -> Option<(&str, &'static str, &str)> {
    for (i, _) in term.char_indices() {
        for op in ["!=", "==", "="] {
            if term[i..].starts_with(op) {
                return Some((&term[..i], op, &term[i + op.len()..]));
            }
        }
    }
    None
}

/// Upstream `UnescapeValue`, with its error texts (the rune is printed as
/// its number, as Go's `%v` of a rune does).
fn unescape(s: &str) -> Result<String, SelectorError> {
    let mut out = String::with_capacity(s.len());
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            if !matches!(c, '\\' | ',' | '=') {
                return Err(SelectorError::Field(format!(
                    "invalid field selector: invalid escape sequence: \\{c}"
                )));
            }
            out.push(c);
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            ',' | '=' => {
                return Err(SelectorError::Field(format!(
                    "invalid field selector: unescaped character in value: {}",
                    c as u32
                )))
            }
            c => out.push(c),
        }
    }
    if escaped {
        return Err(SelectorError::Field(
            "invalid field selector: invalid escape sequence: \\".to_string(),
        ));
    }
    Ok(out)
}

/// Upstream `EscapeValue`.
fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace(',', "\\,")
        .replace('=', "\\=")
}

impl FieldSelector {
    /// Upstream `fields.ParseSelector`. Terms are kept sorted by their text,
    /// as upstream sorts them before use.
    pub fn parse(s: &str) -> Result<Self, SelectorError> {
        let mut parts = split_terms(s);
        parts.sort_unstable();
        let mut terms = Vec::new();
        for part in parts.into_iter().filter(|p| !p.is_empty()) {
            let Some((field, op, rhs)) = split_term(part) else {
                return Err(SelectorError::Field(format!(
                    "invalid selector: '{s}'; can't understand '{part}'"
                )));
            };
            terms.push(Term {
                field: field.to_string(),
                value: unescape(rhs)?,
                negated: op == "!=",
            });
        }
        Ok(FieldSelector { terms })
    }

    /// Runs every term through the resource's field label conversion; the
    /// first rejected label gives upstream's message (a 400 upstream).
    pub fn check_supported(&self, group: &str, resource: &str) -> Result<(), SelectorError> {
        for term in &self.terms {
            fieldlabels::convert(group, resource, &term.field)
                .map_err(SelectorError::FieldLabelNotSupported)?;
        }
        Ok(())
    }

    /// Whether `obj` (the resource's JSON form) satisfies every term. A
    /// label the resource does not support reads as "", as a field missing
    /// from upstream's field set does.
    pub fn matches(&self, group: &str, resource: &str, obj: &Value) -> bool {
        self.terms.iter().all(|term| {
            let have = match fieldlabels::convert(group, resource, &term.field) {
                Ok(label) => fieldlabels::value(group, resource, label, obj),
                Err(_) => String::new(),
            };
            (have == term.value) != term.negated
        })
    }

    pub fn is_everything(&self) -> bool {
        self.terms.is_empty()
    }

    /// Upstream `RequiresExactMatch`: the value of the first `field=value`
    /// term. Asking for spec.nodeName also finds pods' legacy spec.host.
    pub fn exact_value(&self, field: &str) -> Option<&str> {
        self.terms
            .iter()
            .find(|t| {
                !t.negated
                    && (t.field == field || (field == "spec.nodeName" && t.field == "spec.host"))
            })
            .map(|t| t.value.as_str())
    }
}

impl std::fmt::Display for FieldSelector {
    /// Upstream `String()`: terms joined by commas, values re-escaped.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let terms: Vec<String> = self
            .terms
            .iter()
            .map(|t| {
                let op = if t.negated { "!=" } else { "=" };
                format!("{}{op}{}", t.field, escape(&t.value))
            })
            .collect();
        f.write_str(&terms.join(","))
    }
}
