//! vitals-analyzer: placeholder, filled in by its issue.
