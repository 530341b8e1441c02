//! `/exec`, `/attach`, `/portForward`: the kubelet asks the runtime (CRI
//! `Exec`, `Attach`, `PortForward`) for a one-time URL of its streaming
//! server (containerd's, on loopback) and passes the client's upgrade
//! there untouched, as upstream's kubelet does with a redirect-free proxy.

use http::{Request, Response, StatusCode, Uri};
use hyper::body::Incoming;
use tokio::net::TcpStream;

use crate::agent::cri::{api, Cri, Error as CriError};
use crate::apiserver::upgrade::{self, Body};

use super::logstream::Refusal;
use super::lookup;
use super::params::{self, Target};

/// Which streaming call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Exec,
    Attach,
    PortForward,
}

fn cri_refusal(e: CriError) -> Refusal {
    let code = match &e {
        CriError::Call(s) => match s.code() {
            tonic::Code::NotFound => StatusCode::NOT_FOUND,
            tonic::Code::InvalidArgument | tonic::Code::FailedPrecondition => {
                StatusCode::BAD_REQUEST
            }
            tonic::Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        },
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    let text = match e {
        CriError::Call(s) => s.message().to_string(),
        other => other.to_string(),
    };
    (code, text)
}

fn bad(text: impl Into<String>) -> Refusal {
    (StatusCode::BAD_REQUEST, text.into())
}

/// The runtime's streaming URL for this request.
async fn runtime_url(
    cri: &Cri,
    kind: Kind,
    t: &Target,
    query: Option<&str>,
) -> Result<String, Refusal> {
    let q = params::query_pairs(query);
    if kind == Kind::PortForward {
        let ports = params::ports(&q).map_err(bad)?;
        let sandbox = lookup::sandbox(cri, t)
            .await
            .map_err(cri_refusal)?
            .ok_or_else(|| {
                (
                    StatusCode::NOT_FOUND,
                    format!("pod not found ({:?})", format!("{}_{}", t.pod, t.namespace)),
                )
            })?;
        let resp = cri
            .runtime()
            .port_forward(api::PortForwardRequest {
                pod_sandbox_id: sandbox.id,
                port: ports,
            })
            .await
            .map_err(|s| cri_refusal(CriError::Call(s)))?;
        return Ok(resp.into_inner().url);
    }
    let p = params::exec_params(&q, kind == Kind::Exec).map_err(bad)?;
    let list = lookup::instances(cri, t).await.map_err(cri_refusal)?;
    let container = lookup::current(&list)
        .filter(|c| c.state == api::ContainerState::ContainerRunning as i32)
        .ok_or_else(|| {
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("container not found ({:?})", t.container),
            )
        })?;
    let url = if kind == Kind::Exec {
        cri.runtime()
            .exec(api::ExecRequest {
                container_id: container.id.clone(),
                cmd: p.command,
                tty: p.tty,
                stdin: p.stdin,
                stdout: p.stdout,
                stderr: p.stderr,
            })
            .await
            .map(|r| r.into_inner().url)
    } else {
        cri.runtime()
            .attach(api::AttachRequest {
                container_id: container.id.clone(),
                stdin: p.stdin,
                tty: p.tty,
                stdout: p.stdout,
                stderr: p.stderr,
            })
            .await
            .map(|r| r.into_inner().url)
    };
    url.map_err(|s| cri_refusal(CriError::Call(s)))
}

/// Serves one exec, attach or port-forward request.
pub async fn serve(
    cri: &Cri,
    kind: Kind,
    t: &Target,
    req: Request<Incoming>,
) -> Result<Response<Body>, Refusal> {
    if !upgrade::is_upgrade(req.headers()) {
        return Err(bad("Upgrade request required"));
    }
    let url = runtime_url(cri, kind, t, req.uri().query()).await?;
    let uri: Uri = url.parse().map_err(|e| {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the runtime returned an invalid streaming url {url:?}: {e}"),
        )
    })?;
    let (Some("http"), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
        return Err((
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("unsupported streaming url {url:?}: expected http://host:port/..."),
        ));
    };
    let target = uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    let tcp = TcpStream::connect(authority.as_str()).await.map_err(|e| {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("dialing the runtime's streaming server {authority}: {e}"),
        )
    })?;
    let _ = tcp.set_nodelay(true);
    tracing::debug!(?kind, pod = %t.pod, container = %t.container, "streaming through the runtime");
    upgrade::forward(req, tcp, &target, authority.as_str())
        .await
        .map_err(|e| {
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("streaming through the runtime: {e}"),
            )
        })
}
