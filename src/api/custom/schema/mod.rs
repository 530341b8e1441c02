//! Structural OpenAPI v3 schemas of custom resources: validation,
//! defaulting and pruning.
