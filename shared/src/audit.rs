//! Append-only audit trail (21 CFR 11.10(e), ICH E6(R3)): who, when, what, why.
//! Entries are never overwritten; a correction is a new entry.

use serde::{Deserialize, Serialize};

use crate::ids::TrialId;

/// Who acted, as the token said. `subject` is a pseudonymous id, never a name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Actor {
    pub role: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
}

impl Actor {
    pub fn system(component: &str) -> Self {
        Self { role: "system".into(), subject: Some(component.into()) }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    pub trial_id: TrialId,
    /// The thing changed: `trial`, `patient/P1`, `submission/<uuid>`, `alert/<id>`, `report/<id>`.
    pub entity: String,
    /// What happened: `trial.created`, `enrolment.updated`, `alert.delivered`, ...
    pub action: String,
    pub actor: Actor,
    /// RFC 3339 UTC.
    pub at: String,
    /// Unique within the entity; keeps two entries at the same instant apart.
    pub entry_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Ids and codes only: never answers, vitals or free text.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub details: serde_json::Map<String, serde_json::Value>,
}

impl AuditEntry {
    pub fn new(
        trial_id: TrialId,
        entity: impl Into<String>,
        action: impl Into<String>,
        actor: Actor,
        at: chrono::DateTime<chrono::Utc>,
    ) -> Self {
        Self {
            trial_id,
            entity: entity.into(),
            action: action.into(),
            actor,
            at: crate::timestamp::format(at),
            entry_id: uuid::Uuid::new_v4().simple().to_string(),
            reason: None,
            details: serde_json::Map::new(),
        }
    }

    pub fn with_detail(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.details.insert(key.into(), value.into());
        self
    }

    pub fn with_reason(mut self, reason: Option<String>) -> Self {
        self.reason = reason;
        self
    }
}
