//! The admin kubeconfig: cluster, context and user all named `default`,
//! with the server CA and the admin client certificate embedded.

use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use super::{files, Error, Pki};

/// `/etc/nanokube/nanokube.yaml` as root, `<data-dir>/nanokube.yaml`
/// otherwise.
pub fn default_kubeconfig_path(data_dir: &Path) -> PathBuf {
    if nix::unistd::geteuid().is_root() {
        PathBuf::from("/etc/nanokube/nanokube.yaml")
    } else {
        data_dir.join("nanokube.yaml")
    }
}

/// Parses an octal file mode as k3s takes it (`600`, `644`, `0640`).
pub fn parse_mode(text: &str) -> Result<u32, Error> {
    let t = text.trim();
    let digits = t.strip_prefix("0o").unwrap_or(t);
    match u32::from_str_radix(digits, 8) {
        Ok(mode) if !digits.is_empty() && mode <= 0o777 => Ok(mode),
        _ => Err(Error::Mode(text.to_string())),
    }
}

/// The kubeconfig text for `server` (e.g. `https://127.0.0.1:6443`).
pub fn render(ca_pem: &str, cert_pem: &str, key_pem: &str, server: &str) -> String {
    let ca = STANDARD.encode(ca_pem);
    let cert = STANDARD.encode(cert_pem);
    let key = STANDARD.encode(key_pem);
    // Every value is base64 or a URL without YAML-special characters, so
    // plain scalars are safe; the server URL is quoted anyway.
    format!(
        "apiVersion: v1
kind: Config
clusters:
- cluster:
    certificate-authority-data: {ca}
    server: \"{server}\"
  name: default
contexts:
- context:
    cluster: default
    user: default
  name: default
current-context: default
preferences: {{}}
users:
- name: default
  user:
    client-certificate-data: {cert}
    client-key-data: {key}
"
    )
}

/// Writes the admin kubeconfig to `path` (atomically, with `mode`) for an
/// API server at `https://127.0.0.1:<port>`; a renewed admin certificate
/// is written there again.
pub fn write_kubeconfig(pki: &Pki, path: &Path, port: u16, mode: u32) -> Result<(), Error> {
    pki.remember_kubeconfig(path, port, mode);
    let ca = files::read(&pki.server_ca_cert())?;
    let cert = files::read(&pki.admin_cert())?;
    let key = files::read(&pki.admin_key())?;
    let text = render(&ca, &cert, &key, &format!("https://127.0.0.1:{port}"));
    files::ensure_parent(path)?;
    files::write_atomic(path, text.as_bytes(), mode)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_as_octal() {
        assert_eq!(parse_mode("600").unwrap(), 0o600);
        assert_eq!(parse_mode("644").unwrap(), 0o644);
        assert_eq!(parse_mode("0640").unwrap(), 0o640);
        assert!(parse_mode("999").is_err());
        assert!(parse_mode("").is_err());
        assert!(parse_mode("1777").is_err());
        assert!(parse_mode("rw").is_err());
    }

    #[test]
    fn rendered_kubeconfig_is_valid_yaml() {
        let text = render("CA", "CERT", "KEY", "https://127.0.0.1:6443");
        let v: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
        assert_eq!(
            v["clusters"][0]["cluster"]["server"],
            "https://127.0.0.1:6443"
        );
        assert_eq!(v["clusters"][0]["name"], "default");
        assert_eq!(v["contexts"][0]["context"]["user"], "default");
        assert_eq!(v["current-context"], "default");
        assert_eq!(v["users"][0]["name"], "default");
        let ca = v["clusters"][0]["cluster"]["certificate-authority-data"]
            .as_str()
            .unwrap();
        assert_eq!(STANDARD.decode(ca).unwrap(), b"CA");
    }
}
