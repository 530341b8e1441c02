//! The protobuf wire format: varints, keys and length-delimited fields,
//! read without trusting any length in the input.

use super::ProtoError;

pub(super) const VARINT: u8 = 0;
pub(super) const FIXED64: u8 = 1;
pub(super) const LEN: u8 = 2;
pub(super) const FIXED32: u8 = 5;

/// One field of a message as it sits on the wire.
#[derive(Debug, Clone, Copy)]
pub(super) enum Val<'a> {
    Varint(u64),
    Fixed64(u64),
    Len(&'a [u8]),
    /// Kubernetes has no fixed32 fields; the value is only skipped.
    Fixed32,
}

impl Val<'_> {
    pub(super) fn wire_type(&self) -> u8 {
        match self {
            Val::Varint(_) => VARINT,
            Val::Fixed64(_) => FIXED64,
            Val::Len(_) => LEN,
            Val::Fixed32 => FIXED32,
        }
    }
}

/// Reads the fields of one message in order.
pub(super) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(super) fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    pub(super) fn varint(&mut self) -> Result<u64, ProtoError> {
        let mut value = 0u64;
        // At most 10 bytes carry the 64 bits; a longer run is malformed.
        for i in 0..10 {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err(ProtoError::Truncated);
            };
            self.pos += 1;
            value |= u64::from(b & 0x7f) << (7 * i);
            if b < 0x80 {
                return Ok(value);
            }
        }
        Err(ProtoError::Varint)
    }

    pub(super) fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    pub(super) fn fixed64(&mut self) -> Result<u64, ProtoError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], ProtoError> {
        let end = self.pos.checked_add(n).ok_or(ProtoError::Truncated)?;
        let out = self.buf.get(self.pos..end).ok_or(ProtoError::Truncated)?;
        self.pos = end;
        Ok(out)
    }

    /// The next (field number, value), or None at the end of the message.
    pub(super) fn next_field(&mut self) -> Result<Option<(u32, Val<'a>)>, ProtoError> {
        if self.is_empty() {
            return Ok(None);
        }
        let key = self.varint()?;
        let tag = u32::try_from(key >> 3).map_err(|_| ProtoError::FieldNumber)?;
        if tag == 0 {
            return Err(ProtoError::FieldNumber);
        }
        let val = match (key & 7) as u8 {
            VARINT => Val::Varint(self.varint()?),
            FIXED64 => Val::Fixed64(self.fixed64()?),
            LEN => {
                let n = usize::try_from(self.varint()?).map_err(|_| ProtoError::Truncated)?;
                Val::Len(self.take(n)?)
            }
            FIXED32 => {
                self.take(4)?;
                Val::Fixed32
            }
            // Groups (3, 4) are proto2-only and unused by Kubernetes.
            other => return Err(ProtoError::UnsupportedWireType(other)),
        };
        Ok(Some((tag, val)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fields_and_rejects_malformed_input() {
        let mut r = Reader::new(&[0x08, 0x96, 0x01, 0x12, 0x02, b'h', b'i']);
        assert!(matches!(r.next_field(), Ok(Some((1, Val::Varint(150))))));
        assert!(matches!(r.next_field(), Ok(Some((2, Val::Len(b"hi"))))));
        assert!(matches!(r.next_field(), Ok(None)));

        let cases: &[(&[u8], ProtoError)] = &[
            (&[0x08, 0x96], ProtoError::Truncated),
            (&[0x12, 0x05, b'h'], ProtoError::Truncated),
            (
                &[
                    0x12, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
                ],
                ProtoError::Truncated,
            ),
            (
                &[
                    0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
                ],
                ProtoError::Varint,
            ),
            (&[0x0b], ProtoError::UnsupportedWireType(3)),
            (&[0x00, 0x00], ProtoError::FieldNumber),
            (&[0x09, 1, 2, 3], ProtoError::Truncated),
        ];
        for (bytes, want) in cases {
            let got = Reader::new(bytes).next_field().err();
            assert_eq!(
                got.map(|e| e.to_string()),
                Some(want.to_string()),
                "{bytes:?}"
            );
        }
    }
}
