//! Image tarballs at agent start (`A/images/`) and the `nanokube images`
//! command against a running node's containerd.

use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::client::Containerd;
use super::config::Layout;
use super::import::import_file;
use super::manifest::{self, Kind};
use super::{Error, ImagesCommand};

const SUFFIXES: [&str; 5] = [".tar", ".tar.gz", ".tgz", ".tar.zst", ".tzst"];

/// What was imported from `A/images/`, so an unchanged tarball is not read
/// again at every start (a large one takes seconds to decompress).
#[derive(Default, Serialize, Deserialize)]
struct Done {
    files: BTreeMap<String, DoneFile>,
}

#[derive(PartialEq, Serialize, Deserialize)]
struct DoneFile {
    size: u64,
    mtime: i64,
    images: Vec<String>,
}

/// Imports every tarball of `A/images/` that changed since it was last
/// imported or whose images are gone. A bad tarball is logged and skipped:
/// it must not keep the node from starting.
pub async fn import_dir(
    client: &Containerd,
    agent_dir: &Path,
    layout: &Layout,
) -> Result<(), Error> {
    let dir = agent_dir.join("images");
    let Ok(read) = std::fs::read_dir(&dir) else {
        return Ok(());
    };
    let mut files: Vec<PathBuf> = read
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            !name.starts_with('.') && SUFFIXES.iter().any(|s| name.ends_with(s)) && p.is_file()
        })
        .collect();
    if files.is_empty() {
        return Ok(());
    }
    files.sort();
    let record = layout.dir.join("imported.json");
    let mut done: Done = std::fs::read(&record)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let present: HashSet<String> = client
        .list_images()
        .await?
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    for path in files {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let unchanged = done.files.get(&name).is_some_and(|prev| {
            prev.size == meta.len()
                && prev.mtime == mtime
                && prev.images.iter().all(|i| present.contains(i))
        });
        if unchanged {
            tracing::debug!(file = %path.display(), "image tarball unchanged since its import");
            continue;
        }
        let started = std::time::Instant::now();
        match import_file(client, &path, &layout.dir).await {
            Ok(imported) => {
                tracing::info!(
                    file = %path.display(),
                    images = imported.len(),
                    ms = started.elapsed().as_millis() as u64,
                    "imported image tarball"
                );
                done.files.insert(
                    name,
                    DoneFile {
                        size: meta.len(),
                        mtime,
                        images: imported.into_iter().map(|i| i.name).collect(),
                    },
                );
            }
            Err(e) => {
                tracing::error!(file = %path.display(), error = %e, "cannot import image tarball")
            }
        }
    }
    if let Ok(bytes) = serde_json::to_vec_pretty(&done) {
        super::config::write_if_changed(&record, &bytes)?;
    }
    Ok(())
}

/// `nanokube images import FILE... | list` on the node whose agent
/// directory is `agent_dir`.
pub async fn run(agent_dir: &Path, cmd: ImagesCommand) -> Result<(), Error> {
    let layout = Layout::new(agent_dir);
    if !layout.socket.exists() {
        return Err(Error::NoNode(layout.socket.display().to_string()));
    }
    let client = Containerd::new(&layout.socket);
    let mut out = std::io::stdout().lock();
    match cmd {
        ImagesCommand::Import { files } => {
            for file in files {
                for image in import_file(&client, &file, &layout.dir).await? {
                    let _ = writeln!(out, "imported {} {}", image.name, image.digest);
                }
            }
        }
        ImagesCommand::List => {
            let mut rows = Vec::new();
            for (name, target) in client.list_images().await? {
                // CRI's extra records named by image id repeat a named one.
                if name.starts_with("sha256:") {
                    continue;
                }
                let size = image_size(&client, &target)
                    .await
                    .map(human)
                    .unwrap_or_else(|| "-".into());
                rows.push([name, target.digest, size]);
            }
            rows.sort();
            let _ = out.write_all(table(&rows).as_bytes());
        }
    }
    Ok(())
}

/// Bytes of the host platform's manifest, config and layers.
async fn image_size(client: &Containerd, target: &manifest::Descriptor) -> Option<u64> {
    let mut desc = target.clone();
    for _ in 0..4 {
        let body = client.read_blob(&desc.digest).await.ok()?;
        match manifest::kind(&desc.media_type, &body)? {
            Kind::Index => {
                let index: manifest::Index = serde_json::from_slice(&body).ok()?;
                let host = manifest::host_platform();
                desc = index
                    .manifests
                    .into_iter()
                    .filter_map(|m| {
                        manifest::platform_rank(m.platform.as_ref(), host).map(|r| (r, m))
                    })
                    .max_by_key(|(r, _)| *r)?
                    .1;
            }
            Kind::Manifest => {
                let m: manifest::Manifest = serde_json::from_slice(&body).ok()?;
                let sum: i64 = body.len() as i64
                    + m.config.size
                    + m.layers.iter().map(|l| l.size).sum::<i64>();
                return u64::try_from(sum).ok();
            }
        }
    }
    None
}

fn human(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

fn table(rows: &[[String; 3]]) -> String {
    let header = ["REFERENCE", "DIGEST", "SIZE"].map(String::from);
    let all: Vec<&[String; 3]> = std::iter::once(&header).chain(rows).collect();
    let w0 = all.iter().map(|r| r[0].len()).max().unwrap_or(0);
    let w1 = all.iter().map(|r| r[1].len()).max().unwrap_or(0);
    all.iter()
        .map(|r| format!("{:<w0$}   {:<w1$}   {}\n", r[0], r[1], r[2]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(human(10), "10 B");
        assert_eq!(human(1536), "1.5 KiB");
        assert_eq!(human(5 << 20), "5.0 MiB");
    }

    #[test]
    fn tables_align() {
        let rows = [[
            "docker.io/library/busybox:latest".to_string(),
            "sha256:ab".into(),
            "1.0 MiB".into(),
        ]];
        let t = table(&rows);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0].find("DIGEST"), lines[1].find("sha256"));
        assert!(lines[0].starts_with("REFERENCE "));
    }
}
