//! port-forward through a WebSocket: kubectl (1.31+) writes SPDY/3.1 into
//! binary messages (client-go's TunnelingConnection: one message per
//! write, no channel byte), the kubelet gets the same bytes on a plain
//! SPDY upgrade. Nothing is parsed here; both directions are copied until
//! either side ends.

use bytes::BytesMut;
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use super::Error;

const CHUNK: usize = 32 * 1024;

/// Copies until one side ends; returns the bytes sent (up, down).
pub(super) async fn run<C, K>(ws: WebSocketStream<C>, kubelet: K) -> Result<(u64, u64), Error>
where
    C: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    K: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut ws_tx, mut ws_rx) = ws.split();
    let (mut rd, mut wr) = tokio::io::split(kubelet);
    let up = async {
        let mut n = 0u64;
        while let Some(msg) = ws_rx.next().await {
            match msg? {
                Message::Binary(b) => {
                    wr.write_all(&b).await?;
                    n += b.len() as u64;
                }
                Message::Close(_) => break,
                // Pings are answered by the WebSocket layer; text is not
                // part of the tunnel.
                _ => {}
            }
        }
        let _ = wr.shutdown().await;
        Ok::<u64, Error>(n)
    };
    let down = async {
        let mut n = 0u64;
        let mut buf = BytesMut::with_capacity(CHUNK);
        loop {
            buf.reserve(CHUNK);
            if rd.read_buf(&mut buf).await? == 0 {
                break;
            }
            n += buf.len() as u64;
            ws_tx.send(Message::Binary(buf.split().freeze())).await?;
        }
        let _ = ws_tx.close().await;
        Ok::<u64, Error>(n)
    };
    // Either side ending ends the session: kubectl closes the WebSocket
    // when it stops; the kubelet closes when the pod goes away.
    tokio::select! {
        r = up => r.map(|n| (n, 0)),
        r = down => r.map(|n| (0, n)),
    }
}
