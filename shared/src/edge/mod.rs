//! The edge kits: one per trigger. Everything a function needs between the
//! Lambda event and its use case (decoding, identity, error mapping, the
//! batch response) lives here once, shared by every function with that
//! trigger, so no two functions speak a different dialect of the same edge.

pub mod http;
pub mod schedule;
pub mod sqs;
