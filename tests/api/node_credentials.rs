//! Node credentials against a real server: a joining node obtains its
//! certificates with the join token at `POST /nanokube/v1/node-credentials`
//! (keys made here, only requests sent), the kubelet certificate is
//! `system:node:<name>` and may do what a kubelet does (Node authorizer and
//! system:node rules, checked with real kubectl), the proxy certificate is
//! `system:kube-proxy` and may read what the service proxy and the DNS read;
//! a second machine under the same name is refused, the node renews with
//! its own certificate, and bad tokens, bad requests and other users are
//! refused with the right codes.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::common::users::kubectl_with;
use crate::common::*;
use base64::Engine;
use rcgen::{CertificateParams, DnType, KeyPair};
use serde_json::{json, Value};

const PATH: &str = "/nanokube/v1/node-credentials";
const KUBECTL: &str = "1.33";

/// A key and its PEM certificate signing request.
fn csr(cn: &str) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let mut p = CertificateParams::default();
    p.distinguished_name.push(DnType::CommonName, cn);
    let csr = p.serialize_request(&key).unwrap().pem().unwrap();
    (key.serialize_pem(), csr)
}

/// The request body for `node` with `password`, and the three keys.
fn ask(node: &str, password: &str) -> (Value, [String; 3]) {
    let (k1, c1) = csr("a");
    let (k2, c2) = csr("b");
    let (k3, c3) = csr("c");
    let body = json!({
        "nodeName": node, "nodePassword": password, "addresses": ["127.0.0.1", "10.9.0.7"],
        "kubeletClientCsr": c1, "kubeletServingCsr": c2, "proxyClientCsr": c3,
    });
    (body, [k1, k2, k3])
}

enum As<'a> {
    Token(&'a str),
    Cert { cert: &'a Path, key: &'a Path },
    Admin,
}

fn post(p: &Proc, who: As<'_>, body: &[u8]) -> HttpReply {
    let mut args: Vec<String> = vec!["-H".into(), "Content-Type: application/json".into()];
    match who {
        As::Token(t) => args.extend(["-H".into(), format!("Authorization: Bearer {t}")]),
        As::Cert { cert, key } => args.extend([
            "--cert".into(),
            cert.display().to_string(),
            "--key".into(),
            key.display().to_string(),
        ]),
        As::Admin => {}
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    p.curl(matches!(who, As::Admin), "POST", PATH, Some(body), &args)
}

fn token(p: &Proc) -> String {
    std::fs::read_to_string(p.data_dir.join("server").join("token"))
        .unwrap()
        .trim()
        .to_string()
}

/// Files and a kubeconfig for one certificate of the answer.
struct Identity {
    cert: PathBuf,
    key: PathBuf,
    kubeconfig: PathBuf,
}

fn identity(p: &Proc, name: &str, cert_pem: &str, key_pem: &str, ca_pem: &str) -> Identity {
    let dir = p.data_dir.with_file_name(format!("id-{name}"));
    std::fs::create_dir_all(&dir).unwrap();
    let cert = dir.join("tls.crt");
    let key = dir.join("tls.key");
    std::fs::write(&cert, cert_pem).unwrap();
    std::fs::write(&key, key_pem).unwrap();
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s.as_bytes());
    let cfg = json!({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": p.api_url(),
                      "certificate-authority-data": b64(ca_pem)}}],
        "users": [{"name": "u", "user": {"client-certificate-data": b64(cert_pem),
                   "client-key-data": b64(key_pem)}}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "x",
    });
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(&kubeconfig, serde_json::to_vec(&cfg).unwrap()).unwrap();
    Identity {
        cert,
        key,
        kubeconfig,
    }
}

fn whoami(p: &Proc, id: &Identity) -> Value {
    let (ok, out) = kubectl_with(
        p,
        KUBECTL,
        &id.kubeconfig,
        &["auth", "whoami", "-o", "json"],
    );
    assert!(ok, "{out}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// `kubectl auth can-i` as `id`, polled until it says `want` (the Node
/// authorizer's graph follows pods asynchronously).
fn can_i(p: &Proc, id: &Identity, args: &[&str], want: bool) {
    let mut all = vec!["auth", "can-i"];
    all.extend_from_slice(args);
    let mut last = String::new();
    let ok = poll_until(Duration::from_secs(10), Duration::from_millis(200), || {
        let (_, out) = kubectl_with(p, KUBECTL, &id.kubeconfig, &all);
        last = out;
        last.trim().starts_with(if want { "yes" } else { "no" })
    });
    assert!(ok, "can-i {args:?}: wanted {want}, got {last}");
}

/// A merge patch of `path` as `id` (kubectl would GET the status first,
/// which the kubelet never does).
fn patch_as(p: &Proc, id: &Identity, path: &str, patch: &str) -> HttpReply {
    let (cert, key) = (id.cert.display().to_string(), id.key.display().to_string());
    let args = [
        "--cert",
        &cert,
        "--key",
        &key,
        "-H",
        "Content-Type: application/merge-patch+json",
    ];
    p.curl(false, "PATCH", path, Some(patch.as_bytes()), &args)
}

/// `kubectl <args>` as `id`, which must succeed.
fn as_ok(p: &Proc, id: &Identity, args: &[&str]) -> String {
    let (ok, out) = kubectl_with(p, KUBECTL, &id.kubeconfig, args);
    assert!(ok, "kubectl {args:?}: {out}");
    out
}

#[test]
fn join_token_obtains_node_credentials_that_act_as_the_node() {
    let p = Proc::server();
    let token = token(&p);
    let (body, keys) = ask("n1", "pw-one");
    let r = post(&p, As::Token(&token), body.to_string().as_bytes());
    assert_eq!(r.status, 200, "{}", r.body);
    let answer = r.json();
    let cluster = &answer["cluster"];
    assert_eq!(cluster["clusterCidr"], "10.42.0.0/16", "{answer}");
    assert_eq!(cluster["serviceCidr"], "10.43.0.0/16");
    assert_eq!(cluster["clusterDns"], "10.43.0.10");
    assert_eq!(cluster["clusterDomain"], "cluster.local");
    assert_eq!(cluster["flannelBackend"], "vxlan");
    let server_ca = answer["serverCa"].as_str().unwrap();
    let on_disk = std::fs::read_to_string(p.data_dir.join("server/tls/server-ca.crt")).unwrap();
    assert_eq!(server_ca, on_disk);
    let secret = p.kubectl(KUBECTL).json(&[
        "get",
        "secret",
        "-n",
        "kube-system",
        "n1.node-password.nanokube",
        "-o",
        "json",
    ]);
    assert_eq!(secret["type"], "nanokube.io/node-password");
    let hash = String::from_utf8(base64_decode(secret["data"]["hash"].as_str().unwrap())).unwrap();
    assert!(
        hash.starts_with("sha256:") && !hash.contains("pw-one"),
        "{hash}"
    );

    // The kubelet's certificate is the node.
    let kubelet = identity(
        &p,
        "kubelet",
        answer["kubeletClientCert"].as_str().unwrap(),
        &keys[0],
        server_ca,
    );
    let me = whoami(&p, &kubelet);
    assert_eq!(
        me["status"]["userInfo"]["username"], "system:node:n1",
        "{me}"
    );
    let groups = me["status"]["userInfo"]["groups"].to_string();
    assert!(groups.contains("system:nodes"), "{groups}");

    // What the kubelet does: register its Node, its Lease, status, events.
    let node = json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"}});
    let node_file = p.data_dir.with_file_name("node.json");
    std::fs::write(&node_file, node.to_string()).unwrap();
    as_ok(&p, &kubelet, &["create", "-f", node_file.to_str().unwrap()]);
    let lease = json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "n1", "namespace": "kube-node-lease"},
        "spec": {"holderIdentity": "n1", "leaseDurationSeconds": 40}});
    let lease_file = p.data_dir.with_file_name("lease.json");
    std::fs::write(&lease_file, lease.to_string()).unwrap();
    as_ok(
        &p,
        &kubelet,
        &["create", "-f", lease_file.to_str().unwrap()],
    );
    let r = patch_as(
        &p,
        &kubelet,
        "/api/v1/nodes/n1/status",
        r#"{"status":{"conditions":[{"type":"Ready","status":"True","reason":"KubeletReady","message":"ok"}]}}"#,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    // Another node's status is not its to write (NodeRestriction).
    p.kubectl(KUBECTL)
        .create_yaml(r#"{"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n2"}}"#);
    let r = patch_as(
        &p,
        &kubelet,
        "/api/v1/nodes/n2/status",
        r#"{"status":{"conditions":[{"type":"Ready","status":"True","reason":"KubeletReady","message":"ok"}]}}"#,
    );
    assert_eq!(r.status, 403, "{}", r.body);
    can_i(&p, &kubelet, &["create", "events", "-n", "default"], true);
    can_i(&p, &kubelet, &["watch", "pods", "-A"], true);
    can_i(&p, &kubelet, &["list", "services", "-A"], true);
    can_i(
        &p,
        &kubelet,
        &["update", "leases/n1", "-n", "kube-node-lease"],
        true,
    );
    can_i(
        &p,
        &kubelet,
        &["update", "leases/n2", "-n", "kube-node-lease"],
        false,
    );
    can_i(&p, &kubelet, &["create", "clusterroles"], false);

    // A pod bound to n1 opens its secret, configmap and service account
    // token to the node; another secret stays closed.
    let admin = p.kubectl(KUBECTL);
    admin.ok(&["create", "secret", "generic", "mine", "--from-literal=a=b"]);
    admin.ok(&["create", "secret", "generic", "other", "--from-literal=a=b"]);
    admin.ok(&["create", "configmap", "cm", "--from-literal=a=b"]);
    admin.create_yaml(
        r#"{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p1", "namespace": "default"},
 "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "busybox",
   "envFrom": [{"secretRef": {"name": "mine"}}, {"configMapRef": {"name": "cm"}}]}]}}"#,
    );
    can_i(&p, &kubelet, &["get", "secrets/mine"], true);
    can_i(&p, &kubelet, &["get", "configmaps/cm"], true);
    can_i(&p, &kubelet, &["get", "secrets/other"], false);
    as_ok(&p, &kubelet, &["get", "secret", "mine", "-o", "name"]);
    let uid = admin.json(&["get", "pod", "p1", "-o", "json"])["metadata"]["uid"]
        .as_str()
        .unwrap()
        .to_string();
    let uid_flag = format!("--bound-object-uid={uid}");
    as_ok(
        &p,
        &kubelet,
        &[
            "create",
            "token",
            "default",
            "--bound-object-kind=Pod",
            "--bound-object-name=p1",
            &uid_flag,
        ],
    );
    let r = patch_as(
        &p,
        &kubelet,
        "/api/v1/namespaces/default/pods/p1/status",
        r#"{"status":{"phase":"Running"}}"#,
    );
    assert_eq!(r.status, 200, "{}", r.body);

    // The proxy certificate is system:kube-proxy and reads what the
    // service proxy and the cluster DNS follow.
    let proxy = identity(
        &p,
        "proxy",
        answer["proxyClientCert"].as_str().unwrap(),
        &keys[2],
        server_ca,
    );
    assert_eq!(
        whoami(&p, &proxy)["status"]["userInfo"]["username"],
        "system:kube-proxy"
    );
    for what in [
        "services",
        "endpoints",
        "endpointslices.discovery.k8s.io",
        "pods",
        "namespaces",
        "nodes",
    ] {
        can_i(&p, &proxy, &["watch", what, "-A"], true);
        can_i(&p, &proxy, &["list", what, "-A"], true);
    }
    can_i(&p, &proxy, &["get", "secrets", "-A"], false);

    // A second machine under the same name, with another password.
    let (other, _) = ask("n1", "pw-two");
    let r = post(&p, As::Token(&token), other.to_string().as_bytes());
    assert_eq!(r.status, 403, "{}", r.body);
    let msg = r.json()["message"].as_str().unwrap().to_string();
    assert!(
        msg.contains("node n1 is already joined with another password")
            && msg.contains("delete the Node or the Secret to re-join"),
        "{msg}"
    );

    // Renewal with the node's own certificate (and its password).
    let (again, new_keys) = ask("n1", "pw-one");
    let own = As::Cert {
        cert: &kubelet.cert,
        key: &kubelet.key,
    };
    let r = post(&p, own, again.to_string().as_bytes());
    assert_eq!(r.status, 200, "{}", r.body);
    let renewed = identity(
        &p,
        "renewed",
        r.json()["kubeletClientCert"].as_str().unwrap(),
        &new_keys[0],
        server_ca,
    );
    assert_eq!(
        whoami(&p, &renewed)["status"]["userInfo"]["username"],
        "system:node:n1"
    );
    // A node cannot obtain another node's credentials.
    let (theirs, _) = ask("n2", "pw-one");
    let own = As::Cert {
        cert: &kubelet.cert,
        key: &kubelet.key,
    };
    let r = post(&p, own, theirs.to_string().as_bytes());
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("system:node:n1"), "{}", r.body);
    // Nor can an admin, nor the proxy.
    let (fresh, _) = ask("n3", "pw");
    let r = post(&p, As::Admin, fresh.to_string().as_bytes());
    assert_eq!(r.status, 403, "{}", r.body);
    let by_proxy = As::Cert {
        cert: &proxy.cert,
        key: &proxy.key,
    };
    assert_eq!(post(&p, by_proxy, fresh.to_string().as_bytes()).status, 403);

    // Bad token: 401. Bad requests: 400.
    let r = post(
        &p,
        As::Token("K10::server:wrong"),
        fresh.to_string().as_bytes(),
    );
    assert_eq!(r.status, 401, "{}", r.body);
    let mut bad = fresh.clone();
    bad["kubeletServingCsr"] =
        json!("-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n");
    let r = post(&p, As::Token(&token), bad.to_string().as_bytes());
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(
        r.body
            .contains("kubelet serving certificate signing request"),
        "{}",
        r.body
    );
    let r = post(&p, As::Token(&token), b"{not json");
    assert_eq!(r.status, 400, "{}", r.body);
    let mut bad = fresh.clone();
    bad["nodeName"] = json!("Bad_Name");
    let r = post(&p, As::Token(&token), bad.to_string().as_bytes());
    assert_eq!(r.status, 400, "{}", r.body);
    // A failed request stored nothing for n3.
    let out = admin.run(&[
        "get",
        "secret",
        "-n",
        "kube-system",
        "n3.node-password.nanokube",
    ]);
    assert!(
        !out.status.success(),
        "n3's password was stored by a refused request"
    );

    // A bootstrap token (group system:bootstrappers) may join a node.
    admin.ok(&[
        "create",
        "secret",
        "generic",
        "bootstrap-token-abcdef",
        "-n",
        "kube-system",
        "--type=bootstrap.kubernetes.io/token",
        "--from-literal=token-id=abcdef",
        "--from-literal=token-secret=0123456789abcdef",
        "--from-literal=usage-bootstrap-authentication=true",
    ]);
    let (boot, _) = ask("n5", "pw-five");
    let r = post(
        &p,
        As::Token("abcdef.0123456789abcdef"),
        boot.to_string().as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.body);

    // Deleting the Secret frees the name.
    admin.ok(&[
        "delete",
        "secret",
        "-n",
        "kube-system",
        "n1.node-password.nanokube",
    ]);
    let r = post(&p, As::Token(&token), other.to_string().as_bytes());
    assert_eq!(r.status, 200, "{}", r.body);
}

#[test]
fn deleting_the_node_frees_its_name_after_the_join_grace() {
    let p = Proc::server();
    let token = token(&p);
    let (first, _) = ask("n9", "first");
    assert_eq!(
        post(&p, As::Token(&token), first.to_string().as_bytes()).status,
        200
    );
    let admin = p.kubectl(KUBECTL);
    admin.create_yaml(r#"{"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n9"}}"#);
    let (second, _) = ask("n9", "second");
    // Refused while the Node exists, however old the join.
    assert_eq!(
        post(&p, As::Token(&token), second.to_string().as_bytes()).status,
        403
    );
    admin.ok(&["delete", "node", "n9"]);
    // Right after the first join the name stays its own (a join in
    // progress has no Node yet); past the 60 s grace it is free.
    assert_eq!(
        post(&p, As::Token(&token), second.to_string().as_bytes()).status,
        403
    );
    let freed = poll_until(Duration::from_secs(90), Duration::from_secs(2), || {
        post(&p, As::Token(&token), second.to_string().as_bytes()).status == 200
    });
    assert!(freed, "the name of a deleted node stayed taken");
    // The new machine's password is the one kept now.
    assert_eq!(
        post(&p, As::Token(&token), first.to_string().as_bytes()).status,
        403
    );
}
