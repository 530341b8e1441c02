//! Rendering a [`Ruleset`] as `nft -f -` input: one transaction writing
//! the whole table (declarations, flushes, rules, map elements, stale
//! chains deleted) or only what changed since the last one. Plain std
//! only (the benchmark includes this file).

use std::collections::BTreeMap;
use std::fmt::Write;

use super::nft_rules::Ruleset;

/// Base chains: name and hook specification.
const BASE: [(&str, &str); 6] = [
    (
        "nat-prerouting",
        "type nat hook prerouting priority -100; policy accept;",
    ),
    (
        "nat-output",
        "type nat hook output priority -100; policy accept;",
    ),
    (
        "nat-postrouting",
        "type nat hook postrouting priority 100; policy accept;",
    ),
    // Before the usual filter priority (0): refusals come first.
    (
        "filter-input",
        "type filter hook input priority -110; policy accept;",
    ),
    (
        "filter-forward",
        "type filter hook forward priority -110; policy accept;",
    ),
    (
        "filter-output",
        "type filter hook output priority -110; policy accept;",
    ),
];

/// Verdict maps (and the hairpin set): name and type.
pub const MAPS: [(&str, &str); 5] = [
    (
        "service-ips",
        "type ipv4_addr . inet_proto . inet_service : verdict;",
    ),
    (
        "service-nodeports",
        "type inet_proto . inet_service : verdict;",
    ),
    (
        "no-endpoint-services",
        "type ipv4_addr . inet_proto . inet_service : verdict;",
    ),
    (
        "no-endpoint-nodeports",
        "type inet_proto . inet_service : verdict;",
    ),
    // `endpoint . endpoint`: a packet DNATed back to its source.
    ("hairpin", "type ipv4_addr . ipv4_addr;"),
];

/// `map` for verdict maps, `set` for the hairpin set (no verdicts).
pub fn kind(name: &str) -> &'static str {
    if name == "hairpin" {
        "set"
    } else {
        "map"
    }
}

/// The table of an instance: `NK0a1b2c3d` → `nk0a1b2c3d`.
pub fn table_name(prefix: &str) -> String {
    prefix.to_ascii_lowercase()
}

/// `ip nk…`, what every command names.
pub fn family_table(table: &str) -> String {
    format!("ip {table}")
}

/// Declarations of everything in `rs` (idempotent: `add` semantics).
fn declare(out: &mut String, table: &str, rs: &Ruleset, base: bool) {
    let mut block = String::new();
    if base {
        for (name, spec) in BASE {
            let _ = writeln!(block, "  chain {name} {{ {spec} }}");
        }
        for (name, spec) in MAPS {
            let _ = writeln!(block, "  {} {name} {{ {spec} }}", kind(name));
        }
    }
    for (name, timeout) in &rs.sets {
        let _ = writeln!(
            block,
            "  set {name} {{ type ipv4_addr; flags dynamic,timeout; timeout {timeout}s; }}"
        );
    }
    for name in rs.chains.keys() {
        if !BASE.iter().any(|(b, _)| b == name) {
            let _ = writeln!(block, "  chain {name} {{ }}");
        }
    }
    if !block.is_empty() {
        let _ = writeln!(out, "table {} {{\n{block}}}", family_table(table));
    }
}

fn write_chains<'a>(
    out: &mut String,
    table: &str,
    chains: impl Iterator<Item = (&'a String, &'a String)>,
) {
    let mut block = String::new();
    for (name, rules) in chains {
        if rules.is_empty() {
            continue;
        }
        let _ = writeln!(block, "  chain {name} {{\n{rules}  }}");
    }
    if !block.is_empty() {
        let _ = writeln!(out, "table {} {{\n{block}}}", family_table(table));
    }
}

fn write_elements<'a>(
    out: &mut String,
    table: &str,
    map: &str,
    elements: impl Iterator<Item = (&'a String, Option<&'a String>)>,
    add: bool,
) {
    let items: Vec<String> = elements
        .map(|(k, v)| match v {
            Some(v) if !v.is_empty() => format!("{k} : {v}"),
            _ => k.clone(),
        })
        .collect();
    if items.is_empty() {
        return;
    }
    let verb = if add { "add" } else { "delete" };
    let _ = writeln!(
        out,
        "{verb} element {} {map} {{ {} }}",
        family_table(table),
        items.join(", ")
    );
}

/// One transaction writing all of `now`. `prev` is what the last sync
/// wrote (its chains and sets no longer wanted are deleted); `None` starts
/// from a clean table (first sync, or after a failure): `add table` then
/// `delete table` drops whatever an earlier run left.
pub fn render_full(table: &str, prev: Option<&Ruleset>, now: &Ruleset) -> String {
    let ft = family_table(table);
    let mut out = String::with_capacity(1 << 20);
    let _ = writeln!(out, "add table {ft}");
    if prev.is_none() {
        let _ = writeln!(out, "delete table {ft}");
    }
    declare(&mut out, table, now, true);
    if let Some(prev) = prev {
        for name in now.chains.keys().chain(prev.chains.keys()) {
            let _ = writeln!(out, "flush chain {ft} {name}");
        }
        for (name, _) in MAPS {
            let _ = writeln!(out, "flush {} {ft} {name}", kind(name));
        }
    }
    write_chains(&mut out, table, now.chains.iter());
    for (map, elements) in &now.maps {
        write_elements(
            &mut out,
            table,
            map,
            elements.iter().map(|(k, v)| (k, Some(v))),
            true,
        );
    }
    if let Some(prev) = prev {
        remove_stale(&mut out, table, prev, now);
    }
    out
}

fn remove_stale(out: &mut String, table: &str, prev: &Ruleset, now: &Ruleset) {
    let ft = family_table(table);
    for name in prev.chains.keys().filter(|c| !now.chains.contains_key(*c)) {
        let _ = writeln!(out, "delete chain {ft} {name}");
    }
    for name in prev.sets.keys().filter(|s| !now.sets.contains_key(*s)) {
        let _ = writeln!(out, "delete set {ft} {name}");
    }
}

/// One transaction taking the table from `prev` to `now`: new chains and
/// sets, changed chains rewritten, map elements added and removed, chains
/// and sets gone deleted. Empty when nothing changed.
pub fn render_changes(table: &str, prev: &Ruleset, now: &Ruleset) -> String {
    let ft = family_table(table);
    let mut out = String::new();
    let added = Ruleset {
        chains: now
            .chains
            .iter()
            .filter(|(c, _)| !prev.chains.contains_key(*c))
            .map(|(c, r)| (c.clone(), r.clone()))
            .collect(),
        sets: now
            .sets
            .iter()
            .filter(|(s, _)| !prev.sets.contains_key(*s))
            .map(|(s, t)| (s.clone(), *t))
            .collect(),
        ..Ruleset::default()
    };
    declare(&mut out, table, &added, false);
    let changed: Vec<(&String, &String)> = now
        .chains
        .iter()
        .filter(|(c, r)| prev.chains.get(*c).is_some_and(|p| p != *r))
        .collect();
    let gone: Vec<&String> = prev
        .chains
        .keys()
        .filter(|c| !now.chains.contains_key(*c))
        .collect();
    for name in changed.iter().map(|(c, _)| *c).chain(gone.iter().copied()) {
        let _ = writeln!(out, "flush chain {ft} {name}");
    }
    write_chains(
        &mut out,
        table,
        changed.into_iter().chain(added.chains.iter()),
    );
    let empty = BTreeMap::new();
    for (map, _) in MAPS {
        let p = prev.maps.get(map).unwrap_or(&empty);
        let n = now.maps.get(map).unwrap_or(&empty);
        // A changed verdict is a delete and an add of the key.
        write_elements(
            &mut out,
            table,
            map,
            p.iter()
                .filter(|(k, v)| n.get(*k) != Some(*v))
                .map(|(k, _)| (k, None)),
            false,
        );
        write_elements(
            &mut out,
            table,
            map,
            n.iter()
                .filter(|(k, v)| p.get(*k) != Some(*v))
                .map(|(k, v)| (k, Some(v))),
            true,
        );
    }
    remove_stale(&mut out, table, prev, now);
    out
}
