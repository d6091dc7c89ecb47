//! Domain events: what integrators (EHRs, sponsor warehouses, CTMS) subscribe
//! to on the EventBridge bus instead of polling. Each event is built here from
//! ids, levels, statuses and times only — never an answer, a vital sign's
//! value or a note — so no caller can put PHI on the bus.
//!
//! Delivery is a transactional outbox: the writer of a state change puts each
//! of its events as a pending item in the SAME DynamoDB transaction
//! ([`crate::ports::PendingEvents`]), publishes them after the commit and
//! deletes what the bus accepted; a scheduled sweeper publishes whatever is
//! left past [`grace`]. So a committed change is always announced, at least
//! once, and `detail.eventId` ([`EventId`]) — a hash of the event type, the
//! aggregate and its version — is the same on every retry and re-sweep, for
//! consumers to deduplicate on.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::alert::{Alert, AlertReason};
use crate::correlation::CorrelationId;
use crate::enrolment::Enrolment;
use crate::news2::RiskLevel;
use crate::report::ReportMeta;
use crate::submission::StoredSubmission;
use crate::timestamp;
use crate::vitals_state::VitalsState;

/// The `source` of every event TrialWatch puts on its bus.
pub const SOURCE: &str = "trialwatch";

/// PutEvents takes at most 10 entries per call.
pub const MAX_PUT_EVENTS: usize = 10;

/// Partitions of the pending-events index (1,000 writes/s each). Sixteen:
/// at 50k submissions/s with per-submission events opted in, pending items
/// are written and deleted within milliseconds, but their index writes still
/// land here; trials that opt in are expected to be few (README, "Integrations").
pub const EVENT_SHARDS: u32 = 16;

/// Events one submission's transaction may carry: SubmissionReceived and one
/// AlertRaised per PRO alert. With the submission's 4 fixed items, its audit
/// entries (1 + alerts) and its alert items, that is 4 + 26 + 25 + 26 = 81 of
/// TransactWriteItems' 100.
pub const MAX_SUBMISSION_EVENTS: usize = 1 + crate::outbox::MAX_PRO_ALERTS_PER_SUBMISSION;

/// How long the inline publish has before the sweeper takes over.
pub fn grace() -> Duration {
    Duration::seconds(30)
}

/// The event types, as `detail-type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum EventType {
    SubmissionReceived,
    RiskLevelChanged,
    AlertRaised,
    AlertDelivered,
    AlertDeliveryFailed,
    AlertAcknowledged,
    PatientEnrolmentChanged,
    ReportGenerated,
}

impl EventType {
    pub const ALL: [EventType; 8] = [
        EventType::SubmissionReceived,
        EventType::RiskLevelChanged,
        EventType::AlertRaised,
        EventType::AlertDelivered,
        EventType::AlertDeliveryFailed,
        EventType::AlertAcknowledged,
        EventType::PatientEnrolmentChanged,
        EventType::ReportGenerated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::SubmissionReceived => "SubmissionReceived",
            EventType::RiskLevelChanged => "RiskLevelChanged",
            EventType::AlertRaised => "AlertRaised",
            EventType::AlertDelivered => "AlertDelivered",
            EventType::AlertDeliveryFailed => "AlertDeliveryFailed",
            EventType::AlertAcknowledged => "AlertAcknowledged",
            EventType::PatientEnrolmentChanged => "PatientEnrolmentChanged",
            EventType::ReportGenerated => "ReportGenerated",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// The schema file under `docs/events/`.
    pub fn schema_file(self) -> String {
        format!("{}.schema.json", self.as_str())
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `detail.eventId`: `ev-` and 40 hex characters of SHA-256 over the event
/// type, the aggregate's id and its version (a state version, an alert's
/// outcome, a submission id). The same change always gets the same id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EventId(String);

impl EventId {
    pub fn of(kind: EventType, aggregate: &[&str]) -> Self {
        let mut h = Sha256::new();
        h.update(kind.as_str().as_bytes());
        for part in aggregate {
            h.update([0u8]);
            h.update(part.as_bytes());
        }
        // 40 hex characters are the first 20 bytes.
        let mut id = String::with_capacity(43);
        id.push_str("ev-");
        id.push_str(&crate::ids::lower_hex(&h.finalize()[..20]));
        Self(id)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id's stable shard in the pending-events index (FNV-1a).
    pub fn shard(&self) -> u32 {
        let mut h: u32 = 0x811c_9dc5;
        for b in self.0.bytes() {
            h ^= u32::from(b);
            h = h.wrapping_mul(0x0100_0193);
        }
        h % EVENT_SHARDS
    }
}

impl std::fmt::Display for EventId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One event: its type and its `detail` object. Built only by the
/// constructors below, which take ids, levels and times.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DomainEvent {
    pub detail_type: EventType,
    pub event_id: EventId,
    /// When the state change happened (also the outbox's grace start). Written in
    /// chrono's serde form without chrono's formatter ([`timestamp::serialize`]).
    #[serde(serialize_with = "timestamp::serialize")]
    pub occurred_at: DateTime<Utc>,
    /// The whole `detail`, `eventId` and `occurredAt` included.
    pub detail: Map<String, Value>,
}

impl DomainEvent {
    fn new(kind: EventType, aggregate: &[&str], at: DateTime<Utc>, correlation: Option<&CorrelationId>, fields: Value) -> Self {
        let event_id = EventId::of(kind, aggregate);
        let mut detail = Map::new();
        detail.insert("eventId".into(), event_id.as_str().into());
        detail.insert("occurredAt".into(), timestamp::format(at).into());
        if let Some(c) = correlation {
            detail.insert("correlationId".into(), c.as_str().into());
        }
        if let Value::Object(fields) = fields {
            detail.extend(fields);
        }
        Self { detail_type: kind, event_id, occurred_at: at, detail }
    }

    /// A questionnaire submission was stored (only for trials that opt in:
    /// [`crate::trial::Trial::publish_submission_events`]).
    pub fn submission_received(sub: &StoredSubmission, correlation: Option<&CorrelationId>) -> Self {
        Self::new(
            EventType::SubmissionReceived,
            &[sub.trial_id.as_str(), sub.patient_id.as_str(), &sub.submission_id.to_string()],
            sub.received_at,
            correlation,
            json!({
                "trialId": sub.trial_id, "patientId": sub.patient_id, "siteId": sub.site_id,
                "submissionId": sub.submission_id, "questionnaireId": sub.questionnaire_id,
                "questionnaireVersion": sub.questionnaire_version,
                "completedAt": timestamp::format(sub.completed_at), "receivedAt": timestamp::format(sub.received_at),
            }),
        )
    }

    /// The patient's NEWS2 risk level moved (`from` is `None` for the first score).
    /// Its version is the vitals state's, so a redelivered batch that writes
    /// the same version announces the same event.
    pub fn risk_level_changed(
        state: &VitalsState,
        from: Option<RiskLevel>,
        to: RiskLevel,
        at: DateTime<Utc>,
        correlation: Option<&CorrelationId>,
    ) -> Self {
        Self::new(
            EventType::RiskLevelChanged,
            &[state.trial_id.as_str(), state.patient_id.as_str(), &state.version.to_string()],
            at,
            correlation,
            json!({
                "trialId": state.trial_id, "patientId": state.patient_id,
                "fromLevel": from.map(RiskLevel::as_str), "toLevel": to.as_str(), "stateVersion": state.version,
            }),
        )
    }

    /// An alert was raised (NEWS2 escalation or PRO rule): its id, level and rule.
    pub fn alert_raised(alert: &Alert) -> Self {
        let (rule, submission) = match &alert.reason {
            AlertReason::News2 { .. } => ("news2", None),
            AlertReason::ProRule { submission_id, .. } => ("pro", Some(submission_id.to_string())),
        };
        let mut fields = Self::alert_fields(alert);
        fields.insert("rule".into(), rule.into());
        fields.insert("createdAt".into(), timestamp::format(alert.created_at).into());
        if let Some(s) = submission {
            fields.insert("submissionId".into(), s.into());
        }
        Self::new(
            EventType::AlertRaised,
            &[alert.trial_id.as_str(), alert.alert_id.as_str()],
            alert.created_at,
            alert.correlation_id.as_ref(),
            Value::Object(fields),
        )
    }

    /// The alert's delivery ended: delivered, or failed for good.
    pub fn alert_delivery_finished(alert: &Alert, delivered: bool, at: DateTime<Utc>) -> Self {
        let kind = if delivered { EventType::AlertDelivered } else { EventType::AlertDeliveryFailed };
        let mut fields = Self::alert_fields(alert);
        fields.insert(if delivered { "deliveredAt" } else { "failedAt" }.into(), timestamp::format(at).into());
        Self::new(kind, &[alert.trial_id.as_str(), alert.alert_id.as_str()], at, alert.correlation_id.as_ref(), Value::Object(fields))
    }

    /// Site staff acknowledged the alert (the note is never carried).
    pub fn alert_acknowledged(alert: &Alert, at: DateTime<Utc>, correlation: Option<&CorrelationId>) -> Self {
        let mut fields = Self::alert_fields(alert);
        fields.insert("acknowledgedAt".into(), timestamp::format(at).into());
        Self::new(EventType::AlertAcknowledged, &[alert.trial_id.as_str(), alert.alert_id.as_str()], at, correlation, Value::Object(fields))
    }

    /// A patient's enrolment was created or its status changed. Versioned by
    /// status and time: a replayed request writes the same pair.
    pub fn patient_enrolment_changed(e: &Enrolment, at: DateTime<Utc>, correlation: Option<&CorrelationId>) -> Self {
        let changed_at = timestamp::format(at);
        Self::new(
            EventType::PatientEnrolmentChanged,
            &[e.trial_id.as_str(), e.patient_id.as_str(), e.status.as_str(), &changed_at],
            at,
            correlation,
            json!({
                "trialId": e.trial_id, "patientId": e.patient_id, "siteId": e.site_id,
                "status": e.status.as_str(), "changedAt": changed_at,
            }),
        )
    }

    /// A report PDF was stored.
    pub fn report_generated(meta: &ReportMeta, correlation: Option<&CorrelationId>) -> Self {
        Self::new(
            EventType::ReportGenerated,
            &[meta.trial_id.as_str(), meta.report_id.as_str()],
            meta.generated_at,
            correlation,
            json!({
                "trialId": meta.trial_id, "reportId": meta.report_id,
                "periodFrom": meta.from.to_string(), "periodTo": meta.to.to_string(),
                "generatedAt": timestamp::format(meta.generated_at), "pages": meta.pages,
            }),
        )
    }

    fn alert_fields(alert: &Alert) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("trialId".into(), alert.trial_id.as_str().into());
        m.insert("alertId".into(), alert.alert_id.as_str().into());
        m.insert("patientId".into(), alert.patient_id.as_str().into());
        m.insert("siteId".into(), alert.site_id.as_str().into());
        m.insert("level".into(), alert.level.as_str().into());
        m
    }

    /// The `detail` as the JSON text PutEvents takes.
    pub fn detail_json(&self) -> String {
        Value::Object(self.detail.clone()).to_string()
    }

    pub fn correlation_id(&self) -> Option<&str> {
        self.detail.get("correlationId").and_then(Value::as_str)
    }

    /// When the sweeper takes this event over if the inline publish did not happen.
    pub fn first_due(&self) -> DateTime<Utc> {
        self.occurred_at + grace()
    }
}

/// A pending event the sweeper found past its due time.
#[derive(Debug, Clone, PartialEq)]
pub struct DueEvent {
    pub event: DomainEvent,
    pub due_at: DateTime<Utc>,
}

/// What a PutEvents call did with each entry: the events the bus accepted
/// (their pending items may go) and those it refused (they stay pending).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Published {
    pub accepted: Vec<EventId>,
    pub failed: usize,
}

/// Where a use case announces what it committed: the bus, and the pending
/// items its transaction wrote, settled once the bus took them. A failed
/// publish is not the use case's failure: the sweep publishes later.
#[derive(Clone, Copy)]
pub struct Announcer<'a> {
    pub bus: &'a dyn crate::ports::EventPublisher,
    pub pending: &'a dyn crate::ports::PendingEvents,
}

impl Announcer<'_> {
    /// [`announce`] on this bus and pending store.
    pub async fn announce(&self, events: &[DomainEvent]) -> Published {
        announce(self.bus, self.pending, events).await
    }
}

/// Publishes events and deletes the pending items of those the bus accepted.
/// Never fails its caller: the state change is committed, and whatever is not
/// published now stays pending for the sweeper. Runs inline, before the
/// response (nothing runs after it in Lambda).
pub async fn announce(
    publisher: &dyn crate::ports::EventPublisher,
    pending: &dyn crate::ports::PendingEvents,
    events: &[DomainEvent],
) -> Published {
    if events.is_empty() {
        return Published::default();
    }
    let published = match publisher.publish(events).await {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(error = e.code(), events = events.len(), "events not published; the sweeper will");
            return Published { accepted: vec![], failed: events.len() };
        }
    };
    if published.failed > 0 {
        tracing::warn!(failed = published.failed, "some events refused by the bus; the sweeper will retry them");
    }
    if let Err(e) = pending.settle(&published.accepted).await {
        // Published but still pending: the sweeper publishes them again
        // (same eventId), which consumers deduplicate.
        tracing::warn!(error = e.code(), "published events not settled");
    }
    published
}

/// The publisher of a process wired without a bus (unit tests, a function
/// before its bus is configured): it accepts nothing, so every event stays
/// pending for a sweep that has one. Never a loss, only a delay.
#[derive(Debug, Clone, Copy, Default)]
pub struct Unpublished;

#[async_trait::async_trait]
impl crate::ports::EventPublisher for Unpublished {
    async fn publish(&self, events: &[DomainEvent]) -> Result<Published, crate::ports::StorageError> {
        Ok(Published { accepted: vec![], failed: events.len() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::AlertReason;
    use crate::ids::{AlertId, PatientId, ReportId, SiteId, TrialId};

    fn at(t: &str) -> DateTime<Utc> {
        t.parse().unwrap()
    }

    /// Validates an event's `detail` against its schema file under docs/events/.
    pub(crate) fn assert_matches_schema(event: &DomainEvent) {
        let path = format!("{}/../docs/events/{}", env!("CARGO_MANIFEST_DIR"), event.detail_type.schema_file());
        let schema: Value = serde_json::from_str(&std::fs::read_to_string(&path).expect("schema file")).expect("schema JSON");
        let validator = jsonschema::validator_for(&schema).expect("a valid draft 2020-12 schema");
        let detail = Value::Object(event.detail.clone());
        let errors: Vec<String> = validator.iter_errors(&detail).map(|e| format!("{} at {}", e, e.instance_path)).collect();
        assert!(errors.is_empty(), "{} does not match {path}: {errors:?}", event.detail_type);
    }

    fn alert(reason: AlertReason) -> Alert {
        Alert {
            alert_id: AlertId::parse("al-1").unwrap(),
            trial_id: TrialId::parse("tw-1").unwrap(),
            patient_id: PatientId::parse("P0001").unwrap(),
            site_id: SiteId::parse("s1").unwrap(),
            level: RiskLevel::High,
            reason,
            created_at: at("2026-11-27T10:00:00Z"),
            correlation_id: CorrelationId::parse("req-123"),
        }
    }

    fn pro() -> AlertReason {
        AlertReason::ProRule {
            questionnaire_id: crate::ids::QuestionnaireId::parse("phq9").unwrap(),
            submission_id: crate::ids::SubmissionId::parse("7b0c2f43-2a8e-4e0a-9a53-0c8e1b1f0001").unwrap(),
            link_id: "q9".into(),
            value: 3.0,
            at_least: 1.0,
        }
    }

    fn submission() -> StoredSubmission {
        serde_json::from_value(json!({
            "trialId": "tw-1", "patientId": "P0001", "siteId": "s1",
            "submissionId": "7b0c2f43-2a8e-4e0a-9a53-0c8e1b1f0001", "questionnaireId": "phq9", "questionnaireVersion": "1",
            "completedAt": "2026-11-27T10:00:00Z", "receivedAt": "2026-11-27T10:00:01Z",
            "answers": [{"linkId": "q9", "value": 3}],
            "bodyHash": "h", "submittedBy": {"sub": "p", "role": "patient"}
        }))
        .expect("a submission")
    }

    fn state(version: u64) -> VitalsState {
        serde_json::from_value(json!({
            "trialId": "tw-1", "patientId": "P0001", "version": version, "latest": {}
        }))
        .expect("a state")
    }

    /// One event of every type, as the writers build them.
    pub(crate) fn one_of_each() -> Vec<DomainEvent> {
        let enrolment: Enrolment = serde_json::from_value(json!({
            "trialId": "tw-1", "patientId": "P0001", "siteId": "s1", "status": "withdrawn",
            "enrolledAt": "2026-11-01T00:00:00Z", "updatedAt": "2026-11-27T10:00:00Z"
        }))
        .unwrap();
        let report = ReportMeta {
            report_id: ReportId::parse("rp-1").unwrap(),
            trial_id: TrialId::parse("tw-1").unwrap(),
            from: "2026-11-01".parse().unwrap(),
            to: "2026-11-27".parse().unwrap(),
            generated_at: at("2026-11-27T10:00:00Z"),
            object_key: "reports/tw-1/rp-1.pdf".into(),
            pages: 3,
            bytes: 1000,
            summary: crate::report::ReportSummary::default(),
        };
        let corr = CorrelationId::parse("req-123");
        vec![
            DomainEvent::submission_received(&submission(), corr.as_ref()),
            DomainEvent::risk_level_changed(&state(4), None, RiskLevel::Medium, at("2026-11-27T10:00:00Z"), corr.as_ref()),
            DomainEvent::risk_level_changed(&state(5), Some(RiskLevel::Medium), RiskLevel::High, at("2026-11-27T10:00:00Z"), None),
            DomainEvent::alert_raised(&alert(AlertReason::News2 { score: 7, components: vec![] })),
            DomainEvent::alert_raised(&alert(pro())),
            DomainEvent::alert_delivery_finished(&alert(pro()), true, at("2026-11-27T10:00:05Z")),
            DomainEvent::alert_delivery_finished(&alert(pro()), false, at("2026-11-27T10:00:05Z")),
            DomainEvent::alert_acknowledged(&alert(pro()), at("2026-11-27T11:00:00Z"), corr.as_ref()),
            DomainEvent::patient_enrolment_changed(&enrolment, at("2026-11-27T10:00:00Z"), corr.as_ref()),
            DomainEvent::report_generated(&report, corr.as_ref()),
        ]
    }

    #[test]
    fn every_event_type_matches_its_schema_file() {
        let events = one_of_each();
        let types: std::collections::BTreeSet<EventType> = events.iter().map(|e| e.detail_type).collect();
        assert_eq!(types.len(), EventType::ALL.len(), "one event of every type is checked");
        for event in &events {
            assert_matches_schema(event);
            assert_eq!(event.detail["eventId"], event.event_id.as_str());
        }
    }

    #[test]
    fn a_schema_refuses_a_detail_that_carries_more_than_ids_levels_and_times() {
        // GIVEN an AlertRaised whose detail grew an answer value
        let mut event = DomainEvent::alert_raised(&alert(pro()));
        event.detail.insert("value".into(), 3.0.into());
        let path = format!("{}/../docs/events/AlertRaised.schema.json", env!("CARGO_MANIFEST_DIR"));
        let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        // THEN the schema refuses it (additionalProperties is false)
        assert!(!jsonschema::validator_for(&schema).unwrap().is_valid(&Value::Object(event.detail)));
    }

    #[test]
    fn the_event_id_is_the_same_for_the_same_change_and_differs_for_another() {
        let a = alert(pro());
        assert_eq!(DomainEvent::alert_raised(&a).event_id, DomainEvent::alert_raised(&a).event_id);
        // The same alert's outcomes are distinct events.
        let delivered = DomainEvent::alert_delivery_finished(&a, true, at("2026-11-27T10:00:05Z"));
        let failed = DomainEvent::alert_delivery_finished(&a, false, at("2026-11-27T10:00:05Z"));
        assert_ne!(delivered.event_id, failed.event_id);
        assert_ne!(delivered.event_id, DomainEvent::alert_raised(&a).event_id);
        // A retried delivery outcome, at another time, is the same event.
        assert_eq!(delivered.event_id, DomainEvent::alert_delivery_finished(&a, true, at("2026-11-27T10:09:00Z")).event_id);
        // Each state version is its own RiskLevelChanged; the same version is the same event.
        let t = at("2026-11-27T10:00:00Z");
        let v4 = DomainEvent::risk_level_changed(&state(4), None, RiskLevel::Medium, t, None).event_id;
        assert_eq!(v4, DomainEvent::risk_level_changed(&state(4), None, RiskLevel::Medium, t, None).event_id);
        assert_ne!(v4, DomainEvent::risk_level_changed(&state(5), None, RiskLevel::Medium, t, None).event_id);
        assert_eq!(
            DomainEvent::submission_received(&submission(), None).event_id,
            DomainEvent::submission_received(&submission(), CorrelationId::parse("another").as_ref()).event_id
        );
    }

    #[test]
    fn no_event_carries_an_answer_a_value_or_a_note() {
        for event in one_of_each() {
            let text = event.detail_json();
            for phi in ["\"value\"", "atLeast", "answers", "note", "score", "components", "\"q9\""] {
                assert!(!text.contains(phi), "{} carries {phi}: {text}", event.detail_type);
            }
        }
    }

    #[test]
    fn a_pending_event_round_trips_through_its_stored_form() {
        for event in one_of_each() {
            let stored = serde_json::to_value(&event).unwrap();
            assert_eq!(serde_json::from_value::<DomainEvent>(stored).unwrap(), event);
            assert!(event.event_id.shard() < EVENT_SHARDS);
        }
    }
}
