//! `PUT /v1/trials/{trialId}` (admin) and `GET /v1/trials/{trialId}`. The
//! webhook secret is write-only: responses carry `Trial::view()`, which has
//! only `secretSet`, or for a patient `Trial::patient_view()`, which has no
//! sites and no alerting at all.

use lambda_http::Request;
use trialwatch::audit::{self, AuditEntry};
use trialwatch::ports::{Clock, TrialConfig, TrialRegistry, Upsert};
use trialwatch::trial::{Trial, TrialDefinition};
use trialwatch::{Error, TrialId};

use crate::auth::{self, Principal};
use crate::deps::Deps;
use trialwatch::edge::http::respond::{self, HttpResponse};

pub async fn put<S: TrialConfig + TrialRegistry + 'static, V, A, C: Clock>(
    deps: &Deps<S, V, A, C>,
    req: &Request,
    p: &Principal,
    trial_id: TrialId,
) -> Result<HttpResponse, Error> {
    auth::configure_trial(p, &trial_id)?;
    let definition: TrialDefinition = crate::body::json(req)?;
    definition.validate_for(deps.egress)?;
    let now = deps.clock.now();
    // Read first so the audit says created or updated and what changed; admin
    // writes are rare and a concurrent write of the same trial would only
    // mislabel one entry.
    let previous = deps.store.get_trial(&trial_id).await?;
    let action = if previous.is_some() { "trial.updated" } else { "trial.created" };
    let trial = Trial { trial_id: trial_id.clone(), definition, updated_at: trialwatch::timestamp::format(now) };
    // The definition's fields old -> new; the webhook secret only as "changed".
    let changes = audit::changes(previous.as_ref().map(|t| &t.definition), &trial.definition);
    let audit = AuditEntry::new(trial_id.clone(), "trial", action, p.author()?, now)
        .with_changes(changes)
        .with_detail("sites", trial.definition.sites.len())
        .with_detail("questionnaires", trial.definition.questionnaires.len())
        .with_detail("proRules", trial.definition.alerting.pro_rules.len());
    let outcome = deps.store.put_trial(&trial, &audit).await?;
    deps.forget_trial(&trial_id);
    tracing::info!(trial_id = %trial_id, action, "trial written");
    Ok(respond::json(if outcome == Upsert::Created { 201 } else { 200 }, &trial.view()))
}

pub async fn get<S: TrialConfig, V, A, C>(deps: &Deps<S, V, A, C>, p: &Principal, trial_id: TrialId) -> Result<HttpResponse, Error> {
    let scope = auth::read_trial(p, &trial_id)?;
    // A fresh read: definitions change rarely but admins expect to see their write.
    let trial = deps.store.get_trial(&trial_id).await?.ok_or(Error::NotFound("trial"))?;
    match scope {
        auth::TrialReadScope::Full => Ok(respond::json(200, &trial.view())),
        auth::TrialReadScope::Patient => Ok(respond::json(200, &trial.patient_view())),
    }
}
