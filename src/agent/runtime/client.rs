//! A small containerd API client for what CRI cannot do: content, leases,
//! snapshots, diffs and image records in CRI's namespace `k8s.io`.
//! Every call carries the namespace (and the import lease, if any) as the
//! gRPC metadata containerd reads: `containerd-namespace`, `containerd-lease`.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use containerd_client::services::v1 as ctr;
use containerd_client::services::v1::snapshots as snap;
use hyper_util::rt::TokioIo;
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, Endpoint, Uri};

use super::import::{exists, to_ctr, SNAPSHOTTER};
use super::manifest::Descriptor;
use super::Error;

/// CRI's containerd namespace.
pub const NAMESPACE: &str = "k8s.io";
const MAX_MESSAGE: usize = 16 << 20;

#[derive(Clone)]
pub struct Containerd {
    channel: Channel,
    lease: Option<MetadataValue<tonic::metadata::Ascii>>,
}

fn call(what: &str) -> impl Fn(tonic::Status) -> Error + '_ {
    move |status| Error::Containerd {
        what: what.to_string(),
        message: status.message().to_string(),
    }
}

impl Containerd {
    /// A lazily connecting client on containerd's socket.
    pub fn new(socket: &Path) -> Containerd {
        let path = socket.to_path_buf();
        let channel = Endpoint::from_static("http://containerd.invalid")
            .connect_timeout(Duration::from_secs(5))
            .connect_with_connector_lazy(tower::service_fn(move |_: Uri| {
                let path = path.clone();
                async move {
                    let stream = tokio::net::UnixStream::connect(path).await?;
                    Ok::<_, std::io::Error>(TokioIo::new(stream))
                }
            }));
        Containerd {
            channel,
            lease: None,
        }
    }

    pub fn with_lease(&self, lease: &str) -> Containerd {
        Containerd {
            channel: self.channel.clone(),
            lease: MetadataValue::try_from(lease).ok(),
        }
    }

    fn req<T>(&self, msg: T) -> tonic::Request<T> {
        let mut req = tonic::Request::new(msg);
        let md = req.metadata_mut();
        md.insert(
            "containerd-namespace",
            MetadataValue::from_static(NAMESPACE),
        );
        if let Some(lease) = &self.lease {
            md.insert("containerd-lease", lease.clone());
        }
        req
    }

    fn content(&self) -> ctr::content_client::ContentClient<Channel> {
        ctr::content_client::ContentClient::new(self.channel.clone())
            .max_decoding_message_size(MAX_MESSAGE)
    }

    fn snapshots(&self) -> snap::snapshots_client::SnapshotsClient<Channel> {
        snap::snapshots_client::SnapshotsClient::new(self.channel.clone())
    }

    fn images(&self) -> ctr::images_client::ImagesClient<Channel> {
        ctr::images_client::ImagesClient::new(self.channel.clone())
            .max_decoding_message_size(MAX_MESSAGE)
    }

    /// A lease expiring by itself in an hour, should the agent die mid-import.
    pub async fn create_lease(&self) -> Result<String, Error> {
        let id = format!("nanokube-import-{}", uuid::Uuid::new_v4().simple());
        let expire = jiff::Timestamp::now()
            .checked_add(jiff::SignedDuration::from_hours(1))
            .unwrap_or_else(|_| jiff::Timestamp::now());
        let labels = [(
            "containerd.io/gc.expire".to_string(),
            expire.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        )]
        .into_iter()
        .collect();
        ctr::leases_client::LeasesClient::new(self.channel.clone())
            .create(self.req(ctr::CreateRequest {
                id: id.clone(),
                labels,
            }))
            .await
            .map_err(call("creating a lease"))?;
        Ok(id)
    }

    pub async fn delete_lease(&self, id: &str) -> Result<(), Error> {
        let mut req = self.req(ctr::DeleteRequest {
            id: id.to_string(),
            sync: false,
        });
        req.metadata_mut().remove("containerd-lease");
        ctr::leases_client::LeasesClient::new(self.channel.clone())
            .delete(req)
            .await
            .map_err(call("deleting a lease"))?;
        Ok(())
    }

    pub async fn blob_exists(&self, digest: &str) -> Result<bool, Error> {
        match self
            .content()
            .info(self.req(ctr::InfoRequest {
                digest: digest.to_string(),
            }))
            .await
        {
            Ok(_) => Ok(true),
            Err(s) if s.code() == tonic::Code::NotFound => Ok(false),
            Err(s) => Err(call("content info")(s)),
        }
    }

    /// Sets these labels on a blob, leaving its other labels alone.
    pub async fn label_blob(
        &self,
        digest: &str,
        labels: &BTreeMap<String, String>,
    ) -> Result<(), Error> {
        if labels.is_empty() {
            return Ok(());
        }
        let mut req = ctr::UpdateRequest {
            info: Some(ctr::Info {
                digest: digest.to_string(),
                labels: labels.clone().into_iter().collect(),
                ..Default::default()
            }),
            update_mask: Some(Default::default()),
        };
        if let Some(mask) = req.update_mask.as_mut() {
            mask.paths = labels.keys().map(|k| format!("labels.{k}")).collect();
        }
        self.content()
            .update(self.req(req))
            .await
            .map_err(call("labelling content"))?;
        Ok(())
    }

    /// Streams a blob into the content store and commits it with `labels`
    /// under its expected digest (containerd verifies size and digest).
    pub async fn write_blob(
        &self,
        digest: &str,
        total: u64,
        labels: BTreeMap<String, String>,
        mut chunks: tokio::sync::mpsc::Receiver<Result<Vec<u8>, Error>>,
    ) -> Result<(), Error> {
        let (tx, rx) = tokio::sync::mpsc::channel::<ctr::WriteContentRequest>(2);
        let reference = format!("nanokube-import-{digest}");
        let (ref2, digest2) = (reference.clone(), digest.to_string());
        // The producer ends the request stream with COMMIT, or on a read error
        // (then containerd sees the stream end uncommitted and discards it).
        let producer = tokio::spawn(async move {
            let mut offset = 0u64;
            while let Some(chunk) = chunks.recv().await {
                let data = chunk?;
                let n = data.len() as u64;
                let msg = ctr::WriteContentRequest {
                    action: ctr::WriteAction::Write as i32,
                    r#ref: ref2.clone(),
                    total: total as i64,
                    expected: digest2.clone(),
                    // A write at offset 0 restarts a stale ingest of this ref.
                    offset: offset as i64,
                    data,
                    labels: Default::default(),
                };
                if tx.send(msg).await.is_err() {
                    return Ok(());
                }
                offset += n;
            }
            let commit = ctr::WriteContentRequest {
                action: ctr::WriteAction::Commit as i32,
                r#ref: ref2,
                total: total as i64,
                expected: digest2,
                // Non-zero offsets are checked; zero would truncate the ingest.
                offset: offset as i64,
                data: Vec::new(),
                labels: labels.into_iter().collect(),
            };
            let _ = tx.send(commit).await;
            Ok::<(), Error>(())
        });
        let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
        let result = async {
            let mut responses = self.content().write(self.req(stream)).await?.into_inner();
            while let Some(resp) = responses.message().await? {
                if resp.action == ctr::WriteAction::Commit as i32 {
                    return Ok(true);
                }
            }
            Ok::<bool, tonic::Status>(false)
        }
        .await;
        let produced = producer
            .await
            .map_err(|e| Error::Image(format!("writing {digest}: {e}")))?;
        produced?;
        match result {
            Ok(true) => Ok(()),
            Ok(false) => Err(Error::Image(format!(
                "writing {digest}: containerd did not commit it"
            ))),
            // Someone else wrote it meanwhile: fine, but it needs our labels.
            Err(s) if exists(&s) => Ok(()),
            Err(s) => Err(call(&format!("writing {digest}"))(s)),
        }
    }

    /// A small blob's bytes (manifests, configs).
    pub async fn read_blob(&self, digest: &str) -> Result<Vec<u8>, Error> {
        let mut stream = self
            .content()
            .read(self.req(ctr::ReadContentRequest {
                digest: digest.to_string(),
                offset: 0,
                size: 0,
            }))
            .await
            .map_err(call(&format!("reading {digest}")))?
            .into_inner();
        let mut out = Vec::new();
        while let Some(part) = stream
            .message()
            .await
            .map_err(call(&format!("reading {digest}")))?
        {
            out.extend_from_slice(&part.data);
            if out.len() > MAX_MESSAGE {
                return Err(Error::Image(format!(
                    "{digest} is too large for a document"
                )));
            }
        }
        Ok(out)
    }

    pub async fn snapshot_exists(&self, key: &str) -> Result<bool, Error> {
        match self
            .snapshots()
            .stat(self.req(snap::StatSnapshotRequest {
                snapshotter: SNAPSHOTTER.into(),
                key: key.to_string(),
            }))
            .await
        {
            Ok(_) => Ok(true),
            Err(s) if s.code() == tonic::Code::NotFound => Ok(false),
            Err(s) => Err(call("snapshot stat")(s)),
        }
    }

    /// Applies one layer on top of `parent` and commits it as `chain`.
    pub async fn apply_layer(
        &self,
        layer: &Descriptor,
        diff_id: &str,
        parent: &str,
        chain: &str,
    ) -> Result<(), Error> {
        let key = format!("extract-{} {chain}", uuid::Uuid::new_v4().simple());
        let mounts = self
            .snapshots()
            .prepare(self.req(snap::PrepareSnapshotRequest {
                snapshotter: SNAPSHOTTER.into(),
                key: key.clone(),
                parent: parent.to_string(),
                labels: Default::default(),
            }))
            .await
            .map_err(call(&format!(
                "preparing a snapshot for layer {}",
                layer.digest
            )))?
            .into_inner()
            .mounts;
        let result = async {
            let applied = ctr::diff_client::DiffClient::new(self.channel.clone())
                .apply(self.req(ctr::ApplyRequest {
                    diff: Some(to_ctr(layer)),
                    mounts,
                    ..Default::default()
                }))
                .await
                .map_err(call(&format!("applying layer {}", layer.digest)))?
                .into_inner()
                .applied
                .map(|d| d.digest)
                .unwrap_or_default();
            if applied != diff_id {
                return Err(Error::Image(format!(
                    "layer {} unpacked to {applied}, its image config says {diff_id}",
                    layer.digest
                )));
            }
            match self
                .snapshots()
                .commit(self.req(snap::CommitSnapshotRequest {
                    snapshotter: SNAPSHOTTER.into(),
                    name: chain.to_string(),
                    key: key.clone(),
                    labels: Default::default(),
                }))
                .await
            {
                Ok(_) => Ok(true),
                // Unpacked concurrently by someone else: theirs is as good.
                Err(s) if exists(&s) => Ok(false),
                Err(s) => Err(call(&format!("committing snapshot {chain}"))(s)),
            }
        }
        .await;
        if !matches!(result, Ok(true)) {
            // The active snapshot is of no use now.
            let _ = self
                .snapshots()
                .remove(self.req(snap::RemoveSnapshotRequest {
                    snapshotter: SNAPSHOTTER.into(),
                    key,
                }))
                .await;
        }
        result.map(|_| ())
    }

    /// Creates the image record, or points an existing one at `target`
    /// (labels other clients set, such as CRI's, are kept).
    pub async fn put_image(&self, name: &str, target: &Descriptor) -> Result<(), Error> {
        let image = ctr::Image {
            name: name.to_string(),
            target: Some(to_ctr(target)),
            ..Default::default()
        };
        let created = self
            .images()
            .create(self.req(ctr::CreateImageRequest {
                image: Some(image.clone()),
                ..Default::default()
            }))
            .await;
        match created {
            Ok(_) => Ok(()),
            Err(s) if exists(&s) => {
                let current = self
                    .images()
                    .get(self.req(ctr::GetImageRequest {
                        name: name.to_string(),
                    }))
                    .await
                    .map_err(call("reading an image record"))?
                    .into_inner()
                    .image
                    .and_then(|i| i.target)
                    .map(|t| t.digest);
                if current.as_deref() == Some(target.digest.as_str()) {
                    return Ok(());
                }
                let mut req = ctr::UpdateImageRequest {
                    image: Some(image),
                    update_mask: Some(Default::default()),
                    ..Default::default()
                };
                if let Some(mask) = req.update_mask.as_mut() {
                    mask.paths = vec!["target".into()];
                }
                self.images()
                    .update(self.req(req))
                    .await
                    .map_err(call("updating an image record"))?;
                Ok(())
            }
            Err(s) => Err(call("creating an image record")(s)),
        }
    }

    /// Every image record: (name, target).
    pub async fn list_images(&self) -> Result<Vec<(String, Descriptor)>, Error> {
        let images = self
            .images()
            .list(self.req(ctr::ListImagesRequest::default()))
            .await
            .map_err(call("listing images"))?
            .into_inner()
            .images;
        Ok(images
            .into_iter()
            .filter_map(|i| {
                let t = i.target?;
                Some((
                    i.name,
                    Descriptor {
                        media_type: t.media_type,
                        digest: t.digest,
                        size: t.size,
                        platform: None,
                        annotations: Default::default(),
                    },
                ))
            })
            .collect())
    }
}
