//! OCI and Docker image formats as far as import needs them: media types,
//! descriptors, index/manifest/config documents, digests and chain ids,
//! platform choice and image name normalisation. No I/O here.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// containerd's annotation naming the image in an OCI layout's index.json.
pub const ANNOTATION_IMAGE_NAME: &str = "io.containerd.image.name";
/// The OCI annotation: a full reference or just a tag.
pub const ANNOTATION_REF_NAME: &str = "org.opencontainers.image.ref.name";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Descriptor {
    #[serde(rename = "mediaType", default)]
    pub media_type: String,
    pub digest: String,
    pub size: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Platform {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub variant: String,
}

/// An index (OCI index or Docker manifest list).
#[derive(Debug, Deserialize)]
pub struct Index {
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
}

/// An image manifest (OCI or Docker schema 2).
#[derive(Debug, Deserialize)]
pub struct Manifest {
    pub config: Descriptor,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
}

/// The parts of an image config that unpacking needs.
#[derive(Debug, Deserialize)]
pub struct Config {
    pub rootfs: RootFs,
}

#[derive(Debug, Deserialize)]
pub struct RootFs {
    #[serde(default)]
    pub diff_ids: Vec<String>,
}

/// One image of a docker-archive `manifest.json`.
#[derive(Debug, Deserialize)]
pub struct DockerArchiveEntry {
    #[serde(rename = "Config")]
    pub config: String,
    #[serde(rename = "RepoTags", default)]
    pub repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers", default)]
    pub layers: Vec<String>,
}

pub enum Kind {
    Index,
    Manifest,
}

/// Whether a document is an index or a manifest: by media type, else by
/// its fields (index.json entries may omit the media type).
pub fn kind(media_type: &str, body: &[u8]) -> Option<Kind> {
    match media_type {
        OCI_INDEX | DOCKER_LIST => return Some(Kind::Index),
        OCI_MANIFEST | DOCKER_MANIFEST => return Some(Kind::Manifest),
        _ => {}
    }
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    if value.get("manifests").is_some() {
        Some(Kind::Index)
    } else if value.get("config").is_some() {
        Some(Kind::Manifest)
    } else {
        None
    }
}

pub fn sha256_digest(data: &[u8]) -> String {
    format!(
        "sha256:{}",
        hex::encode(ring::digest::digest(&ring::digest::SHA256, data))
    )
}

/// The hex part of a `sha256:<64 hex>` digest; anything else is refused
/// (digests become archive paths and containerd keys).
pub fn digest_hex(digest: &str) -> Option<&str> {
    let hex = digest.strip_prefix("sha256:")?;
    (hex.len() == 64 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))).then_some(hex)
}

/// The snapshot chain ids of a layer stack (OCI image spec: the first is
/// the first diff id; each next is sha256 of "<parent chain> <diff id>").
pub fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(diff_ids.len());
    for diff in diff_ids {
        let next = match out.last() {
            None => diff.clone(),
            Some(parent) => sha256_digest(format!("{parent} {diff}").as_bytes()),
        };
        out.push(next);
    }
    out
}

/// The host's OCI architecture and variant.
pub fn host_platform() -> (&'static str, &'static str) {
    match std::env::consts::ARCH {
        "x86_64" => ("amd64", ""),
        "aarch64" => ("arm64", "v8"),
        "arm" => ("arm", "v7"),
        "x86" => ("386", ""),
        other => (other, ""),
    }
}

/// How well a platform suits the host: `None` = unusable, higher = better.
pub fn platform_rank(p: Option<&Platform>, host: (&str, &str)) -> Option<u8> {
    let Some(p) = p else { return Some(1) };
    if (!p.os.is_empty() && p.os != "linux") || p.architecture != host.0 {
        return None;
    }
    let normal = |v: &str| {
        if host.0 == "arm64" && v.is_empty() {
            "v8".to_string()
        } else {
            v.to_string()
        }
    };
    let (want, have) = (normal(host.1), normal(&p.variant));
    if want == have || have.is_empty() {
        return Some(3);
    }
    // An older ARM variant runs on a newer CPU (v5 and v6 code on v7).
    let num = |v: &str| v.strip_prefix('v').and_then(|n| n.parse::<u8>().ok());
    match (num(&want), num(&have)) {
        (Some(w), Some(h)) if h < w => Some(2),
        _ => None,
    }
}

/// Docker's reference normalisation: `busybox` → `docker.io/library/busybox:latest`,
/// `me/app:1` → `docker.io/me/app:1`, `host:5000/app` → `host:5000/app:latest`.
pub fn normalize_name(name: &str) -> Option<String> {
    let name = name.trim();
    if name.is_empty() || name.contains(char::is_whitespace) || name.starts_with('/') {
        return None;
    }
    let (path, digest) = match name.split_once('@') {
        Some((p, d)) => (p, Some(d)),
        None => (name, None),
    };
    let first = path.split('/').next().unwrap_or_default();
    let has_domain =
        path.contains('/') && (first.contains('.') || first.contains(':') || first == "localhost");
    let mut full = if has_domain {
        path.to_string()
    } else if path.contains('/') {
        format!("docker.io/{path}")
    } else {
        format!("docker.io/library/{path}")
    };
    let last = full.rsplit('/').next().unwrap_or_default();
    if !last.contains(':') && digest.is_none() {
        full.push_str(":latest");
    }
    if let Some(d) = digest {
        full = format!("{full}@{d}");
    }
    Some(full)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let n = |s| normalize_name(s).unwrap();
        assert_eq!(n("busybox"), "docker.io/library/busybox:latest");
        assert_eq!(n("busybox:1.36"), "docker.io/library/busybox:1.36");
        assert_eq!(n("me/app"), "docker.io/me/app:latest");
        assert_eq!(n("localhost/app"), "localhost/app:latest");
        assert_eq!(n("reg.io:5000/a/b:2"), "reg.io:5000/a/b:2");
        assert_eq!(n("nanokube.local/pause:3.9"), "nanokube.local/pause:3.9");
        assert_eq!(
            n("busybox@sha256:abc"),
            "docker.io/library/busybox@sha256:abc"
        );
        assert!(normalize_name("").is_none());
        assert!(normalize_name("a b").is_none());
    }

    #[test]
    fn chains() {
        let a = sha256_digest(b"a");
        let b = sha256_digest(b"b");
        let ids = chain_ids(&[a.clone(), b.clone()]);
        assert_eq!(ids[0], a);
        assert_eq!(ids[1], sha256_digest(format!("{a} {b}").as_bytes()));
        assert!(chain_ids(&[]).is_empty());
    }

    #[test]
    fn digests() {
        let d = sha256_digest(b"");
        assert_eq!(
            d,
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert!(digest_hex(&d).is_some());
        assert!(digest_hex("sha256:../../etc").is_none());
        assert!(digest_hex("sha512:00").is_none());
    }

    #[test]
    fn platforms() {
        let p = |arch: &str, variant: &str| Platform {
            architecture: arch.into(),
            os: "linux".into(),
            variant: variant.into(),
        };
        let amd = ("amd64", "");
        assert_eq!(platform_rank(Some(&p("amd64", "")), amd), Some(3));
        assert_eq!(platform_rank(Some(&p("arm64", "")), amd), None);
        assert_eq!(platform_rank(None, amd), Some(1));
        let arm64 = ("arm64", "v8");
        assert_eq!(platform_rank(Some(&p("arm64", "")), arm64), Some(3));
        let arm = ("arm", "v7");
        assert_eq!(platform_rank(Some(&p("arm", "v7")), arm), Some(3));
        assert_eq!(platform_rank(Some(&p("arm", "v6")), arm), Some(2));
        assert_eq!(platform_rank(Some(&p("arm", "v8")), arm), None);
        let mut windows = p("amd64", "");
        windows.os = "windows".into();
        assert_eq!(platform_rank(Some(&windows), amd), None);
    }
}
