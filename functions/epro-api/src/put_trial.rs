//! The `put_trial` use case: an admin creates or replaces a trial's
//! definition, audited with what changed (the webhook secret only as
//! "changed"). Transport-free: the HTTP edge (`crate::trials::put`) decodes
//! the definition and maps the [`PutTrialError`].

use trialwatch::audit::{self, Actor, AuditEntry};
use trialwatch::egress::EgressPolicy;
use trialwatch::ports::{Clock, StorageError, TrialConfig, TrialRegistry, Upsert};
use trialwatch::trial::{Trial, TrialDefinition};
use trialwatch::validation::FieldErrors;
use trialwatch::TrialId;

/// A definition to store under an id, and who writes it.
#[derive(Debug, Clone)]
pub struct PutTrialCommand {
    pub trial_id: TrialId,
    pub definition: TrialDefinition,
    pub author: Actor,
}

/// The stored trial, and whether it is new.
#[derive(Debug, Clone)]
pub struct TrialWritten {
    pub trial: Trial,
    pub outcome: Upsert,
}

/// What can stop a trial write.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PutTrialError {
    /// The definition is not valid (every field named), its webhook
    /// included, under the deployment's egress rules.
    #[error(transparent)]
    Invalid(#[from] FieldErrors),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Validates the definition, then writes it with an audit entry that says
/// created or updated and what changed. `trials` is read fresh (not through
/// a cache): the audit compares against what is stored.
pub async fn put_trial(
    trials: &impl TrialConfig,
    registry: &impl TrialRegistry,
    clock: &impl Clock,
    egress: EgressPolicy,
    cmd: PutTrialCommand,
) -> Result<TrialWritten, PutTrialError> {
    let PutTrialCommand { trial_id, definition, author } = cmd;
    definition.validate_for(egress)?;
    let now = clock.now();
    // Read first so the audit says created or updated and what changed; admin
    // writes are rare and a concurrent write of the same trial would only
    // mislabel one entry.
    let previous = trials.get_trial(&trial_id).await?;
    let action = if previous.is_some() { "trial.updated" } else { "trial.created" };
    let trial = Trial { trial_id: trial_id.clone(), definition, updated_at: trialwatch::timestamp::format(now) };
    // The definition's fields old -> new; the webhook secret only as "changed".
    let changes = audit::changes(previous.as_ref().map(|t| &t.definition), &trial.definition);
    let audit = AuditEntry::new(trial_id.clone(), "trial", action, author, now)
        .with_changes(changes)
        .with_detail("sites", trial.definition.sites.len())
        .with_detail("questionnaires", trial.definition.questionnaires.len())
        .with_detail("proRules", trial.definition.alerting.pro_rules.len());
    let outcome = registry.put_trial(&trial, &audit).await?;
    tracing::info!(trial_id = %trial_id, action, "trial written");
    Ok(TrialWritten { trial, outcome })
}

#[cfg(test)]
mod tests {
    use trialwatch::audit::Actor;

    use super::*;
    use crate::handler_tests::{tid, trial_definition, world, World};

    fn command(trial: &str, definition: TrialDefinition) -> PutTrialCommand {
        PutTrialCommand { trial_id: tid(trial), definition, author: Actor { role: "admin".into(), subject: Some("u-admin".into()) } }
    }

    async fn run(w: &World, cmd: PutTrialCommand) -> Result<TrialWritten, PutTrialError> {
        put_trial(w.store.as_ref(), w.store.as_ref(), &w.clock, EgressPolicy::DEPLOYED, cmd).await
    }

    #[tokio::test]
    async fn a_new_trial_is_created_and_audited_as_created() {
        // GIVEN no trial tw-new
        let w = world();
        // WHEN an admin puts its definition
        let written = run(&w, command("tw-new", trial_definition())).await.expect("written");
        // THEN it is created, with a trial.created entry
        assert_eq!(written.outcome, Upsert::Created);
        assert!(w.store.audit_entries().iter().any(|e| e.action == "trial.created" && e.trial_id == tid("tw-new")));
    }

    #[tokio::test]
    async fn an_existing_trial_is_updated_and_the_entry_names_what_changed() {
        // GIVEN tw-demo
        let w = world();
        let mut definition = trial_definition();
        definition.name = "Renamed".into();
        // WHEN its name changes
        let written = run(&w, command("tw-demo", definition)).await.expect("written");
        // THEN it is an update whose entry carries the name's change
        assert_eq!(written.outcome, Upsert::Updated);
        let entry = w.store.audit_entries().into_iter().find(|e| e.action == "trial.updated").expect("trial.updated");
        assert!(entry.changes.contains_key("name"), "{:?}", entry.changes.keys());
    }

    #[tokio::test]
    async fn an_invalid_definition_is_invalid_and_nothing_is_written() {
        let w = world();
        let mut definition = trial_definition();
        definition.sites.clear();
        let Err(PutTrialError::Invalid(errors)) = run(&w, command("tw-new", definition)).await else { panic!("no sites must be invalid") };
        assert!(errors.iter().any(|f| f.field == "sites"), "{errors:?}");
        assert!(w.store.audit_entries().is_empty());
    }

    #[tokio::test]
    async fn a_store_that_fails_is_a_storage_error() {
        let w = world();
        w.store.fail_next("put_trial", 1);
        let r = run(&w, command("tw-new", trial_definition())).await;
        assert!(matches!(r, Err(PutTrialError::Storage(StorageError::Unavailable(_)))), "{r:?}");
    }
}
