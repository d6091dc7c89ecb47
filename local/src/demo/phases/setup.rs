//! Phases 1-2: the trial, and every patient enrolled, on both stacks.

use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use futures::StreamExt;

use super::{Demo, EMULATOR, MEMORY};
use crate::client::Api;
use crate::demo::{bar, fmt_counts, send_retrying, status_counts, step, DemoError, TRIAL};
use crate::scenario;

impl Demo<'_> {
    /// 1. The trial, on both stacks.
    pub(super) async fn trial(&mut self) -> Result<(), DemoError> {
        let definition = scenario::trial_definition(&self.receiver.url, self.secret);
        let path = format!("/v1/trials/{TRIAL}");
        let (e, m) = tokio::join!(self.api.put(&path, &self.admin, &definition), self.memory_api.put(&path, &self.admin, &definition));
        for (backend, answer) in [(EMULATOR, e?), (MEMORY, m?)] {
            if !answer.is_success() {
                return Err(step(format!("PUT trial {backend} answered {}: {}", answer.status, answer.body)));
            }
        }
        println!(
            "1. trial {TRIAL}: {} sites ({}), webhook {}",
            scenario::SITES.len(),
            scenario::SITES.map(|s| s.1).join(", "),
            self.receiver.url
        );
        Ok(())
    }

    /// 2. Every patient enrolled on both stacks, at once.
    pub(super) async fn enrol(&mut self) -> Result<(), DemoError> {
        let pb = bar(self.opts.patients + self.opts.emulator_patients, "enrolling");
        let started = Instant::now();
        let ((statuses, took), (memory_statuses, _)) = tokio::join!(
            enrol_all(&self.api, self.opts.emulator_patients, self.opts.emulator_concurrency, &pb, &self.admin, &self.retries),
            enrol_all(&self.memory_api, self.opts.patients, self.opts.concurrency, &pb, &self.admin, &self.retries)
        );
        pb.finish_and_clear();
        let enrolled = statuses.iter().filter(|s| matches!(s, 200 | 201)).count();
        let memory_enrolled = memory_statuses.iter().filter(|s| matches!(s, 200 | 201)).count();
        let rate = enrolled as f64 / took.as_secs_f64().max(1e-9);
        println!(
            "2. enrolled {enrolled}/{} patients {EMULATOR} in {:.1} s ({rate:.0}/s, {}) and {memory_enrolled}/{} {MEMORY}; {:.1} s in all",
            self.opts.emulator_patients,
            took.as_secs_f64(),
            fmt_counts(&status_counts(&statuses)),
            self.opts.patients,
            started.elapsed().as_secs_f64()
        );
        if enrolled != self.opts.emulator_patients || memory_enrolled != self.opts.patients {
            return Err(step("not every patient could be enrolled; see the statuses above"));
        }
        self.summary.line(
            "patients enrolled",
            format!(
                "{memory_enrolled} at {} sites {MEMORY}; {enrolled} of them {EMULATOR} in {:.1} s ({rate:.0}/s, 2 emulator requests each)",
                scenario::SITES.len(),
                took.as_secs_f64()
            ),
        );
        Ok(())
    }
}

/// PUTs every patient's enrolment; their statuses and how long it took.
async fn enrol_all(
    api: &Api,
    patients: usize,
    concurrency: usize,
    pb: &indicatif::ProgressBar,
    admin: &str,
    retries: &AtomicU64,
) -> (Vec<u16>, Duration) {
    let started = Instant::now();
    let statuses: Vec<u16> = futures::stream::iter(0..patients)
        .map(|n| async move {
            let path = format!("/v1/trials/{TRIAL}/patients/{}", scenario::patient_id(n));
            let (a, _) = send_retrying(api, reqwest::Method::PUT, &path, admin, &scenario::enrolment(n), retries).await;
            pb.inc(1);
            a.status
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    (statuses, started.elapsed())
}
