//! Dynamic admission (upstream `k8s.io/apiserver/pkg/admission/plugin/webhook`):
//! MutatingWebhookConfigurations run after the built-in mutating plugins,
//! one webhook at a time in configuration-name then webhook order, each
//! seeing the previous one's patch; ValidatingWebhookConfigurations run in
//! parallel after the built-in validation. Configurations are read from the
//! watch cache on every request, so a new one applies at once. CRD
//! conversion webhooks (`convert`) share the call machinery.

mod call;
mod config;
mod conversion;
mod matching;
mod resolve;
mod review;
#[cfg(test)]
mod tests;

#[allow(unused_imports)] // wired into CRD serving by the custom-resource module
pub(crate) use conversion::convert;

use serde_json::{Map, Value};

use super::{Operation, Request};
use crate::api::registry::Resource;
use crate::api::{Api, ApiError};
use config::Hook;
use matching::Attrs;
use review::{Call, Verdict};

/// Why a conversion webhook gave no converted objects (upstream's text).
#[derive(Debug, thiserror::Error)]
#[allow(dead_code)] // see `convert`
pub(crate) enum Error {
    /// `gvk` reads as Go prints it: `stable.example.com/v1, Kind=CronTab`.
    #[error("conversion webhook for {gvk} failed: {cause}")]
    Conversion { gvk: String, cause: String },
}

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

fn operation(op: Operation) -> &'static str {
    match op {
        Operation::Create => "CREATE",
        Operation::Update => "UPDATE",
    }
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

impl Api {
    /// Every webhook of the configurations stored under `plural`, in
    /// configuration-name order.
    fn webhook_hooks(&self, plural: &str) -> Vec<Hook> {
        let Some(r) = self.registry().find(GROUP, "v1", plural) else {
            return Vec::new();
        };
        let Some(cache) = self.store.cache(r.storage) else {
            return Vec::new();
        };
        // Keys are names, so the snapshot is in name order already.
        let (configs, _) = cache.snapshot(None, None, 0);
        configs
            .iter()
            .flat_map(|c| config::hooks(&c.object))
            .collect()
    }

    fn namespace_labels(&self, namespace: &str) -> Option<Map<String, Value>> {
        let r = self.registry().find("", "v1", "namespaces")?;
        let ns = self.store.cache(r.storage)?.get(namespace)?;
        ns.object
            .pointer("/metadata/labels")
            .and_then(Value::as_object)
            .cloned()
    }

    /// The webhooks that apply to a request, each with the resource it is
    /// called for; refuses dry runs of webhooks with side effects.
    fn matching_hooks(
        &self,
        hooks: Vec<Hook>,
        a: &Attrs<'_>,
        dry_run: bool,
    ) -> Result<Vec<(Hook, &'static Resource)>, ApiError> {
        let mut out = Vec::new();
        for hook in hooks {
            let Some(r) = matching::resource_for(&hook, a, &self.registry()) else {
                continue;
            };
            if !matching::namespace_matches(&hook, a) || !matching::object_matches(&hook, a) {
                continue;
            }
            if dry_run && !matches!(hook.side_effects.as_str(), "None" | "NoneOnDryRun") {
                return Err(ApiError::BadRequest(format!(
                    "admission webhook \"{}\" does not support dry run",
                    hook.name
                )));
            }
            out.push((hook, r));
        }
        Ok(out)
    }

    /// Calls one webhook; `Ok(None)` when it failed and its policy is Ignore.
    async fn call_hook(
        &self,
        hook: &Hook,
        call: &Call<'_>,
        mutating: bool,
    ) -> Result<Option<Verdict>, ApiError> {
        let answer = match self.webhook_endpoint(&hook.client, hook.timeout_seconds) {
            Ok(ep) => call::post(&ep, &review::request(call))
                .await
                .map_err(Failure::Call),
            Err(e) => Err(Failure::Call(e)),
        };
        let verdict = answer.and_then(|a| {
            review::verdict(&hook.name, &call.uid, &a, mutating).map_err(Failure::Invalid)
        });
        match verdict {
            Ok(v) => Ok(Some(v)),
            Err(f) if hook.ignore_failure => {
                tracing::warn!(webhook = hook.name, error = %f.error(&hook.name), "webhook failed, ignored by its failurePolicy");
                Ok(None)
            }
            Err(f) => Err(f.error(&hook.name)),
        }
    }

    /// Mutating webhooks, in order, each on the previous one's result.
    pub(super) async fn webhooks_mutate(
        &self,
        req: &Request<'_>,
        obj: &mut Value,
        old: Option<&Value>,
    ) -> Result<(), ApiError> {
        if req.resource.group == GROUP {
            return Ok(());
        }
        let hooks = self.webhook_hooks("mutatingwebhookconfigurations");
        if hooks.is_empty() {
            return Ok(());
        }
        let ns_labels = req.namespace.and_then(|ns| self.namespace_labels(ns));
        for hook in hooks {
            let matched = {
                let a = self.attrs(req, Some(obj), old, ns_labels.as_ref());
                self.matching_hooks(vec![hook], &a, req.dry_run)?
            };
            let Some((hook, r)) = matched.into_iter().next() else {
                continue;
            };
            let mut sent = convert_version(req.resource, r, obj.clone());
            let old_sent = old.map(|o| convert_version(req.resource, r, o.clone()));
            let call = self.review_call(req, r, Some(&sent), old_sent.as_ref());
            match self.call_hook(&hook, &call, true).await? {
                None => {}
                Some(Verdict::Denied { error, warnings }) => {
                    warnings.into_iter().for_each(|w| req.warn(w));
                    return Err(error);
                }
                Some(Verdict::Allowed { patch, warnings }) => {
                    warnings.into_iter().for_each(|w| req.warn(w));
                    if let Some(patch) = patch {
                        json_patch::patch(&mut sent, &patch).map_err(ApiError::internal)?;
                        *obj = convert_version(r, req.resource, sent);
                    }
                }
            }
        }
        Ok(())
    }

    /// Validating webhooks, all at once; the first refusal wins.
    pub(super) async fn webhooks_validate(
        &self,
        req: &Request<'_>,
        obj: &Value,
        old: Option<&Value>,
    ) -> Result<(), ApiError> {
        if req.resource.group == GROUP {
            return Ok(());
        }
        let hooks = self.webhook_hooks("validatingwebhookconfigurations");
        if hooks.is_empty() {
            return Ok(());
        }
        let ns_labels = req.namespace.and_then(|ns| self.namespace_labels(ns));
        let matched = {
            let a = self.attrs(req, Some(obj), old, ns_labels.as_ref());
            self.matching_hooks(hooks, &a, req.dry_run)?
        };
        let sent: Vec<(Value, Option<Value>)> = matched
            .iter()
            .map(|(_, r)| {
                (
                    convert_version(req.resource, r, obj.clone()),
                    old.map(|o| convert_version(req.resource, r, o.clone())),
                )
            })
            .collect();
        let calls: Vec<Call<'_>> = matched
            .iter()
            .zip(&sent)
            .map(|((_, r), (o, old))| self.review_call(req, r, Some(o), old.as_ref()))
            .collect();
        let results = futures::future::join_all(
            matched
                .iter()
                .zip(&calls)
                .map(|((hook, _), call)| self.call_hook(hook, call, false)),
        )
        .await;
        let mut refusal = None;
        for result in results {
            match result {
                Err(e) => refusal = refusal.or(Some(e)),
                Ok(Some(Verdict::Denied { error, warnings })) => {
                    warnings.into_iter().for_each(|w| req.warn(w));
                    refusal = refusal.or(Some(error));
                }
                Ok(Some(Verdict::Allowed { warnings, .. })) => {
                    warnings.into_iter().for_each(|w| req.warn(w));
                }
                Ok(None) => {}
            }
        }
        refusal.map_or(Ok(()), Err)
    }

    fn attrs<'a>(
        &self,
        req: &'a Request<'_>,
        obj: Option<&'a Value>,
        old: Option<&'a Value>,
        ns_labels: Option<&'a Map<String, Value>>,
    ) -> Attrs<'a> {
        Attrs {
            operation: operation(req.op),
            resource: req.resource,
            subresource: req.subresource.unwrap_or(""),
            namespace: req.namespace.unwrap_or(""),
            object: obj,
            old,
            namespace_labels: ns_labels,
        }
    }

    fn review_call<'a>(
        &self,
        req: &'a Request<'_>,
        r: &'static Resource,
        obj: Option<&'a Value>,
        old: Option<&'a Value>,
    ) -> Call<'a> {
        Call {
            uid: crate::api::meta::new_uid(),
            resource: r,
            request_resource: req.resource,
            subresource: req.subresource.unwrap_or(""),
            name: req.name,
            namespace: req.namespace.unwrap_or(""),
            operation: operation(req.op),
            user: req.user,
            object: obj,
            old,
            dry_run: req.dry_run,
        }
    }
}
