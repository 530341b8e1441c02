//! Names outside the cluster go to the node's upstream resolvers, read
//! from resolv.conf (loopback stubs skipped: systemd-resolved's real
//! list is used instead), with a small cache that honours TTLs. A
//! truncated UDP answer is asked again over TCP, so the cache holds whole
//! answers; UDP clients get them cut to their own size (TC set, as for
//! the cluster's own names), TCP clients whole.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hickory_proto::op::{Edns, Message, ResponseCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

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
    /// the client's id, cut to the client's size when it came over UDP;
    /// SERVFAIL when no upstream answers.
    pub async fn forward(&self, query: &Message, raw: &[u8], udp: bool) -> Vec<u8> {
        let answer = self.whole(query, raw).await;
        if udp {
            fit_udp(query, answer)
        } else {
            answer
        }
    }

    /// The whole answer: from the cache, or from the first upstream that
    /// answers (over TCP when its UDP answer was truncated).
    async fn whole(&self, query: &Message, raw: &[u8]) -> Vec<u8> {
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
                Ok((answer, msg)) if msg.truncated() => {
                    match ask_tcp(*server, query.id(), raw).await {
                        Ok((answer, msg)) => {
                            if let Some(k) = key {
                                self.store(k, &answer, &msg);
                            }
                            return answer;
                        }
                        Err(e) => {
                            // The client still sees TC and may try TCP itself.
                            tracing::debug!(%server, error = %e, "upstream dns over tcp failed");
                            return answer;
                        }
                    }
                }
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
    #[error("query too long for tcp")]
    TooLong,
    #[error("answer does not parse or does not match the question")]
    Mismatch,
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
    // Upstreams may send up to the client's EDNS size (at most 64 KiB).
    let mut buf = vec![0u8; usize::from(u16::MAX)];
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

/// One TCP exchange (length-prefixed, RFC 1035 4.2.2) with one upstream
/// server, connection and answer within [`TIMEOUT`].
async fn ask_tcp(server: SocketAddr, id: u16, raw: &[u8]) -> Result<(Vec<u8>, Message), AskError> {
    let len = u16::try_from(raw.len()).map_err(|_| AskError::TooLong)?;
    let exchange = async {
        let mut stream = TcpStream::connect(server).await?;
        let mut out = Vec::with_capacity(raw.len() + 2);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(raw);
        stream.write_all(&out).await?;
        let n = stream.read_u16().await?;
        let mut buf = vec![0u8; usize::from(n)];
        stream.read_exact(&mut buf).await?;
        Ok::<_, AskError>(buf)
    };
    let buf = tokio::time::timeout(TIMEOUT, exchange)
        .await
        .map_err(|_| AskError::Timeout)??;
    match Message::from_vec(&buf) {
        Ok(msg) if msg.id() == id => Ok((buf, msg)),
        _ => Err(AskError::Mismatch),
    }
}

/// `answer` as a UDP client may get it: whole when it fits the client's
/// size (512 or its EDNS size), else header and question with TC set (the
/// client asks again over TCP), like the cluster's own answers.
fn fit_udp(query: &Message, answer: Vec<u8>) -> Vec<u8> {
    if answer.len() <= usize::from(query.max_payload()) {
        return answer;
    }
    let Ok(full) = Message::from_vec(&answer) else {
        return servfail(query);
    };
    let mut cut = full.truncate();
    // An OPT only for a client that sent one (RFC 6891 7).
    if query.extensions().is_none() {
        *cut.extensions_mut() = None;
    } else if cut.extensions().is_none() {
        let mut edns = Edns::new();
        edns.set_max_payload(query.max_payload());
        cut.set_edns(edns);
    }
    cut.to_vec().unwrap_or_else(|_| servfail(query))
}

fn servfail(query: &Message) -> Vec<u8> {
    let mut m = Message::error_msg(query.id(), query.op_code(), ResponseCode::ServFail);
    m.set_recursion_desired(query.recursion_desired());
    m.set_recursion_available(true);
    m.add_queries(query.queries().iter().cloned());
    m.to_vec().unwrap_or_default()
}

#[cfg(test)]
#[path = "forward_tests.rs"]
mod tests;
