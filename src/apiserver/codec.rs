//! Content negotiation, request bodies and response bodies.

use std::convert::Infallible;

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Full};
use serde_json::Value;

use crate::api::table::IncludeObject;
use crate::api::ApiError;

pub type Body = UnsyncBoxBody<Bytes, Infallible>;

/// The form a client asked the answer in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Json,
    Yaml,
    Table(IncludeObject),
    PartialMetadata,
}

const ACCEPTED: &str = "only the following media types are accepted: application/json, application/yaml, application/json;as=Table;v=v1;g=meta.k8s.io";

/// Picks the first media range of `Accept` we can produce.
pub fn negotiate(accept: Option<&str>) -> Result<Output, ApiError> {
    let Some(accept) = accept.map(str::trim).filter(|a| !a.is_empty()) else {
        return Ok(Output::Json);
    };
    for range in accept.split(',') {
        let mut parts = range.split(';').map(str::trim);
        let media = parts.next().unwrap_or("").to_ascii_lowercase();
        let mut as_ = None;
        let mut group = None;
        for p in parts {
            if let Some((k, v)) = p.split_once('=') {
                match k.trim() {
                    "as" => as_ = Some(v.trim().to_string()),
                    "g" => group = Some(v.trim().to_string()),
                    _ => {}
                }
            }
        }
        // We serve no protobuf: a client asking for it (client-go reads the
        // answer by its Content-Type) gets JSON rather than a 406.
        let json_like = matches!(
            media.as_str(),
            "application/json" | "*/*" | "application/*" | super::proto::CONTENT_TYPE
        );
        match (json_like, as_.as_deref(), group.as_deref()) {
            (true, Some("Table"), Some("meta.k8s.io")) => {
                return Ok(Output::Table(IncludeObject::Metadata))
            }
            (
                true,
                Some("PartialObjectMetadata" | "PartialObjectMetadataList"),
                Some("meta.k8s.io"),
            ) => return Ok(Output::PartialMetadata),
            (true, None, _) => return Ok(Output::Json),
            _ => {}
        }
        if media == "application/yaml" && as_.is_none() {
            return Ok(Output::Yaml);
        }
    }
    Err(ApiError::NotAcceptable(ACCEPTED.into()))
}

/// Decodes a JSON or YAML request body into an object.
pub fn decode(content_type: Option<&str>, body: &[u8]) -> Result<Value, ApiError> {
    let media = content_type
        .and_then(|c| c.split(';').next())
        .map(|c| c.trim().to_ascii_lowercase())
        .unwrap_or_else(|| "application/json".into());
    match media.as_str() {
        "application/json" | "" => serde_json::from_slice(body)
            .map_err(|e| ApiError::BadRequest(format!("couldn't get version/kind; json parse error: {e}"))),
        "application/yaml" | "application/x-yaml" | "text/yaml" => {
            let text = std::str::from_utf8(body)
                .map_err(|_| ApiError::BadRequest("the yaml body is not valid utf-8".into()))?;
            serde_saphyr::from_str::<Value>(text)
                .map_err(|e| ApiError::BadRequest(format!("error converting YAML to JSON: {e}")))
        }
        super::proto::CONTENT_TYPE => super::proto::decode(body)
            .map_err(|e| ApiError::BadRequest(format!("couldn't decode the protobuf body: {e}"))),
        other => Err(ApiError::UnsupportedMediaType(format!(
            "the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf (got {other})"
        ))),
    }
}

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed_unsync()
}

/// A JSON (or YAML) response with `code`.
pub fn respond(code: u16, value: &Value, output: Output) -> Response<Body> {
    let (body, content_type) = match output {
        Output::Yaml => match serde_saphyr::to_string(value) {
            Ok(text) => (Bytes::from(text), "application/yaml"),
            Err(_) => (Bytes::from(value.to_string()), "application/json"),
        },
        _ => (
            Bytes::from(serde_json::to_vec(value).unwrap_or_default()),
            "application/json",
        ),
    };
    raw(code, body, content_type)
}

pub fn raw(code: u16, body: Bytes, content_type: &str) -> Response<Body> {
    let mut resp = Response::new(full(body));
    *resp.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(v) = HeaderValue::from_str(content_type) {
        resp.headers_mut().insert(http::header::CONTENT_TYPE, v);
    }
    resp
}

pub fn error(e: &ApiError) -> Response<Body> {
    let mut resp = respond(e.code(), &e.status(), Output::Json);
    if matches!(e, ApiError::Unauthorized) {
        resp.headers_mut().insert(
            http::header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"kubernetes-master\""),
        );
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubectl_get_accept_header_means_table() {
        let a = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
        assert!(matches!(negotiate(Some(a)), Ok(Output::Table(_))));
        assert_eq!(negotiate(None).ok(), Some(Output::Json));
        assert_eq!(negotiate(Some("application/yaml")).ok(), Some(Output::Yaml));
        assert_eq!(
            negotiate(Some("application/vnd.kubernetes.protobuf, */*")).ok(),
            Some(Output::Json)
        );
        assert_eq!(
            negotiate(Some("application/vnd.kubernetes.protobuf")).ok(),
            Some(Output::Json)
        );
        assert_eq!(
            negotiate(Some("application/vnd.kubernetes.protobuf;stream=watch")).ok(),
            Some(Output::Json)
        );
        assert!(matches!(
            negotiate(Some(
                "application/vnd.kubernetes.protobuf;as=Table;v=v1;g=meta.k8s.io"
            )),
            Ok(Output::Table(_))
        ));
        assert!(negotiate(Some("text/html")).is_err());
    }

    #[test]
    fn bodies_decode_or_fail_cleanly() {
        assert!(decode(Some("application/json"), b"{\"a\":1}").is_ok());
        assert!(matches!(
            decode(None, b"{nope"),
            Err(ApiError::BadRequest(_))
        ));
        assert_eq!(
            decode(Some("application/yaml"), b"a: 1\n").ok(),
            Some(serde_json::json!({"a": 1}))
        );
        assert!(matches!(
            decode(Some("text/plain"), b"x"),
            Err(ApiError::UnsupportedMediaType(_))
        ));
    }
}
