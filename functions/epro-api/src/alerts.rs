//! The HTTP edge of a patient's alerts (`GET …/patients/{p}/alerts`) and of
//! acknowledgement (`POST …/alerts/{alertId}/ack`), for site staff of the
//! patient's site and admins: the token decides the scope, the
//! [`list_alerts`] and [`acknowledge_alert`] use cases the rest; each of
//! their errors becomes its problem+json here, once.

use lambda_http::Request;
use serde::Deserialize;
use trialwatch::edge::http::respond::{self, HttpResponse};
use trialwatch::edge::http::HttpError;
use trialwatch::page::PageRequest;
use trialwatch::ports::{AlertInbox, Clock, EnrolmentStore, PendingEvents};
use trialwatch::{AlertId, Error, PatientId, TrialId};

use crate::acknowledge_alert::{acknowledge_alert, AcknowledgeAlertCommand, AcknowledgeAlertError};
use crate::auth::{self, Principal};
use crate::deps::Deps;
use crate::list_alerts::{list_alerts, ListAlertsCommand, ListAlertsError};

pub async fn list<S: EnrolmentStore + AlertInbox, V, A, C>(
    deps: &Deps<S, V, A, C>,
    p: &Principal,
    trial: TrialId,
    patient: PatientId,
    page: PageRequest,
) -> Result<HttpResponse, HttpError> {
    let access = auth::alert_access(p, &trial)?;
    let scope = auth::site_scope(p, &trial, access);
    let cmd = ListAlertsCommand { trial_id: trial, patient_id: patient, page, scope };
    let page = list_alerts(deps.store.as_ref(), deps.store.as_ref(), cmd).await?;
    Ok(respond::json(200, &page))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct AckRequest {
    #[serde(default)]
    note: Option<String>,
}

pub async fn ack<S: AlertInbox + PendingEvents + 'static, V, A, C: Clock>(
    deps: &Deps<S, V, A, C>,
    req: &Request,
    p: &Principal,
    trial: TrialId,
    alert: AlertId,
) -> Result<HttpResponse, HttpError> {
    let access = auth::alert_access(p, &trial)?;
    // The body is optional: an empty POST acknowledges without a note.
    let body: AckRequest = if req.body().is_empty() { AckRequest::default() } else { crate::body::json(req)? };
    let scope = auth::site_scope(p, &trial, access);
    let cmd = AcknowledgeAlertCommand { trial_id: trial, alert_id: alert, note: body.note, scope, author: p.author()? };
    let acknowledged = acknowledge_alert(deps.store.as_ref(), deps.announcer(), &deps.clock, cmd).await?;
    Ok(respond::json(200, &acknowledged))
}

/// The HTTP edge's one mapping of a refused list.
impl From<ListAlertsError> for HttpError {
    fn from(e: ListAlertsError) -> Self {
        HttpError::Refused(match e {
            ListAlertsError::Forbidden => Error::Forbidden,
            ListAlertsError::PatientNotFound => Error::NotFound("patient"),
            ListAlertsError::Storage(e) => e.into(),
        })
    }
}

/// The HTTP edge's one mapping of a refused acknowledgement.
impl From<AcknowledgeAlertError> for HttpError {
    fn from(e: AcknowledgeAlertError) -> Self {
        HttpError::Refused(match e {
            AcknowledgeAlertError::Forbidden => Error::Forbidden,
            AcknowledgeAlertError::NotFound => Error::NotFound("alert"),
            AcknowledgeAlertError::AlreadyAcknowledged => {
                Error::conflict("alert-already-acknowledged", "the alert was already acknowledged")
            }
            AcknowledgeAlertError::Invalid(fields) => fields.into(),
            AcknowledgeAlertError::Storage(e) => e.into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handler_tests::problem_of;
    use trialwatch::ports::StorageError;
    use trialwatch::validation::FieldErrors;

    #[test]
    fn each_list_alerts_error_has_its_status_and_problem_type() {
        let cases = [
            (ListAlertsError::Forbidden, 403, "forbidden"),
            (ListAlertsError::PatientNotFound, 404, "not-found"),
            (ListAlertsError::Storage(StorageError::ForeignCursor("not ours")), 422, "validation"),
            (ListAlertsError::Storage(StorageError::Unavailable("throttled".into())), 503, "unavailable"),
        ];
        for (e, status, problem_type) in cases {
            let name = format!("{e:?}");
            assert_eq!(problem_of(e), (status, problem_type.to_owned()), "{name}");
        }
    }

    #[test]
    fn each_acknowledge_alert_error_has_its_status_and_problem_type() {
        let cases = [
            (AcknowledgeAlertError::Forbidden, 403, "forbidden"),
            (AcknowledgeAlertError::NotFound, 404, "not-found"),
            (AcknowledgeAlertError::AlreadyAcknowledged, 409, "alert-already-acknowledged"),
            (AcknowledgeAlertError::Invalid(FieldErrors::one("note", "too long")), 422, "validation"),
            (AcknowledgeAlertError::Storage(StorageError::Unavailable("throttled".into())), 503, "unavailable"),
            (AcknowledgeAlertError::Storage(StorageError::Corrupt("x".into())), 500, "internal"),
        ];
        for (e, status, problem_type) in cases {
            let name = format!("{e:?}");
            assert_eq!(problem_of(e), (status, problem_type.to_owned()), "{name}");
        }
    }
}
