//! The HTTP edge of `GET /v1/trials/{trialId}/audit`, over the
//! [`read_audit`] use case: a trial's audit trail, newest first, for admins
//! and the trial's auditors. Filters: `entity` (exact), `from` (inclusive) and `to`
//! (exclusive), RFC 3339; pages of `limit` (1-200, default 50) with an opaque
//! `cursor`. Every invalid parameter is named at once.

use lambda_http::{Request, RequestExt};
use trialwatch::edge::http::respond::{self, HttpResponse};
use trialwatch::edge::http::HttpError;
use trialwatch::page::PageRequest;
use trialwatch::ports::{AuditTrail, TrialConfig};
use trialwatch::trail::{AuditFilter, Position};
use trialwatch::validation::FieldError;
use trialwatch::{Error, TrialId};

use crate::auth::{self, Principal};
use crate::deps::Deps;
use crate::read_audit::{read_audit, ReadAuditCommand, ReadAuditError};

pub async fn list<S: TrialConfig + AuditTrail + 'static, V, A, C>(
    deps: &Deps<S, V, A, C>,
    req: &Request,
    p: &Principal,
    trial: TrialId,
) -> Result<HttpResponse, HttpError> {
    auth::read_audit(p, &trial)?;
    let (filter, page) = parameters(req)?;
    let page = read_audit(&deps.trials, deps.store.as_ref(), ReadAuditCommand { trial_id: trial, filter, page }).await?;
    Ok(respond::json(200, &page))
}

/// The HTTP edge's one mapping of a failed trail read.
impl From<ReadAuditError> for HttpError {
    fn from(e: ReadAuditError) -> Self {
        HttpError::Refused(match e {
            ReadAuditError::TrialNotFound => Error::NotFound("trial"),
            ReadAuditError::Storage(e) => e.into(),
        })
    }
}

/// The filter and the page, or a 422 naming every invalid parameter.
fn parameters(req: &Request) -> Result<(AuditFilter, PageRequest), HttpError> {
    let mut errors: Vec<FieldError> = Vec::new();
    let page = fields_of(crate::routes::page_request(req), &mut errors)?;
    // The cursor is decoded here too, so a forged one is named with the rest.
    let query = req.query_string_parameters();
    if !errors.iter().any(|e| e.field == "cursor") {
        if let Some(cursor) = query.first("cursor") {
            fields_of(Position::decode(cursor).map_err(Error::from), &mut errors)?;
        }
    }
    let filter = AuditFilter::parse(query.first("entity"), query.first("from"), query.first("to")).map_err(|e| errors.extend(e)).ok();
    match (filter, page) {
        (Some(filter), Some(page)) if errors.is_empty() => Ok((filter, page)),
        _ => Err(Error::Validation(errors).into()),
    }
}

/// The value, or its field errors collected (any other error is returned).
fn fields_of<T>(result: Result<T, Error>, errors: &mut Vec<FieldError>) -> Result<Option<T>, Error> {
    match result {
        Ok(v) => Ok(Some(v)),
        Err(Error::Validation(fields)) => {
            errors.extend(fields);
            Ok(None)
        }
        Err(other) => Err(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handler_tests::problem_of;
    use trialwatch::ports::StorageError;

    #[test]
    fn each_read_audit_error_has_its_status_and_problem_type() {
        assert_eq!(problem_of(ReadAuditError::TrialNotFound), (404, "not-found".into()));
        assert_eq!(problem_of(ReadAuditError::Storage(StorageError::ForeignCursor("not ours"))), (422, "validation".into()));
        assert_eq!(problem_of(ReadAuditError::Storage(StorageError::Unavailable("throttled".into()))), (503, "unavailable".into()));
    }
}
