//! The resource registry: one entry per served kind (DESIGN decision 1:
//! resources are data). Everything the HTTP layer, discovery, OpenAPI and the
//! in-process client know about a kind comes from its [`Resource`].

mod entries_apps;
mod entries_core;
mod entries_other;
mod strategy;

use std::collections::HashMap;

use serde_json::Value;

pub use strategy::Strategy;

use crate::api::validation::{FieldCause, NameRule};

/// A subresource served under `<resource>/<name>/<sub>`.
#[derive(Debug)]
pub struct Subresource {
    pub name: &'static str,
    /// The kind the subresource speaks; empty for streaming ones (log, exec).
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub verbs: &'static [&'static str],
}

/// One served resource at one group/version.
#[derive(Debug)]
pub struct Resource {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
    pub singular: &'static str,
    pub short_names: &'static [&'static str],
    pub categories: &'static [&'static str],
    pub namespaced: bool,
    pub verbs: &'static [&'static str],
    pub subresources: &'static [Subresource],
    /// OpenAPI definition name of the kind, when we have its schema.
    pub definition: Option<&'static str>,
    /// Storage key segment: objects live under `/registry/<storage>/`.
    /// Two versions of one kind (autoscaling v1/v2, core/events.k8s.io
    /// events) share it and convert through `strategy.convert`.
    pub storage: &'static str,
    pub name_rule: NameRule,
    pub strategy: Strategy,
    /// What a CustomResourceDefinition says of this version; None for
    /// built-in kinds.
    pub custom: Option<&'static crate::api::custom::CustomVersion>,
}

/// Standard verbs of a read-write resource.
pub const RW: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

impl Resource {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `deployments.apps`, `pods`: how upstream names a resource in errors.
    pub fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.to_string()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    pub fn list_kind(&self) -> String {
        format!("{}List", self.kind)
    }

    pub fn has_verb(&self, verb: &str) -> bool {
        self.verbs.contains(&verb)
    }

    pub fn subresource(&self, name: &str) -> Option<&'static Subresource> {
        let subs: &'static [Subresource] = self.subresources;
        subs.iter().find(|s| s.name == name)
    }

    pub fn has_status(&self) -> bool {
        self.subresource("status").is_some()
    }

    /// The storage prefix, with trailing slash.
    pub fn prefix(&self) -> String {
        format!("/registry/{}/", self.storage)
    }

    /// The storage key of one object.
    pub fn key(&self, namespace: Option<&str>, name: &str) -> String {
        match namespace {
            Some(ns) if self.namespaced => format!("/registry/{}/{}/{}", self.storage, ns, name),
            _ => format!("/registry/{}/{}", self.storage, name),
        }
    }

    /// Runs the kind's own validation on top of the metadata rules.
    pub fn validate(&self, obj: &Value) -> Vec<FieldCause> {
        let mut causes = (self.strategy.validate)(obj);
        causes.extend(crate::api::custom::validate(self, obj, None));
        causes
    }

    /// [`Resource::validate`] of an update: CEL transition rules see `old`.
    pub fn validate_change(&self, new: &Value, old: &Value) -> Vec<FieldCause> {
        let mut causes = (self.strategy.validate)(new);
        causes.extend(crate::api::custom::validate(self, new, Some(old)));
        causes
    }
}

/// All served resources, looked up by the ways clients name them.
pub struct Registry {
    all: Vec<&'static Resource>,
    by_path: HashMap<(&'static str, &'static str, &'static str), &'static Resource>,
    by_storage: HashMap<&'static str, Vec<&'static Resource>>,
}

impl Default for Registry {
    fn default() -> Self {
        Self::builtin()
    }
}

impl Registry {
    /// The built-in kinds.
    pub fn builtin() -> Self {
        let mut all: Vec<&'static Resource> = Vec::new();
        all.extend(entries_core::RESOURCES.iter());
        all.extend(entries_apps::RESOURCES.iter());
        all.extend(entries_other::RESOURCES.iter());
        let mut by_path = HashMap::new();
        let mut by_storage: HashMap<&'static str, Vec<&'static Resource>> = HashMap::new();
        for r in &all {
            by_path.insert((r.group, r.version, r.plural), *r);
            by_storage.entry(r.storage).or_default().push(*r);
        }
        Registry {
            all,
            by_path,
            by_storage,
        }
    }

    /// These kinds plus `extra` (custom resources; a built-in path wins).
    pub fn with(mut self, extra: Vec<&'static Resource>) -> Self {
        for r in extra {
            if self.by_path.contains_key(&(r.group, r.version, r.plural)) {
                continue;
            }
            self.all.push(r);
            self.by_path.insert((r.group, r.version, r.plural), r);
            self.by_storage.entry(r.storage).or_default().push(r);
        }
        self
    }

    pub fn all(&self) -> &[&'static Resource] {
        &self.all
    }

    pub fn find(&self, group: &str, version: &str, plural: &str) -> Option<&'static Resource> {
        self.by_path.get(&(group, version, plural)).copied()
    }

    /// Every version served from one storage segment, storage version first.
    pub fn sharing_storage(&self, storage: &str) -> &[&'static Resource] {
        self.by_storage
            .get(storage)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// The group/versions served, in discovery order (preferred first).
    pub fn group_versions(&self) -> Vec<(&'static str, Vec<&'static str>)> {
        let mut out: Vec<(&'static str, Vec<&'static str>)> = Vec::new();
        for r in &self.all {
            match out.iter_mut().find(|(g, _)| *g == r.group) {
                Some((_, versions)) => {
                    if !versions.contains(&r.version) {
                        versions.push(r.version);
                    }
                }
                None => out.push((r.group, vec![r.version])),
            }
        }
        out
    }
}
