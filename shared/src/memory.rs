//! In-memory adapters of the ports, for unit tests of logic only.
