//! `nanokube secrets-encrypt status|rotate`: asks the running server over
//! HTTPS with an admin kubeconfig (the work happens in the server, which
//! holds the keys and serializes rotations).

use std::path::PathBuf;

use http::Method;

use super::{Error, Status};
use crate::client::{Remote, RemoteConfig};
use crate::config::{SecretsEncryptArgs, SecretsEncryptCommand};

/// The server's endpoints (admin only, see `apiserver::secrets_encrypt`).
pub const STATUS_PATH: &str = "/nanokube/v1/secrets-encrypt/status";
pub const ROTATE_PATH: &str = "/nanokube/v1/secrets-encrypt/rotate";

/// `nanokube secrets-encrypt status|rotate`.
pub async fn command(args: SecretsEncryptArgs) -> Result<(), Error> {
    let path: PathBuf = args
        .kubeconfig
        .clone()
        .unwrap_or_else(|| crate::pki::default_kubeconfig_path(&args.common.data_dir()));
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Error::Remote(format!("reading kubeconfig {}: {e}", path.display())))?;
    let remote = RemoteConfig::from_kubeconfig(&text)
        .and_then(Remote::new)
        .map_err(|e| Error::Remote(format!("kubeconfig {}: {e}", path.display())))?;
    let (method, endpoint) = match args.command {
        SecretsEncryptCommand::Status => (Method::GET, STATUS_PATH),
        SecretsEncryptCommand::Rotate => (Method::POST, ROTATE_PATH),
    };
    let answer = remote
        .request_json(method, endpoint)
        .await
        .map_err(|e| Error::Remote(e.to_string()))?;
    let status: Status = serde_json::from_value(answer)
        .map_err(|e| Error::Remote(format!("unexpected answer from the server: {e}")))?;
    print!("{}", render(&status));
    Ok(())
}

/// The human form, in the spirit of k3s's `secrets-encrypt status`.
fn render(s: &Status) -> String {
    let mut out = format!(
        "Encryption Status: {}\n",
        if s.enabled { "Enabled" } else { "Disabled" }
    );
    out += &format!(
        "Active Key: {}\n",
        s.active_key.as_deref().unwrap_or("none (identity)")
    );
    if let Some(n) = s.rewritten {
        out += &format!("Re-encrypted Secrets: {n}\n");
    }
    if !s.dropped.is_empty() {
        out += &format!("Dropped Keys: {}\n", s.dropped.join(", "));
    }
    out += "\nActive  Key Type  Name                              Secrets\n";
    out += "------  --------  ----                              -------\n";
    for name in &s.keys {
        let active = s.active_key.as_deref() == Some(name.as_str());
        let count = s.secrets.get(name).copied().unwrap_or(0);
        out += &format!(
            " {:<6} AES-GCM   {name:<33} {count}\n",
            if active { "*" } else { "" }
        );
    }
    for (name, count) in s.secrets.iter().filter(|(n, _)| !s.keys.contains(n)) {
        out += &format!(" {:<6} AES-GCM   {name:<33} {count} (dropped key)\n", "");
    }
    out += &format!(
        " {:<6} identity  {:<33} {}\n",
        if s.active_key.is_none() { "*" } else { "" },
        "(plaintext)",
        s.plaintext
    );
    if s.unreadable > 0 {
        out += &format!(
            "\n{} Secrets are sealed by a key this server does not have\n",
            s.unreadable
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_marks_the_active_key_and_counts() {
        let s = Status {
            enabled: true,
            active_key: Some("k2".into()),
            keys: vec!["k2".into(), "k1".into()],
            secrets: [("k2".to_string(), 3), ("k1".to_string(), 1)].into(),
            plaintext: 2,
            ..Default::default()
        };
        let text = render(&s);
        assert!(text.starts_with("Encryption Status: Enabled\nActive Key: k2\n"));
        assert!(text.contains(" *      AES-GCM   k2"), "{text}");
        assert!(
            text.contains("(plaintext)                       2"),
            "{text}"
        );
        let off = render(&Status::default());
        assert!(off.contains("Disabled") && off.contains("none (identity)"));
    }
}
