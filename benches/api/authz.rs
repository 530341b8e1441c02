//! Authorization's cost on the API benchmark's requests: the same
//! sequential creates and gets (then an unmeasured delete) of ConfigMaps against a server with
//! `--authorization-mode AlwaysAllow` and one with the default `Node,RBAC`,
//! as the admin (group system:masters) and as a user holding `edit` in the
//! namespace through a RoleBinding, one server per configuration. Rounds are interleaved (each round runs
//! every configuration in turn) so load from elsewhere on the machine falls
//! on all of them alike. Client certificates authenticate at the TLS
//! handshake, once per connection, so authentication costs the same in all
//! three; what differs per request is the authorizer.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::client::conn::http2::SendRequest;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::support::{self, connect, ms, percentile, request, start_server, tls_config};

const TARGET: f64 = 1.05;
const ROUND: usize = 50;
const NS: &str = "/api/v1/namespaces/default/configmaps";

/// A client certificate for `user` in `groups`, signed by the server's
/// client CA, as a TLS client configuration.
fn user_tls(server: &support::Server, user: &str, groups: &[&str]) -> Arc<rustls::ClientConfig> {
    let dir = server.data_dir.join("server").join("tls");
    let read = |f: &str| std::fs::read_to_string(dir.join(f)).expect("read client CA");
    let ca_key = rcgen::KeyPair::from_pem(&read("client-ca.key")).expect("client CA key");
    let issuer =
        rcgen::Issuer::from_ca_cert_pem(&read("client-ca.crt"), &ca_key).expect("client CA");
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
    params.distinguished_name = rcgen::DistinguishedName::new();
    for g in groups {
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, *g);
    }
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, user);
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let start = time::OffsetDateTime::now_utc() - time::Duration::minutes(5);
    params.not_before = start;
    params.not_after = start + time::Duration::days(1);
    let cert = params.signed_by(&key, &issuer).expect("sign user cert");

    let mut roots = rustls::RootCertStore::empty();
    let ca = support::kubeconfig_field(&server.kubeconfig, "certificate-authority-data");
    for der in support::pem_blocks(&ca) {
        roots.add(CertificateDer::from(der)).expect("server CA");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("tls versions")
        .with_root_certificates(roots)
        .with_client_auth_cert(
            vec![cert.der().clone()],
            PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .expect("client cert");
    config.alpn_protocols = vec![b"h2".to_vec()];
    Arc::new(config)
}

async fn ready(send: &mut SendRequest<Full<Bytes>>) {
    let start = Instant::now();
    while request(send, "GET", "/readyz", None).await.0 != 200 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "server never ready"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One configuration under test: a connection and what it measured.
struct Case {
    name: &'static str,
    slug: &'static str,
    send: SendRequest<Full<Bytes>>,
    creates: Vec<Duration>,
    gets: Vec<Duration>,
    next: usize,
}

impl Case {
    async fn round(&mut self, ops: usize) {
        for _ in 0..ops {
            let name = format!("authz-{}-{:05}", self.slug, self.next);
            self.next += 1;
            let body = format!(
                r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"{name}","labels":{{"bench":"authz"}}}},"data":{{"key":"value"}}}}"#
            );
            let t = Instant::now();
            let (code, resp) = request(&mut self.send, "POST", NS, Some(body.into_bytes())).await;
            self.creates.push(t.elapsed());
            assert_eq!(
                code,
                201,
                "{}: create: {}",
                self.name,
                String::from_utf8_lossy(&resp)
            );
            let t = Instant::now();
            let (code, _) = request(&mut self.send, "GET", &format!("{NS}/{name}"), None).await;
            self.gets.push(t.elapsed());
            assert_eq!(code, 200, "{}: get", self.name);
            // Every configuration keeps the namespace at the same size.
            let (code, _) = request(&mut self.send, "DELETE", &format!("{NS}/{name}"), None).await;
            assert_eq!(code, 200, "{}: delete", self.name);
        }
    }
}

/// Runs `ops` creates and gets per configuration and prints p50 ratios.
pub async fn overhead(ops: usize) {
    let ops = ops.max(10);
    let allow = start_server(&["--authorization-mode", "AlwaysAllow"]);
    let rbac = start_server(&[]);
    // The editor gets a server of its own: every configuration then writes
    // the same amount to its datastore (WAL growth, checkpoints).
    let rbac2 = start_server(&[]);
    let mut allow_admin = connect(allow.port, tls_config(&allow.kubeconfig)).await;
    let mut rbac_admin = connect(rbac.port, tls_config(&rbac.kubeconfig)).await;
    let mut rbac2_admin = connect(rbac2.port, tls_config(&rbac2.kubeconfig)).await;
    ready(&mut allow_admin).await;
    ready(&mut rbac_admin).await;
    ready(&mut rbac2_admin).await;
    let binding = br#"{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"RoleBinding",
        "metadata":{"name":"bench-editor"},
        "roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"edit"},
        "subjects":[{"apiGroup":"rbac.authorization.k8s.io","kind":"User","name":"bench-editor"}]}"#;
    let (code, body) = request(
        &mut rbac2_admin,
        "POST",
        "/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings",
        Some(binding.to_vec()),
    )
    .await;
    assert_eq!(code, 201, "rolebinding: {}", String::from_utf8_lossy(&body));
    let editor = connect(rbac2.port, user_tls(&rbac2, "bench-editor", &["bench"])).await;
    // Without the binding's namespace the editor is refused: RBAC is on.
    let mut probe = editor.clone();
    let (code, _) = request(
        &mut probe,
        "GET",
        "/api/v1/namespaces/kube-system/configmaps",
        None,
    )
    .await;
    assert_eq!(code, 403, "the editor must not list kube-system");

    let mut cases = [
        Case::new("AlwaysAllow, admin", "allow-admin", allow_admin),
        Case::new("Node,RBAC, admin", "rbac-admin", rbac_admin),
        Case::new("Node,RBAC, editor", "rbac-editor", editor),
    ];
    // Warm-up (connections, caches, the RBAC index), not measured.
    for c in cases.iter_mut() {
        c.round(5).await;
        c.creates.clear();
        c.gets.clear();
    }
    let rounds = ops.div_ceil(ROUND);
    for r in 0..rounds {
        for i in 0..cases.len() {
            let c = &mut cases[(i + r) % 3];
            c.round(ROUND.min(ops)).await;
        }
    }
    println!(
        "authorization overhead: {} sequential creates + gets per configuration, {rounds} interleaved rounds",
        cases[0].creates.len()
    );
    let p50 = |v: &mut Vec<Duration>| {
        v.sort();
        percentile(v, 0.5)
    };
    let base_create = p50(&mut cases[0].creates);
    let base_get = p50(&mut cases[0].gets);
    for (i, c) in cases.iter_mut().enumerate() {
        let (create, get) = (p50(&mut c.creates), p50(&mut c.gets));
        let ratio = |d: Duration, base: Duration| d.as_secs_f64() / base.as_secs_f64().max(1e-9);
        let (rc, rg) = (ratio(create, base_create), ratio(get, base_get));
        let verdict = if i == 0 {
            "baseline".to_string()
        } else if rc <= TARGET && rg <= TARGET {
            format!("target <= {TARGET:.2} ok")
        } else {
            format!("target <= {TARGET:.2} MISSED")
        };
        println!(
            "  {:<20} create p50 {:>9} ({rc:.3})   get p50 {:>9} ({rg:.3})   {verdict}",
            c.name,
            ms(create),
            ms(get)
        );
    }
}

impl Case {
    fn new(name: &'static str, slug: &'static str, send: SendRequest<Full<Bytes>>) -> Case {
        Case {
            name,
            slug,
            send,
            creates: Vec::new(),
            gets: Vec::new(),
            next: 0,
        }
    }
}
