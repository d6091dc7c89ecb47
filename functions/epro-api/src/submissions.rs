//! ePRO submissions: `POST` (native JSON or a FHIR QuestionnaireResponse) and
//! the newest-first list.
//!
//! A submission is ONE TransactWriteItems (submission, idempotency guard,
//! audit entry, day/site counter, enrolment summary, and its PRO alerts as
//! pending outbox items), then at most one SendMessageBatch of those alerts
//! as the fast path. If the send fails, or the function dies before it, the
//! outbox sweeper in alert-dispatcher sends the stored alerts within two
//! minutes, so the response is 201 either way and no client retry is needed.
//! A client retrying an identical body gets 200 with the original receipt and
//! its alerts are sent again (their ids are deterministic, so the dispatcher
//! never notifies twice).

use chrono::{DateTime, Utc};
use lambda_http::Request;
use serde::Serialize;
use trialwatch::alert::{Alert, AlertReason};
use trialwatch::audit::append::append_with_retry;
use trialwatch::audit::chain::{link_all, ChainId};
use trialwatch::audit::{Actor, AuditEntry};
use trialwatch::domain_event::{announce, DomainEvent};
use trialwatch::enrolment::Enrolment;
use trialwatch::page::{Page, PageRequest};
use trialwatch::ports::{AlertQueue, Clock, EnrolmentStore, PendingEvents, RecordOutcome, SubmissionLedger, TrialConfig};
use trialwatch::submission::{Answer, StoredSubmission, SubmissionRequest};
use trialwatch::telemetry::metrics;
use trialwatch::trial::Trial;
use trialwatch::{AlertId, Error, PatientId, QuestionnaireId, SiteId, SubmissionId, TrialId};

use crate::auth::Principal;
use crate::body::MediaType;
use crate::deps::Deps;
use crate::patients::{authorize, require_enrolled, Purpose};
use trialwatch::edge::http::respond::{self, HttpResponse};

pub async fn post<S: TrialConfig + EnrolmentStore + SubmissionLedger + PendingEvents + 'static, V, A: AlertQueue, C: Clock>(
    deps: &Deps<S, V, A, C>,
    req: &Request,
    p: &Principal,
    trial_id: TrialId,
    patient_id: PatientId,
) -> Result<HttpResponse, Error> {
    let enrolment = authorize(deps, p, &trial_id, &patient_id, Purpose::Record).await?;
    let request = parse(req, &patient_id)?;
    let enrolment = require_enrolled(enrolment)?;
    let trial = deps.trial(&trial_id).await?;
    let trial = trial.as_ref().as_ref().ok_or(Error::NotFound("trial"))?;
    let now = deps.clock.now();
    let questionnaire = QuestionnaireId::parse(&request.questionnaire_id)
        .ok()
        .and_then(|id| trial.definition.questionnaire(&id, &request.questionnaire_version));
    // The enrolment is already in hand (it decided access), so checking
    // completedAt against it costs no request.
    let enrolled_at = match DateTime::parse_from_rfc3339(&enrolment.enrolled_at) {
        Ok(t) => Some(t.with_timezone(&Utc)),
        Err(_) => {
            tracing::warn!(trial_id = %trial_id, "the enrolment's enrolledAt is unreadable; completedAt not checked against it");
            None
        }
    };
    let valid = request.validate_since(questionnaire, enrolled_at, now)?;
    let on_behalf = !matches!(p, Principal::Patient { .. });
    let stored = StoredSubmission {
        score: valid.score(),
        trial_id: trial_id.clone(),
        patient_id: patient_id.clone(),
        site_id: enrolment.site_id.clone(),
        submission_id: valid.submission_id,
        questionnaire_id: valid.questionnaire_id,
        questionnaire_version: valid.questionnaire_version,
        completed_at: valid.completed_at,
        received_at: now,
        answers: valid.answers,
        body_hash: valid.body_hash,
        submitted_by: p.actor(),
    };
    let day = trial_day(trial, stored.completed_at);
    let audit = audit_entry(&stored, p.author()?, on_behalf, now);
    // The alerts are part of the record: stored in its transaction as pending
    // outbox items, they survive a failed send below or a function that dies
    // before it; the outbox sweeper delivers them (crate docs of `trialwatch::outbox`).
    let alerts = pro_alerts(trial, &stored);
    // Announced from the same transaction (the outbox of `trialwatch::domain_event`):
    // SubmissionReceived only where the trial opted in, an AlertRaised per PRO alert.
    let mut events: Vec<DomainEvent> = Vec::with_capacity(alerts.len() + 1);
    if trial.definition.publish_submission_events {
        events.push(DomainEvent::submission_received(&stored, trialwatch::correlation::current().as_ref()));
    }
    events.extend(alerts.iter().map(DomainEvent::alert_raised));
    let recorded = record(deps, &stored, &day, &audit, &alerts, &events, enrolment).await;
    let (status, recorded, alerts) = match recorded {
        Ok(RecordOutcome::Recorded) => {
            announce(deps.event_bus.as_ref(), deps.store.as_ref(), &events).await;
            // Raised once, when stored: a replay re-sends but raises nothing new.
            for a in &alerts {
                metrics::alert_raised(a.level, metrics::since(stored.completed_at, now));
            }
            (201, stored, alerts)
        }
        Ok(RecordOutcome::Duplicate(existing)) => {
            let same = existing.body_hash == stored.body_hash && existing.trial_id == trial_id && existing.patient_id == patient_id;
            if !same {
                return Err(Error::conflict("submission-conflict", "this submissionId was already used with a different body"));
            }
            let alerts = pro_alerts(trial, &existing);
            (200, existing, alerts)
        }
        Err(e @ Error::Conflict { kind: "patient-not-enrolled", .. }) => {
            deps.forget_enrolment(&trial_id, &patient_id);
            return Err(e);
        }
        Err(e) => return Err(e),
    };
    // The fast path: queued now, the alert reaches the site in seconds. A
    // failure here is not the client's to retry any more: the stored item is
    // the source of truth, and the sweeper sends it within two minutes. A
    // replay sends again (ids are deterministic: the dispatcher claims once).
    let mut queued = alerts.is_empty();
    if !alerts.is_empty() {
        match deps.alert_queue.enqueue(&alerts).await {
            Ok(()) => queued = true,
            Err(e) => tracing::warn!(
                trial_id = %trial_id,
                submission_id = %recorded.submission_id,
                alerts = alerts.len(),
                error = e.code(),
                "PRO alerts stored but not queued; the outbox sweeper sends them"
            ),
        }
    }
    tracing::info!(
        trial_id = %trial_id,
        submission_id = %recorded.submission_id,
        status,
        alerts = alerts.len(),
        queued,
        on_behalf,
        "submission"
    );
    Ok(respond::json(status, &recorded.receipt()))
}

/// Who raises a PRO alert in the trail: the rule, run by this function.
const COMPONENT: &str = "epro-api";

/// Records the submission with its audit entries (submission.created, then
/// alert.raised per PRO alert) linked into the patient's chain after the head
/// on the enrolment in hand: no read on the warm path. A cached head that is
/// stale (another writer extended the chain) fails the transaction's head
/// condition; the enrolment is then re-read consistently and the entries
/// re-linked ([`append_with_retry`]). A commit leaves the new head in the
/// enrolment cache.
async fn record<S: EnrolmentStore + SubmissionLedger + 'static, V, A, C>(
    deps: &Deps<S, V, A, C>,
    stored: &StoredSubmission,
    day: &str,
    audit: &AuditEntry,
    alerts: &[Alert],
    events: &[DomainEvent],
    enrolment: Enrolment,
) -> Result<RecordOutcome, Error> {
    let (trial, patient) = (&stored.trial_id, &stored.patient_id);
    let chain = &ChainId::Patient(patient.clone());
    let reread = || async { require_enrolled(deps.store.get_enrolment_consistent(trial, patient).await?) };
    let write = |enrolment: Enrolment| async move {
        let mut entries = vec![audit.clone()];
        // The rule raised the alert, not the person who answered.
        entries.extend(alerts.iter().map(|a| a.raised_entry(Actor::system(COMPONENT), stored.received_at)));
        let head = link_all(entries.iter_mut(), chain, &enrolment.audit_head);
        let outcome = deps.store.record_submission_with_events(stored, day, &entries, alerts, events).await?;
        if outcome == RecordOutcome::Recorded {
            deps.remember_head(trial, patient, &head);
        }
        Ok(outcome)
    };
    append_with_retry(Some(enrolment), reread, write).await
}

/// Native JSON, or a FHIR QuestionnaireResponse mapped onto the same request.
fn parse(req: &Request, patient: &PatientId) -> Result<SubmissionRequest, Error> {
    let bytes = crate::body::bytes(req)?;
    match crate::body::media_type(req)? {
        MediaType::Json => crate::body::decode(bytes),
        MediaType::FhirJson => crate::body::decode::<crate::fhir::QuestionnaireResponse>(bytes)?.into_submission(patient),
    }
}

/// The counter bucket: the day the questionnaire was completed, in the trial's zone.
/// (`NaiveDate`'s Display is `YYYY-MM-DD` without parsing a format string.)
pub fn trial_day(trial: &Trial, completed_at: DateTime<Utc>) -> String {
    completed_at.with_timezone(&trial.definition.tz()).date_naive().to_string()
}

fn audit_entry(s: &StoredSubmission, actor: Actor, on_behalf: bool, now: DateTime<Utc>) -> AuditEntry {
    let entry = AuditEntry::new(s.trial_id.clone(), format!("submission/{}", s.submission_id), "submission.created", actor, now)
        .with_detail("patientId", s.patient_id.as_str())
        .with_detail("questionnaireId", s.questionnaire_id.as_str());
    if on_behalf {
        entry.with_detail("onBehalf", true)
    } else {
        entry
    }
}

/// The PRO alerts a stored submission raises: for each rule of its
/// questionnaire whose item's numeric answer is at or above `atLeast`. Alert
/// ids are per (submission, item), so when several rules on one item fire,
/// the highest level wins. `created_at` is the receipt time, so a replay
/// builds the identical alert.
pub fn pro_alerts(trial: &Trial, s: &StoredSubmission) -> Vec<Alert> {
    let mut alerts: Vec<Alert> = Vec::new();
    for rule in trial.definition.alerting.pro_rules.iter().filter(|r| r.questionnaire_id == s.questionnaire_id) {
        let Some(value) = s.answers.iter().find(|a| a.link_id == rule.link_id).and_then(|a: &Answer| a.value.as_number()) else {
            continue;
        };
        if value < rule.at_least {
            continue;
        }
        let alert = Alert {
            alert_id: AlertId::for_pro_rule(&s.trial_id, &s.patient_id, &s.submission_id, &rule.link_id),
            trial_id: s.trial_id.clone(),
            patient_id: s.patient_id.clone(),
            site_id: s.site_id.clone(),
            level: rule.level,
            reason: AlertReason::ProRule {
                questionnaire_id: s.questionnaire_id.clone(),
                submission_id: s.submission_id,
                link_id: rule.link_id.clone(),
                value,
                at_least: rule.at_least,
            },
            created_at: s.received_at,
            correlation_id: trialwatch::correlation::current(),
        };
        match alerts.iter_mut().find(|a| a.alert_id == alert.alert_id) {
            Some(existing) if existing.level < alert.level => *existing = alert,
            Some(_) => {}
            None => alerts.push(alert),
        }
    }
    alerts
}

/// A submission as listed: what was answered, when, and by whom (role only).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct SubmissionView {
    submission_id: SubmissionId,
    questionnaire_id: QuestionnaireId,
    questionnaire_version: String,
    site_id: SiteId,
    completed_at: DateTime<Utc>,
    received_at: DateTime<Utc>,
    answers: Vec<Answer>,
    score: Option<f64>,
    submitted_by_role: String,
}

pub async fn list<S: EnrolmentStore + SubmissionLedger + 'static, V, A, C: Clock>(
    deps: &Deps<S, V, A, C>,
    p: &Principal,
    trial: TrialId,
    patient: PatientId,
    page: PageRequest,
) -> Result<HttpResponse, Error> {
    authorize(deps, p, &trial, &patient, Purpose::Read).await?.ok_or(Error::NotFound("patient"))?;
    let page: Page<SubmissionView> = deps.store.list_submissions(&trial, &patient, &page).await?.map(|s| SubmissionView {
        submission_id: s.submission_id,
        questionnaire_id: s.questionnaire_id,
        questionnaire_version: s.questionnaire_version,
        site_id: s.site_id,
        completed_at: s.completed_at,
        received_at: s.received_at,
        answers: s.answers,
        score: s.score,
        submitted_by_role: s.submitted_by.role,
    });
    Ok(respond::json(200, &page))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trial_in(zone: &str) -> Trial {
        let definition = serde_json::from_value(serde_json::json!({"name": "T", "sites": [{"id": "s1", "name": "S"}], "timezone": zone}))
            .expect("a definition");
        Trial { trial_id: TrialId::parse("tw-1").unwrap(), definition, updated_at: String::new() }
    }

    #[test]
    fn a_submission_counts_on_its_day_in_the_trials_zone() {
        let late_evening_utc: DateTime<Utc> = "2026-11-26T23:30:00Z".parse().unwrap();
        assert_eq!(trial_day(&trial_in("Europe/London"), late_evening_utc), "2026-11-26");
        assert_eq!(trial_day(&trial_in("Asia/Shanghai"), late_evening_utc), "2026-11-27");
        assert_eq!(trial_day(&trial_in("America/New_York"), late_evening_utc), "2026-11-26");
        // British Summer Time moves the same UTC clock time past midnight.
        assert_eq!(trial_day(&trial_in("Europe/London"), "2026-07-01T23:30:00Z".parse().unwrap()), "2026-07-02");
    }
}
