//! The subcommands: every argument is checked before the server is asked,
//! so a malformed token or TTL fails at once with a one-line error.

use std::path::PathBuf;
use std::time::SystemTime;

use http::Method;
use serde_json::{json, Value};

use super::secret::{self, Spec, NAMESPACE, SECRET_PREFIX};
use super::{ttl, Error};
use crate::api::ListOptions;
use crate::client::{Client, ClientError, DeleteOptions, Remote, RemoteConfig, ResourceId};
use crate::config::{TokenArgs, TokenCommand};
use crate::pki::{BootstrapToken, JoinToken};

/// The server's endpoint (admin only, see `apiserver::authn::rotate`).
const ROTATE_PATH: &str = "/nanokube/v1/token/rotate";

/// The admin connection and the CA it trusts (whose hash goes in tokens).
struct Admin {
    remote: Remote,
    ca_pem: String,
}

fn connect(args: &TokenArgs) -> Result<Admin, Error> {
    let path: PathBuf = args
        .kubeconfig
        .clone()
        .unwrap_or_else(|| crate::pki::default_kubeconfig_path(&args.common.data_dir()));
    let fail = |message: String| Error::Kubeconfig {
        path: path.display().to_string(),
        message,
    };
    let text = std::fs::read_to_string(&path).map_err(|e| fail(e.to_string()))?;
    let config = RemoteConfig::from_kubeconfig(&text).map_err(|e| fail(e.to_string()))?;
    let ca_pem = config.ca_pem.clone();
    let remote = Remote::new(config).map_err(|e| fail(e.to_string()))?;
    Ok(Admin { remote, ca_pem })
}

fn secrets() -> ResourceId {
    ResourceId::new("", "v1", "secrets")
}

fn remote_err(e: ClientError) -> Error {
    Error::Remote(e.to_string())
}

pub async fn run(args: TokenArgs) -> Result<(), Error> {
    match &args.command {
        TokenCommand::Create {
            token,
            ttl,
            usages,
            groups,
            description,
        } => {
            let token = match token {
                Some(t) => {
                    BootstrapToken::parse(t.trim()).ok_or_else(|| Error::Token(t.clone()))?
                }
                None => BootstrapToken::random()?,
            };
            let usages: Vec<String> = usages.iter().map(|u| u.trim().to_string()).collect();
            // The default group only goes with authentication (kubeadm's rule).
            let authenticates = usages.iter().any(|u| u == "authentication");
            let groups = match (groups.is_empty(), authenticates) {
                (true, true) => vec![secret::DEFAULT_GROUP.to_string()],
                (true, false) => Vec::new(),
                (false, _) => groups.iter().map(|g| g.trim().to_string()).collect(),
            };
            let spec = Spec {
                ttl: ttl::parse(ttl)?,
                usages,
                groups,
                description: description.clone(),
            };
            secret::validate(&spec)?;
            let admin = connect(&args)?;
            let obj = secret::build(&token, &spec, SystemTime::now());
            match admin.remote.create(&secrets(), Some(NAMESPACE), obj).await {
                Ok(_) => {}
                Err(e) if e.is_already_exists() => return Err(Error::Exists(token.id)),
                Err(e) => return Err(remote_err(e)),
            }
            println!(
                "{}",
                JoinToken::format_credentials(admin.ca_pem.as_bytes(), &token.text())?
            );
            Ok(())
        }
        TokenCommand::List { output } => {
            let format = match output.as_str() {
                "text" | "" => Format::Text,
                "json" => Format::Json,
                "yaml" => Format::Yaml,
                other => return Err(Error::Output(other.to_string())),
            };
            let admin = connect(&args)?;
            let list = admin
                .remote
                .list(&secrets(), Some(NAMESPACE), &ListOptions::default())
                .await
                .map_err(remote_err)?;
            let rows: Vec<Row> = list
                .items
                .iter()
                .filter_map(|s| Row::of(s, SystemTime::now()))
                .collect();
            print!("{}", render(&rows, format));
            Ok(())
        }
        TokenCommand::Delete { tokens } => {
            let ids = tokens
                .iter()
                .map(|t| token_id(t))
                .collect::<Result<Vec<_>, _>>()?;
            let admin = connect(&args)?;
            for id in ids {
                let name = format!("{SECRET_PREFIX}{id}");
                let opts = DeleteOptions::default();
                match admin
                    .remote
                    .delete(&secrets(), Some(NAMESPACE), &name, &opts)
                    .await
                {
                    Ok(()) => println!("bootstrap token {id:?} deleted"),
                    Err(e) if e.is_not_found() => return Err(Error::NotFound(id)),
                    Err(e) => return Err(remote_err(e)),
                }
            }
            Ok(())
        }
        TokenCommand::Rotate { token, new_token } => rotate(&args, token, new_token).await,
    }
}

/// The id named by an id, a whole token, a join token carrying one, or the
/// Secret's name.
fn token_id(text: &str) -> Result<String, Error> {
    let t = text.trim();
    let t = t.strip_prefix(SECRET_PREFIX).unwrap_or(t);
    if BootstrapToken::valid_id(t) {
        return Ok(t.to_string());
    }
    let creds = match JoinToken::parse(t) {
        Ok(join) => join.secret,
        Err(_) => t.to_string(),
    };
    BootstrapToken::parse(&creds)
        .map(|b| b.id)
        .ok_or_else(|| Error::TokenId(text.to_string()))
}

async fn rotate(
    args: &TokenArgs,
    token: &Option<String>,
    new_token: &Option<String>,
) -> Result<(), Error> {
    let current = match token {
        Some(t) => t.trim().to_string(),
        None => {
            let path = crate::pki::token_path(&args.common.data_dir().join("server"));
            match std::fs::read_to_string(&path) {
                Ok(text) if !text.trim().is_empty() => text.trim().to_string(),
                _ => {
                    return Err(Error::NoServerToken {
                        path: path.display().to_string(),
                    })
                }
            }
        }
    };
    JoinToken::parse(&current).map_err(|e| Error::CurrentToken(e.to_string()))?;
    // The server checks a given token's CA hash too, so it gets it whole.
    let (new_text, new_secret) = match new_token {
        Some(t) => {
            let parsed = JoinToken::parse(t).map_err(|e| Error::NewToken(e.to_string()))?;
            if BootstrapToken::parse(&parsed.secret).is_some() {
                return Err(Error::NewToken(
                    "a bootstrap token cannot be the server token".into(),
                ));
            }
            (t.trim().to_string(), parsed.secret)
        }
        None => {
            let secret = crate::pki::random_secret()?;
            (secret.clone(), secret)
        }
    };
    let admin = connect(args)?;
    let body = json!({"token": current, "newToken": new_text});
    admin
        .remote
        .request_json_body(Method::POST, ROTATE_PATH, &body)
        .await
        .map_err(remote_err)?;
    println!("Token rotated: restart servers started with --token or --token-file with the new token, which is:");
    println!(
        "{}",
        JoinToken::format(admin.ca_pem.as_bytes(), &new_secret)?
    );
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Format {
    Text,
    Json,
    Yaml,
}

/// One token as `token list` shows it.
#[derive(Debug, PartialEq)]
struct Row {
    token: String,
    ttl: String,
    expires: Option<String>,
    usages: Vec<String>,
    description: String,
    groups: Vec<String>,
}

impl Row {
    /// `None` for Secrets that are not well-formed bootstrap tokens (as
    /// kubeadm skips them).
    fn of(s: &Value, now: SystemTime) -> Option<Row> {
        if !secret::is_bootstrap_secret(s) {
            return None;
        }
        let id = secret::data(s, "token-id")?;
        let token = BootstrapToken::parse(&format!("{id}.{}", secret::data(s, "token-secret")?))?;
        let (ttl, expires) = match secret::expiration(s) {
            Ok(None) => ("<forever>".to_string(), None),
            Ok(Some(at)) => {
                let left = match at.duration_since(now) {
                    Ok(d) => d.as_secs() as i64,
                    Err(e) => -(e.duration().as_secs() as i64),
                };
                (ttl::human(left), Some(crate::api::meta::timestamp(at)))
            }
            Err(()) => ("<invalid>".to_string(), secret::data(s, "expiration")),
        };
        Some(Row {
            token: token.text(),
            ttl,
            expires,
            usages: secret::usages(s),
            description: secret::data(s, "description").unwrap_or_default(),
            groups: secret::extra_groups(s),
        })
    }

    /// kubeadm's `output.kubeadm.k8s.io` BootstrapToken object.
    fn object(&self) -> Value {
        let mut v = json!({
            "kind": "BootstrapToken",
            "apiVersion": "output.kubeadm.k8s.io/v1alpha3",
            "token": self.token,
            "usages": self.usages,
            "groups": self.groups,
        });
        if !self.description.is_empty() {
            v["description"] = json!(self.description);
        }
        if let Some(at) = &self.expires {
            v["expires"] = json!(at);
        }
        v
    }
}

/// kubeadm's table (TOKEN, TTL, EXPIRES, USAGES, DESCRIPTION, EXTRA
/// GROUPS, columns three spaces apart), or one object per token.
fn render(rows: &[Row], format: Format) -> String {
    match format {
        Format::Json => rows
            .iter()
            .map(|r| serde_json::to_string_pretty(&r.object()).unwrap_or_default() + "\n")
            .collect(),
        Format::Yaml => rows
            .iter()
            .map(|r| serde_saphyr::to_string(&r.object()).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("---\n"),
        Format::Text => {
            let none = |s: String| if s.is_empty() { "<none>".into() } else { s };
            let mut table = vec![[
                "TOKEN",
                "TTL",
                "EXPIRES",
                "USAGES",
                "DESCRIPTION",
                "EXTRA GROUPS",
            ]
            .map(str::to_string)];
            for r in rows {
                table.push([
                    r.token.clone(),
                    r.ttl.clone(),
                    r.expires.clone().unwrap_or_else(|| "<never>".into()),
                    none(r.usages.join(",")),
                    none(r.description.clone()),
                    none(r.groups.join(",")),
                ]);
            }
            let mut widths = [0usize; 6];
            for row in &table {
                for (w, cell) in widths.iter_mut().zip(row) {
                    *w = (*w).max(cell.chars().count());
                }
            }
            let mut out = String::new();
            for row in &table {
                let mut line = String::new();
                for (i, cell) in row.iter().enumerate() {
                    match i + 1 == row.len() {
                        true => line += cell,
                        false => line += &format!("{cell:<w$}   ", w = widths[i]),
                    }
                }
                out += line.trim_end();
                out += "\n";
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn ids_come_from_every_form() {
        let hash = "ab".repeat(32);
        for text in [
            "abcdef",
            "abcdef.0123456789abcdef",
            "bootstrap-token-abcdef",
            &format!("K10{hash}::abcdef.0123456789abcdef"),
        ] {
            assert_eq!(token_id(text).unwrap(), "abcdef", "{text}");
        }
        for bad in ["ABCDEF", "abc", "abcdef.short", "K10::server:x", ""] {
            let err = token_id(bad).unwrap_err().to_string();
            assert!(
                err.starts_with("invalid bootstrap token id"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn list_shows_kubeadm_columns() {
        let now = SystemTime::now();
        let token = BootstrapToken::parse("abcdef.0123456789abcdef").unwrap();
        let spec = Spec {
            ttl: Some(Duration::from_secs(2 * 3600 + 30)),
            usages: vec!["signing".into(), "authentication".into()],
            groups: vec![secret::DEFAULT_GROUP.into()],
            description: Some("pi".into()),
        };
        let s = secret::build(&token, &spec, now);
        let forever = secret::build(
            &BootstrapToken::parse("zzzzzz.0123456789abcdef").unwrap(),
            &Spec {
                ttl: None,
                usages: vec!["signing".into()],
                groups: vec![],
                description: None,
            },
            now,
        );
        let opaque = json!({"type": "Opaque", "data": {}});
        let rows: Vec<Row> = [s, forever, opaque]
            .iter()
            .filter_map(|s| Row::of(s, now))
            .collect();
        assert_eq!(rows.len(), 2);
        let text = render(&rows, Format::Text);
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].starts_with("TOKEN                     TTL         EXPIRES"),
            "{text}"
        );
        assert!(lines[0].ends_with("DESCRIPTION   EXTRA GROUPS"), "{text}");
        assert!(
            lines[1].starts_with("abcdef.0123456789abcdef   2h "),
            "{text}"
        );
        assert!(lines[1].contains("authentication,signing"), "{text}");
        assert!(lines[1].ends_with(secret::DEFAULT_GROUP), "{text}");
        assert!(
            lines[2].contains("<forever>") && lines[2].contains("<never>"),
            "{text}"
        );
        assert!(lines[2].ends_with("<none>"), "{text}");
        let json: Value = serde_json::from_str(render(&rows[..1], Format::Json).trim()).unwrap();
        assert_eq!(json["token"], "abcdef.0123456789abcdef");
        assert_eq!(json["usages"], json!(["authentication", "signing"]));
        assert_eq!(json["description"], "pi");
        let yaml = render(&rows, Format::Yaml);
        assert!(
            yaml.contains("token: abcdef.0123456789abcdef") && yaml.contains("---"),
            "{yaml}"
        );
    }
}
