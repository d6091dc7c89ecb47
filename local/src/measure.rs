//! Figures the demo and the load generator report: nearest-rank percentiles
//! and a process's CPU time, read from /proc.

use std::time::Duration;

/// Nearest-rank percentile of sorted durations.
pub fn percentile(sorted: &[Duration], q: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

/// `12.3 ms`, or `n/a`.
pub fn ms(d: Option<Duration>) -> String {
    d.map(|d| format!("{:.1} ms", d.as_secs_f64() * 1000.0)).unwrap_or_else(|| "n/a".into())
}

/// Linux reports utime and stime in USER_HZ ticks, which is 100 on every
/// mainstream architecture (the kernel's HZ may differ; this does not).
const USER_HZ: u64 = 100;

/// User + system CPU time of a whole process (every thread, living or
/// exited), from `/proc/<pid>/stat`; `None` where there is no such file.
pub fn process_cpu(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    cpu_from_stat(&stat)
}

/// The CPU time of this process.
pub fn own_cpu() -> Option<Duration> {
    process_cpu(std::process::id())
}

/// Fields 14 and 15 (utime, stime) of a `/proc/<pid>/stat` line. The command
/// name (field 2) may hold spaces and parentheses, so fields are counted
/// after its last `)`.
pub fn cpu_from_stat(stat: &str) -> Option<Duration> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state): utime is field 14, i.e. index 11 here.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(Duration::from_micros((utime + stime) * 1_000_000 / USER_HZ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let d: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&d, 0.50), Some(Duration::from_millis(50)));
        assert_eq!(percentile(&d, 0.99), Some(Duration::from_millis(99)));
        assert_eq!(percentile(&d, 0.999), Some(Duration::from_millis(100)));
        assert_eq!(percentile(&d[..1], 0.99), Some(Duration::from_millis(1)));
        assert_eq!(percentile(&[], 0.5), None);
    }

    #[test]
    fn cpu_time_is_utime_plus_stime_even_when_the_command_name_has_spaces() {
        // GIVEN a stat line whose command is "(a) b" and utime 250, stime 50 ticks
        let stat = "1234 ((a) b) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 9 0 100 1000 10";
        // THEN the CPU time is 300 ticks of 10 ms
        assert_eq!(cpu_from_stat(stat), Some(Duration::from_secs(3)));
        assert!(own_cpu().is_some(), "this process has a /proc entry on Linux");
    }
}
