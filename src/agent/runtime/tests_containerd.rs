//! A check against the real containerd of this machine (root, containerd,
//! runc, containernetworking-plugins and busybox-static installed):
//!
//! ```text
//! cargo test --bin nanokube runtime -- --ignored --nocapture
//! ```
//!
//! Starts a Runtime in a temporary agent directory, imports busybox images
//! built on the fly from /bin/busybox (an OCI layout as .tar.zst through
//! the import API, a docker archive as .tar.gz from `A/images/`), runs a
//! sandbox on the node's CNI network and `busybox sleep 30` in it through
//! CRI, then removes everything it made: containers, sandbox, containerd,
//! the bridge, CNI iptables rules, cgroups and mounts.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use super::*;
use crate::agent::cri::api;
use manifest::sha256_digest;

const POD_CIDR: &str = "10.250.0.0/24";

fn tar(entries: &[(&str, Option<&[u8]>, u32)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, data, mode) in entries {
        let mut h = tar::Header::new_ustar();
        h.set_mode(*mode);
        h.set_mtime(0);
        match data {
            Some(data) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_size(data.len() as u64);
                b.append_data(&mut h, path, *data).unwrap();
            }
            None if path.ends_with('/') => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_size(0);
                b.append_data(&mut h, path, &[][..]).unwrap();
            }
            // A symlink to busybox: busybox picks its applet from argv[0].
            None => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_size(0);
                b.append_link(&mut h, path, "busybox").unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

/// (uncompressed layer, config) of a busybox image.
fn busybox_layer_and_config() -> (Vec<u8>, Vec<u8>) {
    let busybox = std::fs::read("/bin/busybox").expect("busybox-static is installed");
    let layer = tar(&[
        ("bin/", None, 0o755),
        ("bin/busybox", Some(&busybox), 0o755),
        ("bin/sh", None, 0o777),
        ("bin/sleep", None, 0o777),
        ("tmp/", None, 0o1777),
    ]);
    let (arch, _) = manifest::host_platform();
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": arch, "os": "linux",
        "config": { "Env": ["PATH=/bin"], "Cmd": ["sh"] },
        "rootfs": { "type": "layers", "diff_ids": [sha256_digest(&layer)] },
    }))
    .unwrap();
    (layer, config)
}

/// An OCI layout with a gzip layer, compressed with zstd.
fn busybox_oci(name: &str) -> Vec<u8> {
    let (layer, config) = busybox_layer_and_config();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&layer).unwrap();
    let layer = gz.finish().unwrap();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": manifest::OCI_MANIFEST,
        "config": { "mediaType": manifest::OCI_CONFIG, "digest": sha256_digest(&config), "size": config.len() },
        "layers": [{ "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": sha256_digest(&layer), "size": layer.len() }],
    }))
    .unwrap();
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{ "mediaType": manifest::OCI_MANIFEST, "digest": sha256_digest(&manifest), "size": manifest.len(),
            "annotations": { "io.containerd.image.name": name } }],
    }))
    .unwrap();
    let blob = |d: &[u8]| format!("blobs/sha256/{}", &sha256_digest(d)[7..]);
    let (lp, cp, mp) = (blob(&layer), blob(&config), blob(&manifest));
    let t = tar(&[
        ("index.json", Some(&index), 0o644),
        (&lp, Some(&layer), 0o644),
        (&cp, Some(&config), 0o644),
        (&mp, Some(&manifest), 0o644),
        (
            "oci-layout",
            Some(br#"{"imageLayoutVersion":"1.0.0"}"#),
            0o644,
        ),
    ]);
    zstd::encode_all(&t[..], 3).unwrap()
}

/// A docker archive (`docker save` layout), gzip-compressed.
fn busybox_docker(tag: &str) -> Vec<u8> {
    let (layer, config) = busybox_layer_and_config();
    let manifest = serde_json::to_vec(&serde_json::json!([
        { "Config": "config.json", "RepoTags": [tag], "Layers": ["abc/layer.tar"] }
    ]))
    .unwrap();
    let t = tar(&[
        ("manifest.json", Some(&manifest), 0o644),
        ("config.json", Some(&config), 0o644),
        ("abc/layer.tar", Some(&layer), 0o644),
    ]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&t).unwrap();
    gz.finish().unwrap()
}

async fn image_listed(cri: &Cri, image: &str) -> bool {
    let resp = cri
        .images()
        .image_status(api::ImageStatusRequest {
            image: Some(api::ImageSpec {
                image: image.into(),
                ..Default::default()
            }),
            verbose: false,
        })
        .await
        .unwrap()
        .into_inner();
    resp.image.is_some()
}

async fn wait_listed(cri: &Cri, image: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !image_listed(cri, image).await {
        assert!(Instant::now() < deadline, "{image} never listed by CRI");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs root and containerd; run: cargo test --bin nanokube runtime -- --ignored"]
async fn pod_on_real_containerd() {
    let tmp = tempfile::tempdir().unwrap();
    let agent = tmp.path().join("agent");
    std::fs::create_dir_all(agent.join("images")).unwrap();
    std::fs::write(
        agent.join("images/bb.tar.gz"),
        busybox_docker("nanokube.test/busybox-docker:1"),
    )
    .unwrap();
    let id = instance_id(&agent);
    let result = tokio::time::timeout(Duration::from_secs(120), scenario(&agent)).await;
    cleanup(tmp.path(), &id);
    match result {
        Ok(Ok(())) => {}
        Ok(Err(e)) => panic!("{e}"),
        Err(_) => panic!("timed out"),
    }
}

fn settings(agent: &Path, leave_running: bool) -> RuntimeSettings {
    RuntimeSettings {
        agent_dir: agent.to_path_buf(),
        endpoint: None,
        cni_bin_dirs: Vec::new(),
        leave_running,
    }
}

fn containerd_pid(agent: &Path) -> i32 {
    let text = std::fs::read_to_string(agent.join("containerd/containerd.pid")).unwrap();
    text.trim().parse().unwrap()
}

async fn running_ids(cri: &Cri, sandbox: &str) -> Result<Vec<String>, String> {
    let containers = cri
        .runtime()
        .list_containers(api::ListContainersRequest {
            filter: Some(api::ContainerFilter {
                state: Some(api::ContainerStateValue {
                    state: api::ContainerState::ContainerRunning as i32,
                }),
                pod_sandbox_id: sandbox.to_string(),
                ..Default::default()
            }),
        })
        .await
        .map_err(|e| e.to_string())?
        .into_inner()
        .containers;
    Ok(containers.into_iter().map(|c| c.id).collect())
}

async fn scenario(agent: &Path) -> Result<(), String> {
    let started = Instant::now();
    let runtime = Runtime::start(settings(agent, true))
        .await
        .map_err(|e| e.to_string())?;
    let start_total = started.elapsed();
    let t = runtime.timings.clone();
    println!(
        "start: containerd→CRI ready {:?}, pause image {:?}, A/images import {:?}, total {:?}",
        t.containerd_ready, t.pause_image, t.images, start_total
    );
    let (sandbox, container) = match pod(&runtime, agent).await {
        Ok(ids) => ids,
        Err(e) => {
            runtime.stop().await;
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(containerd_pid(agent)),
                nix::sys::signal::Signal::SIGKILL,
            );
            return Err(e);
        }
    };

    // containerd dies: Down, then Up again after the 1 s backoff; the
    // container keeps running (its shim holds it).
    let mut health = runtime.health();
    health.borrow_and_update();
    let t0 = Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(containerd_pid(agent)),
        nix::sys::signal::Signal::SIGKILL,
    )
    .map_err(|e| e.to_string())?;
    let mut seen_down = false;
    while *health.borrow_and_update() != Health::Up || !seen_down {
        if matches!(*health.borrow(), Health::Down(_)) {
            seen_down = true;
        }
        tokio::time::timeout(Duration::from_secs(10), health.changed())
            .await
            .map_err(|_| "containerd was not restarted".to_string())?
            .map_err(|e| e.to_string())?;
    }
    let cri = Cri::connect(&runtime.cri_endpoint())
        .await
        .map_err(|e| e.to_string())?;
    let ids = running_ids(&cri, &sandbox).await?;
    println!(
        "containerd killed → restarted and Up in {:?}; running: {ids:?}",
        t0.elapsed()
    );
    if ids != [container.clone()] {
        return Err(format!("after the containerd restart: running {ids:?}"));
    }

    // The agent stops leaving containerd running, and a new agent run
    // replaces that containerd: the container survives both.
    let old = containerd_pid(agent);
    runtime.stop().await;
    if !std::path::Path::new(&format!("/proc/{old}")).exists() {
        return Err("containerd was stopped despite leave_running".into());
    }
    let t0 = Instant::now();
    let runtime = Runtime::start(settings(agent, false))
        .await
        .map_err(|e| e.to_string())?;
    let restart = t0.elapsed();
    let new = containerd_pid(agent);
    let ids = running_ids(&cri, &sandbox).await?;
    println!(
        "agent restart: new containerd {new} (was {old}) ready in {restart:?}; running: {ids:?}"
    );
    let outcome = if new == old || supervise_alive(old) {
        Err("the stale containerd was not replaced".to_string())
    } else if ids != [container.clone()] {
        Err(format!("after the agent restart: running {ids:?}"))
    } else {
        Ok(())
    };
    let torn = teardown(&cri, sandbox, container).await;
    runtime.stop().await;
    if supervise_alive(new) {
        return Err("containerd still runs after stop".into());
    }
    outcome.and(torn)
}

fn supervise_alive(pid: i32) -> bool {
    supervise::alive(nix::unistd::Pid::from_raw(pid))
}

async fn pod(runtime: &Runtime, agent: &Path) -> Result<(String, String), String> {
    let cri = Cri::connect(&runtime.cri_endpoint())
        .await
        .map_err(|e| e.to_string())?;
    assert_eq!(*runtime.health().borrow(), Health::Up);
    let config = std::fs::read_to_string(agent.join("containerd/config.toml")).unwrap();
    assert!(config.contains(&format!(
        "restrict_oom_score_adj = {}",
        !config::has_cap_sys_resource()
    )));

    // The docker archive from A/images was imported at start.
    wait_listed(&cri, "nanokube.test/busybox-docker:1").await;

    let path = agent.join("bb.tar.zst");
    std::fs::write(&path, busybox_oci("nanokube.test/busybox:1")).unwrap();
    let t0 = Instant::now();
    images_command(
        agent,
        ImagesCommand::Import {
            files: vec![path.clone()],
        },
    )
    .await
    .map_err(|e| e.to_string())?;
    let import = t0.elapsed();
    wait_listed(&cri, "nanokube.test/busybox:1").await;
    let t0 = Instant::now();
    images_command(agent, ImagesCommand::Import { files: vec![path] })
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "import (zstd OCI layout, 1.9 MB busybox): {import:?}; again: {:?}",
        t0.elapsed()
    );
    images_command(agent, ImagesCommand::List)
        .await
        .map_err(|e| e.to_string())?;

    runtime
        .write_cni_config(POD_CIDR)
        .await
        .map_err(|e| e.to_string())?;
    let uid = "0b5e1c52-6d3e-4f0b-9e61-000000000001";
    let logs = agent.join(format!("logs/pods/default_bb_{uid}"));
    std::fs::create_dir_all(&logs).unwrap();
    let sandbox_config = api::PodSandboxConfig {
        metadata: Some(api::PodSandboxMetadata {
            name: "bb".into(),
            uid: uid.into(),
            namespace: "default".into(),
            attempt: 0,
        }),
        hostname: "bb".into(),
        log_directory: logs.display().to_string(),
        labels: [("io.kubernetes.pod.uid".to_string(), uid.to_string())].into(),
        linux: Some(api::LinuxPodSandboxConfig {
            cgroup_parent: format!("{}/kubepods/besteffort/pod{uid}", runtime.cgroup_root()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let t0 = Instant::now();
    let sandbox = cri
        .runtime()
        .run_pod_sandbox(api::RunPodSandboxRequest {
            config: Some(sandbox_config.clone()),
            runtime_handler: String::new(),
        })
        .await
        .map_err(|e| format!("RunPodSandbox: {e}"))?
        .into_inner()
        .pod_sandbox_id;
    let sandbox_time = t0.elapsed();
    let t0 = Instant::now();
    let container = cri
        .runtime()
        .create_container(api::CreateContainerRequest {
            pod_sandbox_id: sandbox.clone(),
            config: Some(api::ContainerConfig {
                metadata: Some(api::ContainerMetadata {
                    name: "bb".into(),
                    attempt: 0,
                }),
                image: Some(api::ImageSpec {
                    image: "nanokube.test/busybox:1".into(),
                    ..Default::default()
                }),
                command: vec!["busybox".into(), "sleep".into(), "30".into()],
                log_path: "bb/0.log".into(),
                ..Default::default()
            }),
            sandbox_config: Some(sandbox_config),
        })
        .await
        .map_err(|e| format!("CreateContainer: {e}"))?
        .into_inner()
        .container_id;
    cri.runtime()
        .start_container(api::StartContainerRequest {
            container_id: container.clone(),
        })
        .await
        .map_err(|e| format!("StartContainer: {e}"))?;
    let container_time = t0.elapsed();
    let status = cri
        .runtime()
        .pod_sandbox_status(api::PodSandboxStatusRequest {
            pod_sandbox_id: sandbox.clone(),
            verbose: false,
        })
        .await
        .map_err(|e| e.to_string())?
        .into_inner();
    let ip = status
        .status
        .and_then(|s| s.network)
        .map(|n| n.ip)
        .unwrap_or_default();
    println!("RunPodSandbox {sandbox_time:?} (pod IP {ip}); CreateContainer+StartContainer {container_time:?}");
    let running = cri
        .runtime()
        .list_containers(api::ListContainersRequest {
            filter: Some(api::ContainerFilter {
                state: Some(api::ContainerStateValue {
                    state: api::ContainerState::ContainerRunning as i32,
                }),
                pod_sandbox_id: sandbox.clone(),
                ..Default::default()
            }),
        })
        .await
        .map_err(|e| e.to_string())?
        .into_inner()
        .containers;
    if running.len() != 1 || running[0].id != container || !ip.starts_with("10.250.0.") {
        let _ = teardown(&cri, sandbox, container).await;
        return Err(format!(
            "expected one running container with a pod IP, got {running:?}, ip {ip:?}"
        ));
    }
    Ok((sandbox, container))
}

/// Tears the pod down through CRI, as the kubelet will.
async fn teardown(cri: &Cri, sandbox: String, container: String) -> Result<(), String> {
    let rt = cri.runtime();
    let _ = rt
        .clone()
        .stop_container(api::StopContainerRequest {
            container_id: container.clone(),
            timeout: 0,
        })
        .await;
    let _ = rt
        .clone()
        .remove_container(api::RemoveContainerRequest {
            container_id: container,
        })
        .await;
    let _ = rt
        .clone()
        .stop_pod_sandbox(api::StopPodSandboxRequest {
            pod_sandbox_id: sandbox.clone(),
        })
        .await;
    rt.clone()
        .remove_pod_sandbox(api::RemovePodSandboxRequest {
            pod_sandbox_id: sandbox,
        })
        .await
        .map_err(|e| format!("RemovePodSandbox: {e}"))?;
    Ok(())
}

/// Removes what the scenario may have left on the machine.
fn cleanup(tmp: &Path, id: &str) {
    let run = |args: &[&str]| {
        std::process::Command::new(args[0])
            .args(&args[1..])
            .output()
    };
    // containerd and shims of this directory, should a failure leave any.
    let marker = tmp.to_string_lossy().into_owned();
    if let Ok(procs) = std::fs::read_dir("/proc") {
        for p in procs.flatten() {
            let Ok(pid) = p.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let cmdline = std::fs::read(p.path().join("cmdline")).unwrap_or_default();
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if pid != std::process::id() as i32 && cmdline.contains(&marker) {
                println!("leftover process {pid}: {cmdline}");
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }
    let _ = run(&["ip", "link", "del", &format!("nk{id}")]);
    // The bridge plugin's masquerade rules name the network in a comment.
    if let Ok(out) = run(&["iptables-save", "-t", "nat"]) {
        let text = String::from_utf8_lossy(&out.stdout);
        let network = format!("nanokube-{id}");
        let mut chains = Vec::new();
        for line in text
            .lines()
            .filter(|l| l.starts_with("-A ") && (l.contains(&network) || l.contains(POD_CIDR)))
        {
            println!("leftover iptables rule: {line}");
            // iptables-save quotes for the shell.
            let _ = run(&["sh", "-c", &format!("iptables -t nat -D {}", &line[3..])]);
            let target = line
                .split(" -j ")
                .nth(1)
                .and_then(|j| j.split_whitespace().next());
            if let Some(chain) = target.filter(|c| c.starts_with("CNI-")) {
                chains.push(chain.to_string());
            }
        }
        for chain in chains {
            let _ = run(&["iptables", "-t", "nat", "-F", &chain]);
            let _ = run(&["iptables", "-t", "nat", "-X", &chain]);
        }
    }
    // Mounts under the temporary directory, deepest first.
    if let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") {
        let mut points: Vec<&str> = info
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|p| p.starts_with(&*tmp.to_string_lossy()))
            .collect();
        points.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for p in points {
            println!("leftover mount: {p}");
            let _ = nix::mount::umount2(p, nix::mount::MntFlags::MNT_DETACH);
        }
    }
    // The pod's cgroups, in every v1 hierarchy (and v2 if unified).
    let root = format!("nanokube-{id}");
    if let Ok(dirs) = std::fs::read_dir("/sys/fs/cgroup") {
        for d in dirs.flatten() {
            let top = d.path().join(&root);
            let top = if top.exists() {
                top
            } else if d.path().ends_with(&root) {
                d.path()
            } else {
                continue;
            };
            remove_cgroup_tree(&top);
        }
    }
}

/// Kills what still runs in a cgroup tree, then removes it.
fn remove_cgroup_tree(dir: &Path) {
    if let Ok(procs) = std::fs::read_to_string(dir.join("cgroup.procs")) {
        for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
            println!("leftover process {pid} in {}", dir.display());
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                remove_cgroup_tree(&e.path());
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
}
