//! epro-api: placeholder, filled in by its issue.
