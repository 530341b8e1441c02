//! Getting a container's image: pull policy, pull secrets, and the errors
//! users see (ErrImagePull, ImagePullBackOff, ErrImageNeverPull).

use std::time::{Duration, Instant};

use base64::Engine;
use k8s_openapi::api::core::v1::{Container, Pod};
use serde_json::Value;

use crate::agent::cri::{api, Cri};
use crate::client::{Client, ResourceId};

/// Why a container is waiting for its image.
#[derive(Debug, Clone)]
pub struct PullFailure {
    pub reason: &'static str,
    pub message: String,
}

/// Pull back-off per image: 10 s doubling to 5 min, as upstream.
#[derive(Debug, Default)]
pub struct PullBackoff {
    until: Option<Instant>,
    delay: Option<Duration>,
    last_error: String,
}

const FIRST: Duration = Duration::from_secs(10);
const MAX: Duration = Duration::from_secs(300);

impl PullBackoff {
    /// When the next pull may start, if it must wait.
    pub fn waiting(&self) -> Option<Instant> {
        self.until.filter(|t| *t > Instant::now())
    }

    fn failed(&mut self, error: String) {
        let delay = self.delay.map_or(FIRST, |d| (d * 2).min(MAX));
        self.delay = Some(delay);
        self.until = Some(Instant::now() + delay);
        self.last_error = error;
    }
}

fn policy(c: &Container) -> &str {
    match c.image_pull_policy.as_deref() {
        Some(p) if !p.is_empty() => p,
        _ => {
            // Upstream's default: Always for :latest or no tag, else IfNotPresent.
            let image = c.image.as_deref().unwrap_or_default();
            let name = image.rsplit('/').next().unwrap_or(image);
            if image.contains('@') {
                "IfNotPresent"
            } else if !name.contains(':') || name.ends_with(":latest") {
                "Always"
            } else {
                "IfNotPresent"
            }
        }
    }
}

async fn present(cri: &Cri, image: &str) -> Result<Option<String>, tonic::Status> {
    let resp = cri
        .images()
        .image_status(api::ImageStatusRequest {
            image: Some(api::ImageSpec {
                image: image.to_string(),
                ..Default::default()
            }),
            verbose: false,
        })
        .await?;
    Ok(resp.into_inner().image.map(|i| i.id))
}

/// Makes sure the image is there; returns the runtime's image reference.
#[allow(clippy::too_many_arguments)]
pub async fn ensure<C: Client>(
    client: &C,
    cri: &Cri,
    pod: &Pod,
    container: &Container,
    sandbox: &api::PodSandboxConfig,
    backoff: &mut PullBackoff,
    on_pulling: impl FnOnce(),
) -> Result<String, PullFailure> {
    let image = container.image.clone().unwrap_or_default();
    if image.is_empty() {
        return Err(PullFailure {
            reason: "InvalidImageName",
            message: "container image is empty".into(),
        });
    }
    let policy = policy(container);
    let have = present(cri, &image).await.map_err(|s| PullFailure {
        reason: "ErrImagePull",
        message: s.message().to_string(),
    })?;
    match (policy, have) {
        ("Never", Some(id)) | ("IfNotPresent", Some(id)) => return Ok(id),
        ("Never", None) => {
            return Err(PullFailure {
                reason: "ErrImageNeverPull",
                message: format!(
                    "Container image \"{image}\" is not present with pull policy of Never"
                ),
            })
        }
        _ => {}
    }
    if backoff.waiting().is_some() {
        return Err(PullFailure {
            reason: "ImagePullBackOff",
            message: format!("Back-off pulling image \"{image}\": {}", backoff.last_error),
        });
    }
    on_pulling();
    let auth = pull_auth(client, pod, &image).await;
    let started = Instant::now();
    let result = cri
        .images()
        .pull_image(api::PullImageRequest {
            image: Some(api::ImageSpec {
                image: image.clone(),
                ..Default::default()
            }),
            auth,
            sandbox_config: Some(sandbox.clone()),
        })
        .await;
    match result {
        Ok(r) => {
            tracing::info!(image, elapsed = ?started.elapsed(), "image pulled");
            *backoff = PullBackoff::default();
            Ok(r.into_inner().image_ref)
        }
        Err(s) => {
            let message = format!("Failed to pull image \"{image}\": {}", s.message());
            backoff.failed(message.clone());
            Err(PullFailure {
                reason: "ErrImagePull",
                message,
            })
        }
    }
}

/// The registry host of an image reference ("docker.io" when none).
fn registry_of(image: &str) -> &str {
    match image.split_once('/') {
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            first
        }
        _ => "docker.io",
    }
}

/// Credentials from the pod's imagePullSecrets (and its service account's)
/// for the image's registry, from `.dockerconfigjson` / `.dockercfg`.
async fn pull_auth<C: Client>(client: &C, pod: &Pod, image: &str) -> Option<api::AuthConfig> {
    let ns = pod.metadata.namespace.as_deref();
    let mut names: Vec<String> = pod
        .spec
        .as_ref()
        .and_then(|s| s.image_pull_secrets.as_ref())
        .map(|v| v.iter().map(|r| r.name.clone()).collect())
        .unwrap_or_default();
    let sa = pod
        .spec
        .as_ref()
        .and_then(|s| s.service_account_name.clone())
        .unwrap_or_else(|| "default".into());
    if let Ok(sa) = client
        .get(&ResourceId::new("", "v1", "serviceaccounts"), ns, &sa)
        .await
    {
        if let Some(list) = sa["imagePullSecrets"].as_array() {
            names.extend(
                list.iter()
                    .filter_map(|r| r["name"].as_str().map(String::from)),
            );
        }
    }
    let registry = registry_of(image);
    for name in names {
        let Ok(secret) = client
            .get(&ResourceId::new("", "v1", "secrets"), ns, &name)
            .await
        else {
            continue;
        };
        if let Some(auth) = auth_from_secret(&secret, registry) {
            return Some(auth);
        }
    }
    None
}

fn auth_from_secret(secret: &Value, registry: &str) -> Option<api::AuthConfig> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let (raw, nested) = if let Some(v) = secret["data"][".dockerconfigjson"].as_str() {
        (b64.decode(v).ok()?, true)
    } else {
        (
            b64.decode(secret["data"][".dockercfg"].as_str()?).ok()?,
            false,
        )
    };
    let doc: Value = serde_json::from_slice(&raw).ok()?;
    let auths = if nested { &doc["auths"] } else { &doc };
    let entries = auths.as_object()?;
    let host_of = |key: &str| {
        let k = key
            .trim_start_matches("https://")
            .trim_start_matches("http://");
        let k = k.split('/').next().unwrap_or(k);
        match k {
            "index.docker.io" | "registry-1.docker.io" => "docker.io".to_string(),
            other => other.to_string(),
        }
    };
    let (_, entry) = entries.iter().find(|(k, _)| host_of(k) == registry)?;
    let text = |k: &str| entry[k].as_str().unwrap_or_default().to_string();
    let mut auth = api::AuthConfig {
        username: text("username"),
        password: text("password"),
        auth: text("auth"),
        server_address: registry.to_string(),
        identity_token: text("identitytoken"),
        registry_token: text("registrytoken"),
    };
    if auth.username.is_empty() && !auth.auth.is_empty() {
        if let Some((u, p)) = b64
            .decode(&auth.auth)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| {
                s.split_once(':')
                    .map(|(u, p)| (u.to_string(), p.to_string()))
            })
        {
            auth.username = u;
            auth.password = p;
        }
    }
    Some(auth)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn container(image: &str, policy: Option<&str>) -> Container {
        Container {
            image: Some(image.into()),
            image_pull_policy: policy.map(String::from),
            ..Default::default()
        }
    }

    #[test]
    fn default_pull_policy() {
        assert_eq!(policy(&container("busybox", None)), "Always");
        assert_eq!(policy(&container("busybox:latest", None)), "Always");
        assert_eq!(policy(&container("busybox:1.36", None)), "IfNotPresent");
        assert_eq!(policy(&container("reg:5000/busybox", None)), "Always");
        assert_eq!(
            policy(&container("busybox@sha256:ab", None)),
            "IfNotPresent"
        );
        assert_eq!(policy(&container("busybox", Some("Never"))), "Never");
    }

    #[test]
    fn registries() {
        assert_eq!(registry_of("busybox"), "docker.io");
        assert_eq!(registry_of("library/busybox:1"), "docker.io");
        assert_eq!(registry_of("ghcr.io/a/b:1"), "ghcr.io");
        assert_eq!(registry_of("localhost/x"), "localhost");
        assert_eq!(registry_of("reg:5000/x"), "reg:5000");
    }

    #[test]
    fn docker_config_secret() {
        let b64 = base64::engine::general_purpose::STANDARD;
        let cfg = json!({"auths": {"https://index.docker.io/v1/": {"auth": b64.encode("u:p")}}});
        let secret = json!({"data": {".dockerconfigjson": b64.encode(cfg.to_string())}});
        let auth = auth_from_secret(&secret, "docker.io").unwrap();
        assert_eq!((auth.username.as_str(), auth.password.as_str()), ("u", "p"));
        assert!(auth_from_secret(&secret, "ghcr.io").is_none());
    }

    #[test]
    fn backoff_doubles_to_five_minutes() {
        let mut b = PullBackoff::default();
        let mut seen = Vec::new();
        for _ in 0..8 {
            b.failed("x".into());
            seen.push(b.delay.unwrap().as_secs());
        }
        assert_eq!(seen, [10, 20, 40, 80, 160, 300, 300, 300]);
        assert!(b.waiting().is_some());
    }
}
