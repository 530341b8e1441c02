//! Passing a streaming request on to the next hop, as upstream's
//! upgrade-aware proxy does: the API server to a kubelet, a kubelet to
//! the runtime's streaming server. exec, attach and port-forward are
//! HTTP/1.1 upgrades (SPDY/3.1 or WebSocket) whose bytes are copied both
//! ways untouched once the next hop answered 101; logs are a plain GET
//! whose body is passed through chunk by chunk.

use std::convert::Infallible;

use bytes::Bytes;
use futures::StreamExt;
use http::header::{self, HeaderName};
use http::{HeaderValue, Request, Response, StatusCode};
use http_body::Frame;
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, Empty, StreamBody};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

/// A response body that never fails: an upstream error ends it early.
pub type Body = UnsyncBoxBody<Bytes, Infallible>;

#[derive(Debug, thiserror::Error)]
pub enum UpgradeError {
    #[error("{0}")]
    Http(#[from] hyper::Error),
    #[error("building the request: {0}")]
    Request(#[from] http::Error),
}

/// The request headers an upgrade needs at the next hop. Everything else
/// (the client's authorization above all) stays behind.
const FORWARDED: &[&str] = &[
    "connection",
    "upgrade",
    "x-stream-protocol-version",
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-protocol",
    "sec-websocket-extensions",
    "origin",
];

/// Whether a request asks for a protocol upgrade.
pub fn is_upgrade(headers: &http::HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
}

/// Whether the upgrade asked for is WebSocket (not SPDY).
pub fn is_websocket(headers: &http::HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("websocket"))
}

/// The subprotocols a WebSocket client offers, in its order.
pub fn websocket_protocols(headers: &http::HeaderMap) -> Vec<String> {
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

/// Sends `req`'s upgrade to `target` (path and query) over `io`, an open
/// connection to the next hop. On 101 the client gets 101 with the next
/// hop's headers (the chosen protocol, `Sec-WebSocket-Accept`, which holds
/// because the key went through unchanged) and a task copies the bytes
/// both ways until both sides are done. Any other answer is passed back
/// as it is, so a client that falls back on a failed upgrade sees it.
pub async fn forward<IO>(
    mut req: Request<Incoming>,
    io: IO,
    target: &str,
    host: &str,
) -> Result<Response<Body>, UpgradeError>
where
    IO: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let mut out = Request::builder()
        .method(req.method().clone())
        .uri(target)
        .header(header::HOST, host);
    for name in FORWARDED {
        for value in req.headers().get_all(*name) {
            out = out.header(*name, value.clone());
        }
    }
    let out = out.body(Empty::<Bytes>::new())?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
    tokio::spawn(async move {
        if let Err(e) = conn.with_upgrades().await {
            tracing::debug!(error = %e, "upstream stream connection ended with an error");
        }
    });
    let resp = sender.send_request(out).await?;
    if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
        return Ok(pass_through(resp));
    }
    let mut answer = Response::builder().status(StatusCode::SWITCHING_PROTOCOLS);
    for (name, value) in resp.headers() {
        answer = answer.header(name, value);
    }
    let answer = answer.body(empty())?;
    let client = hyper::upgrade::on(&mut req);
    let upstream = hyper::upgrade::on(resp);
    tokio::spawn(async move {
        let (client, upstream) = match tokio::join!(client, upstream) {
            (Ok(c), Ok(u)) => (c, u),
            (Err(e), _) | (_, Err(e)) => {
                tracing::debug!(error = %e, "stream upgrade failed");
                return;
            }
        };
        let mut client = TokioIo::new(client);
        let mut upstream = TokioIo::new(upstream);
        match tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
            Ok((up, down)) => tracing::debug!(up, down, "stream closed"),
            Err(e) => tracing::debug!(error = %e, "stream ended with an error"),
        }
    });
    Ok(answer)
}

/// Sends a GET for `target` over `io` and returns the next hop's answer
/// with its body streaming (logs, `follow` included).
pub async fn get<IO>(io: IO, target: &str, host: &str) -> Result<Response<Body>, UpgradeError>
where
    IO: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let req = Request::get(target)
        .header(header::HOST, host)
        .body(Empty::<Bytes>::new())?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(error = %e, "upstream connection ended with an error");
        }
    });
    let resp = sender.send_request(req).await?;
    Ok(pass_through(resp))
}

/// The next hop's status, content type and body, streamed.
pub fn pass_through(resp: Response<Incoming>) -> Response<Body> {
    let (parts, body) = resp.into_parts();
    let mut out = Response::new(streamed(body));
    *out.status_mut() = parts.status;
    for name in [
        header::CONTENT_TYPE,
        HeaderName::from_static("x-content-type-options"),
    ] {
        if let Some(v) = parts.headers.get(&name) {
            out.headers_mut().insert(name, v.clone());
        }
    }
    out
}

/// An upstream body as ours: data frames as they come; an error (the next
/// hop went away) ends the body, which the client sees as the end of it.
pub fn streamed(body: Incoming) -> Body {
    let frames = body
        .into_data_stream()
        .take_while(|r| std::future::ready(r.is_ok()))
        .filter_map(|r| std::future::ready(r.ok().map(|b| Ok(Frame::data(b)))));
    StreamBody::new(frames).boxed_unsync()
}

fn empty() -> Body {
    Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// A plain-text answer (the kubelet's error form).
pub fn text(status: StatusCode, message: &str) -> Response<Body> {
    let body = http_body_util::Full::new(Bytes::from(message.to_string())).boxed_unsync();
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upgrade_headers() {
        let mut h = http::HeaderMap::new();
        assert!(!is_upgrade(&h));
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, Upgrade"),
        );
        h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        assert!(is_upgrade(&h));
        assert!(is_websocket(&h));
        h.append(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static("v5.channel.k8s.io, v4.channel.k8s.io"),
        );
        h.append(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_static("base64.channel.k8s.io"),
        );
        assert_eq!(
            websocket_protocols(&h),
            vec![
                "v5.channel.k8s.io",
                "v4.channel.k8s.io",
                "base64.channel.k8s.io"
            ]
        );
        h.insert(header::UPGRADE, HeaderValue::from_static("SPDY/3.1"));
        assert!(!is_websocket(&h));
    }
}
