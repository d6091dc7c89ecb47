//! Whole-system tests over HTTP against the local stack (every function
//! in-process, on the AWS emulator). Each test starts its own stack on its own
//! resources, so they run in parallel. `make test` runs them.

mod alerts;
mod audit;
mod audit_chains;
mod correlation;
mod gateway;
mod outbox;
mod reports;
mod submissions;
