//! The OpenAPI documents kubectl reads: `/openapi/v2` (one Swagger 2.0
//! document) and `/openapi/v3` (an index plus one OpenAPI 3.0 document per
//! group version), generated from the k8s-openapi type definitions.
//!
//! Documents are generated on first use and kept only as serialized bytes.
//! Generation takes tens of milliseconds of CPU: call from a blocking
//! context (`spawn_blocking`).
//!
//! Serving a v3 group version the way kube-openapi does, so kubectl's disk
//! cache works: `ETag: "<hash>"`, `Vary: Accept`, `Content-Type:
//! application/json`; when the request carries `?hash=` equal to the hash,
//! add `Cache-Control: public, immutable` and an `Expires` a year ahead;
//! when it carries a different hash, answer 301 to
//! `/openapi/v3/<path>?hash=<hash>`.
//!
//! `/openapi/v2` comes as JSON or, for client-go, as gnostic protobuf
//! ([`OpenApi::v2_for_accept`] picks by Accept). The same schemas also
//! drive [`check_fields`], which checks request bodies the way decoding
//! into the Go types does upstream.

mod custom;
pub(crate) mod fields;
mod negotiate;
mod operation;
mod params;
mod paths;
mod proto;
mod proto_wire;
mod schemas;
mod table;
#[cfg(test)]
mod tests;
mod yaml;

pub use custom::{definition_name, CustomKind};
pub use fields::check_fields;

use std::io::Write;
use std::sync::OnceLock;

use bytes::Bytes;
use serde_json::{json, Map, Value};

use schemas::Flavor;

/// One resource the API server serves, as the documents describe it.
#[derive(Clone, Debug)]
pub struct ServedKind {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
    pub namespaced: bool,
    pub verbs: &'static [&'static str],
    /// "status", "scale", "eviction", "binding", "token", "log", "exec", ...
    pub subresources: &'static [&'static str],
    /// Upstream definition name, e.g. "io.k8s.api.apps.v1.Deployment".
    pub definition: &'static str,
}

/// The OpenAPI documents of one set of served kinds.
pub struct OpenApi {
    kinds: Vec<ServedKind>,
    /// `api/v1`, `apis/apps/v1`, ... in order, each with its v3 document
    /// once generated, and its hash (which the index needs before anyone
    /// asks for the document itself).
    groups: Vec<GroupDoc>,
    /// The v2 document as JSON, with its hash (the ETag).
    v2: OnceLock<(Bytes, String)>,
    /// The v2 document as gnostic protobuf, with its hash (the ETag).
    v2_protobuf: OnceLock<(Bytes, String)>,
    v3_index: OnceLock<Bytes>,
}

struct GroupDoc {
    path: String,
    group: &'static str,
    version: &'static str,
    doc: OnceLock<(Bytes, String)>,
    hash: OnceLock<String>,
}

/// The Kubernetes release whose API the documents describe.
const INFO_VERSION: &str = "v1.33.0";

/// Whether `name` is a definition we can generate a schema for.
pub fn definition_known(name: &str) -> bool {
    table::lookup(name).is_some()
}

impl OpenApi {
    pub fn new(kinds: Vec<ServedKind>) -> Self {
        let mut gvs: Vec<(&'static str, &'static str)> =
            kinds.iter().map(|k| (k.group, k.version)).collect();
        gvs.sort_unstable();
        gvs.dedup();
        let groups = gvs
            .into_iter()
            .map(|(group, version)| GroupDoc {
                path: gv_path(group, version),
                group,
                version,
                doc: OnceLock::new(),
                hash: OnceLock::new(),
            })
            .collect();
        OpenApi {
            kinds,
            groups,
            v2: OnceLock::new(),
            v2_protobuf: OnceLock::new(),
            v3_index: OnceLock::new(),
        }
    }

    /// The Swagger 2.0 document of every served kind (JSON).
    #[cfg(test)]
    pub fn v2(&self) -> Bytes {
        self.v2_with_hash().0
    }

    fn v2_with_hash(&self) -> (Bytes, String) {
        self.v2
            .get_or_init(|| {
                let bytes = to_json(&self.v2_document());
                let hash = hash_hex(&bytes);
                (Bytes::from(bytes), hash)
            })
            .clone()
    }

    /// The Swagger 2.0 document as gnostic's `openapi_v2.Document`
    /// protobuf, which client-go asks for. Encoded from the document
    /// itself, not from the JSON bytes, so asking for one form does not
    /// make the other resident.
    #[allow(dead_code)] // served through `v2_for_accept`, which adds the ETag
    pub fn v2_protobuf(&self) -> Bytes {
        self.v2_protobuf_with_hash().0
    }

    fn v2_protobuf_with_hash(&self) -> (Bytes, String) {
        self.v2_protobuf
            .get_or_init(|| {
                let bytes = proto::document(&self.v2_document());
                let hash = hash_hex(&bytes);
                (Bytes::from(bytes), hash)
            })
            .clone()
    }

    /// `{"paths":{"apis/apps/v1":{"serverRelativeURL":"/openapi/v3/apis/apps/v1?hash=..."}}}`
    pub fn v3_index(&self) -> Bytes {
        self.v3_index
            .get_or_init(|| {
                let paths: Map<String, Value> = self
                    .groups
                    .iter()
                    .map(|g| {
                        let url = format!("/openapi/v3/{}?hash={}", g.path, self.hash_of(g));
                        (g.path.clone(), json!({ "serverRelativeURL": url }))
                    })
                    .collect();
                Bytes::from(to_json(&json!({ "paths": paths })))
            })
            .clone()
    }

    /// The OpenAPI 3.0 document of one group version (`api/v1`,
    /// `apis/apps/v1`) with its hash, or None when nothing is served there.
    pub fn v3_group_version(&self, path: &str) -> Option<(Bytes, String)> {
        let path = path.trim_matches('/');
        let group = self.groups.iter().find(|g| g.path == path)?;
        Some(
            group
                .doc
                .get_or_init(|| {
                    let bytes = to_json(&self.v3_document(group));
                    let hash = hash_hex(&bytes);
                    (Bytes::from(bytes), hash)
                })
                .clone(),
        )
    }

    /// The hash of a group version's document without keeping the
    /// document: it is streamed into the hasher, so building the index
    /// does not make every document resident.
    fn hash_of(&self, group: &GroupDoc) -> String {
        if let Some((_, hash)) = group.doc.get() {
            return hash.clone();
        }
        group
            .hash
            .get_or_init(|| {
                let mut hasher = Fnv128::new();
                // Writing into the hasher cannot fail and the value is ours.
                serde_json::to_writer(&mut hasher, &self.v3_document(group))
                    .expect("serializing a generated document");
                hasher.hex()
            })
            .clone()
    }

    fn all_gvs(&self) -> Vec<(&'static str, &'static str)> {
        self.groups.iter().map(|g| (g.group, g.version)).collect()
    }

    fn v2_document(&self) -> Value {
        let kinds: Vec<&ServedKind> = self.kinds.iter().collect();
        let definitions =
            schemas::definitions(&kinds, table::DISCOVERY_ROOTS, &self.all_gvs(), Flavor::V2);
        let mut paths = Map::new();
        for kind in &kinds {
            paths::add(&mut paths, kind, Flavor::V2);
        }
        json!({
            "swagger": "2.0",
            "info": { "title": "Kubernetes", "version": INFO_VERSION },
            "paths": paths,
            "definitions": definitions,
            "securityDefinitions": {
                "BearerToken": {
                    "description": "Bearer Token authentication",
                    "in": "header",
                    "name": "authorization",
                    "type": "apiKey",
                },
            },
            "security": [{ "BearerToken": [] }],
        })
    }

    fn v3_document(&self, group: &GroupDoc) -> Value {
        let kinds: Vec<&ServedKind> = self
            .kinds
            .iter()
            .filter(|k| k.group == group.group && k.version == group.version)
            .collect();
        let schemas = schemas::definitions(&kinds, &[], &self.all_gvs(), Flavor::V3);
        let mut paths = Map::new();
        for kind in &kinds {
            paths::add(&mut paths, kind, Flavor::V3);
        }
        json!({
            "openapi": "3.0.0",
            "info": { "title": "Kubernetes", "version": INFO_VERSION },
            "paths": paths,
            "components": {
                "schemas": schemas,
                "securitySchemes": {
                    "BearerToken": {
                        "description": "Bearer Token authentication",
                        "in": "header",
                        "name": "authorization",
                        "type": "apiKey",
                    },
                },
            },
            "security": [{ "BearerToken": [] }],
        })
    }
}

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

fn to_json(document: &Value) -> Vec<u8> {
    // A Value of our own making always serializes.
    serde_json::to_vec(document).expect("serializing a generated document")
}

fn hash_hex(bytes: &[u8]) -> String {
    let mut hasher = Fnv128::new();
    hasher.update(bytes);
    hasher.hex()
}

/// FNV-1a, 128 bits: a content hash that is stable across builds (std's
/// hasher is not), so kubectl's cache survives a server restart. Not a
/// security boundary: it only names cache entries.
struct Fnv128(u128);

impl Fnv128 {
    const OFFSET: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    const PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013b;

    fn new() -> Self {
        Fnv128(Self::OFFSET)
    }

    fn update(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = (self.0 ^ u128::from(byte)).wrapping_mul(Self::PRIME);
        }
    }

    fn hex(&self) -> String {
        format!("{:032X}", self.0)
    }
}

impl Write for Fnv128 {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
