//! The one mapping from SDK errors to the domain error.
