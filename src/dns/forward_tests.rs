//! The forwarder against a fake upstream on loopback (real sockets): a
//! UDP answer with TC set is asked again over TCP, the whole answer is
//! cached, and each client gets it as its transport allows.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use hickory_proto::op::{Edns, Message, MessageType, Query};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};

use super::Forwarder;

/// Records in the whole answer: ~3 KB, well over 512 and 1232 bytes.
const RECORDS: u8 = 150;

#[derive(Default)]
struct Counts {
    udp: AtomicUsize,
    tcp: AtomicUsize,
}

/// The whole answer to `q`: RECORDS A records, TTL 60.
fn big_answer(q: &Message) -> Message {
    let mut m = Message::new();
    m.set_id(q.id())
        .set_message_type(MessageType::Response)
        .set_recursion_desired(true)
        .set_recursion_available(true);
    m.add_queries(q.queries().iter().cloned());
    let name = q.queries()[0].name().clone();
    for i in 0..RECORDS {
        let ip = Ipv4Addr::new(192, 0, 2, i);
        m.add_answer(Record::from_rdata(name.clone(), 60, RData::A(A(ip))));
    }
    if let Some(e) = q.extensions() {
        m.set_edns(e.clone());
    }
    m
}

/// A fake upstream on `ip`: UDP answers carry no records and TC set; TCP
/// answers (when `tcp`) are whole. Returns its address and counters.
async fn upstream(ip: Ipv4Addr, tcp: bool) -> (SocketAddr, Arc<Counts>) {
    let udp = UdpSocket::bind((ip, 0)).await.unwrap();
    let addr = udp.local_addr().unwrap();
    let counts = Arc::new(Counts::default());
    let c = counts.clone();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        loop {
            let (n, peer) = udp.recv_from(&mut buf).await.unwrap();
            c.udp.fetch_add(1, Ordering::SeqCst);
            let q = Message::from_vec(&buf[..n]).unwrap();
            let cut = big_answer(&q).truncate();
            udp.send_to(&cut.to_vec().unwrap(), peer).await.unwrap();
        }
    });
    if tcp {
        let listener = TcpListener::bind(addr).await.unwrap();
        let c = counts.clone();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = listener.accept().await.unwrap();
                c.tcp.fetch_add(1, Ordering::SeqCst);
                let n = s.read_u16().await.unwrap();
                let mut buf = vec![0u8; usize::from(n)];
                s.read_exact(&mut buf).await.unwrap();
                let q = Message::from_vec(&buf).unwrap();
                let whole = big_answer(&q).to_vec().unwrap();
                let mut out = u16::try_from(whole.len()).unwrap().to_be_bytes().to_vec();
                out.extend_from_slice(&whole);
                s.write_all(&out).await.unwrap();
            }
        });
    }
    (addr, counts)
}

fn query(id: u16, name: &str, edns: Option<u16>) -> (Message, Vec<u8>) {
    let mut m = Message::new();
    m.set_id(id).set_recursion_desired(true);
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
    if let Some(size) = edns {
        let mut e = Edns::new();
        e.set_max_payload(size);
        m.set_edns(e);
    }
    let raw = m.to_vec().unwrap();
    (m, raw)
}

#[tokio::test]
async fn truncated_udp_answer_is_asked_over_tcp_and_cached_whole() {
    let (addr, counts) = upstream(Ipv4Addr::new(127, 0, 0, 41), true).await;
    let f = Forwarder::new(vec![addr]);

    // A TCP client: the whole answer, fetched over TCP after the TC reply.
    let (q, raw) = query(7, "big.example.", None);
    let b = f.forward(&q, &raw, false).await;
    let m = Message::from_vec(&b).unwrap();
    assert_eq!(m.id(), 7);
    assert!(!m.truncated());
    assert_eq!(m.answers().len(), usize::from(RECORDS));
    assert!(b.len() > 2048, "{} bytes", b.len());
    assert_eq!(counts.udp.load(Ordering::SeqCst), 1);
    assert_eq!(counts.tcp.load(Ordering::SeqCst), 1);

    // A UDP client without EDNS: from the cache, cut to 512 with TC and
    // no OPT, its own id.
    let (q, raw) = query(8, "BIG.example.", None);
    let b = f.forward(&q, &raw, true).await;
    assert!(b.len() <= 512, "{} bytes", b.len());
    let m = Message::from_vec(&b).unwrap();
    assert_eq!(m.id(), 8);
    assert!(m.truncated());
    assert!(m.answers().is_empty());
    assert!(m.extensions().is_none());
    assert_eq!(m.queries().len(), 1);

    // A UDP client with EDNS 1232: still too big, TC with an OPT.
    let (q, raw) = query(9, "big.example.", Some(1232));
    let b = f.forward(&q, &raw, true).await;
    let m = Message::from_vec(&b).unwrap();
    assert!(m.truncated() && m.extensions().is_some(), "{m:?}");

    // A UDP client with EDNS 65000: the whole cached answer.
    let (q, raw) = query(10, "big.example.", Some(65000));
    let b = f.forward(&q, &raw, true).await;
    let m = Message::from_vec(&b).unwrap();
    assert_eq!(m.id(), 10);
    assert!(!m.truncated());
    assert_eq!(m.answers().len(), usize::from(RECORDS));

    // Everything after the first came from the cache.
    assert_eq!(counts.udp.load(Ordering::SeqCst), 1);
    assert_eq!(counts.tcp.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn no_tcp_upstream_leaves_the_answer_truncated_and_uncached() {
    let (addr, counts) = upstream(Ipv4Addr::new(127, 0, 0, 42), false).await;
    let f = Forwarder::new(vec![addr]);
    for id in [1, 2] {
        let (q, raw) = query(id, "big.example.", None);
        let b = f.forward(&q, &raw, false).await;
        let m = Message::from_vec(&b).unwrap();
        assert_eq!(m.id(), id);
        assert!(m.truncated());
        assert!(m.answers().is_empty());
    }
    // Nothing cached: both went upstream.
    assert_eq!(counts.udp.load(Ordering::SeqCst), 2);
}

/// Through the server's door: the UDP path cuts, the TCP path does not.
#[tokio::test]
async fn server_passes_the_transport() {
    use std::sync::RwLock;

    use super::super::index::Index;
    use super::super::server::Server;

    let (addr, _) = upstream(Ipv4Addr::new(127, 0, 0, 43), true).await;
    let s = Server {
        index: Arc::new(RwLock::new(Index::default())),
        domain: "cluster.local".into(),
        forwarder: Forwarder::new(vec![addr]),
    };
    let (_, raw) = query(11, "big.example.", None);
    let tcp = Message::from_vec(&s.respond(&raw, false).await.unwrap()).unwrap();
    assert_eq!(tcp.answers().len(), usize::from(RECORDS));
    let udp = s.respond(&raw, true).await.unwrap();
    assert!(udp.len() <= 512);
    assert!(Message::from_vec(&udp).unwrap().truncated());
}
