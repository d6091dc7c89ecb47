//! A patient's alerts (`GET …/patients/{p}/alerts`) and acknowledgement
//! (`POST …/alerts/{alertId}/ack`), for site staff of the patient's site and admins.

use lambda_http::Request;
use serde::Deserialize;
use trialwatch::alert::AlertReason;
use trialwatch::audit::AuditEntry;
use trialwatch::domain_event::{announce, DomainEvent};
use trialwatch::page::PageRequest;
use trialwatch::ports::{AlertInbox, Clock, EnrolmentStore, PendingEvents};
use trialwatch::{AlertId, Error, PatientId, TrialId};

use crate::auth::{self, PatientAccess, Principal};
use crate::deps::Deps;
use trialwatch::edge::http::respond::{self, HttpResponse};

/// Longest acknowledgement note; it is free text, so it is stored with the
/// alert and in the audit entry's reason, never logged.
pub const MAX_NOTE_CHARS: usize = 1000;

pub async fn list<S: EnrolmentStore + AlertInbox, V, A, C>(
    deps: &Deps<S, V, A, C>,
    p: &Principal,
    trial: TrialId,
    patient: PatientId,
    page: PageRequest,
) -> Result<HttpResponse, Error> {
    let access = auth::alert_access(p, &trial)?;
    let enrolment = deps.store.get_enrolment(&trial, &patient).await?;
    if access == PatientAccess::IfSiteMatches {
        auth::staff_site_check(p, &trial, enrolment.as_ref().map(|e| &e.site_id))?;
    }
    enrolment.ok_or(Error::NotFound("patient"))?;
    let page = deps.store.list_alerts(&trial, &patient, &page).await?;
    Ok(respond::json(200, &page))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AckRequest {
    #[serde(default)]
    note: Option<String>,
}

pub async fn ack<S: AlertInbox + PendingEvents, V, A, C: Clock>(
    deps: &Deps<S, V, A, C>,
    req: &Request,
    p: &Principal,
    trial: TrialId,
    alert: AlertId,
) -> Result<HttpResponse, Error> {
    let access = auth::alert_access(p, &trial)?;
    // The body is optional: an empty POST acknowledges without a note.
    let body: AckRequest = if req.body().is_empty() { AckRequest::default() } else { crate::body::json(req)? };
    if body.note.as_ref().is_some_and(|n| n.chars().count() > MAX_NOTE_CHARS) {
        return Err(Error::field("note", format!("must be at most {MAX_NOTE_CHARS} characters")));
    }
    let record = deps.store.get_alert(&trial, &alert).await?;
    // Staff learn nothing about alerts outside their sites, not even existence.
    if access == PatientAccess::IfSiteMatches {
        auth::staff_site_check(p, &trial, record.as_ref().map(|r| &r.alert.site_id))?;
    }
    let record = record.ok_or(Error::NotFound("alert"))?;
    let now = deps.clock.now();
    let actor = p.author()?;
    let audit = AuditEntry::new(trial.clone(), format!("alert/{alert}"), "alert.acknowledged", actor.clone(), now)
        .with_detail("patientId", record.alert.patient_id.as_str())
        .with_detail("level", record.alert.level.as_str())
        .with_reason(body.note.clone());
    // A NEWS2 acknowledgement also marks the patient's vitals state, in the same
    // transaction: one item more in a rare route's write, where the analyzer
    // reading the alert item instead would add a read to its hot path.
    let news2_patient = matches!(record.alert.reason, AlertReason::News2 { .. }).then_some(&record.alert.patient_id);
    let events = [DomainEvent::alert_acknowledged(&record.alert, now, trialwatch::correlation::current().as_ref())];
    let acknowledged =
        deps.store.acknowledge_with_events(&trial, &alert, &actor, body.note.as_deref(), now, &audit, news2_patient, &events).await?;
    announce(deps.event_bus.as_ref(), deps.store.as_ref(), &events).await;
    tracing::info!(trial_id = %trial, alert_id = %alert, "alert acknowledged");
    Ok(respond::json(200, &acknowledged))
}
