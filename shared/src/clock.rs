//! Time as a port, so rules that depend on it (cooldowns, leases, freshness)
//! are tested with a clock the test controls.

use chrono::{DateTime, Utc};

pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// Kept at its old path for tests; it lives with the other test doubles.
#[cfg(any(test, feature = "test-util"))]
pub use crate::memory::FakeClock;

impl<C: Clock + ?Sized> Clock for std::sync::Arc<C> {
    fn now(&self) -> DateTime<Utc> {
        (**self).now()
    }
}
