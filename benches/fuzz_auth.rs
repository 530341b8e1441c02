//! Fuzzing of everything that parses credentials or stored secrets, for a
//! given time, with random and mutated inputs (a seeded generator: the seed
//! is printed, `--seed N` replays it). No input may panic; tampered inputs
//! must never be accepted.
//!
//! Targets, each for an equal share of the time:
//! - `jwt`: service-account JWT verification (`pki::ServiceAccountKey::verify`)
//!   on random bytes, mutated valid tokens, base64 junk, forged headers and
//!   signatures, huge segments;
//! - `cert`: client certificate → identity (`pki::client_identity`) on
//!   random and mutated DER and chains;
//! - `join`: join token parsing (`pki::JoinToken::parse`);
//! - `envelope`: the secrets-at-rest envelope decoder (`k8s:enc:aesgcm:v1:`)
//!   on garbage, prefixes with garbage, mutated sealed values;
//! - `bearer`: `Authorization` headers (random, mutated join tokens and
//!   JWTs signed with the server's own key, other schemes, huge values)
//!   sent to a real `nanokube server`: never a 5xx, never a crash.
//!
//! `cargo bench --bench fuzz_auth -- --seconds 300` (default 300); under
//! `cargo test --all-targets` a smoke run of about 5 s.

#[path = "../tests/common/mod.rs"]
mod common;
#[allow(dead_code)]
#[path = "../src/encryption/envelope.rs"]
mod envelope;
#[allow(dead_code, unused_imports)]
#[path = "../src/pki/mod.rs"]
mod pki;
#[path = "support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use bytes::Bytes;
use http_body_util::Full;
use rustls::pki_types::CertificateDer;

/// What `envelope.rs` reports (the encryption module's error, reduced).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Config(String),
    #[error("{0}")]
    Random(String),
    #[error("encrypting failed")]
    Encrypt,
    #[error("secrets encryption: stored value does not decrypt with key {0:?}")]
    Decrypt(String),
    #[error("secrets encryption: no key for {0}")]
    UnknownKey(String),
}

/// splitmix64: fast, seedable, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = self.below(max + 1);
        (0..n).map(|_| self.next() as u8).collect()
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

/// One to four random edits: bit flips, byte swaps, inserts, deletes,
/// duplicated or cut runs, a '.' or ':' dropped in.
fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(v.len() + 1);
        match rng.below(8) {
            0 if !v.is_empty() => {
                let i = at.min(v.len() - 1);
                v[i] ^= 1 << rng.below(8);
            }
            1 if !v.is_empty() => {
                let i = at.min(v.len() - 1);
                v[i] = rng.next() as u8;
            }
            2 => v.insert(at, rng.next() as u8),
            3 if at < v.len() => {
                v.remove(at);
            }
            4 => v.truncate(at),
            5 if at < v.len() => {
                let end = (at + 1 + rng.below(16)).min(v.len());
                let run = v[at..end].to_vec();
                v.splice(at..at, run);
            }
            6 => v.insert(at, if rng.chance(50) { b'.' } else { b':' }),
            _ => v.insert(at, b"=-_+/ \t"[rng.below(7)]),
        }
    }
    v
}

/// Runs `one` on fresh inputs for `budget`; a panic stops the bench with
/// the seed and iteration to replay.
fn run(name: &str, budget: Duration, seed: u64, mut one: impl FnMut(&mut Rng)) -> u64 {
    let mut rng = Rng(seed ^ fxhash(name));
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < budget {
        for _ in 0..64 {
            let before = rng.0;
            if catch_unwind(AssertUnwindSafe(|| one(&mut rng))).is_err() {
                eprintln!("{name}: PANIC at iteration {n} (rng state {before:#x}, seed {seed})");
                std::process::exit(1);
            }
            n += 1;
        }
    }
    n
}

fn fxhash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    })
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn claims(exp_in: i64) -> pki::TokenClaims {
    let t = now();
    pki::TokenClaims {
        aud: vec![pki::SERVICE_ACCOUNT_ISSUER.to_string()],
        exp: t + exp_in,
        iat: t,
        iss: pki::SERVICE_ACCOUNT_ISSUER.to_string(),
        jti: String::new(),
        kubernetes: pki::KubernetesClaim {
            namespace: "default".into(),
            serviceaccount: pki::TokenRef {
                name: "default".into(),
                uid: "5d3c1b7e-0000-4000-8000-000000000001".into(),
            },
            ..Default::default()
        },
        nbf: t,
        sub: "system:serviceaccount:default:default".into(),
    }
}

/// Token-shaped junk: segments of base64url over random bytes or JSON.
fn junk_token(rng: &mut Rng, valid: &str) -> String {
    let seg = |rng: &mut Rng| -> String {
        match rng.below(4) {
            0 => URL_SAFE_NO_PAD.encode(rng.bytes(64)),
            1 => URL_SAFE_NO_PAD.encode(r#"{"alg":"ES256","kid":"x"}"#),
            2 => URL_SAFE_NO_PAD.encode(format!(
                r#"{{"alg":"{}"}}"#,
                ["none", "HS256", "RS256", "ES256", ""][rng.below(5)]
            )),
            _ => valid.split('.').nth(rng.below(3)).unwrap_or("").to_string(),
        }
    };
    let parts = rng.below(6);
    (0..parts).map(|_| seg(rng)).collect::<Vec<_>>().join(".")
}

fn fuzz_jwt(budget: Duration, seed: u64, stats: &mut Vec<String>) -> u64 {
    let dir = common::tempdir();
    let key = pki::ensure_service_account_key(dir.path()).expect("signing key");
    let other = pki::ensure_service_account_key(&dir.path().join("other")).expect("second key");
    let valid = key.sign(&claims(3600)).expect("sign");
    let audiences = [pki::SERVICE_ACCOUNT_ISSUER.to_string()];
    assert!(key.verify(&valid, now(), &audiences).is_ok());
    let forged = other.sign(&claims(3600)).expect("sign");
    let expired = key.sign(&claims(-3600)).expect("sign");
    let mut accepted_tampered = 0u64;
    let n = run("jwt", budget, seed, |rng| {
        let token: String = match rng.below(10) {
            0 | 1 => String::from_utf8_lossy(&rng.bytes(300)).into_owned(),
            2..=5 => String::from_utf8_lossy(&mutate(rng, valid.as_bytes())).into_owned(),
            6 => junk_token(rng, &valid),
            7 => {
                // Huge segments, around and over the size limit.
                let (h, rest) = valid.split_once('.').unwrap_or(("", ""));
                let big = "A".repeat(8_000 + rng.below(40_000));
                match rng.below(3) {
                    0 => format!("{h}.{big}.{}", rest.rsplit('.').next().unwrap_or("")),
                    1 => format!("{big}.{rest}"),
                    _ => format!("{valid}{big}"),
                }
            }
            8 => String::from_utf8_lossy(&mutate(rng, forged.as_bytes())).into_owned(),
            _ => [forged.clone(), expired.clone()][rng.below(2)].clone(),
        };
        if let Ok((claims, _)) = key.verify(&token, now(), &audiences) {
            if token != valid {
                accepted_tampered += 1;
                eprintln!(
                    "jwt: accepted a token that is not the one signed: {token:?} → {}",
                    claims.sub
                );
            }
        }
    });
    stats.push(format!("tampered tokens accepted: {accepted_tampered}"));
    assert_eq!(accepted_tampered, 0, "tampered JWTs verified");
    n
}

fn fuzz_cert(budget: Duration, seed: u64) -> u64 {
    let ca_key = rcgen::KeyPair::generate().expect("ca key");
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "fuzz-ca");
    let ca_cert = ca.self_signed(&ca_key).expect("ca cert");
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let mut leaf = rcgen::CertificateParams::new(Vec::<String>::new()).expect("leaf params");
    leaf.distinguished_name
        .push(rcgen::DnType::CommonName, "alice");
    leaf.distinguished_name
        .push(rcgen::DnType::OrganizationName, "devs");
    let leaf_key = rcgen::KeyPair::generate().expect("leaf key");
    let leaf_der = leaf
        .signed_by(&leaf_key, &issuer)
        .expect("leaf")
        .der()
        .to_vec();
    let ca_der = ca_cert.der().to_vec();
    let id = pki::client_identity(&[CertificateDer::from(leaf_der.clone())]).expect("identity");
    assert_eq!(
        (id.user.as_str(), id.groups.as_slice()),
        ("alice", &["devs".to_string()][..])
    );
    run("cert", budget, seed, |rng| {
        let first = match rng.below(6) {
            0 => rng.bytes(600),
            1..=3 => mutate(rng, &leaf_der),
            4 => {
                let mut v = leaf_der.clone();
                v.truncate(rng.below(v.len()));
                v
            }
            _ => mutate(rng, &ca_der),
        };
        let mut chain = vec![CertificateDer::from(first)];
        if rng.chance(30) {
            chain.push(CertificateDer::from(mutate(rng, &ca_der)));
        }
        if rng.chance(5) {
            chain.clear();
        }
        let _ = pki::client_identity(&chain);
    })
}

fn fuzz_join(budget: Duration, seed: u64) -> u64 {
    let valid = format!(
        "K10{}::server:{}",
        "ab".repeat(32),
        "0123456789abcdef0123456789abcdef"
    );
    let parsed = pki::JoinToken::parse(&valid).expect("valid join token");
    run("join", budget, seed, |rng| {
        let text = match rng.below(4) {
            0 => String::from_utf8_lossy(&rng.bytes(200)).into_owned(),
            1 => format!("K10{}", String::from_utf8_lossy(&rng.bytes(100))),
            _ => String::from_utf8_lossy(&mutate(rng, valid.as_bytes())).into_owned(),
        };
        if let Ok(t) = pki::JoinToken::parse(&text) {
            let _ = pki::secrets_equal(&t.secret, &parsed.secret);
        }
    })
}

fn fuzz_envelope(budget: Duration, seed: u64, stats: &mut Vec<String>) -> u64 {
    let keys = vec![
        envelope::Key::new("k2".into(), &[2; 32]).expect("key"),
        envelope::Key::new("k1".into(), &[1; 32]).expect("key"),
    ];
    let aad = b"/registry/secrets/default/s1";
    let plain = br#"{"kind":"Secret","data":{"password":"aHVudGVyMg=="}}"#;
    let sealed = keys[1].seal(aad, plain).expect("seal");
    assert_eq!(
        envelope::open(&keys, aad, &sealed)
            .expect("open")
            .as_deref(),
        Some(&plain[..])
    );
    let mut tampered_opened = 0u64;
    let n = run("envelope", budget, seed, |rng| {
        let input = match rng.below(6) {
            0 => rng.bytes(200),
            1 => [&b"k8s:enc:aesgcm:v1:"[..], &rng.bytes(80)].concat(),
            2 => [&b"k8s:enc:aesgcm:v1:k1:"[..], &rng.bytes(60)].concat(),
            3 => [&b"k8s:enc:"[..], &rng.bytes(40)].concat(),
            _ => mutate(rng, &sealed),
        };
        if let Ok(Some(_)) = envelope::open(&keys, aad, &input) {
            if input != sealed {
                tampered_opened += 1;
            }
        }
        let _ = envelope::sealer(&keys, &input);
    });
    stats.push(format!("tampered values decrypted: {tampered_opened}"));
    assert_eq!(tampered_opened, 0, "tampered ciphertext decrypted");
    n
}

/// A TLS client trusting the server's CA, presenting no certificate.
fn anonymous_tls(kubeconfig: &str) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    let ca = support::kubeconfig_field(kubeconfig, "certificate-authority-data");
    for der in support::pem_blocks(&ca) {
        roots.add(CertificateDer::from(der)).expect("ca cert");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("tls versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    Arc::new(config)
}

fn fuzz_bearer(budget: Duration, seed: u64, stats: &mut Vec<String>) -> u64 {
    let server = support::start_server(&[]);
    // The signing key and the join token exist once the API is served.
    let readyz = format!("https://127.0.0.1:{}/readyz", server.port);
    let deadline = Instant::now() + Duration::from_secs(30);
    while common::http_status(&readyz) != Some(200) {
        assert!(Instant::now() < deadline, "server not ready within 30 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    let tls_dir = server.data_dir.join("server").join("tls");
    let key = pki::ensure_service_account_key(&tls_dir).expect("the server's signing key");
    let jwt = key.sign(&claims(3600)).expect("sign");
    let join = std::fs::read_to_string(server.data_dir.join("server").join("token"))
        .expect("join token")
        .trim()
        .to_string();
    let secret = join.rsplit(':').next().unwrap_or_default().to_string();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let tls = anonymous_tls(&server.kubeconfig);
    let mut rng = Rng(seed ^ fxhash("bearer"));
    let mut codes: BTreeMap<String, u64> = BTreeMap::new();
    let mut n = 0u64;
    let start = Instant::now();
    rt.block_on(async {
        let mut send = support::connect(server.port, tls.clone()).await;
        while start.elapsed() < budget {
            let (kind, value): (&str, Vec<u8>) = match rng.below(8) {
                0 => ("random", rng.bytes(200)),
                1 | 2 => (
                    "jwt",
                    [&b"Bearer "[..], &mutate(&mut rng, jwt.as_bytes())].concat(),
                ),
                3 => (
                    "join",
                    [&b"Bearer "[..], &mutate(&mut rng, join.as_bytes())].concat(),
                ),
                4 => (
                    "header",
                    mutate(&mut rng, format!("Bearer {jwt}").as_bytes()),
                ),
                5 => (
                    "basic",
                    format!("Basic {}", STANDARD.encode(rng.bytes(40))).into_bytes(),
                ),
                6 => (
                    "junk",
                    format!("Bearer {}", junk_token(&mut rng, &jwt)).into_bytes(),
                ),
                _ => (
                    "huge",
                    format!("Bearer {}", "A".repeat(rng.below(12_000))).into_bytes(),
                ),
            };
            let Ok(value) = http::HeaderValue::from_bytes(&value) else {
                *codes.entry(format!("{kind}:not-a-header")).or_default() += 1;
                continue;
            };
            let req = http::Request::builder()
                .uri("https://127.0.0.1/api/v1/namespaces/default/secrets")
                .header(http::header::AUTHORIZATION, value.clone())
                .body(Full::new(Bytes::new()))
                .expect("request");
            n += 1;
            let sent = async {
                send.ready().await?;
                send.send_request(req).await
            };
            match tokio::time::timeout(Duration::from_secs(10), sent).await {
                Ok(Ok(resp)) => {
                    let code = resp.status().as_u16();
                    assert!(
                        code < 500,
                        "the server answered {code} to a bearer credential"
                    );
                    let mut kind = kind.to_string();
                    if kind == "join" && code < 400 {
                        // The server checks the secret only (the CA hash is
                        // the agent's check, the user part is free, as k3s).
                        let sent = String::from_utf8_lossy(value.as_bytes()).into_owned();
                        let intact = sent.trim().ends_with(&format!(":{secret}"))
                            || sent.trim().ends_with(&format!(" {secret}"));
                        assert!(
                            intact,
                            "a join token with a changed secret was accepted: {sent:?}"
                        );
                        kind = "join(secret intact)".into();
                    }
                    *codes.entry(format!("{kind}:{code}")).or_default() += 1;
                }
                // A header over the server's limit resets the stream or the
                // connection: a refusal, not a crash (checked below).
                Ok(Err(_)) => {
                    *codes.entry(format!("{kind}:reset")).or_default() += 1;
                    send = support::connect(server.port, tls.clone()).await;
                }
                Err(_) => panic!("the server did not answer within 10 s"),
            }
        }
    });
    let mut probe = server;
    assert!(
        probe.child.try_wait().expect("try_wait").is_none(),
        "the server exited during the bearer fuzzing"
    );
    stats.push(format!("bearer answers: {codes:?}"));
    n
}

fn main() {
    let Some((smoke, _)) = common::bench_mode(1.0) else {
        return;
    };
    let args: Vec<String> = std::env::args().collect();
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .map(|v| {
                v.parse::<u64>()
                    .unwrap_or_else(|_| panic!("{name} {v:?}: not a number"))
            })
    };
    let seconds = flag("--seconds").unwrap_or(if smoke { 5 } else { 300 });
    let seed = flag("--seed").unwrap_or_else(|| now() as u64);
    let budget = Duration::from_secs_f64(seconds as f64 / 5.0);
    println!("fuzz_auth: {seconds} s in all, seed {seed}");
    let mut stats = Vec::new();
    let report = |name: &str, n: u64| {
        println!(
            "  {name:<9} {n:>10} inputs  {:>9.0}/s  no panic",
            n as f64 / budget.as_secs_f64()
        );
    };
    let n = fuzz_jwt(budget, seed, &mut stats);
    report("jwt", n);
    let n = fuzz_cert(budget, seed);
    report("cert", n);
    let n = fuzz_join(budget, seed);
    report("join", n);
    let n = fuzz_envelope(budget, seed, &mut stats);
    report("envelope", n);
    let n = fuzz_bearer(budget, seed, &mut stats);
    report("bearer", n);
    for s in stats {
        println!("  {s}");
    }
}
