//! Bootstrap tokens (`nanokube token create|list|delete`) and rotation of
//! the server token (`nanokube token rotate`). The command talks to a
//! running server with an admin kubeconfig, as `nanokube secrets-encrypt`
//! does. `secret` is the bootstrap-token Secret format the authenticator
//! and the token cleaner share.

mod command;
pub mod secret;
mod ttl;

use crate::config::TokenArgs;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid bootstrap token {0:?}: expected [a-z0-9]{{6}}.[a-z0-9]{{16}}")]
    Token(String),
    #[error("invalid bootstrap token id {0:?}: expected [a-z0-9]{{6}} or a whole token")]
    TokenId(String),
    #[error("invalid --ttl {0:?}: expected a duration such as 24h, 1h30m or 90s, or 0 for a token that never expires")]
    Ttl(String),
    #[error("invalid usage {0:?}: expected authentication or signing")]
    Usage(String),
    #[error("invalid extra group {0:?}: expected system:bootstrappers:[a-z0-9:-]*[a-z0-9]")]
    Group(String),
    #[error("--groups needs the authentication usage")]
    GroupsNeedAuthentication,
    #[error("invalid --output {0:?}: expected text, json or yaml")]
    Output(String),
    #[error("a bootstrap token with id {0:?} already exists")]
    Exists(String),
    #[error("bootstrap token {0:?} not found")]
    NotFound(String),
    #[error("no server token at {path}: give the current one with --token")]
    NoServerToken { path: String },
    #[error("invalid --token: {0}")]
    CurrentToken(String),
    #[error("invalid new token: {0}")]
    NewToken(String),
    #[error("kubeconfig {path}: {message}")]
    Kubeconfig { path: String, message: String },
    #[error("{0}")]
    Remote(String),
    #[error(transparent)]
    Pki(#[from] crate::pki::Error),
}

/// Runs one `nanokube token` subcommand.
pub async fn command(args: TokenArgs) -> Result<(), Error> {
    command::run(args).await
}
