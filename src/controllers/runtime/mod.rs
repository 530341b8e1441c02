//! The controller runtime: work queues, event sources over the shared watch
//! cache, and the worker loop that contains failures.

mod key;
mod leader;
mod queue;
mod source;
mod worker;

pub use key::ObjectKey;
pub use leader::Elector;
pub use queue::WorkQueue;
pub use source::{watch, Change};
pub use worker::{run, Action, Reconciler};
