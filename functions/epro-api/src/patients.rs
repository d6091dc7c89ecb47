//! `GET /v1/trials/{trialId}/patients/{patientId}`: the enrolment, the latest
//! NEWS2, submission counts and open alerts; and the access check every
//! patient route shares.

use serde::Serialize;
use trialwatch::enrolment::Enrolment;
use trialwatch::news2::News2Result;
use trialwatch::page::{PageRequest, MAX_LIMIT};
use trialwatch::ports::{AlertInbox, Clock, EnrolmentStore, VitalsStore};
use trialwatch::{Error, PatientId, TrialId};

use crate::auth::{self, PatientAccess, Principal};
use crate::deps::Deps;
use crate::enrolment::EnrolmentView;
use trialwatch::edge::http::respond::{self, HttpResponse};

/// What the caller does with the patient's data, which decides who may and
/// how fresh the enrolment behind the decision must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Recording answers or vitals ([`auth::record_access`]): the patient's
    /// own hot path, so their enrolment may come from the short-lived cache.
    Record,
    /// Reading ([`auth::patient_access`]), from a fresh enrolment.
    Read,
}

/// Decides row-level access to a patient: the token's scope first (403 before
/// any read), then, for site staff, the patient's site, where an absent
/// patient is the same 403 as one at another site. Returns the enrolment.
pub async fn authorize<S: EnrolmentStore + 'static, V, A, C: Clock>(
    deps: &Deps<S, V, A, C>,
    p: &Principal,
    trial: &TrialId,
    patient: &PatientId,
    purpose: Purpose,
) -> Result<Option<Enrolment>, Error> {
    let access = match purpose {
        Purpose::Record => auth::record_access(p, trial, patient)?,
        Purpose::Read => auth::patient_access(p, trial, patient)?,
    };
    let enrolment = match (access, purpose) {
        (PatientAccess::Own, Purpose::Record) => deps.enrolment_cached(trial, patient).await?,
        _ => deps.store.get_enrolment(trial, patient).await?,
    };
    if access == PatientAccess::IfSiteMatches {
        auth::staff_site_check(p, trial, enrolment.as_ref().map(|e| &e.site_id))?;
    }
    Ok(enrolment)
}

/// Open alerts are counted over at most this many pages of 200 (1,000
/// alerts); a patient past that is reported as 1,000 and flagged.
const OPEN_ALERT_PAGES: usize = 5;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PatientView<'a> {
    #[serde(flatten)]
    enrolment: EnrolmentView<'a>,
    latest_news2: Option<News2Result>,
    submissions: SubmissionSummary<'a>,
    open_alerts: u64,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    open_alerts_truncated: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SubmissionSummary<'a> {
    count: u64,
    last_at: Option<&'a str>,
}

pub async fn get<S: EnrolmentStore + VitalsStore + AlertInbox + 'static, V, A, C: Clock>(
    deps: &Deps<S, V, A, C>,
    p: &Principal,
    trial: TrialId,
    patient: PatientId,
) -> Result<HttpResponse, Error> {
    let enrolment = authorize(deps, p, &trial, &patient, Purpose::Read).await?.ok_or(Error::NotFound("patient"))?;
    let (state, (open_alerts, truncated)) =
        futures::try_join!(async { Ok(deps.store.get_state(&trial, &patient).await?) }, open_alerts(&*deps.store, &trial, &patient))?;
    let view = PatientView {
        enrolment: EnrolmentView::of(&enrolment),
        latest_news2: state.and_then(|s| s.news2),
        submissions: SubmissionSummary { count: enrolment.submission_count, last_at: enrolment.last_submission_at.as_deref() },
        open_alerts,
        open_alerts_truncated: truncated,
    };
    Ok(respond::json(200, &view))
}

async fn open_alerts<S: AlertInbox>(store: &S, trial: &TrialId, patient: &PatientId) -> Result<(u64, bool), Error> {
    let mut page = PageRequest::first(MAX_LIMIT);
    let mut open = 0;
    for _ in 0..OPEN_ALERT_PAGES {
        let p = store.list_alerts(trial, patient, &page).await?;
        open += p.items.iter().filter(|a| a.status.is_open()).count() as u64;
        match p.next_cursor {
            Some(c) => page.cursor = Some(c),
            None => return Ok((open, false)),
        }
    }
    Ok((open, true))
}
