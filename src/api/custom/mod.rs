//! Custom resources: CustomResourceDefinitions turned into served
//! resources, with their schemas (validation, defaulting, pruning) and CEL
//! rules.

// Wired into the write path by `custom` itself once the pieces land.
#[allow(dead_code)]
mod cel;
#[allow(dead_code)]
mod schema;
