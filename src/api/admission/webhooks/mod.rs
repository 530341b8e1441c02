//! Dynamic admission (upstream `k8s.io/apiserver/pkg/admission/plugin/webhook`):
//! MutatingWebhookConfigurations run after the built-in mutating plugins,
//! one webhook at a time in configuration-name then webhook order, each
//! seeing the previous one's patch; ValidatingWebhookConfigurations run in
//! parallel after the built-in validation. Configurations are read from the
//! watch cache on every request, so a new one applies at once. CREATE and
//! UPDATE come from the write path, DELETE (and each item of a
//! deletecollection) with the old object and the DeleteOptions, CONNECT
//! (pods/exec, attach, portforward) with the options built from the query.
//! `matchConditions` (CEL) are checked before each call; mutating webhooks
//! with `reinvocationPolicy: IfNeeded` run again once when a later webhook
//! changed the object (`Reinvocation`). CRD conversion webhooks
//! (`convert`) share the call machinery.

mod call;
mod conditions;
mod config;
mod connect;
mod conversion;
mod dispatch;
mod matching;
mod resolve;
mod review;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_ops;

pub(crate) use conditions::validate as validate_match_conditions;
pub(super) use dispatch::Reinvocation;

pub(crate) use conversion::convert;

use std::sync::Mutex;

use serde_json::{json, Map, Value};

use super::{Operation, Request};
use crate::api::authz::UserInfo;
use crate::api::registry::Resource;
use crate::api::{ApiError, DeleteOptions};

const GROUP: &str = "admissionregistration.k8s.io";

/// Why a call gave no usable answer (subject to `failurePolicy`).
enum Failure {
    Call(String),
    Invalid(String),
}

impl Failure {
    fn error(&self, hook: &str) -> ApiError {
        let reason = match self {
            Failure::Call(e) => format!("failed to call webhook: {e}"),
            Failure::Invalid(e) => format!("received invalid webhook response: {e}"),
        };
        ApiError::Internal(format!("failed calling webhook \"{hook}\": {reason}"))
    }
}

/// What webhooks are told about one request, whatever its operation.
pub(super) struct Subject<'a> {
    /// `CREATE`, `UPDATE`, `DELETE` or `CONNECT`.
    pub operation: &'static str,
    pub resource: &'static Resource,
    /// "" for the main resource.
    pub subresource: &'a str,
    /// "" for cluster-scoped objects.
    pub namespace: &'a str,
    pub name: &'a str,
    /// `None` for in-process callers.
    pub user: Option<&'a UserInfo>,
    pub dry_run: bool,
    /// The review's `options` (null for CONNECT, as upstream).
    pub options: Value,
    /// Warnings for the client; `None` when the verb has no way to send them.
    pub warnings: Option<&'a Mutex<Vec<String>>>,
}

impl<'a> Subject<'a> {
    /// A create or an update from the write path.
    pub(super) fn write(req: &'a Request<'_>) -> Self {
        let (operation, kind) = match req.op {
            Operation::Create => ("CREATE", "CreateOptions"),
            Operation::Update => ("UPDATE", "UpdateOptions"),
        };
        let mut options = json!({"apiVersion": "meta.k8s.io/v1", "kind": kind});
        if req.dry_run {
            options["dryRun"] = json!(["All"]);
        }
        Subject {
            operation,
            resource: req.resource,
            subresource: req.subresource.unwrap_or(""),
            namespace: req.namespace.unwrap_or(""),
            name: req.name,
            user: req.user,
            dry_run: req.dry_run,
            options,
            warnings: Some(req.warnings),
        }
    }

    /// A delete, with its DeleteOptions as the client sent them.
    pub(super) fn delete(
        r: &'static Resource,
        namespace: Option<&'a str>,
        name: &'a str,
        opts: &'a DeleteOptions,
    ) -> Self {
        let mut options = json!({"apiVersion": "meta.k8s.io/v1", "kind": "DeleteOptions"});
        if let Some(g) = opts.grace_period_seconds {
            options["gracePeriodSeconds"] = g.into();
        }
        if let Some(p) = &opts.propagation_policy {
            options["propagationPolicy"] = p.as_str().into();
        }
        let mut pre = Map::new();
        if let Some(uid) = &opts.precondition_uid {
            pre.insert("uid".into(), uid.as_str().into());
        }
        if let Some(rv) = &opts.precondition_resource_version {
            pre.insert("resourceVersion".into(), rv.as_str().into());
        }
        if !pre.is_empty() {
            options["preconditions"] = Value::Object(pre);
        }
        if opts.dry_run {
            options["dryRun"] = json!(["All"]);
        }
        Subject {
            operation: "DELETE",
            resource: r,
            subresource: "",
            namespace: namespace.unwrap_or(""),
            name,
            user: opts.user.as_deref(),
            dry_run: opts.dry_run,
            options,
            warnings: Some(&opts.warnings),
        }
    }

    /// A CONNECT to a pod's exec, attach or portforward.
    pub(super) fn connect(
        r: &'static Resource,
        subresource: &'a str,
        namespace: &'a str,
        name: &'a str,
        user: Option<&'a UserInfo>,
    ) -> Self {
        Subject {
            operation: "CONNECT",
            resource: r,
            subresource,
            namespace,
            name,
            user,
            dry_run: false,
            options: Value::Null,
            warnings: None,
        }
    }

    fn warn(&self, text: String) {
        match self.warnings.and_then(|w| w.lock().ok()) {
            Some(mut w) => w.push(text),
            None => tracing::info!(warning = text, "admission webhook warning"),
        }
    }

    /// CONNECT sends the options object, which has no other versions.
    fn convertible(&self) -> bool {
        self.operation != "CONNECT"
    }
}

/// The object of a CONNECT review, built from the request's query.
pub(super) fn connect_options(subresource: &str, query: &[(String, String)]) -> Value {
    connect::options(subresource, query)
}

/// Converts an object between two versions sharing storage.
fn convert_version(from: &Resource, to: &Resource, obj: Value) -> Value {
    if std::ptr::eq(from, to) {
        return obj;
    }
    let stored = match from.strategy.to_storage {
        Some(f) => f(obj),
        None => obj,
    };
    match to.strategy.from_storage {
        Some(f) => f(stored),
        None => stored,
    }
}
