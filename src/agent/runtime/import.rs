//! Image import through the containerd API (what `ctr images import`
//! does), for the pause image and air-gap tarballs.
//!
//! Per image: write the host platform's blobs through the Content service
//! (children before parents, each parent labelled with GC references to its
//! children so containerd's garbage collector keeps them), unpack the layers
//! into overlayfs snapshots named by chain id (as containerd's unpacker
//! does; CRI's CreateContainer needs them), then create or update the Image
//! record. The CRI plugin learns of the image from containerd's ImageCreate
//! event. Everything happens under a lease so GC never races the import.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use containerd_client::types::Descriptor as CtrDescriptor;
use tonic::Code;

use super::archive::{Archive, Plan, Source};
use super::client::Containerd;
use super::manifest::{self, chain_ids, Descriptor, Kind};
use super::Error;

pub const SNAPSHOTTER: &str = "overlayfs";
const CHUNK: usize = 1 << 20;

/// One image now recorded in containerd.
#[derive(Debug, Clone)]
pub struct Imported {
    pub name: String,
    pub digest: String,
}

/// The host-platform manifest of an image, for unpacking.
struct Unpack {
    config: Descriptor,
    layers: Vec<Descriptor>,
}

/// Imports every named image of a tarball. `tmp_dir` takes the
/// decompressed copy of a compressed tarball while it is read.
pub async fn import_file(
    client: &Containerd,
    path: &Path,
    tmp_dir: &Path,
) -> Result<Vec<Imported>, Error> {
    let (path_buf, tmp) = (path.to_path_buf(), tmp_dir.to_path_buf());
    let (archive, plan) = tokio::task::spawn_blocking(move || {
        let archive = Archive::open(&path_buf, &tmp)?;
        let plan = archive.plan()?;
        Ok::<_, Error>((archive, plan))
    })
    .await
    .map_err(|e| Error::Image(format!("import task: {e}")))??;
    let lease = client.create_lease().await?;
    let client = client.with_lease(&lease);
    let mut importer = Importer {
        client: &client,
        archive: Arc::new(archive),
        plan,
        done: HashSet::new(),
    };
    let result = importer.run().await;
    // Without the lease the image records alone hold the content.
    if let Err(e) = client.delete_lease(&lease).await {
        tracing::debug!(lease, error = %e, "deleting the import lease");
    }
    result
}

struct Importer<'a> {
    client: &'a Containerd,
    archive: Arc<Archive>,
    plan: Plan,
    /// Blobs written (or found) during this import.
    done: HashSet<String>,
}

impl Importer<'_> {
    async fn run(&mut self) -> Result<Vec<Imported>, Error> {
        let mut out = Vec::new();
        let mut unpacked = HashSet::new();
        for image in self.plan.images.clone() {
            let unpack = self.put_tree(&image.target, 0).await?;
            if unpacked.insert(image.target.digest.clone()) {
                self.unpack(&unpack).await?;
            }
            self.client.put_image(&image.name, &image.target).await?;
            tracing::info!(image = %image.name, digest = %image.target.digest, "image imported");
            out.push(Imported {
                name: image.name,
                digest: image.target.digest,
            });
        }
        Ok(out)
    }

    /// Writes a manifest or index and what it needs for this platform;
    /// returns the platform's manifest.
    async fn put_tree(&mut self, desc: &Descriptor, depth: usize) -> Result<Unpack, Error> {
        if depth > 4 {
            return Err(Error::Image(format!(
                "{}: indexes nested too deep",
                desc.digest
            )));
        }
        let body = self.read(desc).await?;
        let mut labels = BTreeMap::new();
        let unpack = match manifest::kind(&desc.media_type, &body) {
            Some(Kind::Index) => {
                let index: manifest::Index = serde_json::from_slice(&body)
                    .map_err(|e| Error::Image(format!("index {}: {e}", desc.digest)))?;
                let host = manifest::host_platform();
                let best = index
                    .manifests
                    .iter()
                    .enumerate()
                    .filter_map(|(i, m)| {
                        manifest::platform_rank(m.platform.as_ref(), host).map(|r| (r, i))
                    })
                    .max_by_key(|&(rank, i)| (rank, std::cmp::Reverse(i)))
                    .map(|(_, i)| i)
                    .ok_or_else(|| {
                        Error::Image(format!(
                            "{} has no image for linux/{}{}",
                            desc.digest,
                            host.0,
                            variant(host.1)
                        ))
                    })?;
                let child = &index.manifests[best];
                let unpack = Box::pin(self.put_tree(child, depth + 1)).await?;
                labels.insert(
                    format!("containerd.io/gc.ref.content.m.{best}"),
                    child.digest.clone(),
                );
                unpack
            }
            Some(Kind::Manifest) => {
                let m: manifest::Manifest = serde_json::from_slice(&body)
                    .map_err(|e| Error::Image(format!("manifest {}: {e}", desc.digest)))?;
                self.put_blob(&m.config, BTreeMap::new()).await?;
                labels.insert(
                    "containerd.io/gc.ref.content.config".into(),
                    m.config.digest.clone(),
                );
                for (i, layer) in m.layers.iter().enumerate() {
                    self.put_blob(layer, BTreeMap::new()).await?;
                    labels.insert(
                        format!("containerd.io/gc.ref.content.l.{i}"),
                        layer.digest.clone(),
                    );
                }
                Unpack {
                    config: m.config,
                    layers: m.layers,
                }
            }
            None => {
                return Err(Error::Image(format!(
                    "{} is neither an index nor a manifest",
                    desc.digest
                )))
            }
        };
        self.put_blob(desc, labels).await?;
        Ok(unpack)
    }

    /// A document's bytes: from the archive, else from containerd.
    async fn read(&self, desc: &Descriptor) -> Result<Vec<u8>, Error> {
        match self.plan.blobs.get(&desc.digest).cloned() {
            Some(source) => {
                let archive = self.archive.clone();
                tokio::task::spawn_blocking(move || archive.blob(&source))
                    .await
                    .map_err(|e| Error::Image(format!("read task: {e}")))?
            }
            None => self.client.read_blob(&desc.digest).await,
        }
    }

    /// Ensures a blob is in the content store with (at least) `labels`.
    async fn put_blob(
        &mut self,
        desc: &Descriptor,
        labels: BTreeMap<String, String>,
    ) -> Result<(), Error> {
        if manifest::digest_hex(&desc.digest).is_none() {
            return Err(Error::Image(format!(
                "unsupported digest {:?}",
                desc.digest
            )));
        }
        if self.done.contains(&desc.digest) && labels.is_empty() {
            return Ok(());
        }
        if self.client.blob_exists(&desc.digest).await? {
            self.client.label_blob(&desc.digest, &labels).await?;
        } else {
            let source = self.plan.blobs.get(&desc.digest).cloned().ok_or_else(|| {
                Error::Image(format!(
                    "blob {} is neither in the archive nor in containerd",
                    desc.digest
                ))
            })?;
            let size = match &source {
                Source::Entry { size, .. } => *size,
                Source::Memory(data) => data.len() as u64,
            };
            if desc.size >= 0 && desc.size as u64 != size {
                return Err(Error::Image(format!(
                    "blob {} has {size} bytes, its descriptor says {}",
                    desc.digest, desc.size
                )));
            }
            let chunks = chunk_stream(self.archive.clone(), source);
            self.client
                .write_blob(&desc.digest, size, labels, chunks)
                .await?;
        }
        self.done.insert(desc.digest.clone());
        Ok(())
    }

    /// Unpacks the layers into overlayfs snapshots, as containerd's
    /// unpacker: one committed snapshot per chain id, each layer applied on
    /// a fresh active snapshot of its parent.
    async fn unpack(&self, u: &Unpack) -> Result<(), Error> {
        let config: manifest::Config = serde_json::from_slice(&self.read(&u.config).await?)
            .map_err(|e| Error::Image(format!("image config {}: {e}", u.config.digest)))?;
        let diff_ids = config.rootfs.diff_ids;
        if diff_ids.len() != u.layers.len() {
            return Err(Error::Image(format!(
                "image config {} lists {} layers, its manifest {}",
                u.config.digest,
                diff_ids.len(),
                u.layers.len()
            )));
        }
        let chains = chain_ids(&diff_ids);
        for (i, layer) in u.layers.iter().enumerate() {
            if self.client.snapshot_exists(&chains[i]).await? {
                continue;
            }
            let parent = if i == 0 { "" } else { chains[i - 1].as_str() };
            self.client
                .apply_layer(layer, &diff_ids[i], parent, &chains[i])
                .await?;
            let label = BTreeMap::from([(
                "containerd.io/uncompressed".to_string(),
                diff_ids[i].clone(),
            )]);
            self.client.label_blob(&layer.digest, &label).await?;
        }
        if let Some(top) = chains.last() {
            let label = BTreeMap::from([(
                format!("containerd.io/gc.ref.snapshot.{SNAPSHOTTER}"),
                top.clone(),
            )]);
            self.client.label_blob(&u.config.digest, &label).await?;
        }
        Ok(())
    }
}

fn variant(v: &str) -> String {
    if v.is_empty() {
        String::new()
    } else {
        format!("/{v}")
    }
}

/// The blob's bytes in chunks, read on a blocking thread.
fn chunk_stream(
    archive: Arc<Archive>,
    source: Source,
) -> tokio::sync::mpsc::Receiver<Result<Vec<u8>, Error>> {
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    tokio::task::spawn_blocking(move || match source {
        Source::Memory(data) => {
            for chunk in data.chunks(CHUNK) {
                if tx.blocking_send(Ok(chunk.to_vec())).is_err() {
                    return;
                }
            }
        }
        Source::Entry { offset, size } => {
            let mut done = 0u64;
            while done < size {
                let n = (size - done).min(CHUNK as u64) as usize;
                let mut buf = vec![0; n];
                let read = archive.read_at(offset + done, &mut buf).map(|_| buf);
                let failed = read.is_err();
                if tx.blocking_send(read).is_err() || failed {
                    return;
                }
                done += n as u64;
            }
        }
    });
    rx
}

/// Descriptor in containerd's API form.
pub fn to_ctr(desc: &Descriptor) -> CtrDescriptor {
    CtrDescriptor {
        media_type: desc.media_type.clone(),
        digest: desc.digest.clone(),
        size: desc.size,
        annotations: Default::default(),
    }
}

/// Whether a gRPC error means "already there".
pub fn exists(status: &tonic::Status) -> bool {
    status.code() == Code::AlreadyExists
}
