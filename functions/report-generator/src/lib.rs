//! report-generator: placeholder, filled in by its issue.
