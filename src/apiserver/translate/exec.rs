//! One exec/attach session: WebSocket `v5.channel.k8s.io` on the
//! client's side, remotecommand v4 over SPDY/3.1 on the kubelet's.
//!
//! Channels: 0 stdin →, 1 stdout ←, 2 stderr ←, 3 error (the v4 Status
//! JSON) ←, 4 resize →, and v5's 255 + channel: the client closed that
//! channel (stdin), sent on as a SPDY FIN. The Status goes out only after
//! stdout and stderr ended, then the WebSocket closes: kubectl takes the
//! exit code from that Status and must have every byte of output first.

use bytes::{BufMut, Bytes, BytesMut};
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use super::spdy::{Decoder, Encoder, Frame, REFUSED_STREAM};
use super::{Error, Streams};

const STDIN: u8 = 0;
const STDOUT: u8 = 1;
const STDERR: u8 = 2;
const ERROR: u8 = 3;
const RESIZE: u8 = 4;
/// v5: `[255, channel]` says the client closed that channel.
const CLOSE: u8 = 255;

/// What the v4 error stream carries when the command succeeded; upstream
/// writes the same when the kubelet's stream ended without one.
const SUCCESS: &str = r#"{"metadata":{},"status":"Success"}"#;
/// The most error-stream bytes kept (a Status is small).
const MAX_STATUS: usize = 64 * 1024;

/// SPDY stream ids (client streams are odd) for each channel asked for.
#[derive(Debug, Clone, Copy)]
struct Ids {
    error: u32,
    stdin: Option<u32>,
    stdout: Option<u32>,
    stderr: Option<u32>,
    resize: Option<u32>,
}

impl Ids {
    fn new(s: Streams) -> Ids {
        let mut next = 1;
        let mut take = |wanted: bool| {
            wanted.then(|| {
                let id = next;
                next += 2;
                id
            })
        };
        let error = take(true).unwrap_or(1);
        Ids {
            error,
            stdin: take(s.stdin),
            stdout: take(s.stdout),
            // With a TTY, stderr is merged into stdout (no stream).
            stderr: take(s.stderr && !s.tty),
            resize: take(s.tty),
        }
    }

    /// The streams to open, in upstream's order, with their `streamType`.
    fn opened(&self) -> Vec<(u32, &'static str)> {
        [
            (Some(self.error), "error"),
            (self.stdin, "stdin"),
            (self.stdout, "stdout"),
            (self.stderr, "stderr"),
            (self.resize, "resize"),
        ]
        .into_iter()
        .filter_map(|(id, kind)| id.map(|id| (id, kind)))
        .collect()
    }

    /// The SPDY stream a client channel writes to.
    fn inbound(&self, channel: u8) -> Option<u32> {
        match channel {
            STDIN => self.stdin,
            RESIZE => self.resize,
            _ => None,
        }
    }
}

/// What one client message asks of the kubelet side.
#[derive(Debug, PartialEq, Eq)]
enum Inbound {
    Data(u32, Bytes),
    Fin(u32),
    Ignore,
}

/// One binary WebSocket message from the client, read as v5.
fn inbound(ids: &Ids, msg: &Bytes) -> Inbound {
    let Some((&channel, _)) = msg.split_first() else {
        return Inbound::Ignore;
    };
    if channel == CLOSE {
        return match msg.get(1).and_then(|c| ids.inbound(*c)) {
            Some(id) => Inbound::Fin(id),
            None => Inbound::Ignore,
        };
    }
    match ids.inbound(channel) {
        Some(id) => Inbound::Data(id, msg.slice(1..)),
        None => Inbound::Ignore,
    }
}

fn framed(channel: u8, data: &[u8]) -> Message {
    let mut b = BytesMut::with_capacity(1 + data.len());
    b.put_u8(channel);
    b.put_slice(data);
    Message::Binary(b.freeze())
}

pub(super) async fn run<C, K>(
    ws: WebSocketStream<C>,
    kubelet: K,
    streams: Streams,
) -> Result<(), Error>
where
    C: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    K: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let ids = Ids::new(streams);
    let (mut ws_tx, ws_rx) = ws.split();
    let (rd, wr) = tokio::io::split(kubelet);
    let (frames, queue) = mpsc::channel::<Frame>(64);
    let writer = tokio::spawn(write_frames(wr, queue));
    for (id, kind) in ids.opened() {
        let headers = vec![("streamType".to_string(), kind.to_string())];
        let open = Frame::SynStream {
            stream: id,
            fin: false,
            headers,
        };
        if frames.send(open).await.is_err() {
            return Err(Error::Spdy("kubelet connection closed".into()));
        }
    }
    let mut input = tokio::spawn(client_to_kubelet(ws_rx, frames.clone(), ids));
    let outcome = tokio::select! {
        r = kubelet_to_client(rd, &mut ws_tx, frames.clone(), ids) => Some(r),
        _ = &mut input => None,
    };
    input.abort();
    // GOAWAY then closing the queue ends the writer, which shuts the
    // kubelet connection down (the runtime then ends the process's I/O).
    let _ = frames
        .send(Frame::GoAway {
            last_good: 0,
            status: 0,
        })
        .await;
    drop(frames);
    let _ = writer.await;
    let Some(outcome) = outcome else {
        tracing::debug!("client closed the exec stream first");
        return Ok(());
    };
    let status = outcome?;
    let status = if status.is_empty() {
        Bytes::from_static(SUCCESS.as_bytes())
    } else {
        status
    };
    ws_tx.send(framed(ERROR, &status)).await?;
    ws_tx
        .send(Message::Close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "".into(),
        })))
        .await?;
    let _ = ws_tx.close().await;
    Ok(())
}

async fn write_frames<W: AsyncWrite + Unpin>(mut wr: W, mut queue: mpsc::Receiver<Frame>) {
    let mut enc = match Encoder::new() {
        Ok(e) => e,
        Err(e) => {
            tracing::debug!(error = %e, "spdy encoder");
            return;
        }
    };
    let mut buf = BytesMut::new();
    while let Some(frame) = queue.recv().await {
        buf.clear();
        if let Err(e) = enc.encode(&frame, &mut buf) {
            tracing::debug!(error = %e, "spdy frame not written");
            break;
        }
        if wr.write_all(&buf).await.is_err() || wr.flush().await.is_err() {
            break;
        }
    }
    let _ = wr.shutdown().await;
}

/// Client messages to SPDY frames until the client goes away.
async fn client_to_kubelet<C>(
    mut ws_rx: SplitStream<WebSocketStream<C>>,
    frames: mpsc::Sender<Frame>,
    ids: Ids,
) where
    C: AsyncRead + AsyncWrite + Unpin,
{
    let mut stdin_done = false;
    while let Some(msg) = ws_rx.next().await {
        let Ok(Message::Binary(msg)) = msg else {
            match msg {
                Ok(Message::Close(_)) | Err(_) => break,
                // Text (base64 protocols) is not spoken; pings are
                // answered by the WebSocket layer.
                _ => continue,
            }
        };
        let frame = match inbound(&ids, &msg) {
            Inbound::Data(id, data) if !(stdin_done && Some(id) == ids.stdin) => Frame::Data {
                stream: id,
                fin: false,
                data,
            },
            Inbound::Fin(id) if !(stdin_done && Some(id) == ids.stdin) => {
                stdin_done = stdin_done || Some(id) == ids.stdin;
                Frame::Data {
                    stream: id,
                    fin: true,
                    data: Bytes::new(),
                }
            }
            _ => continue,
        };
        if frames.send(frame).await.is_err() {
            break;
        }
    }
}

/// SPDY frames to client messages until stdout, stderr and the error
/// stream have all ended (or the kubelet went away); returns the error
/// stream's bytes (the Status).
async fn kubelet_to_client<R, C>(
    mut rd: R,
    ws_tx: &mut SplitSink<WebSocketStream<C>, Message>,
    frames: mpsc::Sender<Frame>,
    ids: Ids,
) -> Result<Bytes, Error>
where
    R: AsyncRead + Unpin,
    C: AsyncRead + AsyncWrite + Unpin,
{
    let mut dec = Decoder::new();
    let mut buf = BytesMut::with_capacity(32 * 1024);
    let mut status = BytesMut::new();
    let mut open: Vec<u32> = [Some(ids.error), ids.stdout, ids.stderr]
        .into_iter()
        .flatten()
        .collect();
    while !open.is_empty() {
        let frame = match dec.decode(&mut buf)? {
            Some(f) => f,
            None => {
                if rd.read_buf(&mut buf).await? == 0 {
                    break;
                }
                continue;
            }
        };
        match frame {
            Frame::Data { stream, fin, data } => {
                if Some(stream) == ids.stdout && !data.is_empty() {
                    ws_tx.send(framed(STDOUT, &data)).await?;
                } else if Some(stream) == ids.stderr && !data.is_empty() {
                    ws_tx.send(framed(STDERR, &data)).await?;
                } else if stream == ids.error {
                    let room = MAX_STATUS.saturating_sub(status.len());
                    status.put_slice(&data[..data.len().min(room)]);
                }
                if fin {
                    open.retain(|s| *s != stream);
                }
            }
            Frame::SynReply {
                stream, fin: true, ..
            }
            | Frame::Headers {
                stream, fin: true, ..
            } => open.retain(|s| *s != stream),
            Frame::RstStream { stream, .. } => open.retain(|s| *s != stream),
            Frame::SynStream { stream, .. } => {
                let refuse = Frame::RstStream {
                    stream,
                    status: REFUSED_STREAM,
                };
                let _ = frames.send(refuse).await;
            }
            // Odd ids are ours: an echo. Even ones the kubelet's: answered.
            Frame::Ping(id) if id % 2 == 0 => {
                let _ = frames.send(Frame::Ping(id)).await;
            }
            Frame::GoAway { .. } => break,
            _ => {}
        }
    }
    Ok(status.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_ids_follow_the_streams_asked_for() {
        let all = Ids::new(Streams {
            stdin: true,
            stdout: true,
            stderr: true,
            tty: false,
        });
        assert_eq!(
            all.opened(),
            vec![(1, "error"), (3, "stdin"), (5, "stdout"), (7, "stderr")]
        );
        let tty = Ids::new(Streams {
            stdin: true,
            stdout: true,
            stderr: true,
            tty: true,
        });
        assert_eq!(
            tty.opened(),
            vec![(1, "error"), (3, "stdin"), (5, "stdout"), (7, "resize")]
        );
        let out = Ids::new(Streams {
            stdout: true,
            ..Streams::default()
        });
        assert_eq!(out.opened(), vec![(1, "error"), (3, "stdout")]);
    }

    #[test]
    fn client_messages_map_to_streams() {
        let ids = Ids::new(Streams {
            stdin: true,
            stdout: true,
            stderr: false,
            tty: true,
        });
        let m = |b: &[u8]| inbound(&ids, &Bytes::copy_from_slice(b));
        assert_eq!(
            m(&[0, b'h', b'i']),
            Inbound::Data(3, Bytes::from_static(b"hi"))
        );
        assert_eq!(
            m(&[4, b'{', b'}']),
            Inbound::Data(7, Bytes::from_static(b"{}"))
        );
        assert_eq!(m(&[255, 0]), Inbound::Fin(3));
        // Bad or foreign input is dropped, never a panic.
        assert_eq!(m(&[]), Inbound::Ignore);
        assert_eq!(m(&[255]), Inbound::Ignore);
        assert_eq!(m(&[255, 9]), Inbound::Ignore);
        assert_eq!(m(&[1, 1]), Inbound::Ignore);
        assert_eq!(m(&[3]), Inbound::Ignore);
        let no_stdin = Ids::new(Streams {
            stdout: true,
            ..Streams::default()
        });
        assert_eq!(
            inbound(&no_stdin, &Bytes::from_static(&[0, 1])),
            Inbound::Ignore
        );
    }
}
