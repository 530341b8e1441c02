//! Names outside the cluster go to the node's upstream resolvers, read
//! from resolv.conf (loopback stubs skipped: systemd-resolved's real
//! list is used instead), with a small cache that honours TTLs.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, ResponseCode};
use tokio::net::UdpSocket;

/// Per upstream server and attempt.
const TIMEOUT: Duration = Duration::from_secs(2);
const CACHE_ENTRIES: usize = 10_000;
/// Upper bound on cached answers' life, and the life of negative ones.
const MAX_TTL: u32 = 30;
const NEGATIVE_TTL: u32 = 5;
const SYSTEMD_RESOLV: &str = "/run/systemd/resolve/resolv.conf";

/// (lower-case name, type, class).
type Key = (String, u16, u16);

pub(crate) struct Forwarder {
    upstreams: Vec<SocketAddr>,
    /// Answers as sent by the upstream, until they expire.
    cache: Mutex<HashMap<Key, (Vec<u8>, Instant)>>,
}

/// The nameservers a resolv.conf lists. Loopback stubs of the system
/// file are skipped (systemd-resolved's 127.0.0.53 sends us to its real
/// upstream file); a file named with `--resolv-conf` is taken as it is
/// (tests run a fake upstream on loopback).
pub(crate) fn upstreams(path: &Path, explicit: bool) -> Vec<SocketAddr> {
    let read = |p: &Path| -> Vec<IpAddr> {
        std::fs::read_to_string(p)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| {
                let mut words = l.split_whitespace();
                (words.next() == Some("nameserver"))
                    .then(|| words.next()?.split('%').next()?.parse().ok())
                    .flatten()
            })
            .collect()
    };
    let mut servers = read(path);
    if !explicit && servers.contains(&IpAddr::from([127, 0, 0, 53])) {
        servers = read(Path::new(SYSTEMD_RESOLV));
    }
    servers
        .into_iter()
        .filter(|s| explicit || !s.is_loopback())
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

impl Forwarder {
    pub fn new(upstreams: Vec<SocketAddr>) -> Self {
        Forwarder {
            upstreams,
            cache: Mutex::new(HashMap::new()),
        }
    }

    pub fn upstreams(&self) -> &[SocketAddr] {
        &self.upstreams
    }

    /// The upstream answer to `query` (already parsed from `raw`), with
    /// the client's id; SERVFAIL when no upstream answers.
    pub async fn forward(&self, query: &Message, raw: &[u8]) -> Vec<u8> {
        let key = query.queries().first().map(|q| {
            let mut name = q.name().to_ascii();
            name.make_ascii_lowercase();
            (name, u16::from(q.query_type()), u16::from(q.query_class()))
        });
        if let Some(k) = &key {
            if let Some(mut hit) = self.cached(k) {
                if hit.len() >= 2 {
                    hit[..2].copy_from_slice(&query.id().to_be_bytes());
                }
                return hit;
            }
        }
        for server in &self.upstreams {
            match ask(*server, query.id(), raw).await {
                Ok((answer, msg)) => {
                    if let Some(k) = key {
                        self.store(k, &answer, &msg);
                    }
                    return answer;
                }
                Err(e) => tracing::debug!(%server, error = %e, "upstream dns failed"),
            }
        }
        servfail(query)
    }

    fn cached(&self, key: &Key) -> Option<Vec<u8>> {
        let cache = self.cache.lock().ok()?;
        let (bytes, until) = cache.get(key)?;
        (Instant::now() < *until).then(|| bytes.clone())
    }

    fn store(&self, key: Key, answer: &[u8], msg: &Message) {
        if msg.truncated() {
            return;
        }
        let ttl = match msg.response_code() {
            ResponseCode::NoError if !msg.answers().is_empty() => {
                msg.answers().iter().map(|r| r.ttl()).min().unwrap_or(0)
            }
            ResponseCode::NoError | ResponseCode::NXDomain => NEGATIVE_TTL,
            _ => return,
        }
        .min(MAX_TTL);
        if ttl == 0 {
            return;
        }
        let Ok(mut cache) = self.cache.lock() else {
            return;
        };
        if cache.len() >= CACHE_ENTRIES {
            let now = Instant::now();
            cache.retain(|_, (_, until)| *until > now);
            if cache.len() >= CACHE_ENTRIES {
                cache.clear();
            }
        }
        let until = Instant::now() + Duration::from_secs(u64::from(ttl));
        cache.insert(key, (answer.to_vec(), until));
    }
}

#[derive(Debug, thiserror::Error)]
enum AskError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("timed out")]
    Timeout,
}

/// One UDP exchange with one upstream server; answers that do not match
/// the question's id are dropped (spoofing, stale replies).
async fn ask(server: SocketAddr, id: u16, raw: &[u8]) -> Result<(Vec<u8>, Message), AskError> {
    let bind: SocketAddr = if server.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(bind).await?;
    socket.connect(server).await?;
    socket.send(raw).await?;
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    let mut buf = vec![0u8; 4096];
    loop {
        let n = tokio::time::timeout_at(deadline, socket.recv(&mut buf))
            .await
            .map_err(|_| AskError::Timeout)??;
        if let Ok(msg) = Message::from_vec(&buf[..n]) {
            if msg.id() == id {
                buf.truncate(n);
                return Ok((buf, msg));
            }
        }
    }
}

fn servfail(query: &Message) -> Vec<u8> {
    let mut m = Message::error_msg(query.id(), query.op_code(), ResponseCode::ServFail);
    m.set_recursion_desired(query.recursion_desired());
    m.set_recursion_available(true);
    m.add_queries(query.queries().iter().cloned());
    m.to_vec().unwrap_or_default()
}
