//! Trial report metadata and summary. The report-generator owns the gathering
//! and the PDF; these are the types the API returns and the store keeps.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{ReportId, TrialId};

/// Headline figures of a report; also returned in the 201 body.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportSummary {
    pub sites: u32,
    pub patients_enrolled: u64,
    pub submissions_received: u64,
    pub submissions_expected: u64,
    /// received / expected, 0-1; `None` when nothing was expected.
    pub compliance: Option<f64>,
    pub alerts_total: u64,
    pub alerts_delivered: u64,
    pub alerts_acknowledged: u64,
    pub median_minutes_to_ack: Option<f64>,
    pub p90_minutes_to_ack: Option<f64>,
}

/// A generated report as stored (`REPORT#t | <reportId>`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportMeta {
    pub report_id: ReportId,
    pub trial_id: TrialId,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub generated_at: DateTime<Utc>,
    /// S3 key: `reports/{trialId}/{reportId}.pdf`.
    pub object_key: String,
    pub pages: u32,
    pub bytes: u64,
    pub summary: ReportSummary,
}

impl ReportMeta {
    pub fn object_key_for(trial: &TrialId, report: &ReportId) -> String {
        format!("reports/{trial}/{report}.pdf")
    }
}
