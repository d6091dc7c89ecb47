//! The demo's closing summary: one labelled line per figure, each saying
//! which backend it was measured on, then the result. A phase adds a line
//! with [`Summary::line`]; the order of calls is the order printed.

/// The checks that decide the result, with what failed.
#[derive(Debug, Default)]
pub struct Checks(Vec<String>);

impl Checks {
    pub fn expect(&mut self, ok: bool, what: impl Into<String>) {
        if !ok {
            self.0.push(what.into());
        }
    }

    pub fn failed(&self) -> &[String] {
        &self.0
    }
}

/// Label width: the widest label in use, so values line up.
const LABEL_WIDTH: usize = 24;

#[derive(Debug, Default)]
pub struct Summary {
    lines: Vec<(String, String)>,
}

impl Summary {
    /// Adds `label   value` to the summary.
    pub fn line(&mut self, label: impl Into<String>, value: impl Into<String>) {
        self.lines.push((label.into(), value.into()));
    }

    /// The summary as printed, ending with the result line(s).
    pub fn render(&self, checks: &Checks) -> String {
        let mut out = String::from("==================== TrialWatch demo summary (measured in this run) ====================\n");
        for (label, value) in &self.lines {
            out.push_str(&format!("  {label:<LABEL_WIDTH$} {value}\n"));
        }
        if checks.failed().is_empty() {
            out.push_str(&format!("  {:<LABEL_WIDTH$} OK\n", "result"));
        }
        for c in checks.failed() {
            out.push_str(&format!("  {:<LABEL_WIDTH$} {c}\n", "FAILED"));
        }
        out
    }

    /// Prints the summary; true when every check passed.
    pub fn print(&self, checks: &Checks) -> bool {
        println!();
        print!("{}", self.render(checks));
        checks.failed().is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_print_in_order_aligned_and_a_failed_check_replaces_ok() {
        // GIVEN two lines and no failed check
        let mut s = Summary::default();
        s.line("patients enrolled", "10 at 3 sites");
        s.line("DLQ", "VitalsDLQ 0");
        let mut checks = Checks::default();
        let text = s.render(&checks);
        // THEN they print in order, values aligned, ending OK
        let lines: Vec<&str> = text.lines().skip(1).collect();
        assert_eq!(
            lines,
            ["  patients enrolled        10 at 3 sites", "  DLQ                      VitalsDLQ 0", "  result                   OK"]
        );
        // WHEN a check fails THEN the result names it instead of OK
        checks.expect(false, "2 duplicates");
        let text = s.render(&checks);
        assert!(text.ends_with("  FAILED                   2 duplicates\n") && !text.contains(" OK\n"), "{text}");
    }
}
