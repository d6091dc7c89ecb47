//! The edge kits: one per trigger. Everything a function needs between the
//! Lambda event and its use case (decoding, identity, error mapping) lives
//! here once, so no two functions speak a different dialect of the same edge.

pub mod http;
pub mod schedule;
