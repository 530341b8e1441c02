//! The built-in admission chain, in upstream's order. Mutating plugins
//! run on the defaulted object before validation; validating plugins run
//! on the validated object just before it is written. Each plugin is one
//! file; in-process callers (controllers, the server's own node agent)
//! have no user and pass the user-based checks. Dynamic admission
//! (webhook configurations) runs last in each phase (`webhooks/`), for
//! CREATE and UPDATE here, DELETE (`admit_delete`) and CONNECT
//! (`admit_connect`, pods/exec, attach and portforward).

mod escalation;
mod lifecycle;
mod limit_ranger;
mod node_restriction;
mod pod_security;
mod priority;
mod quota;
mod storage_class;
mod tolerations;
mod webhooks;

pub(crate) use tolerations::default_toleration_seconds;
pub(crate) use webhooks::convert;
pub(crate) use webhooks::validate_match_conditions;

use serde_json::Value;

use crate::api::authz::UserInfo;
use crate::api::{Api, ApiError, DeleteOptions, Resource, WriteOptions};
use webhooks::{Reinvocation, Subject};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Operation {
    Create,
    Update,
}

/// What every plugin is told about a write.
pub(crate) struct Request<'a> {
    pub op: Operation,
    pub resource: &'static Resource,
    pub subresource: Option<&'a str>,
    pub namespace: Option<&'a str>,
    pub name: &'a str,
    /// `None` for in-process callers.
    pub user: Option<&'a UserInfo>,
    pub dry_run: bool,
    /// Warnings for the client (HTTP `Warning` headers).
    pub warnings: &'a std::sync::Mutex<Vec<String>>,
    /// Annotations of the request's audit event.
    pub audit_annotations: &'a std::sync::Mutex<Vec<(String, String)>>,
}

impl<'a> Request<'a> {
    pub fn new(
        op: Operation,
        resource: &'static Resource,
        subresource: Option<&'a str>,
        namespace: Option<&'a str>,
        name: &'a str,
        opts: &'a WriteOptions,
    ) -> Self {
        Request {
            op,
            resource,
            subresource,
            namespace,
            name,
            user: opts.user.as_deref(),
            dry_run: opts.dry_run,
            warnings: &opts.warnings,
            audit_annotations: &opts.audit_annotations,
        }
    }

    /// Whether this write is to `group`/`plural` (core group = "").
    pub fn is(&self, group: &str, plural: &str) -> bool {
        self.resource.group == group && self.resource.plural == plural
    }

    /// Adds an annotation to the request's audit event.
    pub fn annotate(&self, key: &str, value: String) {
        if let Ok(mut a) = self.audit_annotations.lock() {
            a.push((key.to_string(), value));
        }
    }

    /// Adds a warning for the client.
    pub fn warn(&self, text: String) {
        if let Ok(mut w) = self.warnings.lock() {
            w.push(text);
        }
    }
}

impl Api {
    /// Mutating admission (create and update), on the defaulted object.
    /// When a webhook changed the object after a `reinvocationPolicy:
    /// IfNeeded` webhook ran, the chain runs once more (built-in plugins,
    /// which are idempotent, and the webhooks due again), as upstream.
    pub(crate) async fn admit_mutate(
        &self,
        req: &Request<'_>,
        obj: &mut Value,
        old: Option<&Value>,
    ) -> Result<(), ApiError> {
        let subject = Subject::write(req);
        let mut rounds = Reinvocation::default();
        self.builtin_mutate(req, obj, old).await?;
        self.webhooks_mutate(&subject, obj, old, &mut rounds)
            .await?;
        if rounds.needed() {
            rounds.begin();
            self.builtin_mutate(req, obj, old).await?;
            self.webhooks_mutate(&subject, obj, old, &mut rounds)
                .await?;
        }
        Ok(())
    }

    async fn builtin_mutate(
        &self,
        req: &Request<'_>,
        obj: &mut Value,
        old: Option<&Value>,
    ) -> Result<(), ApiError> {
        limit_ranger::mutate(self, req, obj, old).await?;
        storage_class::mutate(self, req, obj, old).await?;
        priority::mutate(self, req, obj, old).await
    }

    /// Validating admission (create and update), on the validated object
    /// just before it is written.
    pub(crate) async fn admit_validate(
        &self,
        req: &Request<'_>,
        obj: &Value,
        old: Option<&Value>,
    ) -> Result<(), ApiError> {
        lifecycle::validate(self, req, obj).await?;
        node_restriction::validate(self, req, obj, old).await?;
        escalation::validate(self, req, obj, old).await?;
        limit_ranger::validate(self, req, obj, old).await?;
        pod_security::validate(self, req, obj, old).await?;
        // Webhooks before quota, as upstream: a refused write charges nothing.
        self.webhooks_validate(&Subject::write(req), Some(obj), old)
            .await?;
        quota::validate(self, req, obj, old).await?;
        Ok(())
    }

    /// Admission of the create-only subresources that do not go through
    /// `create` (pods/eviction, serviceaccounts/token): NodeRestriction.
    pub(crate) async fn admit_subresource_create(
        &self,
        r: &'static Resource,
        subresource: &str,
        namespace: Option<&str>,
        name: &str,
        body: &Value,
        user: Option<&UserInfo>,
    ) -> Result<(), ApiError> {
        node_restriction::validate_subresource_create(
            self,
            r,
            subresource,
            namespace,
            name,
            body,
            user,
        )
        .await
    }

    /// Admission of a delete of `old` (as served in `r`'s version), read
    /// just before: NamespaceLifecycle, NodeRestriction, then the mutating
    /// (which see the old object; a patch is refused) and validating
    /// webhooks with operation DELETE and the DeleteOptions.
    pub(crate) async fn admit_delete(
        &self,
        r: &'static Resource,
        namespace: Option<&str>,
        name: &str,
        old: &Value,
        opts: &DeleteOptions,
    ) -> Result<(), ApiError> {
        let user = opts.user.as_deref();
        lifecycle::validate_delete(self, r, namespace, name, user).await?;
        node_restriction::validate_delete(self, r, namespace, name, user).await?;
        let subject = Subject::delete(r, namespace, name, opts);
        let mut none = Value::Null;
        let mut rounds = Reinvocation::default();
        self.webhooks_mutate(&subject, &mut none, Some(old), &mut rounds)
            .await?;
        self.webhooks_validate(&subject, None, Some(old)).await
    }

    /// Admission of a CONNECT to pod subresource `subresource` (exec,
    /// attach, portforward) with the request's query: webhooks get the
    /// options object built from it. A mutating webhook's patch changes
    /// only what later webhooks see: the stream is opened from the query.
    pub(crate) async fn admit_connect(
        &self,
        r: &'static Resource,
        subresource: &str,
        namespace: &str,
        name: &str,
        query: &[(String, String)],
        user: Option<&UserInfo>,
    ) -> Result<(), ApiError> {
        let subject = Subject::connect(r, subresource, namespace, name, user);
        let mut options = webhooks::connect_options(subresource, query);
        let mut rounds = Reinvocation::default();
        self.webhooks_mutate(&subject, &mut options, None, &mut rounds)
            .await?;
        self.webhooks_validate(&subject, Some(&options), None).await
    }
}
