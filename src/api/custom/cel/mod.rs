//! CEL validation rules (`x-kubernetes-validations`) of custom resources.
//!
//! [`Rules::compile`] walks a CRD version's OpenAPI v3 schema once, when
//! the CRD is written, and reports bad rules with upstream's CRD causes;
//! [`Rules::validate`] runs them against each write of a custom resource,
//! with `oldSelf` for updates, and returns upstream's field causes. The
//! expressions are parsed and run by the `cel` crate; what upstream's type
//! checker adds (undeclared references, schema-typed values, escaped
//! property names) is done here.

mod ast;
mod cost;
mod eval;
mod k8s;
mod path;
mod tree;
mod typecheck;
mod value;

#[cfg(test)]
mod check_tests;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use serde_json::Value;

use crate::api::validation::FieldCause;

/// What goes wrong inside an evaluation, as the meter reports it.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CelError {
    #[error("operation cancelled: actual cost limit exceeded")]
    CostExceeded,
}

/// Every rule of one schema, compiled.
pub struct Rules {
    root: Option<tree::Node>,
    env: Arc<cel::Env>,
    conv: value::Converter,
}

impl std::fmt::Debug for Rules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let count = self.root.as_ref().map_or(0, tree::Node::rule_count);
        f.debug_struct("Rules").field("rules", &count).finish()
    }
}

impl Rules {
    /// Walks properties, items and additionalProperties and compiles each
    /// rule; `base` is the schema's field path for the causes (e.g.
    /// `spec.versions[0].schema.openAPIV3Schema`).
    pub fn compile(schema: &Value, base: &str) -> Result<Rules, Vec<FieldCause>> {
        let env = Arc::new(environment());
        let mut compiler = tree::Compiler {
            env: &env,
            errors: Vec::new(),
            checks: None,
        };
        let root = compiler.node(schema, base, true, None, Some(1));
        if !compiler.errors.is_empty() {
            return Err(compiler.errors);
        }
        let conv = value::Converter::new(env.clone());
        Ok(Rules { root, env, conv })
    }

    /// What upstream's CRD validation refuses in the rules of `schema`:
    /// everything [`Rules::compile`] reports, plus fields the schema does
    /// not declare, rules that are not bool, and estimated costs over
    /// upstream's per-rule and per-schema limits. For CRD writes only: a
    /// stored CRD is served with [`Rules::compile`].
    pub fn check(schema: &Value, base: &str) -> Vec<FieldCause> {
        let env = environment();
        let mut compiler = tree::Compiler {
            env: &env,
            errors: Vec::new(),
            checks: Some(cost::Total::default()),
        };
        compiler.node(schema, base, true, None, Some(1));
        let mut errors = compiler.errors;
        if let Some(total) = compiler.checks.filter(|t| t.total > cost::CRD_LIMIT) {
            for (path, _) in &total.most_expensive {
                let detail = "contributed to estimated rule cost total exceeding cost limit for entire OpenAPIv3 schema";
                errors.push(crate::api::validation::forbidden(path, detail));
            }
            let what =
                "x-kubernetes-validations estimated rule cost total for entire OpenAPIv3 schema";
            let detail = cost::exceeds(what, total.total, cost::CRD_LIMIT);
            errors.push(crate::api::validation::forbidden(base, &detail));
        }
        errors
    }

    /// True when the schema has no rules at all.
    pub fn is_empty(&self) -> bool {
        self.root.is_none()
    }

    /// Runs the rules against `new` (the whole custom resource) and, for an
    /// update, the `old` object; transition rules run only where an old
    /// value correlates.
    pub fn validate(&self, new: &Value, old: Option<&Value>) -> Vec<FieldCause> {
        let Some(root) = &self.root else {
            return Vec::new();
        };
        let mut ev = eval::Evaluator::new(&self.env, &self.conv);
        ev.walk(root, "", new, old, false);
        ev.out
    }
}

/// `source` parsed in `env`, with cel-go's `undeclared reference` errors
/// for names outside `declared` (for other CEL users: webhook
/// matchConditions).
pub(crate) fn parse(
    env: &cel::Env,
    source: &str,
    declared: &[&str],
) -> Result<cel::IdedExpr, String> {
    ast::parse(env, source, declared, None)
}

/// The standard library plus the extension libraries Kubernetes enables
/// that the crate has (strings, lists, math).
pub(crate) fn environment() -> cel::Env {
    let mut env = cel::Env::stdlib();
    for ext in [
        cel::extensions::strings,
        cel::extensions::lists,
        cel::extensions::math,
    ] {
        // A clash would only drop that library's functions; rules using
        // them then fail to compile with a clear message.
        if let Err(e) = env.add_extension(ext) {
            tracing::warn!(error = %e, "cel extension not loaded");
        }
    }
    env
}
