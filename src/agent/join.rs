//! Joining a server as k3s agents do: download the CA from `/cacerts`
//! over TLS that is not yet verified, compare its SHA-256 with the hash in
//! the join token, and only then open the API client, which verifies the
//! server against that CA and authenticates with the token: a bootstrap
//! token (`K10<hash>::<id>.<secret>`) as `<id>.<secret>`, which the server
//! checks against its `bootstrap-token-<id>` Secret, any other as
//! `node:<secret>`.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Uri};
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::Error;
use crate::client::{Client, Remote, RemoteConfig, ResourceId};
use crate::pki::{ca_hash, BootstrapToken, JoinToken};

const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// A CA bundle is a few KiB; anything this large is not one.
const MAX_CA_BYTES: usize = 1 << 20;

/// Checks the server against the token and returns an API client that
/// authenticates with it.
pub async fn connect(server: &str, token: &str) -> Result<Remote, Error> {
    let token = JoinToken::parse(token)?;
    let server = server.trim_end_matches('/');
    let ca_pem = fetch_cacerts(server).await?;
    let actual = ca_hash(&ca_pem)?;
    match &token.ca_hash {
        Some(expected) if *expected != actual => {
            return Err(Error::CaMismatch {
                expected: expected.clone(),
                actual,
            })
        }
        Some(_) => tracing::info!(server, "server CA matches the join token"),
        // As k3s: a bare secret cannot check the CA; trust it on first use.
        None => tracing::warn!(
            server,
            "the join token carries no CA hash, so the server CA is trusted unchecked; use the full token from the server's token file"
        ),
    }
    let ca_pem = String::from_utf8(ca_pem).map_err(|_| Error::CaFetch {
        url: format!("{server}/cacerts"),
        message: "the CA bundle is not text".into(),
    })?;
    let client = Remote::new(RemoteConfig {
        server: server.to_string(),
        ca_pem,
        client_cert_pem: None,
        client_key_pem: None,
        token: Some(bearer(&token.secret)),
    })?;
    // One cheap authenticated read tells a wrong secret apart at once; a
    // bootstrap token may not read it (403), yet it did authenticate.
    let namespaces = ResourceId::new("", "v1", "namespaces");
    match client.get(&namespaces, None, "kube-node-lease").await {
        Ok(_) => Ok(client),
        Err(e) if e.code() == Some(401) => Err(Error::Unauthorized),
        Err(e) if e.code() == Some(403) => Ok(client),
        Err(e) => Err(e.into()),
    }
}

/// What the agent presents: a bootstrap token as itself, any other secret
/// as `node:<secret>`, as k3s agents do.
fn bearer(secret: &str) -> String {
    match BootstrapToken::parse(secret) {
        Some(t) => t.text(),
        None => format!("node:{secret}"),
    }
}

/// `GET <server>/cacerts` over TLS accepting any server certificate: what
/// comes back is checked against the token's hash before it is used.
pub(super) async fn fetch_cacerts(server: &str) -> Result<Vec<u8>, Error> {
    let url = format!("{server}/cacerts");
    let fail = |message: String| Error::CaFetch {
        url: url.clone(),
        message,
    };
    let uri: Uri = server
        .parse()
        .map_err(|_| Error::ServerUrl(server.to_string()))?;
    let authority = match (uri.scheme_str(), uri.authority()) {
        (Some("https"), Some(a)) => a.clone(),
        _ => return Err(Error::ServerUrl(server.to_string())),
    };
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = authority.port_u16().unwrap_or(443);
    let name =
        ServerName::try_from(host.clone()).map_err(|_| Error::ServerUrl(server.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| fail(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(crate::pki::AnyServerCert(provider)))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let path = format!("{}/cacerts", uri.path().trim_end_matches('/'));
    let exchange = async {
        let tcp = TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| fail(e.to_string()))?;
        let tls = TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .map_err(|e| fail(e.to_string()))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| fail(e.to_string()))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let req = Request::get(path)
            .header(http::header::HOST, authority.as_str())
            .header(http::header::USER_AGENT, "nanokube-agent")
            .body(Empty::<Bytes>::new())
            .map_err(|e| fail(e.to_string()))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| fail(e.to_string()))?;
        let status = resp.status();
        let body = Limited::new(resp.into_body(), MAX_CA_BYTES)
            .collect()
            .await
            .map_err(|e| fail(e.to_string()))?
            .to_bytes();
        if !status.is_success() {
            return Err(fail(format!("the server answered {status}")));
        }
        Ok(body.to_vec())
    };
    tokio::time::timeout(FETCH_TIMEOUT, exchange)
        .await
        .map_err(|_| fail(format!("no answer within {}s", FETCH_TIMEOUT.as_secs())))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_tokens_are_presented_as_themselves() {
        let join = JoinToken::parse(&format!("K10{}::abcdef.0123456789abcdef", "ab".repeat(32)));
        assert_eq!(bearer(&join.unwrap().secret), "abcdef.0123456789abcdef");
        let server = JoinToken::parse(&format!("K10{}::server:s3cret", "ab".repeat(32)));
        assert_eq!(bearer(&server.unwrap().secret), "node:s3cret");
        assert_eq!(
            bearer("abcdef.0123456789ABCDEF"),
            "node:abcdef.0123456789ABCDEF"
        );
    }
}
