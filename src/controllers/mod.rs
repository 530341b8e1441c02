//! Control loops running inside the server process, each reading the shared
//! watch cache through the in-process client.

mod namespace;

use std::sync::Arc;

use crate::api::Api;
use crate::client::Local;

/// Starts the controllers; they run until the runtime shuts down.
pub fn start(api: Arc<Api>) {
    let client = Local::new(api);
    tokio::spawn(namespace::run(client));
}
