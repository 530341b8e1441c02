//! configMap and secret contents as volume payloads: `items` (key → path,
//! mode), `defaultMode`, `optional`, with upstream's messages.

use std::collections::BTreeMap;

use base64::Engine;
use k8s_openapi::api::core::v1::KeyToPath;
use serde_json::Value;

use super::atomic_writer::{FileProjection, Payload};
use super::resolve::mode;
use super::VolumeError;
use crate::client::{Client, ResourceId};

/// Which kind of object a payload comes from (for messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Source {
    ConfigMap,
    Secret,
}

impl Source {
    fn singular(self) -> &'static str {
        match self {
            Source::ConfigMap => "configmap",
            Source::Secret => "secret",
        }
    }

    fn plural(self) -> &'static str {
        match self {
            Source::ConfigMap => "configmaps",
            Source::Secret => "secrets",
        }
    }
}

pub(crate) async fn config_map<C: Client>(
    client: &C,
    ns: &str,
    name: &str,
    items: Option<&[KeyToPath]>,
    default_mode: u32,
    optional: bool,
) -> Result<Payload, VolumeError> {
    let data = fetch(client, Source::ConfigMap, ns, name, optional).await?;
    make(Source::ConfigMap, data, items, default_mode, optional)
}

pub(crate) async fn secret<C: Client>(
    client: &C,
    ns: &str,
    name: &str,
    items: Option<&[KeyToPath]>,
    default_mode: u32,
    optional: bool,
) -> Result<Payload, VolumeError> {
    let data = fetch(client, Source::Secret, ns, name, optional).await?;
    make(Source::Secret, data, items, default_mode, optional)
}

/// The object's data by key; `None` when it is missing and optional.
async fn fetch<C: Client>(
    client: &C,
    source: Source,
    ns: &str,
    name: &str,
    optional: bool,
) -> Result<Option<BTreeMap<String, Vec<u8>>>, VolumeError> {
    if name.is_empty() {
        return Err(VolumeError::Invalid(format!(
            "{} volume names no {}",
            source.singular(),
            source.singular()
        )));
    }
    let res = ResourceId::new("", "v1", source.plural());
    match client.get(&res, Some(ns), name).await {
        Ok(obj) => decode(source, &obj).map(Some),
        Err(e) if e.is_not_found() && optional => Ok(None),
        Err(e) if e.is_not_found() => Err(VolumeError::Waiting(format!(
            "{} {name:?} not found",
            source.singular()
        ))),
        Err(e) => Err(VolumeError::Client(
            format!("couldn't get {} {ns}/{name}", source.singular()),
            e,
        )),
    }
}

/// `data` (text for configmaps, base64 for secrets), `binaryData`
/// (configmaps) and `stringData` (secrets, should a server leave it in).
pub(crate) fn decode(
    source: Source,
    obj: &Value,
) -> Result<BTreeMap<String, Vec<u8>>, VolumeError> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut out = BTreeMap::new();
    let entries = |field: &str| {
        obj.get(field)
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?)))
    };
    let bad = |k: &str| {
        VolumeError::Invalid(format!(
            "{} key {k:?} does not hold valid base64 data",
            source.singular()
        ))
    };
    match source {
        Source::ConfigMap => {
            for (k, v) in entries("data") {
                out.insert(k, v.as_bytes().to_vec());
            }
            for (k, v) in entries("binaryData") {
                let bytes = b64.decode(v).map_err(|_| bad(&k))?;
                out.insert(k, bytes);
            }
        }
        Source::Secret => {
            for (k, v) in entries("data") {
                let bytes = b64.decode(v).map_err(|_| bad(&k))?;
                out.insert(k, bytes);
            }
            for (k, v) in entries("stringData") {
                out.insert(k, v.as_bytes().to_vec());
            }
        }
    }
    Ok(out)
}

/// Upstream's MakePayload: every key as a file named after it, or the
/// listed items only (a missing key fails unless the volume is optional).
pub(crate) fn make(
    source: Source,
    data: Option<BTreeMap<String, Vec<u8>>>,
    items: Option<&[KeyToPath]>,
    default_mode: u32,
    optional: bool,
) -> Result<Payload, VolumeError> {
    let mut payload = Payload::new();
    let Some(data) = data else {
        return Ok(payload);
    };
    match items {
        None | Some([]) => {
            for (key, bytes) in data {
                let file = FileProjection {
                    data: bytes,
                    mode: default_mode,
                };
                payload.insert(key, file);
            }
        }
        Some(items) => {
            for item in items {
                let Some(bytes) = data.get(&item.key) else {
                    if optional {
                        continue;
                    }
                    return Err(VolumeError::Waiting(match source {
                        Source::ConfigMap => {
                            format!("configmap references non-existent config key: {}", item.key)
                        }
                        Source::Secret => {
                            format!("references non-existent secret key: {}", item.key)
                        }
                    }));
                };
                let file = FileProjection {
                    data: bytes.clone(),
                    mode: mode(item.mode, default_mode)?,
                };
                payload.insert(item.path.clone(), file);
            }
        }
    }
    Ok(payload)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn item(key: &str, path: &str, mode: Option<i32>) -> KeyToPath {
        KeyToPath {
            key: key.into(),
            path: path.into(),
            mode,
        }
    }

    #[test]
    fn decodes_configmaps_and_secrets() {
        let cm = json!({"data": {"a": "1"}, "binaryData": {"b": "AAE="}});
        let d = decode(Source::ConfigMap, &cm).unwrap();
        assert_eq!(d["a"], b"1");
        assert_eq!(d["b"], [0u8, 1]);
        let s = json!({"data": {"p": "cGFzcw=="}, "stringData": {"q": "x"}});
        let d = decode(Source::Secret, &s).unwrap();
        assert_eq!(d["p"], b"pass");
        assert_eq!(d["q"], b"x");
        assert!(decode(Source::Secret, &json!({"data": {"p": "!!"}})).is_err());
    }

    #[test]
    fn items_and_modes() {
        let data: BTreeMap<_, _> = [
            ("a".to_string(), b"1".to_vec()),
            ("b".into(), b"2".to_vec()),
        ]
        .into_iter()
        .collect();
        let all = make(Source::ConfigMap, Some(data.clone()), None, 0o644, false).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all["a"].mode, 0o644);
        let items = [item("a", "dir/x", Some(0o400))];
        let some = make(
            Source::ConfigMap,
            Some(data.clone()),
            Some(&items),
            0o600,
            false,
        )
        .unwrap();
        assert_eq!(some.len(), 1);
        assert_eq!(
            (some["dir/x"].data.as_slice(), some["dir/x"].mode),
            (&b"1"[..], 0o400)
        );

        let missing = [item("zz", "z", None)];
        let e = make(
            Source::ConfigMap,
            Some(data.clone()),
            Some(&missing),
            0o644,
            false,
        );
        assert_eq!(
            e.unwrap_err().to_string(),
            "configmap references non-existent config key: zz"
        );
        let e = make(
            Source::Secret,
            Some(data.clone()),
            Some(&missing),
            0o644,
            false,
        );
        assert_eq!(
            e.unwrap_err().to_string(),
            "references non-existent secret key: zz"
        );
        let ok = make(Source::Secret, Some(data), Some(&missing), 0o644, true).unwrap();
        assert!(ok.is_empty());
        assert!(make(Source::Secret, None, None, 0o644, true)
            .unwrap()
            .is_empty());
    }
}
