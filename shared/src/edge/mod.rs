//! The edge kit: one module per Lambda trigger, shared by every function that
//! has that trigger, so the edges cannot drift into twins.

pub mod sqs;
