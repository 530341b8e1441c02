//! Cluster DNS from real pods: busybox `nslookup` in a pod asks the
//! in-process DNS at the cluster DNS address for services (ClusterIP,
//! headless, StatefulSet-style hostnames), SRV, PTR, ExternalName, pod
//! names, and for an outside name that goes to a fake upstream resolver
//! on loopback (never a real one). From the host: garbage packets, TCP
//! with several questions on one connection. The DNS link is gone after.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::agent::*;
use hickory_proto::op::{Message, MessageType, Query, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use serde_json::json;

const NS: &str = "default";
const UPSTREAM_NAME: &str = "upstream.test.";
/// A documentation address: only ever an answer, never contacted.
const UPSTREAM_ANSWER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 77);

/// A resolver on loopback answering `upstream.test` A queries.
struct FakeUpstream {
    addr: Ipv4Addr,
    a_queries: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeUpstream {
    fn start() -> FakeUpstream {
        let pid = std::process::id();
        let addr = Ipv4Addr::new(127, 77, (pid >> 8) as u8, (pid as u8).max(2));
        let socket = UdpSocket::bind((addr, 53)).expect("bind the fake upstream on loopback");
        socket
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let a_queries = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (count, halt) = (a_queries.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut buf = [0u8; 2048];
            while !halt.load(Ordering::Relaxed) {
                let Ok((n, peer)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                let Ok(q) = Message::from_vec(&buf[..n]) else {
                    continue;
                };
                let mut m = Message::new();
                m.set_id(q.id())
                    .set_message_type(MessageType::Response)
                    .set_recursion_available(true);
                m.add_queries(q.queries().iter().cloned());
                let question = &q.queries()[0];
                if question
                    .name()
                    .to_ascii()
                    .eq_ignore_ascii_case(UPSTREAM_NAME)
                {
                    if question.query_type() == RecordType::A {
                        count.fetch_add(1, Ordering::SeqCst);
                        m.add_answer(Record::from_rdata(
                            question.name().clone(),
                            60,
                            RData::A(A(UPSTREAM_ANSWER)),
                        ));
                    }
                } else {
                    m.set_response_code(ResponseCode::NXDomain);
                }
                let _ = socket.send_to(&m.to_vec().unwrap(), peer);
            }
        });
        FakeUpstream {
            addr,
            a_queries,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for FakeUpstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn sleeper(name: &str, labels: serde_json::Value, extra: serde_json::Value) -> serde_json::Value {
    let mut spec = json!({
        "containers": [busybox_container("main", "exec sleep 3600")],
        "terminationGracePeriodSeconds": 0,
    });
    if let (Some(s), Some(e)) = (spec.as_object_mut(), extra.as_object()) {
        s.extend(e.clone());
    }
    let mut pod = pod_manifest(NS, name, spec);
    pod["metadata"]["labels"] = labels;
    pod
}

fn service(name: &str, spec: serde_json::Value) -> serde_json::Value {
    json!({"apiVersion": "v1", "kind": "Service",
           "metadata": {"name": name, "namespace": NS}, "spec": spec})
}

/// `nslookup` in the client pod until `want` shows in its output.
fn lookup_until(c: &Cluster, args: &[&str], want: &[&str]) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut cmd = vec!["nslookup"];
    cmd.extend_from_slice(args);
    loop {
        let out = c.exec("default", NS, "client", None, &cmd);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if want.iter().all(|w| text.contains(w)) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "nslookup {args:?}: want {want:?} in:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn query(id: u16, name: &str, t: RecordType) -> Vec<u8> {
    let mut m = Message::new();
    m.set_id(id).set_recursion_desired(true);
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), t));
    m.to_vec().unwrap()
}

fn udp_ask(dns: SocketAddr, packet: &[u8]) -> Option<Message> {
    let s = UdpSocket::bind("0.0.0.0:0").unwrap();
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    s.send_to(packet, dns).unwrap();
    let mut buf = [0u8; 4096];
    let n = s.recv(&mut buf).ok()?;
    Some(Message::from_vec(&buf[..n]).expect("a dns message"))
}

#[test]
fn cluster_dns_from_pods() {
    let upstream = FakeUpstream::start();
    let dir = tempfile::tempdir().unwrap();
    let resolv = dir.path().join("resolv.conf");
    std::fs::write(&resolv, format!("nameserver {}\n", upstream.addr)).unwrap();
    let c = Cluster::start_with(&["--resolv-conf", resolv.to_str().unwrap()]);
    let dns_ip = c.service_cidr.replace(".0.0/16", ".0.10");
    let dns: SocketAddr = format!("{dns_ip}:53").parse().unwrap();

    for i in 0..3 {
        c.apply_json(&sleeper(
            &format!("hl-{i}"),
            json!({"app": "hl"}),
            json!({}),
        ));
    }
    c.apply_json(&sleeper(
        "web-0",
        json!({"app": "web"}),
        json!({"hostname": "web-0", "subdomain": "web"}),
    ));
    c.apply_json(&sleeper("client", json!({"app": "client"}), json!({})));
    c.apply_json(&service(
        "front",
        json!({"selector": {"app": "hl"},
               "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}),
    ));
    c.apply_json(&service(
        "hl",
        json!({"clusterIP": "None", "selector": {"app": "hl"},
               "ports": [{"name": "echo", "port": 8080}]}),
    ));
    c.apply_json(&service(
        "web",
        json!({"clusterIP": "None", "selector": {"app": "web"},
               "ports": [{"name": "http", "port": 80}]}),
    ));
    c.apply_json(&service(
        "ext",
        json!({"type": "ExternalName", "externalName": "upstream.test"}),
    ));
    let mut hl_ips = Vec::new();
    for i in 0..3 {
        let p = c.wait_ready(NS, &format!("hl-{i}"), true, Duration::from_secs(60));
        hl_ips.push(pod_ip(&p).to_string());
    }
    let web0 = pod_ip(&c.wait_ready(NS, "web-0", true, Duration::from_secs(60))).to_string();
    c.wait_ready(NS, "client", true, Duration::from_secs(60));
    let front_ip = c.get("/api/v1/namespaces/default/services/front")["spec"]["clusterIP"]
        .as_str()
        .unwrap()
        .to_string();

    // ClusterIP service, through the pod's own resolv.conf.
    let t0 = Instant::now();
    lookup_until(
        &c,
        &["front.default.svc.cluster.local."],
        &[front_ip.as_str()],
    );
    eprintln!(
        "ClusterIP name resolved from a pod after {:?}",
        t0.elapsed()
    );
    // Short name through the search path.
    lookup_until(&c, &["front"], &[front_ip.as_str()]);
    // Headless: one A per ready endpoint.
    lookup_until(
        &c,
        &["hl.default.svc.cluster.local."],
        &hl_ips.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    // StatefulSet-style hostname.subdomain.
    lookup_until(
        &c,
        &["web-0.web.default.svc.cluster.local."],
        &[web0.as_str()],
    );
    // SRV for a named port, ClusterIP and headless.
    lookup_until(
        &c,
        &["-type=srv", "_http._tcp.front.default.svc.cluster.local."],
        &["80 front.default.svc.cluster.local"],
    );
    lookup_until(
        &c,
        &["-type=srv", "_http._tcp.web.default.svc.cluster.local."],
        &["80 web-0.web.default.svc.cluster.local"],
    );
    // PTR for a service IP and an endpoint IP.
    lookup_until(&c, &[&front_ip], &["front.default.svc.cluster.local"]);
    lookup_until(&c, &[&web0], &["web-0.web.default.svc.cluster.local"]);
    // ExternalName: the CNAME.
    lookup_until(
        &c,
        &["-type=cname", "ext.default.svc.cluster.local."],
        &["upstream.test"],
    );
    // Pod A name.
    let dashed = web0.replace('.', "-");
    lookup_until(
        &c,
        &[&format!("{dashed}.default.pod.cluster.local.")],
        &[web0.as_str()],
    );
    // NXDOMAIN for an unknown service.
    lookup_until(&c, &["nope.default.svc.cluster.local."], &["NXDOMAIN"]);
    // Outside names go to the (fake) upstream, then come from the cache.
    lookup_until(
        &c,
        &[UPSTREAM_NAME],
        &[UPSTREAM_ANSWER.to_string().as_str()],
    );
    let asked = upstream.a_queries.load(Ordering::SeqCst);
    lookup_until(
        &c,
        &[UPSTREAM_NAME],
        &[UPSTREAM_ANSWER.to_string().as_str()],
    );
    assert_eq!(
        upstream.a_queries.load(Ordering::SeqCst),
        asked,
        "a second lookup within the TTL is answered from the cache"
    );

    // From the host: garbage never stops the server.
    let s = UdpSocket::bind("0.0.0.0:0").unwrap();
    for junk in [
        &b""[..],
        &[0u8; 3],
        &[0xffu8; 12],
        &[
            0x12, 0x34, 1, 0, 0, 9, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        ],
    ] {
        s.send_to(junk, dns).unwrap();
    }
    let garbage = {
        let mut g = query(77, "front.default.svc.cluster.local.", RecordType::A);
        g.truncate(g.len() - 3);
        g
    };
    let m = udp_ask(dns, &garbage).expect("FORMERR for a cut query");
    assert_eq!(m.response_code(), ResponseCode::FormErr);
    let m = udp_ask(
        dns,
        &query(78, "front.default.svc.cluster.local.", RecordType::A),
    )
    .expect("an answer after garbage");
    assert_eq!(m.id(), 78);
    assert_eq!(m.answers().len(), 1);
    assert_eq!(m.answers()[0].ttl(), 5);
    let m = udp_ask(
        dns,
        &query(79, "front.default.svc.cluster.local.", RecordType::AAAA),
    )
    .unwrap();
    assert_eq!(m.response_code(), ResponseCode::NoError);
    assert!(
        m.answers().is_empty() && !m.name_servers().is_empty(),
        "{m:?}"
    );

    // TCP: length-prefixed, several questions on one connection.
    let mut tcp = TcpStream::connect_timeout(&dns, Duration::from_secs(2)).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    for id in [1u16, 2, 3] {
        let q = query(id, "hl.default.svc.cluster.local.", RecordType::A);
        tcp.write_all(&(q.len() as u16).to_be_bytes()).unwrap();
        tcp.write_all(&q).unwrap();
        let mut len = [0u8; 2];
        tcp.read_exact(&mut len).unwrap();
        let mut body = vec![0u8; u16::from_be_bytes(len) as usize];
        tcp.read_exact(&mut body).unwrap();
        let m = Message::from_vec(&body).unwrap();
        assert_eq!(m.id(), id);
        assert_eq!(m.answers().len(), 3, "{m:?}");
    }
    drop(tcp);

    let link = format!("nkd{}", c.id);
    c.shutdown();
    let out = std::process::Command::new("ip")
        .args(["-o", "link", "show"])
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains(&link),
        "the dns link {link} is left"
    );
    drop(upstream);
}
