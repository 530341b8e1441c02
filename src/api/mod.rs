//! The Kubernetes API layer: the resource registry and the semantics of
//! every verb over the datastore and its watch caches. No HTTP here: the
//! HTTPS server (`crate::apiserver`) and the in-process client
//! (`crate::client`) both call [`Api`].

mod admission;
mod apply;
pub mod authz;
mod bootstrap;
mod convert;
mod custom;
mod error;
mod kinds;
pub mod meta;
mod options;
mod store;
mod verbs;

pub mod openapi;
pub mod patch;
pub mod quantity;
pub mod quota;
pub mod registry;
pub mod selector;
pub mod table;
pub mod validation;

use std::sync::Arc;

pub use authz::UserInfo;
pub use error::{ApiError, MAX_BODY_BYTES};
pub use meta::name as meta_name;
pub use options::{
    AuditAnnotations, DeleteOptions, FieldValidation, ListOptions, ListResult, WatchEvent,
    WatchOptions, WatchStream, WriteOptions,
};
pub use registry::{Registry, Resource};
pub use store::Db;
pub use verbs::ServiceNetwork;

/// The API layer. Cheap to share (`Arc`).
pub struct Api {
    /// Built-in kinds plus the served custom resources; replaced whole
    /// when a CustomResourceDefinition changes what is served.
    registry: std::sync::RwLock<Arc<Registry>>,
    store: Arc<store::Store>,
    services: verbs::Allocator,
    /// The lease events are attached to, shared for a minute (upstream's
    /// lease reuse), so events expire an hour after they were written.
    event_lease: std::sync::Mutex<Option<(i64, std::time::Instant)>>,
    authz: authz::State,
    /// Secrets at rest (`--secrets-encryption`, `secrets-encrypt` endpoints).
    encryption: Option<Arc<crate::encryption::Encryption>>,
}

impl Api {
    /// Opens the API layer over `db`: fills the watch caches and starts
    /// following the datastore. (The server opens with encryption; tests
    /// use this.)
    #[allow(dead_code)]
    pub async fn open(db: Arc<Db>, network: ServiceNetwork) -> Result<Arc<Api>, ApiError> {
        Self::open_with(db, network, None).await
    }

    /// [`Api::open`] with values passing through `encryption` on their way
    /// to and from the datastore.
    pub async fn open_with(
        db: Arc<Db>,
        network: ServiceNetwork,
        encryption: Option<Arc<crate::encryption::Encryption>>,
    ) -> Result<Arc<Api>, ApiError> {
        let registry = Registry::builtin();
        let mut storages: Vec<&str> = registry.all().iter().map(|r| r.storage).collect();
        storages.sort_unstable();
        storages.dedup();
        let store = store::Store::open(db, &storages, encryption.clone())
            .await
            .map_err(ApiError::internal)?;
        let services = verbs::Allocator::new(network);
        let api = Arc::new(Api {
            registry: std::sync::RwLock::new(Arc::new(registry)),
            store,
            services,
            event_lease: std::sync::Mutex::new(None),
            authz: authz::State::default(),
            encryption,
        });
        custom::start(api.clone());
        Ok(api)
    }

    /// Secrets encryption, when the server was opened with it.
    pub fn secrets_encryption(&self) -> Option<&Arc<crate::encryption::Encryption>> {
        self.encryption.as_ref()
    }

    /// What is served now (a snapshot: custom resources come and go).
    pub fn registry(&self) -> Arc<Registry> {
        match self.registry.read() {
            Ok(r) => r.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Serves the built-in kinds plus `custom`.
    fn set_custom_resources(&self, custom: Vec<&'static Resource>) {
        let next = Arc::new(Registry::builtin().with(custom));
        match self.registry.write() {
            Ok(mut r) => *r = next,
            Err(poisoned) => *poisoned.into_inner() = next,
        }
    }

    /// Whether the caches follow the datastore (for /readyz).
    pub fn ready(&self) -> bool {
        use crate::datastore::Backend;
        self.store.cache_revision() > 0 || self.store.db().current_revision() == 0
    }
}
