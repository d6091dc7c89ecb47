//! What report-generator reads from its environment, once, in init.

use trialwatch::settings::{Env, SettingsError, AUDIT_TABLE_NAME, REPORTS_BUCKET, REPORTS_KMS_KEY_ID, TABLE_NAME};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `TABLE_NAME` (required): counters, alerts and report metadata.
    pub table_name: String,
    /// `AUDIT_TABLE_NAME` (required): the audit trail, appended to only.
    pub audit_table_name: String,
    /// `REPORTS_BUCKET` (required): where the PDFs go.
    pub reports_bucket: String,
    /// `REPORTS_KMS_KEY_ID` (optional): reports are encrypted with this key
    /// when set, with the bucket's default key otherwise.
    pub reports_kms_key_id: Option<String>,
}

impl Config {
    /// From the process environment; see [`Config::from_vars`].
    pub fn from_env() -> Result<Self, SettingsError> {
        Self::from_vars(&Env::process())
    }

    /// A missing required variable fails naming it.
    pub fn from_vars(env: &Env) -> Result<Self, SettingsError> {
        Ok(Self {
            table_name: env.required(TABLE_NAME)?,
            audit_table_name: env.required(AUDIT_TABLE_NAME)?,
            reports_bucket: env.required(REPORTS_BUCKET)?,
            reports_kms_key_id: env.optional(REPORTS_KMS_KEY_ID),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_bucket_is_named() {
        let e = Config::from_vars(&Env::vars([(TABLE_NAME, "t"), (AUDIT_TABLE_NAME, "audit")])).unwrap_err();
        assert!(e.to_string().contains(REPORTS_BUCKET), "{e}");
    }

    #[test]
    fn without_a_kms_key_the_bucket_default_is_used() {
        let c = Config::from_vars(&Env::vars([(TABLE_NAME, "t"), (AUDIT_TABLE_NAME, "audit"), (REPORTS_BUCKET, "b")])).unwrap();
        assert_eq!(c.reports_kms_key_id, None);
    }
}
