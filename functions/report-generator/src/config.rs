//! What report-generator reads from its environment, once, in init.

use trialwatch::audit::anchor::DEFAULT_RETENTION_DAYS;
use trialwatch::settings::{
    Env, SettingsError, AUDIT_ANCHOR_BUCKET, AUDIT_ANCHOR_RETENTION_DAYS, AUDIT_TABLE_NAME, EVENT_BUS_NAME, REPORTS_BUCKET,
    REPORTS_KMS_KEY_ID, TABLE_NAME,
};

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
    /// `AUDIT_ANCHOR_BUCKET` (required): the Object Lock bucket the hourly
    /// schedule anchors every trial's chain heads to.
    pub audit_anchor_bucket: String,
    /// `AUDIT_ANCHOR_RETENTION_DAYS` (optional, default 3653): how long each
    /// anchor is locked.
    pub audit_anchor_retention_days: u32,
    /// `EVENT_BUS_NAME` (optional): where `ReportGenerated` is announced.
    /// Absent, the event waits in its pending item for a sweep that has a bus.
    pub event_bus_name: Option<String>,
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
            audit_anchor_bucket: env.required(AUDIT_ANCHOR_BUCKET)?,
            audit_anchor_retention_days: match env.optional(AUDIT_ANCHOR_RETENTION_DAYS) {
                None => DEFAULT_RETENTION_DAYS,
                Some(v) => v.parse().ok().filter(|d| *d > 0).ok_or_else(|| {
                    SettingsError::Invalid(AUDIT_ANCHOR_RETENTION_DAYS, "must be a whole number of days, at least 1".into())
                })?,
            },
            event_bus_name: env.optional(EVENT_BUS_NAME),
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

    fn with(extra: &[(&'static str, &'static str)]) -> Env {
        let base = [(TABLE_NAME, "t"), (AUDIT_TABLE_NAME, "audit"), (REPORTS_BUCKET, "b"), (AUDIT_ANCHOR_BUCKET, "anchors")];
        Env::vars(extra.iter().copied()).or(Env::vars(base))
    }

    #[test]
    fn the_event_bus_is_optional() {
        assert_eq!(Config::from_vars(&with(&[])).unwrap().event_bus_name, None);
        assert_eq!(Config::from_vars(&with(&[(EVENT_BUS_NAME, "bus")])).unwrap().event_bus_name.as_deref(), Some("bus"));
    }

    #[test]
    fn without_a_kms_key_the_bucket_default_is_used() {
        let c = Config::from_vars(&with(&[])).unwrap();
        assert_eq!(c.reports_kms_key_id, None);
    }

    #[test]
    fn the_anchor_bucket_is_required_and_the_retention_defaults_to_ten_years() {
        let e = Config::from_vars(&Env::vars([(TABLE_NAME, "t"), (AUDIT_TABLE_NAME, "audit"), (REPORTS_BUCKET, "b")])).unwrap_err();
        assert!(e.to_string().contains(AUDIT_ANCHOR_BUCKET), "{e}");
        let c = Config::from_vars(&with(&[])).unwrap();
        assert_eq!((c.audit_anchor_bucket.as_str(), c.audit_anchor_retention_days), ("anchors", 3653));
        assert_eq!(Config::from_vars(&with(&[(AUDIT_ANCHOR_RETENTION_DAYS, "30")])).unwrap().audit_anchor_retention_days, 30);
        for bad in ["0", "ten", "-1"] {
            let e = Config::from_vars(&with(&[(AUDIT_ANCHOR_RETENTION_DAYS, bad)])).unwrap_err();
            assert_eq!(e.variable(), AUDIT_ANCHOR_RETENTION_DAYS);
        }
    }
}
