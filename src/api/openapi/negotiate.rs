//! Which form of `/openapi/v2` a request gets, as kube-openapi's handler
//! decides it: the Accept clauses in order of preference (quality, then
//! specificity), each tried against JSON and the two protobuf media types;
//! the first match wins, and no match is 406 Not Acceptable.

use bytes::Bytes;

use super::OpenApi;

/// The protobuf media type kube-openapi answers with (also accepted).
pub const V2_PROTOBUF: &str = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";
/// The media type client-go asks for; answered as [`V2_PROTOBUF`].
#[cfg(test)]
pub const V2_PROTOBUF_DEPRECATED: &str =
    "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";

/// One form of the v2 document, ready to send.
#[derive(Clone, Debug)]
pub struct V2Representation {
    pub body: Bytes,
    pub content_type: &'static str,
    /// Unquoted; send as `ETag: "<etag>"` (with `Vary: Accept`).
    pub etag: String,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Form {
    Json,
    Protobuf,
}

const OFFERED: &[(&str, &str, Form)] = &[
    ("application", "json", Form::Json),
    (
        "application",
        "com.github.proto-openapi.spec.v2@v1.0+protobuf",
        Form::Protobuf,
    ),
    (
        "application",
        "com.github.proto-openapi.spec.v2.v1.0+protobuf",
        Form::Protobuf,
    ),
];

impl OpenApi {
    /// The v2 document in the form `accept` (the request's Accept header)
    /// prefers, or None when it accepts none of them (answer 406). A
    /// missing header accepts anything, which is JSON.
    pub fn v2_for_accept(&self, accept: Option<&str>) -> Option<V2Representation> {
        let form = choose(accept.unwrap_or("*/*"))?;
        Some(match form {
            Form::Json => {
                let (body, etag) = self.v2_with_hash();
                V2Representation {
                    body,
                    content_type: "application/json",
                    etag,
                }
            }
            Form::Protobuf => {
                let (body, etag) = self.v2_protobuf_with_hash();
                V2Representation {
                    body,
                    content_type: V2_PROTOBUF,
                    etag,
                }
            }
        })
    }
}

struct Clause<'a> {
    kind: &'a str,
    subtype: &'a str,
    quality: f32,
}

fn choose(accept: &str) -> Option<Form> {
    let mut clauses: Vec<Clause> = accept.split(',').filter_map(parse_clause).collect();
    // Best quality first; at equal quality a concrete type beats a
    // wildcard. Stable, so header order breaks the remaining ties.
    clauses.sort_by(|a, b| {
        b.quality
            .total_cmp(&a.quality)
            .then((a.kind == "*").cmp(&(b.kind == "*")))
            .then((a.subtype == "*").cmp(&(b.subtype == "*")))
    });
    clauses
        .iter()
        .filter(|c| c.quality > 0.0)
        .find_map(|c| {
            OFFERED.iter().find(|(kind, subtype, _)| {
                (c.kind == *kind || c.kind == "*") && (c.subtype == *subtype || c.subtype == "*")
            })
        })
        .map(|(_, _, form)| *form)
}

fn parse_clause(part: &str) -> Option<Clause<'_>> {
    let mut pieces = part.split(';');
    let range = pieces.next()?.trim();
    let (kind, subtype) = match range.split_once('/') {
        Some((kind, subtype)) => (kind.trim(), subtype.trim()),
        None if range == "*" => ("*", "*"),
        None => return None,
    };
    let mut quality = 1.0;
    for param in pieces {
        if let Some((name, value)) = param.split_once('=') {
            if name.trim() == "q" {
                quality = value.trim().parse().unwrap_or(0.0);
            }
        }
    }
    Some(Clause {
        kind,
        subtype,
        quality,
    })
}

#[cfg(test)]
mod tests {
    use super::{choose, Form};

    #[test]
    fn accept_picks_the_preferred_form() {
        assert!(matches!(
            choose(super::V2_PROTOBUF_DEPRECATED),
            Some(Form::Protobuf)
        ));
        assert!(matches!(choose(super::V2_PROTOBUF), Some(Form::Protobuf)));
        assert!(matches!(choose("*/*"), Some(Form::Json)));
        assert!(matches!(choose("application/json, */*"), Some(Form::Json)));
        let weighted =
            "application/json;q=0.5, application/com.github.proto-openapi.spec.v2@v1.0+protobuf";
        assert!(matches!(choose(weighted), Some(Form::Protobuf)));
        assert!(choose("text/html").is_none());
        assert!(choose("application/json;q=0").is_none());
    }
}
