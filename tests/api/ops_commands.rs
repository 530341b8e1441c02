//! `nanokube check-config` on this machine (the CI machine has what the
//! node tests need, so every required check passes) and with binaries out
//! of reach; `nanokube kubectl` running a real kubectl against a server
//! with kubectl's exit code, the admin kubeconfig by default, and one
//! clear line when kubectl is absent or is a link to nanokube itself.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use crate::common::{kubectl_path, run_with_timeout, tempdir, Proc, KUBECTL_NEWEST, NANOKUBE};

fn nanokube(args: &[&str], env: &[(&str, &std::ffi::OsStr)]) -> Output {
    let mut cmd = Command::new(NANOKUBE);
    cmd.args(args)
        .env_remove("KUBECONFIG")
        .env_remove("NANOKUBE_DATA_DIR");
    for (k, v) in env {
        cmd.env(k, v);
    }
    run_with_timeout(&mut cmd, None, Duration::from_secs(60))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A PATH of one directory whose `kubectl` links to `target`.
fn path_with_kubectl(dir: &Path, target: &Path) -> std::ffi::OsString {
    std::os::unix::fs::symlink(target, dir.join("kubectl")).unwrap();
    dir.as_os_str().to_owned()
}

#[test]
fn check_config_passes_here_with_one_line_per_check() {
    let out = nanokube(&["check-config"], &[]);
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "check-config failed on the CI machine (install what its MISSING lines say):\n{stdout}\n{}",
        text(&out.stderr)
    );
    for group in ["Kernel:", "Cgroups:", "Binaries:", "Sysctls:"] {
        assert!(stdout.lines().any(|l| l == group), "{group}\n{stdout}");
    }
    for line in [
        "  OK      namespaces: mnt, net, pid, ipc, uts",
        "  OK      overlay: ",
        "  OK      br_netfilter: ",
        "  OK      nf_tables: ",
        "  OK      memory: ",
        "  OK      pids: ",
        "  OK      containerd: ",
        "  OK      runc: ",
        "  OK      cni plugins: ",
        "  OK      net.ipv4.ip_forward: 1",
        "  OK      net.bridge.bridge-nf-call-iptables: 1",
    ] {
        assert!(
            stdout.lines().any(|l| l.starts_with(line)),
            "no line {line:?} in:\n{stdout}"
        );
    }
    // Every check line is one of the three levels.
    for l in stdout.lines().filter(|l| l.starts_with("  ")) {
        assert!(
            ["  OK ", "  WARN ", "  MISSING "]
                .iter()
                .any(|p| l.starts_with(p)),
            "{l}"
        );
    }
    let last = stdout.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("check-config: all required checks passed"),
        "{last}"
    );
}

#[test]
fn check_config_fails_with_one_summary_line_when_a_binary_is_missing() {
    // containerd lives in /usr/bin, which this PATH lacks (the sbin
    // directories are always searched).
    let dir = tempdir();
    let out = nanokube(&["check-config"], &[("PATH", dir.path().as_os_str())]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("  MISSING containerd: not found: install containerd")),
        "{stdout}"
    );
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("required check(s) failed"), "{stderr}");
}

#[test]
fn kubectl_wrapper_runs_real_kubectl_with_its_exit_code() {
    let p = Proc::server();
    let dir = tempdir();
    let path = path_with_kubectl(dir.path(), &kubectl_path(KUBECTL_NEWEST));
    let kubeconfig = p.kubeconfig();
    let env = [
        ("PATH", path.as_os_str()),
        ("KUBECONFIG", kubeconfig.as_os_str()),
    ];

    let ok = nanokube(
        &["kubectl", "get", "namespace", "default", "-o", "name"],
        &env,
    );
    assert!(ok.status.success(), "{}", text(&ok.stderr));
    assert_eq!(text(&ok.stdout).trim(), "namespace/default");

    // Flags after `kubectl` are kubectl's, --help included.
    let help = nanokube(&["kubectl", "get", "--help"], &env);
    assert!(help.status.success(), "{}", text(&help.stderr));
    assert!(
        text(&help.stdout).contains("kubectl get"),
        "{}",
        text(&help.stdout)
    );

    let missing = nanokube(&["kubectl", "get", "namespace", "nope"], &env);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        text(&missing.stderr).contains("NotFound"),
        "{}",
        text(&missing.stderr)
    );
}

#[test]
fn kubectl_wrapper_passes_the_exit_code_and_the_admin_kubeconfig() {
    let dir = tempdir();
    let script = dir.path().join("kubectl");
    std::fs::write(&script, "#!/bin/sh\necho \"$KUBECONFIG|$*\"\nexit 7\n").unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let data = dir.path().join("data");
    let env = [
        ("PATH", dir.path().as_os_str()),
        ("NANOKUBE_DATA_DIR", data.as_os_str()),
    ];
    let out = nanokube(&["kubectl", "get", "pods", "-A"], &env);
    assert_eq!(out.status.code(), Some(7), "{}", text(&out.stderr));
    let admin = if nix::unistd::geteuid().is_root() {
        "/etc/nanokube/nanokube.yaml".to_string()
    } else {
        data.join("nanokube.yaml").display().to_string()
    };
    assert_eq!(text(&out.stdout).trim(), format!("{admin}|get pods -A"));

    // KUBECONFIG set by the caller wins.
    let mut env = env.to_vec();
    env.push(("KUBECONFIG", std::ffi::OsStr::new("/tmp/mine.yaml")));
    let out = nanokube(&["kubectl", "version"], &env);
    assert_eq!(text(&out.stdout).trim(), "/tmp/mine.yaml|version");
}

#[test]
fn absent_kubectl_or_a_link_to_nanokube_is_one_clear_line() {
    let empty = tempdir();
    let linked = tempdir();
    let to_self = path_with_kubectl(linked.path(), Path::new(NANOKUBE));
    for path in [empty.path().as_os_str(), to_self.as_os_str()] {
        let out = nanokube(&["kubectl", "get", "pods"], &[("PATH", path)]);
        assert_eq!(out.status.code(), Some(1));
        let stderr = text(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.starts_with("nanokube: kubectl not found on PATH: install kubectl"),
            "{stderr}"
        );
    }
}
