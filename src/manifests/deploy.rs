//! The deploy loop: a cheap poll of the manifests dir every second (file
//! size, mtime, inode: a new or edited file is live within about a
//! second), and every 15 s a resync comparing each file's checksum with
//! its state (k3s's period), which also catches edits that kept the mtime.
//! A file whose checksum matches its state is not even parsed: an
//! unchanged dir costs no API call that writes, and so no disk write.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::parse::{self, ObjectRef};
use super::state::{self, State};
use super::{apply, Error};
use crate::api::Api;
use crate::client::{Local, Recorder};

const POLL: Duration = Duration::from_secs(1);
const RESYNC: Duration = Duration::from_secs(15);
/// Subdirectories followed (k3s walks the tree); bounds symlink loops.
const MAX_DEPTH: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// At start: every file is re-applied (objects that drifted or were
    /// deleted while the server was down come back), writing only what
    /// differs.
    Start,
    /// Only files whose size, mtime or inode moved.
    Poll,
    /// Every file whose checksum differs from its state.
    Resync,
}

type Fingerprint = (Option<SystemTime>, u64, u64);

#[derive(Default)]
struct Scan {
    files: BTreeMap<String, Fingerprint>,
    /// `foo.yaml` for every `foo.yaml.skip`.
    skips: BTreeSet<String>,
}

pub struct Deployer {
    api: Arc<Api>,
    dir: PathBuf,
    recorder: Recorder,
    /// This server's name, recorded in the states it writes.
    server: String,
    seen: BTreeMap<String, Fingerprint>,
    skips: BTreeSet<String>,
    started: bool,
}

/// What one apply of a file did, for its state and Events.
struct Outcome {
    state: State,
    changed: bool,
    reason: &'static str,
}

impl Deployer {
    pub fn new(api: Arc<Api>, dir: PathBuf, server: String) -> Self {
        let recorder = Recorder::new(Local::new(api.clone()), "deploy");
        Deployer {
            api,
            dir,
            recorder,
            server,
            seen: BTreeMap::new(),
            skips: BTreeSet::new(),
            started: false,
        }
    }

    pub async fn run(mut self) {
        tracing::info!(dir = %self.dir.display(), "following the manifests dir");
        if !self.started {
            self.pass(Mode::Start).await;
        }
        let mut last_resync = Instant::now();
        loop {
            tokio::time::sleep(POLL).await;
            let mode = if last_resync.elapsed() >= RESYNC {
                last_resync = Instant::now();
                Mode::Resync
            } else {
                Mode::Poll
            };
            self.pass(mode).await;
        }
    }

    pub async fn pass(&mut self, mode: Mode) {
        let scan = match scan(&self.dir) {
            Ok(scan) => scan,
            Err(e) => {
                tracing::warn!(error = %e, "reading the manifests dir failed");
                return;
            }
        };
        let changed: Vec<&String> = scan
            .files
            .iter()
            .filter(|(f, fp)| {
                mode != Mode::Poll
                    || self.seen.get(*f) != Some(fp)
                    || self.skips.contains(*f) != scan.skips.contains(*f)
            })
            .map(|(f, _)| f)
            .collect();
        let vanished = self.seen.keys().any(|f| !scan.files.contains_key(f));
        if mode == Mode::Poll && changed.is_empty() && !vanished && self.skips == scan.skips {
            return;
        }
        let states = match state::list(&self.api).await {
            Ok(states) => states,
            Err(e) => {
                tracing::warn!(error = %e, "reading the manifests' state failed");
                return;
            }
        };
        tracing::debug!(?mode, files = scan.files.len(), "manifests pass");
        for file in changed {
            if scan.skips.contains(file) {
                continue;
            }
            self.deploy(file, states.get(file), mode == Mode::Start)
                .await;
        }
        for (file, st) in &states {
            // Another server's file is not ours to find missing.
            let ours = st.server.is_empty() || st.server == self.server;
            if ours && !scan.files.contains_key(file) && !scan.skips.contains(file) {
                self.remove(st).await;
            }
        }
        self.seen = scan.files;
        self.skips = scan.skips;
        if mode == Mode::Start {
            self.started = true;
        }
    }

    /// Applies one file if its content differs from its state (always at
    /// start), prunes objects it no longer declares, records the outcome.
    async fn deploy(&mut self, file: &str, old: Option<&State>, force: bool) {
        let path = self.dir.join(file);
        let mut state = old
            .cloned()
            .unwrap_or_else(|| State::new(file, &self.server));
        state.server.clone_from(&self.server);
        let content = match std::fs::read(&path) {
            Ok(content) => content,
            Err(e) => {
                state.error = Some(format!("Read manifest at {path:?} failed: {e}"));
                let outcome = Outcome {
                    state,
                    changed: false,
                    reason: "ReadManifestFailed",
                };
                return self.record(old, outcome).await;
            }
        };
        let sum = parse::checksum(&content);
        if !force && old.is_some_and(|s| s.checksum == sum && s.error.is_none()) {
            return;
        }
        let objects = match parse::objects(file, &content) {
            Ok(objects) => objects,
            Err(e) => {
                state.error = Some(format!("Parse manifest at {path:?} failed: {e}"));
                let outcome = Outcome {
                    state,
                    changed: false,
                    reason: "ParseManifestFailed",
                };
                return self.record(old, outcome).await;
            }
        };
        let mut errors = Vec::new();
        let mut resolved = Vec::new();
        for obj in &objects {
            match apply::resolve(&self.api, obj) {
                Ok((r, id)) => resolved.push((r, id, obj)),
                Err(e) => errors.push(e),
            }
        }
        // Namespaces first, wherever the file declares them.
        resolved.sort_by_key(|(r, _, _)| r.kind != "Namespace");
        let mut changes = 0;
        let mut declared: Vec<ObjectRef> = Vec::new();
        for (r, id, obj) in &resolved {
            declared.push(id.clone());
            match apply::apply(&self.api, file, r, id, obj).await {
                Ok(apply::Change::Unchanged) => {}
                Ok(_) => changes += 1,
                Err(e) => errors.push(format!("{} {}: {e}", id.kind, describe(id))),
            }
        }
        let mut kept = declared.clone();
        // An object that failed to resolve may be one of the old ones:
        // prune only when the whole file was understood.
        if resolved.len() == objects.len() {
            let mut gone: Vec<&ObjectRef> = state
                .objects
                .iter()
                .filter(|o| !declared.contains(o))
                .collect();
            gone.sort_by_key(|o| o.kind == "Namespace");
            for o in gone {
                match apply::delete(&self.api, file, o).await {
                    Ok(deleted) => changes += usize::from(deleted),
                    Err(e) => {
                        errors.push(format!("deleting {} {}: {e}", o.kind, describe(o)));
                        kept.push(o.clone());
                    }
                }
            }
        } else {
            kept.extend(state.objects.iter().cloned());
        }
        kept.sort();
        kept.dedup();
        state.objects = kept;
        if errors.is_empty() {
            state.checksum = sum;
            state.error = None;
        } else {
            state.error = Some(format!(
                "Applying manifest at {path:?} failed: {}",
                errors.join("; ")
            ));
        }
        let outcome = Outcome {
            state,
            changed: changes > 0,
            reason: "ApplyManifestFailed",
        };
        self.record(old, outcome).await
    }

    /// The file is gone: its objects are deleted, then its state.
    async fn remove(&mut self, old: &State) {
        let path = self.dir.join(&old.file);
        let mut objects: Vec<&ObjectRef> = old.objects.iter().collect();
        objects.sort_by_key(|o| o.kind == "Namespace");
        let mut errors = Vec::new();
        let mut remaining = Vec::new();
        let mut deleted = 0;
        for o in objects {
            match apply::delete(&self.api, &old.file, o).await {
                Ok(d) => deleted += usize::from(d),
                Err(e) => {
                    errors.push(format!("{} {}: {e}", o.kind, describe(o)));
                    remaining.push(o.clone());
                }
            }
        }
        if errors.is_empty() {
            match state::remove(&self.api, &old.file).await {
                Ok(()) => {
                    tracing::info!(file = %old.file, deleted, "manifest removed; its objects deleted")
                }
                Err(e) => {
                    tracing::warn!(file = %old.file, error = %e, "forgetting a removed manifest failed")
                }
            }
            return;
        }
        let state = State {
            objects: remaining,
            error: Some(format!(
                "Deleting objects of manifest at {path:?} failed: {}",
                errors.join("; ")
            )),
            ..old.clone()
        };
        let outcome = Outcome {
            state,
            changed: deleted > 0,
            reason: "DeleteManifestFailed",
        };
        self.record(Some(old), outcome).await
    }

    /// Saves the state if it changed and reports: a Warning Event for a new
    /// error (the same error again is not written again), a Normal one when
    /// objects changed.
    async fn record(&mut self, old: Option<&State>, outcome: Outcome) {
        let Outcome {
            state,
            changed,
            reason,
        } = outcome;
        let new_error = state
            .error
            .as_ref()
            .filter(|e| old.and_then(|s| s.error.as_ref()) != Some(*e));
        if old == Some(&state) && !changed {
            return;
        }
        let cm = if old != Some(&state) {
            state::save(&self.api, &state).await
        } else {
            state::get(&self.api, &state.file).await
        };
        let cm = match cm {
            Ok(cm) => cm,
            Err(e) => {
                tracing::warn!(file = %state.file, error = %e, "saving a manifest's state failed");
                return;
            }
        };
        if let Some(error) = new_error {
            tracing::warn!(file = %state.file, reason, error = %error, "manifest failed");
            self.recorder.warning(&cm, reason, error);
        } else if changed && state.error.is_none() {
            let path = self.dir.join(&state.file);
            tracing::info!(file = %state.file, objects = state.objects.len(), "manifest applied");
            self.recorder.normal(
                &cm,
                "AppliedManifest",
                &format!("Applied manifest at {path:?}"),
            );
        }
    }
}

fn describe(o: &ObjectRef) -> String {
    match &o.namespace {
        Some(ns) => format!("{ns}/{}", o.name),
        None => o.name.clone(),
    }
}

fn scan(dir: &Path) -> Result<Scan, Error> {
    let mut scan = Scan::default();
    walk(dir, "", 0, &mut scan)?;
    Ok(scan)
}

fn walk(base: &Path, rel: &str, depth: usize, scan: &mut Scan) -> Result<(), Error> {
    let here = base.join(rel);
    let io = |source| Error::Io {
        path: here.display().to_string(),
        source,
    };
    for entry in std::fs::read_dir(&here).map_err(io)? {
        let entry = entry.map_err(io)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        // Dotfiles: editors' swap files, our own temporary files.
        if name.starts_with('.') {
            continue;
        }
        let rel_name = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        // Followed through symlinks; a dangling link is not a manifest.
        let Ok(meta) = std::fs::metadata(entry.path()) else {
            continue;
        };
        if meta.is_dir() {
            if depth < MAX_DEPTH {
                if let Err(e) = walk(base, &rel_name, depth + 1, scan) {
                    tracing::warn!(error = %e, "reading a manifests subdirectory failed");
                }
            }
        } else if let Some(target) = rel_name.strip_suffix(".skip") {
            scan.skips.insert(target.to_string());
        } else if parse::is_manifest(&rel_name) {
            use std::os::unix::fs::MetadataExt;
            let fp = (meta.modified().ok(), meta.len(), meta.ino());
            scan.files.insert(rel_name, fp);
        }
    }
    Ok(())
}
