//! The node-agent test harness itself: the busybox image is a valid OCI
//! layout, and the cleanup removes everything an instance can leave on
//! the machine (and nothing else). Cheap: no cluster is started.

use std::path::Path;
use std::process::{Child, Command};
use std::time::Duration;

use crate::common::agent::*;
use crate::common::*;
use serde_json::Value;

/// The test image itself (no cluster, no root): an OCI layout whose
/// digests, sizes and annotations hold, with busybox and its applets.
#[test]
fn busybox_image_is_a_valid_oci_layout() {
    use std::collections::HashMap;
    use std::io::Read;
    let tar_path = shared_busybox_tar();
    let read_entries = |bytes: &[u8]| -> HashMap<String, (tar::EntryType, Vec<u8>, String)> {
        let mut out = HashMap::new();
        let mut archive = tar::Archive::new(bytes);
        for e in archive.entries().expect("tar entries") {
            let mut e = e.expect("tar entry");
            let path = e.path().expect("path").to_string_lossy().into_owned();
            let kind = e.header().entry_type();
            let link = e
                .link_name()
                .ok()
                .flatten()
                .map(|l| l.to_string_lossy().into_owned())
                .unwrap_or_default();
            let mut data = Vec::new();
            e.read_to_end(&mut data).expect("tar data");
            out.insert(path, (kind, data, link));
        }
        out
    };
    let outer = read_entries(&std::fs::read(&tar_path).expect("read image tar"));
    let json = |name: &str| -> Value {
        let (_, data, _) = outer.get(name).unwrap_or_else(|| panic!("{name} missing"));
        serde_json::from_slice(data).unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    let blob = |desc: &Value| -> Vec<u8> {
        let digest = desc["digest"].as_str().expect("digest");
        let path = format!("blobs/sha256/{}", digest.trim_start_matches("sha256:"));
        let (_, data, _) = outer.get(&path).unwrap_or_else(|| panic!("{path} missing"));
        assert_eq!(crate::common::images::sha256_digest(data), digest, "{path}");
        assert_eq!(desc["size"], data.len(), "{path} size");
        data.clone()
    };
    assert_eq!(json("oci-layout")["imageLayoutVersion"], "1.0.0");
    let index = json("index.json");
    let desc = &index["manifests"][0];
    let ann = &desc["annotations"];
    assert_eq!(
        ann["io.containerd.image.name"],
        crate::common::images::BUSYBOX
    );
    assert_eq!(ann["org.opencontainers.image.ref.name"], "1");
    let manifest: Value = serde_json::from_slice(&blob(desc)).expect("manifest");
    let config: Value = serde_json::from_slice(&blob(&manifest["config"])).expect("config");
    let layer = blob(&manifest["layers"][0]);
    assert_eq!(
        config["rootfs"]["diff_ids"][0].as_str(),
        Some(crate::common::images::sha256_digest(&layer).as_str())
    );
    assert!(config["config"]["Env"][0]
        .as_str()
        .is_some_and(|e| e.starts_with("PATH=")));
    let files = read_entries(&layer);
    let busybox = std::fs::read(crate::common::images::BUSYBOX_BIN).expect("read busybox");
    assert!(files["bin/busybox"].1 == busybox, "bin/busybox differs");
    for applet in [
        "sh",
        "httpd",
        "nc",
        "sleep",
        "cat",
        "id",
        "tar",
        "sha256sum",
        "stat",
    ] {
        let (kind, _, link) = &files[&format!("bin/{applet}")];
        assert_eq!(
            (*kind, link.as_str()),
            (tar::EntryType::Symlink, "busybox"),
            "{applet}"
        );
    }
    assert!(
        !files.contains_key("bin/wget"),
        "wget segfaults here: left out"
    );
    let passwd = String::from_utf8_lossy(&files["etc/passwd"].1).into_owned();
    assert!(
        passwd.contains("root:x:0:0:") && passwd.contains(":1000:1000:"),
        "{passwd}"
    );
    assert!(files.contains_key("tmp/") && files.contains_key("etc/group"));
}

fn sh(script: &str) {
    let out = run_with_timeout(
        Command::new("sh").args(["-c", script]),
        None,
        Duration::from_secs(30),
    );
    assert!(
        out.status.success(),
        "`{script}` failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn iptables_restore(script: &str) {
    let out = run_with_timeout(
        Command::new("iptables-restore").arg("--noflush"),
        Some(script.as_bytes()),
        Duration::from_secs(30),
    );
    assert!(
        out.status.success(),
        "iptables-restore failed: {}\n{script}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn spawn(script: &str) -> Child {
    Command::new("sh")
        .args(["-c", script])
        .spawn()
        .expect("spawn sh")
}

const FOREIGN: &str = "nanokube harness foreign rule";

/// Leaves behind what a crashed instance would (processes, a process in
/// its cgroup, nested mounts, bridge + veth + address + route, CNI-style
/// iptables chains, an nft table, host-local IPAM files), runs the
/// teardown, and finds nothing left, while a foreign rule survives.
#[test]
fn cleanup_removes_what_an_instance_leaves() {
    require_node_prerequisites();
    let s = Scratch::new();
    let m = &s.markers;
    let id = m.id.clone();
    let net = format!("10.{}", 200 + s.slot);

    // Processes: one naming the agent dir (like containerd or a shim)
    // with a child, and one moved into the instance's cgroup.
    let mut named = spawn(&format!(
        "sleep 300 & wait; : {}",
        m.agent_dir.join("containerd/containerd.sock").display()
    ));
    let mut grouped = spawn("exec sleep 300");
    for hier in ["memory", "pids"] {
        let cg = Path::new("/sys/fs/cgroup")
            .join(hier)
            .join(format!("nanokube-{id}/kubepods/besteffort/podtest"));
        std::fs::create_dir_all(&cg).expect("create cgroup");
        std::fs::write(cg.join("cgroup.procs"), grouped.id().to_string())
            .expect("move into cgroup");
    }

    // Mounts, nested.
    let vol = m
        .agent_dir
        .join("pods/p/volumes/kubernetes.io~empty-dir/mem");
    std::fs::create_dir_all(&vol).expect("create volume dir");
    let tmpfs = |p: &Path| {
        nix::mount::mount(
            Some("tmpfs"),
            p,
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            None::<&str>,
        )
        .expect("mount tmpfs")
    };
    tmpfs(&vol);
    std::fs::create_dir_all(vol.join("inner")).expect("create inner dir");
    tmpfs(&vol.join("inner"));

    // Network: bridge, veth on it, address, a route of the range.
    sh(&format!(
        "ip link add nk{id} type bridge && ip link add vt{id}a type veth peer name vt{id}b && \
         ip link set vt{id}a master nk{id} && ip addr add {net}.0.1/24 dev nk{id} && \
         ip link set nk{id} up && ip route add blackhole {net}.9.0/24"
    ));
    let chain = format!(
        "CNI-{}",
        &crate::common::images::sha256_digest(id.as_bytes())[7..31]
    );
    let comment = format!(r#""name: \"nanokube-{id}\" id: \"{}\"""#, "ab".repeat(32));
    // The same range used by hand by another instance: not ours.
    let other = r#""name: \"nanokube-0badf00d\" id: \"foreign\"""#;
    iptables_restore(&format!(
        "*nat\n:{chain} - [0:0]\n\
         -A POSTROUTING -s {net}.0.5/32 -m comment --comment {comment} -j {chain}\n\
         -A {chain} -d {net}.0.0/16 -m comment --comment {comment} -j ACCEPT\n\
         -A {chain} ! -d 224.0.0.0/4 -m comment --comment {comment} -j MASQUERADE\n\
         -A POSTROUTING -s {net}.0.77/32 -m comment --comment {other} -j ACCEPT\n\
         COMMIT\n\
         *filter\n\
         -A FORWARD -s {net}.0.0/16 -j ACCEPT\n\
         -A FORWARD -s 10.250.7.0/24 -m comment --comment \"{FOREIGN}\" -j ACCEPT\n\
         COMMIT\n"
    ));
    sh(&format!("nft add table ip nktest_{id}"));
    let ipam = Path::new("/var/lib/cni/networks").join(format!("nanokube-{id}"));
    std::fs::create_dir_all(&ipam).expect("create IPAM dir");
    std::fs::write(ipam.join(format!("{net}.0.5")), "x").expect("write IPAM file");

    let before = cleanup::leftovers(m);
    for what in [
        "process",
        "mount",
        "link",
        "route",
        "iptables",
        "nft",
        "CNI state",
        "cgroup",
    ] {
        assert!(
            before.iter().any(|l| l.starts_with(what)),
            "leftovers() does not see the {what}: {before:#?}"
        );
    }

    cleanup::teardown(m);
    let _ = named.wait();
    let _ = grouped.wait();
    let left = cleanup::leftovers(m);
    let filter = run_with_timeout(
        Command::new("iptables-save").args(["-t", "filter"]),
        None,
        Duration::from_secs(30),
    );
    let foreign_kept = String::from_utf8_lossy(&filter.stdout).contains(FOREIGN);
    let nat = run_with_timeout(
        Command::new("iptables-save").args(["-t", "nat"]),
        None,
        Duration::from_secs(30),
    );
    let other_kept = String::from_utf8_lossy(&nat.stdout).contains("nanokube-0badf00d");
    sh(&format!(
        "iptables -D FORWARD -s 10.250.7.0/24 -m comment --comment \"{FOREIGN}\" -j ACCEPT || true; \
         iptables -t nat -D POSTROUTING -s {net}.0.77/32 -m comment --comment {other} -j ACCEPT || true"
    ));
    assert!(left.is_empty(), "left behind: {left:#?}");
    assert!(
        foreign_kept,
        "the cleanup removed a rule of nobody's instance"
    );
    assert!(
        other_kept,
        "the cleanup removed another instance's rule in its range"
    );
    assert!(!vol.exists() || cleanup::mounts_under(&m.root).is_empty());
}
