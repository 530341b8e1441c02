//! `registries.yaml` in k3s's format, translated into containerd 1.6's CRI
//! registry settings (`registry.mirrors` and `registry.configs`).
//!
//! ```yaml
//! mirrors:
//!   docker.io:
//!     endpoint: ["https://mirror.example:5000"]
//! configs:
//!   "mirror.example:5000":
//!     auth: { username: u, password: p }     # or auth: <base64>, identitytoken
//!     tls: { ca_file: /ca.pem, insecure_skip_verify: false }
//! ```

use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

use serde::Deserialize;

use super::config::quote;
use super::Error;

/// Unknown top-level keys are refused (a misspelt `mirrors` would silently
/// drop every mirror); nested ones are ignored, as k3s adds keys over time.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registries {
    #[serde(default)]
    mirrors: BTreeMap<String, Mirror>,
    #[serde(default)]
    configs: BTreeMap<String, RegistryConfig>,
}

#[derive(Debug, Default, Deserialize)]
struct Mirror {
    #[serde(default)]
    endpoint: Vec<String>,
    /// k3s's repository rewrites need its patched containerd; 1.6 has none.
    #[serde(default)]
    rewrite: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize)]
struct RegistryConfig {
    #[serde(default)]
    auth: Option<Auth>,
    #[serde(default)]
    tls: Option<Tls>,
}

#[derive(Debug, Default, Deserialize)]
struct Auth {
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
struct Tls {
    #[serde(default)]
    ca_file: Option<String>,
    #[serde(default)]
    cert_file: Option<String>,
    #[serde(default)]
    key_file: Option<String>,
    #[serde(default)]
    insecure_skip_verify: bool,
}

/// The first registries file that exists: the agent's own, else the
/// machine's `/etc/nanokube/registries.yaml`.
pub fn load(agent_dir: &Path) -> Result<Option<Registries>, Error> {
    for path in [
        agent_dir.join("etc/registries.yaml"),
        Path::new("/etc/nanokube/registries.yaml").to_path_buf(),
    ] {
        match std::fs::read_to_string(&path) {
            Ok(text) => return parse(&text, &path).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                return Err(Error::Io {
                    path: path.display().to_string(),
                    source: e,
                });
            }
        }
    }
    Ok(None)
}

fn parse(text: &str, path: &Path) -> Result<Registries, Error> {
    if text.trim().is_empty() {
        return Ok(Registries::default());
    }
    serde_saphyr::from_str(text).map_err(|e| {
        Error::Config(format!(
            "{}: {}",
            path.display(),
            e.to_string().lines().next().unwrap_or_default()
        ))
    })
}

impl Registries {
    /// The TOML tables under `plugins."io.containerd.grpc.v1.cri".registry`.
    pub fn to_toml(&self) -> String {
        const BASE: &str = "[plugins.\"io.containerd.grpc.v1.cri\".registry";
        let mut out = String::new();
        for (host, mirror) in &self.mirrors {
            if !mirror.rewrite.is_empty() {
                tracing::warn!(registry = %host, "registries.yaml: rewrite is not supported by containerd 1.6; ignored");
            }
            let endpoints: Vec<String> = mirror.endpoint.iter().map(|e| quote(e)).collect();
            let _ = writeln!(out, "{BASE}.mirrors.{}]", quote(host));
            let _ = writeln!(out, "  endpoint = [{}]", endpoints.join(", "));
        }
        for (host, config) in &self.configs {
            if let Some(auth) = &config.auth {
                let _ = writeln!(out, "{BASE}.configs.{}.auth]", quote(host));
                for (key, value) in [
                    ("username", &auth.username),
                    ("password", &auth.password),
                    ("auth", &auth.auth),
                    ("identitytoken", &auth.identitytoken),
                ] {
                    if let Some(v) = value {
                        let _ = writeln!(out, "  {key} = {}", quote(v));
                    }
                }
            }
            if let Some(tls) = &config.tls {
                let _ = writeln!(out, "{BASE}.configs.{}.tls]", quote(host));
                let _ = writeln!(out, "  insecure_skip_verify = {}", tls.insecure_skip_verify);
                for (key, value) in [
                    ("ca_file", &tls.ca_file),
                    ("cert_file", &tls.cert_file),
                    ("key_file", &tls.key_file),
                ] {
                    if let Some(v) = value {
                        let _ = writeln!(out, "  {key} = {}", quote(v));
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn k3s_format() {
        let yaml = r#"
mirrors:
  docker.io:
    endpoint:
      - "https://mirror.example:5000"
      - "http://10.0.0.1:5000"
    rewrite:
      "^rancher/(.*)": "mirror/rancher-images/$1"
  "*":
    endpoint: ["https://all.example"]
configs:
  "mirror.example:5000":
    auth:
      username: alice
      password: "p\"w"
    tls:
      ca_file: /etc/ssl/ca.pem
      insecure_skip_verify: true
  other.example:
    auth:
      identitytoken: tok
"#;
        let r = parse(yaml, Path::new("r.yaml")).unwrap();
        let toml = r.to_toml();
        assert!(toml.contains(
            "[plugins.\"io.containerd.grpc.v1.cri\".registry.mirrors.\"docker.io\"]\n  endpoint = [\"https://mirror.example:5000\", \"http://10.0.0.1:5000\"]\n"
        ), "{toml}");
        assert!(toml.contains("registry.mirrors.\"*\"]"), "{toml}");
        assert!(toml.contains(
            "registry.configs.\"mirror.example:5000\".auth]\n  username = \"alice\"\n  password = \"p\\\"w\"\n"
        ), "{toml}");
        assert!(toml.contains("registry.configs.\"mirror.example:5000\".tls]\n  insecure_skip_verify = true\n  ca_file = \"/etc/ssl/ca.pem\"\n"), "{toml}");
        assert!(
            toml.contains("registry.configs.\"other.example\".auth]\n  identitytoken = \"tok\"\n"),
            "{toml}"
        );
    }

    #[test]
    fn errors_name_the_file() {
        let err = parse("mirrors: [1, 2]", Path::new("/x/registries.yaml")).unwrap_err();
        assert!(err.to_string().contains("/x/registries.yaml"), "{err}");
        let err = parse("mirorrs: {}", Path::new("r.yaml")).unwrap_err();
        assert!(err.to_string().contains("r.yaml"), "{err}");
        assert!(parse("", Path::new("r.yaml")).unwrap().to_toml().is_empty());
    }
}
