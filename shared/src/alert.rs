//! Alerts: what fired, its deterministic id, and its delivery record.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::audit::Actor;
use crate::correlation::CorrelationId;
use crate::ids::{AlertId, PatientId, QuestionnaireId, SiteId, SubmissionId, TrialId};
use crate::news2::{Component, RiskLevel};

/// The alert message on the alert queue, and the webhook body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Alert {
    pub alert_id: AlertId,
    pub trial_id: TrialId,
    pub patient_id: PatientId,
    pub site_id: SiteId,
    pub level: RiskLevel,
    pub reason: AlertReason,
    pub created_at: DateTime<Utc>,
    /// The request that raised it ([`crate::correlation`]). Kept with the
    /// stored alert from its first write, sent as the webhook's
    /// `X-TrialWatch-Correlation-Id`. Absent on alerts stored before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<CorrelationId>,
}

/// Why the alert fired: the NEWS2 components or the PRO rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum AlertReason {
    #[serde(rename_all = "camelCase")]
    News2 { score: u8, components: Vec<Component> },
    #[serde(rename_all = "camelCase")]
    ProRule { questionnaire_id: QuestionnaireId, submission_id: SubmissionId, link_id: String, value: f64, at_least: f64 },
}

impl Alert {
    /// The trail's "alert raised" entry, in the patient's chain: the level
    /// and, for NEWS2, the aggregate score and each parameter's score; for a
    /// PRO rule, the rule (questionnaire, item, threshold) and the submission.
    /// Ids, codes and scores only: never an answer or a vital sign's value.
    pub fn raised_entry(&self, actor: Actor, at: DateTime<Utc>) -> crate::audit::AuditEntry {
        let entry = crate::audit::AuditEntry::new(self.trial_id.clone(), format!("alert/{}", self.alert_id), "alert.raised", actor, at)
            .with_detail("patientId", self.patient_id.as_str())
            .with_detail("level", self.level.as_str());
        match &self.reason {
            AlertReason::News2 { score, components } => {
                let scores: serde_json::Map<String, serde_json::Value> =
                    components.iter().map(|c| (c.parameter.as_str().to_owned(), c.score.into())).collect();
                entry.with_detail("rule", "news2").with_detail("score", *score).with_detail("components", scores)
            }
            AlertReason::ProRule { questionnaire_id, submission_id, link_id, at_least, .. } => entry
                .with_detail("rule", "pro")
                .with_detail("questionnaireId", questionnaire_id.as_str())
                .with_detail("linkId", link_id.as_str())
                .with_detail("atLeast", *at_least)
                .with_detail("submissionId", submission_id.to_string()),
        }
    }
}

fn hashed_id(parts: &[&str]) -> AlertId {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0u8]);
    }
    AlertId::parse(&format!("al-{}", &crate::ids::lower_hex(&h.finalize())[..40])).expect("hex is a safe id")
}

impl AlertId {
    /// One id per (trial, patient, level, escalation sequence). The sequence is
    /// the patient's alert count, kept in the vitals state item and moved by
    /// the versioned write that records the alert: a redelivered batch, or a
    /// second analyzer racing over the same stored state, mints the same id,
    /// while every new escalation gets a new one, however soon it follows.
    /// The tag differs from the retired (level, cooldown bucket) scheme's, so
    /// a new id never equals an old one.
    pub fn for_escalation(trial: &TrialId, patient: &PatientId, level: RiskLevel, sequence: u64) -> AlertId {
        hashed_id(&["news2-seq", trial.as_str(), patient.as_str(), level.as_str(), &sequence.to_string()])
    }

    /// One id per (submission, rule item): a replayed submission re-sends the same alert.
    pub fn for_pro_rule(trial: &TrialId, patient: &PatientId, submission: &SubmissionId, link_id: &str) -> AlertId {
        hashed_id(&["pro", trial.as_str(), patient.as_str(), &submission.to_string(), link_id])
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AlertStatus {
    Pending,
    Delivered,
    Failed,
    Acknowledged,
}

impl AlertStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertStatus::Pending => "pending",
            AlertStatus::Delivered => "delivered",
            AlertStatus::Failed => "failed",
            AlertStatus::Acknowledged => "acknowledged",
        }
    }
    /// Still needs a site's attention.
    pub fn is_open(self) -> bool {
        !matches!(self, AlertStatus::Acknowledged)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Channel {
    Webhook,
    Sns,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AttemptOutcome {
    Delivered,
    /// 5xx, 408, 429, timeout, network, or an open circuit: SQS redelivers.
    Retryable,
    /// Any other 4xx: recorded, not retried.
    Permanent,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryAttempt {
    pub at: DateTime<Utc>,
    pub channel: Channel,
    pub outcome: AttemptOutcome,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    /// A code such as `timeout`, `circuit-open`, `http-503`; never a body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// The stored alert and its delivery history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertRecord {
    pub alert: Alert,
    pub status: AlertStatus,
    #[serde(default)]
    pub attempts: Vec<DeliveryAttempt>,
    /// While set and in the future, one invocation owns delivery.
    #[serde(default)]
    pub lease_until: Option<DateTime<Utc>>,
    #[serde(default)]
    pub delivered_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub acknowledged_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub acknowledged_by: Option<Actor>,
    #[serde(default)]
    pub ack_note: Option<String>,
}

/// The outcome of trying to take ownership of an alert's delivery.
// Returned once per alert and consumed at once; boxing would only add an allocation.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// This invocation holds the lease and must deliver.
    Acquired(AlertRecord),
    /// Delivered (or acknowledged) before: acknowledge the message, notify nobody.
    AlreadyDone(AlertStatus),
    /// Another invocation holds an unexpired lease.
    InProgress { lease_until: DateTime<Utc> },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escalation_ids_are_deterministic_and_distinct_per_level_and_sequence() {
        let (t, p) = (TrialId::parse("t1").unwrap(), PatientId::parse("p1").unwrap());
        let a = AlertId::for_escalation(&t, &p, RiskLevel::High, 42);
        assert_eq!(a, AlertId::for_escalation(&t, &p, RiskLevel::High, 42));
        assert_ne!(a, AlertId::for_escalation(&t, &p, RiskLevel::Medium, 42));
        assert_ne!(a, AlertId::for_escalation(&t, &p, RiskLevel::High, 43));
    }

    #[test]
    fn alert_json_is_camel_case_with_a_tagged_reason() {
        let a = Alert {
            alert_id: AlertId::parse("al-1").unwrap(),
            trial_id: TrialId::parse("t1").unwrap(),
            patient_id: PatientId::parse("p1").unwrap(),
            site_id: SiteId::parse("s1").unwrap(),
            level: RiskLevel::LowMedium,
            reason: AlertReason::News2 { score: 3, components: vec![] },
            created_at: "2026-11-26T20:00:00Z".parse().unwrap(),
            correlation_id: None,
        };
        let j = serde_json::to_value(&a).unwrap();
        assert_eq!(j["level"], "low-medium");
        assert_eq!(j["reason"]["kind"], "news2");
        assert_eq!(serde_json::from_value::<Alert>(j).unwrap(), a);
    }
}
