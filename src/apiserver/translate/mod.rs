//! What upstream's API server does for kubectl 1.30+ (its
//! StreamTranslatorProxy and TunnelingHandler): the node's runtime only
//! speaks SPDY/3.1 (and WebSocket up to v4), so the API server answers
//! the client's WebSocket itself and speaks SPDY to the kubelet.
//!
//! - exec/attach with `v5.channel.k8s.io`: WebSocket channels are
//!   translated to and from the SPDY streams of remotecommand v4
//!   (`exec.rs`), including v5's close signal that half-closes stdin.
//! - port-forward with `SPDY/3.1+portforward.k8s.io`: the client speaks
//!   SPDY inside WebSocket binary messages; the bytes are copied to a
//!   plain SPDY upgrade of the kubelet (`tunnel.rs`).

mod exec;
mod spdy;
mod tunnel;

use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::WebSocketStream;

use super::upgrade::{self, Body};

/// The exec/attach WebSocket protocol translated here.
pub const EXEC_V5: &str = "v5.channel.k8s.io";
/// kubectl's prefix for SPDY tunnelled through WebSocket.
const TUNNEL_PREFIX: &str = "SPDY/3.1+";
/// The remotecommand protocol spoken to the kubelet.
const EXEC_SPDY: &str = "v4.channel.k8s.io";

/// Translated sessions started since the process began, by kind (tests
/// and operators see that WebSocket really was used, not a fallback).
static EXEC_SESSIONS: AtomicU64 = AtomicU64::new(0);
static TUNNEL_SESSIONS: AtomicU64 = AtomicU64::new(0);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("spdy: {0}")]
    Spdy(String),
    #[error("{0}")]
    Http(#[from] hyper::Error),
    #[error("building the request: {0}")]
    Request(#[from] http::Error),
    #[error("websocket: {0}")]
    WebSocket(#[from] tokio_tungstenite::tungstenite::Error),
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Which streams an exec or attach asked for (its query's flags).
#[derive(Debug, Clone, Copy, Default)]
pub struct Streams {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

/// Whether an exec/attach WebSocket offer is for the translated protocol.
pub fn wants_exec_translation(offered: &[String]) -> bool {
    offered.iter().any(|p| p == EXEC_V5)
}

/// The SPDY protocols a port-forward WebSocket offer tunnels (prefix
/// removed), empty when it is not a tunnelling offer.
pub fn tunnel_protocols(offered: &[String]) -> Vec<String> {
    offered
        .iter()
        .filter_map(|p| p.strip_prefix(TUNNEL_PREFIX))
        .filter(|p| p.ends_with(".k8s.io"))
        .map(str::to_string)
        .collect()
}

/// Upstream's counters of WebSocket sessions translated (exec/attach)
/// and tunnelled (port-forward), in Prometheus text; only upgrades that
/// succeeded are counted, under code 101.
pub fn render_metrics() -> String {
    let mut out = String::new();
    for (name, help, n) in [
        (
            "apiserver_stream_translator_requests_total",
            "Total number of requests that were handled by the StreamTranslatorProxy",
            EXEC_SESSIONS.load(Ordering::Relaxed),
        ),
        (
            "apiserver_stream_tunnel_requests_total",
            "Total number of requests that were handled by the StreamTunnelProxy",
            TUNNEL_SESSIONS.load(Ordering::Relaxed),
        ),
    ] {
        out.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} counter\n{name}{{code=\"101\"}} {n}\n"
        ));
    }
    out
}

/// exec/attach: SPDY to the kubelet at `target`, then the client's
/// WebSocket (`v5.channel.k8s.io`) is accepted and translated. A refused
/// SPDY upgrade is passed back as the kubelet wrote it.
pub async fn exec<IO>(
    req: Request<Incoming>,
    io: IO,
    target: &str,
    host: &str,
    streams: Streams,
) -> Result<Response<Body>, Error>
where
    IO: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let resp = dial_spdy(io, target, host, &[EXEC_SPDY.to_string()]).await?;
    if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
        return Ok(upgrade::pass_through(resp));
    }
    let Some(answer) = accept(&req, EXEC_V5)? else {
        return Ok(bad_handshake());
    };
    EXEC_SESSIONS.fetch_add(1, Ordering::Relaxed);
    tokio::spawn(async move {
        let Some((ws, kubelet)) = both(req, resp).await else {
            return;
        };
        if let Err(e) = exec::run(ws, kubelet, streams).await {
            tracing::debug!(error = %e, "translated exec stream ended with an error");
        }
    });
    Ok(answer)
}

/// port-forward: a SPDY upgrade of the kubelet asking for the tunnelled
/// protocols; on 101 the WebSocket is accepted with the kubelet's choice
/// (prefixed, as kubectl checks) and the bytes are copied both ways.
pub async fn tunnel<IO>(
    req: Request<Incoming>,
    io: IO,
    target: &str,
    host: &str,
    protocols: &[String],
) -> Result<Response<Body>, Error>
where
    IO: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let resp = dial_spdy(io, target, host, protocols).await?;
    if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
        return Ok(upgrade::pass_through(resp));
    }
    let chosen = resp
        .headers()
        .get("x-stream-protocol-version")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .or_else(|| protocols.first().map(String::as_str))
        .unwrap_or_default();
    let Some(answer) = accept(&req, &format!("{TUNNEL_PREFIX}{chosen}"))? else {
        return Ok(bad_handshake());
    };
    TUNNEL_SESSIONS.fetch_add(1, Ordering::Relaxed);
    tokio::spawn(async move {
        let Some((ws, kubelet)) = both(req, resp).await else {
            return;
        };
        match tunnel::run(ws, kubelet).await {
            Ok((up, down)) => tracing::debug!(up, down, "port-forward tunnel closed"),
            Err(e) => tracing::debug!(error = %e, "port-forward tunnel ended with an error"),
        }
    });
    Ok(answer)
}

/// The SPDY/3.1 upgrade of the kubelet (upstream sends POST).
async fn dial_spdy<IO>(
    io: IO,
    target: &str,
    host: &str,
    protocols: &[String],
) -> Result<Response<Incoming>, Error>
where
    IO: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let mut out = Request::post(target)
        .header(header::HOST, host)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "SPDY/3.1");
    for p in protocols {
        out = out.header("x-stream-protocol-version", p.as_str());
    }
    let out = out.body(Empty::<Bytes>::new())?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
    tokio::spawn(async move {
        if let Err(e) = conn.with_upgrades().await {
            tracing::debug!(error = %e, "kubelet stream connection ended with an error");
        }
    });
    Ok(sender.send_request(out).await?)
}

/// The 101 accepting the client's WebSocket with `protocol`, or `None`
/// when the request is not a valid version 13 handshake.
fn accept(req: &Request<Incoming>, protocol: &str) -> Result<Option<Response<Body>>, Error> {
    let h = req.headers();
    let version_ok = h
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_some_and(|v| v.as_bytes() == b"13");
    let Some(key) = h.get(header::SEC_WEBSOCKET_KEY).filter(|_| version_ok) else {
        return Ok(None);
    };
    let resp = Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "Upgrade")
        .header(header::UPGRADE, "websocket")
        .header(
            header::SEC_WEBSOCKET_ACCEPT,
            derive_accept_key(key.as_bytes()),
        )
        .header(
            header::SEC_WEBSOCKET_PROTOCOL,
            HeaderValue::from_str(protocol).map_err(http::Error::from)?,
        )
        .body(Empty::<Bytes>::new().map_err(|n| match n {}).boxed_unsync())?;
    Ok(Some(resp))
}

fn bad_handshake() -> Response<Body> {
    upgrade::text(
        StatusCode::BAD_REQUEST,
        "websocket handshake: Sec-WebSocket-Key and Sec-WebSocket-Version 13 are required",
    )
}

/// Both upgraded connections: the client's as a WebSocket, the kubelet's.
async fn both(
    mut req: Request<Incoming>,
    resp: Response<Incoming>,
) -> Option<(WebSocketStream<TokioIo<Upgraded>>, TokioIo<Upgraded>)> {
    let client = hyper::upgrade::on(&mut req);
    let kubelet = hyper::upgrade::on(resp);
    match tokio::join!(client, kubelet) {
        (Ok(c), Ok(k)) => {
            let ws = WebSocketStream::from_raw_socket(TokioIo::new(c), Role::Server, None).await;
            Some((ws, TokioIo::new(k)))
        }
        (Err(e), _) | (_, Err(e)) => {
            tracing::debug!(error = %e, "stream upgrade failed");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offered(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn offers_are_recognised() {
        assert!(wants_exec_translation(&offered(&[
            "v5.channel.k8s.io",
            "v4.channel.k8s.io"
        ])));
        assert!(!wants_exec_translation(&offered(&["v4.channel.k8s.io"])));
        assert_eq!(
            tunnel_protocols(&offered(&[
                "SPDY/3.1+portforward.k8s.io",
                "portforward.k8s.io",
                "SPDY/3.1+evil"
            ])),
            vec!["portforward.k8s.io"]
        );
        assert!(tunnel_protocols(&offered(&["v4.channel.k8s.io"])).is_empty());
    }
}
