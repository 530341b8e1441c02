//! The key file, `<data-dir>/server/cred/encryption-config.json`: upstream's
//! EncryptionConfiguration as k3s writes it (secrets only, the aesgcm
//! provider with its keys, active key first, then identity so values
//! stored in the clear stay readable).

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use base64::{engine::general_purpose::STANDARD, Engine};
use serde::{Deserialize, Serialize};

use super::envelope::Key;
use super::Error;

/// The key file's path under a server directory.
pub fn path(server_dir: &Path) -> PathBuf {
    server_dir.join("cred").join("encryption-config.json")
}

#[derive(Serialize, Deserialize)]
struct File {
    kind: String,
    #[serde(rename = "apiVersion")]
    api_version: String,
    resources: Vec<ResourceConfig>,
}

#[derive(Serialize, Deserialize)]
struct ResourceConfig {
    resources: Vec<String>,
    providers: Vec<Provider>,
}

#[derive(Serialize, Deserialize, Default)]
struct Provider {
    #[serde(skip_serializing_if = "Option::is_none")]
    aesgcm: Option<KeyList>,
    #[serde(skip_serializing_if = "Option::is_none")]
    identity: Option<serde_json::Value>,
    /// Any other provider (aescbc, secretbox, kms) is refused by name.
    #[serde(flatten)]
    other: serde_json::Map<String, serde_json::Value>,
}

#[derive(Serialize, Deserialize)]
struct KeyList {
    keys: Vec<KeyEntry>,
}

#[derive(Serialize, Deserialize)]
struct KeyEntry {
    name: String,
    secret: String,
}

/// The aesgcm keys of the file, in its order (the first one encrypts).
pub fn parse(text: &str) -> Result<Vec<Key>, Error> {
    let file: File =
        serde_json::from_str(text).map_err(|e| Error::Config(format!("not valid: {e}")))?;
    if file.kind != "EncryptionConfiguration" {
        return Err(Error::Config(format!(
            "kind is {:?}, not EncryptionConfiguration",
            file.kind
        )));
    }
    let secrets = file
        .resources
        .iter()
        .find(|r| r.resources.iter().any(|n| n == "secrets"))
        .ok_or_else(|| Error::Config("no providers for secrets".into()))?;
    let mut keys = Vec::new();
    for p in &secrets.providers {
        if let Some(name) = p.other.keys().next() {
            return Err(Error::Config(format!(
                "provider {name:?} is not supported (aesgcm and identity are)"
            )));
        }
        for entry in p.aesgcm.iter().flat_map(|l| &l.keys) {
            if entry.name.is_empty() || entry.name.contains(':') {
                return Err(Error::Config(format!(
                    "key name {:?} must be non-empty and without ':'",
                    entry.name
                )));
            }
            if keys.iter().any(|k: &Key| k.name == entry.name) {
                return Err(Error::Config(format!("key name {:?} twice", entry.name)));
            }
            let secret = STANDARD.decode(entry.secret.trim()).map_err(|_| {
                Error::Config(format!("key {:?}: secret is not base64", entry.name))
            })?;
            keys.push(Key::new(entry.name.clone(), &secret)?);
        }
    }
    Ok(keys)
}

/// The file holding `keys` (first = active), identity last.
pub fn render(keys: &[Key]) -> String {
    let file = File {
        kind: "EncryptionConfiguration".into(),
        api_version: "apiserver.config.k8s.io/v1".into(),
        resources: vec![ResourceConfig {
            resources: vec!["secrets".into()],
            providers: vec![
                Provider {
                    aesgcm: Some(KeyList {
                        keys: keys
                            .iter()
                            .map(|k| KeyEntry {
                                name: k.name.clone(),
                                secret: STANDARD.encode(k.secret),
                            })
                            .collect(),
                    }),
                    ..Default::default()
                },
                Provider {
                    identity: Some(serde_json::json!({})),
                    ..Default::default()
                },
            ],
        }],
    };
    // Serializing plain structs of strings cannot fail.
    serde_json::to_string_pretty(&file).unwrap_or_default() + "\n"
}

/// Reads the key file; `None` when there is none.
pub fn load(path: &Path) -> Result<Option<Vec<Key>>, Error> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&text)
            .map(Some)
            .map_err(|e| Error::Config(format!("{}: {}", path.display(), bare(e)))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::Io(format!("reading {}: {e}", path.display()))),
    }
}

fn bare(e: Error) -> String {
    match e {
        Error::Config(m) => m,
        other => other.to_string(),
    }
}

/// Writes the key file atomically with mode 0600 (its directory 0700).
pub fn store(path: &Path, keys: &[Key]) -> Result<(), Error> {
    let io =
        |what: &str, p: &Path, e: std::io::Error| Error::Io(format!("{what} {}: {e}", p.display()));
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| io("creating", dir, e))?;
    }
    let tmp = path.with_extension("json.tmp");
    let write = || -> Result<(), Error> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| io("creating", &tmp, e))?;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))
            .map_err(|e| io("chmod", &tmp, e))?;
        f.write_all(render(keys).as_bytes())
            .and_then(|_| f.sync_all())
            .map_err(|e| io("writing", &tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| io("renaming to", path, e))
    };
    let result = write();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_then_parse_keeps_order_and_secrets() {
        let keys = vec![
            Key::new("new".into(), &[7; 32]).unwrap(),
            Key::new("old".into(), &[9; 32]).unwrap(),
        ];
        let text = render(&keys);
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["apiVersion"], "apiserver.config.k8s.io/v1");
        assert_eq!(v["resources"][0]["resources"][0], "secrets");
        assert_eq!(
            v["resources"][0]["providers"][0]["aesgcm"]["keys"][1]["name"],
            "old"
        );
        assert_eq!(
            v["resources"][0]["providers"][1],
            serde_json::json!({"identity": {}})
        );
        let back = parse(&text).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!((back[0].name.as_str(), back[0].secret), ("new", [7; 32]));
    }

    #[test]
    fn bad_files_say_what_is_wrong() {
        let bad = |text: &str| parse(text).err().map(|e| e.to_string()).unwrap();
        assert!(bad("{").contains("not valid"));
        let other = r#"{"kind":"EncryptionConfiguration","apiVersion":"v1","resources":[
            {"resources":["secrets"],"providers":[{"aescbc":{"keys":[]}}]}]}"#;
        assert!(bad(other).contains("\"aescbc\" is not supported"));
        let short = r#"{"kind":"EncryptionConfiguration","apiVersion":"v1","resources":[
            {"resources":["secrets"],"providers":[{"aesgcm":{"keys":[{"name":"a","secret":"AAAA"}]}}]}]}"#;
        assert!(bad(short).contains("32 bytes"));
    }

    #[test]
    fn store_writes_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let p = path(dir.path());
        store(&p, &[Key::new("a".into(), &[1; 32]).unwrap()]).unwrap();
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dmode = std::fs::metadata(p.parent().unwrap())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(dmode & 0o777, 0o700);
        assert_eq!(load(&p).unwrap().unwrap()[0].name, "a");
        assert!(load(&dir.path().join("none")).unwrap().is_none());
    }
}
