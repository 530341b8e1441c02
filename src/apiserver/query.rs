//! Query parameters of the API, decoded into the verbs' options.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::Value;

use crate::api::selector::{FieldSelector, LabelSelector};
use crate::api::{
    ApiError, DeleteOptions, FieldValidation, ListOptions, WatchOptions, WriteOptions,
};

#[derive(Debug, Default)]
pub struct Query(HashMap<String, String>);

impl Query {
    pub fn parse(query: Option<&str>) -> Query {
        let map = form_urlencoded::parse(query.unwrap_or("").as_bytes())
            .into_owned()
            .collect();
        Query(map)
    }

    pub fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str)
    }

    /// Upstream's boolean parameters: absent, empty, `0`, `f` and `false`
    /// (any case) are false; anything else is true (`watch=True` included).
    fn flag(&self, k: &str) -> bool {
        match self.get(k) {
            None => false,
            Some(v) => !matches!(v.to_ascii_lowercase().as_str(), "" | "0" | "f" | "false"),
        }
    }

    fn int(&self, k: &str) -> Result<Option<i64>, ApiError> {
        match self.get(k).filter(|s| !s.is_empty()) {
            None => Ok(None),
            Some(s) => s.parse().map(Some).map_err(|_| {
                ApiError::BadRequest(format!("invalid value for {k}: {s:?} is not an integer"))
            }),
        }
    }

    pub fn is_watch(&self) -> bool {
        self.flag("watch")
    }

    fn selectors(&self) -> Result<(LabelSelector, FieldSelector), ApiError> {
        let labels = match self.get("labelSelector") {
            Some(s) => LabelSelector::parse(s).map_err(|e| ApiError::BadRequest(e.to_string()))?,
            None => LabelSelector::default(),
        };
        let fields = match self.get("fieldSelector") {
            Some(s) => FieldSelector::parse(s).map_err(|e| ApiError::BadRequest(e.to_string()))?,
            None => FieldSelector::default(),
        };
        Ok((labels, fields))
    }

    pub fn list(&self) -> Result<ListOptions, ApiError> {
        let (label_selector, field_selector) = self.selectors()?;
        Ok(ListOptions {
            label_selector,
            field_selector,
            resource_version: self.get("resourceVersion").map(str::to_string),
            resource_version_match: self.get("resourceVersionMatch").unwrap_or("").to_string(),
            limit: self.int("limit")?.unwrap_or(0).max(0),
            continue_token: self.get("continue").map(str::to_string),
        })
    }

    pub fn watch(&self) -> Result<WatchOptions, ApiError> {
        let (label_selector, field_selector) = self.selectors()?;
        let timeout = self
            .int("timeoutSeconds")?
            .filter(|t| *t > 0)
            .map(|t| Duration::from_secs(t as u64));
        Ok(WatchOptions {
            label_selector,
            field_selector,
            resource_version: self.get("resourceVersion").map(str::to_string),
            allow_bookmarks: self.flag("allowWatchBookmarks"),
            send_initial_events: self.flag("sendInitialEvents"),
            // Upstream caps watches at a random 30–60 min; clients re-watch.
            timeout: Some(timeout.unwrap_or(Duration::from_secs(1800))),
        })
    }

    pub fn write(&self) -> Result<WriteOptions, ApiError> {
        // Upstream's default without the parameter is Warn.
        let field_validation = match self.get("fieldValidation").unwrap_or("Warn") {
            "Strict" => FieldValidation::Strict,
            "Warn" | "" => FieldValidation::Warn,
            "Ignore" => FieldValidation::Ignore,
            other => {
                return Err(ApiError::BadRequest(format!(
                    "fieldValidation {other} is invalid, valid values are: Ignore, Warn, Strict"
                )))
            }
        };
        if let Some(m) = self.get("fieldManager") {
            // Upstream's limit.
            if m.len() > 128 {
                return Err(ApiError::BadRequest(format!(
                    "fieldManager: Too long: may not be more than 128 bytes (got {})",
                    m.len()
                )));
            }
        }
        let force = match self.get("force") {
            None | Some("") => None,
            Some("true" | "1" | "t" | "T" | "TRUE" | "True") => Some(true),
            Some("false" | "0" | "f" | "F" | "FALSE" | "False") => Some(false),
            Some(other) => {
                return Err(ApiError::BadRequest(format!(
                    "force: invalid boolean value {other:?}"
                )))
            }
        };
        Ok(WriteOptions {
            dry_run: self.dry_run()?,
            field_validation,
            field_manager: self.get("fieldManager").map(str::to_string),
            force,
            ..Default::default()
        })
    }

    fn dry_run(&self) -> Result<bool, ApiError> {
        match self.get("dryRun") {
            None | Some("") => Ok(false),
            Some("All") => Ok(true),
            Some(other) => Err(ApiError::BadRequest(format!(
                "dryRun: Unsupported value: \"{other}\": supported values: \"All\""
            ))),
        }
    }

    /// Delete options from the query, overlaid by a DeleteOptions body.
    pub fn delete(&self, body: Option<&Value>) -> Result<DeleteOptions, ApiError> {
        let mut o = DeleteOptions {
            dry_run: self.dry_run()?,
            grace_period_seconds: self.int("gracePeriodSeconds")?,
            propagation_policy: self.get("propagationPolicy").map(str::to_string),
            ..Default::default()
        };
        if self.get("orphanDependents") == Some("true") {
            o.propagation_policy = Some("Orphan".into());
        }
        if let Some(b) = body {
            if let Some(g) = b.get("gracePeriodSeconds").and_then(Value::as_i64) {
                o.grace_period_seconds = Some(g);
            }
            if let Some(p) = b.get("propagationPolicy").and_then(Value::as_str) {
                o.propagation_policy = Some(p.to_string());
            }
            if b.get("orphanDependents").and_then(Value::as_bool) == Some(true) {
                o.propagation_policy = Some("Orphan".into());
            }
            if let Some(pre) = b.get("preconditions") {
                o.precondition_uid = pre.get("uid").and_then(Value::as_str).map(str::to_string);
                o.precondition_resource_version = pre
                    .get("resourceVersion")
                    .and_then(Value::as_str)
                    .map(str::to_string);
            }
            if let Some(d) = b.get("dryRun").and_then(Value::as_array) {
                o.dry_run |= d.iter().any(|v| v == "All");
            }
        }
        if let Some(p) = o.propagation_policy.as_deref() {
            if !matches!(p, "Orphan" | "Background" | "Foreground") {
                return Err(ApiError::BadRequest(format!(
                    "propagationPolicy: Unsupported value: \"{p}\": supported values: \"Foreground\", \"Background\", \"Orphan\""
                )));
            }
        }
        Ok(o)
    }
}
