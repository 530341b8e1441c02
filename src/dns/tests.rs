//! Names and answers from a fake index; the wire handling of garbage.

use std::net::Ipv4Addr;
use std::sync::{Arc, RwLock};

use hickory_proto::op::{Message, MessageType, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use serde_json::json;

use super::answer::answer;
use super::forward::{upstreams, Forwarder};
use super::index::Index;
use super::server::{Handled, Server};

const DOMAIN: &str = "cluster.local";

fn index() -> Index {
    let mut ix = Index::default();
    ix.put_service(&json!({
        "metadata": {"namespace": "default", "name": "web"},
        "spec": {"clusterIP": "10.43.0.20", "ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}
    }));
    ix.put_service(&json!({
        "metadata": {"namespace": "default", "name": "db"},
        "spec": {"clusterIP": "None", "ports": [{"name": "pg", "port": 5432}]}
    }));
    ix.put_service(&json!({
        "metadata": {"namespace": "default", "name": "empty"},
        "spec": {"clusterIP": "None"}
    }));
    ix.put_service(&json!({
        "metadata": {"namespace": "default", "name": "ext"},
        "spec": {"type": "ExternalName", "externalName": "example.org."}
    }));
    ix.put_slice(&json!({
        "metadata": {"namespace": "default", "name": "db-abc",
                     "labels": {"kubernetes.io/service-name": "db"}},
        "addressType": "IPv4",
        "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}],
        "endpoints": [
            {"addresses": ["10.42.0.5"], "hostname": "db-0", "conditions": {"ready": true}},
            {"addresses": ["10.42.0.6"], "hostname": "db-1", "conditions": {"ready": true}},
            {"addresses": ["10.42.0.7"], "conditions": {"ready": false}}
        ]
    }));
    ix.put_pod(&json!({
        "metadata": {"namespace": "default", "name": "lonely"},
        "spec": {}, "status": {"podIP": "10.42.0.9"}
    }));
    ix
}

fn ask(ix: &Index, name: &str, t: RecordType) -> Option<super::answer::Reply> {
    answer(ix, DOMAIN, &Name::from_ascii(name).unwrap(), t)
}

fn ips(r: &super::answer::Reply) -> Vec<Ipv4Addr> {
    let mut v: Vec<_> = r
        .answers
        .iter()
        .filter_map(|r| match r.data() {
            RData::A(a) => Some(a.0),
            _ => None,
        })
        .collect();
    v.sort();
    v
}

#[test]
fn cluster_ip_service() {
    let ix = index();
    let r = ask(&ix, "web.default.svc.cluster.local.", RecordType::A).unwrap();
    assert_eq!(r.code, ResponseCode::NoError);
    assert_eq!(ips(&r), vec![Ipv4Addr::new(10, 43, 0, 20)]);
    assert_eq!(r.answers[0].ttl(), 5);
    assert!(r.soa.is_none());
    // Case does not matter.
    let r = ask(&ix, "WEB.Default.svc.Cluster.Local.", RecordType::A).unwrap();
    assert_eq!(ips(&r).len(), 1);
    // IPv4 only: AAAA is NODATA with the SOA.
    let r = ask(&ix, "web.default.svc.cluster.local.", RecordType::AAAA).unwrap();
    assert_eq!(r.code, ResponseCode::NoError);
    assert!(r.answers.is_empty());
    assert!(r.soa.is_some());
}

#[test]
fn negative_answers() {
    let ix = index();
    for name in [
        "nope.default.svc.cluster.local.",
        "web.other.svc.cluster.local.",
        "a.b.c.d.e.f.svc.cluster.local.",
        "empty.default.svc.cluster.local.",
        "zzz.cluster.local.",
    ] {
        let r = ask(&ix, name, RecordType::A).unwrap();
        assert_eq!(r.code, ResponseCode::NXDomain, "{name}");
        assert!(r.soa.is_some(), "{name}");
    }
    for name in [
        "default.svc.cluster.local.",
        "svc.cluster.local.",
        "cluster.local.",
    ] {
        let r = ask(&ix, name, RecordType::A).unwrap();
        assert_eq!(r.code, ResponseCode::NoError, "{name}");
        assert!(r.answers.is_empty() && r.soa.is_some(), "{name}");
    }
    let r = ask(&ix, "cluster.local.", RecordType::SOA).unwrap();
    assert_eq!(r.answers.len(), 1);
}

#[test]
fn headless_and_hostnames() {
    let ix = index();
    let r = ask(&ix, "db.default.svc.cluster.local.", RecordType::A).unwrap();
    assert_eq!(
        ips(&r),
        vec![Ipv4Addr::new(10, 42, 0, 5), Ipv4Addr::new(10, 42, 0, 6)]
    );
    let r = ask(&ix, "db-1.db.default.svc.cluster.local.", RecordType::A).unwrap();
    assert_eq!(ips(&r), vec![Ipv4Addr::new(10, 42, 0, 6)]);
    let r = ask(
        &ix,
        "10-42-0-5.db.default.svc.cluster.local.",
        RecordType::A,
    )
    .unwrap();
    assert_eq!(ips(&r), vec![Ipv4Addr::new(10, 42, 0, 5)]);
    // Not ready: not published.
    let r = ask(
        &ix,
        "10-42-0-7.db.default.svc.cluster.local.",
        RecordType::A,
    )
    .unwrap();
    assert_eq!(r.code, ResponseCode::NXDomain);
    let r = ask(&ix, "db-9.db.default.svc.cluster.local.", RecordType::A).unwrap();
    assert_eq!(r.code, ResponseCode::NXDomain);
}

#[test]
fn srv_records() {
    let ix = index();
    let r = ask(
        &ix,
        "_http._tcp.web.default.svc.cluster.local.",
        RecordType::SRV,
    )
    .unwrap();
    let RData::SRV(srv) = r.answers[0].data() else {
        panic!("{r:?}")
    };
    assert_eq!(srv.port(), 80);
    assert_eq!(srv.target().to_ascii(), "web.default.svc.cluster.local.");
    assert_eq!(r.additionals.len(), 1);
    let r = ask(
        &ix,
        "_pg._tcp.db.default.svc.cluster.local.",
        RecordType::SRV,
    )
    .unwrap();
    let mut targets: Vec<String> = r
        .answers
        .iter()
        .filter_map(|r| match r.data() {
            RData::SRV(s) => Some(s.target().to_ascii()),
            _ => None,
        })
        .collect();
    targets.sort();
    assert_eq!(
        targets,
        vec![
            "db-0.db.default.svc.cluster.local.",
            "db-1.db.default.svc.cluster.local."
        ]
    );
    let r = ask(
        &ix,
        "_http._udp.web.default.svc.cluster.local.",
        RecordType::SRV,
    )
    .unwrap();
    assert_eq!(r.code, ResponseCode::NXDomain);
    // A named port asked for A: the name exists, NODATA.
    let r = ask(
        &ix,
        "_http._tcp.web.default.svc.cluster.local.",
        RecordType::A,
    )
    .unwrap();
    assert_eq!(r.code, ResponseCode::NoError);
    assert!(r.answers.is_empty());
}

#[test]
fn ptr_externalname_pods() {
    let ix = index();
    let ptr = |name: &str| {
        let r = ask(&ix, name, RecordType::PTR)?;
        r.answers.iter().find_map(|r| match r.data() {
            RData::PTR(p) => Some(p.0.to_ascii()),
            _ => None,
        })
    };
    assert_eq!(
        ptr("20.0.43.10.in-addr.arpa.").as_deref(),
        Some("web.default.svc.cluster.local.")
    );
    assert_eq!(
        ptr("5.0.42.10.in-addr.arpa.").as_deref(),
        Some("db-0.db.default.svc.cluster.local.")
    );
    assert_eq!(
        ptr("9.0.42.10.in-addr.arpa.").as_deref(),
        Some("10-42-0-9.default.pod.cluster.local.")
    );
    // Unknown addresses are not ours: forwarded.
    assert!(ask(&ix, "1.2.3.4.in-addr.arpa.", RecordType::PTR).is_none());
    let r = ask(&ix, "ext.default.svc.cluster.local.", RecordType::A).unwrap();
    let RData::CNAME(c) = r.answers[0].data() else {
        panic!("{r:?}")
    };
    assert_eq!(c.0.to_ascii(), "example.org.");
    let r = ask(&ix, "10-42-0-99.default.pod.cluster.local.", RecordType::A).unwrap();
    assert_eq!(ips(&r), vec![Ipv4Addr::new(10, 42, 0, 99)]);
    let r = ask(&ix, "10-42-0.default.pod.cluster.local.", RecordType::A).unwrap();
    assert_eq!(r.code, ResponseCode::NXDomain);
    assert!(ask(&ix, "example.org.", RecordType::A).is_none());
}

#[test]
fn deletes_and_relists() {
    let mut ix = index();
    ix.delete_service(&json!({"metadata": {"namespace": "default", "name": "web"}}));
    let r = ask(&ix, "web.default.svc.cluster.local.", RecordType::A).unwrap();
    assert_eq!(r.code, ResponseCode::NXDomain);
    ix.delete_slice(&json!({"metadata": {"namespace": "default", "name": "db-abc"}}));
    let r = ask(&ix, "db.default.svc.cluster.local.", RecordType::A).unwrap();
    assert_eq!(r.code, ResponseCode::NXDomain);
    ix.set_services(&[]);
    assert_eq!(ix.len(), 0);
    let r = ask(&ix, "default.svc.cluster.local.", RecordType::A).unwrap();
    assert_eq!(r.code, ResponseCode::NXDomain);
}

fn server() -> Server {
    Server {
        index: Arc::new(RwLock::new(index())),
        domain: DOMAIN.into(),
        forwarder: Forwarder::new(Vec::new()),
    }
}

fn query(name: &str, t: RecordType) -> Vec<u8> {
    let mut m = Message::new();
    m.set_id(4242).set_recursion_desired(true);
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), t));
    m.to_vec().unwrap()
}

#[test]
fn wire_answers_and_garbage() {
    let s = server();
    let Handled::Reply(b) = s.handle(
        &query("web.default.svc.cluster.local.", RecordType::A),
        true,
    ) else {
        panic!("no reply")
    };
    let m = Message::from_vec(&b).unwrap();
    assert_eq!(m.id(), 4242);
    assert_eq!(m.message_type(), MessageType::Response);
    assert!(m.authoritative());
    assert_eq!(m.answers().len(), 1);
    assert!(matches!(
        s.handle(&query("example.org.", RecordType::A), true),
        Handled::Forward(_)
    ));
    // Garbage: short packets dropped, headers with junk get FORMERR.
    assert!(matches!(s.handle(&[1, 2, 3], true), Handled::Drop));
    let mut junk = vec![0xab, 0xcd, 0x01, 0x00, 0x00, 0x05];
    junk.extend_from_slice(&[0xff; 40]);
    let Handled::Reply(b) = s.handle(&junk, true) else {
        panic!("no formerr")
    };
    assert_eq!(&b[..2], &[0xab, 0xcd]);
    assert_eq!(b[3] & 0x0f, 1);
    // A response is never answered (no loops).
    let mut resp = query("web.default.svc.cluster.local.", RecordType::A);
    resp[2] |= 0x80;
    assert!(matches!(s.handle(&resp, true), Handled::Drop));
    // Every prefix of a valid query is handled without a panic.
    let q = query("_http._tcp.web.default.svc.cluster.local.", RecordType::SRV);
    for n in 0..q.len() {
        let _ = s.handle(&q[..n], true);
    }
}

#[tokio::test]
async fn no_upstream_is_servfail() {
    let s = server();
    let b = s
        .respond(&query("example.org.", RecordType::A), true)
        .await
        .unwrap();
    let m = Message::from_vec(&b).unwrap();
    assert_eq!(m.response_code(), ResponseCode::ServFail);
    assert_eq!(m.id(), 4242);
}

#[test]
fn resolv_conf_reading() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("resolv.conf");
    std::fs::write(
        &p,
        "search x\nnameserver 127.0.0.1\nnameserver 192.0.2.1\nnameserver fe80::1%eth0\n",
    )
    .unwrap();
    let got = upstreams(&p, false);
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|a| !a.ip().is_loopback() && a.port() == 53));
    let got = upstreams(&p, true);
    assert_eq!(got.len(), 3);
}
