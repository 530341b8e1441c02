//! install.sh, the service files and the killall/uninstall scripts, run as
//! root in an isolated root: the host's `/` under an overlay (upper and
//! work dirs in a `/dev/shm` temp dir) mounted in a private mount namespace
//! (`unshare --mount`), entered with `chroot`. The host's /etc, /usr/local
//! and services are never touched: every write lands in the upper dir, which
//! is the list of what a step changed. Each step is one `unshare` process, so
//! its mounts end with it.
//!
//! Init systems are stubs on PATH (`/tmp/stubs`, a bind mount of the test's
//! side dir) recording their calls; `/run` is a fresh tmpfs holding
//! `/run/systemd/system` only for the systemd flavour.

mod overlay;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use overlay::{
    assert_same_binary, copy, expect_files, packaging_files, text, write_exec, Init, Root,
};

use crate::common::{free_port, require_tool, NANOKUBE};
/// What a systemd server install writes, with the modes.
const SYSTEMD_SERVER_FILES: &[(&str, u32)] = &[
    ("etc/nanokube/config.yaml", 0o600),
    ("etc/systemd/system/nanokube.service", 0o644),
    ("etc/systemd/system/nanokube.service.env", 0o600),
    ("usr/local/bin/nanokube", 0o755),
    ("usr/local/bin/nanokube-killall.sh", 0o755),
    ("usr/local/bin/nanokube-uninstall.sh", 0o755),
];

#[test]
fn install_systemd_server_second_run_and_uninstall() {
    let root = Root::new(Init::Systemd);
    let env = [
        ("INSTALL_NANOKUBE_EXEC", "--tls-san install.test"),
        ("NANOKUBE_NODE_NAME", "n1"),
    ];
    let out = root.install(&env, "--node-label 'x=y z'");
    assert!(out.status.success(), "{}", text(&out));
    expect_files(&root, SYSTEMD_SERVER_FILES);
    assert_same_binary(&root);
    let unit = root.read("etc/systemd/system/nanokube.service");
    assert!(
        unit.contains(
            "\nExecStart=/usr/local/bin/nanokube server \"--tls-san\" \"install.test\" \"--node-label\" \"x=y z\"\n"
        ),
        "{unit}"
    );
    assert!(
        unit.contains("\nEnvironmentFile=-/etc/systemd/system/nanokube.service.env\n"),
        "{unit}"
    );
    assert_eq!(
        root.read("etc/systemd/system/nanokube.service.env"),
        "NANOKUBE_NODE_NAME=\"n1\"\n"
    );
    let killall = root.read("usr/local/bin/nanokube-killall.sh");
    assert!(killall
        .contains("\nBIN_DIR='/usr/local/bin'\nDATA_DIR='/var/lib/nanokube'\nINIT='systemd'\n"));
    assert_eq!(
        root.take_calls(),
        [
            "systemctl daemon-reload",
            "systemctl is-enabled --quiet nanokube",
            "systemctl enable nanokube",
            "systemctl restart nanokube",
        ]
    );
    root.assert_no_temp_left();

    // Nothing changed: nothing is written, nothing restarted.
    let installed = root.snapshot();
    let out = root.install(&env, "--node-label 'x=y z'");
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(root.snapshot(), installed, "a second run rewrote files");
    assert_eq!(
        root.take_calls(),
        [
            "systemctl is-enabled --quiet nanokube",
            "systemctl is-active --quiet nanokube",
        ]
    );

    // A changed flag rewrites the unit and restarts.
    let out = root.install(&env, "--node-label x=y");
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        root.take_calls(),
        [
            "systemctl daemon-reload",
            "systemctl is-enabled --quiet nanokube",
            "systemctl restart nanokube",
        ]
    );

    root.uninstall_and_compare("/usr/local/bin/nanokube-uninstall.sh");
    assert_eq!(
        root.take_calls(),
        [
            "systemctl stop nanokube",
            "systemctl disable nanokube",
            "systemctl reset-failed nanokube",
            "systemctl daemon-reload",
        ]
    );
}

#[test]
fn install_systemd_agent_and_uninstall() {
    let root = Root::new(Init::Systemd);
    // An agent without a token is refused before anything is written.
    let out = root.install(&[("NANOKUBE_URL", "https://127.0.0.1:6443")], "");
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("NANOKUBE_TOKEN"),
        "{}",
        text(&out)
    );
    assert_eq!(root.snapshot(), root.before);

    let env = [
        ("NANOKUBE_URL", "https://127.0.0.1:6443"),
        ("NANOKUBE_TOKEN", "K10abc::server:s3cr\"et$x"),
        ("INSTALL_NANOKUBE_SKIP_START", "true"),
    ];
    let out = root.install(&env, "");
    assert!(out.status.success(), "{}", text(&out));
    expect_files(
        &root,
        &[
            ("etc/nanokube/config.yaml", 0o600),
            ("etc/systemd/system/nanokube-agent.service", 0o644),
            ("etc/systemd/system/nanokube-agent.service.env", 0o600),
            ("usr/local/bin/nanokube", 0o755),
            ("usr/local/bin/nanokube-agent-uninstall.sh", 0o755),
            ("usr/local/bin/nanokube-killall.sh", 0o755),
        ],
    );
    let unit = root.read("etc/systemd/system/nanokube-agent.service");
    assert!(
        unit.contains("\nExecStart=/usr/local/bin/nanokube agent\n"),
        "{unit}"
    );
    assert_eq!(
        root.read("etc/systemd/system/nanokube-agent.service.env"),
        "NANOKUBE_TOKEN=\"K10abc::server:s3cr\\\"et\\$x\"\nNANOKUBE_URL=\"https://127.0.0.1:6443\"\n"
    );
    // SKIP_START: enabled, not started.
    assert_eq!(
        root.take_calls(),
        [
            "systemctl daemon-reload",
            "systemctl is-enabled --quiet nanokube-agent",
            "systemctl enable nanokube-agent",
        ]
    );
    root.uninstall_and_compare("/usr/local/bin/nanokube-agent-uninstall.sh");
}

#[test]
fn install_openrc_second_run_and_uninstall() {
    let root = Root::new(Init::Openrc);
    let env = [(
        "INSTALL_NANOKUBE_EXEC",
        "server --disable-agent --data-dir=/srv/nanokube-test",
    )];
    let out = root.install(&env, "");
    assert!(out.status.success(), "{}", text(&out));
    expect_files(
        &root,
        &[
            ("etc/init.d/nanokube", 0o755),
            ("etc/nanokube/config.yaml", 0o600),
            ("etc/nanokube/nanokube.env", 0o600),
            ("usr/local/bin/nanokube", 0o755),
            ("usr/local/bin/nanokube-killall.sh", 0o755),
            ("usr/local/bin/nanokube-uninstall.sh", 0o755),
        ],
    );
    let script = root.read("etc/init.d/nanokube");
    assert!(script.starts_with("#!/sbin/openrc-run\n"), "{script}");
    for line in [
        "command=\"/usr/local/bin/nanokube\"",
        "command_args=\"server '--disable-agent' '--data-dir=/srv/nanokube-test'\"",
        "env_file=\"/etc/nanokube/nanokube.env\"",
    ] {
        assert!(
            script.contains(&format!("\n{line}\n")),
            "{line} in {script}"
        );
    }
    // The scripts clean the data dir the service uses.
    let killall = root.read("usr/local/bin/nanokube-killall.sh");
    assert!(
        killall.contains("\nDATA_DIR='/srv/nanokube-test'\nINIT='openrc'\n"),
        "{killall}"
    );
    assert_eq!(
        root.take_calls(),
        [
            "rc-update show default",
            "rc-update add nanokube default",
            "rc-service nanokube restart",
        ]
    );

    let installed = root.snapshot();
    let out = root.install(&env, "");
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(root.snapshot(), installed, "a second run rewrote files");
    assert_eq!(
        root.take_calls(),
        ["rc-update show default", "rc-service nanokube status"]
    );

    root.uninstall_and_compare("/usr/local/bin/nanokube-uninstall.sh");
    assert_eq!(
        root.take_calls(),
        [
            "rc-service nanokube stop",
            "rc-update delete nanokube default",
        ]
    );
}

#[test]
fn install_without_init_system_explains_and_exits_zero() {
    let root = Root::new(Init::None);
    let out = root.install(&[], "");
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("no supported init system found"),
        "{stdout}"
    );
    assert!(
        stdout.contains("start nanokube by hand: sudo /usr/local/bin/nanokube server"),
        "{stdout}"
    );
    expect_files(
        &root,
        &[
            ("etc/nanokube/config.yaml", 0o600),
            ("usr/local/bin/nanokube", 0o755),
            ("usr/local/bin/nanokube-killall.sh", 0o755),
            ("usr/local/bin/nanokube-uninstall.sh", 0o755),
        ],
    );
    assert_same_binary(&root);
    assert!(root.take_calls().is_empty());
    root.uninstall_and_compare("/usr/local/bin/nanokube-uninstall.sh");
}

/// `sudo ./install.sh` in a checkout with a release build: no variables, the
/// build is installed (no download).
#[test]
fn install_from_a_checkout_installs_its_release_build() {
    let root = Root::new(Init::None);
    let release = root.path("side/src/target/release");
    std::fs::create_dir_all(&release).unwrap();
    std::fs::write(release.join("nanokube"), b"").unwrap();
    let out = root.run(
        "cd /tmp/src && ./install.sh",
        &[("INSTALL_NANOKUBE_SKIP_DEPS", "true")],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("run from a checkout: installing /tmp/src/target/release/nanokube"),
        "{}",
        text(&out)
    );
    assert_same_binary(&root);
    root.uninstall_and_compare("/usr/local/bin/nanokube-uninstall.sh");
}

/// `python3 -m http.server` on 127.0.0.1 serving a dist dir; killed on drop.
struct Server {
    child: Child,
    url: String,
}

impl Server {
    fn start(dir: &Path) -> Server {
        require_tool("python3", "python3");
        let port = free_port();
        let child = Command::new("python3")
            .args(["-m", "http.server", "--bind", "127.0.0.1"])
            .arg(port.to_string())
            .arg("--directory")
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start python3 -m http.server");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "http.server did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        Server {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn sha256(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// A release dir as packaging/build-release.sh makes it, plus the service
/// files and scripts, with `sha256sum-amd64.txt` (the binary's line from
/// `binary_sha`).
fn dist(root: &Root, binary_sha: &str) -> PathBuf {
    let dist = root.path("dist");
    std::fs::create_dir_all(&dist).unwrap();
    std::os::unix::fs::symlink(NANOKUBE, dist.join("nanokube")).unwrap();
    let mut sums = format!("{binary_sha}  nanokube\n");
    for f in packaging_files() {
        let from = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("packaging")
            .join(&f);
        copy(&from, &dist.join(&f), 0o644);
        sums.push_str(&format!("{}  {f}\n", sha256(&from)));
    }
    std::fs::write(dist.join("sha256sum-amd64.txt"), sums).unwrap();
    dist
}

#[test]
fn install_from_a_release_url_verifies_checksums() {
    assert_eq!(
        std::env::consts::ARCH,
        "x86_64",
        "this test serves the amd64 release names"
    );
    // Good checksums, the script piped to sh as `curl ... | sh -` does (no
    // checkout next to it: the unit and scripts come from the release too).
    let root = Root::new(Init::Systemd);
    let server = Server::start(&dist(&root, &sha256(Path::new(NANOKUBE))));
    let env = [
        ("INSTALL_NANOKUBE_RELEASE_URL", server.url.as_str()),
        ("INSTALL_NANOKUBE_SKIP_DEPS", "true"),
    ];
    let out = root.run("sh -s - < /tmp/src/install.sh", &env);
    assert!(out.status.success(), "{}", text(&out));
    expect_files(&root, SYSTEMD_SERVER_FILES);
    assert_same_binary(&root);
    root.assert_no_temp_left();
    root.uninstall_and_compare("/usr/local/bin/nanokube-uninstall.sh");
    drop(server);

    // A wrong checksum: refused, nothing installed.
    let root = Root::new(Init::Systemd);
    let server = Server::start(&dist(&root, &"0".repeat(64)));
    let env = [
        ("INSTALL_NANOKUBE_RELEASE_URL", server.url.as_str()),
        ("INSTALL_NANOKUBE_SKIP_DEPS", "true"),
    ];
    let out = root.run("/tmp/src/install.sh", &env);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("checksum mismatch for nanokube"),
        "{}",
        text(&out)
    );
    assert_eq!(
        root.snapshot(),
        root.before,
        "a refused install wrote files"
    );
    root.assert_no_temp_left();

    // A release without this architecture's files: a download failure.
    let mut arm = env.to_vec();
    arm.push(("INSTALL_NANOKUBE_ARCH", "aarch64"));
    let out = root.run("/tmp/src/install.sh", &arm);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("sha256sum-arm64.txt failed"),
        "{}",
        text(&out)
    );
    // An architecture nanokube is not built for.
    let mut mips = env.to_vec();
    mips.push(("INSTALL_NANOKUBE_ARCH", "mips"));
    let out = root.run("/tmp/src/install.sh", &mips);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unsupported architecture 'mips'"),
        "{}",
        text(&out)
    );
    assert_eq!(root.snapshot(), root.before);
}

#[test]
fn install_scripts_pass_shellcheck() {
    require_tool("shellcheck", "shellcheck");
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut cmd = Command::new("shellcheck");
    cmd.current_dir(repo).arg("install.sh");
    let mut scripts: Vec<_> = packaging_files()
        .into_iter()
        .filter(|f| f.ends_with(".sh"))
        .map(|f| format!("packaging/{f}"))
        .collect();
    scripts.sort();
    assert!(scripts.contains(&"packaging/killall.sh".to_string()));
    cmd.args(&scripts);
    let out = cmd.output().expect("run shellcheck");
    assert!(out.status.success(), "{}", text(&out));
}

/// packaging/killall.sh with its settings block filled in as install.sh
/// does.
fn filled_killall(bin_dir: &Path, data_dir: &Path) -> String {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/killall.sh"))
            .unwrap();
    let begin = text.find("# install.sh settings: begin\n").unwrap();
    let end = text.find("# install.sh settings: end\n").unwrap();
    format!(
        "{}# install.sh settings: begin\nBIN_DIR='{}'\nDATA_DIR='{}'\nINIT='none'\nSERVICE_NAME='nanokube'\nFILE_SERVICE=''\nFILE_ENV=''\n{}",
        &text[..begin],
        bin_dir.display(),
        data_dir.display(),
        &text[end..]
    )
}

/// A node whose server was SIGKILLed (containerd, shims, a pod with a
/// memory emptyDir and a host port, links, rules, cgroups all left behind):
/// the killall script removes every trace of it, and only of it.
#[test]
fn killall_removes_what_a_killed_node_left() {
    use crate::common::agent::{busybox_container, cleanup, pod_manifest, Cluster, POD_TIMEOUT};
    let mut c = Cluster::start();
    let mut ctr = busybox_container("web", "sleep 3600");
    ctr["ports"] = serde_json::json!([{"containerPort": 8080, "hostPort": free_port()}]);
    ctr["volumeMounts"] = serde_json::json!([{"name": "scratch", "mountPath": "/scratch"}]);
    c.apply_json(&pod_manifest(
        "default",
        "killall",
        serde_json::json!({
            "containers": [ctr],
            "volumes": [{"name": "scratch", "emptyDir": {"medium": "Memory"}}],
            "terminationGracePeriodSeconds": 1,
        }),
    ));
    c.wait_running("default", "killall", POD_TIMEOUT);
    c.kill_server();
    let m = c.markers();
    let before = cleanup::leftovers(&m);
    assert!(
        before.iter().any(|l| l.starts_with("process"))
            && before.iter().any(|l| l.starts_with("mount"))
            && before.iter().any(|l| l.starts_with("link")),
        "a killed node should leave processes, mounts and links: {before:?}"
    );

    // BIN_DIR holds no nanokube: only this node's processes are matched
    // (other tests run the same binary).
    let scratch = tempfile::tempdir().unwrap();
    let script = scratch.path().join("nanokube-killall.sh");
    write_exec(&script, &filled_killall(scratch.path(), &c.data_dir));
    let t0 = Instant::now();
    let out = Command::new("sh").arg(&script).output().unwrap();
    let took = t0.elapsed();
    eprintln!("--- nanokube-killall.sh\n{}", text(&out));
    assert!(out.status.success(), "{}", text(&out));
    let left = cleanup::leftovers(&m);
    assert!(
        left.is_empty(),
        "nanokube-killall.sh left these behind (it took {took:?}):\n  {}\nbefore it ran:\n  {}",
        left.join("\n  "),
        before.join("\n  ")
    );
    eprintln!("killall removed {} traces in {took:?}", before.len());
    c.shutdown();
}
