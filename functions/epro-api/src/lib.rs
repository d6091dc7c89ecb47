//! epro-api: the HTTP front door (API Gateway HTTP API, payload v2) for trial
//! definitions, enrolment, ePRO submissions, vitals ingest, reads and alert
//! acknowledgement. All logic is generic over the shared ports; `main.rs` only
//! wires the AWS adapters.
//!
//! [`handle`] is infallible: every failure becomes `application/problem+json`
//! through the edge kit's one response, `trialwatch::edge::http::problem`.

mod alerts;
mod audit;
pub mod auth;
pub mod body;
mod config;
mod deps;
mod enrolled;
mod enrolment;
pub mod fhir;
pub mod ingest_vitals;
mod patients;
mod routes;
mod submissions;
pub mod submit;
mod trials;
mod vitals;

pub use config::Config;
pub use deps::{AwsDeps, Deps, ENROLMENT_TTL};
pub use routes::handle;

#[cfg(test)]
mod handler_tests;
