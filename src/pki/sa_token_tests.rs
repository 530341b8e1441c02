use super::*;

fn claims(now: i64) -> Claims {
    Claims {
        aud: vec![ISSUER.to_string()],
        exp: now + 3600,
        iat: now,
        iss: ISSUER.to_string(),
        jti: "j".into(),
        kubernetes: KubernetesClaim {
            namespace: "ns".into(),
            serviceaccount: Ref {
                name: "default".into(),
                uid: "u1".into(),
            },
            ..Default::default()
        },
        nbf: now,
        sub: "system:serviceaccount:ns:default".into(),
    }
}

fn aud() -> Vec<String> {
    vec![ISSUER.to_string()]
}

const NOW: i64 = 1_800_000_000;

#[test]
fn signed_tokens_verify_and_carry_their_claims() {
    let key = ServiceAccountKey::generate();
    let token = key.sign(&claims(NOW)).unwrap();
    let (got, shared) = key.verify(&token, NOW, &aud()).unwrap();
    assert_eq!(got, claims(NOW));
    assert_eq!(shared, aud());
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(token.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert_eq!(header["alg"], "ES256");
    assert_eq!(header["kid"], key.kid());
    assert_eq!(key.kid().len(), 43);
}

#[test]
fn wrong_key_time_issuer_audience_are_refused() {
    let key = ServiceAccountKey::generate();
    let other = ServiceAccountKey::generate();
    let token = key.sign(&claims(NOW)).unwrap();
    assert_eq!(
        other.verify(&token, NOW, &aud()).unwrap_err(),
        JwtError::Signature
    );
    assert_eq!(
        key.verify(&token, NOW + 3600 + 61, &aud()).unwrap_err(),
        JwtError::Expired
    );
    assert!(key.verify(&token, NOW + 3600 + 59, &aud()).is_ok());
    assert_eq!(
        key.verify(&token, NOW - 120, &aud()).unwrap_err(),
        JwtError::NotYetValid
    );
    assert_eq!(
        key.verify(&token, NOW, &["other".to_string()]).unwrap_err(),
        JwtError::Audience
    );
    let mut c = claims(NOW);
    c.iss = "https://evil".into();
    let t = key.sign(&c).unwrap();
    assert_eq!(key.verify(&t, NOW, &aud()).unwrap_err(), JwtError::Issuer);
    let mut c = claims(NOW);
    c.sub = "system:serviceaccount:ns:admin".into();
    let t = key.sign(&c).unwrap();
    assert_eq!(
        key.verify(&t, NOW, &aud()).unwrap_err(),
        JwtError::NotServiceAccount
    );
}

#[test]
fn tampered_payload_or_alg_none_is_refused() {
    let key = ServiceAccountKey::generate();
    let token = key.sign(&claims(NOW)).unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    let mut evil = claims(NOW);
    evil.kubernetes.serviceaccount.name = "admin".into();
    evil.sub = "system:serviceaccount:ns:admin".into();
    let forged = format!("{}.{}.{}", parts[0], b64_json(&evil), parts[2]);
    assert_eq!(
        key.verify(&forged, NOW, &aud()).unwrap_err(),
        JwtError::Signature
    );
    let none = format!(
        "{}.{}.",
        b64_json(&serde_json::json!({"alg": "none"})),
        parts[1]
    );
    assert_eq!(
        key.verify(&none, NOW, &aud()).unwrap_err(),
        JwtError::Algorithm
    );
}

/// A small xorshift generator: the loop is reproducible without a crate.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

#[test]
fn garbage_and_mutated_tokens_never_panic_nor_verify() {
    let key = ServiceAccountKey::generate();
    let token = key.sign(&claims(NOW)).unwrap();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let alphabet = b"abcXYZ019-_.=+/ {}\"\xff";
    for round in 0..3000 {
        let candidate: Vec<u8> = if round % 2 == 0 {
            let len = rng.below(300);
            (0..len)
                .map(|_| alphabet[rng.below(alphabet.len())])
                .collect()
        } else {
            let mut t = token.clone().into_bytes();
            for _ in 0..=rng.below(4) {
                let i = rng.below(t.len());
                match rng.below(3) {
                    0 => t[i] = alphabet[rng.below(alphabet.len())],
                    1 => {
                        t.remove(i);
                    }
                    _ => t.insert(i, alphabet[rng.below(alphabet.len())]),
                }
            }
            t
        };
        let text = String::from_utf8_lossy(&candidate);
        if text == token {
            continue;
        }
        assert!(key.verify(&text, NOW, &aud()).is_err(), "{text}");
    }
    assert_eq!(
        key.verify(&"a".repeat(MAX_TOKEN_BYTES + 1), NOW, &aud())
            .unwrap_err(),
        JwtError::Malformed
    );
}

#[test]
fn the_key_is_created_once_with_mode_0600() {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("nk-sakey-{}", std::process::id()));
    let first = ensure_service_account_key(&dir).unwrap();
    let mode = std::fs::metadata(dir.join("service.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let second = ensure_service_account_key(&dir).unwrap();
    assert_eq!(first.kid(), second.kid());
    let token = first.sign(&claims(NOW)).unwrap();
    assert!(second.verify(&token, NOW, &aud()).is_ok());
    std::fs::remove_dir_all(&dir).unwrap();
}
