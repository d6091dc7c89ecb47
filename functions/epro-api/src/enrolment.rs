//! `PUT /v1/trials/{trialId}/patients/{patientId}`: enrol, transfer, withdraw
//! or complete a patient. Subject ids are pseudonymous; the body has no room
//! for names or contact data (unknown fields are refused).

use lambda_http::Request;
use serde::Serialize;
use trialwatch::audit::{self, AuditEntry};
use trialwatch::domain_event::{announce, DomainEvent};
use trialwatch::enrolment::{Enrolment, EnrolmentRequest, EnrolmentStatus};
use trialwatch::ports::{Clock, EnrolmentStore, PendingEvents, TrialConfig, Upsert};
use trialwatch::{Error, PatientId, SiteId, TrialId};

use crate::auth::{self, PatientAccess, Principal};
use crate::deps::Deps;
use trialwatch::edge::http::respond::{self, HttpResponse};

pub async fn put<S: TrialConfig + EnrolmentStore + PendingEvents + 'static, V, A, C: Clock>(
    deps: &Deps<S, V, A, C>,
    req: &Request,
    p: &Principal,
    trial_id: TrialId,
    patient_id: PatientId,
) -> Result<HttpResponse, Error> {
    let access = auth::enrol(p, &trial_id)?;
    let body: EnrolmentRequest = crate::body::json(req)?;
    if access == PatientAccess::IfSiteMatches {
        auth::staff_site_check(p, &trial_id, Some(&body.site_id))?;
    }
    let trial = deps.trials.get_trial_shared(&trial_id).await?.ok_or(Error::NotFound("trial"))?;
    if trial.definition.site(&body.site_id).is_none() {
        return Err(Error::field("siteId", "names no site of this trial"));
    }
    let existing = deps.store.get_enrolment(&trial_id, &patient_id).await?;
    // Moving a patient between sites needs staff of both.
    if let (PatientAccess::IfSiteMatches, Some(e)) = (access, &existing) {
        auth::staff_site_check(p, &trial_id, Some(&e.site_id))?;
    }
    let now = deps.clock.now();
    let at = trialwatch::timestamp::format(now);
    let enrolment = Enrolment {
        trial_id: trial_id.clone(),
        patient_id: patient_id.clone(),
        site_id: body.site_id.clone(),
        status: body.status,
        hypercapnic: body.hypercapnic,
        enrolled_at: existing.as_ref().map_or_else(|| at.clone(), |e| e.enrolled_at.clone()),
        submission_count: existing.as_ref().map_or(0, |e| e.submission_count),
        last_submission_at: existing.as_ref().and_then(|e| e.last_submission_at.clone()),
        // Recorded when the status becomes withdrawn and kept while it stays so
        // (the store keeps the first time under a race too).
        withdrawn_at: match (body.status, &existing) {
            (EnrolmentStatus::Withdrawn, Some(e)) if e.status == EnrolmentStatus::Withdrawn => {
                e.withdrawn_at.clone().or_else(|| Some(e.updated_at.clone()))
            }
            (EnrolmentStatus::Withdrawn, _) => Some(at.clone()),
            _ => None,
        },
        updated_at: at,
        // The store links the audit entry from the head it reads itself.
        audit_head: Default::default(),
    };
    let action = if existing.is_some() { "enrolment.updated" } else { "enrolment.created" };
    let changes = audit::changes(existing.as_ref().map(Recorded::of).as_ref(), &Recorded::of(&enrolment));
    // A withdrawal, and any change to a recorded enrolment, must say why.
    let withdrawing = body.status == EnrolmentStatus::Withdrawn && existing.as_ref().is_none_or(|e| e.status != body.status);
    let changing = existing.is_some() && !changes.is_empty();
    let reason = audit::reason(body.reason.as_deref(), withdrawing || changing, "to withdraw a patient or change a recorded enrolment")?;
    let mut audit = AuditEntry::new(trial_id.clone(), format!("patient/{patient_id}"), action, p.author()?, now)
        .with_reason(reason)
        .with_changes(changes)
        .with_detail("siteId", body.site_id.as_str())
        .with_detail("status", body.status.as_str())
        .with_detail("hypercapnic", body.hypercapnic);
    if let Some(e) = &existing {
        if e.site_id != body.site_id {
            audit = audit.with_detail("previousSiteId", e.site_id.as_str());
        }
        if e.status != body.status {
            audit = audit.with_detail("previousStatus", e.status.as_str());
        }
    }
    if let Some(w) = enrolment.withdrawn_at.as_deref().filter(|_| existing.as_ref().is_none_or(|e| e.status != body.status)) {
        audit = audit.with_detail("withdrawnAt", w);
    }
    // Announced when the patient is enrolled or the status moves, not on a
    // site or flag change alone.
    let changed = existing.as_ref().is_none_or(|e| e.status != enrolment.status);
    let events: Vec<DomainEvent> = changed
        .then(|| DomainEvent::patient_enrolment_changed(&enrolment, now, trialwatch::correlation::current().as_ref()))
        .into_iter()
        .collect();
    // The write starts from `existing` (with its chain head): one read per enrolment, not two.
    let outcome = deps.store.put_enrolment_after_read(&enrolment, &audit, existing.as_ref(), &events).await?;
    announce(deps.event_bus.as_ref(), deps.store.as_ref(), &events).await;
    deps.forget_enrolment(&trial_id, &patient_id);
    Ok(respond::json(if outcome == Upsert::Created { 201 } else { 200 }, &EnrolmentView::of(&enrolment)))
}

/// The recorded fields of an enrolment, as its audit entries compare them
/// (bookkeeping such as `updatedAt` and the submission summary left out).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Recorded<'a> {
    site_id: &'a SiteId,
    status: EnrolmentStatus,
    hypercapnic: bool,
    withdrawn_at: Option<&'a str>,
}

impl<'a> Recorded<'a> {
    fn of(e: &'a Enrolment) -> Self {
        Self { site_id: &e.site_id, status: e.status, hypercapnic: e.hypercapnic, withdrawn_at: e.withdrawn_at.as_deref() }
    }
}

/// The enrolment as the API shows it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EnrolmentView<'a> {
    pub trial_id: &'a TrialId,
    pub patient_id: &'a PatientId,
    pub site_id: &'a SiteId,
    pub status: EnrolmentStatus,
    pub hypercapnic: bool,
    pub enrolled_at: &'a str,
    pub updated_at: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub withdrawn_at: Option<&'a str>,
}

impl<'a> EnrolmentView<'a> {
    pub fn of(e: &'a Enrolment) -> Self {
        Self {
            trial_id: &e.trial_id,
            patient_id: &e.patient_id,
            site_id: &e.site_id,
            status: e.status,
            hypercapnic: e.hypercapnic,
            enrolled_at: &e.enrolled_at,
            updated_at: &e.updated_at,
            withdrawn_at: e.withdrawn_at.as_deref(),
        }
    }
}
