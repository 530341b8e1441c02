//! Upstream's mutating and validating dispatchers: which webhooks a
//! request goes to, their matchConditions, the calls, and what the answers
//! do to the request (patches, refusals, warnings, reinvocation).

use std::collections::HashSet;

use serde_json::{Map, Value};

use super::call;
use super::conditions::{self, Outcome};
use super::config::{self, Hook};
use super::matching::{self, Attrs};
use super::review::{self, Call, Verdict};
use super::{convert_version, Failure, Subject, GROUP};
use crate::api::registry::Resource;
use crate::api::validation::go_quote;
use crate::api::{Api, ApiError};

/// Upstream's `webhookReinvokeContext` for one write: which IfNeeded
/// webhooks ran before a later webhook changed the object, and so run
/// once more in the second round.
#[derive(Debug, Default)]
pub(crate) struct Reinvocation {
    reinvoking: bool,
    should_reinvoke: bool,
    /// IfNeeded webhooks called since the last change, by webhook id.
    invoked: HashSet<String>,
    /// IfNeeded webhooks to call in the second round.
    again: HashSet<String>,
    /// The object as the last webhook round left it.
    last_output: Option<Value>,
}

impl Reinvocation {
    /// Whether a second round is due (at most one, as upstream).
    pub(crate) fn needed(&self) -> bool {
        self.should_reinvoke && !self.reinvoking
    }

    /// Marks the start of the second round.
    pub(crate) fn begin(&mut self) {
        self.reinvoking = true;
    }

    fn require_previous(&mut self) {
        self.again.extend(self.invoked.drain());
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
        if namespace.is_empty() {
            return None;
        }
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

    /// Whether the webhook's matchConditions let the call go ahead; an
    /// evaluation error refuses the request under failurePolicy Fail.
    fn conditions_allow(
        &self,
        s: &Subject<'_>,
        hook: &Hook,
        call: &Call<'_>,
    ) -> Result<bool, ApiError> {
        if hook.conditions.is_empty() {
            return Ok(true);
        }
        let mut request = review::request(call)["request"].take();
        if let Some(m) = request.as_object_mut() {
            m.remove("object");
            m.remove("oldObject");
        }
        let input = conditions::Input {
            object: call.object,
            old: call.old,
            request: &request,
        };
        match conditions::evaluate(&hook.conditions, &input) {
            Outcome::Call => Ok(true),
            Outcome::Skip(condition) => {
                tracing::debug!(
                    webhook = hook.name,
                    condition,
                    "match condition false, webhook skipped"
                );
                Ok(false)
            }
            Outcome::Error(e) if hook.ignore_failure => {
                tracing::warn!(
                    webhook = hook.name,
                    error = e,
                    "match conditions failed, webhook skipped by its failurePolicy"
                );
                Ok(false)
            }
            Outcome::Error(e) => {
                let resource = s.resource.qualified();
                Err(ApiError::Forbidden(if s.name.is_empty() {
                    format!("{resource} is forbidden: {e}")
                } else {
                    format!("{resource} {} is forbidden: {e}", go_quote(s.name))
                }))
            }
        }
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

    /// The object as webhook resource `r` sees it.
    fn versioned(&self, s: &Subject<'_>, r: &'static Resource, obj: &Value) -> Value {
        if s.convertible() {
            convert_version(s.resource, r, obj.clone())
        } else {
            obj.clone()
        }
    }

    /// Mutating webhooks, in order, each on the previous one's result.
    /// `obj` is null when the operation has no object (DELETE); in the
    /// second round only the webhooks `rounds` marked are called.
    pub(in crate::api::admission) async fn webhooks_mutate(
        &self,
        s: &Subject<'_>,
        obj: &mut Value,
        old: Option<&Value>,
        rounds: &mut Reinvocation,
    ) -> Result<(), ApiError> {
        if s.resource.group == GROUP {
            return Ok(());
        }
        let hooks = self.webhook_hooks("mutatingwebhookconfigurations");
        if hooks.is_empty() {
            return Ok(());
        }
        // Built-in plugins that changed the object in the second round
        // make every earlier IfNeeded webhook due again.
        if rounds.reinvoking && rounds.last_output.as_ref() != Some(obj) {
            rounds.require_previous();
        }
        let ns_labels = self.namespace_labels(s.namespace);
        for hook in hooks {
            let matched = {
                let object = (!obj.is_null()).then_some(&*obj);
                let a = attrs(s, object, old, ns_labels.as_ref());
                self.matching_hooks(vec![hook], &a, s.dry_run)?
            };
            let Some((hook, r)) = matched.into_iter().next() else {
                continue;
            };
            // A webhook skipped in the first round is not called for the
            // first time in the second.
            if rounds.reinvoking && !rounds.again.contains(&hook.id) {
                continue;
            }
            let sent = (!obj.is_null()).then(|| self.versioned(s, r, obj));
            let old_sent = old.map(|o| self.versioned(s, r, o));
            let call = review_call(s, r, sent.as_ref(), old_sent.as_ref());
            if !self.conditions_allow(s, &hook, &call)? {
                continue;
            }
            match self.call_hook(&hook, &call, true).await? {
                None => {}
                Some(Verdict::Denied { error, warnings }) => {
                    warnings.into_iter().for_each(|w| s.warn(w));
                    return Err(error);
                }
                Some(Verdict::Allowed { patch, warnings }) => {
                    warnings.into_iter().for_each(|w| s.warn(w));
                    if let Some(patch) = patch.filter(|p| !p.0.is_empty()) {
                        let Some(mut patched) = sent else {
                            return Err(ApiError::Internal(format!(
                                "admission webhook \"{}\" attempted to modify the object, which is not supported for this operation",
                                hook.name
                            )));
                        };
                        json_patch::patch(&mut patched, &patch).map_err(ApiError::internal)?;
                        let patched = if s.convertible() {
                            convert_version(r, s.resource, patched)
                        } else {
                            patched
                        };
                        if patched != *obj {
                            *obj = patched;
                            rounds.require_previous();
                            rounds.should_reinvoke = true;
                        }
                    }
                }
            }
            if hook.reinvoke_if_needed {
                rounds.invoked.insert(hook.id.clone());
            }
        }
        rounds.last_output = Some(obj.clone());
        Ok(())
    }

    /// Validating webhooks, all at once; the first refusal wins. `obj` is
    /// `None` for DELETE.
    pub(in crate::api::admission) async fn webhooks_validate(
        &self,
        s: &Subject<'_>,
        obj: Option<&Value>,
        old: Option<&Value>,
    ) -> Result<(), ApiError> {
        if s.resource.group == GROUP {
            return Ok(());
        }
        let hooks = self.webhook_hooks("validatingwebhookconfigurations");
        if hooks.is_empty() {
            return Ok(());
        }
        let ns_labels = self.namespace_labels(s.namespace);
        let matched = {
            let a = attrs(s, obj, old, ns_labels.as_ref());
            self.matching_hooks(hooks, &a, s.dry_run)?
        };
        let sent: Vec<(Option<Value>, Option<Value>)> = matched
            .iter()
            .map(|(_, r)| {
                (
                    obj.map(|o| self.versioned(s, r, o)),
                    old.map(|o| self.versioned(s, r, o)),
                )
            })
            .collect();
        let mut calls = Vec::new();
        for ((hook, r), (o, old)) in matched.iter().zip(&sent) {
            let call = review_call(s, r, o.as_ref(), old.as_ref());
            if self.conditions_allow(s, hook, &call)? {
                calls.push((hook, call));
            }
        }
        let results = futures::future::join_all(
            calls
                .iter()
                .map(|(hook, call)| self.call_hook(hook, call, false)),
        )
        .await;
        let mut refusal = None;
        for result in results {
            match result {
                Err(e) => refusal = refusal.or(Some(e)),
                Ok(Some(Verdict::Denied { error, warnings })) => {
                    warnings.into_iter().for_each(|w| s.warn(w));
                    refusal = refusal.or(Some(error));
                }
                Ok(Some(Verdict::Allowed { warnings, .. })) => {
                    warnings.into_iter().for_each(|w| s.warn(w));
                }
                Ok(None) => {}
            }
        }
        refusal.map_or(Ok(()), Err)
    }
}

fn attrs<'a>(
    s: &'a Subject<'_>,
    obj: Option<&'a Value>,
    old: Option<&'a Value>,
    ns_labels: Option<&'a Map<String, Value>>,
) -> Attrs<'a> {
    Attrs {
        operation: s.operation,
        resource: s.resource,
        subresource: s.subresource,
        namespace: s.namespace,
        object: obj,
        old,
        namespace_labels: ns_labels,
    }
}

fn review_call<'a>(
    s: &'a Subject<'_>,
    r: &'static Resource,
    obj: Option<&'a Value>,
    old: Option<&'a Value>,
) -> Call<'a> {
    Call {
        uid: crate::api::meta::new_uid(),
        resource: r,
        request_resource: s.resource,
        subresource: s.subresource,
        name: s.name,
        namespace: s.namespace,
        operation: s.operation,
        user: s.user,
        object: obj,
        old,
        dry_run: s.dry_run,
        options: &s.options,
    }
}
