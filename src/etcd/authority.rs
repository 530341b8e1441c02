//! Lets gRPC clients that put a unix socket path in `:authority` talk to us.
//!
//! Older Go gRPC clients (etcdctl 3.4, for one) send the socket path, e.g.
//! `/run/x/etcd.sock`, as the HTTP/2 `:authority`. h2 refuses that
//! as a malformed authority and resets every stream, and it has no option to
//! relax the check. So on unix connections we rewrite the client's header
//! blocks before h2 sees them: decode with the connection's HPACK state,
//! swap a bad `:authority` for `localhost`, and re-encode with literals only,
//! which leaves h2's decoder nothing to keep in sync with. Everything else,
//! and the whole server-to-client direction, passes through untouched.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use loona_hpack::Decoder;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tonic::codegen::http::uri::Authority;
use tonic::transport::server::Connected;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const HEADERS: u8 = 0x1;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;
/// The frame size every HTTP/2 peer accepts without asking.
const MAX_FRAME: usize = 16_384;
/// Bound on a header block, encoded or decoded, so a client can't make us
/// buffer without limit.
const MAX_BLOCK: usize = 1 << 20;
/// h2 advertises no SETTINGS_HEADER_TABLE_SIZE, so clients get the default.
const TABLE_SIZE: usize = 4096;
const AUTHORITY: &[u8] = b":authority";
const REPLACEMENT: &[u8] = b"localhost";

/// A connection whose client-sent `:authority` values h2 will accept.
pub struct FixAuthority<S> {
    inner: S,
    rewriter: Rewriter,
    /// Rewritten bytes not yet handed to the reader.
    out: Vec<u8>,
    out_pos: usize,
    eof: bool,
}

impl<S> FixAuthority<S> {
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            rewriter: Rewriter::new(),
            out: Vec::new(),
            out_pos: 0,
            eof: false,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for FixAuthority<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.out_pos < this.out.len() {
                let n = buf.remaining().min(this.out.len() - this.out_pos);
                buf.put_slice(&this.out[this.out_pos..this.out_pos + n]);
                this.out_pos += n;
                if this.out_pos == this.out.len() {
                    this.out.clear();
                    this.out_pos = 0;
                }
                return Poll::Ready(Ok(()));
            }
            if this.eof {
                return Poll::Ready(Ok(()));
            }
            let mut chunk = [0u8; 8192];
            let mut read = ReadBuf::new(&mut chunk);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut read))?;
            if read.filled().is_empty() {
                this.eof = true;
            } else {
                this.rewriter.feed(read.filled(), &mut this.out)?;
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for FixAuthority<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

impl<S: Connected> Connected for FixAuthority<S> {
    type ConnectInfo = S::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

/// A header block being collected from HEADERS and CONTINUATION frames.
struct Block {
    stream: u32,
    end_stream: bool,
    bytes: Vec<u8>,
}

/// The client-to-server byte stream transformation, apart from any IO.
struct Rewriter {
    failed: bool,
    /// Input not yet consumed: at most one incomplete frame.
    buf: Vec<u8>,
    /// Bytes to copy through untouched: the rest of the client preface
    /// (which h2, serving HTTP/2 only, checks), or of a frame's payload.
    skip: usize,
    block: Option<Block>,
    decoder: Decoder<'static>,
}

fn bad(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

impl Rewriter {
    fn new() -> Self {
        let mut decoder = Decoder::new();
        decoder.set_max_allowed_table_size(TABLE_SIZE);
        Self {
            failed: false,
            buf: Vec::new(),
            skip: PREFACE.len(),
            block: None,
            decoder,
        }
    }

    /// Consumes `input` and appends what the server should read to `out`.
    fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
        if self.failed {
            return Err(bad("connection already failed"));
        }
        self.buf.extend_from_slice(input);
        let mut buf = std::mem::take(&mut self.buf);
        let mut pos = 0;
        // Stays set if this input turns out malformed: the stream is lost.
        self.failed = true;
        while let n @ 1.. = self.frame(&buf[pos..], out)? {
            pos += n;
        }
        self.failed = false;
        buf.drain(..pos);
        self.buf = buf;
        Ok(())
    }

    /// Handles what it can from the start of `data`; returns the bytes
    /// consumed, 0 when more input is needed.
    fn frame(&mut self, data: &[u8], out: &mut Vec<u8>) -> io::Result<usize> {
        if self.skip > 0 {
            let n = self.skip.min(data.len());
            out.extend_from_slice(&data[..n]);
            self.skip -= n;
            return Ok(n);
        }
        let Some(head) = data.get(..9) else {
            return Ok(0);
        };
        let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
        let (kind, flags) = (head[3], head[4]);
        let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
        let continues = self.block.as_ref().is_some_and(|b| b.stream == stream);
        match kind {
            HEADERS if self.block.is_none() => {}
            CONTINUATION if continues => {}
            // RFC 9113 6.10: nothing may come between a block's frames.
            _ if self.block.is_some() => return Err(bad("header block interrupted")),
            _ => {
                out.extend_from_slice(head);
                self.skip = len;
                return Ok(9);
            }
        }
        let pending = self.block.as_ref().map_or(0, |b| b.bytes.len());
        if pending + len > MAX_BLOCK {
            return Err(bad("header block too large"));
        }
        let Some(payload) = data.get(9..9 + len) else {
            return Ok(0);
        };
        match self.block.as_mut() {
            Some(block) => block.bytes.extend_from_slice(payload),
            None => {
                self.block = Some(Block {
                    stream,
                    end_stream: flags & END_STREAM != 0,
                    bytes: headers_fragment(payload, flags)?.to_vec(),
                })
            }
        }
        if flags & END_HEADERS != 0 {
            if let Some(block) = self.block.take() {
                self.rewrite(&block, out)?;
            }
        }
        Ok(9 + len)
    }

    /// Emits `block` as HEADERS (+ CONTINUATION) frames with a fixed-up
    /// `:authority` and no references to the dynamic table.
    fn rewrite(&mut self, block: &Block, out: &mut Vec<u8>) -> io::Result<()> {
        let mut encoded = Vec::with_capacity(block.bytes.len() * 2);
        let mut decoded_size = 0usize;
        self.decoder
            .decode_with_cb(&block.bytes, |name, value| {
                // RFC 7541 4.1 size; keeps indexed references from blowing up.
                decoded_size = decoded_size.saturating_add(name.len() + value.len() + 32);
                if decoded_size > MAX_BLOCK {
                    return;
                }
                let fix = &*name == AUTHORITY && Authority::try_from(&*value).is_err();
                encode_literal(&mut encoded, &name, if fix { REPLACEMENT } else { &value });
            })
            .map_err(|e| bad(format!("hpack: {e}")))?;
        if decoded_size > MAX_BLOCK {
            return Err(bad("header list too large"));
        }
        let mut start = 0;
        let mut kind = HEADERS;
        loop {
            let end = encoded.len().min(start + MAX_FRAME);
            let mut flags = if end == encoded.len() { END_HEADERS } else { 0 };
            if kind == HEADERS && block.end_stream {
                flags |= END_STREAM;
            }
            out.extend_from_slice(&((end - start) as u32).to_be_bytes()[1..]);
            out.extend_from_slice(&[kind, flags]);
            out.extend_from_slice(&block.stream.to_be_bytes());
            out.extend_from_slice(&encoded[start..end]);
            if end == encoded.len() {
                return Ok(());
            }
            start = end;
            kind = CONTINUATION;
        }
    }
}

/// The header block fragment of a HEADERS payload, without padding and
/// priority fields (RFC 9113 6.2).
fn headers_fragment(payload: &[u8], flags: u8) -> io::Result<&[u8]> {
    let mut rest = payload;
    let mut pad = 0;
    if flags & PADDED != 0 {
        let (&n, tail) = rest.split_first().ok_or_else(|| bad("bad padding"))?;
        pad = usize::from(n);
        rest = tail;
    }
    if flags & PRIORITY != 0 {
        rest = rest.get(5..).ok_or_else(|| bad("bad priority"))?;
    }
    let end = rest
        .len()
        .checked_sub(pad)
        .ok_or_else(|| bad("bad padding"))?;
    Ok(&rest[..end])
}

/// RFC 7541 6.2.2 with a literal name and plain strings (5.1 lengths with a
/// 7-bit prefix, H clear): needs no decoder state.
fn encode_literal(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.push(0);
    for s in [name, value] {
        let mut n = s.len();
        if n >= 127 {
            out.push(127);
            n -= 127;
            while n >= 128 {
                out.push((n % 128) as u8 | 0x80);
                n /= 128;
            }
        }
        out.push(n as u8);
        out.extend_from_slice(s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    type Headers = Vec<(String, String)>;

    fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
        let len = (payload.len() as u32).to_be_bytes();
        [&len[1..], &[kind, flags], &stream.to_be_bytes(), payload].concat()
    }

    fn run(input: &[u8]) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        Rewriter::new().feed(input, &mut out).map(|()| out)
    }

    /// The server-side bytes as (kind, flags, stream, payload).
    fn frames(out: &[u8]) -> Vec<(u8, u8, u32, Vec<u8>)> {
        let mut rest = out.strip_prefix(PREFACE).unwrap();
        let mut frames = Vec::new();
        while let [a, b, c, kind, flags, s @ ..] = rest {
            let len = u32::from_be_bytes([0, *a, *b, *c]) as usize;
            let stream = u32::from_be_bytes(s[..4].try_into().unwrap());
            frames.push((*kind, *flags, stream, s[4..4 + len].to_vec()));
            rest = &s[4 + len..];
        }
        frames
    }

    /// Each block decoded by a fresh decoder: the output must need no state.
    fn headers(out: &[u8]) -> Vec<Headers> {
        let mut blocks: Vec<Vec<u8>> = Vec::new();
        for (kind, _, _, payload) in frames(out) {
            match kind {
                HEADERS => blocks.push(payload),
                CONTINUATION => blocks.last_mut().unwrap().extend(payload),
                _ => {}
            }
        }
        let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
        let decode = |b: Vec<u8>| Decoder::new().decode(&b).unwrap().into_iter();
        let list = |b| decode(b).map(|(n, v)| (text(n), text(v))).collect();
        blocks.into_iter().map(list).collect()
    }

    fn get<'a>(h: &'a Headers, name: &str) -> &'a str {
        &h.iter().find(|(n, _)| n == name).unwrap().1
    }

    /// `:authority: /tmp/a.sock` Huffman-coded and added to the dynamic
    /// table, then referenced by index 62 from the second request.
    fn huffman_indexed_input() -> Vec<u8> {
        let huff = [0x61, 0x34, 0xd6, 0xc0, 0xd7, 0x41, 0xc9, 0xd7];
        let first = [&[0x82, 0x86, 0x84, 0x41, 0x88][..], &huff].concat();
        let decoded = Decoder::new().decode(&first).unwrap();
        assert_eq!(decoded[3], (AUTHORITY.to_vec(), b"/tmp/a.sock".to_vec()));
        let second = [0x82, 0x86, 0x84, 0xbe];
        let frames = [
            frame(4, 0, 0, &[]),
            frame(HEADERS, END_HEADERS, 1, &first),
            frame(0, END_STREAM, 1, b"hello"),
            frame(HEADERS, END_HEADERS | END_STREAM, 3, &second),
        ];
        [PREFACE.to_vec(), frames.concat()].concat()
    }

    #[test]
    fn huffman_and_indexed_authority_becomes_localhost() {
        let out = run(&huffman_indexed_input()).unwrap();
        let h = headers(&out);
        assert_eq!(h.len(), 2);
        for list in &h {
            assert_eq!(get(list, ":authority"), "localhost");
            assert_eq!((get(list, ":method"), get(list, ":path")), ("GET", "/"));
        }
        let f = frames(&out);
        assert_eq!(f[0], (4, 0, 0, vec![]));
        assert_eq!(f[2], (0, END_STREAM, 1, b"hello".to_vec()));
        assert_eq!((f[1].1, f[3].1), (END_HEADERS, END_HEADERS | END_STREAM));
    }

    #[test]
    fn frames_split_at_every_byte() {
        let input = [huffman_indexed_input(), frame(0, 0, 3, b"tail")].concat();
        let whole = run(&input).unwrap();
        let feed_all = |pieces: Vec<&[u8]>| {
            let (mut r, mut out) = (Rewriter::new(), Vec::new());
            pieces.iter().for_each(|p| r.feed(p, &mut out).unwrap());
            out
        };
        for i in 0..=input.len() {
            let (a, b) = input.split_at(i);
            assert_eq!(feed_all(vec![a, b]), whole, "split at {i}");
        }
        assert_eq!(feed_all(input.chunks(1).collect()), whole);
    }

    #[test]
    fn continuation_padding_and_priority() {
        let block = loona_hpack::Encoder::new().encode([
            (&b":method"[..], &b"POST"[..]),
            (b":authority", b"/tmp/a.sock"),
            (b"x-big", &[b'a'; 40_000]),
        ]);
        let (a, b) = block.split_at(10);
        let first = [&[3, 0, 0, 0, 0, 16][..], a, &[0; 3]].concat();
        let input = [
            PREFACE.to_vec(),
            frame(HEADERS, PADDED | PRIORITY | END_STREAM, 7, &first),
            frame(CONTINUATION, END_HEADERS, 7, b),
        ];
        let out = run(&input.concat()).unwrap();
        let f: Vec<_> = frames(&out)
            .into_iter()
            .map(|f| (f.0, f.1, f.2, f.3.len()))
            .collect();
        assert_eq!(f[0], (HEADERS, END_STREAM, 7, MAX_FRAME));
        assert_eq!(f[1], (CONTINUATION, 0, 7, MAX_FRAME));
        assert_eq!((f[2].0, f[2].1, f.len()), (CONTINUATION, END_HEADERS, 3));
        let h = headers(&out);
        assert_eq!(get(&h[0], ":authority"), "localhost");
        assert_eq!(get(&h[0], "x-big").len(), 40_000);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let with = |frames: &[Vec<u8>]| [PREFACE.to_vec(), frames.concat()].concat();
        let table_size = [0x3f, 0xff, 0xff, 0xff, 0x0f];
        let cases = [
            with(&[frame(HEADERS, END_HEADERS, 1, &[0x80])]),
            with(&[frame(HEADERS, END_HEADERS, 1, &[0xff; 10])]),
            with(&[frame(HEADERS, END_HEADERS, 1, &table_size)]),
            with(&[frame(HEADERS, END_HEADERS | PADDED, 1, &[9, 0x82])]),
            with(&[frame(HEADERS, END_HEADERS | PRIORITY, 1, &[0, 0])]),
            with(&[frame(HEADERS, 0, 1, &[0x82]), frame(0, 0, 1, b"x")]),
            with(&[
                frame(HEADERS, 0, 1, &[0x82]),
                frame(CONTINUATION, 0, 3, &[]),
            ]),
            [PREFACE, &[0xff, 0xff, 0xff, HEADERS, 0, 0, 0, 0, 1]].concat(),
        ];
        for input in &cases {
            let mut r = Rewriter::new();
            assert!(r.feed(input, &mut Vec::new()).is_err(), "{input:?}");
            assert!(r.feed(&[0], &mut Vec::new()).is_err());
        }
        // Random frames of random kinds: any result will do, but no panic.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..2000 {
            let mut input = PREFACE.to_vec();
            for _ in 0..4 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let b = x.to_le_bytes();
                let kind = [HEADERS, CONTINUATION, 0][b[0] as usize % 3];
                input.extend(frame(kind, b[1], 1, &b[2..2 + b[2] as usize % 6]));
            }
            let _ = run(&input);
        }
        // Not HTTP/2 at all: passed through for h2 to refuse.
        let http1 = b"GET / HTTP/1.1\r\n\r\n";
        assert_eq!(run(http1).unwrap(), http1);
    }

    /// Real IO, with the crate's encoder indexing across requests.
    #[tokio::test]
    async fn crate_encoder_through_async_io() {
        let mut enc = loona_hpack::Encoder::new();
        let mut input = PREFACE.to_vec();
        for (stream, authority) in [(1, "/tmp/a.sock"), (3, "/tmp/a.sock"), (5, "etcd:2379")] {
            let block = enc.encode([
                (&b":method"[..], &b"POST"[..]),
                (b":path", b"/etcdserverpb.KV/Put"),
                (b":authority", authority.as_bytes()),
            ]);
            input.extend(frame(HEADERS, END_HEADERS, stream, &block));
        }
        let (mut client, server) = tokio::io::duplex(64);
        let mut server = FixAuthority::new(server);
        let len = run(&input).unwrap().len();
        let writer = tokio::spawn(async move {
            client.write_all(&input).await.unwrap();
            let mut reply = [0; 5];
            client.read_exact(&mut reply).await.unwrap();
            assert_eq!(&reply, b"reply");
        });
        let mut got = vec![0; len];
        server.read_exact(&mut got).await.unwrap();
        server.write_all(b"reply").await.unwrap();
        writer.await.unwrap();
        let h = headers(&got);
        let authorities: Vec<_> = h.iter().map(|l| get(l, ":authority")).collect();
        assert_eq!(authorities, ["localhost", "localhost", "etcd:2379"]);
        assert!(h.iter().all(|l| get(l, ":path") == "/etcdserverpb.KV/Put"));
    }
}
