//! Image tarballs: OCI image layouts and docker archives (`docker save`),
//! plain, gzip or zstd (recognised by their magic bytes, not their name).
//!
//! A compressed tarball is first decompressed into an unlinked temporary
//! file, so blobs can then be read at any offset: an OCI layout's
//! index.json often comes after the blobs it names. Everything here is
//! blocking I/O, to be run on a blocking thread.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::manifest::{self, digest_hex, normalize_name, Descriptor, DockerArchiveEntry};
use super::Error;

/// JSON documents (index, manifests, configs) larger than this are refused.
const MAX_JSON: u64 = 16 << 20;

/// Where a blob's bytes are.
#[derive(Clone)]
pub enum Source {
    /// A file inside the archive.
    Entry { offset: u64, size: u64 },
    /// Made up during import (a docker archive's manifests).
    Memory(Arc<Vec<u8>>),
}

/// One image to record: its name and the descriptor it points to.
#[derive(Debug, Clone)]
pub struct Named {
    pub name: String,
    pub target: Descriptor,
}

/// What an archive holds: blobs by digest and the named images.
pub struct Plan {
    pub blobs: HashMap<String, Source>,
    pub images: Vec<Named>,
}

pub struct Archive {
    file: File,
    entries: HashMap<String, (u64, u64)>,
    display: String,
}

impl Archive {
    /// Opens (decompressing into `tmp_dir` if needed) and indexes a tarball.
    pub fn open(path: &Path, tmp_dir: &Path) -> Result<Archive, Error> {
        let display = path.display().to_string();
        let fail = |message: String| Error::Archive {
            path: display.clone(),
            message,
        };
        let mut file = File::open(path).map_err(|e| fail(e.to_string()))?;
        let mut magic = [0u8; 4];
        let n = read_full(&mut file, &mut magic).map_err(|e| fail(e.to_string()))?;
        file.seek(SeekFrom::Start(0))
            .map_err(|e| fail(e.to_string()))?;
        let file = match &magic[..n] {
            [0x1f, 0x8b, ..] => decompress(flate2::read::MultiGzDecoder::new(file), tmp_dir)
                .map_err(|e| fail(format!("gzip: {e}")))?,
            [0x28, 0xb5, 0x2f, 0xfd] => {
                let decoder = zstd::stream::read::Decoder::new(file)
                    .map_err(|e| fail(format!("zstd: {e}")))?;
                decompress(decoder, tmp_dir).map_err(|e| fail(format!("zstd: {e}")))?
            }
            _ => file,
        };
        let entries = index(&file).map_err(|e| fail(format!("not a readable tar archive: {e}")))?;
        Ok(Archive {
            file,
            entries,
            display,
        })
    }

    fn fail(&self, message: String) -> Error {
        Error::Archive {
            path: self.display.clone(),
            message,
        }
    }

    pub fn read(&self, name: &str) -> Result<Vec<u8>, Error> {
        let &(offset, size) = self
            .entries
            .get(name)
            .ok_or_else(|| self.fail(format!("{name} is missing")))?;
        if size > MAX_JSON {
            return Err(self.fail(format!("{name} is too large ({size} bytes)")));
        }
        let mut buf = vec![0; size as usize];
        self.read_at(offset, &mut buf)?;
        Ok(buf)
    }

    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), Error> {
        self.file
            .read_exact_at(buf, offset)
            .map_err(|e| self.fail(format!("reading: {e}")))
    }

    /// The bytes of a blob from the plan.
    pub fn blob(&self, source: &Source) -> Result<Vec<u8>, Error> {
        match source {
            Source::Memory(data) => Ok(data.as_ref().clone()),
            Source::Entry { offset, size } => {
                if *size > MAX_JSON {
                    return Err(self.fail(format!("a document of {size} bytes is too large")));
                }
                let mut buf = vec![0; *size as usize];
                self.read_at(*offset, &mut buf)?;
                Ok(buf)
            }
        }
    }

    /// The blobs and named images of an OCI layout or a docker archive.
    pub fn plan(&self) -> Result<Plan, Error> {
        let oci = if self.entries.contains_key("index.json") {
            Some(self.oci_plan()?)
        } else {
            None
        };
        match oci {
            Some(plan)
                if !plan.images.is_empty() || !self.entries.contains_key("manifest.json") =>
            {
                if plan.images.is_empty() {
                    return Err(self.fail(
                        "no image in index.json has a name (annotation io.containerd.image.name or org.opencontainers.image.ref.name)".into(),
                    ));
                }
                Ok(plan)
            }
            _ if self.entries.contains_key("manifest.json") => self.docker_plan(),
            _ => Err(self.fail(
                "neither an OCI image layout (index.json) nor a docker archive (manifest.json)"
                    .into(),
            )),
        }
    }

    fn oci_plan(&self) -> Result<Plan, Error> {
        let mut blobs = HashMap::new();
        for (name, &(offset, size)) in &self.entries {
            if let Some(hex) = name.strip_prefix("blobs/sha256/") {
                let digest = format!("sha256:{hex}");
                if digest_hex(&digest).is_some() {
                    blobs.insert(digest, Source::Entry { offset, size });
                }
            }
        }
        let index: manifest::Index = serde_json::from_slice(&self.read("index.json")?)
            .map_err(|e| self.fail(format!("index.json: {e}")))?;
        let mut images = Vec::new();
        for desc in index.manifests {
            let name = desc
                .annotations
                .get(manifest::ANNOTATION_IMAGE_NAME)
                .or_else(|| {
                    // A bare tag ("latest") names nothing without a repository.
                    desc.annotations
                        .get(manifest::ANNOTATION_REF_NAME)
                        .filter(|r| r.contains('/') || r.contains(':'))
                })
                .and_then(|n| normalize_name(n));
            match name {
                Some(name) => images.push(Named { name, target: desc }),
                None => {
                    tracing::warn!(archive = %self.display, digest = %desc.digest, "skipping an image without a name")
                }
            }
        }
        Ok(Plan { blobs, images })
    }

    /// A docker archive names config and layer files; containerd needs a
    /// manifest, so one is made (Docker schema 2, as `docker push` would).
    fn docker_plan(&self) -> Result<Plan, Error> {
        let list: Vec<DockerArchiveEntry> = serde_json::from_slice(&self.read("manifest.json")?)
            .map_err(|e| self.fail(format!("manifest.json: {e}")))?;
        let mut blobs = HashMap::new();
        let mut images = Vec::new();
        for entry in list {
            let config = self.entry_blob(&entry.config, &mut blobs)?;
            let mut layers = Vec::new();
            for layer in &entry.layers {
                let (digest, size, magic) = self.entry_blob_with_magic(layer, &mut blobs)?;
                let media_type = match magic {
                    [0x1f, 0x8b, ..] => manifest::DOCKER_LAYER_GZIP,
                    [0x28, 0xb5, 0x2f, 0xfd] => manifest::OCI_LAYER_ZSTD,
                    _ => manifest::DOCKER_LAYER,
                };
                layers.push(
                    serde_json::json!({ "mediaType": media_type, "digest": digest, "size": size }),
                );
            }
            let body = serde_json::to_vec(&serde_json::json!({
                "schemaVersion": 2,
                "mediaType": manifest::DOCKER_MANIFEST,
                "config": { "mediaType": manifest::DOCKER_CONFIG, "digest": config.0, "size": config.1 },
                "layers": layers,
            }))
            .map_err(|e| self.fail(e.to_string()))?;
            let target = Descriptor {
                media_type: manifest::DOCKER_MANIFEST.into(),
                digest: manifest::sha256_digest(&body),
                size: body.len() as i64,
                platform: None,
                annotations: Default::default(),
            };
            blobs.insert(target.digest.clone(), Source::Memory(Arc::new(body)));
            let tags = entry.repo_tags.unwrap_or_default();
            if tags.is_empty() {
                tracing::warn!(archive = %self.display, config = %entry.config, "skipping an image without RepoTags");
            }
            for tag in tags {
                match normalize_name(&tag) {
                    Some(name) => images.push(Named {
                        name,
                        target: target.clone(),
                    }),
                    None => {
                        tracing::warn!(archive = %self.display, tag, "skipping an invalid image name")
                    }
                }
            }
        }
        if images.is_empty() {
            return Err(self.fail("no image in manifest.json has a name (RepoTags)".into()));
        }
        Ok(Plan { blobs, images })
    }

    fn entry_blob(
        &self,
        name: &str,
        blobs: &mut HashMap<String, Source>,
    ) -> Result<(String, u64), Error> {
        self.entry_blob_with_magic(name, blobs)
            .map(|(d, s, _)| (d, s))
    }

    /// Hashes a file of the archive and adds it to the blobs.
    fn entry_blob_with_magic(
        &self,
        name: &str,
        blobs: &mut HashMap<String, Source>,
    ) -> Result<(String, u64, [u8; 4]), Error> {
        let key = normalize(name).ok_or_else(|| self.fail(format!("invalid path {name:?}")))?;
        let &(offset, size) = self
            .entries
            .get(&key)
            .ok_or_else(|| self.fail(format!("{name} is missing")))?;
        let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
        let mut buf = vec![0u8; 1 << 20];
        let mut magic = [0u8; 4];
        let mut done = 0u64;
        while done < size {
            let n = (size - done).min(buf.len() as u64) as usize;
            self.read_at(offset + done, &mut buf[..n])?;
            if done == 0 {
                let m = n.min(4);
                magic[..m].copy_from_slice(&buf[..m]);
            }
            ctx.update(&buf[..n]);
            done += n as u64;
        }
        let digest = format!("sha256:{}", hex::encode(ctx.finish()));
        blobs.insert(digest.clone(), Source::Entry { offset, size });
        Ok((digest, size, magic))
    }
}

fn read_full(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Decompresses into a temporary file that is unlinked at once: it lives as
/// long as the handle, and nothing is left behind if the agent dies.
fn decompress(mut reader: impl Read, tmp_dir: &Path) -> std::io::Result<File> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    std::fs::create_dir_all(tmp_dir)?;
    let path: PathBuf = tmp_dir.join(format!(
        ".import-{}-{}.tar",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)?;
    let _ = std::fs::remove_file(&path);
    std::io::copy(&mut reader, &mut file)?;
    file.seek(SeekFrom::Start(0))?;
    Ok(file)
}

/// Archive path → (offset of the data, size), links resolved.
fn index(file: &File) -> std::io::Result<HashMap<String, (u64, u64)>> {
    let mut files = HashMap::new();
    let mut links: Vec<(String, String)> = Vec::new();
    let mut archive = tar::Archive::new(file);
    for entry in archive.entries_with_seek()? {
        let entry = entry?;
        let Some(path) = entry
            .path()
            .ok()
            .and_then(|p| normalize(&p.to_string_lossy()))
        else {
            continue;
        };
        let kind = entry.header().entry_type();
        if kind.is_file() || kind == tar::EntryType::Continuous {
            files.insert(path, (entry.raw_file_position(), entry.size()));
        } else if kind.is_symlink() || kind.is_hard_link() {
            let Some(target) = entry.link_name().ok().flatten() else {
                continue;
            };
            let target = target.to_string_lossy().into_owned();
            // Symlinks are relative to their directory, hard links to the root.
            let target = if kind.is_symlink() && !target.starts_with('/') {
                match path.rsplit_once('/') {
                    Some((dir, _)) => format!("{dir}/{target}"),
                    None => target,
                }
            } else {
                target
            };
            if let Some(target) = normalize(&target) {
                links.push((path, target));
            }
        }
    }
    // Docker archives link repeated layers to the first copy; follow chains.
    for _ in 0..8 {
        let mut progress = false;
        for (path, target) in &links {
            if files.contains_key(path) {
                continue;
            }
            if let Some(&found) = files.get(target) {
                files.insert(path.clone(), found);
                progress = true;
            }
        }
        if !progress {
            break;
        }
    }
    Ok(files)
}

/// `./a/../b//c` → `b/c`; paths escaping the root are refused.
fn normalize(path: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for c in Path::new(path).components() {
        match c {
            Component::Normal(p) => parts.push(p.to_str()?),
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn tar_bytes(files: &[(&str, &[u8])], links: &[(&str, &str)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, data) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            b.append_data(&mut h, path, *data).unwrap();
        }
        for (path, target) in links {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Symlink);
            h.set_size(0);
            b.append_link(&mut h, path, target).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn docker_archive() -> Vec<u8> {
        let layer = b"layer-bytes".as_slice();
        let manifest = br#"[{"Config":"cfg.json","RepoTags":["busybox:latest","me/bb:1"],"Layers":["l1/layer.tar","l2/layer.tar"]}]"#;
        tar_bytes(
            &[
                ("manifest.json", manifest),
                ("cfg.json", b"{}"),
                ("l1/layer.tar", layer),
            ],
            &[("l2/layer.tar", "../l1/layer.tar")],
        )
    }

    fn open(bytes: &[u8], dir: &Path) -> Archive {
        let path = dir.join("a.tar");
        std::fs::write(&path, bytes).unwrap();
        Archive::open(&path, dir).unwrap()
    }

    #[test]
    fn paths() {
        assert_eq!(normalize("./a/b").as_deref(), Some("a/b"));
        assert_eq!(normalize("a/../b//c").as_deref(), Some("b/c"));
        assert_eq!(normalize("../x"), None);
        assert_eq!(normalize("."), None);
    }

    #[test]
    fn docker_archive_gets_a_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let archive = open(&docker_archive(), dir.path());
        let plan = archive.plan().unwrap();
        let names: Vec<_> = plan.images.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(
            names,
            ["docker.io/library/busybox:latest", "docker.io/me/bb:1"]
        );
        let target = &plan.images[0].target;
        assert_eq!(target.media_type, manifest::DOCKER_MANIFEST);
        let body = archive.blob(&plan.blobs[&target.digest]).unwrap();
        let m: manifest::Manifest = serde_json::from_slice(&body).unwrap();
        assert_eq!(m.config.digest, manifest::sha256_digest(b"{}"));
        // The symlinked second layer is the same blob.
        assert_eq!(m.layers.len(), 2);
        assert_eq!(m.layers[0].digest, m.layers[1].digest);
        assert_eq!(m.layers[0].media_type, manifest::DOCKER_LAYER);
        assert_eq!(
            archive.blob(&plan.blobs[&m.layers[0].digest]).unwrap(),
            b"layer-bytes"
        );
    }

    #[test]
    fn compressed_archives_by_magic() {
        let dir = tempfile::tempdir().unwrap();
        let plain = docker_archive();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&plain).unwrap();
        let gz = gz.finish().unwrap();
        let zst = zstd::encode_all(&plain[..], 1).unwrap();
        for bytes in [gz, zst] {
            let archive = open(&bytes, dir.path());
            assert_eq!(archive.plan().unwrap().images.len(), 2);
        }
        // The temporary decompressed copies are already unlinked.
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 1);
    }

    #[test]
    fn oci_layout_names() {
        let dir = tempfile::tempdir().unwrap();
        let tar = super::super::pause::image_tarball().unwrap();
        let plan = open(&tar, dir.path()).plan().unwrap();
        assert_eq!(plan.images.len(), 1);
        assert_eq!(plan.images[0].name, super::super::pause::PAUSE_IMAGE);
        assert_eq!(plan.blobs.len(), 3);

        let index = br#"{"manifests":[{"digest":"sha256:00","size":1,"annotations":{"org.opencontainers.image.ref.name":"latest"}}]}"#;
        let archive = open(&tar_bytes(&[("index.json", index)], &[]), dir.path());
        assert!(archive.plan().is_err());
    }

    #[test]
    fn garbage_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.tar");
        std::fs::write(&path, tar_bytes(&[("hello.txt", b"hi")], &[])).unwrap();
        let err = Archive::open(&path, dir.path())
            .unwrap()
            .plan()
            .err()
            .unwrap();
        assert!(err.to_string().contains("neither"), "{err}");
    }
}
