//! Test support: a loopback HTTP(S) server with fixed routes, a raw gRPC
//! server (TCP or unix socket) answering through a handler, and targets.

use std::convert::Infallible;
use std::future::Future;
use std::net::IpAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, Request, Response};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};
use tokio_rustls::TlsAcceptor;

use super::Target;
use crate::agent::cri::Cri;

/// A target whose pod IP is loopback and whose CRI socket does not exist.
pub fn target() -> Target {
    target_with_cri("/nonexistent/nanokube-probes-test.sock")
}

pub fn target_with_cri(socket: &str) -> Target {
    Target {
        cri: Cri::new(socket).unwrap(),
        container_id: "c0ffee".into(),
        pod_ip: Some(IpAddr::from([127, 0, 0, 1])),
        host_ip: None,
    }
}

#[derive(Clone, Debug)]
pub struct Seen {
    pub path: String,
    pub headers: HeaderMap,
}

pub struct HttpServer {
    pub port: u16,
    pub seen: Arc<Mutex<Vec<Seen>>>,
}

impl HttpServer {
    pub fn paths(&self) -> Vec<String> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .map(|s| s.path.clone())
            .collect()
    }
}

fn req_path(path_and_query: &str) -> &str {
    path_and_query.split('?').next().unwrap_or_default()
}

fn answer(port: u16, path: &str) -> (u16, Option<String>, Vec<u8>) {
    match path {
        "/ok" | "/rel/b" => (200, None, b"fine".to_vec()),
        "/fail" => (500, None, b"broken".to_vec()),
        "/same" => (302, Some("/ok".into()), Vec::new()),
        "/abs-same" => (301, Some(format!("http://127.0.0.1:{port}/ok")), Vec::new()),
        "/other" => (
            302,
            Some("http://other.invalid/x".into()),
            b"moved".to_vec(),
        ),
        "/loop" => (302, Some("/loop".into()), Vec::new()),
        "/rel/a" => (302, Some("b".into()), Vec::new()),
        "/big" => (200, None, vec![b'x'; 1 << 20]),
        _ => (404, None, Vec::new()),
    }
}

async fn handle(
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    seen.lock().unwrap().push(Seen {
        path: path.clone(),
        headers: req.headers().clone(),
    });
    if path == "/slow" {
        tokio::time::sleep(Duration::from_secs(30)).await;
    }
    let (status, location, body) = answer(port, req_path(&path));
    let mut resp = Response::builder().status(status);
    if let Some(location) = location {
        resp = resp.header("location", location);
    }
    Ok(resp.body(Full::new(Bytes::from(body))).unwrap())
}

fn tls_acceptor() -> TlsAcceptor {
    let key = rcgen::generate_simple_self_signed(vec!["pod.invalid".to_string()]).unwrap();
    let cert = key.cert.der().clone();
    let der = rustls::pki_types::PrivatePkcs8KeyDer::from(key.signing_key.serialize_der());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], der.into())
        .unwrap();
    TlsAcceptor::from(Arc::new(config))
}

/// Serves the routes of [`answer`] on 127.0.0.1 (HTTPS with a self-signed
/// certificate when `tls`).
pub async fn serve_http(tls: bool) -> HttpServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let acceptor = tls.then(tls_acceptor);
    let shared = seen.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let seen = shared.clone();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req| handle(port, seen.clone(), req));
                let builder = hyper::server::conn::http1::Builder::new();
                match acceptor {
                    Some(acceptor) => {
                        if let Ok(tls) = acceptor.accept(tcp).await {
                            let _ = builder.serve_connection(TokioIo::new(tls), svc).await;
                        }
                    }
                    None => {
                        let _ = builder.serve_connection(TokioIo::new(tcp), svc).await;
                    }
                }
            });
        }
    });
    HttpServer { port, seen }
}

/// Answers one unary call: (method path, request headers, request message)
/// → the response message, or a grpc-status and message.
pub type GrpcHandler = Arc<
    dyn Fn(
            String,
            HeaderMap,
            Bytes,
        ) -> Pin<Box<dyn Future<Output = Result<Vec<u8>, (u32, String)>> + Send>>
        + Send
        + Sync,
>;

type GrpcBody =
    StreamBody<futures::stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, Infallible>>>>;

fn grpc_trailers(status: u32, message: &str) -> HeaderMap {
    let mut t = HeaderMap::new();
    t.insert("grpc-status", HeaderValue::from(status));
    if !message.is_empty() {
        t.insert("grpc-message", HeaderValue::from_str(message).unwrap());
    }
    t
}

async fn grpc_call(
    handler: GrpcHandler,
    req: Request<Incoming>,
) -> Result<Response<GrpcBody>, Infallible> {
    let path = req.uri().path().to_string();
    let headers = req.headers().clone();
    let data = req.into_body().collect().await.unwrap().to_bytes();
    // A unary request is one length-prefixed message.
    let frames = match handler(path, headers, data.slice(5..)).await {
        Ok(msg) => {
            let mut frame = BytesMut::new();
            frame.put_u8(0);
            frame.put_u32(msg.len() as u32);
            frame.put_slice(&msg);
            vec![
                Ok(Frame::data(frame.freeze())),
                Ok(Frame::trailers(grpc_trailers(0, ""))),
            ]
        }
        // Trailers-only, as servers answer errors.
        Err((status, message)) => vec![Ok(Frame::trailers(grpc_trailers(status, &message)))],
    };
    Ok(Response::builder()
        .header("content-type", "application/grpc")
        .body(StreamBody::new(futures::stream::iter(frames)))
        .unwrap())
}

fn serve_grpc_conn<S>(io: S, handler: GrpcHandler)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let svc = hyper::service::service_fn(move |req| grpc_call(handler.clone(), req));
        let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
            .serve_connection(TokioIo::new(io), svc)
            .await;
    });
}

/// A gRPC server (plain HTTP/2) on 127.0.0.1; returns its port.
pub async fn serve_grpc_tcp(handler: GrpcHandler) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            serve_grpc_conn(tcp, handler.clone());
        }
    });
    port
}

/// A gRPC server on a unix socket (a fake CRI runtime).
pub fn serve_grpc_unix(path: &Path, handler: GrpcHandler) {
    let listener = UnixListener::bind(path).unwrap();
    tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            serve_grpc_conn(conn, handler.clone());
        }
    });
}

/// The ExecSync calls a fake runtime received.
pub type ExecCalls = Arc<Mutex<Vec<crate::agent::cri::api::ExecSyncRequest>>>;

/// A fake CRI runtime on a unix socket in `dir` answering ExecSync as
/// containerd would, and a target using it. Commands: `true`; `cat
/// /tmp/healthy` (exit 1, the error on stderr); `sh -c "exit 3"` (exit 3,
/// "out" and "oops"); `echo X` (X); `sleep N` (the runtime's timeout);
/// anything else: container not found.
pub fn fake_cri(dir: &Path) -> (Target, ExecCalls) {
    use crate::agent::cri::api::{ExecSyncRequest, ExecSyncResponse};
    use prost::Message;

    let calls: ExecCalls = Arc::default();
    let seen = calls.clone();
    let handler: GrpcHandler = Arc::new(move |path, _headers, data| {
        let seen = seen.clone();
        Box::pin(async move {
            assert_eq!(path, "/runtime.v1.RuntimeService/ExecSync");
            let req = ExecSyncRequest::decode(data).unwrap();
            seen.lock().unwrap().push(req.clone());
            let reply = |exit_code, stdout: &str, stderr: &str| {
                let resp = ExecSyncResponse {
                    stdout: stdout.as_bytes().to_vec(),
                    stderr: stderr.as_bytes().to_vec(),
                    exit_code,
                };
                Ok(resp.encode_to_vec())
            };
            let cmd: Vec<&str> = req.cmd.iter().map(String::as_str).collect();
            match cmd.as_slice() {
                ["true"] => reply(0, "", ""),
                ["cat", "/tmp/healthy"] => reply(
                    1,
                    "",
                    "cat: can't open '/tmp/healthy': No such file or directory\n",
                ),
                ["sh", "-c", "exit 3"] => reply(3, "out", "oops"),
                ["echo", text] => reply(0, text, ""),
                ["sleep", _] => Err((
                    4,
                    format!(
                        "timeout {}s exceeded: context deadline exceeded",
                        req.timeout
                    ),
                )),
                _ => Err((5, format!("container {:?} not found", req.container_id))),
            }
        })
    });
    let socket = dir.join("cri.sock");
    serve_grpc_unix(&socket, handler);
    (target_with_cri(socket.to_str().unwrap()), calls)
}
