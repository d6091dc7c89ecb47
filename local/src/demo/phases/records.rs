//! Phases 8-10: the sponsor's report, empty dead-letter queues, the audit
//! trail verified, and the domain events the local subscriber received.

use std::sync::atomic::Ordering;

use chrono::Utc;
use serde_json::json;

use super::{Demo, EMULATOR, MEMORY};
use crate::demo::{step, DemoError, TRIAL};

impl Demo<'_> {
    /// 8. The sponsor's report, downloaded from its presigned URL.
    pub(super) async fn report(&mut self) -> Result<(), DemoError> {
        let today = Utc::now().date_naive();
        // Every submission was completed since the enrolment, today.
        let from = today;
        let r = self
            .api
            .post(&format!("/v1/trials/{TRIAL}/reports"), &self.sponsor, &json!({"from": from.to_string(), "to": today.to_string()}))
            .await?;
        let pdf = &self.opts.pdf;
        let (pdf_bytes, line) = if r.status == 201 {
            let url = r.body["url"].as_str().unwrap_or_default().to_owned();
            let resp = self.api.http().get(&url).send().await.map_err(crate::client::ClientError::from)?;
            let status = resp.status().as_u16();
            let bytes = resp.bytes().await.map_err(crate::client::ClientError::from)?;
            self.checks
                .expect(status == 200 && bytes.starts_with(b"%PDF-"), format!("the presigned report URL answered {status} without a PDF"));
            if let Some(dir) = pdf.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            std::fs::write(pdf, &bytes).map_err(|e| step(format!("cannot write {}: {e}", pdf.display())))?;
            let s = &r.body["summary"];
            (
                bytes.len(),
                format!(
                    "{} ({from}..{today}): {} patients, {} submissions, compliance {}, {} alerts ({} acknowledged)",
                    r.body["reportId"].as_str().unwrap_or("?"),
                    s["patientsEnrolled"],
                    s["submissionsReceived"],
                    s["compliance"].as_f64().map(|c| format!("{:.1} %", c * 100.0)).unwrap_or_else(|| "n/a".into()),
                    s["alertsTotal"],
                    s["alertsAcknowledged"]
                ),
            )
        } else {
            self.checks.expect(false, format!("POST report answered {}: {}", r.status, r.body));
            (0, format!("failed ({})", r.status))
        };
        println!("8. report {EMULATOR} {line}");
        let path = std::fs::canonicalize(pdf).unwrap_or_else(|_| pdf.clone());
        self.summary.line("report PDF", format!("{} ({pdf_bytes} bytes) {EMULATOR}", path.display()));
        Ok(())
    }

    /// Both DLQs of the emulator stack must be empty; so must the in-memory stack's dead letters.
    pub(super) async fn dead_letters(&mut self) -> Result<(), DemoError> {
        let sqs = aws_sdk_sqs::Client::new(&self.emulator.sdk);
        let mut dlq = Vec::new();
        for (name, url) in
            [("VitalsDLQ", self.emulator.provisioned.vitals_dlq_url()), ("AlertDLQ", self.emulator.provisioned.alert_dlq_url())]
        {
            let depth = match url {
                Some(u) => crate::poller::queue_depth(&sqs, u).await.map_err(|e| step(format!("{name}: {e}")))?,
                None => return Err(step(format!("{name} was not provisioned"))),
            };
            self.checks.expect(depth == 0, format!("{name} holds {depth} messages"));
            dlq.push(format!("{name} {depth}"));
        }
        let memory_dead: u64 =
            self.memory.memory.iter().flat_map(|b| b.queues.values()).map(|q| q.dead_lettered.load(Ordering::Relaxed)).sum();
        self.checks.expect(memory_dead == 0, format!("{memory_dead} records dead-lettered on the in-memory stack"));
        self.summary.line("DLQ", format!("{} {EMULATOR}; dead-lettered {memory_dead} {MEMORY}", dlq.join(", ")));
        Ok(())
    }

    /// Phase 9, the audit trail: anchor the chain heads now (the stack fires this
    /// hourly), then recompute every chain of the trial as `make verify-audit` does.
    pub(super) async fn audit(&mut self) -> Result<(), DemoError> {
        let line = match self.emulator.fire("AuditAnchors").await {
            Err(e) => {
                self.checks.expect(false, format!("anchoring the audit chains failed: {e}"));
                format!("not anchored ({e})")
            }
            Ok(_) => {
                let target = crate::verify_audit::Target::provisioned(&self.emulator.provisioned).map_err(step)?;
                let trial = trialwatch::TrialId::parse(TRIAL).map_err(|e| step(format!("trial id: {e}")))?;
                let report = crate::verify_audit::verify(&self.emulator.sdk, &target, &trial)
                    .await
                    .map_err(|e| step(format!("verify-audit: {e}")))?;
                self.checks.expect(report.intact(), format!("the audit trail does not verify: {report}"));
                report.to_string()
            }
        };
        println!("9. audit {EMULATOR} {line}");
        self.summary.line("audit trail", format!("{line} {EMULATOR}"));
        Ok(())
    }

    /// Phase 10, domain events: what the local subscriber (a rule from the bus
    /// to a queue) received, by type, and one delivered alert's correlation id
    /// followed through the log lines, the events and the webhook header.
    pub(super) async fn domain_events(&mut self) {
        let events = match self.emulator.events_queue_url.as_deref() {
            Some(url) => crate::subscriber::drain(&aws_sdk_sqs::Client::new(&self.emulator.sdk), url).await,
            None => Err("the template has no event bus".into()),
        };
        match &events {
            Ok(r) => {
                let line = format!("{} ({} in all, local subscriber) {EMULATOR}", crate::subscriber::fmt_by_type(r), r.total());
                println!("10. events {line}");
                self.summary.line("events by type", line);
            }
            Err(e) => self.checks.expect(false, format!("events not counted: {e}")),
        }
        let got = self.receiver.received();
        if let Some((alert_id, id)) = got.iter().find_map(|(a, r)| r.correlation_id.clone().map(|c| (a.clone(), c))) {
            let lines = crate::logs::captured_with(&id);
            let on_bus = events.as_ref().map(|r| r.details.iter().filter(|(_, d)| d["correlationId"] == id.as_str()).count()).unwrap_or(0);
            self.checks.expect(!lines.is_empty(), format!("no log line carries alert {alert_id}'s correlation id {id}"));
            self.summary.line(
                "correlation traced",
                format!("alert {alert_id}: id {id} on {} log lines, {on_bus} events, and its webhook header", lines.len()),
            );
        } else {
            self.checks.expect(false, "no delivered alert carried a correlation id header");
        }
    }
}
