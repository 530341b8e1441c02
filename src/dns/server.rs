//! The wire side: one question per message, answered from the index or
//! forwarded; UDP with truncation, TCP with length prefixes, several
//! questions per connection and an idle timeout. Garbage gets FORMERR
//! (or nothing when not even a header), never a panic or a stall.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, ResponseCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::Semaphore;

use super::answer::answer;
use super::forward::Forwarder;
use super::index::Index;

const TCP_IDLE: Duration = Duration::from_secs(10);
const TCP_CONNECTIONS: usize = 256;
const EDNS_PAYLOAD: u16 = 1232;

pub(crate) struct Server {
    pub index: Arc<RwLock<Index>>,
    /// Lower case, no trailing dot.
    pub domain: String,
    pub forwarder: Forwarder,
}

pub(crate) enum Handled {
    Reply(Vec<u8>),
    Forward(Box<Message>),
    Drop,
}

impl Server {
    /// Answers what the cluster knows at once; other names are handed back
    /// to be forwarded off the receive loop.
    pub fn handle(&self, raw: &[u8], udp: bool) -> Handled {
        let query = match Message::from_vec(raw) {
            Ok(q) => q,
            Err(_) => return formerr(raw).map_or(Handled::Drop, Handled::Reply),
        };
        if query.message_type() != MessageType::Query {
            return Handled::Drop;
        }
        if query.op_code() != OpCode::Query {
            return Handled::Reply(error(&query, ResponseCode::NotImp));
        }
        let [q] = query.queries() else {
            return Handled::Reply(error(&query, ResponseCode::FormErr));
        };
        let reply = {
            let Ok(index) = self.index.read() else {
                return Handled::Reply(error(&query, ResponseCode::ServFail));
            };
            answer(&index, &self.domain, q.name(), q.query_type())
        };
        let Some(reply) = reply else {
            return Handled::Forward(Box::new(query));
        };
        let mut m = response(&query, reply.code);
        m.set_authoritative(true);
        m.add_answers(reply.answers);
        m.add_additionals(reply.additionals);
        m.add_name_servers(reply.soa);
        let limit = if udp {
            query.max_payload().max(512) as usize
        } else {
            usize::from(u16::MAX)
        };
        match m.to_vec() {
            Ok(bytes) if bytes.len() <= limit => Handled::Reply(bytes),
            Ok(_) => {
                // Too big for UDP: the client asks again over TCP.
                let mut t = response(&query, reply.code);
                t.set_authoritative(true);
                t.set_truncated(true);
                Handled::Reply(t.to_vec().unwrap_or_default())
            }
            Err(_) => Handled::Reply(error(&query, ResponseCode::ServFail)),
        }
    }

    pub async fn respond(&self, raw: &[u8], udp: bool) -> Option<Vec<u8>> {
        match self.handle(raw, udp) {
            Handled::Reply(b) => Some(b),
            Handled::Forward(q) => Some(self.forwarder.forward(&q, raw, udp).await),
            Handled::Drop => None,
        }
    }
}

fn response(query: &Message, code: ResponseCode) -> Message {
    let mut m = Message::new();
    m.set_id(query.id())
        .set_message_type(MessageType::Response)
        .set_op_code(query.op_code())
        .set_recursion_desired(query.recursion_desired())
        .set_recursion_available(true)
        .set_checking_disabled(query.checking_disabled())
        .set_response_code(code);
    m.add_queries(query.queries().iter().cloned());
    if query.extensions().is_some() {
        let mut edns = Edns::new();
        edns.set_max_payload(EDNS_PAYLOAD);
        m.set_edns(edns);
    }
    m
}

fn error(query: &Message, code: ResponseCode) -> Vec<u8> {
    response(query, code).to_vec().unwrap_or_default()
}

/// FORMERR for a message that has a header but does not parse; nothing
/// for shorter garbage or for something claiming to be a response.
fn formerr(raw: &[u8]) -> Option<Vec<u8>> {
    if raw.len() < 12 || raw[2] & 0x80 != 0 {
        return None;
    }
    let mut out = vec![0u8; 12];
    out[..2].copy_from_slice(&raw[..2]);
    // QR, the opcode and RD of the query; RA; RCODE 1.
    out[2] = 0x80 | (raw[2] & 0x79);
    out[3] = 0x80 | 1;
    Some(out)
}

/// One receive loop; several may share the socket.
pub(crate) async fn serve_udp(socket: Arc<UdpSocket>, server: Arc<Server>) {
    let mut buf = vec![0u8; 4096];
    loop {
        let (n, peer) = match socket.recv_from(&mut buf).await {
            Ok(x) => x,
            Err(e) => {
                tracing::debug!(error = %e, "dns udp receive failed");
                continue;
            }
        };
        match server.handle(&buf[..n], true) {
            Handled::Reply(b) => send(&socket, &b, peer).await,
            Handled::Forward(q) => {
                let raw = buf[..n].to_vec();
                let (socket, server) = (socket.clone(), server.clone());
                tokio::spawn(async move {
                    let b = server.forwarder.forward(&q, &raw, true).await;
                    send(&socket, &b, peer).await;
                });
            }
            Handled::Drop => {}
        }
    }
}

async fn send(socket: &UdpSocket, bytes: &[u8], peer: SocketAddr) {
    if let Err(e) = socket.send_to(bytes, peer).await {
        tracing::debug!(%peer, error = %e, "dns udp send failed");
    }
}

pub(crate) async fn serve_tcp(listener: TcpListener, server: Arc<Server>) {
    let slots = Arc::new(Semaphore::new(TCP_CONNECTIONS));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                tracing::debug!(error = %e, "dns tcp accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            tracing::debug!(%peer, "dns tcp connection refused: too many");
            continue;
        };
        let server = server.clone();
        tokio::spawn(async move {
            if let Err(e) = connection(stream, &server).await {
                tracing::debug!(%peer, error = %e, "dns tcp connection ended");
            }
            drop(permit);
        });
    }
}

async fn connection(mut stream: TcpStream, server: &Server) -> std::io::Result<()> {
    let mut buf = Vec::new();
    loop {
        let len = match tokio::time::timeout(TCP_IDLE, stream.read_u16()).await {
            Ok(Ok(len)) => usize::from(len),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Ok(Err(e)) => return Err(e),
            Err(_) => return Ok(()),
        };
        buf.resize(len, 0);
        match tokio::time::timeout(TCP_IDLE, stream.read_exact(&mut buf)).await {
            Ok(r) => r?,
            Err(_) => return Ok(()),
        };
        let Some(reply) = server.respond(&buf, false).await else {
            continue;
        };
        let Ok(n) = u16::try_from(reply.len()) else {
            continue;
        };
        let mut out = Vec::with_capacity(reply.len() + 2);
        out.extend_from_slice(&n.to_be_bytes());
        out.extend_from_slice(&reply);
        stream.write_all(&out).await?;
    }
}
