//! Talking to iptables (blocking; called from `spawn_blocking`): one
//! `iptables-restore --noflush` per sync, the jump rules from the built-in
//! chains checked with `-C` and added once, conntrack flushes for UDP, and
//! removal of everything of this instance at shutdown.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::{Command, Stdio};

use super::Error;

/// The jump rules from built-in chains: (table, chain, rule spec).
pub fn jumps(prefix: &str) -> Vec<(&'static str, &'static str, Vec<String>)> {
    let rule = |what: &str, new_only: bool, target: String| {
        let mut v: Vec<String> = ["-m", "comment", "--comment"]
            .into_iter()
            .map(str::to_string)
            .collect();
        v.push(format!("nanokube {prefix} {what}"));
        if new_only {
            v.extend(["-m", "conntrack", "--ctstate", "NEW"].map(str::to_string));
        }
        v.extend(["-j".to_string(), target]);
        v
    };
    let services = || format!("{prefix}-SERVICES");
    vec![
        ("nat", "PREROUTING", rule("services", false, services())),
        ("nat", "OUTPUT", rule("services", false, services())),
        (
            "nat",
            "POSTROUTING",
            rule("postrouting", false, format!("{prefix}-POSTRTG")),
        ),
        ("filter", "INPUT", rule("services", true, services())),
        ("filter", "FORWARD", rule("services", true, services())),
        (
            "filter",
            "FORWARD",
            rule("forward", false, format!("{prefix}-FORWARD")),
        ),
        ("filter", "OUTPUT", rule("services", true, services())),
    ]
}

fn run(program: &str, args: &[&str], stdin: Option<&str>) -> Result<String, Error> {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| Error::Command(format!("{program}: {e}")))?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes())
            .map_err(|e| Error::Command(format!("{program}: {e}")))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| Error::Command(format!("{program}: {e}")))?;
    if !out.status.success() {
        return Err(Error::Command(format!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Applies one batch atomically.
pub fn restore(text: &str) -> Result<(), Error> {
    run("iptables-restore", &["--noflush", "-w", "5"], Some(text)).map(|_| ())
}

/// Adds the jump rules that are missing (`-C` first: never twice).
pub fn ensure_jumps(prefix: &str) -> Result<(), Error> {
    for (table, chain, spec) in jumps(prefix) {
        let spec: Vec<&str> = spec.iter().map(String::as_str).collect();
        let mut check = vec!["-w", "5", "-t", table, "-C", chain];
        check.extend(&spec);
        if run("iptables", &check, None).is_err() {
            let mut insert = vec!["-w", "5", "-t", table, "-I", chain];
            insert.extend(&spec);
            run("iptables", &insert, None)?;
        }
    }
    Ok(())
}

/// The chains of this instance now in the kernel, per table.
pub fn existing_chains(prefix: &str) -> Result<BTreeMap<&'static str, BTreeSet<String>>, Error> {
    let mut out = BTreeMap::new();
    let own = format!("{prefix}-");
    for table in ["nat", "filter"] {
        let save = run("iptables-save", &["-t", table], None)?;
        let chains: BTreeSet<String> = save
            .lines()
            .filter_map(|l| l.strip_prefix(':')?.split_whitespace().next())
            .filter(|c| c.starts_with(&own))
            .map(str::to_string)
            .collect();
        out.insert(table, chains);
    }
    Ok(out)
}

/// Removes the jump rules, then flushes and deletes every chain of this
/// instance.
pub fn remove_all(prefix: &str) -> Result<(), Error> {
    for (table, chain, spec) in jumps(prefix) {
        let spec: Vec<&str> = spec.iter().map(String::as_str).collect();
        let mut del = vec!["-w", "5", "-t", table, "-D", chain];
        del.extend(&spec);
        // Repeated in case an earlier run added it twice.
        while run("iptables", &del, None).is_ok() {}
    }
    let chains = existing_chains(prefix)?;
    let mut text = String::new();
    for (table, set) in &chains {
        if set.is_empty() {
            continue;
        }
        text.push_str(&format!("*{table}\n"));
        for c in set {
            text.push_str(&format!(":{c} - [0:0]\n"));
        }
        for c in set {
            text.push_str(&format!("-X {c}\n"));
        }
        text.push_str("COMMIT\n");
    }
    if text.is_empty() {
        return Ok(());
    }
    restore(&text)
}

/// Drops UDP conntrack entries towards `addr` (`ip` or `:nodePort`), so
/// that clients stop talking to an endpoint that went away.
pub fn flush_udp(addr: &str) {
    let args: Vec<&str> = match addr.strip_prefix(':') {
        Some(port) => vec!["-D", "-p", "udp", "--dport", port],
        None => vec!["-D", "-p", "udp", "--orig-dst", addr],
    };
    // Exit status 1 when nothing matched: not an error worth a warning.
    if let Err(e) = run("conntrack", &args, None) {
        tracing::debug!(address = addr, error = %e, "conntrack flush");
    }
}
