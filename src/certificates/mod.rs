//! `nanokube certificate rotate|check` and the server's automatic renewal
//! of leaf certificates before they expire (k3s's `certificate` command).
//!
//! The leaves on disk are the API server's serving certificate and the
//! admin client certificate; the kubelet's serving and client certificates
//! are issued in memory at every start. CAs are never touched here.

mod check;
mod renewal;
mod rotate;

use std::path::PathBuf;

use crate::config::CommonArgs;

pub use renewal::spawn_renewal;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Pki(#[from] crate::pki::Error),
    #[error(
        "the server is running (its datastore socket {0} answers): stop it first, then rotate"
    )]
    ServerRunning(PathBuf),
    #[error("no certificates under {0}: start the server once to create them")]
    NoPki(PathBuf),
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("encoding json: {0}")]
    Json(#[from] serde_json::Error),
}

#[derive(Debug, Clone, clap::Args)]
pub struct CertificateArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(subcommand)]
    pub command: CertificateCommand,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum CertificateCommand {
    /// Re-issue leaf certificates with the same names and CAs (the server
    /// must be stopped); the old files are kept in <data-dir>/server/tls-<unix time>/
    Rotate(RotateArgs),
    /// Print each certificate's subject, issuer, expiry and days left
    Check(CheckArgs),
}

/// `--data-dir` after the subcommand too, as k3s takes it
/// (`certificate rotate --data-dir DIR`).
#[derive(Debug, Clone, clap::Args)]
pub struct DataDirArg {
    /// Where state lives (default /var/lib/nanokube as root, ~/.nanokube otherwise)
    #[arg(long = "data-dir", short = 'd', value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, clap::Args)]
pub struct RotateArgs {
    #[command(flatten)]
    pub dir: DataDirArg,
    /// Services whose certificates to rotate, comma-separated (default: all)
    #[arg(long = "service", short = 's', value_enum, value_delimiter = ',')]
    pub services: Vec<Service>,
}

/// The services of `certificate rotate --service`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Service {
    /// The API server's serving certificate (server-ca): serving-kube-apiserver.crt
    ApiServer,
    /// The admin client certificate of the admin kubeconfig (client-ca): client-admin.crt
    Admin,
    /// The kubelet's serving and client certificates: issued in memory at every start
    Kubelet,
}

#[derive(Debug, Clone, clap::Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub dir: DataDirArg,
    /// Output format
    #[arg(long, short = 'o', value_enum, default_value = "table")]
    pub output: Output,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    Table,
    Json,
}

/// Runs `certificate rotate|check` (file work only: nothing to await,
/// the async signature is main.rs's door).
pub async fn command(args: CertificateArgs) -> Result<(), Error> {
    let given = match &args.command {
        CertificateCommand::Rotate(r) => r.dir.data_dir.clone(),
        CertificateCommand::Check(c) => c.dir.data_dir.clone(),
    };
    let data_dir = given.unwrap_or_else(|| args.common.data_dir());
    match args.command {
        CertificateCommand::Rotate(r) => rotate::run(&data_dir, &r.services),
        CertificateCommand::Check(c) => check::run(&data_dir, c.output),
    }
}
