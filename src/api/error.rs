//! API errors and their `meta.k8s.io/v1 Status` form, with upstream's codes,
//! reasons and message texts.

use serde_json::{json, Value};

use crate::api::registry::Resource;
use crate::api::validation::{self, FieldCause};

/// Requests bodies larger than this get 413 (upstream's limit).
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{qualified} \"{name}\" not found")]
    NotFound {
        group: String,
        resource: String,
        qualified: String,
        name: String,
    },
    #[error("{qualified} \"{name}\" already exists")]
    AlreadyExists {
        group: String,
        resource: String,
        qualified: String,
        name: String,
    },
    #[error("Operation cannot be fulfilled on {qualified} \"{name}\": {message}")]
    Conflict {
        group: String,
        resource: String,
        qualified: String,
        name: String,
        message: String,
    },
    #[error("{}", validation::invalid_message(kind, name, causes))]
    Invalid {
        group: String,
        kind: String,
        name: String,
        causes: Vec<FieldCause>,
    },
    #[error("{0}")]
    BadRequest(String),
    #[error("the server does not allow this method on the requested resource")]
    MethodNotAllowed,
    #[error("{0}")]
    NotAcceptable(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("Request entity too large: limit is {MAX_BODY_BYTES}")]
    TooLarge,
    #[error("{0}")]
    Gone(String),
    #[error("Unauthorized")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    /// 429 with status causes (reason, message): e.g. an eviction a
    /// PodDisruptionBudget refuses (kubectl drain retries on it).
    #[error("{message}")]
    TooManyRequests {
        message: String,
        causes: Vec<(String, String)>,
    },
    #[error("{0}")]
    Timeout(String),
    #[error("the server could not find the requested resource")]
    NoRoute,
    #[error("Internal error occurred: {0}")]
    Internal(String),
    /// 500 with no reason: upstream's answer to an error that is not an
    /// API status (a failed CRD conversion webhook).
    #[error("{0}")]
    Unknown(String),
    #[error("{0}")]
    Unprocessable(String),
    /// Server-side apply conflicts: 409 with one FieldManagerConflict
    /// cause (message, field) per field, no name or kind (as upstream).
    #[error("{message}")]
    ApplyConflict {
        message: String,
        causes: Vec<(String, String)>,
    },
}

impl ApiError {
    pub fn not_found(r: &Resource, name: &str) -> Self {
        ApiError::NotFound {
            group: r.group.into(),
            resource: r.plural.into(),
            qualified: r.qualified(),
            name: name.into(),
        }
    }

    pub fn already_exists(r: &Resource, name: &str) -> Self {
        ApiError::AlreadyExists {
            group: r.group.into(),
            resource: r.plural.into(),
            qualified: r.qualified(),
            name: name.into(),
        }
    }

    pub fn conflict(r: &Resource, name: &str, message: &str) -> Self {
        ApiError::Conflict {
            group: r.group.into(),
            resource: r.plural.into(),
            qualified: r.qualified(),
            name: name.into(),
            message: message.into(),
        }
    }

    /// The optimistic-concurrency conflict kubectl knows how to retry.
    pub fn modified(r: &Resource, name: &str) -> Self {
        Self::conflict(
            r,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    pub fn invalid(r: &Resource, name: &str, causes: Vec<FieldCause>) -> Self {
        ApiError::Invalid {
            group: r.group.into(),
            kind: r.kind.into(),
            name: name.into(),
            causes,
        }
    }

    pub fn internal(e: impl std::fmt::Display) -> Self {
        ApiError::Internal(e.to_string())
    }

    pub fn code(&self) -> u16 {
        match self {
            ApiError::NotFound { .. } | ApiError::NoRoute => 404,
            ApiError::AlreadyExists { .. }
            | ApiError::Conflict { .. }
            | ApiError::ApplyConflict { .. } => 409,
            ApiError::Invalid { .. } | ApiError::Unprocessable(_) => 422,
            ApiError::BadRequest(_) => 400,
            ApiError::MethodNotAllowed => 405,
            ApiError::NotAcceptable(_) => 406,
            ApiError::UnsupportedMediaType(_) => 415,
            ApiError::TooLarge => 413,
            ApiError::Gone(_) => 410,
            ApiError::Unauthorized => 401,
            ApiError::Forbidden(_) => 403,
            ApiError::TooManyRequests { .. } => 429,
            ApiError::Timeout(_) => 504,
            ApiError::Internal(_) | ApiError::Unknown(_) => 500,
        }
    }

    pub fn reason(&self) -> &'static str {
        match self {
            ApiError::NotFound { .. } | ApiError::NoRoute => "NotFound",
            ApiError::AlreadyExists { .. } => "AlreadyExists",
            ApiError::Conflict { .. } | ApiError::ApplyConflict { .. } => "Conflict",
            ApiError::Invalid { .. } | ApiError::Unprocessable(_) => "Invalid",
            ApiError::BadRequest(_) => "BadRequest",
            ApiError::MethodNotAllowed => "MethodNotAllowed",
            ApiError::NotAcceptable(_) => "NotAcceptable",
            ApiError::UnsupportedMediaType(_) => "UnsupportedMediaType",
            ApiError::TooLarge => "RequestEntityTooLarge",
            ApiError::Gone(_) => "Expired",
            ApiError::Unauthorized => "Unauthorized",
            ApiError::Forbidden(_) => "Forbidden",
            ApiError::TooManyRequests { .. } => "TooManyRequests",
            ApiError::Timeout(_) => "Timeout",
            ApiError::Internal(_) => "InternalError",
            ApiError::Unknown(_) => "",
        }
    }

    /// The `Status` object sent to clients.
    pub fn status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.to_string(),
            "reason": self.reason(),
            "code": self.code(),
        });
        let details = match self {
            ApiError::NotFound {
                group,
                resource,
                name,
                ..
            }
            | ApiError::AlreadyExists {
                group,
                resource,
                name,
                ..
            }
            | ApiError::Conflict {
                group,
                resource,
                name,
                ..
            } => Some(details(name, group, resource, None)),
            ApiError::Invalid {
                group,
                kind,
                name,
                causes,
            } => Some(details(name, group, kind, Some(causes))),
            ApiError::Internal(message) => Some(json!({"causes": [{"message": message}]})),
            ApiError::TooManyRequests { causes, .. } => Some(json!({"causes": causes
                .iter()
                .map(|(reason, message)| json!({"reason": reason, "message": message}))
                .collect::<Vec<_>>()})),
            ApiError::ApplyConflict { causes, .. } => Some(json!({"causes": causes
                .iter()
                .map(|(message, field)| json!({"type": "FieldManagerConflict", "message": message, "field": field}))
                .collect::<Vec<_>>()})),
            _ => None,
        };
        if let (Some(d), Some(map)) = (details, status.as_object_mut()) {
            map.insert("details".into(), d);
        }
        if let (Some(map), "") = (status.as_object_mut(), self.reason()) {
            map.remove("reason");
        }
        status
    }
}

fn details(name: &str, group: &str, kind: &str, causes: Option<&Vec<FieldCause>>) -> Value {
    let mut d = serde_json::Map::new();
    if !name.is_empty() {
        d.insert("name".into(), name.into());
    }
    if !group.is_empty() {
        d.insert("group".into(), group.into());
    }
    d.insert("kind".into(), kind.into());
    if let Some(causes) = causes {
        let list = causes.iter().map(FieldCause::to_status_cause).collect();
        d.insert("causes".into(), Value::Array(list));
    }
    Value::Object(d)
}

/// A `Status` for successful deletes of objects that are gone at once.
pub fn success_status(r: &Resource, name: &str, uid: Option<&str>) -> Value {
    let mut d = json!({"name": name, "kind": r.plural});
    if !r.group.is_empty() {
        d["group"] = r.group.into();
    }
    if let Some(uid) = uid {
        d["uid"] = uid.into();
    }
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": d})
}
