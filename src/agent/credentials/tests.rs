//! The agent side against nanokube's own API server in process (real PKI,
//! join token, Node and RBAC authorization): obtain with the token, reuse
//! without it, renew with the client certificate, and the refusals.

use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use super::*;
use crate::api::authz::Mode;
use crate::api::{Api, ServiceNetwork};
use crate::apiserver::authn::Authn;
use crate::apiserver::{Join, NodeIssuer, Server};
use crate::pki::JoinToken;

struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    server: String,
    token: String,
    ca_pem: Vec<u8>,
    cluster: ClusterInfo,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let db =
        crate::datastore::SqliteBackend::open(&root.join("state.db"), Default::default()).unwrap();
    let api = Api::open(db, ServiceNetwork::parse("10.43.0.0/16").unwrap())
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    api.bootstrap([127, 0, 0, 1].into(), port).await.unwrap();
    api.set_authorization_modes(vec![
        Mode::parse("Node").unwrap(),
        Mode::parse("RBAC").unwrap(),
    ]);
    let loopback: IpAddr = [127, 0, 0, 1].into();
    let names = crate::pki::serving_names(
        "testhost",
        &[loopback],
        &[],
        "cluster.local",
        "10.43.0.0/16",
    )
    .unwrap();
    let server_dir = root.join("server");
    let pki = crate::pki::ensure(&crate::pki::tls_dir(&root), &names).unwrap();
    let ca_pem = std::fs::read(pki.server_ca_cert()).unwrap();
    let secret = "s3cret".to_string();
    let token = JoinToken::format(&ca_pem, &secret).unwrap();
    let authn = Authn {
        join: Join::new(secret, None, ca_pem.clone().into(), server_dir),
        ..Default::default()
    };
    let cluster = ClusterInfo {
        cluster_cidr: "10.42.0.0/16".into(),
        service_cidr: "10.43.0.0/16".into(),
        cluster_dns: Some([10, 43, 0, 10].into()),
        cluster_domain: "cluster.local".into(),
        flannel_backend: "vxlan".into(),
    };
    let tls = pki.server_config().unwrap();
    let server = Server::build(
        api,
        format!("127.0.0.1:{port}"),
        authn,
        Default::default(),
        None,
    );
    server.set_node_issuer(NodeIssuer {
        pki,
        cluster: cluster.clone(),
        reserved: vec!["server-node".into()],
    });
    tokio::spawn(crate::apiserver::serve(
        server,
        tls,
        listener,
        futures::future::pending::<()>(),
    ));
    Fixture {
        _dir: dir,
        root,
        server: format!("https://127.0.0.1:{port}"),
        token,
        ca_pem,
        cluster,
    }
}

impl Fixture {
    fn request<'a>(
        &'a self,
        agent_dir: &'a Path,
        token: Option<&'a str>,
        node: &'a str,
        addresses: &'a [IpAddr],
    ) -> Request<'a> {
        Request {
            server: &self.server,
            token,
            node_name: node,
            addresses,
            agent_dir,
        }
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn obtains_reuses_renews_and_is_refused_clearly() {
    let f = fixture().await;
    let agent = f.root.join("a1").join("agent");
    let addrs: Vec<IpAddr> = vec!["10.0.0.5".parse().unwrap()];

    // First join: with the token.
    let creds = load_or_obtain(f.request(&agent, Some(&f.token), "n1", &addrs))
        .await
        .unwrap();
    assert_eq!(creds.cluster, f.cluster);
    assert_eq!(creds.server_ca_pem.as_bytes(), &f.ca_pem[..]);
    let client = store::cert_info(&creds.kubelet_client.cert_pem).unwrap();
    assert_eq!(client.common_name, "system:node:n1");
    let serving = store::cert_info(&creds.kubelet_serving.cert_pem).unwrap();
    assert!(serving.ips.contains(&addrs[0]) && serving.dns.contains("n1"));
    let dir = store::dir(&agent);
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&agent.join("node-password")), 0o600);
    for key in [
        "kubelet-client.key",
        "kubelet-serving.key",
        "proxy-client.key",
    ] {
        assert_eq!(mode(&dir.join(key)), 0o600, "{key}");
    }

    // Restart without the token: the stored ones, untouched.
    let again = load_or_obtain(f.request(&agent, None, "n1", &addrs))
        .await
        .unwrap();
    assert_eq!(again.kubelet_client.cert_pem, creds.kubelet_client.cert_pem);

    // A new address: renewed with the client certificate, no token.
    let more: Vec<IpAddr> = vec![addrs[0], "10.0.0.6".parse().unwrap()];
    let renewed = load_or_obtain(f.request(&agent, None, "n1", &more))
        .await
        .unwrap();
    assert_ne!(renewed.kubelet_client.key_pem, creds.kubelet_client.key_pem);
    let serving = store::cert_info(&renewed.kubelet_serving.cert_pem).unwrap();
    assert!(serving.ips.contains(&more[1]));

    // The background task's renewal, stored for the next start.
    let r = Renewal {
        server: f.server.clone(),
        node_name: "n1".into(),
        addresses: more.clone(),
        agent_dir: agent.clone(),
    };
    let third = background::renew_now(&r, &renewed).await.unwrap();
    assert_ne!(
        third.kubelet_client.cert_pem,
        renewed.kubelet_client.cert_pem
    );
    let stored = store::load(&dir).unwrap().unwrap();
    assert_eq!(
        stored.kubelet_client.cert_pem,
        third.kubelet_client.cert_pem
    );

    // Another machine under the same name: refused with the reason.
    let other = f.root.join("a2").join("agent");
    let e = load_or_obtain(f.request(&other, Some(&f.token), "n1", &addrs))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::Refused(m) if m.contains("already joined with another password")),
        "{e}"
    );

    // The server's own node's name.
    let e = load_or_obtain(f.request(&other, Some(&f.token), "server-node", &addrs))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::Refused(m) if m.contains("the server's own node")),
        "{e}"
    );

    // No token and nothing stored.
    let fresh = f.root.join("a3").join("agent");
    let e = load_or_obtain(f.request(&fresh, None, "n3", &addrs))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::NotJoined(_)), "{e}");
    assert!(e.to_string().contains("pass --token"), "{e}");

    // A wrong secret, and a CA hash that is not the server's.
    let wrong = JoinToken::format(&f.ca_pem, "nope").unwrap();
    let e = load_or_obtain(f.request(&fresh, Some(&wrong), "n3", &addrs))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Unauthorized), "{e}");
    let forged = format!("K10{}::server:s3cret", "ab".repeat(32));
    let e = load_or_obtain(f.request(&fresh, Some(&forged), "n3", &addrs))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::CaMismatch { .. }), "{e}");
    assert!(e.to_string().contains("man-in-the-middle"), "{e}");
}
