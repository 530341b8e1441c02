//! OCI image-layout tarballs built without a registry, for the node-agent
//! tests: the agent imports every `*.tar` in `<data-dir>/agent/images/` at
//! start, so a test places one there and runs pods from it with
//! `imagePullPolicy: Never` (a pull would leave the machine).
//!
//! The tarballs are deterministic (sorted entries, owner 0, mtime 0), so the
//! same image always has the same digest and tests may share one file.
//!
//! ```ignore
//! let tar = busybox_image(dir, BUSYBOX);   // dir/nanokube.test_busybox_1.tar
//! ```

use std::path::{Path, PathBuf};

/// The name of the busybox image the agent tests run.
pub const BUSYBOX: &str = "nanokube.test/busybox:1";

/// Where busybox-static installs its binary.
pub const BUSYBOX_BIN: &str = "/bin/busybox";

/// `PATH` in the image configuration (as Docker's busybox image has it).
pub const IMAGE_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Applets left out of the image: busybox-static's `wget` segfaults on these
/// machines, so a pod that tries it fails at once instead of crashing.
const SKIPPED_APPLETS: &[&str] = &["wget", "busybox"];

/// One file system entry of a layer.
#[derive(Clone, Debug)]
pub enum Entry {
    Dir {
        path: String,
        mode: u32,
    },
    File {
        path: String,
        mode: u32,
        data: Vec<u8>,
    },
    Symlink {
        path: String,
        target: String,
    },
}

/// What an image holds: one layer and the configuration's process settings.
#[derive(Clone, Debug, Default)]
pub struct ImageSpec {
    /// Full reference, e.g. `nanokube.test/busybox:1`.
    pub name: String,
    pub entries: Vec<Entry>,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    /// `User` of the configuration ("" = root).
    pub user: String,
    pub working_dir: String,
}

/// Fails (never skips) when busybox-static is missing.
pub fn require_busybox() {
    assert!(
        Path::new(BUSYBOX_BIN).is_file(),
        "{BUSYBOX_BIN} is missing but the node-agent tests build their image from it: \
         install the Debian package `busybox-static` (apt-get install -y busybox-static)"
    );
}

/// The applets the host's busybox offers (`busybox --list`).
fn applets() -> Vec<String> {
    let out = std::process::Command::new(BUSYBOX_BIN)
        .arg("--list")
        .output()
        .unwrap_or_else(|e| panic!("run {BUSYBOX_BIN} --list: {e}"));
    assert!(out.status.success(), "{BUSYBOX_BIN} --list failed");
    let mut names: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::trim)
        .filter(|a| !a.is_empty() && !a.contains('/') && !SKIPPED_APPLETS.contains(a))
        .map(str::to_string)
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The busybox image spec: `/bin/busybox` (keeps its name: busybox picks
/// the applet from argv[0]) with every applet linked to it, `/etc/passwd`
/// and `/etc/group` with root and `app` (uid/gid 1000), `/tmp`, and `sh` as
/// the default command.
pub fn busybox_spec(name: &str) -> ImageSpec {
    require_busybox();
    let binary = std::fs::read(BUSYBOX_BIN).unwrap_or_else(|e| panic!("read {BUSYBOX_BIN}: {e}"));
    let mut entries = vec![
        Entry::Dir {
            path: "bin".into(),
            mode: 0o755,
        },
        Entry::File {
            path: "bin/busybox".into(),
            mode: 0o755,
            data: binary,
        },
        Entry::Dir {
            path: "dev".into(),
            mode: 0o755,
        },
        Entry::Dir {
            path: "etc".into(),
            mode: 0o755,
        },
        Entry::File {
            path: "etc/passwd".into(),
            mode: 0o644,
            data: b"root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n\
                    nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
                .to_vec(),
        },
        Entry::File {
            path: "etc/group".into(),
            mode: 0o644,
            data: b"root:x:0:\napp:x:1000:\nnogroup:x:65534:\n".to_vec(),
        },
        Entry::Dir {
            path: "home".into(),
            mode: 0o755,
        },
        Entry::Dir {
            path: "home/app".into(),
            mode: 0o755,
        },
        Entry::Dir {
            path: "proc".into(),
            mode: 0o755,
        },
        Entry::Dir {
            path: "root".into(),
            mode: 0o700,
        },
        Entry::Dir {
            path: "sys".into(),
            mode: 0o755,
        },
        Entry::Dir {
            path: "tmp".into(),
            mode: 0o1777,
        },
        Entry::Dir {
            path: "usr".into(),
            mode: 0o755,
        },
        Entry::Dir {
            path: "usr/bin".into(),
            mode: 0o755,
        },
        Entry::Dir {
            path: "var".into(),
            mode: 0o755,
        },
    ];
    for applet in applets() {
        entries.push(Entry::Symlink {
            path: format!("bin/{applet}"),
            target: "busybox".into(),
        });
    }
    ImageSpec {
        name: name.to_string(),
        entries,
        entrypoint: Vec::new(),
        cmd: vec!["sh".into()],
        env: vec![format!("PATH={IMAGE_PATH}")],
        user: String::new(),
        working_dir: String::new(),
    }
}

/// Writes the busybox image `name` as an OCI layout tarball into `dir`
/// (created if needed); returns its path.
pub fn busybox_image(dir: &Path, name: &str) -> PathBuf {
    oci_image(dir, &busybox_spec(name))
}

/// `nanokube.test/busybox:1` → `nanokube.test_busybox_1.tar`
pub fn image_file_name(name: &str) -> String {
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{safe}.tar")
}

/// Writes `spec` as an OCI image-layout tarball (`oci-layout`, `index.json`
/// with the `io.containerd.image.name` and `org.opencontainers.image.ref.name`
/// annotations, `blobs/sha256/…`: one uncompressed layer, the config and the
/// manifest) into `dir`; returns its path. Written atomically (temporary file
/// and rename), so tests running in parallel may write the same image.
pub fn oci_image(dir: &Path, spec: &ImageSpec) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    let path = dir.join(image_file_name(&spec.name));
    let bytes = oci_layout_tar(spec);
    let tmp = dir.join(format!(
        ".{}.{}.{:?}",
        image_file_name(&spec.name),
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::write(&tmp, &bytes).unwrap_or_else(|e| panic!("write {}: {e}", tmp.display()));
    std::fs::rename(&tmp, &path).unwrap_or_else(|e| panic!("rename to {}: {e}", path.display()));
    path
}

/// `sha256:<hex>` of `data`.
pub fn sha256_digest(data: &[u8]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, data);
    format!("sha256:{}", hex::encode(d.as_ref()))
}

/// The OCI architecture name of this machine.
pub fn oci_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "arm" => "arm",
        "riscv64" => "riscv64",
        "s390x" => "s390x",
        "powerpc64" => "ppc64le",
        other => panic!("no OCI architecture name for {other}"),
    }
}

/// The tag part of a reference (`…:tag`), "latest" without one.
fn tag_of(name: &str) -> &str {
    let last = name.rsplit('/').next().unwrap_or(name);
    last.split_once(':').map(|(_, t)| t).unwrap_or("latest")
}

/// A deterministic tar header: owner 0, mtime 0.
fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(size);
    h
}

/// The layer: `spec.entries` as an uncompressed tar, sorted by path.
pub fn layer_tar(entries: &[Entry]) -> Vec<u8> {
    let mut sorted: Vec<&Entry> = entries.iter().collect();
    let key = |e: &Entry| match e {
        Entry::Dir { path, .. } | Entry::File { path, .. } | Entry::Symlink { path, .. } => {
            path.clone()
        }
    };
    sorted.sort_by_key(|e| key(e));
    let mut b = tar::Builder::new(Vec::new());
    for e in sorted {
        match e {
            Entry::Dir { path, mode } => {
                let mut h = header(tar::EntryType::Directory, *mode, 0);
                b.append_data(&mut h, format!("{path}/"), std::io::empty())
                    .expect("tar dir entry");
            }
            Entry::File { path, mode, data } => {
                let mut h = header(tar::EntryType::Regular, *mode, data.len() as u64);
                b.append_data(&mut h, path, data.as_slice())
                    .expect("tar file entry");
            }
            Entry::Symlink { path, target } => {
                let mut h = header(tar::EntryType::Symlink, 0o777, 0);
                b.append_link(&mut h, path, target)
                    .expect("tar symlink entry");
            }
        }
    }
    b.into_inner().expect("finish layer tar")
}

/// The whole OCI layout tarball of `spec`, in memory.
pub fn oci_layout_tar(spec: &ImageSpec) -> Vec<u8> {
    use serde_json::json;
    let arch = oci_arch();
    let layer = layer_tar(&spec.entries);
    let layer_digest = sha256_digest(&layer);
    let mut process = serde_json::Map::new();
    process.insert("Env".into(), json!(spec.env));
    if !spec.entrypoint.is_empty() {
        process.insert("Entrypoint".into(), json!(spec.entrypoint));
    }
    if !spec.cmd.is_empty() {
        process.insert("Cmd".into(), json!(spec.cmd));
    }
    if !spec.user.is_empty() {
        process.insert("User".into(), json!(spec.user));
    }
    if !spec.working_dir.is_empty() {
        process.insert("WorkingDir".into(), json!(spec.working_dir));
    }
    let config = json!({
        "created": "1970-01-01T00:00:00Z",
        "architecture": arch,
        "os": "linux",
        "config": process,
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "nanokube tests"}],
    });
    let config = serde_json::to_vec(&config).expect("config JSON");
    let config_digest = sha256_digest(&config);
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": config.len(),
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": layer_digest,
            "size": layer.len(),
        }],
    });
    let manifest = serde_json::to_vec(&manifest).expect("manifest JSON");
    let manifest_digest = sha256_digest(&manifest);
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest,
            "size": manifest.len(),
            "platform": {"architecture": arch, "os": "linux"},
            "annotations": {
                "io.containerd.image.name": spec.name,
                "org.opencontainers.image.ref.name": tag_of(&spec.name),
            },
        }],
    });
    let index = serde_json::to_vec(&index).expect("index JSON");
    let layout = br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec();

    let blob = |digest: &str| format!("blobs/sha256/{}", digest.trim_start_matches("sha256:"));
    let mut files: Vec<(String, Vec<u8>)> = vec![
        (blob(&config_digest), config),
        (blob(&layer_digest), layer),
        (blob(&manifest_digest), manifest),
        ("index.json".into(), index),
        ("oci-layout".into(), layout),
    ];
    files.sort_by(|a, b| a.0.cmp(&b.0));
    let mut b = tar::Builder::new(Vec::new());
    for dir in ["blobs/", "blobs/sha256/"] {
        let mut h = header(tar::EntryType::Directory, 0o755, 0);
        b.append_data(&mut h, dir, std::io::empty())
            .expect("tar dir entry");
    }
    for (path, data) in &files {
        let mut h = header(tar::EntryType::Regular, 0o644, data.len() as u64);
        b.append_data(&mut h, path, data.as_slice())
            .expect("tar file entry");
    }
    b.into_inner().expect("finish image tar")
}
