//! Footprint tests: disk writes, memory and idle activity of the real
//! binary. A binary of their own, so no other group's tests share the
//! machine's measurements with them beyond their own siblings.

#[path = "../common/mod.rs"]
mod common;

mod binary_size;
mod idle;
mod resources;
