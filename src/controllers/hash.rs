//! The hashing pieces upstream's controllers share: 32-bit FNV (Go's
//! `hash/fnv`) and `rand.SafeEncodeString`, which renders a hash as a name
//! suffix (pod-template-hash, ControllerRevision names).

/// Upstream `rand.SafeEncodeString`'s alphabet: no vowels (no words), no
/// look-alikes (0/1/3).
pub const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

pub const FNV_OFFSET: u32 = 2_166_136_261;
const FNV_PRIME: u32 = 16_777_619;

/// FNV-1 (multiply, then xor), as Go's `fnv.New32`.
pub fn fnv1(bytes: &[u8]) -> u32 {
    bytes
        .iter()
        .fold(FNV_OFFSET, |h, b| h.wrapping_mul(FNV_PRIME) ^ u32::from(*b))
}

/// FNV-1a (xor, then multiply), as Go's `fnv.New32a`, continuing from
/// `start` ([`FNV_OFFSET`] for a fresh hash).
pub fn fnv1a(start: u32, bytes: &[u8]) -> u32 {
    bytes
        .iter()
        .fold(start, |h, b| (h ^ u32::from(*b)).wrapping_mul(FNV_PRIME))
}

/// Maps every byte into [`ALPHANUMS`], as upstream does with the decimal
/// text of a hash.
pub fn safe_encode(text: &str) -> String {
    text.bytes()
        .map(|b| ALPHANUMS[usize::from(b) % ALPHANUMS.len()] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_variants_match_reference_vectors() {
        // Reference values of Go's hash/fnv.
        assert_eq!(fnv1(b"a"), 0x050c_5d7e);
        assert_eq!(fnv1(b""), FNV_OFFSET);
        assert_eq!(fnv1a(FNV_OFFSET, b""), 0x811c_9dc5);
        assert_eq!(fnv1a(FNV_OFFSET, b"a"), 0xe40c_292c);
        assert_eq!(fnv1a(FNV_OFFSET, b"foobar"), 0xbf9c_f968);
    }

    #[test]
    fn safe_encoding_uses_upstreams_alphabet() {
        // '0' is byte 48: 48 % 27 = 21 -> '4'; '9' is 57 % 27 = 3 -> 'f'.
        assert_eq!(safe_encode("09"), "4f");
    }
}
