use super::*;

fn roundtrip(frames: &[Frame]) -> Vec<Frame> {
    let mut enc = Encoder::new().unwrap();
    let mut wire = BytesMut::new();
    for f in frames {
        enc.encode(f, &mut wire).unwrap();
    }
    let mut dec = Decoder::new();
    let mut out = Vec::new();
    // Fed one byte at a time: partial frames must wait, not fail.
    let mut buf = BytesMut::new();
    for b in wire.iter() {
        buf.put_u8(*b);
        while let Some(f) = dec.decode(&mut buf).unwrap() {
            out.push(f);
        }
    }
    assert!(buf.is_empty());
    out
}

fn h(pairs: &[(&str, &str)]) -> Headers {
    pairs
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn dictionary_is_the_spdy3_one() {
    // 1423 bytes, from "\0\0\0\x07options" to ",enq=0." (draft 3).
    assert_eq!(DICTIONARY.len(), 1423);
    assert_eq!(&DICTIONARY[..11], b"\0\0\0\x07options");
    assert!(DICTIONARY.ends_with(b",enq=0."));
}

#[test]
fn every_frame_round_trips_and_headers_share_one_zlib_stream() {
    let frames = vec![
        Frame::SynStream {
            stream: 1,
            fin: false,
            headers: h(&[("streamtype", "error")]),
        },
        Frame::SynStream {
            stream: 3,
            fin: false,
            headers: h(&[("streamtype", "stdin")]),
        },
        Frame::SynReply {
            stream: 3,
            fin: false,
            headers: h(&[]),
        },
        Frame::Headers {
            stream: 3,
            fin: true,
            headers: h(&[("a", "b\0c")]),
        },
        Frame::Data {
            stream: 3,
            fin: false,
            data: Bytes::from_static(b"hello"),
        },
        Frame::Data {
            stream: 3,
            fin: true,
            data: Bytes::new(),
        },
        Frame::RstStream {
            stream: 5,
            status: REFUSED_STREAM,
        },
        Frame::Settings,
        Frame::Ping(7),
        Frame::GoAway {
            last_good: 3,
            status: 0,
        },
        Frame::WindowUpdate {
            stream: 1,
            delta: 65536,
        },
    ];
    assert_eq!(roundtrip(&frames), frames);
}

#[test]
fn header_names_go_out_lower_case() {
    let got = roundtrip(&[Frame::SynStream {
        stream: 1,
        fin: false,
        headers: h(&[("streamType", "stdout")]),
    }]);
    assert_eq!(
        got,
        vec![Frame::SynStream {
            stream: 1,
            fin: false,
            headers: h(&[("streamtype", "stdout")]),
        }]
    );
}

#[test]
fn wire_layout_follows_the_spec() {
    let mut enc = Encoder::new().unwrap();
    let mut wire = BytesMut::new();
    enc.encode(
        &Frame::Data {
            stream: 5,
            fin: true,
            data: Bytes::from_static(b"ab"),
        },
        &mut wire,
    )
    .unwrap();
    assert_eq!(&wire[..], &[0, 0, 0, 5, 1, 0, 0, 2, b'a', b'b']);
    wire.clear();
    enc.encode(&Frame::Ping(1), &mut wire).unwrap();
    assert_eq!(&wire[..], &[0x80, 3, 0, 6, 0, 0, 0, 4, 0, 0, 0, 1]);
    wire.clear();
    enc.encode(
        &Frame::SynStream {
            stream: 1,
            fin: false,
            headers: h(&[]),
        },
        &mut wire,
    )
    .unwrap();
    // Control bit, version 3, type 1; stream 1; zlib header with FDICT.
    assert_eq!(&wire[..4], &[0x80, 3, 0, 1]);
    assert_eq!(&wire[8..12], &[0, 0, 0, 1]);
    assert_eq!(wire[18] & 0x0f, 8, "deflate method");
    assert_ne!(wire[19] & 0x20, 0, "FDICT set");
}

#[test]
fn bad_frames_are_clean_errors() {
    let mut dec = Decoder::new();
    // Version 2 control frame.
    let mut b = BytesMut::from(&[0x80, 2, 0, 6, 0, 0, 0, 4, 0, 0, 0, 1][..]);
    assert!(dec.decode(&mut b).is_err());
    // PING too short.
    let mut b = BytesMut::from(&[0x80, 3, 0, 6, 0, 0, 0, 2, 0, 0][..]);
    assert!(Decoder::new().decode(&mut b).is_err());
    // SYN_STREAM whose header block is not zlib.
    let mut b = BytesMut::from(
        &[
            0x80, 3, 0, 1, 0, 0, 0, 14, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4,
        ][..],
    );
    assert!(Decoder::new().decode(&mut b).is_err());
    // SYN_REPLY too short for its stream id.
    let mut b = BytesMut::from(&[0x80, 3, 0, 2, 0, 0, 0, 2, 0, 0][..]);
    assert!(Decoder::new().decode(&mut b).is_err());
    // Unknown control types are skipped, not fatal.
    let mut b = BytesMut::from(&[0x80, 3, 0, 0x20, 0, 0, 0, 1, 9][..]);
    assert_eq!(
        Decoder::new().decode(&mut b).unwrap(),
        Some(Frame::Unknown(0x20))
    );
    assert!(b.is_empty());
}

#[test]
fn lying_header_counts_are_refused() {
    // A real compressed block whose pair count claims more than it holds.
    let mut enc = Encoder::new().unwrap();
    let mut raw = BytesMut::new();
    raw.put_u32(1000);
    raw.put_u32(1);
    raw.put_slice(b"a");
    let mut input: &[u8] = &raw;
    let mut block = Vec::with_capacity(256);
    while !input.is_empty() {
        let before = enc.deflate.total_in();
        enc.deflate
            .compress_vec(input, &mut block, FlushCompress::Sync)
            .unwrap();
        input = &input[(enc.deflate.total_in() - before) as usize..];
    }
    let mut wire = BytesMut::new();
    let mut body = BytesMut::new();
    body.put_u32(1);
    body.put_slice(&block);
    control(&mut wire, SYN_REPLY, 0, &body).unwrap();
    assert!(Decoder::new().decode(&mut wire).is_err());
}
