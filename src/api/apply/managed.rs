//! `metadata.managedFields` entries: decoding, identity, encoding in
//! upstream's order, and the cap on Update entries.

use serde_json::{json, Value};

use super::fieldset::Set;

/// Upstream's maxUpdateManagers.
const MAX_UPDATE_MANAGERS: usize = 10;
/// The manager older Update entries are merged into.
pub(crate) const ANCIENT_CHANGES: &str = "ancient-changes";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Operation {
    Apply,
    Update,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    pub(crate) manager: String,
    pub(crate) operation: Operation,
    pub(crate) api_version: String,
    pub(crate) time: Option<String>,
    pub(crate) subresource: String,
    pub(crate) set: Set,
}

impl Entry {
    /// Upstream's manager identifier: an applier is one entry whatever
    /// apiVersion it applied with; an updater is one per apiVersion.
    pub(crate) fn same_manager(&self, other: &Entry) -> bool {
        self.manager == other.manager
            && self.operation == other.operation
            && self.subresource == other.subresource
            && (self.operation == Operation::Apply || self.api_version == other.api_version)
    }

    /// How conflict messages name the manager (upstream's printManager).
    pub(crate) fn describe(&self) -> String {
        let mut s = serde_json::to_string(&self.manager).unwrap_or_default();
        if !self.subresource.is_empty() {
            s.push_str(&format!(
                " with subresource {}",
                serde_json::to_string(&self.subresource).unwrap_or_default()
            ));
        }
        if self.operation == Operation::Update {
            s.push_str(&format!(" using {}", self.api_version));
        }
        s
    }
}

/// The entries of an object's `metadata.managedFields`; None when absent,
/// empty or not decodable (the caller then falls back to the live ones).
pub(crate) fn decode(obj: &Value) -> Option<Vec<Entry>> {
    let list = obj.get("metadata")?.get("managedFields")?.as_array()?;
    let mut out = Vec::with_capacity(list.len());
    for e in list {
        let text = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or_default();
        let operation = match text("operation") {
            "Apply" => Operation::Apply,
            "Update" => Operation::Update,
            _ => return None,
        };
        let set = match e.get("fieldsV1") {
            Some(v) => Set::from_fields_v1(v).ok()?,
            None => Set::default(),
        };
        out.push(Entry {
            manager: text("manager").to_string(),
            operation,
            api_version: text("apiVersion").to_string(),
            time: e.get("time").and_then(Value::as_str).map(str::to_string),
            subresource: text("subresource").to_string(),
            set,
        });
    }
    (!out.is_empty()).then_some(out)
}

/// The `managedFields` list: Apply before Update, then by time, manager,
/// apiVersion and subresource, as upstream sorts them.
pub(crate) fn encode(entries: &mut [Entry]) -> Value {
    entries.sort_by(|a, b| {
        (
            a.operation,
            &a.time,
            &a.manager,
            &a.api_version,
            &a.subresource,
        )
            .cmp(&(
                b.operation,
                &b.time,
                &b.manager,
                &b.api_version,
                &b.subresource,
            ))
    });
    Value::Array(
        entries
            .iter()
            .map(|e| {
                let mut v = json!({
                    "manager": e.manager,
                    "operation": match e.operation {
                        Operation::Apply => "Apply",
                        Operation::Update => "Update",
                    },
                    "apiVersion": e.api_version,
                    "fieldsType": "FieldsV1",
                    "fieldsV1": e.set.to_fields_v1(),
                });
                if let Some(t) = &e.time {
                    v["time"] = t.clone().into();
                }
                if !e.subresource.is_empty() {
                    v["subresource"] = e.subresource.clone().into();
                }
                v
            })
            .collect(),
    )
}

/// Drops empty entries and merges the oldest Update entries into
/// `ancient-changes` (one per apiVersion) beyond upstream's cap.
pub(crate) fn tidy(entries: &mut Vec<Entry>) {
    entries.retain(|e| !e.set.is_empty());
    let mut updaters: Vec<usize> = (0..entries.len())
        .filter(|&i| entries[i].operation == Operation::Update)
        .collect();
    if updaters.len() <= MAX_UPDATE_MANAGERS {
        return;
    }
    updaters.sort_by(|&a, &b| {
        (&entries[a].time, &entries[a].manager).cmp(&(&entries[b].time, &entries[b].manager))
    });
    let excess = updaters.len() - MAX_UPDATE_MANAGERS + 1;
    let mut merged: Vec<Entry> = Vec::new();
    let mut gone = Vec::new();
    for &i in updaters.iter().take(excess) {
        let e = &entries[i];
        gone.push(i);
        match merged.iter_mut().find(|m| m.api_version == e.api_version) {
            Some(m) => {
                m.set = m.set.union(&e.set);
                m.time = e.time.clone();
            }
            None => merged.push(Entry {
                manager: ANCIENT_CHANGES.into(),
                operation: Operation::Update,
                api_version: e.api_version.clone(),
                time: e.time.clone(),
                subresource: String::new(),
                set: e.set.clone(),
            }),
        }
    }
    let mut i = 0;
    entries.retain(|_| {
        i += 1;
        !gone.contains(&(i - 1))
    });
    for m in merged {
        match entries.iter_mut().find(|e| e.same_manager(&m)) {
            Some(existing) => {
                existing.set = existing.set.union(&m.set);
                existing.time = m.time;
            }
            None => entries.push(m),
        }
    }
}
