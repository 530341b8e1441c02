//! httpGet probes and hooks: one HTTP/1.1 GET on a fresh connection (TLS
//! without certificate verification for HTTPS, as upstream), redirects
//! followed only to the same host, at most 10 KiB of body read.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use bytes::Bytes;
use futures::future::{self, Either};
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::{Container, HTTPGetAction};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsConnector;

use super::tls::insecure_tls_config;
use super::{resolve, tcp, Error, Probed, Target, KUBE_VERSION, MAX_OUTPUT};

/// Go's text for an HTTPS request answered in plain HTTP; hooks retry
/// over HTTP on it, as upstream.
pub(super) const PLAIN_HTTP_ANSWER: &str = "http: server gave HTTP response to HTTPS client";

/// Go's client stops after 10 requests of one redirect chain.
const MAX_REQUESTS: usize = 10;

#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Url {
    pub https: bool,
    pub host: String,
    pub port: u16,
    /// Path and query, starting with `/`.
    pub path: String,
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.https { "https" } else { "http" };
        write!(
            f,
            "{scheme}://{}{}",
            resolve::join_host_port(&self.host, self.port),
            self.path
        )
    }
}

impl Url {
    /// Where a `Location` leads from here, and whether it was relative.
    fn join(&self, location: &str) -> Option<(Url, bool)> {
        let location = location.split('#').next().unwrap_or_default();
        let (https, rest) = if let Some(rest) = location.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = location.strip_prefix("http://") {
            (false, rest)
        } else if let Some(rest) = location.strip_prefix("//") {
            (self.https, rest)
        } else {
            let path = if location.starts_with('/') {
                escape_path(location)
            } else {
                let base = self.path.split('?').next().unwrap_or("/");
                let dir = &base[..base.rfind('/').map_or(0, |i| i + 1)];
                escape_path(&format!("{dir}{location}"))
            };
            return Some((
                Url {
                    path,
                    ..self.clone()
                },
                true,
            ));
        };
        let (authority, path) = match rest.find(['/', '?']) {
            Some(at) => (&rest[..at], &rest[at..]),
            None => (rest, "/"),
        };
        let authority: http::uri::Authority = authority.parse().ok()?;
        let host = authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        Some((
            Url {
                https,
                host: host.to_string(),
                port: authority.port_u16().unwrap_or(if https { 443 } else { 80 }),
                path: escape_path(path),
            },
            false,
        ))
    }
}

/// Percent-encodes what may not appear raw in a request line, as Go's URL
/// printing does for a probe's path (the query is kept as written).
fn escape_path(path: &str) -> String {
    let path = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    };
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b <= b' ' || b >= 0x7f || b"\"<>\\^`{|}".contains(&b) {
            out.push_str(&format!("%{b:02X}"));
        } else {
            out.push(b as char);
        }
    }
    out
}

/// One GET as upstream builds it from an HTTPGetAction.
#[derive(Clone, Debug)]
pub(super) struct Get {
    pub url: Url,
    /// Header lines in order, without Host.
    headers: Vec<(String, String)>,
    /// The `Host` header the user set, if any.
    host_header: Option<String>,
}

impl Get {
    /// `purpose` is `probe` or `lifecycle` (the `kube-<purpose>/1.33` agent).
    pub fn new(
        action: &HTTPGetAction,
        container: &Container,
        default_host: IpAddr,
        purpose: &str,
    ) -> Result<Get, Error> {
        let port = resolve::port(&action.port, container)?;
        let https = action
            .scheme
            .as_deref()
            .is_some_and(|s| s.eq_ignore_ascii_case("https"));
        let host = match action.host.as_deref().filter(|h| !h.is_empty()) {
            Some(h) => h.trim_start_matches('[').trim_end_matches(']').to_string(),
            None => default_host.to_string(),
        };
        let path = escape_path(action.path.as_deref().unwrap_or_default());
        let path = path.split('#').next().unwrap_or("/").to_string();
        let given = action.http_headers.iter().flatten();
        let has = |name: &str| given.clone().any(|h| h.name.eq_ignore_ascii_case(name));
        let mut headers: Vec<(String, String)> = Vec::new();
        let mut host_header = None;
        for h in given.clone() {
            if h.name.eq_ignore_ascii_case("host") {
                host_header.get_or_insert(h.value.clone());
            } else {
                headers.push((h.name.clone(), h.value.clone()));
            }
        }
        if !has("user-agent") {
            headers.push((
                "User-Agent".into(),
                format!("kube-{purpose}/{KUBE_VERSION}"),
            ));
        }
        if !has("accept") {
            headers.push(("Accept".into(), "*/*".into()));
        } else if given
            .clone()
            .find(|h| h.name.eq_ignore_ascii_case("accept"))
            .is_some_and(|h| h.value.is_empty())
        {
            // An Accept set to "" asks for none at all (upstream).
            headers.retain(|(n, _)| !n.eq_ignore_ascii_case("accept"));
        }
        Ok(Get {
            url: Url {
                https,
                host,
                port,
                path,
            },
            headers,
            host_header: host_header.filter(|h| !h.is_empty()),
        })
    }
}

#[derive(Debug)]
pub(super) struct Answer {
    pub status: u16,
    pub body: String,
}

/// Sends `req`, following redirects to the same host; the error is Go's
/// text (`Get "http://10.42.0.7:80/": dial tcp ...`). `timeout` bounds the
/// whole exchange, redirects included, as Go's `Client.Timeout`.
pub(super) async fn get(req: &Get, timeout: Option<Duration>) -> Result<Answer, String> {
    let mut current = req.url.clone();
    match timeout {
        Some(t) => match tokio::time::timeout(t, follow(req, &mut current)).await {
            Ok(result) => result,
            Err(_) => Err(format!(
                "Get {:?}: context deadline exceeded (Client.Timeout exceeded while awaiting headers)",
                current.to_string()
            )),
        },
        None => follow(req, &mut current).await,
    }
}

async fn follow(req: &Get, current: &mut Url) -> Result<Answer, String> {
    let mut host_header = req.host_header.clone();
    let mut sent = 0;
    loop {
        sent += 1;
        let (status, location, body) = exchange(req, current, host_header.as_deref())
            .await
            .map_err(|e| format!("Get {:?}: {e}", current.to_string()))?;
        let answer = Answer { status, body };
        if !matches!(status, 301 | 302 | 303 | 307 | 308) {
            return Ok(answer);
        }
        let Some((next, relative)) = location.and_then(|l| current.join(&l)) else {
            return Ok(answer);
        };
        // Upstream follows only to the first request's host; elsewhere the
        // 3xx answer itself is the result (a success with a warning).
        if next.host != req.url.host {
            return Ok(answer);
        }
        if sent >= MAX_REQUESTS {
            return Err(format!(
                "Get {:?}: stopped after 10 redirects",
                next.to_string()
            ));
        }
        if !relative {
            host_header = None;
        }
        *current = next;
    }
}

/// One request on a fresh connection: (status, Location, body ≤ 10 KiB).
async fn exchange(
    req: &Get,
    url: &Url,
    host_header: Option<&str>,
) -> Result<(u16, Option<String>, String), String> {
    let addr = resolve::join_host_port(&url.host, url.port);
    let stream = tcp::connect(&url.host, url.port)
        .await
        .map_err(|e| format!("dial tcp {addr}: {}", resolve::go_io_error(&e)))?;
    let mut builder = http::Request::get(url.path.as_str())
        .header(http::header::HOST, host_header.unwrap_or(&addr))
        // Upstream's prober disables keep-alives.
        .header(http::header::CONNECTION, "close");
    for (name, value) in &req.headers {
        let name = http::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| format!("net/http: invalid header field name {name:?}"))?;
        let value = http::HeaderValue::from_str(value).map_err(|_| {
            format!(
                "net/http: invalid header field value for {:?}",
                name.as_str()
            )
        })?;
        builder = builder.header(name, value);
    }
    let request = builder
        .body(Empty::<Bytes>::new())
        .map_err(|e| e.to_string())?;
    if !url.https {
        return send(stream, request).await;
    }
    let name = match url.host.parse::<IpAddr>() {
        Ok(ip) => ServerName::from(ip),
        Err(_) => ServerName::try_from(url.host.clone()).map_err(|e| e.to_string())?,
    };
    let tls = TlsConnector::from(insecure_tls_config()?)
        .connect(name, stream)
        .await
        .map_err(|e| tls_error(&e))?;
    send(tls, request).await
}

async fn send<S>(
    io: S,
    request: http::Request<Empty<Bytes>>,
) -> Result<(u16, Option<String>, String), String>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| e.to_string())?;
    let exchange = async move {
        let resp = sender
            .send_request(request)
            .await
            .map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let location = resp
            .headers()
            .get(http::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let mut body = resp.into_body();
        let mut data = Vec::new();
        // Stop at 10 KiB: the rest is never read (the connection closes).
        while data.len() < MAX_OUTPUT {
            match body.frame().await {
                None => break,
                Some(Ok(frame)) => {
                    if let Ok(chunk) = frame.into_data() {
                        data.extend_from_slice(&chunk);
                    }
                }
                Some(Err(e)) => return Err(e.to_string()),
            }
        }
        data.truncate(MAX_OUTPUT);
        Ok((
            status,
            location,
            String::from_utf8_lossy(&data).into_owned(),
        ))
    };
    // The connection is driven here, not spawned, so a timeout drops it.
    let (exchange, conn) = (std::pin::pin!(exchange), std::pin::pin!(conn));
    match future::select(exchange, conn).await {
        Either::Left((result, _)) => result,
        // The connection ended first: what it delivered is still readable.
        Either::Right((_, exchange)) => exchange.await,
    }
}

fn tls_error(err: &std::io::Error) -> String {
    let inner = err
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>());
    match inner {
        Some(rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType)) => {
            PLAIN_HTTP_ANSWER.to_string()
        }
        Some(e) => format!("tls: {e}"),
        None => resolve::go_io_error(err),
    }
}

/// Upstream's HTTP prober: 2xx success, 3xx (a redirect not followed)
/// success with a warning, anything else or no answer a failure.
pub(super) async fn probe(
    action: &HTTPGetAction,
    container: &Container,
    target: &Target,
    timeout: Duration,
) -> Probed {
    let req = match Get::new(action, container, target.default_host(), "probe") {
        Ok(req) => req,
        Err(err) => return Probed::Error(err.to_string()),
    };
    match get(&req, Some(timeout)).await {
        Err(text) => Probed::Failure(text),
        Ok(a) if (200..300).contains(&a.status) => Probed::Success,
        Ok(a) if (300..400).contains(&a.status) => Probed::Warning(format!(
            "Probe terminated redirects, Response body: {}",
            a.body
        )),
        Ok(a) => Probed::Failure(format!("HTTP probe failed with statuscode: {}", a.status)),
    }
}

#[cfg(test)]
#[path = "http_tests.rs"]
mod tests;
