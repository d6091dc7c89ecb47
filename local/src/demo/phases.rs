//! The demo's phases, one function each, in the order [`Demo::run_all`]
//! runs them. Each prints its numbered line, records what it must prove in
//! [`Checks`] and adds its figures to the [`Summary`], naming the backend.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use chrono::Utc;
use futures::StreamExt;
use serde_json::{json, Value};

use super::{bar, fmt_counts, send_retrying, status_counts, step, Checks, DemoError, DemoOptions, Summary, TRIAL};
use crate::auth::DevIdentity;
use crate::client::Api;
use crate::measure::{ms, percentile};
use crate::receiver::WebhookReceiver;
use crate::scenario::{self, Condition};
use crate::Stack;

/// One patient's stored submissions by id, as the API lists them.
type ReadBack = Result<(usize, BTreeMap<String, Value>), crate::client::ClientError>;

/// Backend labels used in the summary.
const MEMORY: &str = "[in-memory]";
const EMULATOR: &str = "[emulator]";

pub struct Demo<'a> {
    emulator: &'a Stack,
    memory: &'a Stack,
    opts: &'a DemoOptions,
    receiver: &'a WebhookReceiver,
    secret: &'a str,
    /// The emulator stack's API and the in-memory one's (tokens work on both: same dev secret).
    api: Api,
    memory_api: Api,
    admin: String,
    staff: String,
    sponsor: String,
    patients: Vec<String>,
    retries: AtomicU64,
    pub checks: Checks,
    pub summary: Summary,
    /// Patients whose checked submissions tripped the PRO rule, and how many of those were accepted.
    pro_patients: BTreeSet<usize>,
    pro_submissions: usize,
    /// Alerts the API lists, by id: (patient, level).
    alerts: BTreeMap<String, (usize, String)>,
}

impl<'a> Demo<'a> {
    pub fn new(
        emulator: &'a Stack,
        memory: &'a Stack,
        opts: &'a DemoOptions,
        receiver: &'a WebhookReceiver,
        secret: &'a str,
    ) -> Result<Self, DemoError> {
        let api = Api::new(&emulator.base_url, &crate::auth::dev_secret(), opts.emulator_concurrency);
        let memory_api = Api::new(&memory.base_url, &crate::auth::dev_secret(), opts.concurrency);
        let admin = api.token(&DevIdentity::new("admin").subject("demo-admin"))?;
        // Staff sites are (trial, site) pairs: `trialId/siteId`.
        let pairs = scenario::site_pairs(TRIAL);
        let staff = api.token(
            &DevIdentity::new("site_staff").trial(TRIAL).sites(&pairs.iter().map(String::as_str).collect::<Vec<_>>()).subject("demo-nurse"),
        )?;
        let sponsor = api.token(&DevIdentity::new("sponsor").trial(TRIAL).subject("demo-sponsor"))?;
        let patients = (0..opts.patients)
            .map(|n| api.token(&DevIdentity::new("patient").trial(TRIAL).patient(&scenario::patient_id(n))))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            emulator,
            memory,
            opts,
            receiver,
            secret,
            api,
            memory_api,
            admin,
            staff,
            sponsor,
            patients,
            retries: AtomicU64::new(0),
            checks: Checks::default(),
            summary: Summary::default(),
            pro_patients: BTreeSet::new(),
            pro_submissions: 0,
            alerts: BTreeMap::new(),
        })
    }

    pub async fn run_all(&mut self) -> Result<(), DemoError> {
        self.trial().await?;
        self.enrol().await?;
        self.burst().await;
        self.correctness().await?;
        self.vitals().await?;
        self.alerts().await?;
        self.acknowledge().await?;
        self.report().await?;
        self.dead_letters().await?;
        self.audit().await?;
        self.domain_events().await;
        Ok(())
    }

    /// The closing lines, then the summary; true when every check passed.
    pub fn finish(mut self) -> bool {
        self.summary.line("retries after 503", self.retries.load(Ordering::Relaxed).to_string());
        // Every function of both stacks runs in this process, so the counter covers all their chain appends.
        self.summary.line(
            "audit head re-reads",
            format!("{} (an append whose chain head another writer moved first)", trialwatch::audit::append::head_retries()),
        );
        self.summary.line(
            "backends",
            format!(
                "{MEMORY} TrialWatch's own code: HTTP, JWT authorizer, validation, handler, no database (`make load` gives CPU per request); \
                 {EMULATOR} moto, one Python process (~150-200 DynamoDB item writes/s): proves storage, not speed"
            ),
        );
        self.summary.print(&self.checks)
    }

    /// 1. The trial, on both stacks.
    async fn trial(&mut self) -> Result<(), DemoError> {
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
    async fn enrol(&mut self) -> Result<(), DemoError> {
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

    /// 3. The burst, on the in-memory stack: TrialWatch's own rate.
    async fn burst(&mut self) {
        let opts = self.opts;
        let now = Utc::now();
        let rounds = opts.submissions.div_ceil(opts.patients);
        let pb = bar(opts.submissions, "burst");
        let started = Instant::now();
        let (api, tokens, retries, pb_ref) = (&self.memory_api, &self.patients, &self.retries, &pb);
        let results: Vec<(u16, Duration)> = futures::stream::iter(0..opts.submissions)
            .map(|i| async move {
                let n = i % opts.patients;
                // `rounds` per patient, oldest first as phones sync them. All
                // after the enrolment a moment ago (less the API's 5-minute
                // clock skew): answers from before enrolment are refused.
                let rounds_back = (rounds - 1 - i / opts.patients) as i64;
                let completed_at = now - chrono::Duration::seconds((rounds_back * 20 + (n % 20) as i64).min(240));
                // Below the PRO rule's threshold: the burst raises no alert (the correctness run does).
                let body = scenario::submission(&uuid::Uuid::new_v4().to_string(), completed_at, i, scenario::ordinary_breathlessness(i));
                let path = format!("/v1/trials/{TRIAL}/patients/{}/submissions", scenario::patient_id(n));
                let (a, latency) = send_retrying(api, reqwest::Method::POST, &path, &tokens[n], &body, retries).await;
                pb_ref.inc(1);
                (a.status, latency)
            })
            .buffer_unordered(opts.concurrency)
            .collect()
            .await;
        let took = started.elapsed();
        pb.finish_and_clear();
        let statuses: Vec<u16> = results.iter().map(|r| r.0).collect();
        let accepted = statuses.iter().filter(|s| **s == 201).count();
        let replayed = statuses.iter().filter(|s| **s == 200).count();
        let mut latencies: Vec<Duration> = results.iter().map(|r| r.1).collect();
        latencies.sort();
        let rate = accepted as f64 / took.as_secs_f64().max(1e-9);
        let (p50, p99) = (ms(percentile(&latencies, 0.50)), ms(percentile(&latencies, 0.99)));
        println!(
            "3. burst {MEMORY}: {} submissions in {:.1} s: {accepted} accepted (201), {rate:.0}/s, latency p50 {p50} p99 {p99} ({})",
            opts.submissions,
            took.as_secs_f64(),
            fmt_counts(&status_counts(&statuses))
        );
        self.checks.expect(
            accepted + replayed == opts.submissions,
            format!("{} burst submissions were not accepted", opts.submissions - accepted - replayed),
        );
        self.summary.line(
            "submissions accepted",
            format!(
                "{accepted} of {} (201) {MEMORY}; replayed 200: {replayed}; other: {}",
                opts.submissions,
                opts.submissions - accepted - replayed
            ),
        );
        self.summary.line(
            "submission rate",
            format!(
                "{rate:.0}/s over {:.1} s with {} in flight {MEMORY} (debug build; client and server share 2 cores)",
                took.as_secs_f64(),
                opts.concurrency
            ),
        );
        self.summary
            .line("latency per request", format!("p50 {p50}, p99 {p99} {MEMORY} (client-side, loopback HTTP -> gateway -> handler)"));
    }

    /// Phase 4, correctness, on the emulator: submissions through the production
    /// adapters, then every accepted one read back through the API with its answers.
    async fn correctness(&mut self) -> Result<(), DemoError> {
        let opts = self.opts;
        let every = opts.pro_alert_every.max(1);
        let now = Utc::now();
        let pb = bar(opts.checked_submissions, "stored");
        let started = Instant::now();
        let (api, tokens, retries, pb_ref) = (&self.api, &self.patients, &self.retries, &pb);
        // (index, submission id, breathlessness sent, status, latency)
        let results: Vec<(usize, String, u32, u16, Duration)> = futures::stream::iter(0..opts.checked_submissions)
            .map(|i| async move {
                let n = i % opts.emulator_patients;
                let breathless = if (i + 1) % every == 0 { 10 } else { scenario::ordinary_breathlessness(i) };
                let id = uuid::Uuid::new_v4().to_string();
                let completed_at = now - chrono::Duration::seconds(1 + (i / opts.emulator_patients) as i64);
                let body = scenario::submission(&id, completed_at, i, breathless);
                let path = format!("/v1/trials/{TRIAL}/patients/{}/submissions", scenario::patient_id(n));
                let (a, latency) = send_retrying(api, reqwest::Method::POST, &path, &tokens[n], &body, retries).await;
                pb_ref.inc(1);
                (i, id, breathless, a.status, latency)
            })
            .buffer_unordered(opts.emulator_concurrency)
            .collect()
            .await;
        let took = started.elapsed();
        pb.finish_and_clear();
        let accepted: Vec<&(usize, String, u32, u16, Duration)> = results.iter().filter(|r| matches!(r.3, 200 | 201)).collect();
        let mut latencies: Vec<Duration> = results.iter().map(|r| r.4).collect();
        latencies.sort();
        let rate = accepted.len() as f64 / took.as_secs_f64().max(1e-9);
        // A submission answered 503 (or timed out) may still have been stored and
        // alerted, so every patient whose answers tripped the rule is watched.
        self.pro_patients = results.iter().filter(|r| (r.0 + 1) % every == 0).map(|r| r.0 % opts.emulator_patients).collect();
        self.pro_submissions = accepted.iter().filter(|r| (r.0 + 1) % every == 0).count();

        // Read every accepted submission back, patient by patient, with its answers.
        let read_started = Instant::now();
        let mut sent: BTreeMap<usize, Vec<(&str, u32)>> = BTreeMap::new();
        for r in &accepted {
            sent.entry(r.0 % opts.emulator_patients).or_default().push((r.1.as_str(), r.2));
        }
        let read: Vec<ReadBack> = futures::stream::iter(sent.keys().copied())
            .map(|n| async move {
                let path = format!("/v1/trials/{TRIAL}/patients/{}/submissions?limit=100", scenario::patient_id(n));
                let items = api.list_all(&path, &tokens[n]).await?;
                let by_id = items.into_iter().filter_map(|s| Some((s["submissionId"].as_str()?.to_owned(), s))).collect();
                Ok((n, by_id))
            })
            .buffer_unordered(opts.emulator_concurrency)
            .collect()
            .await;
        let mut read_back = 0;
        for r in read {
            let (n, stored) = r?;
            for (id, breathless) in sent.get(&n).into_iter().flatten() {
                let answer = stored.get(*id).and_then(|s| {
                    s["answers"].as_array()?.iter().find(|a| a["linkId"] == scenario::PRO_ITEM).and_then(|a| a["value"].as_f64())
                });
                if answer == Some(f64::from(*breathless)) {
                    read_back += 1;
                }
            }
        }
        println!(
            "4. correctness {EMULATOR}: {} submissions in {:.1} s: {} accepted, {rate:.0}/s, p50 {} p99 {} ({}); {read_back} read back with their answers in {:.1} s",
            opts.checked_submissions,
            took.as_secs_f64(),
            accepted.len(),
            ms(percentile(&latencies, 0.50)),
            ms(percentile(&latencies, 0.99)),
            fmt_counts(&status_counts(&results.iter().map(|r| r.3).collect::<Vec<_>>())),
            read_started.elapsed().as_secs_f64()
        );
        self.checks.expect(
            accepted.len() == opts.checked_submissions,
            format!("{} checked submissions were not accepted", opts.checked_submissions - accepted.len()),
        );
        self.checks
            .expect(read_back == accepted.len(), format!("only {read_back} of {} accepted submissions read back intact", accepted.len()));
        self.summary.line(
            "stored and read back",
            format!(
                "{read_back} of {} submissions {EMULATOR}, answers compared; {rate:.0}/s, p50 {}, p99 {} (the emulator's rate, not AWS's)",
                opts.checked_submissions,
                ms(percentile(&latencies, 0.50)),
                ms(percentile(&latencies, 0.99))
            ),
        );
        Ok(())
    }

    /// 5. Vitals, on the emulator: some patients deteriorate to NEWS2 high.
    async fn vitals(&mut self) -> Result<(), DemoError> {
        let opts = self.opts;
        let vitals_url =
            self.emulator.provisioned.queue_url("VitalsQueue").map(str::to_owned).ok_or_else(|| step("VitalsQueue was not provisioned"))?;
        let sqs = aws_sdk_sqs::Client::new(&self.emulator.sdk);
        let steps = scenario::DETERIORATION.len();
        let pb = bar(opts.vital_patients * steps, "vitals");
        let started = Instant::now();
        let mut vital_statuses = Vec::new();
        for (k, course) in scenario::DETERIORATION.iter().enumerate() {
            let at = Utc::now();
            let (api, tokens, pb, retries) = (&self.api, &self.patients, &pb, &self.retries);
            let statuses: Vec<u16> = futures::stream::iter(0..opts.vital_patients)
                .map(|n| {
                    let condition = if n < opts.deteriorating { *course } else { Condition::Well };
                    async move {
                        let path = format!("/v1/trials/{TRIAL}/patients/{}/vitals", scenario::patient_id(n));
                        let (a, _) =
                            send_retrying(api, reqwest::Method::POST, &path, &tokens[n], &scenario::vitals(condition, at), retries).await;
                        pb.inc(1);
                        a.status
                    }
                })
                .buffer_unordered(opts.emulator_concurrency)
                .collect()
                .await;
            vital_statuses.extend(statuses);
            // Consume as we produce: the next step waits for the analyzer to drain
            // this one, so the emulator's FIFO queue stays shallow.
            if !wait_for_queue(&sqs, &vitals_url, Duration::from_secs(120)).await {
                self.checks.expect(false, format!("the vitals queue did not drain within 120 s after step {}", k + 1));
            }
        }
        pb.finish_and_clear();
        let accepted = vital_statuses.iter().filter(|s| **s == 202).count();
        println!(
            "5. vitals {EMULATOR}: {} patients x {steps} steps = {} requests in {:.1} s ({}); {} deteriorating to NEWS2 high",
            opts.vital_patients,
            vital_statuses.len(),
            started.elapsed().as_secs_f64(),
            fmt_counts(&status_counts(&vital_statuses)),
            opts.deteriorating
        );
        self.checks.expect(accepted == vital_statuses.len(), "some vitals requests were not accepted (202)");
        Ok(())
    }

    /// 6. Alerts, on the emulator: what the API lists must reach the signed webhook receiver.
    async fn alerts(&mut self) -> Result<(), DemoError> {
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
    async fn acknowledge(&mut self) -> Result<(), DemoError> {
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

    /// 8. The sponsor's report, downloaded from its presigned URL.
    async fn report(&mut self) -> Result<(), DemoError> {
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
    async fn dead_letters(&mut self) -> Result<(), DemoError> {
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
    async fn audit(&mut self) -> Result<(), DemoError> {
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
}

impl Demo<'_> {
    /// Phase 10, domain events: what the local subscriber (a rule from the bus
    /// to a queue) received, by type, and one delivered alert's correlation id
    /// followed through the log lines, the events and the webhook header.
    async fn domain_events(&mut self) {
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

/// Waits until the queue holds nothing visible or in flight.
async fn wait_for_queue(sqs: &aws_sdk_sqs::Client, url: &str, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if matches!(crate::poller::queue_depth(sqs, url).await, Ok(0)) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    false
}
