//! `GET /v1/trials/{trialId}/audit`: a trial's audit trail, newest first, for
//! admins and the trial's auditors (21 CFR 11.10(e): records available for
//! inspection). Filters: `entity` (exact), `from` (inclusive) and `to`
//! (exclusive), RFC 3339; pages of `limit` (1-200, default 50) with an opaque
//! `cursor`. Every invalid parameter is named at once.

use lambda_http::{Request, RequestExt};
use trialwatch::edge::http::respond::{self, HttpResponse};
use trialwatch::page::PageRequest;
use trialwatch::ports::{AuditTrail, TrialConfig};
use trialwatch::trail::{AuditFilter, Position};
use trialwatch::validation::FieldError;
use trialwatch::{Error, TrialId};

use crate::auth::{self, Principal};
use crate::deps::Deps;

pub async fn list<S: TrialConfig + AuditTrail + 'static, V, A, C>(
    deps: &Deps<S, V, A, C>,
    req: &Request,
    p: &Principal,
    trial: TrialId,
) -> Result<HttpResponse, Error> {
    auth::read_audit(p, &trial)?;
    let (filter, page) = parameters(req)?;
    // An unknown trial is a 404, not an empty trail: a mistyped id must not
    // read as "nothing happened".
    if deps.trials.get_trial_shared(&trial).await?.is_none() {
        return Err(Error::NotFound("trial"));
    }
    let page = deps.store.audit_page(&trial, &filter, &page).await?;
    tracing::info!(trial_id = %trial, entries = page.items.len(), more = page.next_cursor.is_some(), "audit trail read");
    Ok(respond::json(200, &page))
}

/// The filter and the page, or a 422 naming every invalid parameter.
fn parameters(req: &Request) -> Result<(AuditFilter, PageRequest), Error> {
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
        _ => Err(Error::Validation(errors)),
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
