//! kubectl, curl and credentials for the API-server tests.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use super::*;

/// How long one `kubectl`, `curl` or `python3` invocation may take.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);

/// The oldest and newest kubectl the tests drive.
pub const KUBECTL_OLDEST: &str = "1.27";
pub const KUBECTL_NEWEST: &str = "1.33";

/// The path of kubectl `version` (e.g. "1.27"), as the Google Cloud SDK
/// installs them side by side; fails (never skips) when it is missing.
pub fn kubectl_path(version: &str) -> PathBuf {
    let path = PathBuf::from(format!("/usr/lib/google-cloud-sdk/bin/kubectl.{version}"));
    assert!(
        path.is_file(),
        "{} is not installed but this test needs it: install the Debian package \
         `kubectl` from the Google Cloud SDK repository (apt-get install -y kubectl), \
         which ships kubectl.1.27 … kubectl.1.33",
        path.display()
    );
    path
}

/// The status code of an anonymous `GET url` (TLS not verified), or `None`
/// when nothing answered.
pub fn http_status(url: &str) -> Option<u16> {
    require_tool("curl", "curl");
    let out = run_with_timeout(
        Command::new("curl").args([
            "-sk",
            "-o",
            "/dev/null",
            "--max-time",
            "5",
            "-w",
            "%{http_code}",
            url,
        ]),
        None,
        Duration::from_secs(10),
    );
    match String::from_utf8_lossy(&out.stdout).trim().parse() {
        Ok(0) | Err(_) => None,
        Ok(code) => Some(code),
    }
}

/// The admin credentials of a kubeconfig, written out as PEM files for curl.
pub struct Creds {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Creds {
    /// `METHOD url` with these credentials through curl (cheap enough to
    /// poll with); (status, JSON body or Null).
    pub fn request(
        &self,
        method: &str,
        url: &str,
        body: Option<&serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let mut cmd = Command::new("curl");
        cmd.args(["-sS", "--max-time", "20", "-X", method])
            .arg("--cacert")
            .arg(&self.ca)
            .arg("--cert")
            .arg(&self.cert)
            .arg("--key")
            .arg(&self.key)
            .args(["-w", "\n%{http_code}"]);
        let input = body.map(|b| b.to_string());
        if input.is_some() {
            cmd.args([
                "-H",
                "Content-Type: application/json",
                "--data-binary",
                "@-",
            ]);
        }
        cmd.arg(url);
        let out = run_with_timeout(
            &mut cmd,
            input.as_deref().map(str::as_bytes),
            CLIENT_TIMEOUT,
        );
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
        let code: u16 = code.trim().parse().unwrap_or(0);
        (
            code,
            serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
        )
    }
}

/// Writes the CA, client certificate and key embedded in `kubeconfig` to
/// files in `dir`.
pub fn creds_from_kubeconfig(kubeconfig: &Path, dir: &Path) -> Creds {
    let text = std::fs::read_to_string(kubeconfig)
        .unwrap_or_else(|e| panic!("read {}: {e}", kubeconfig.display()));
    let v: serde_json::Value = serde_saphyr::from_str(&text).expect("kubeconfig is YAML");
    let field = |v: &serde_json::Value, name: &str| -> Vec<u8> {
        let s = v[name]
            .as_str()
            .unwrap_or_else(|| panic!("kubeconfig has no {name}:\n{text}"));
        base64_decode(s)
    };
    let creds = Creds {
        ca: dir.join("ca.crt"),
        cert: dir.join("client.crt"),
        key: dir.join("client.key"),
    };
    std::fs::create_dir_all(dir).unwrap();
    let cluster = &v["clusters"][0]["cluster"];
    let user = &v["users"][0]["user"];
    // Atomically (write + rename): concurrent callers may read them.
    let write = |path: &Path, data: Vec<u8>| {
        let tmp = path.with_extension(format!("tmp-{:?}", std::thread::current().id()));
        std::fs::write(&tmp, data).unwrap();
        std::fs::rename(&tmp, path).unwrap();
    };
    write(&creds.ca, field(cluster, "certificate-authority-data"));
    write(&creds.cert, field(user, "client-certificate-data"));
    write(&creds.key, field(user, "client-key-data"));
    creds
}

/// A response from [`Proc::curl`].
#[derive(Debug)]
pub struct HttpReply {
    pub status: u16,
    pub content_type: String,
    pub body: String,
}

impl HttpReply {
    /// The body as JSON; panics (showing it) when it is not.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("response is not JSON ({e}): {self:?}"))
    }
}

impl Proc {
    /// The admin credentials as files (written next to the data dir).
    pub fn creds(&self) -> Creds {
        creds_from_kubeconfig(&self.kubeconfig(), &self.data_dir.with_file_name("creds"))
    }

    /// `curl` against the API: `method path` with `body` (from a file, so
    /// large bodies work) and extra curl `args` (e.g. `-H`); with the
    /// admin client certificate when `authenticated`.
    pub fn curl(
        &self,
        authenticated: bool,
        method: &str,
        path: &str,
        body: Option<&[u8]>,
        args: &[&str],
    ) -> HttpReply {
        require_tool("curl", "curl");
        let creds = self.creds();
        static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = self.data_dir.with_file_name(format!("curl-{n}"));
        std::fs::create_dir_all(&dir).unwrap();
        let out_file = dir.join("body");
        let mut cmd = Command::new("curl");
        cmd.args(["-sS", "--max-time", "30", "-X", method])
            .arg("--cacert")
            .arg(&creds.ca)
            .arg("-o")
            .arg(&out_file)
            .args(["-w", "%{http_code} %{content_type}"]);
        if authenticated {
            cmd.arg("--cert")
                .arg(&creds.cert)
                .arg("--key")
                .arg(&creds.key);
        }
        if let Some(body) = body {
            let in_file = dir.join("request");
            std::fs::write(&in_file, body).unwrap();
            cmd.arg("--data-binary")
                .arg(format!("@{}", in_file.display()));
        }
        cmd.args(args).arg(format!("{}{path}", self.api_url()));
        let out = run_with_timeout(&mut cmd, None, CLIENT_TIMEOUT);
        let meta = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "curl {method} {path} failed ({}): {}{meta}\nserver stderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        let (code, content_type) = meta.split_once(' ').unwrap_or((&meta, ""));
        HttpReply {
            status: code
                .parse()
                .unwrap_or_else(|_| panic!("curl printed {meta:?}")),
            content_type: content_type.to_string(),
            body: String::from_utf8_lossy(&std::fs::read(&out_file).unwrap_or_default())
                .into_owned(),
        }
    }

    /// kubectl `version` (e.g. "1.33") configured for this server.
    pub fn kubectl(&self, version: &str) -> Kubectl<'_> {
        Kubectl {
            server: self,
            bin: kubectl_path(version),
            version: version.to_string(),
            env: Vec::new(),
        }
    }
}

/// A kubectl binary pointed at one server with its admin kubeconfig and a
/// private discovery cache.
pub struct Kubectl<'a> {
    pub server: &'a Proc,
    pub bin: PathBuf,
    pub version: String,
    env: Vec<(String, String)>,
}

impl Kubectl<'_> {
    /// Sets an environment variable for every later invocation.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    /// The command with `--kubeconfig` and `--cache-dir` set.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.bin);
        let cache = self
            .server
            .data_dir
            .with_file_name(format!("kubecache-{}", self.version));
        // `kubectl edit` leaves files in $TMPDIR; keep them in the test's dir
        let tmp = self.server.data_dir.with_file_name("kubectl-tmp");
        std::fs::create_dir_all(&tmp).expect("create kubectl TMPDIR");
        cmd.env("TMPDIR", tmp)
            .arg("--kubeconfig")
            .arg(self.server.kubeconfig())
            .arg("--cache-dir")
            .arg(cache)
            .args(args)
            .env_remove("KUBECONFIG")
            .env_remove("KUBE_EDITOR")
            .env_remove("EDITOR");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Runs kubectl (does not check the status).
    pub fn run(&self, args: &[&str]) -> Output {
        run_with_timeout(&mut self.command(args), None, CLIENT_TIMEOUT)
    }

    /// Runs kubectl with `stdin` as standard input (does not check the status).
    pub fn run_stdin(&self, args: &[&str], stdin: &str) -> Output {
        run_with_timeout(
            &mut self.command(args),
            Some(stdin.as_bytes()),
            CLIENT_TIMEOUT,
        )
    }

    /// Runs kubectl, asserts success, returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        self.expect_ok(args, &out)
    }

    /// Runs kubectl with standard input, asserts success, returns stdout.
    pub fn stdin_ok(&self, args: &[&str], stdin: &str) -> String {
        let out = self.run_stdin(args, stdin);
        self.expect_ok(args, &out)
    }

    /// Runs kubectl, asserts failure, returns stderr.
    pub fn err(&self, args: &[&str]) -> String {
        let out = self.run(args);
        self.expect_err(args, &out)
    }

    /// Runs kubectl with standard input, asserts failure, returns stderr.
    pub fn stdin_err(&self, args: &[&str], stdin: &str) -> String {
        let out = self.run_stdin(args, stdin);
        self.expect_err(args, &out)
    }

    /// `kubectl create -f -` of `yaml` (goes through kubectl's JSON
    /// resource builder, unlike `kubectl create namespace`), asserts success.
    pub fn create_yaml(&self, yaml: &str) -> String {
        self.stdin_ok(&["create", "-f", "-"], yaml)
    }

    /// Creates namespace `name` from YAML.
    pub fn namespace(&self, name: &str) {
        self.create_yaml(&format!(
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name:?}\n"
        ));
    }

    /// Creates configmap `ns/name` with `data` and `labels` from YAML.
    pub fn configmap(&self, ns: &str, name: &str, data: &[(&str, &str)], labels: &[(&str, &str)]) {
        let map = |kv: &[(&str, &str)]| -> String {
            let items: Vec<String> = kv.iter().map(|(k, v)| format!("{k:?}: {v:?}")).collect();
            format!("{{{}}}", items.join(", "))
        };
        self.create_yaml(&format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name:?}\n  namespace: {ns:?}\n  \
             labels: {}\ndata: {}\n",
            map(labels),
            map(data)
        ));
    }

    /// `kubectl ARGS -o json`, parsed.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = args.to_vec();
        all.extend(["-o", "json"]);
        let out = self.ok(&all);
        serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("kubectl {all:?} printed invalid JSON ({e}):\n{out}"))
    }

    /// Runs kubectl in the background (e.g. `get -w`); its stdout lines can
    /// be read with a timeout.
    pub fn background(&self, args: &[&str]) -> LineReader {
        LineReader::spawn(&mut self.command(args))
    }

    fn expect_ok(&self, args: &[&str], out: &Output) -> String {
        assert!(
            out.status.success(),
            "`kubectl {}` ({}) failed ({}):\nstdout:\n{}\nstderr:\n{}\nserver stderr:\n{}",
            args.join(" "),
            self.version,
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.server.log()
        );
        String::from_utf8(out.stdout.clone()).expect("kubectl printed non-UTF-8")
    }

    fn expect_err(&self, args: &[&str], out: &Output) -> String {
        assert!(
            !out.status.success(),
            "`kubectl {}` ({}) succeeded but should have failed; stdout:\n{}\nstderr:\n{}",
            args.join(" "),
            self.version,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }
}

/// The column names of a table's header line (split on runs of 2+ spaces,
/// as kubectl pads columns with at least three).
pub fn header_columns(table: &str) -> Vec<String> {
    let first = table.lines().next().unwrap_or_default();
    first
        .split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_string)
        .collect()
}
