//! Watch responses: one JSON event per line, flushed as it happens, over a
//! chunked HTTP/1.1 body or HTTP/2 data frames.

use std::convert::Infallible;
use std::time::SystemTime;

use bytes::Bytes;
use http::{HeaderValue, Response};
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use serde_json::{json, Value};

use super::codec::{Body, Output};
use crate::api::{table, WatchEvent, WatchStream};

/// Upper bound of one batched write of watch events.
const BATCH_BYTES: usize = 64 * 1024;

struct State {
    stream: WatchStream,
    output: Output,
    headers_sent: bool,
}

fn encode(state: &mut State, event: WatchEvent) -> Bytes {
    let r = state.stream.resource();
    let object: Value = match state.output {
        Output::Table(include) if event.kind != "BOOKMARK" => {
            let meta = json!({"resourceVersion": event.object.get("metadata").and_then(|m| m.get("resourceVersion")).cloned().unwrap_or(Value::Null)});
            let mut t =
                table::table_of(r, [event.object.as_ref()], include, meta, SystemTime::now());
            // Upstream sends the column headers with the first event only.
            if state.headers_sent {
                if let Some(m) = t.as_object_mut() {
                    m.insert("columnDefinitions".into(), json!([]));
                }
            }
            state.headers_sent = true;
            t
        }
        Output::PartialMetadata if event.kind != "BOOKMARK" => json!({
            "kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
            "metadata": event.object.get("metadata").cloned().unwrap_or_else(|| json!({}))}),
        _ => {
            let object = event.object_json();
            let mut line = Vec::with_capacity(object.len() + 32);
            line.extend_from_slice(b"{\"type\":\"");
            line.extend_from_slice(event.kind.as_bytes());
            line.extend_from_slice(b"\",\"object\":");
            line.extend_from_slice(&object);
            line.extend_from_slice(b"}\n");
            return Bytes::from(line);
        }
    };
    let mut line =
        serde_json::to_vec(&json!({"type": event.kind, "object": object})).unwrap_or_default();
    line.push(b'\n');
    Bytes::from(line)
}

pub fn respond(stream: WatchStream, output: Output) -> Response<Body> {
    let state = State {
        stream,
        output,
        headers_sent: false,
    };
    let frames = futures::stream::unfold(state, |mut state| async move {
        let event = state.stream.next().await?;
        let first = encode(&mut state, event);
        // Events already waiting go out in the same frame: far fewer
        // frames, TLS records and wake-ups when many objects change at once.
        let mut batch: Option<Vec<u8>> = None;
        while batch.as_ref().map_or(first.len(), Vec::len) < BATCH_BYTES {
            let Some(event) = state.stream.next_ready() else {
                break;
            };
            let more = encode(&mut state, event);
            batch
                .get_or_insert_with(|| first.to_vec())
                .extend_from_slice(&more);
        }
        let bytes = batch.map(Bytes::from).unwrap_or(first);
        Some((Ok::<_, Infallible>(Frame::data(bytes)), state))
    });
    let mut resp = Response::new(StreamBody::new(frames).boxed_unsync());
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp.headers_mut().insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, private"),
    );
    resp
}

/// A watch that ends at once with one ERROR event carrying `e`'s Status.
pub fn error_event(e: &crate::api::ApiError) -> Response<Body> {
    let mut line =
        serde_json::to_vec(&json!({"type": "ERROR", "object": e.status()})).unwrap_or_default();
    line.push(b'\n');
    let mut resp = Response::new(super::codec::full(line));
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}
