//! RBAC policy rules: parsing from objects, matching a request
//! (upstream's `RuleAllows`) and coverage of one rule set by another
//! (upstream's `validation.Covers`, for escalation checks).

use serde_json::{json, Value};

use super::Attributes;

/// One `rbac.authorization.k8s.io/v1` PolicyRule.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rule {
    pub verbs: Vec<String>,
    pub api_groups: Vec<String>,
    pub resources: Vec<String>,
    pub resource_names: Vec<String>,
    pub non_resource_urls: Vec<String>,
}

fn strings(v: &Value, key: &str) -> Vec<String> {
    v.get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

impl Rule {
    pub fn from_json(v: &Value) -> Rule {
        Rule {
            verbs: strings(v, "verbs"),
            api_groups: strings(v, "apiGroups"),
            resources: strings(v, "resources"),
            resource_names: strings(v, "resourceNames"),
            non_resource_urls: strings(v, "nonResourceURLs"),
        }
    }

    /// The rules of a Role or ClusterRole object (`rules: null` = none).
    pub fn all_of(role: &Value) -> Vec<Rule> {
        role.get("rules")
            .and_then(Value::as_array)
            .map(|a| a.iter().map(Rule::from_json).collect())
            .unwrap_or_default()
    }

    pub fn to_json(&self) -> Value {
        let mut m = serde_json::Map::new();
        m.insert("verbs".into(), json!(self.verbs));
        for (key, list) in [
            ("apiGroups", &self.api_groups),
            ("resources", &self.resources),
            ("resourceNames", &self.resource_names),
            ("nonResourceURLs", &self.non_resource_urls),
        ] {
            if !list.is_empty() {
                m.insert(key.into(), json!(list));
            }
        }
        Value::Object(m)
    }

    /// Upstream `RuleAllows`.
    pub fn allows(&self, a: &Attributes) -> bool {
        if !has_or_star(&self.verbs, &a.verb) {
            return false;
        }
        if !a.resource_request {
            return self
                .non_resource_urls
                .iter()
                .any(|u| url_matches(u, &a.path));
        }
        has_or_star(&self.api_groups, &a.api_group)
            && self.resource_matches(&a.resource, &a.subresource)
            && (self.resource_names.is_empty() || self.resource_names.contains(&a.name))
    }

    fn resource_matches(&self, resource: &str, subresource: &str) -> bool {
        let combined;
        let wanted = if subresource.is_empty() {
            resource
        } else {
            combined = format!("{resource}/{subresource}");
            &combined
        };
        self.resources.iter().any(|r| {
            r == "*"
                || r == wanted
                || (!subresource.is_empty()
                    && r.len() == subresource.len() + 2
                    && r.starts_with("*/")
                    && r.ends_with(subresource))
        })
    }

    /// Upstream `PolicyRule.CompactString`, as escalation errors print it.
    pub fn compact_string(&self) -> String {
        let mut parts = Vec::new();
        for (key, list) in [
            ("APIGroups", &self.api_groups),
            ("Resources", &self.resources),
            ("NonResourceURLs", &self.non_resource_urls),
            ("ResourceNames", &self.resource_names),
            ("Verbs", &self.verbs),
        ] {
            if !list.is_empty() {
                parts.push(format!("{key}:{}", go_quote_list(list)));
            }
        }
        format!("{{{}}}", parts.join(", "))
    }

    /// Upstream `breakdownRule`: one rule per group, resource, verb (and
    /// name), or per URL and verb.
    fn breakdown(&self) -> Vec<Rule> {
        let mut out = Vec::new();
        for group in &self.api_groups {
            for resource in &self.resources {
                for verb in &self.verbs {
                    if self.resource_names.is_empty() {
                        out.push(Rule {
                            verbs: vec![verb.clone()],
                            api_groups: vec![group.clone()],
                            resources: vec![resource.clone()],
                            ..Rule::default()
                        });
                    }
                    for name in &self.resource_names {
                        out.push(Rule {
                            verbs: vec![verb.clone()],
                            api_groups: vec![group.clone()],
                            resources: vec![resource.clone()],
                            resource_names: vec![name.clone()],
                            ..Rule::default()
                        });
                    }
                }
            }
        }
        for url in &self.non_resource_urls {
            for verb in &self.verbs {
                out.push(Rule {
                    verbs: vec![verb.clone()],
                    non_resource_urls: vec![url.clone()],
                    ..Rule::default()
                });
            }
        }
        out
    }

    /// Upstream `ruleCovers`: this (owner) rule grants all of `sub`.
    fn covers(&self, sub: &Rule) -> bool {
        let verbs =
            self.verbs.iter().any(|v| v == "*") || sub.verbs.iter().all(|v| self.verbs.contains(v));
        let groups = self.api_groups.iter().any(|g| g == "*")
            || sub.api_groups.iter().all(|g| self.api_groups.contains(g));
        let resources = sub
            .resources
            .iter()
            .all(|r| self.resources.iter().any(|o| resource_covers(o, r)));
        let urls = sub
            .non_resource_urls
            .iter()
            .all(|u| self.non_resource_urls.iter().any(|o| url_covers(o, u)));
        let names = self.resource_names.is_empty()
            || sub
                .resource_names
                .iter()
                .all(|n| self.resource_names.contains(n));
        // A sub-rule without names needs an owner without names.
        let names = names && (!sub.resource_names.is_empty() || self.resource_names.is_empty());
        verbs && groups && resources && urls && names
    }
}

fn has_or_star(list: &[String], wanted: &str) -> bool {
    list.iter().any(|v| v == "*" || v == wanted)
}

fn url_matches(rule: &str, path: &str) -> bool {
    if rule == "*" || rule == path {
        return true;
    }
    rule.strip_suffix('*')
        .is_some_and(|prefix| path.starts_with(prefix))
}

fn resource_covers(owner: &str, wanted: &str) -> bool {
    if owner == "*" || owner == wanted {
        return true;
    }
    // `*/status` covers `pods/status`.
    match (owner.strip_prefix("*/"), wanted.split_once('/')) {
        (Some(sub), Some((_, wanted_sub))) => sub == wanted_sub,
        _ => false,
    }
}

fn url_covers(owner: &str, wanted: &str) -> bool {
    if owner == wanted {
        return true;
    }
    owner
        .strip_suffix('*')
        .is_some_and(|prefix| wanted.starts_with(prefix))
}

/// Go's `%q` of a `[]string`: `["a" "b"]`.
fn go_quote_list(list: &[String]) -> String {
    let quoted: Vec<String> = list
        .iter()
        .map(|s| crate::api::validation::go_quote(s))
        .collect();
    format!("[{}]", quoted.join(" "))
}

/// The parts of `wanted` no rule of `owner` grants (upstream `Covers`),
/// empty when all are held.
pub fn uncovered(owner: &[Rule], wanted: &[Rule]) -> Vec<Rule> {
    wanted
        .iter()
        .flat_map(Rule::breakdown)
        .filter(|sub| !owner.iter().any(|o| o.covers(sub)))
        .collect()
}

/// Upstream's `rulesToString` of missing rules: rules differing only in
/// their verb merged (`CompactRules`), sorted, one per line.
pub fn rules_to_string(rules: &[Rule]) -> String {
    let mut compact: Vec<Rule> = Vec::new();
    for r in rules {
        let simple = r.non_resource_urls.is_empty()
            && r.resource_names.is_empty()
            && r.api_groups.len() == 1
            && r.resources.len() == 1;
        let merged = simple
            && compact.iter_mut().any(|c| {
                let same = c.non_resource_urls.is_empty()
                    && c.resource_names.is_empty()
                    && c.api_groups == r.api_groups
                    && c.resources == r.resources;
                if same {
                    for v in &r.verbs {
                        if !c.verbs.contains(v) {
                            c.verbs.push(v.clone());
                        }
                    }
                }
                same
            });
        if !merged {
            compact.push(r.clone());
        }
    }
    let mut lines: Vec<String> = compact.iter().map(Rule::compact_string).collect();
    // Upstream sorts by the rule's String(); the compact forms sort alike.
    lines.sort();
    lines.dedup();
    lines.join("\n")
}

/// The rules of an aggregated ClusterRole (upstream's aggregation
/// controller): the unique rules of every other ClusterRole its
/// `aggregationRule.clusterRoleSelectors` select, selector by selector,
/// roles by name. `None` when `role` has no aggregation rule.
pub fn aggregate(role: &Value, all: &[std::sync::Arc<Value>]) -> Option<Vec<Value>> {
    let selectors = role
        .pointer("/aggregationRule/clusterRoleSelectors")?
        .as_array()?;
    let name = role.pointer("/metadata/name").and_then(Value::as_str);
    let mut sorted: Vec<&Value> = all.iter().map(|r| &**r).collect();
    sorted.sort_by_key(|r| r.pointer("/metadata/name").and_then(Value::as_str));
    let mut rules: Vec<Value> = Vec::new();
    for selector in selectors {
        // A selector that does not parse selects nothing (upstream errs).
        let Ok(sel) = crate::api::selector::LabelSelector::from_json(selector) else {
            continue;
        };
        for other in &sorted {
            if other.pointer("/metadata/name").and_then(Value::as_str) == name
                || !sel.matches_object(other)
            {
                continue;
            }
            let list = other.get("rules").and_then(Value::as_array);
            for rule in list.into_iter().flatten() {
                let parsed = Rule::from_json(rule);
                if !rules.iter().any(|r| Rule::from_json(r) == parsed) {
                    rules.push(parsed.to_json());
                }
            }
        }
    }
    Some(rules)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(v: Value) -> Rule {
        Rule::from_json(&v)
    }

    fn attrs(verb: &str, group: &str, resource: &str, sub: &str, name: &str) -> Attributes {
        Attributes {
            verb: verb.into(),
            resource_request: true,
            api_group: group.into(),
            resource: resource.into(),
            subresource: sub.into(),
            name: name.into(),
            ..Attributes::default()
        }
    }

    #[test]
    fn matches_like_upstream() {
        let r =
            rule(json!({"apiGroups": [""], "resources": ["pods", "*/status"], "verbs": ["get"]}));
        assert!(r.allows(&attrs("get", "", "pods", "", "")));
        assert!(r.allows(&attrs("get", "", "nodes", "status", "")));
        assert!(!r.allows(&attrs("get", "", "pods", "log", "")));
        assert!(!r.allows(&attrs("list", "", "pods", "", "")));
        assert!(!r.allows(&attrs("get", "apps", "pods", "", "")));
        let named = rule(
            json!({"apiGroups": ["*"], "resources": ["*"], "resourceNames": ["x"], "verbs": ["*"]}),
        );
        assert!(named.allows(&attrs("delete", "apps", "deployments", "", "x")));
        assert!(!named.allows(&attrs("delete", "apps", "deployments", "", "y")));
        assert!(!named.allows(&attrs("list", "apps", "deployments", "", "")));
        let urls = rule(json!({"nonResourceURLs": ["/apis/*", "/version"], "verbs": ["get"]}));
        let path = |p: &str| Attributes {
            verb: "get".into(),
            path: p.into(),
            ..Attributes::default()
        };
        assert!(urls.allows(&path("/apis/apps/v1")));
        assert!(urls.allows(&path("/version")));
        assert!(!urls.allows(&path("/version/x")));
        assert!(!urls.allows(&path("/api")));
    }

    #[test]
    fn coverage_and_message() {
        let owner = vec![rule(
            json!({"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]}),
        )];
        let wanted = vec![rule(
            json!({"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "delete", "patch"]}),
        )];
        let missing = uncovered(&owner, &wanted);
        assert_eq!(
            rules_to_string(&missing),
            r#"{APIGroups:[""], Resources:["pods"], Verbs:["delete" "patch"]}"#
        );
        let admin = vec![rule(
            json!({"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}),
        )];
        assert!(uncovered(&admin, &wanted).is_empty());
        let named = vec![rule(
            json!({"apiGroups": [""], "resources": ["pods"], "resourceNames": ["a"], "verbs": ["get"]}),
        )];
        let get_all = vec![rule(
            json!({"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}),
        )];
        assert_eq!(uncovered(&named, &get_all).len(), 1);
        assert!(uncovered(&get_all, &named).is_empty());
    }
}
