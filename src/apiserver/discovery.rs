//! Discovery documents (`/version`, `/api`, `/apis`, resource lists and
//! aggregated apidiscovery.k8s.io v2/v2beta1), all from the registry so they
//! cannot announce what is not served. Shapes, field presence and order
//! follow kube-apiserver v1.33: client-go caches them, kubectl prints them.

use base64::Engine;
use serde_json::{json, Value};

use crate::api::registry::{Registry, Resource, Subresource};

/// Build metadata after `+` names the distribution (as k3s does), so
/// `kubectl version` and skew checks still read a plain v1.33.
const GIT_VERSION: &str = concat!("v1.33.0+nanokube-", env!("CARGO_PKG_VERSION"));
const DISCOVERY_GROUP: &str = "apidiscovery.k8s.io";
const DISCOVERY_KIND: &str = "APIGroupDiscoveryList";

/// Upstream's group order (APIService priorities, ties by name) as `/apis` and `kubectl
/// api-resources` show it: the aggregator's own group leads, unnamed ones (CRDs) trail by name.
const GROUP_ORDER: &str = "apiregistration.k8s.io apps events.k8s.io authentication.k8s.io \
    authorization.k8s.io autoscaling batch certificates.k8s.io networking.k8s.io policy \
    rbac.authorization.k8s.io storage.k8s.io admissionregistration.k8s.io apiextensions.k8s.io \
    scheduling.k8s.io coordination.k8s.io node.k8s.io discovery.k8s.io resource.k8s.io \
    flowcontrol.apiserver.k8s.io internal.apiserver.k8s.io storagemigration.k8s.io";

/// `/version`.
pub fn version_info() -> Value {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other, // arm, riscv64, s390x: Rust and Go spell them alike
    };
    json!({
        "major": "1", "minor": "33",
        "emulationMajor": "1", "emulationMinor": "33",
        "minCompatibilityMajor": "1", "minCompatibilityMinor": "32",
        "gitVersion": GIT_VERSION, "gitTreeState": "clean",
        "gitCommit": option_env!("NANOKUBE_GIT_COMMIT").unwrap_or(""),
        "buildDate": option_env!("NANOKUBE_BUILD_DATE").unwrap_or("1970-01-01T00:00:00Z"),
        // Go fields as v1.33 release binaries report them, for tools that read them.
        "goVersion": "go1.24.2", "compiler": "gc",
        "platform": format!("{}/{arch}", std::env::consts::OS),
    })
}

/// `/api`. Upstream writes it without apiVersion.
pub fn legacy_versions(server_address: &str) -> Value {
    let cidr = json!({"clientCIDR": "0.0.0.0/0", "serverAddress": server_address});
    json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [cidr]})
}

/// Groups with their versions (preferred first) in upstream order: the core
/// group alone when `core`, else the named groups.
fn groups(reg: &Registry, core: bool) -> Vec<(&'static str, Vec<&'static str>)> {
    let mut groups = reg.group_versions();
    groups.retain(|(g, _)| g.is_empty() == core);
    let rank = |g: &str| GROUP_ORDER.split_whitespace().position(|known| known == g);
    groups.sort_by_key(|(g, _)| (rank(g).unwrap_or(usize::MAX), *g));
    groups
}

fn group_version(group: &str, version: &str) -> String {
    let sep = if group.is_empty() { "" } else { "/" };
    format!("{group}{sep}{version}")
}

fn api_group(group: &str, versions: &[&str]) -> Value {
    let entry = |v: &str| json!({"groupVersion": group_version(group, v), "version": v});
    let listed: Vec<Value> = versions.iter().map(|v| entry(v)).collect();
    let preferred = versions.first().map(|v| entry(v)).unwrap_or(Value::Null);
    json!({"name": group, "versions": listed, "preferredVersion": preferred})
}

/// `/apis`.
pub fn group_list(reg: &Registry) -> Value {
    let groups = groups(reg, false).into_iter();
    let groups: Vec<Value> = groups.map(|(g, vs)| api_group(g, &vs)).collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/apis/<group>`; `None` for a group we do not serve (core lives at `/api`).
pub fn group(reg: &Registry, group: &str) -> Option<Value> {
    let (name, versions) = groups(reg, false).into_iter().find(|(g, _)| *g == group)?;
    let mut doc = api_group(name, &versions);
    doc["kind"] = json!("APIGroup");
    doc["apiVersion"] = json!("v1");
    Some(doc)
}

/// The entries at one group/version, by plural as upstream sorts its paths.
fn resources_at(reg: &Registry, group: &str, version: &str) -> Vec<&'static Resource> {
    let mut found = reg.all().to_vec();
    found.retain(|r| r.group == group && r.version == version);
    found.sort_by_key(|r| r.plural);
    found
}

fn sorted(verbs: &[&'static str]) -> Vec<&'static str> {
    let mut v = verbs.to_vec();
    v.sort_unstable(); // upstream lists verbs sorted
    v
}

fn sorted_subresources(r: &Resource) -> Vec<&'static Subresource> {
    let mut subs: Vec<&'static Subresource> = r.subresources.iter().collect();
    subs.sort_by_key(|s| s.name);
    subs
}

/// Upstream names a subresource's group/version only when its kind lives elsewhere
/// (deployments/scale speaks autoscaling/v1 Scale); status subresources leave both empty.
fn foreign_gv(parent: &Resource, sub: &Subresource) -> Option<(&'static str, &'static str)> {
    let same = sub.group == parent.group && sub.version == parent.version;
    (!same && !sub.kind.is_empty()).then_some((sub.group, sub.version))
}

/// Base64 of the first 8 bytes of sha256("group/version/kind") of the storage
/// version: upstream's token for storage migrators (kubectl ignores it).
fn storage_version_hash(group: &str, version: &str, kind: &str) -> Option<String> {
    use rustls::crypto::ring::cipher_suite::TLS13_AES_128_GCM_SHA256;
    // SHA-256 from rustls's ring provider, linked for TLS: no hash crate is a direct dependency.
    let rustls::SupportedCipherSuite::Tls13(suite) = TLS13_AES_128_GCM_SHA256 else {
        return None;
    };
    let gvk = format!("{group}/{version}/{kind}");
    let digest = suite.common.hash_provider.hash(gvk.as_bytes());
    let head = digest.as_ref().get(..8)?;
    Some(base64::engine::general_purpose::STANDARD.encode(head))
}

/// Only stored, watchable resources carry a hash upstream; virtual ones
/// (bindings, reviews) do not. Versions sharing storage share the hash.
fn hash_for(reg: &Registry, r: &Resource) -> Option<String> {
    (r.has_verb("watch") && !r.storage.is_empty()).then_some(())?;
    let stored = reg.sharing_storage(r.storage).first().copied().unwrap_or(r);
    storage_version_hash(stored.group, stored.version, stored.kind)
}

/// Adds shortNames and categories, which upstream omits when empty.
fn put_names(doc: &mut Value, r: &Resource) {
    for (key, items) in [("shortNames", r.short_names), ("categories", r.categories)] {
        if !items.is_empty() {
            doc[key] = json!(items);
        }
    }
}

/// `/api/v1` and `/apis/<group>/<version>`: an APIResourceList; `None` when nothing is there.
pub fn resource_list(reg: &Registry, group: &str, version: &str) -> Option<Value> {
    let found = Some(resources_at(reg, group, version)).filter(|f| !f.is_empty())?;
    let mut entries: Vec<(String, Value)> = Vec::new();
    for r in found {
        let mut main = json!({"name": r.plural, "singularName": r.singular,
            "namespaced": r.namespaced, "kind": r.kind, "verbs": sorted(r.verbs)});
        put_names(&mut main, r);
        if let Some(hash) = hash_for(reg, r) {
            main["storageVersionHash"] = json!(hash);
        }
        entries.push((r.plural.to_string(), main));
        for sub in sorted_subresources(r) {
            let name = format!("{}/{}", r.plural, sub.name);
            // Subresources have an empty singularName upstream.
            let mut e = json!({"name": name, "singularName": "", "namespaced": r.namespaced,
                "kind": sub.kind, "verbs": sorted(sub.verbs)});
            if let Some((g, v)) = foreign_gv(r, sub) {
                (e["group"], e["version"]) = (json!(g), json!(v));
            }
            entries.push((name, e));
        }
    }
    // Upstream sorts full paths: "pods/status" between "pods" and "podtemplates".
    entries.sort_by(|(a, _), (b, _)| a.cmp(b));
    let resources: Vec<Value> = entries.into_iter().map(|(_, v)| v).collect();
    let mut doc = json!({"kind": "APIResourceList", "groupVersion": group_version(group, version),
        "resources": resources});
    // Group lists carry apiVersion "v1"; upstream writes the core one without.
    if !group.is_empty() {
        doc["apiVersion"] = json!("v1");
    }
    Some(doc)
}

/// Which apidiscovery.k8s.io version an aggregated answer speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregated {
    V2,
    V2Beta1,
}

fn aggregated_resource(r: &Resource) -> Value {
    let subs: Vec<Value> = sorted_subresources(r)
        .into_iter()
        .map(|sub| {
            let (g, v) = foreign_gv(r, sub).unwrap_or(("", ""));
            // client-go drops subresources whose responseKind is empty.
            let kind = json!({"group": g, "version": v, "kind": sub.kind});
            json!({"subresource": sub.name, "responseKind": kind, "verbs": sorted(sub.verbs)})
        })
        .collect();
    // Upstream fills responseKind from the APIResource, whose group and
    // version are empty for a kind of the list's own group/version.
    let kind = json!({"group": "", "version": "", "kind": r.kind});
    let mut doc = json!({"resource": r.plural, "responseKind": kind,
        "scope": if r.namespaced { "Namespaced" } else { "Cluster" },
        "singularResource": r.singular, "verbs": sorted(r.verbs)});
    put_names(&mut doc, r);
    if !subs.is_empty() {
        doc["subresources"] = Value::Array(subs);
    }
    doc
}

fn aggregated_group(reg: &Registry, group: &str, versions: &[&str]) -> Value {
    let versions: Vec<Value> = versions
        .iter()
        .map(|v| {
            let resources = resources_at(reg, group, v).into_iter();
            let resources: Vec<Value> = resources.map(aggregated_resource).collect();
            json!({"version": v, "resources": resources, "freshness": "Current"})
        })
        .collect();
    // The core group's name is empty, which upstream omits.
    let meta = match group {
        "" => json!({"creationTimestamp": null}),
        name => json!({"name": name, "creationTimestamp": null}),
    };
    json!({"metadata": meta, "versions": versions})
}

/// Aggregated discovery as an APIGroupDiscoveryList: for `/api` (`legacy`)
/// the one core item, for `/apis` every named group.
pub fn aggregated(reg: &Registry, legacy: bool, which: Aggregated) -> Value {
    let items = groups(reg, legacy).into_iter();
    let items: Vec<Value> = items.map(|(g, vs)| aggregated_group(reg, g, &vs)).collect();
    let v2 = which == Aggregated::V2;
    let version = if v2 { "v2" } else { "v2beta1" };
    json!({"kind": DISCOVERY_KIND, "apiVersion": format!("{DISCOVERY_GROUP}/{version}"),
        "metadata": {}, "items": items})
}

/// Reads an Accept header in the client's order: `Some` when aggregated
/// discovery is the first acceptable entry, `None` for the plain document.
/// Entries we cannot produce (protobuf; unknown parameters, as upstream) are skipped.
pub fn wants_aggregated(accept: &str) -> Option<Aggregated> {
    for entry in accept.split(',') {
        let mut parts = entry.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let mut ok = matches!(media.as_str(), "application/json" | "application/*" | "*/*");
        let (mut g, mut v, mut as_kind) = ("", "", "");
        for (key, val) in parts.filter_map(|p| p.split_once('=')) {
            match (key.trim(), val.trim()) {
                ("g", x) => g = x,
                ("v", x) => v = x,
                ("as", x) => as_kind = x,
                // kubectl 1.35+ asks for "nopeer" first; a lone server's answer is that.
                ("profile", "nopeer") => {}
                ("q", q) => ok &= q.parse::<f32>().map_or(true, |q| q > 0.0),
                _ => ok = false,
            }
        }
        match (ok, g, v, as_kind) {
            (true, "", "", "") => return None,
            (true, DISCOVERY_GROUP, "v2", DISCOVERY_KIND) => return Some(Aggregated::V2),
            (true, DISCOVERY_GROUP, "v2beta1", DISCOVERY_KIND) => return Some(Aggregated::V2Beta1),
            _ => {}
        }
    }
    None
}

/// The Content-Type of an aggregated answer, which client-go checks to pick a decoder.
/// Send `Vary: Accept` with it, as upstream does: one path answers in two shapes.
pub fn aggregated_content_type(which: Aggregated) -> &'static str {
    let v2 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";
    let beta = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList";
    match which {
        Aggregated::V2 => v2,
        Aggregated::V2Beta1 => beta,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The element of `arr` whose `key` is `name`, or Null.
    fn pick<'a>(arr: &'a Value, key: &str, name: &str) -> &'a Value {
        let items = arr.as_array().map(Vec::as_slice).unwrap_or(&[]);
        let found = items.iter().find(|e| e[key] == name);
        found.unwrap_or(&Value::Null)
    }

    #[test]
    fn resource_lists_and_groups_match_upstream() {
        let reg = Registry::builtin();
        let core = resource_list(&reg, "", "v1").unwrap_or_default();
        let apps = resource_list(&reg, "apps", "v1").unwrap_or_default();
        let hash = "storageVersionHash";
        // Hashes as kube-apiserver publishes them for v1 Pod, apps/v1 DaemonSet.
        let rows = [
            (&core, "pods", "shortNames", json!(["po"])),
            (&core, "pods", hash, json!("xPOwRZ+Yhw8=")),
            (&core, "pods/status", "kind", json!("Pod")),
            (&core, "pods/status", "group", Value::Null),
            (&core, "pods/log", "verbs", json!(["get"])),
            (&core, "pods/eviction", "group", json!("policy")),
            (&core, "bindings", hash, Value::Null),
            (&apps, "deployments/scale", "group", json!("autoscaling")),
            (&apps, "deployments/scale", "version", json!("v1")),
            (&apps, "deployments/scale", "kind", json!("Scale")),
            (&apps, "deployments/scale", "singularName", json!("")),
            (&apps, "daemonsets", hash, json!("dd7pWHUlMKQ=")),
        ];
        for (list, name, field, want) in rows {
            let got = &pick(&list["resources"], "name", name)[field];
            assert_eq!(*got, want, "{name} {field}");
        }
        assert_eq!(core.get("apiVersion"), None);
        assert_eq!(apps["apiVersion"], "v1");
        let all = core["resources"].as_array().cloned().unwrap_or_default();
        let at = |n: &str| all.iter().position(|r| r["name"] == n);
        assert!(at("pods").is_some() && at("pods") < at("pods/log"));
        assert!(at("pods/status") < at("podtemplates"));
        assert!(resource_list(&reg, "apps", "v2").is_none());
        let list = group_list(&reg);
        let all = list["groups"].as_array().cloned().unwrap_or_default();
        let at = |n: &str| all.iter().position(|g| g["name"] == n);
        assert_eq!((at("apps"), at("")), (Some(0), None));
        assert!(at("events.k8s.io") < at("autoscaling") && at("autoscaling") < at("batch"));
        let (v2, v1) = (
            json!({"groupVersion": "autoscaling/v2", "version": "v2"}),
            json!({"groupVersion": "autoscaling/v1", "version": "v1"}),
        );
        let want = json!({"kind": "APIGroup", "apiVersion": "v1", "name": "autoscaling",
            "versions": [v2, v1], "preferredVersion": v2});
        assert_eq!(group(&reg, "autoscaling"), Some(want));
        assert!(group(&reg, "x.io").is_none() && group(&reg, "").is_none());
    }

    #[test]
    fn aggregated_has_every_group_version_resource_and_subresource() {
        let reg = Registry::builtin();
        let doc = aggregated(&reg, false, Aggregated::V2);
        assert_eq!(doc["apiVersion"], "apidiscovery.k8s.io/v2");
        let named = groups(&reg, false);
        assert_eq!(doc["items"].as_array().map(Vec::len), Some(named.len()));
        for (i, (g, versions)) in named.iter().enumerate() {
            assert_eq!(doc["items"][i]["metadata"]["name"], *g);
            for (j, v) in versions.iter().enumerate() {
                let served = &doc["items"][i]["versions"][j];
                assert_eq!(served["version"], *v);
                // Resources plus subresources: the plain list's entries.
                let res = served["resources"].as_array().cloned().unwrap_or_default();
                let subs = res.iter().filter_map(|r| r["subresources"].as_array());
                let total = res.len() + subs.map(Vec::len).sum::<usize>();
                let plain = resource_list(&reg, g, v).unwrap_or_default();
                assert_eq!(Some(total), plain["resources"].as_array().map(Vec::len));
            }
        }
        let apps = &doc["items"][0]["versions"][0]["resources"];
        let deploy = pick(apps, "resource", "deployments");
        let scale = pick(&deploy["subresources"], "subresource", "scale");
        let want = json!({"group": "autoscaling", "version": "v1", "kind": "Scale"});
        assert_eq!(scale["responseKind"], want);
        let core = aggregated(&reg, true, Aggregated::V2Beta1);
        assert_eq!(core["apiVersion"], "apidiscovery.k8s.io/v2beta1");
        assert_eq!(core["items"].as_array().map(Vec::len), Some(1));
        assert_eq!(core["items"][0]["metadata"].get("name"), None);
        let core_res = &core["items"][0]["versions"][0]["resources"];
        let pod = json!({"group": "", "version": "", "kind": "Pod"});
        assert_eq!(pick(core_res, "resource", "pods")["responseKind"], pod);
        assert_eq!(pick(core_res, "resource", "nodes")["scope"], "Cluster");
    }

    #[test]
    fn accept_negotiation_and_version() {
        const AGG: &str = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";
        let beta = AGG.replace("v=v2", "v=v2beta1");
        let proto = AGG.replace("application/json", "application/vnd.kubernetes.protobuf");
        let kubectl = format!("{AGG},{beta},application/json");
        let (v2, v2beta1) = (Some(Aggregated::V2), Some(Aggregated::V2Beta1));
        let rows = [
            (kubectl.clone(), v2),
            (format!("{beta}, application/json"), v2beta1),
            (format!("{AGG};profile=nopeer,{beta}"), v2),
            (format!("{proto},{beta}"), v2beta1),
            ("application/json".into(), None),
            ("*/*".into(), None),
            (format!("application/json,{AGG}"), None),
            (AGG.replace("v2", "v3"), None),
        ];
        for (accept, want) in rows {
            assert_eq!(wants_aggregated(&accept), want, "{accept}");
        }
        assert_eq!(aggregated_content_type(Aggregated::V2), AGG);
        let git = version_info()["gitVersion"]
            .as_str()
            .map(|v| v.starts_with("v1.33.0+"));
        assert_eq!(git, Some(true));
    }
}
