//! Container logs in the CRI format, as the runtime writes them:
//! `<RFC3339Nano time> <stdout|stderr> <P|F> <text>` per line, where `P`
//! marks a piece of a longer line whose rest follows (the runtime splits
//! long lines) and `F` its last piece. Pieces are joined per stream into
//! one line, stamped with the first piece's time. Options are upstream's
//! PodLogOptions: tail first (counted in joined lines), then `since`,
//! then `limitBytes` over the output.

use std::collections::VecDeque;
use std::io::{Read, Seek, SeekFrom};

/// Joined lines read beyond `tailLines` before the tail is cut: a line
/// whose first pieces lie before the start shows up alone and must fall
/// off the front (one per stream at most).
pub const TAIL_SLACK: u64 = 2;

/// Which streams to show (upstream's `stream` option, 1.32+).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StreamFilter {
    #[default]
    All,
    Stdout,
    Stderr,
}

/// What a log request asked for.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LogOptions {
    pub follow: bool,
    pub previous: bool,
    pub timestamps: bool,
    pub since: Option<jiff::Timestamp>,
    pub tail: Option<u64>,
    pub limit_bytes: Option<u64>,
    pub stream: StreamFilter,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// One line of a CRI log file (without its newline).
#[derive(Debug, PartialEq, Eq)]
pub struct Record<'a> {
    pub time: &'a [u8],
    pub stream: Stream,
    pub partial: bool,
    pub text: &'a [u8],
}

fn split_space(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let i = b.iter().position(|c| *c == b' ')?;
    Some((&b[..i], &b[i + 1..]))
}

/// Parses one line; `None` when it is not in the CRI format.
pub fn parse(line: &[u8]) -> Option<Record<'_>> {
    let (time, rest) = split_space(line)?;
    let (stream, rest) = split_space(rest)?;
    // The tag may be the end of the line when the text is empty.
    let (tag, text) = split_space(rest).unwrap_or((rest, &[]));
    let stream = match stream {
        b"stdout" => Stream::Stdout,
        b"stderr" => Stream::Stderr,
        _ => return None,
    };
    // Tags are `:`-separated; the first says partial or full.
    let partial = match tag.split(|c| *c == b':').next() {
        Some(b"P") => true,
        Some(b"F") => false,
        _ => return None,
    };
    if time.is_empty() {
        return None;
    }
    Some(Record {
        time,
        stream,
        partial,
        text,
    })
}

/// Whether a raw line ends a joined line (unparsable lines count whole).
fn ends_line(line: &[u8]) -> bool {
    parse(line).is_none_or(|r| !r.partial)
}

/// Turns log file lines into the response body.
pub struct Formatter {
    timestamps: bool,
    since: Option<jiff::Timestamp>,
    stream: StreamFilter,
    /// Bytes still allowed by `limitBytes`.
    remaining: Option<u64>,
    /// Pieces of a partial line per stream: first piece's time, text so far.
    pending: [Option<(Vec<u8>, Vec<u8>)>; 2],
    /// With `tailLines`: the last lines of the backlog, held until its end.
    backlog: Option<(usize, VecDeque<Line>)>,
}

/// One joined line: time (none when the line was not CRI), stream, text.
type Line = (Option<Vec<u8>>, Option<Stream>, Vec<u8>);

impl Formatter {
    pub fn new(opts: &LogOptions) -> Formatter {
        Formatter {
            timestamps: opts.timestamps,
            since: opts.since,
            stream: opts.stream,
            remaining: opts.limit_bytes,
            pending: [None, None],
            backlog: opts
                .tail
                .map(|n| (n as usize, VecDeque::with_capacity((n as usize).min(4096)))),
        }
    }

    /// The backlog read (from the tail offset to the end of the file as it
    /// was): writes its last `tailLines` lines; later lines go straight out.
    pub fn end_backlog(&mut self, out: &mut Vec<u8>) {
        if let Some((_, lines)) = self.backlog.take() {
            for line in lines {
                self.output(line, out);
            }
        }
    }

    /// Whether `limitBytes` has been reached: nothing more will be written.
    pub fn done(&self) -> bool {
        self.remaining == Some(0)
    }

    /// Adds one file line (without newline) and appends what it completes
    /// to `out`.
    pub fn push(&mut self, line: &[u8], out: &mut Vec<u8>) {
        if self.done() {
            return;
        }
        let Some(rec) = parse(line) else {
            // Not CRI format: shown as it is, never filtered.
            self.complete((None, None, line.to_vec()), out);
            return;
        };
        let slot = &mut self.pending[rec.stream as usize];
        if rec.partial {
            match slot {
                Some((_, text)) => text.extend_from_slice(rec.text),
                None => *slot = Some((rec.time.to_vec(), rec.text.to_vec())),
            }
            return;
        }
        let (time, text) = match slot.take() {
            Some((time, mut text)) => {
                text.extend_from_slice(rec.text);
                (time, text)
            }
            None => (rec.time.to_vec(), rec.text.to_vec()),
        };
        self.complete((Some(time), Some(rec.stream), text), out);
    }

    fn complete(&mut self, line: Line, out: &mut Vec<u8>) {
        match &mut self.backlog {
            Some((n, lines)) => {
                lines.push_back(line);
                if lines.len() > *n {
                    lines.pop_front();
                }
            }
            None => self.output(line, out),
        }
    }

    fn output(&mut self, (time, stream, text): Line, out: &mut Vec<u8>) {
        let wanted = match (self.stream, stream) {
            (StreamFilter::All, _) | (_, None) => true,
            (StreamFilter::Stdout, Some(s)) => s == Stream::Stdout,
            (StreamFilter::Stderr, Some(s)) => s == Stream::Stderr,
        };
        if !wanted || time.as_deref().is_some_and(|t| self.before_since(t)) {
            return;
        }
        self.emit(time.as_deref(), &text, out);
    }

    fn before_since(&self, time: &[u8]) -> bool {
        let Some(since) = self.since else {
            return false;
        };
        std::str::from_utf8(time)
            .ok()
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
            .is_some_and(|t| t < since)
    }

    fn emit(&mut self, time: Option<&[u8]>, text: &[u8], out: &mut Vec<u8>) {
        if self.done() {
            return;
        }
        let start = out.len();
        if let (true, Some(time)) = (self.timestamps, time) {
            match fixed_utc(time) {
                Some(t) => out.extend_from_slice(t.as_bytes()),
                None => out.extend_from_slice(time),
            }
            out.push(b' ');
        }
        out.extend_from_slice(text);
        out.push(b'\n');
        if let Some(remaining) = self.remaining.as_mut() {
            let written = (out.len() - start) as u64;
            if written >= *remaining {
                out.truncate(start + *remaining as usize);
                *remaining = 0;
            } else {
                *remaining -= written;
            }
        }
    }
}

/// A log time as upstream's kubelet writes it: UTC, nine fraction digits
/// (`RFC3339NanoFixed`), whatever zone and precision the runtime used.
fn fixed_utc(time: &[u8]) -> Option<String> {
    let ts: jiff::Timestamp = std::str::from_utf8(time).ok()?.parse().ok()?;
    let seconds = jiff::Timestamp::from_second(ts.as_second()).ok()?;
    Some(format!(
        "{}.{:09}Z",
        seconds.strftime("%Y-%m-%dT%H:%M:%S"),
        ts.subsec_nanosecond()
    ))
}

/// Where to start reading so that the last `n` joined lines follow: just
/// after the line ending the (n+1)-th joined line from the end, or 0. A
/// last line without its newline is still being written and not counted.
/// Reads backwards in `chunk`-byte blocks, so a big file costs little.
pub fn tail_offset<R: Read + Seek>(
    r: &mut R,
    len: u64,
    n: u64,
    chunk: usize,
) -> std::io::Result<u64> {
    let chunk = chunk.max(1) as u64;
    let mut pos = len;
    // Bytes from `pos` up to the start of the newest line already counted.
    let mut carry: Vec<u8> = Vec::new();
    // Offset just past the newest newline not yet examined.
    let mut seen = 0u64;
    let mut first = true;
    while pos > 0 {
        let start = pos.saturating_sub(chunk);
        let mut block = vec![0u8; (pos - start) as usize];
        r.seek(SeekFrom::Start(start))?;
        r.read_exact(&mut block)?;
        block.extend_from_slice(&carry);
        // Lines wholly inside `block` (after its first newline, or from the
        // file start) can be examined newest first.
        let mut end = block.len();
        if first {
            // Drop an unterminated last line.
            end = block.iter().rposition(|c| *c == b'\n').map_or(0, |i| i + 1);
            first = false;
        }
        let mut cut = end;
        while cut > 0 {
            // `block[..cut]` ends with a newline; find the line before it.
            let line_end = cut - 1;
            let line_start = match block[..line_end].iter().rposition(|c| *c == b'\n') {
                Some(i) => i + 1,
                None if start == 0 => 0,
                None => break,
            };
            if ends_line(&block[line_start..line_end]) {
                seen += 1;
                if seen == n + 1 {
                    return Ok(start + cut as u64);
                }
            }
            cut = line_start;
        }
        carry = block[..cut].to_vec();
        pos = start;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    const LOG: &str = "\
2024-01-01T00:00:01.000000001Z stdout F one
2024-01-01T00:00:02Z stderr F two
2024-01-01T00:00:03Z stdout P thr
2024-01-01T00:00:04Z stderr F four
2024-01-01T00:00:05Z stdout F ee
2024-01-01T00:00:06Z stdout F 
2024-01-01T00:00:07Z stdout F five
";

    fn render(opts: &LogOptions, text: &str) -> String {
        let mut f = Formatter::new(opts);
        let mut out = Vec::new();
        for line in text.lines() {
            f.push(line.as_bytes(), &mut out);
        }
        f.end_backlog(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn parses_cri_lines() {
        let r = parse(b"2024-01-01T00:00:01Z stderr P a b ").unwrap();
        assert_eq!(r.time, b"2024-01-01T00:00:01Z");
        assert_eq!(
            (r.stream, r.partial, r.text),
            (Stream::Stderr, true, &b"a b "[..])
        );
        assert_eq!(parse(b"2024-01-01T00:00:01Z stdout F").unwrap().text, b"");
        assert!(parse(b"2024-01-01T00:00:01Z stdout F:x hi").is_some());
        assert!(parse(b"garbage").is_none());
        assert!(parse(b"t other F x").is_none());
        assert!(parse(b"t stdout X x").is_none());
    }

    #[test]
    fn joins_partial_pieces_per_stream() {
        let o = LogOptions::default();
        assert_eq!(render(&o, LOG), "one\ntwo\nfour\nthree\n\nfive\n");
        let o = LogOptions {
            timestamps: true,
            ..Default::default()
        };
        let out = render(&o, LOG);
        assert!(
            out.starts_with("2024-01-01T00:00:01.000000001Z one\n"),
            "{out}"
        );
        assert!(
            out.contains("2024-01-01T00:00:03.000000000Z three\n"),
            "{out}"
        );
        let zoned = render(&o, "2024-01-01T01:00:00.5+01:00 stdout F x\n");
        assert_eq!(zoned, "2024-01-01T00:00:00.500000000Z x\n");
    }

    #[test]
    fn since_limit_and_stream() {
        let o = LogOptions {
            since: Some("2024-01-01T00:00:03Z".parse().unwrap()),
            ..Default::default()
        };
        // `three` started at :03, so it is in.
        assert_eq!(render(&o, LOG), "four\nthree\n\nfive\n");
        let o = LogOptions {
            limit_bytes: Some(6),
            ..Default::default()
        };
        assert_eq!(render(&o, LOG), "one\ntw");
        let o = LogOptions {
            stream: StreamFilter::Stderr,
            ..Default::default()
        };
        assert_eq!(render(&o, LOG), "two\nfour\n");
        assert_eq!(
            render(&LogOptions::default(), "plain text\n"),
            "plain text\n"
        );
    }

    fn tail(text: &str, n: u64, chunk: usize) -> String {
        let mut c = Cursor::new(text.as_bytes().to_vec());
        let off = tail_offset(&mut c, text.len() as u64, n + TAIL_SLACK, chunk).unwrap();
        // The reader stops at the last newline.
        let end = text.rfind('\n').map_or(0, |i| i + 1);
        let opts = LogOptions {
            tail: Some(n),
            ..Default::default()
        };
        render(&opts, &text[off as usize..end.max(off as usize)])
    }

    #[test]
    fn tail_offset_counts_full_lines() {
        let at = |n| {
            let mut c = Cursor::new(LOG.as_bytes().to_vec());
            tail_offset(&mut c, LOG.len() as u64, n, 3).unwrap() as usize
        };
        assert!(LOG[at(1)..].starts_with("2024-01-01T00:00:07Z"));
        assert!(LOG[at(3)..].starts_with("2024-01-01T00:00:05Z"));
        assert!(LOG[at(4)..].starts_with("2024-01-01T00:00:03Z"));
        assert_eq!(at(6), 0);
    }

    #[test]
    fn tail_counts_joined_lines_from_the_end() {
        for chunk in [1, 7, 64, 4096] {
            assert_eq!(tail(LOG, 0, chunk), "", "chunk {chunk}");
            assert_eq!(tail(LOG, 1, chunk), "five\n", "chunk {chunk}");
            assert_eq!(tail(LOG, 3, chunk), "three\n\nfive\n", "chunk {chunk}");
            assert_eq!(
                tail(LOG, 4, chunk),
                "four\nthree\n\nfive\n",
                "chunk {chunk}"
            );
            assert_eq!(tail(LOG, 6, chunk), "one\ntwo\nfour\nthree\n\nfive\n");
            assert_eq!(tail(LOG, 100, chunk), "one\ntwo\nfour\nthree\n\nfive\n");
        }
        // A line still being written is neither counted nor shown.
        let growing = format!("{LOG}2024-01-01T00:00:08Z stdout F si");
        assert_eq!(tail(&growing, 1, 5), "five\n");
        assert_eq!(tail("", 3, 5), "");
    }
}
