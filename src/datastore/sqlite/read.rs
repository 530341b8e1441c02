//! Range evaluation, shared by readers (at the committed revision) and by the
//! writer (inside a transaction, where the batch's own writes are visible).
//!
//! Phase one picks rows from the in-memory index under its read lock; phase
//! two fetches values from SQLite with the lock released, so a slow read never
//! holds up the writer.

use std::sync::RwLock;

use crate::datastore::error::{Error, Result};
use crate::datastore::index::{Index, Version};
use crate::datastore::types::{KeyValue, RangeRequest, RangeResponse, SortOrder, SortTarget};

/// Fetches the value of a row; `None` when compaction removed it meanwhile.
pub type Fetch<'a> = dyn FnMut(i64) -> Result<Option<Vec<u8>>> + 'a;

pub fn kv_of(key: &[u8], v: &Version, value: Vec<u8>) -> KeyValue {
    KeyValue {
        key: key.to_vec(),
        value,
        create_revision: v.create_revision,
        mod_revision: v.mod_revision(),
        version: v.version,
        lease: v.lease,
    }
}

/// Checks a requested read revision against the store's bounds.
pub fn read_revision(requested: i64, current: i64, compacted: i64) -> Result<i64> {
    if requested <= 0 {
        return Ok(current);
    }
    if requested > current {
        return Err(Error::FutureRevision);
    }
    if requested < compacted {
        return Err(Error::Compacted {
            compact_revision: compacted,
        });
    }
    Ok(requested)
}

fn needs_full_scan(req: &RangeRequest) -> bool {
    effective_order(req) != SortOrder::None
        || req.min_mod_revision != 0
        || req.max_mod_revision != 0
        || req.min_create_revision != 0
        || req.max_create_revision != 0
}

/// etcd sorts ascending when a non-key target is given without an order.
fn effective_order(req: &RangeRequest) -> SortOrder {
    if req.sort_order == SortOrder::None && req.sort_target != SortTarget::Key {
        SortOrder::Ascend
    } else {
        req.sort_order
    }
}

fn passes_filters(req: &RangeRequest, v: &Version) -> bool {
    let m = v.mod_revision();
    let c = v.create_revision;
    !(req.min_mod_revision > 0 && m < req.min_mod_revision
        || req.max_mod_revision > 0 && m > req.max_mod_revision
        || req.min_create_revision > 0 && c < req.min_create_revision
        || req.max_create_revision > 0 && c > req.max_create_revision)
}

/// Evaluates `req` at revision `at` (already validated).
pub fn range(
    index: &RwLock<Index>,
    req: &RangeRequest,
    at: i64,
    fetch: &mut Fetch<'_>,
) -> Result<RangeResponse> {
    if req.key.is_empty() {
        return Err(Error::EmptyKey);
    }
    let full = needs_full_scan(req);
    let (mut picked, count) = {
        let index = index.read().unwrap_or_else(|p| p.into_inner());
        let mut picked: Vec<(Vec<u8>, Version)> = Vec::new();
        let mut count = 0i64;
        // Without sorting or filters only limit+1 rows are needed (the extra
        // one tells `more`), but the count still covers the whole range.
        let keep = if full || req.limit <= 0 {
            usize::MAX
        } else {
            req.limit as usize + 1
        };
        for (key, v) in index.range(&req.key, &req.range_end, at) {
            count += 1;
            if !req.count_only && picked.len() < keep {
                picked.push((key.clone(), *v));
            }
        }
        (picked, count)
    };
    if req.count_only {
        return Ok(RangeResponse {
            revision: at,
            kvs: Vec::new(),
            more: false,
            count,
        });
    }
    picked.retain(|(_, v)| passes_filters(req, v));
    let order = effective_order(req);
    let by_value = order != SortOrder::None && req.sort_target == SortTarget::Value;
    if order != SortOrder::None && !by_value {
        picked.sort_by(|(ka, a), (kb, b)| match req.sort_target {
            SortTarget::Key | SortTarget::Value => ka.cmp(kb),
            SortTarget::Version => a.version.cmp(&b.version),
            SortTarget::Create => a.create_revision.cmp(&b.create_revision),
            SortTarget::Mod => a.id.cmp(&b.id),
        });
        if order == SortOrder::Descend {
            picked.reverse();
        }
    }
    let limit = if req.limit > 0 {
        req.limit as usize
    } else {
        usize::MAX
    };
    let mut more = false;
    if !by_value && picked.len() > limit {
        picked.truncate(limit);
        more = true;
    }
    let mut kvs = Vec::with_capacity(picked.len());
    for (key, v) in &picked {
        let value = if req.keys_only && !by_value {
            Vec::new()
        } else {
            match fetch(v.id)? {
                Some(value) => value,
                // Compaction removed the row after the index pointed at it;
                // the caller decides whether to retry or report compaction.
                None => {
                    return Err(Error::Compacted {
                        compact_revision: 0,
                    })
                }
            }
        };
        kvs.push(kv_of(key, v, value));
    }
    if by_value {
        kvs.sort_by(|a, b| a.value.cmp(&b.value));
        if order == SortOrder::Descend {
            kvs.reverse();
        }
        if kvs.len() > limit {
            kvs.truncate(limit);
            more = true;
        }
        if req.keys_only {
            kvs.iter_mut().for_each(|kv| kv.value.clear());
        }
    }
    Ok(RangeResponse {
        revision: at,
        kvs,
        more,
        count,
    })
}
