//! Secrets at rest (`--secrets-encryption`): the datastore holds only
//! ciphertext (checked with a real `etcdctl` on the server's socket), real
//! kubectl reads Secrets as before, across restarts, across enabling
//! encryption on a data dir that has plaintext Secrets, and across key
//! rotation with `nanokube secrets-encrypt`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use base64::{engine::general_purpose::STANDARD, Engine};

const PASSWORD: &str = "hunter2-plain";

/// A `nanokube server` on a data dir kept across restarts; killed on drop.
struct Server {
    child: Child,
    data: PathBuf,
    port: u16,
}

impl Server {
    fn start(data: &Path, encrypt: bool) -> Server {
        let port = crate::common::free_port();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(data.with_extension("log"))
            .expect("log file");
        let mut cmd = Command::new(crate::common::NANOKUBE);
        cmd.args(["server", "--disable-agent", "--bind-address", "127.0.0.1"])
            .args(["--https-listen-port", &port.to_string()])
            .arg("--data-dir")
            .arg(data)
            .arg("--write-kubeconfig")
            .arg(data.join("kubeconfig.yaml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        if encrypt {
            cmd.arg("--secrets-encryption");
        }
        let mut s = Server {
            child: cmd.spawn().expect("spawn nanokube server"),
            data: data.to_path_buf(),
            port,
        };
        let started = Instant::now();
        let url = format!("https://127.0.0.1:{port}/readyz");
        loop {
            if let Some(status) = s.child.try_wait().unwrap() {
                panic!("server exited ({status}):\n{}", s.log());
            }
            if crate::common::http_status(&url) == Some(200) {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "server not ready within 30 s:\n{}",
                s.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        s
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.data.with_extension("log")).unwrap_or_default()
    }

    fn stop(mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "server did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kubeconfig(&self) -> PathBuf {
        self.data.join("kubeconfig.yaml")
    }

    fn kubectl(&self, args: &[&str]) -> Output {
        crate::common::run_with_timeout(
            Command::new(crate::common::kubectl_path("1.33"))
                .arg("--kubeconfig")
                .arg(self.kubeconfig())
                .args(args),
            None,
            Duration::from_secs(30),
        )
    }

    fn kubectl_ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}\nserver log:\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The decoded `password` of a Secret, read through the API.
    fn password(&self, name: &str) -> String {
        let b64 = self.kubectl_ok(&["get", "secret", name, "-o", "jsonpath={.data.password}"]);
        String::from_utf8(STANDARD.decode(b64.trim()).expect("base64")).unwrap()
    }

    /// The raw stored value, as `etcdctl get` on the server's socket shows it.
    fn stored(&self, key: &str) -> Vec<u8> {
        let endpoint = format!("unix://{}", self.data.join("server/etcd.sock").display());
        let out = crate::common::etcdctl(&endpoint, &["get", key, "--print-value-only"], None);
        assert!(
            out.status.success(),
            "etcdctl get {key}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// Keys of every stored Secret.
    fn secret_keys(&self) -> Vec<String> {
        let endpoint = format!("unix://{}", self.data.join("server/etcd.sock").display());
        let out = crate::common::etcdctl(
            &endpoint,
            &["get", "/registry/secrets/", "--prefix", "--keys-only"],
            None,
        );
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect()
    }

    fn secrets_encrypt(&self, op: &str) -> String {
        let out = crate::common::run_with_timeout(
            Command::new(crate::common::NANOKUBE)
                .args(["secrets-encrypt", "--kubeconfig"])
                .arg(self.kubeconfig())
                .arg("--data-dir")
                .arg(&self.data)
                .arg(op),
            None,
            Duration::from_secs(60),
        );
        assert!(
            out.status.success(),
            "secrets-encrypt {op} failed: {}\nserver log:\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// No form of the password is in a stored value: neither the text nor its
/// base64 (as Secrets carry it in JSON), padded or not.
fn assert_no_plaintext(stored: &[u8]) {
    let b64 = STANDARD.encode(PASSWORD);
    for needle in [PASSWORD, b64.as_str(), b64.trim_end_matches('=')] {
        assert!(
            !contains(stored, needle),
            "stored value holds {needle:?}: {}",
            String::from_utf8_lossy(stored)
        );
    }
}

/// The `Name  Secrets` count of one key row of `secrets-encrypt status`.
fn row_count(status: &str, name: &str) -> Option<usize> {
    status
        .lines()
        .filter(|l| l.contains(" AES-GCM ") || l.contains(" identity "))
        .find(|l| l.split_whitespace().any(|w| w == name))
        .and_then(|l| l.split_whitespace().nth_back(0)?.parse().ok())
}

#[test]
fn secrets_are_ciphertext_at_rest_and_readable_across_restarts_and_rotation() {
    crate::common::require_etcdctl();
    let tmp = crate::common::short_tempdir();
    let data = tmp.path().join("d");

    // Before encryption: a Secret stored in the clear.
    let server = Server::start(&data, false);
    server.kubectl_ok(&[
        "create",
        "secret",
        "generic",
        "old",
        &format!("--from-literal=password={PASSWORD}"),
    ]);
    assert!(contains(
        &server.stored("/registry/secrets/default/old"),
        "\"password\""
    ));
    let off = server.secrets_encrypt("status");
    assert!(off.starts_with("Encryption Status: Disabled"), "{off}");
    server.stop();

    // Encryption on: the key file appears, 0600, upstream's format.
    let server = Server::start(&data, true);
    let key_file = data.join("server/cred/encryption-config.json");
    let mode = std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "key file mode");
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&key_file).unwrap()).unwrap();
    assert_eq!(config["kind"], "EncryptionConfiguration");
    assert_eq!(config["resources"][0]["resources"][0], "secrets");
    let key = &config["resources"][0]["providers"][0]["aesgcm"]["keys"][0];
    assert_eq!(key["name"], "aesgcmkey");
    assert_eq!(
        STANDARD
            .decode(key["secret"].as_str().unwrap())
            .unwrap()
            .len(),
        32
    );
    assert_eq!(
        config["resources"][0]["providers"][1]["identity"],
        serde_json::json!({})
    );

    server.kubectl_ok(&[
        "create",
        "secret",
        "generic",
        "s1",
        &format!("--from-literal=password={PASSWORD}"),
    ]);
    let stored = server.stored("/registry/secrets/default/s1");
    assert!(
        stored.starts_with(b"k8s:enc:aesgcm:v1:aesgcmkey:"),
        "{}",
        String::from_utf8_lossy(&stored)
    );
    assert_no_plaintext(&stored);
    assert_eq!(server.password("s1"), PASSWORD);
    // The one stored in the clear before stays readable (and in the clear).
    assert_eq!(server.password("old"), PASSWORD);
    assert!(!server
        .stored("/registry/secrets/default/old")
        .starts_with(b"k8s:enc:"));
    // Updates are encrypted too.
    server.kubectl_ok(&["label", "secret", "s1", "tier=gold"]);
    assert_no_plaintext(&server.stored("/registry/secrets/default/s1"));
    assert_eq!(server.password("s1"), PASSWORD);

    let all = server.secret_keys().len();
    let status = server.secrets_encrypt("status");
    assert!(
        status.starts_with("Encryption Status: Enabled\nActive Key: aesgcmkey\n"),
        "{status}"
    );
    assert_eq!(row_count(&status, "aesgcmkey"), Some(all - 1), "{status}");
    assert_eq!(row_count(&status, "(plaintext)"), Some(1), "{status}");

    // Only cluster admins reach the endpoint (no credential: refused).
    let url = format!(
        "https://127.0.0.1:{}/nanokube/v1/secrets-encrypt/status",
        server.port
    );
    let code = crate::common::http_status(&url);
    assert!(
        matches!(code, Some(401 | 403)),
        "anonymous status: {code:?}"
    );

    // A restart reads the key file again.
    server.stop();
    let server = Server::start(&data, true);
    assert_eq!(server.password("s1"), PASSWORD);
    assert_eq!(server.password("old"), PASSWORD);

    // Rotation: a new active key, every Secret re-encrypted with it, the
    // old key dropped from the file.
    let rotated = server.secrets_encrypt("rotate");
    assert!(
        rotated.contains(&format!("Re-encrypted Secrets: {all}\n")),
        "{rotated}"
    );
    assert!(rotated.contains("Dropped Keys: aesgcmkey\n"), "{rotated}");
    let status = server.secrets_encrypt("status");
    let active = status
        .lines()
        .find_map(|l| l.strip_prefix("Active Key: "))
        .unwrap()
        .to_string();
    assert!(active.starts_with("aesgcmkey-"), "{status}");
    assert_eq!(row_count(&status, &active), Some(all), "{status}");
    assert_eq!(row_count(&status, "(plaintext)"), Some(0), "{status}");
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&key_file).unwrap()).unwrap();
    let keys = config["resources"][0]["providers"][0]["aesgcm"]["keys"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(keys.len(), 1, "{config}");
    assert_eq!(keys[0]["name"], active.as_str());
    let prefix = format!("k8s:enc:aesgcm:v1:{active}:");
    for name in ["s1", "old"] {
        let stored = server.stored(&format!("/registry/secrets/default/{name}"));
        assert!(stored.starts_with(prefix.as_bytes()), "{name}");
        assert_no_plaintext(&stored);
        assert_eq!(server.password(name), PASSWORD);
    }

    // A value sealed with a key the server does not have: a clear error on
    // the paths that read the datastore, never a crash or garbage.
    let endpoint = format!("unix://{}", data.join("server/etcd.sock").display());
    let out = crate::common::etcdctl(
        &endpoint,
        &[
            "put",
            "/registry/secrets/default/lost",
            "k8s:enc:aesgcm:v1:gone:0123456789abcdef0123456789abcdef",
        ],
        None,
    );
    assert!(out.status.success());
    let out = server.kubectl(&["label", "secret", "lost", "x=y"]);
    assert!(!out.status.success());
    let status = server.secrets_encrypt("status");
    assert!(
        status.contains("1 Secrets are sealed by a key this server does not have"),
        "{status}"
    );
    assert!(
        server.log().contains("no key for aesgcm key \\\"gone\\\"")
            || server.log().contains("no key for aesgcm key \"gone\""),
        "{}",
        server.log()
    );

    // And after a restart on the rotated file only.
    server.stop();
    let server = Server::start(&data, true);
    assert_eq!(server.password("s1"), PASSWORD);
    assert_eq!(server.password("old"), PASSWORD);
    server.stop();
}
