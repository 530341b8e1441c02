//! Talking to nftables (blocking; called from `spawn_blocking`): one
//! `nft -f -` transaction per sync into this instance's own table (atomic:
//! all of it applies or none), UDP conntrack flushes, and `delete table`
//! at shutdown. Nothing outside the table is ever touched.

use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::iptables::flush_udp;
use super::model::State;
use super::nft_rules::{self, Ruleset};
use super::rules::Config;
use super::Error;

/// Runs `nft -f -` with `script` as its input.
pub fn apply(script: &str) -> Result<(), Error> {
    let mut child = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::Command(format!("nft: {e}")))?;
    if let Some(mut pipe) = child.stdin.take() {
        pipe.write_all(script.as_bytes())
            .map_err(|e| Error::Command(format!("nft: {e}")))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| Error::Command(format!("nft: {e}")))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        // nft quotes the failing line; the first lines say what failed.
        let short: Vec<&str> = err.lines().take(6).collect();
        return Err(Error::Command(format!("nft -f: {}", short.join(" | "))));
    }
    Ok(())
}

/// Fails unless the `nft` command runs (checked once at start, so a
/// missing package is one clear error, not a retry loop).
pub fn check() -> Result<(), Error> {
    let out = Command::new("nft").arg("--version").output().map_err(|e| {
        Error::Command(format!(
            "nft --version: {e} (install the nftables package, or use --proxy-mode iptables)"
        ))
    })?;
    if !out.status.success() {
        return Err(Error::Command(format!(
            "nft --version: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

/// Deletes the table of `prefix`'s instance (nothing to do when absent).
pub fn remove_all(prefix: &str) -> Result<(), Error> {
    let t = nft_rules::table_name(prefix);
    apply(&format!("add table ip {t}\ndelete table ip {t}\n"))
}

/// The state between syncs: what was written, for changes-only syncs and
/// UDP conntrack flushes.
pub struct Syncer {
    cfg: Config,
    table: String,
    /// What the kernel holds (None: unknown, start from a clean table).
    written: Option<Ruleset>,
    /// Rewrite everything (a periodic resync, or after a failure).
    pub full: bool,
    /// UDP addresses and their endpoints as last written (kept across a
    /// reset: a failed sync must not lose a flush).
    udp: BTreeMap<String, BTreeSet<String>>,
}

impl Syncer {
    pub fn new(cfg: Config) -> Syncer {
        Syncer {
            table: nft_rules::table_name(&cfg.prefix),
            cfg,
            written: None,
            full: true,
            udp: BTreeMap::new(),
        }
    }

    /// Forgets what was written: the next sync starts from a clean table.
    pub fn reset(&mut self) {
        self.written = None;
        self.full = true;
    }

    pub fn sync(&mut self, state: &State) -> Result<Duration, Error> {
        let start = Instant::now();
        let now = nft_rules::generate(&self.cfg, state);
        let script = match (&self.written, self.full) {
            (Some(prev), false) => nft_rules::render_changes(&self.table, prev, &now),
            (prev, _) => nft_rules::render_full(&self.table, prev.as_ref(), &now),
        };
        if !script.is_empty() {
            if let Err(e) = apply(&script) {
                self.reset();
                return Err(e);
            }
        }
        self.full = false;
        flush_gone(&self.udp, &now.udp);
        self.udp = now.udp.clone();
        self.written = Some(now);
        Ok(start.elapsed())
    }
}

/// Flushes UDP conntrack entries of addresses that lost an endpoint.
fn flush_gone(
    before: &BTreeMap<String, BTreeSet<String>>,
    now: &BTreeMap<String, BTreeSet<String>>,
) {
    for (addr, was) in before {
        let gone = match now.get(addr) {
            Some(n) => was.iter().any(|e| !n.contains(e)),
            None => !was.is_empty(),
        };
        if gone {
            flush_udp(addr);
        }
    }
}
