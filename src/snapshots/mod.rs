//! `nanokube datastore snapshot save|ls|delete|prune|restore` and the
//! server's scheduled snapshots with retention, as k3s's `etcd-snapshot`
//! and `--etcd-snapshot-*` flags (whose names are accepted as aliases).
//!
//! A snapshot is a consistent copy of the SQLite store taken while the
//! server writes (`datastore::save_snapshot`); restore needs the server
//! stopped and leaves the store's revision above anything clients saw
//! (`datastore::restore_snapshot` says how).

mod files;
mod schedule;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::CommonArgs;
use crate::datastore::{self, SnapshotError, SqliteBackend};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Datastore(#[from] SnapshotError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("snapshot {0} already exists")]
    Exists(PathBuf),
    #[error("no snapshot named {0}")]
    NotFound(String),
    #[error("invalid {0}")]
    BadName(String),
    #[error("the server is running ({0} answers): stop it before restoring")]
    Running(PathBuf),
    #[error("printing json: {0}")]
    Json(#[from] serde_json::Error),
}

#[derive(Debug, Clone, clap::Args)]
pub struct SnapshotArgs {
    #[command(subcommand)]
    pub command: SnapshotCommand,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum SnapshotCommand {
    /// Take a consistent snapshot of the datastore (also while the server runs)
    Save(SaveArgs),
    /// List snapshots, oldest first
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Delete snapshots by name
    #[command(alias = "rm")]
    Delete(DeleteArgs),
    /// Delete all but the newest snapshots of one name and node
    Prune(PruneArgs),
    /// Replace the datastore with a snapshot; the server must be stopped
    Restore(RestoreArgs),
}

/// The data dir, also accepted after the subcommand.
#[derive(Debug, Clone, clap::Args)]
pub struct DataDir {
    /// Where state lives (default /var/lib/nanokube as root, ~/.nanokube otherwise)
    #[arg(long, short = 'd', env = "NANOKUBE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
}

/// Where the store and its snapshots are.
#[derive(Debug, Clone, clap::Args)]
pub struct Place {
    #[command(flatten)]
    pub data: DataDir,
    /// Snapshot directory (default <data-dir>/server/db/snapshots)
    #[arg(
        long,
        visible_alias = "snapshot-dir",
        alias = "etcd-snapshot-dir",
        env = "NANOKUBE_SNAPSHOT_DIR"
    )]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Output {
    Text,
    Json,
}

#[derive(Debug, Clone, clap::Args)]
pub struct SaveArgs {
    #[command(flatten)]
    pub place: Place,
    /// Snapshot name; the file is <name>-<node>-<unix time>
    #[arg(long, alias = "etcd-snapshot-name", default_value = "on-demand")]
    pub name: String,
    /// Node part of the file name (default: the host name)
    #[arg(long, env = "NANOKUBE_NODE_NAME")]
    pub node_name: Option<String>,
    #[arg(long, short = 'o', value_enum, default_value = "text")]
    pub output: Output,
}

#[derive(Debug, Clone, clap::Args)]
pub struct LsArgs {
    #[command(flatten)]
    pub place: Place,
    #[arg(long, short = 'o', value_enum, default_value = "text")]
    pub output: Output,
}

#[derive(Debug, Clone, clap::Args)]
pub struct DeleteArgs {
    #[command(flatten)]
    pub place: Place,
    /// Snapshot names as `ls` prints them
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Debug, Clone, clap::Args)]
pub struct PruneArgs {
    #[command(flatten)]
    pub place: Place,
    /// Prune snapshots of this name
    #[arg(long, alias = "etcd-snapshot-name", default_value = "on-demand")]
    pub name: String,
    /// Node part of the file names (default: the host name)
    #[arg(long, env = "NANOKUBE_NODE_NAME")]
    pub node_name: Option<String>,
    /// How many of the newest to keep
    #[arg(long, alias = "etcd-snapshot-retention", default_value_t = 5,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub snapshot_retention: u32,
}

#[derive(Debug, Clone, clap::Args)]
pub struct RestoreArgs {
    #[command(flatten)]
    pub data: DataDir,
    /// The snapshot file
    pub path: PathBuf,
    /// Revisions added to the snapshot's: clients holding resourceVersions
    /// newer than the snapshot must not see them reused (etcd's advice)
    #[arg(long, default_value_t = 1_000_000_000,
          value_parser = clap::value_parser!(i64).range(0..=1_000_000_000_000))]
    pub bump_revision: i64,
}

/// The server's snapshot schedule flags.
#[derive(Debug, Clone, clap::Args)]
pub struct ScheduleArgs {
    /// When to take snapshots: cron, five fields or six with seconds first
    #[arg(long, alias = "etcd-snapshot-schedule-cron", env = "NANOKUBE_SNAPSHOT_SCHEDULE_CRON",
          default_value = "0 */12 * * *", value_parser = schedule::valid)]
    pub snapshot_schedule_cron: String,
    /// How many scheduled snapshots to keep
    #[arg(long, alias = "etcd-snapshot-retention", env = "NANOKUBE_SNAPSHOT_RETENTION",
          default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub snapshot_retention: u32,
    /// Snapshot directory (default <data-dir>/server/db/snapshots)
    #[arg(long, alias = "etcd-snapshot-dir", env = "NANOKUBE_SNAPSHOT_DIR")]
    pub snapshot_dir: Option<PathBuf>,
    /// Name of scheduled snapshots: <name>-<node>-<unix time>
    #[arg(
        long,
        alias = "etcd-snapshot-name",
        env = "NANOKUBE_SNAPSHOT_NAME",
        default_value = "scheduled"
    )]
    pub snapshot_name: String,
    /// Take no scheduled snapshots
    #[arg(
        long,
        alias = "etcd-disable-snapshots",
        env = "NANOKUBE_DISABLE_SNAPSHOTS"
    )]
    pub disable_snapshots: bool,
}

fn db_path(data_dir: &Path) -> PathBuf {
    data_dir.join("server").join("db").join("state.db")
}

fn default_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("server").join("db").join("snapshots")
}

fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "nanokube".into())
        .to_ascii_lowercase()
}

/// `outer` holds flags given before `snapshot` (`nanokube datastore -d X
/// snapshot ...`, or the config file's): used when the subcommand has none.
fn data_dir(own: &DataDir, outer: &CommonArgs) -> PathBuf {
    own.data_dir.clone().unwrap_or_else(|| outer.data_dir())
}

impl Place {
    fn resolve(&self, outer: &CommonArgs) -> (PathBuf, PathBuf) {
        let data = data_dir(&self.data, outer);
        let dir = self.dir.clone().unwrap_or_else(|| default_dir(&data));
        (data, dir)
    }
}

pub async fn command(args: SnapshotArgs, outer: &CommonArgs) -> Result<(), Error> {
    let outer = outer.clone();
    // Every step is file and SQLite work: off the async threads.
    tokio::task::spawn_blocking(move || run(args, &outer))
        .await
        .map_err(|e| Error::Io {
            path: PathBuf::new(),
            source: std::io::Error::other(e.to_string()),
        })?
}

fn run(args: SnapshotArgs, outer: &CommonArgs) -> Result<(), Error> {
    match args.command {
        SnapshotCommand::Save(a) => {
            let (data, dir) = a.place.resolve(outer);
            let node = a.node_name.map(|n| n.to_ascii_lowercase());
            let name =
                files::file_name(&a.name, &node.unwrap_or_else(hostname), files::now_unix())?;
            let entry = files::save(files::Source::File(&db_path(&data)), &dir, &name)?;
            match a.output {
                Output::Json => println!("{}", serde_json::to_string_pretty(&entry)?),
                Output::Text => println!(
                    "saved snapshot {} at revision {} to {}",
                    entry.name,
                    entry.revision.unwrap_or(0),
                    entry.path.display()
                ),
            }
        }
        SnapshotCommand::Ls(a) => {
            let (_, dir) = a.place.resolve(outer);
            let entries = files::list(&dir, true)?;
            match a.output {
                Output::Json => println!("{}", serde_json::to_string_pretty(&entries)?),
                Output::Text => print_table(&entries),
            }
        }
        SnapshotCommand::Delete(a) => {
            let (_, dir) = a.place.resolve(outer);
            for name in files::delete(&dir, &a.names)? {
                println!("deleted snapshot {name}");
            }
        }
        SnapshotCommand::Prune(a) => {
            let (_, dir) = a.place.resolve(outer);
            let node = a.node_name.map(|n| n.to_ascii_lowercase());
            let node = node.unwrap_or_else(hostname);
            let retain = a.snapshot_retention as usize;
            for name in files::prune(&dir, &a.name, &node, retain)? {
                println!("deleted snapshot {name}");
            }
        }
        SnapshotCommand::Restore(a) => restore(&a, &data_dir(&a.data, outer))?,
    }
    Ok(())
}

fn restore(a: &RestoreArgs, data: &Path) -> Result<(), Error> {
    let sock = data.join("server").join("etcd.sock");
    if std::os::unix::net::UnixStream::connect(&sock).is_ok() {
        return Err(Error::Running(sock));
    }
    let db = db_path(data);
    let done = datastore::restore_snapshot(&a.path, &db, a.bump_revision, files::now_unix())?;
    println!(
        "restored {} (revision {}) into {}; the store goes on from revision {} \
         (older history compacted: clients relist)",
        a.path.display(),
        done.snapshot.revision,
        db.display(),
        done.revision
    );
    if let Some(old) = done.moved_aside {
        println!("the previous store was moved to {}", old.display());
    }
    Ok(())
}

fn print_table(entries: &[files::Entry]) {
    println!(
        "{:<48} {:<72} {:>10} {:>12} CREATED",
        "NAME", "LOCATION", "SIZE", "REVISION"
    );
    for e in entries {
        let created = jiff::Timestamp::from_second(e.created)
            .map(|t| t.to_string())
            .unwrap_or_default();
        let revision = e.revision.map_or("-".to_string(), |r| r.to_string());
        println!(
            "{:<48} {:<72} {:>10} {:>12} {created}",
            e.name, e.location, e.size, revision
        );
    }
}

/// Started by the server: takes snapshots on the schedule, keeps the newest
/// `--snapshot-retention` of them.
pub fn start(args: &ScheduleArgs, data_dir: &Path, store: Arc<SqliteBackend>) {
    if args.disable_snapshots {
        tracing::info!("scheduled datastore snapshots disabled");
        return;
    }
    // The flag's parser already accepted it; this cannot fail in practice.
    let cron = match schedule::parse(&args.snapshot_schedule_cron) {
        Ok(cron) => cron,
        Err(err) => {
            tracing::error!(%err, "scheduled datastore snapshots off");
            return;
        }
    };
    let plan = schedule::Plan {
        cron,
        expr: args.snapshot_schedule_cron.clone(),
        dir: args
            .snapshot_dir
            .clone()
            .unwrap_or_else(|| default_dir(data_dir)),
        name: args.snapshot_name.clone(),
        node: hostname(),
        retention: args.snapshot_retention as usize,
    };
    tokio::spawn(schedule::run(plan, store));
}
