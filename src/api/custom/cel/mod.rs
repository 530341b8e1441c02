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
mod eval;
mod k8s;
mod path;
mod tree;
mod value;

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
        };
        let root = compiler.node(schema, base, true, None);
        if !compiler.errors.is_empty() {
            return Err(compiler.errors);
        }
        let conv = value::Converter::new(env.clone());
        Ok(Rules { root, env, conv })
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

/// The standard library plus the extension libraries Kubernetes enables
/// that the crate has (strings, lists, math).
fn environment() -> cel::Env {
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
