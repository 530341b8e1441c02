//! Auto-deploying manifests (k3s's deploy controller): `*.yaml`, `*.yml`
//! and `*.json` files under `<data-dir>/server/manifests` are applied at
//! start and whenever they change; `foo.yaml.skip` leaves `foo.yaml` and
//! its objects alone; removing a file deletes the objects it created.
//! The embedded add-ons (`embedded/manifests`) are staged there first,
//! `--disable NAME` honoured. Errors are Warning Events about the file's
//! state ConfigMap in kube-system (see `state.rs`).

mod apply;
mod deploy;
mod embedded;
mod parse;
mod state;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use crate::api::Api;
use crate::config::ServerArgs;

/// Annotation on every object a manifest created: the file (relative path).
const OWNER: &str = "nanokube.io/manifest";
/// Annotation holding the object as last applied (for three-way patches).
const APPLIED: &str = "nanokube.io/applied";
/// How long the first pass may hold up the server's start.
const FIRST_PASS_LIMIT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
}

/// Stages the embedded add-ons, applies the manifests dir once (so the
/// add-ons exist when the API starts serving), then follows the dir.
pub async fn start(api: Arc<Api>, args: &ServerArgs) {
    let dir = args.common.data_dir().join("server").join("manifests");
    let settings = embedded::Settings {
        cluster_dns: args.node.cluster_dns,
        cluster_domain: args.cluster_domain.clone(),
        disabled: args.disable.clone(),
    };
    let staged = std::fs::create_dir_all(&dir)
        .map_err(|source| Error::Io {
            path: dir.display().to_string(),
            source,
        })
        .and_then(|()| embedded::stage(&dir, &settings));
    if let Err(e) = staged {
        tracing::warn!(error = %e, "staging the embedded add-ons failed");
    }
    let server = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_default();
    let mut deployer = deploy::Deployer::new(api, dir, server);
    if tokio::time::timeout(FIRST_PASS_LIMIT, deployer.pass(deploy::Mode::Start))
        .await
        .is_err()
    {
        tracing::warn!(
            "applying the manifests at start is taking long; going on in the background"
        );
    }
    tokio::spawn(deployer.run());
}
