//! downwardAPI volume files: pod metadata (`fieldRef`) and container
//! resources (`resourceFieldRef`) in upstream's formats.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, DownwardAPIVolumeFile, Pod, ResourceFieldSelector};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::atomic_writer::{FileProjection, Payload};
use super::resolve::mode;
use super::VolumeError;

pub(crate) fn payload(
    pod: &Pod,
    items: &[DownwardAPIVolumeFile],
    default_mode: u32,
    allocatable: &BTreeMap<String, Quantity>,
) -> Result<Payload, VolumeError> {
    let mut out = Payload::new();
    for item in items {
        let value = if let Some(f) = &item.field_ref {
            field_value(pod, &f.field_path)?
        } else if let Some(r) = &item.resource_field_ref {
            resource_value(pod, r, allocatable)?
        } else {
            return Err(VolumeError::Invalid(format!(
                "downwardAPI item {:?} names neither fieldRef nor resourceFieldRef",
                item.path
            )));
        };
        let file = FileProjection {
            data: value.into_bytes(),
            mode: mode(item.mode, default_mode)?,
        };
        out.insert(item.path.clone(), file);
    }
    Ok(out)
}

/// Upstream's ExtractFieldPathAsString for the metadata paths volumes
/// accept.
fn field_value(pod: &Pod, path: &str) -> Result<String, VolumeError> {
    let meta = &pod.metadata;
    let empty = BTreeMap::new();
    let labels = meta.labels.as_ref().unwrap_or(&empty);
    let annotations = meta.annotations.as_ref().unwrap_or(&empty);
    if let Some(key) = subscript(path, "metadata.labels") {
        return Ok(labels.get(key).cloned().unwrap_or_default());
    }
    if let Some(key) = subscript(path, "metadata.annotations") {
        return Ok(annotations.get(key).cloned().unwrap_or_default());
    }
    Ok(match path {
        "metadata.name" => meta.name.clone().unwrap_or_default(),
        "metadata.namespace" => meta.namespace.clone().unwrap_or_default(),
        "metadata.uid" => meta.uid.clone().unwrap_or_default(),
        "metadata.labels" => format_map(labels),
        "metadata.annotations" => format_map(annotations),
        other => {
            return Err(VolumeError::Invalid(format!(
                "unsupported fieldPath: {other}"
            )))
        }
    })
}

/// `metadata.labels['key']` → `key`.
fn subscript<'a>(path: &'a str, field: &str) -> Option<&'a str> {
    path.strip_prefix(field)?
        .strip_prefix("['")?
        .strip_suffix("']")
}

/// `key="value"` lines, sorted by key, values quoted as Go's `%q`, no
/// trailing newline.
pub(crate) fn format_map(m: &BTreeMap<String, String>) -> String {
    m.iter()
        .map(|(k, v)| format!("{k}={}", go_quote(v)))
        .collect::<Vec<_>>()
        .join("\n")
}

pub(crate) use crate::api::validation::go_quote;

/// A container's resource as upstream's downward API renders it: CPU in
/// whole divisors rounded up from millicores, the rest from bytes; a limit
/// not set is the node's allocatable.
fn resource_value(
    pod: &Pod,
    sel: &ResourceFieldSelector,
    allocatable: &BTreeMap<String, Quantity>,
) -> Result<String, VolumeError> {
    let name = sel.container_name.as_deref().unwrap_or_default();
    if name.is_empty() {
        return Err(VolumeError::Invalid(
            "resourceFieldRef in a volume must name a containerName".into(),
        ));
    }
    let container = find_container(pod, name).ok_or_else(|| {
        VolumeError::Invalid(format!("failed to find container with name {name} in pod"))
    })?;
    let (kind, resource) = sel
        .resource
        .split_once('.')
        .filter(|(k, r)| {
            (*k == "limits" || *k == "requests")
                && (matches!(*r, "cpu" | "memory" | "ephemeral-storage")
                    || r.starts_with("hugepages-"))
        })
        .ok_or_else(|| {
            VolumeError::Invalid(format!("unsupported container resource : {}", sel.resource))
        })?;
    let res = container.resources.as_ref();
    let set = match kind {
        "limits" => res.and_then(|r| r.limits.as_ref()),
        _ => res.and_then(|r| r.requests.as_ref()),
    }
    .and_then(|m| m.get(resource))
    .cloned();
    let value = match (set, kind) {
        (Some(q), _) => Some(q),
        (None, "limits") => allocatable
            .get(resource)
            .cloned()
            .or_else(|| machine_capacity(resource)),
        (None, _) => None,
    };
    let parse = |q: &Quantity, unit: i32| {
        crate::api::quantity::parse(&q.0)
            .and_then(|p| p.in_units(unit))
            .ok_or_else(|| VolumeError::Invalid(format!("invalid quantity {:?}", q.0)))
    };
    let divisor = sel.divisor.clone().unwrap_or_else(|| Quantity("1".into()));
    let unit = if resource == "cpu" { -3 } else { 0 };
    let amount = match &value {
        Some(q) => parse(q, unit)?,
        None => 0,
    };
    let per = parse(&divisor, unit)?;
    if per <= 0 {
        return Err(VolumeError::Invalid(format!(
            "invalid divisor {:?}",
            divisor.0
        )));
    }
    // Ceiling division, as upstream's math.Ceil on the quotient.
    let n = if amount >= 0 {
        (amount + per - 1) / per
    } else {
        amount / per
    };
    Ok(n.to_string())
}

fn find_container<'a>(pod: &'a Pod, name: &str) -> Option<&'a Container> {
    let spec = pod.spec.as_ref()?;
    spec.containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .find(|c| c.name == name)
}

/// The machine's CPUs and memory, until the node's allocatable is set.
fn machine_capacity(resource: &str) -> Option<Quantity> {
    match resource {
        "cpu" => std::thread::available_parallelism()
            .ok()
            .map(|n| Quantity(n.get().to_string())),
        "memory" => {
            let info = std::fs::read_to_string("/proc/meminfo").ok()?;
            let kib: u64 = info
                .lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))?
                .trim()
                .strip_suffix("kB")?
                .trim()
                .parse()
                .ok()?;
            Some(Quantity(format!("{kib}Ki")))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ObjectFieldSelector, PodSpec, ResourceRequirements};

    fn pod() -> Pod {
        let mut pod = Pod::default();
        pod.metadata.name = Some("web".into());
        pod.metadata.namespace = Some("ns".into());
        pod.metadata.uid = Some("u-1".into());
        pod.metadata.labels = Some(
            [("b", "2"), ("a", "say \"hi\"\n")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        let resources = ResourceRequirements {
            limits: Some(
                [("memory".to_string(), Quantity("64Mi".into()))]
                    .into_iter()
                    .collect(),
            ),
            requests: Some(
                [("cpu".to_string(), Quantity("250m".into()))]
                    .into_iter()
                    .collect(),
            ),
            ..Default::default()
        };
        pod.spec = Some(PodSpec {
            containers: vec![Container {
                name: "app".into(),
                resources: Some(resources),
                ..Default::default()
            }],
            ..Default::default()
        });
        pod
    }

    fn field(path: &str, field_path: &str) -> DownwardAPIVolumeFile {
        DownwardAPIVolumeFile {
            path: path.into(),
            field_ref: Some(ObjectFieldSelector {
                field_path: field_path.into(),
                api_version: None,
            }),
            ..Default::default()
        }
    }

    fn resource(path: &str, res: &str, divisor: Option<&str>) -> DownwardAPIVolumeFile {
        DownwardAPIVolumeFile {
            path: path.into(),
            resource_field_ref: Some(ResourceFieldSelector {
                container_name: Some("app".into()),
                resource: res.into(),
                divisor: divisor.map(|d| Quantity(d.into())),
            }),
            mode: Some(0o600),
            ..Default::default()
        }
    }

    fn text(p: &Payload, k: &str) -> String {
        String::from_utf8(p[k].data.clone()).unwrap()
    }

    #[test]
    fn metadata_fields() {
        let items = [
            field("name", "metadata.name"),
            field("ns", "metadata.namespace"),
            field("uid", "metadata.uid"),
            field("labels", "metadata.labels"),
            field("b", "metadata.labels['b']"),
            field("none", "metadata.annotations['x']"),
            field("ann", "metadata.annotations"),
        ];
        let p = payload(&pod(), &items, 0o644, &BTreeMap::new()).unwrap();
        assert_eq!(text(&p, "name"), "web");
        assert_eq!(text(&p, "ns"), "ns");
        assert_eq!(text(&p, "uid"), "u-1");
        assert_eq!(text(&p, "labels"), "a=\"say \\\"hi\\\"\\n\"\nb=\"2\"");
        assert_eq!(text(&p, "b"), "2");
        assert_eq!(text(&p, "none"), "");
        assert_eq!(text(&p, "ann"), "");
        assert_eq!(p["name"].mode, 0o644);
        let bad = [field("x", "spec.nodeName")];
        let e = payload(&pod(), &bad, 0o644, &BTreeMap::new()).unwrap_err();
        assert_eq!(e.to_string(), "unsupported fieldPath: spec.nodeName");
    }

    #[test]
    fn go_quoting() {
        assert_eq!(go_quote("a\tb\u{1}é\u{85}"), "\"a\\tb\\x01é\\u0085\"");
        assert_eq!(go_quote("\\"), "\"\\\\\"");
    }

    #[test]
    fn resources_with_divisors_and_allocatable() {
        let alloc: BTreeMap<_, _> = [("cpu".to_string(), Quantity("3".into()))]
            .into_iter()
            .collect();
        let items = [
            resource("cpu-req", "requests.cpu", None),
            resource("cpu-req-m", "requests.cpu", Some("1m")),
            resource("cpu-lim", "limits.cpu", None),
            resource("mem", "limits.memory", Some("1Mi")),
            resource("mem-b", "limits.memory", None),
            resource("mem-req", "requests.memory", None),
        ];
        let p = payload(&pod(), &items, 0o644, &alloc).unwrap();
        assert_eq!(text(&p, "cpu-req"), "1");
        assert_eq!(text(&p, "cpu-req-m"), "250");
        assert_eq!(text(&p, "cpu-lim"), "3");
        assert_eq!(text(&p, "mem"), "64");
        assert_eq!(text(&p, "mem-b"), "67108864");
        assert_eq!(text(&p, "mem-req"), "0");
        assert_eq!(p["mem"].mode, 0o600);
        let bad = [resource("x", "limits.gpu", None)];
        assert!(payload(&pod(), &bad, 0o644, &alloc).is_err());
    }
}
