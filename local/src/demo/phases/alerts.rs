//! Phases 6-7 on the emulator: alerts reaching the signed webhook receiver,
//! then acknowledged by site staff, with no duplicate delivered.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use serde_json::json;

use super::{Demo, EMULATOR};
use crate::demo::{fmt_counts, status_counts, DemoError, TRIAL};
use crate::scenario;

impl Demo<'_> {
    /// 6. Alerts, on the emulator: what the API lists must reach the signed webhook receiver.
    pub(super) async fn alerts(&mut self) -> Result<(), DemoError> {
        let opts = self.opts;
        let started = Instant::now();
        let mut watched: BTreeSet<usize> = (0..opts.vital_patients).collect();
        watched.extend(self.pro_patients.iter().copied());
        let mut high_per_patient: BTreeMap<usize, usize> = BTreeMap::new();
        let mut pro_alerts = 0;
        for n in &watched {
            for record in self.api.patient_alerts(TRIAL, &scenario::patient_id(*n), &self.staff).await? {
                let a = &record["alert"];
                let (Some(id), Some(level)) = (a["alertId"].as_str(), a["level"].as_str()) else { continue };
                if a["reason"]["kind"] == "pro-rule" {
                    pro_alerts += 1;
                }
                if level == "high" {
                    *high_per_patient.entry(*n).or_insert(0) += 1;
                }
                self.alerts.insert(id.to_owned(), (*n, level.to_owned()));
            }
        }
        let expected = &self.alerts;
        self.checks.expect(
            (0..opts.deteriorating).all(|n| high_per_patient.contains_key(&n)),
            format!(
                "{} of {} deteriorating patients have no high alert",
                (0..opts.deteriorating).filter(|n| !high_per_patient.contains_key(n)).count(),
                opts.deteriorating
            ),
        );
        self.checks.expect(
            (opts.deteriorating..opts.vital_patients).all(|n| !expected.values().any(|(p, _)| *p == n) || self.pro_patients.contains(&n)),
            "a patient whose vitals stayed normal was alerted",
        );
        self.checks.expect(
            pro_alerts == self.pro_submissions,
            format!("{} submissions tripped the PRO rule but {pro_alerts} PRO alerts were raised", self.pro_submissions),
        );
        let all_in = self
            .receiver
            .wait_until(Duration::from_secs(opts.alert_timeout_secs), |got| expected.keys().all(|id| got.contains_key(id)))
            .await;
        let got = self.receiver.received();
        let delivered = expected.keys().filter(|id| got.contains_key(*id)).count();
        let unexpected = got.keys().filter(|id| !expected.contains_key(*id)).count();
        let mut levels: BTreeMap<&str, usize> = BTreeMap::new();
        for (_, level) in expected.values() {
            *levels.entry(level.as_str()).or_insert(0) += 1;
        }
        println!(
            "6. alerts {EMULATOR}: {} raised ({}), {delivered} delivered to the webhook in {:.1} s, {} signatures rejected, {} duplicates",
            expected.len(),
            levels.iter().map(|(l, n)| format!("{l} {n}")).collect::<Vec<_>>().join(", "),
            started.elapsed().as_secs_f64(),
            self.receiver.rejected(),
            self.receiver.duplicates()
        );
        self.checks.expect(
            all_in,
            format!("only {delivered} of {} alerts reached the webhook within {} s", expected.len(), opts.alert_timeout_secs),
        );
        self.checks.expect(unexpected == 0, format!("{unexpected} alerts reached the webhook that the API does not list"));
        self.checks.expect(self.receiver.rejected() == 0, "the receiver rejected deliveries for bad signatures");
        self.summary.line("alerts delivered", format!("{delivered} of {} raised, signatures verified {EMULATOR}", expected.len()));
        Ok(())
    }

    /// 7. Site staff acknowledge the high alerts; then no duplicate may have arrived.
    pub(super) async fn acknowledge(&mut self) -> Result<(), DemoError> {
        let mut statuses = Vec::new();
        for (id, (_, level)) in &self.alerts {
            if level == "high" {
                let body = json!({"note": "called the patient; reviewed by the on-call team"});
                statuses.push(self.api.post(&format!("/v1/trials/{TRIAL}/alerts/{id}/ack"), &self.staff, &body).await?.status);
            }
        }
        let acked = statuses.iter().filter(|s| **s == 200).count();
        println!("7. acknowledged {acked} high alerts as site staff {EMULATOR} ({})", fmt_counts(&status_counts(&statuses)));
        self.checks.expect(acked == statuses.len(), "some acknowledgements failed");
        // Duplicates are counted after everything settled (a late redelivery would show here).
        tokio::time::sleep(Duration::from_secs(2)).await;
        let duplicates = self.receiver.duplicates();
        self.checks.expect(duplicates == 0, format!("{duplicates} duplicate webhook deliveries"));
        self.summary.line("duplicates", duplicates.to_string());
        Ok(())
    }
}
