//! Priority: pods get the priority (and preemption policy) of their
//! PriorityClass, or of the global default class, else 0; an unknown class
//! is refused. Only one PriorityClass may be the global default.
//!
//! The pod strategy already defaults `priority` (0, or the built-in system
//! classes) and `preemptionPolicy` (PreemptLowerPriority) before admission
//! runs, so those defaults are overridden here rather than refused.

use serde_json::{json, Value};

use super::{Operation, Request};
use crate::api::{Api, ApiError, ListOptions};

/// Classes every cluster has (upstream creates them at start).
const BUILT_IN: &[(&str, i64)] = &[
    ("system-node-critical", 2_000_001_000),
    ("system-cluster-critical", 2_000_000_000),
];
const PREEMPT: &str = "PreemptLowerPriority";

/// A resolved class: name, value, preemption policy.
struct Class {
    name: String,
    value: i64,
    policy: Option<String>,
}

impl Class {
    fn of(pc: &Value) -> Class {
        Class {
            name: pc
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            value: pc.get("value").and_then(Value::as_i64).unwrap_or(0),
            policy: pc
                .get("preemptionPolicy")
                .and_then(Value::as_str)
                .map(str::to_string),
        }
    }
}

pub(super) async fn mutate(
    api: &Api,
    req: &Request<'_>,
    obj: &mut Value,
    old: Option<&Value>,
) -> Result<(), ApiError> {
    if req.subresource.is_none() && req.is("scheduling.k8s.io", "priorityclasses") {
        return single_default(api, req, obj).await;
    }
    if req.subresource.is_some() || !req.is("", "pods") {
        return Ok(());
    }
    let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
        return Ok(());
    };
    if req.op == Operation::Update {
        // Priority is immutable: keep what admission set at create.
        for k in ["priority", "preemptionPolicy"] {
            let kept = old.and_then(|o| o.pointer(&format!("/spec/{k}")));
            if spec.get(k).is_none_or(Value::is_null) {
                if let Some(v) = kept.filter(|v| !v.is_null()) {
                    spec.insert(k.into(), v.clone());
                }
            }
        }
        return Ok(());
    }
    let named = spec
        .get("priorityClassName")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .map(str::to_string);
    let class = match &named {
        None => global_default(api).await?,
        Some(name) => Some(find(api, name).await?.ok_or_else(|| {
            ApiError::Forbidden(format!(
                "pods \"{}\" is forbidden: no PriorityClass with name {name} was found",
                req.name
            ))
        })?),
    };
    let (value, policy) = match &class {
        Some(c) => (c.value, c.policy.clone()),
        None => (0, None),
    };
    if let Some(given) = spec.get("priority").and_then(Value::as_i64) {
        // 0 without a class name is the strategy's default, not the user's.
        let defaulted = named.is_none() && given == 0;
        if given != value && !defaulted {
            return Err(ApiError::Forbidden(format!(
                "pods \"{}\" is forbidden: the integer value of priority ({given}) must not be provided in pod spec; priority admission controller computed {value} from the given PriorityClass name",
                req.name
            )));
        }
    }
    if let Some(c) = class.as_ref().filter(|_| named.is_none()) {
        spec.insert("priorityClassName".into(), json!(c.name));
    }
    spec.insert("priority".into(), json!(value));
    if let Some(policy) = policy {
        match spec.get("preemptionPolicy").and_then(Value::as_str) {
            Some(given) if given != policy && given != PREEMPT => {
                return Err(ApiError::Forbidden(format!(
                    "pods \"{}\" is forbidden: the string value of PreemptionPolicy ({given}) must not be provided in pod spec; priority admission controller computed {policy} from the given PriorityClass name",
                    req.name
                )));
            }
            _ => {
                spec.insert("preemptionPolicy".into(), json!(policy));
            }
        }
    }
    Ok(())
}

/// Only one PriorityClass may be the global default (upstream's check on
/// PriorityClass create and update).
async fn single_default(api: &Api, req: &Request<'_>, obj: &Value) -> Result<(), ApiError> {
    if obj.get("globalDefault").and_then(Value::as_bool) != Some(true) {
        return Ok(());
    }
    let Some(r) = api
        .registry()
        .find("scheduling.k8s.io", "v1", "priorityclasses")
    else {
        return Ok(());
    };
    let classes = api.list(r, None, &ListOptions::default()).await?;
    let other = classes.items.iter().find(|c| {
        c.get("globalDefault").and_then(Value::as_bool) == Some(true)
            && c.pointer("/metadata/name").and_then(Value::as_str) != Some(req.name)
    });
    if let Some(c) = other {
        let name = c
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("");
        return Err(ApiError::Forbidden(format!(
            "priorityclasses.scheduling.k8s.io \"{}\" is forbidden: PriorityClass {name} is already marked as default. Only one default can exist",
            req.name
        )));
    }
    Ok(())
}

/// The named class, from the store or the built-in system classes.
async fn find(api: &Api, name: &str) -> Result<Option<Class>, ApiError> {
    if let Some(r) = api
        .registry()
        .find("scheduling.k8s.io", "v1", "priorityclasses")
    {
        match api.get(r, None, name).await {
            Ok(pc) => return Ok(Some(Class::of(&pc))),
            Err(ApiError::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(BUILT_IN
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(n, v)| Class {
            name: n.to_string(),
            value: *v,
            policy: Some(PREEMPT.into()),
        }))
}

/// The global default class (the lowest value when several claim it).
async fn global_default(api: &Api) -> Result<Option<Class>, ApiError> {
    let Some(r) = api
        .registry()
        .find("scheduling.k8s.io", "v1", "priorityclasses")
    else {
        return Ok(None);
    };
    let classes = api.list(r, None, &ListOptions::default()).await?;
    Ok(classes
        .items
        .iter()
        .filter(|c| c.get("globalDefault").and_then(Value::as_bool) == Some(true))
        .map(|c| Class::of(c))
        .min_by_key(|c| c.value))
}
