//! `trialwatch-local verify-audit <trial>` (`make verify-audit TRIAL=<id>`):
//! the audit verifier ([`trialwatch::audit::verify`]) over the real stores,
//! on the emulator's developer stack by default, or on a deployed stack when
//! the three names are given (README, "Audit trail").

use trialwatch::audit::verify::{verify_trial, Report};
use trialwatch::aws::{DynamoStore, S3Anchors};
use trialwatch::settings::{Env, AUDIT_ANCHOR_BUCKET, AUDIT_TABLE_NAME, TABLE_NAME};
use trialwatch::TrialId;

/// Which tables and bucket hold the trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub table: String,
    pub audit_table: String,
    pub anchor_bucket: String,
}

impl Target {
    /// All three of `TABLE_NAME`, `AUDIT_TABLE_NAME` and `AUDIT_ANCHOR_BUCKET`
    /// (a deployed stack's outputs), or `None` when none is set (the
    /// emulator's stack). Some but not all is an error naming the missing ones:
    /// half a target would verify one stack's chains against another's anchors.
    pub fn from_env(env: &Env) -> Result<Option<Target>, String> {
        let names = [TABLE_NAME, AUDIT_TABLE_NAME, AUDIT_ANCHOR_BUCKET];
        let values: Vec<Option<String>> = names.iter().map(|n| env.optional(n)).collect();
        if values.iter().all(Option::is_none) {
            return Ok(None);
        }
        let missing: Vec<&str> = names.iter().zip(&values).filter(|(_, v)| v.is_none()).map(|(n, _)| *n).collect();
        match &values[..] {
            [Some(table), Some(audit_table), Some(anchor_bucket)] => {
                Ok(Some(Target { table: table.clone(), audit_table: audit_table.clone(), anchor_bucket: anchor_bucket.clone() }))
            }
            _ => Err(format!("set all of {} or none (the emulator's stack); missing {}", names.join(", "), missing.join(", "))),
        }
    }

    /// The resources of a stack provisioned on the emulator.
    pub fn provisioned(p: &trialwatch_provision::Provisioned) -> Result<Target, String> {
        Ok(Target {
            table: p.resources.table_name.clone(),
            audit_table: p.resources.audit_table_name.clone(),
            anchor_bucket: p.anchor_bucket().ok_or("the template has no AuditAnchorBucket")?.to_owned(),
        })
    }
}

/// Verifies `trial` on `target`.
pub async fn verify(sdk: &aws_config::SdkConfig, target: &Target, trial: &TrialId) -> Result<Report, trialwatch::Error> {
    let store = DynamoStore::new(sdk, target.table.clone(), target.audit_table.clone());
    let anchors = S3Anchors::new(sdk, target.anchor_bucket.clone());
    verify_trial(&store, &store, &anchors, trial).await
}

/// The CLI: resolves the target, verifies, prints the report. `Ok(false)`
/// when the trail is broken.
pub async fn run(trial: &str, prefix: &str) -> Result<bool, String> {
    let trial = TrialId::parse(trial).map_err(|e| format!("trial id {trial:?}: {e}"))?;
    let (sdk, target, where_) = match Target::from_env(&Env::process())? {
        Some(target) => (trialwatch::aws::sdk_config().await, target, "the given stack".to_owned()),
        None => {
            let sdk = trialwatch_provision::try_emulator_sdk_config().await.map_err(|e| e.to_string())?;
            // Idempotent: names the developer stack's resources (creating any that are missing).
            let p = trialwatch_provision::provision_all(&sdk, &trialwatch_provision::template_path(), prefix)
                .await
                .map_err(|e| e.to_string())?;
            (sdk, Target::provisioned(&p)?, format!("the emulator's stack (prefix {prefix})"))
        }
    };
    eprintln!("verify-audit: {} / {} / {} ({where_})", target.table, target.audit_table, target.anchor_bucket);
    let report = verify(&sdk, &target, &trial).await.map_err(|e| e.to_string())?;
    println!("{report}");
    Ok(report.intact())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_target_is_all_three_names_or_none() {
        assert_eq!(Target::from_env(&Env::vars::<&str, &str>([])), Ok(None));
        let all = Env::vars([(TABLE_NAME, "t"), (AUDIT_TABLE_NAME, "a"), (AUDIT_ANCHOR_BUCKET, "b")]);
        assert_eq!(Target::from_env(&all), Ok(Some(Target { table: "t".into(), audit_table: "a".into(), anchor_bucket: "b".into() })));
        let half = Target::from_env(&Env::vars([(TABLE_NAME, "t")])).unwrap_err();
        assert!(half.contains("missing AUDIT_TABLE_NAME, AUDIT_ANCHOR_BUCKET"), "{half}");
    }
}
