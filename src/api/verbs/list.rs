//! list: from the watch cache (consistent, or "any" with
//! resourceVersion=0), or from the datastore for exact revisions and the
//! later pages of a paginated list (consistent snapshots through MVCC).

use std::sync::Arc;

use base64::Engine;
use serde_json::{json, Value};

use super::{scoped, served, store_error};
use crate::api::error::ApiError;
use crate::api::registry::Resource;
use crate::api::{Api, ListOptions, ListResult};

const TOO_OLD_CONTINUE: &str = "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.";

/// Where a paginated list continues: the revision of its snapshot and the
/// last key served (relative to the resource prefix).
struct Continue {
    revision: i64,
    after: String,
}

fn encode_continue(revision: i64, after: &str) -> String {
    let token = json!({"v": "meta.k8s.io/v1", "rv": revision, "start": format!("{after}\u{0}")});
    base64::engine::general_purpose::URL_SAFE.encode(token.to_string())
}

fn decode_continue(token: &str) -> Result<Continue, ApiError> {
    let bad = || {
        ApiError::BadRequest("continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)".into())
    };
    let bytes = base64::engine::general_purpose::URL_SAFE
        .decode(token)
        .or_else(|_| base64::engine::general_purpose::STANDARD.decode(token))
        .map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    let revision = v
        .get("rv")
        .and_then(Value::as_i64)
        .filter(|r| *r > 0)
        .ok_or_else(bad)?;
    let start = v.get("start").and_then(Value::as_str).ok_or_else(bad)?;
    let after = start.strip_suffix('\u{0}').unwrap_or(start);
    if after.contains("..") || after.starts_with('/') {
        return Err(bad());
    }
    Ok(Continue {
        revision,
        after: after.to_string(),
    })
}

fn parse_rv(s: &str) -> Result<i64, ApiError> {
    s.parse::<i64>()
        .ok()
        .filter(|r| *r >= 0)
        .ok_or_else(|| ApiError::BadRequest(format!("invalid resource version: {s}")))
}

impl Api {
    pub async fn list(
        &self,
        r: &'static Resource,
        namespace: Option<&str>,
        opts: &ListOptions,
    ) -> Result<ListResult, ApiError> {
        if !r.has_verb("list") {
            return Err(ApiError::MethodNotAllowed);
        }
        opts.field_selector
            .check_supported(r.group, r.plural)
            .map_err(|e| ApiError::BadRequest(e.to_string()))?;
        let namespace = scoped(r, namespace);
        if let Some(token) = opts.continue_token.as_deref().filter(|t| !t.is_empty()) {
            let cont = decode_continue(token)?;
            if cont.revision < self.store.compact_revision() {
                return Err(ApiError::Gone(TOO_OLD_CONTINUE.into()));
            }
            return self
                .list_from_db(r, namespace, opts, cont.revision, Some(&cont.after))
                .await;
        }
        let rv = opts.resource_version.as_deref().filter(|s| !s.is_empty());
        let exact = opts.resource_version_match == "Exact";
        match (rv, opts.resource_version_match.as_str()) {
            (None, "") | (Some(_), "") | (Some(_), "NotOlderThan") | (Some(_), "Exact") => {}
            (None, m) => {
                return Err(ApiError::BadRequest(format!(
                    "resourceVersionMatch \"{m}\" is forbidden unless resourceVersion is provided"
                )))
            }
            (_, m) => {
                return Err(ApiError::BadRequest(format!(
                    "resourceVersionMatch \"{m}\" is not supported: supported values: \"Exact\", \"NotOlderThan\""
                )))
            }
        }
        let global = match rv {
            None => self.store.sync().await.map_err(|e| store_error(r, "", e))?,
            Some(s) => {
                let wanted = parse_rv(s)?;
                if exact && wanted > 0 {
                    if wanted < self.store.compact_revision() {
                        return Err(ApiError::Gone(format!(
                            "too old resource version: {wanted} ({})",
                            self.store.compact_revision()
                        )));
                    }
                    return self.list_from_db(r, namespace, opts, wanted, None).await;
                }
                self.store
                    .wait_for(wanted)
                    .await
                    .map_err(|e| store_error(r, "", e))?;
                self.store.cache_revision()
            }
        };
        let cache = self
            .store
            .cache(r.storage)
            .ok_or_else(|| ApiError::internal(format!("no cache for {}", r.storage)))?;
        // `--field-selector metadata.name=x` (kubectl wait, delete --wait):
        // one lookup instead of a scan.
        let (stored, revision) = match opts.field_selector.exact_value("metadata.name") {
            Some(name) => {
                let (found, revision) = cache.get_at(&super::suffix(r, namespace, name), global);
                (found.into_iter().collect(), revision)
            }
            None => cache.snapshot(namespace, None, global),
        };
        // Through a webhook, selectors see the stored objects (custom
        // resources select on metadata only, which conversion keeps, as
        // upstream's cacher) and only the page is converted, in one call.
        let webhook = crate::api::custom::by_webhook(r);
        let mut items = Vec::new();
        let mut keys = Vec::new();
        for s in stored {
            let obj = if webhook {
                s.object.clone()
            } else {
                served(r, &s.object)
            };
            if self.matches(r, opts, &obj) {
                keys.push(item_key(r, &obj));
                items.push(obj);
            }
        }
        let mut page = paginate(items, keys, revision, opts);
        if webhook {
            page.items = self.serve_all(r, page.items).await?;
        }
        Ok(page)
    }

    fn matches(&self, r: &Resource, opts: &ListOptions, obj: &Value) -> bool {
        (opts.label_selector.is_everything() || opts.label_selector.matches_object(obj))
            && (opts.field_selector.is_everything()
                || opts.field_selector.matches(r.group, r.plural, obj))
    }

    /// Reads a list page from the datastore at `revision`, after the key
    /// `after` when continuing.
    async fn list_from_db(
        &self,
        r: &'static Resource,
        namespace: Option<&str>,
        opts: &ListOptions,
        revision: i64,
        after: Option<&str>,
    ) -> Result<ListResult, ApiError> {
        let mut prefix = r.prefix();
        if let Some(ns) = namespace {
            prefix.push_str(ns);
            prefix.push('/');
        }
        let mut start = match after {
            Some(a) => format!("{}{a}\u{0}", r.prefix()),
            None => prefix.clone(),
        };
        let want = if opts.limit > 0 {
            opts.limit as usize
        } else {
            usize::MAX
        };
        let webhook = crate::api::custom::by_webhook(r);
        let mut items = Vec::new();
        let mut keys = Vec::new();
        let chunk = if opts.limit > 0 {
            (opts.limit * 2).clamp(64, 5000)
        } else {
            0
        };
        let more_left = loop {
            let (page, _, more) = self
                .store
                .read_range(&prefix, &start, revision, chunk)
                .await
                .map_err(|e| store_error(r, "", e))?;
            let last = page.last().map(|(k, _)| k.clone());
            let mut overflow = false;
            for (key, obj) in page {
                let obj = if webhook {
                    Arc::new(obj)
                } else {
                    served(r, &Arc::new(obj))
                };
                if self.matches(r, opts, &obj) {
                    if items.len() == want {
                        overflow = true;
                        break;
                    }
                    keys.push(key[r.prefix().len()..].to_string());
                    items.push(obj);
                }
            }
            if overflow {
                break true;
            }
            match last {
                Some(k) if more => start = format!("{k}\u{0}"),
                _ => break false,
            }
        };
        let continue_token = if more_left {
            keys.last().map(|k| encode_continue(revision, k))
        } else {
            None
        };
        if webhook {
            items = self.serve_all(r, items).await?;
        }
        Ok(ListResult {
            items,
            resource_version: revision,
            continue_token,
            remaining: None,
        })
    }
}

/// The key of an object relative to its resource prefix.
fn item_key(r: &Resource, obj: &Value) -> String {
    let meta = obj.get("metadata");
    let name = meta
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("");
    match meta
        .and_then(|m| m.get("namespace"))
        .and_then(Value::as_str)
    {
        Some(ns) if r.namespaced => format!("{ns}/{name}"),
        _ => name.to_string(),
    }
}

fn paginate(
    mut items: Vec<Arc<Value>>,
    keys: Vec<String>,
    revision: i64,
    opts: &ListOptions,
) -> ListResult {
    if opts.limit <= 0 || items.len() as i64 <= opts.limit {
        return ListResult {
            items,
            resource_version: revision,
            continue_token: None,
            remaining: None,
        };
    }
    let limit = opts.limit as usize;
    let remaining = (items.len() - limit) as i64;
    items.truncate(limit);
    let selectors = opts.label_selector.is_everything() && opts.field_selector.is_everything();
    ListResult {
        items,
        resource_version: revision,
        continue_token: Some(encode_continue(revision, &keys[limit - 1])),
        remaining: selectors.then_some(remaining),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_tokens_round_trip_and_reject_garbage() {
        let t = encode_continue(42, "default/web");
        let c = decode_continue(&t)
            .map_err(|e| e.to_string())
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((c.revision, c.after.as_str()), (42, "default/web"));
        assert!(decode_continue("%%%").is_err());
        assert!(
            decode_continue(&base64::engine::general_purpose::URL_SAFE.encode("{\"rv\":0}"))
                .is_err()
        );
    }
}
