//! alert-dispatcher: placeholder, filled in by its issue.
