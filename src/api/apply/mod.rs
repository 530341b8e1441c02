//! Server-side apply and `metadata.managedFields`, as upstream's
//! structured-merge-diff and apiserver field manager: every write records
//! which manager owns which fields ([`track`], Update operations), and
//! apply requests merge a configuration into the live object, remove what
//! the manager stopped applying and refuse to change others' fields
//! without `force` ([`apply`]).

mod fieldset;
mod managed;
mod markers;
mod types;
mod walk;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_apply;
#[cfg(test)]
mod tests_markers;

use serde_json::Value;

use fieldset::{fields, path_string, Set};
use managed::{Entry, Operation};
use types::Node;

/// The annotation kubectl's client-side apply keeps its last configuration in.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";
/// kubectl's default server-side field manager; only it upgrades from
/// client-side apply on the server (upstream's lastApplied managers).
const KUBECTL_MANAGER: &str = "kubectl";
/// Owns the fields of objects that had no managedFields when first applied.
const BEFORE_FIRST_APPLY: &str = "before-first-apply";
/// Upstream's limit on manager names.
const MAX_MANAGER_LEN: usize = 128;

#[derive(Debug, thiserror::Error)]
pub(crate) enum ApplyError {
    /// Another manager owns fields the configuration changes (HTTP 409).
    #[error("{message}")]
    Conflict {
        message: String,
        /// (message, field) per conflicting field, as upstream's causes.
        causes: Vec<(String, String)>,
    },
    /// The configuration cannot be applied (HTTP 400).
    #[error("{0}")]
    BadRequest(String),
}

/// What is being written: the type and the version and subresource the
/// request addressed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Target<'a> {
    /// The OpenAPI definition of a built-in kind.
    pub(crate) definition: Option<&'static str>,
    /// A custom resource's schema (takes precedence over `definition`).
    pub(crate) custom: Option<&'a Value>,
    pub(crate) api_version: &'a str,
    /// Whether the kind has a status subresource (status is then not the
    /// main resource's to own, and the reverse).
    pub(crate) has_status: bool,
    pub(crate) subresource: Option<&'a str>,
}

impl Target<'_> {
    fn root(&self) -> Node<'_> {
        Node::root(self.definition, self.custom)
    }

    /// Upstream's stripped meta fields and the reset fields of the
    /// main resource / status subresource, removed from every set.
    fn filter(&self, set: &Set) -> Set {
        let mut out = set.clone();
        for p in [
            fields(&["apiVersion"]),
            fields(&["kind"]),
            fields(&["metadata", "name"]),
            fields(&["metadata", "namespace"]),
            fields(&["metadata", "creationTimestamp"]),
            fields(&["metadata", "selfLink"]),
            fields(&["metadata", "uid"]),
            fields(&["metadata", "generation"]),
            fields(&["metadata", "managedFields"]),
            fields(&["metadata", "resourceVersion"]),
            fields(&["metadata", "deletionTimestamp"]),
            fields(&["metadata", "deletionGracePeriodSeconds"]),
        ] {
            out.remove_prefix(&p);
        }
        if self.has_status {
            match self.subresource {
                None => out.remove_prefix(&fields(&["status"])),
                Some("status") => {
                    let mut kept = out.only_prefix(&fields(&["status"]));
                    kept = kept.union(&out.only_prefix(&fields(&["metadata"])));
                    out = kept;
                }
                Some(_) => {}
            }
        }
        out
    }

    fn subresource(&self) -> String {
        self.subresource.unwrap_or_default().to_string()
    }
}

/// The manager of a write: the `fieldManager` parameter, else the
/// User-Agent up to its first '/' (printable characters, at most 128),
/// else `fallback` for in-process callers.
pub(crate) fn manager_name(
    field_manager: Option<&str>,
    user_agent: Option<&str>,
    fallback: &str,
) -> String {
    if let Some(m) = field_manager.filter(|m| !m.is_empty()) {
        return m.to_string();
    }
    match user_agent {
        Some(ua) => ua
            .split('/')
            .next()
            .unwrap_or_default()
            .chars()
            .filter(|c| !c.is_control())
            .take(MAX_MANAGER_LEN)
            .collect(),
        None => fallback.to_string(),
    }
}

fn strip_managed(obj: &mut Value) -> Option<Value> {
    obj.get_mut("metadata")
        .and_then(Value::as_object_mut)
        .and_then(|m| m.remove("managedFields"))
}

fn write_managed(obj: &mut Value, entries: &mut Vec<Entry>) {
    managed::tidy(entries);
    let Some(m) = obj.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    if entries.is_empty() {
        m.remove("managedFields");
    } else {
        m.insert("managedFields".into(), managed::encode(entries));
    }
}

/// Records an Update operation by `manager` on `new` (`old` is None for a
/// create): the fields this write added or changed become the manager's
/// and leave every other manager; removed fields leave everyone. Managed
/// fields the request itself carries (main resource only) replace the
/// live ones, as upstream lets clients edit them.
pub(crate) fn track(t: &Target, old: Option<&Value>, new: &mut Value, manager: &str, now: &str) {
    let provided = match t.subresource {
        None => managed::decode(new),
        Some(_) => None,
    };
    let mut entries = provided
        .or_else(|| old.and_then(managed::decode))
        .unwrap_or_default();
    strip_managed(new);
    let empty = Value::Object(serde_json::Map::new());
    let c = walk::compare(old.unwrap_or(&empty), new, &t.root()).without(&|s| t.filter(s));
    let changed = c.changed();
    for e in entries.iter_mut() {
        e.set = e.set.difference(&changed).difference(&c.removed);
    }
    if !changed.is_empty() {
        let mine = Entry {
            manager: manager.to_string(),
            operation: Operation::Update,
            api_version: t.api_version.to_string(),
            time: Some(now.to_string()),
            subresource: t.subresource(),
            set: changed,
        };
        match entries.iter_mut().find(|e| e.same_manager(&mine)) {
            Some(e) => {
                e.set = e.set.union(&mine.set);
                e.time = mine.time;
            }
            None => entries.push(mine),
        }
    }
    write_managed(new, &mut entries);
}

/// Applies `config` for `manager` to `live` (None: the object does not
/// exist yet) and returns the new object with its managedFields.
pub(crate) fn apply(
    t: &Target,
    live: Option<&Value>,
    config: &Value,
    manager: &str,
    force: bool,
    now: &str,
) -> Result<Value, ApplyError> {
    if !config.is_object() {
        return Err(ApplyError::BadRequest(
            "the applied configuration is not an object".into(),
        ));
    }
    if config
        .get("metadata")
        .and_then(|m| m.get("managedFields"))
        .is_some_and(|f| !f.is_null())
    {
        return Err(ApplyError::BadRequest(
            "metadata.managedFields must be nil".into(),
        ));
    }
    let root = t.root();
    let mut live = live
        .cloned()
        .unwrap_or_else(|| Value::Object(Default::default()));
    let existed = live.get("metadata").is_some();
    let mut entries = managed::decode(&live).unwrap_or_default();
    strip_managed(&mut live);
    if existed && entries.is_empty() {
        // Objects written before fields were tracked: their fields belong
        // to a stand-in manager, so the first apply can conflict with them.
        let set = t.filter(&walk::field_set(&live, &root));
        entries.push(Entry {
            manager: BEFORE_FIRST_APPLY.into(),
            operation: Operation::Update,
            api_version: t.api_version.to_string(),
            time: Some(now.to_string()),
            subresource: t.subresource(),
            set,
        });
    }
    let me = Entry {
        manager: manager.to_string(),
        operation: Operation::Apply,
        api_version: t.api_version.to_string(),
        time: Some(now.to_string()),
        subresource: t.subresource(),
        set: t.filter(&walk::field_set(config, &root)),
    };
    let previous = entries.iter().position(|e| e.same_manager(&me));
    let last_set = previous.map(|i| entries[i].set.clone()).unwrap_or_default();
    let last_time = previous.and_then(|i| entries[i].time.clone());
    let mut merged = walk::merge(&live, config, &root);
    let c = walk::compare(&live, &merged, &root).without(&|s| t.filter(s));
    let changed = c.changed();
    let conflicts: Vec<(usize, Set)> = entries
        .iter()
        .enumerate()
        .filter(|(_, e)| !e.same_manager(&me))
        .map(|(i, e)| (i, e.set.intersection(&changed)))
        .filter(|(_, s)| !s.is_empty())
        .collect();
    if !force && !conflicts.is_empty() && !allowed_by_last_applied(t, &live, manager, &conflicts) {
        return Err(conflict_error(&entries, &conflicts));
    }
    for e in entries.iter_mut() {
        if !e.same_manager(&me) {
            e.set = e.set.difference(&changed).difference(&c.removed);
        }
    }
    // Fields applied last time and not now go, unless someone owns them.
    let dropped = last_set.difference(&me.set);
    if !dropped.is_empty() {
        let mut owned = me.set.clone();
        for e in entries.iter().filter(|e| !e.same_manager(&me)) {
            owned = owned.union(&e.set);
        }
        walk::prune(&mut merged, &dropped, Some(&owned), &root, &[]);
        let removed = walk::compare(&live, &merged, &root).removed;
        for e in entries.iter_mut() {
            e.set = e.set.difference(&removed);
        }
    }
    walk::drop_nulls(&mut merged, config, &root);
    if manager == KUBECTL_MANAGER {
        sync_last_applied(&live, config, &mut merged);
    }
    let unchanged = merged == live;
    let mut me = me;
    if unchanged && last_time.is_some() {
        me.time = last_time;
    }
    entries.retain(|e| !e.same_manager(&me));
    entries.push(me);
    write_managed(&mut merged, &mut entries);
    Ok(merged)
}

/// Upstream's lastAppliedManager: kubectl's server-side apply may take the
/// fields its earlier client-side apply recorded in the annotation.
fn allowed_by_last_applied(
    t: &Target,
    live: &Value,
    manager: &str,
    conflicts: &[(usize, Set)],
) -> bool {
    if manager != KUBECTL_MANAGER {
        return false;
    }
    let Some(text) = last_applied(live) else {
        return false;
    };
    let Ok(applied) = serde_json::from_str::<Value>(text) else {
        return false;
    };
    let allowed = t.filter(&walk::field_set(&applied, &t.root()));
    conflicts
        .iter()
        .all(|(_, s)| s.difference(&allowed).is_empty())
}

fn last_applied(obj: &Value) -> Option<&str> {
    obj.get("metadata")?
        .get("annotations")?
        .get(LAST_APPLIED)?
        .as_str()
}

/// Upstream's lastAppliedUpdater: when the object still carries the
/// client-side annotation, kubectl's server-side apply keeps it current.
fn sync_last_applied(live: &Value, config: &Value, merged: &mut Value) {
    if last_applied(live).is_none() {
        return;
    }
    let mut applied = config.clone();
    if let Some(a) = applied
        .get_mut("metadata")
        .and_then(|m| m.get_mut("annotations"))
        .and_then(Value::as_object_mut)
    {
        a.remove(LAST_APPLIED);
    }
    let Ok(text) = serde_json::to_string(&applied) else {
        return;
    };
    if let Some(a) = merged
        .get_mut("metadata")
        .and_then(|m| m.get_mut("annotations"))
        .and_then(Value::as_object_mut)
    {
        a.insert(LAST_APPLIED.into(), text.into());
    }
}

/// Upstream's conflict error: one line for one conflict, else the
/// conflicts grouped by manager.
fn conflict_error(entries: &[Entry], conflicts: &[(usize, Set)]) -> ApplyError {
    let mut list: Vec<(String, String)> = Vec::new();
    for (i, set) in conflicts {
        let who = entries[*i].describe();
        for p in set.paths() {
            list.push((who.clone(), path_string(&p)));
        }
    }
    let causes = list
        .iter()
        .map(|(who, field)| (format!("conflict with {who}"), field.clone()))
        .collect();
    let message = if let [(who, field)] = list.as_slice() {
        format!("Apply failed with 1 conflict: conflict with {who}: {field}")
    } else {
        let mut by: Vec<(&String, Vec<&String>)> = Vec::new();
        for (who, field) in &list {
            match by.iter_mut().find(|(w, _)| *w == who) {
                Some((_, fs)) => fs.push(field),
                None => by.push((who, vec![field])),
            }
        }
        by.sort_by(|a, b| a.0.cmp(b.0));
        let mut lines = Vec::new();
        for (who, fs) in by {
            lines.push(format!("conflicts with {who}:"));
            lines.extend(fs.into_iter().map(|f| format!("- {f}")));
        }
        format!(
            "Apply failed with {} conflicts: {}",
            list.len(),
            lines.join("\n")
        )
    };
    ApplyError::Conflict { message, causes }
}
