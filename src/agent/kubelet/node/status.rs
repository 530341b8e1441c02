//! The parts of `status` that are not conditions: addresses, daemon
//! endpoints, capacity and allocatable, nodeInfo, and `images` (what the
//! scheduler's ImageLocality scores), as upstream's status setters fill them.

use std::net::IpAddr;

use serde_json::{json, Value};

use super::resources::{resource_list, Allocatable};
use super::sysinfo::{arch, Identity};
use crate::agent::cri::api::Image;

/// The API server's version string (`apiserver::discovery`'s GIT_VERSION):
/// kubelet and server are one binary, so they report the same version.
pub const KUBELET_VERSION: &str = concat!("v1.33.0+nanokube-", env!("CARGO_PKG_VERSION"));
/// Upstream's nodeStatusMaxImages.
const MAX_IMAGES: usize = 50;
/// Upstream's MaxNamesPerImageInNodeStatus.
const MAX_NAMES: usize = 5;

/// What does not change while the node runs.
pub struct Fixed<'a> {
    pub name: &'a str,
    pub node_ip: IpAddr,
    pub kubelet_port: u16,
    pub capacity: &'a Allocatable,
    pub allocatable: &'a Allocatable,
    pub identity: &'a Identity,
}

/// The status to write, given the conditions, runtime version and images.
pub fn node_status(
    f: &Fixed,
    conditions: Vec<Value>,
    runtime_version: &str,
    images: &Value,
) -> Value {
    let id = f.identity;
    json!({
        "capacity": resource_list(f.capacity),
        "allocatable": resource_list(f.allocatable),
        "addresses": [
            {"type": "InternalIP", "address": f.node_ip.to_string()},
            {"type": "Hostname", "address": f.name},
        ],
        "daemonEndpoints": {"kubeletEndpoint": {"Port": f.kubelet_port}},
        "nodeInfo": {
            "machineID": id.machine_id,
            "systemUUID": id.system_uuid,
            "bootID": id.boot_id,
            "kernelVersion": id.kernel_version,
            "osImage": id.os_image,
            "containerRuntimeVersion": runtime_version,
            "kubeletVersion": KUBELET_VERSION,
            "kubeProxyVersion": KUBELET_VERSION,
            "operatingSystem": "linux",
            "architecture": arch(),
        },
        "conditions": conditions,
        "images": images,
    })
}

/// The 50 largest images, each named by its digests then its tags (at
/// most 5 names). Images without any name are left out: nothing could
/// refer to them.
pub fn node_images(images: &[Image]) -> Value {
    let mut sorted: Vec<&Image> = images
        .iter()
        .filter(|i| !i.repo_digests.is_empty() || !i.repo_tags.is_empty())
        .collect();
    sorted.sort_by(|a, b| b.size.cmp(&a.size).then_with(|| a.id.cmp(&b.id)));
    let list: Vec<Value> = sorted
        .into_iter()
        .take(MAX_IMAGES)
        .map(|i| {
            let names: Vec<&String> = i
                .repo_digests
                .iter()
                .chain(i.repo_tags.iter())
                .take(MAX_NAMES)
                .collect();
            json!({"names": names, "sizeBytes": i.size})
        })
        .collect();
    Value::from(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(id: &str, size: u64, tags: &[&str], digests: &[&str]) -> Image {
        Image {
            id: id.into(),
            size,
            repo_tags: tags.iter().map(|s| s.to_string()).collect(),
            repo_digests: digests.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn images_largest_first_digests_then_tags() {
        let imgs = vec![
            image("a", 10, &["busybox:1"], &["busybox@sha256:1"]),
            image("b", 30, &["t1", "t2", "t3", "t4"], &["d1", "d2"]),
            image("c", 20, &[], &[]),
        ];
        let v = node_images(&imgs);
        assert_eq!(v.as_array().unwrap().len(), 2);
        assert_eq!(v[0]["sizeBytes"], 30);
        assert_eq!(v[0]["names"], json!(["d1", "d2", "t1", "t2", "t3"]));
        assert_eq!(v[1]["names"], json!(["busybox@sha256:1", "busybox:1"]));
        let many: Vec<Image> = (0..60)
            .map(|i| image(&i.to_string(), i, &["x"], &[]))
            .collect();
        let v = node_images(&many);
        assert_eq!(v.as_array().unwrap().len(), 50);
        assert_eq!(v[0]["sizeBytes"], 59);
    }

    #[test]
    fn status_carries_what_kubectl_shows() {
        let cap = Allocatable {
            cpu_millis: 2000,
            memory: 1 << 30,
            pods: 110,
            ephemeral_storage: 10 << 30,
        };
        let id = Identity {
            kernel_version: "6.1.0".into(),
            os_image: "Debian GNU/Linux 12 (bookworm)".into(),
            ..Default::default()
        };
        let f = Fixed {
            name: "n1",
            node_ip: "10.0.0.5".parse().unwrap(),
            kubelet_port: 10250,
            capacity: &cap,
            allocatable: &cap,
            identity: &id,
        };
        let s = node_status(&f, vec![], "containerd://1.6.20", &json!([]));
        assert_eq!(
            s["addresses"][0],
            json!({"type": "InternalIP", "address": "10.0.0.5"})
        );
        assert_eq!(
            s["addresses"][1],
            json!({"type": "Hostname", "address": "n1"})
        );
        assert_eq!(s["daemonEndpoints"]["kubeletEndpoint"]["Port"], 10250);
        assert_eq!(
            s["nodeInfo"]["containerRuntimeVersion"],
            "containerd://1.6.20"
        );
        assert!(s["nodeInfo"]["kubeletVersion"]
            .as_str()
            .unwrap()
            .starts_with("v1.33.0"));
        assert_eq!(s["capacity"]["memory"], "1Gi");
    }
}
