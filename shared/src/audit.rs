//! Append-only audit trail (21 CFR 11.10(e), ICH E6(R3)): who, when, what, why.
//! Entries are never overwritten; a correction is a new entry.
//!
//! Entries are linked into hash chains ([`chain`]) so that an overwrite, which
//! IAM cannot prevent, is detected.

pub mod anchor;
pub mod append;
pub mod chain;
pub mod verify;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ids::TrialId;

/// How a secret's change is recorded: never its value, old or new.
pub const REDACTED: &str = "changed";

/// Fields whose values never enter the trail (`alerting.webhook.secret`).
const SECRET_FIELDS: &[&str] = &["secret"];

/// Longest `reason` a caller may give (characters).
pub const MAX_REASON_CHARS: usize = 500;

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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    /// What changed, by field path (`alerting.webhook.url`): old -> new.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub changes: BTreeMap<String, Change>,
    /// The chain this entry belongs to ([`chain::ChainId`]): absent until
    /// [`AuditEntry::link`]ed, as are `seq`, `prevHash` and `hash`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain: Option<String>,
    /// 1 for a chain's first entry, then +1 per entry: a gap is a deletion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// The previous entry's `hash` ([`chain::GENESIS`] before the first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev_hash: Option<String>,
    /// SHA-256 (hex) of this entry's RFC 8785 form without `hash` ([`chain::digest`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
}

/// One field's change. A secret's is only [`REDACTED`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Change {
    /// `null` stands for "absent".
    Values {
        old: Value,
        new: Value,
    },
    Redacted(String),
}

/// The fields that differ between `old` (absent: a creation) and `new`, by
/// dotted path into their JSON form. Objects are compared field by field;
/// arrays and scalars as whole values. Secret fields appear only as
/// [`REDACTED`], whatever their values.
pub fn changes<T: Serialize>(old: Option<&T>, new: &T) -> BTreeMap<String, Change> {
    let (mut before, mut after) = (BTreeMap::new(), BTreeMap::new());
    if let Some(old) = old {
        flatten("", &serde_json::to_value(old).unwrap_or(Value::Null), &mut before);
    }
    flatten("", &serde_json::to_value(new).unwrap_or(Value::Null), &mut after);
    let paths: std::collections::BTreeSet<&String> = before.keys().chain(after.keys()).collect();
    let mut out = BTreeMap::new();
    for path in paths {
        let (o, n) = (before.get(path).cloned().unwrap_or(Value::Null), after.get(path).cloned().unwrap_or(Value::Null));
        if o == n {
            continue;
        }
        let secret = path.rsplit('.').next().is_some_and(|leaf| SECRET_FIELDS.contains(&leaf));
        let change = if secret { Change::Redacted(REDACTED.to_owned()) } else { Change::Values { old: o, new: n } };
        out.insert(path.clone(), change);
    }
    out
}

fn flatten(prefix: &str, value: &Value, out: &mut BTreeMap<String, Value>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                let path = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                flatten(&path, v, out);
            }
        }
        Value::Null => {}
        other => {
            out.insert(prefix.to_owned(), other.clone());
        }
    }
}

/// A caller's `reason`, trimmed; `required` makes its absence a 422 naming it.
pub fn reason(given: Option<&str>, required: bool, why_required: &str) -> Result<Option<String>, crate::validation::FieldErrors> {
    use crate::validation::FieldErrors;
    let reason = given.map(str::trim).filter(|r| !r.is_empty());
    match reason {
        None if required => Err(FieldErrors::one("reason", format!("is required {why_required}"))),
        Some(r) if r.chars().count() > MAX_REASON_CHARS => {
            Err(FieldErrors::one("reason", format!("must be at most {MAX_REASON_CHARS} characters")))
        }
        r => Ok(r.map(str::to_owned)),
    }
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
            changes: BTreeMap::new(),
            chain: None,
            seq: None,
            prev_hash: None,
            hash: None,
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

    pub fn with_changes(mut self, changes: BTreeMap<String, Change>) -> Self {
        self.changes = changes;
        self
    }

    /// The chain the entry belongs to: a patient's entity (`patient/P1`) or a
    /// `patientId` detail puts it in that patient's chain, anything else in
    /// the trial's. One rule, so every writer of an entity picks the same chain.
    pub fn chain_id(&self) -> chain::ChainId {
        let patient = self
            .entity
            .strip_prefix("patient/")
            .or_else(|| self.details.get("patientId").and_then(serde_json::Value::as_str))
            .and_then(|p| crate::PatientId::parse(p).ok());
        patient.map_or(chain::ChainId::Trial, chain::ChainId::Patient)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn changes_name_each_changed_field_with_old_and_new_values() {
        // GIVEN a definition whose name and webhook url change and whose sites are added to
        let old = json!({"name": "A", "sites": ["s1"], "alerting": {"webhook": {"url": "https://a", "secret": "s-old-0123456789"}}});
        let new = json!({"name": "B", "sites": ["s1", "s2"], "alerting": {"webhook": {"url": "https://b", "secret": "s-old-0123456789"}}});
        // WHEN compared
        let c = changes(Some(&old), &new);
        // THEN exactly those fields are recorded, old -> new; unchanged ones are not
        assert_eq!(c.len(), 3, "{c:?}");
        assert_eq!(c["name"], Change::Values { old: json!("A"), new: json!("B") });
        assert_eq!(c["sites"], Change::Values { old: json!(["s1"]), new: json!(["s1", "s2"]) });
        assert_eq!(c["alerting.webhook.url"], Change::Values { old: json!("https://a"), new: json!("https://b") });
    }

    #[test]
    fn a_webhook_secret_appears_only_as_changed() {
        // GIVEN a secret that is set, then rotated
        let none = json!({"alerting": {}});
        let set = json!({"alerting": {"webhook": {"url": "https://a", "secret": "first-secret-0123"}}});
        let rotated = json!({"alerting": {"webhook": {"url": "https://a", "secret": "second-secret-456"}}});
        for (old, new) in [(&none, &set), (&set, &rotated)] {
            // WHEN the change is recorded
            let c = changes(Some(old), new);
            // THEN the secret's entry is "changed", and no value of it is anywhere in the entry
            assert_eq!(c["alerting.webhook.secret"], Change::Redacted(REDACTED.into()));
            let text = serde_json::to_string(&c).unwrap();
            assert!(!text.contains("first-secret") && !text.contains("second-secret"), "{text}");
        }
        // AND a creation records every field as new, the secret still redacted
        let created = changes(None, &set);
        assert_eq!(created["alerting.webhook.url"], Change::Values { old: Value::Null, new: json!("https://a") });
        assert_eq!(created["alerting.webhook.secret"], Change::Redacted(REDACTED.into()));
    }

    #[test]
    fn a_required_reason_must_be_given_and_bounded() {
        assert!(reason(None, true, "to withdraw").is_err());
        assert!(reason(Some("   "), true, "to withdraw").is_err());
        assert_eq!(reason(Some(" consent withdrawn "), true, "x").unwrap().as_deref(), Some("consent withdrawn"));
        assert_eq!(reason(None, false, "x").unwrap(), None);
        assert!(reason(Some(&"x".repeat(MAX_REASON_CHARS + 1)), false, "x").is_err());
    }
}
