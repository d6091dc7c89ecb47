//! A patient's latest-vitals state item: the latest reading of each parameter,
//! the NEWS2 result computed from them and the alert escalation carried between
//! batches. Its own module because it holds both a vitals map and NEWS2 results:
//! in `vitals.rs` it made `vitals` and `news2` import each other.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{AlertId, PatientId, TrialId};
use crate::news2::{News2Result, Parameter, RiskLevel};
use crate::vitals::LatestVitals;

/// A patient's latest-vitals state item, updated under an optimistic version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VitalsState {
    pub trial_id: TrialId,
    pub patient_id: PatientId,
    /// Incremented on every write; a writer whose expected version is stale loses.
    pub version: u64,
    /// Stored as JSON text (see [`json_text`]).
    #[serde(serialize_with = "json_text::serialize_latest", deserialize_with = "json_text::deserialize")]
    pub latest: LatestVitals,
    /// Stored as JSON text (see [`json_text`]).
    #[serde(default, serialize_with = "json_text::serialize_news2", deserialize_with = "json_text::deserialize_option")]
    pub news2: Option<News2Result>,
    /// The open level: the highest alerted level that has not cleared (see
    /// the analyzer's escalation rules). A rise above it alerts; the cooldown
    /// only holds back a repeat of it.
    #[serde(default)]
    pub last_alert_level: Option<RiskLevel>,
    /// Data time of the last alert, the start of its cooldown.
    #[serde(default, serialize_with = "crate::timestamp::serialize_option")]
    pub last_alert_at: Option<DateTime<Utc>>,
    /// Alerts raised for this patient so far. It moves in the same versioned
    /// write that records the alert, so a redelivered batch assessed over the
    /// same stored state mints the same id. 0 on items older than the field.
    #[serde(default)]
    pub escalation_seq: u64,
    /// The last alert raised; its acknowledgement marks this item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_alert_id: Option<AlertId>,
    /// When site staff acknowledged `last_alert_id`. Written by the ack route
    /// in the acknowledgement's own transaction (with `version + 1`), never by
    /// the analyzer, which only carries it forward.
    #[serde(default, skip_serializing_if = "Option::is_none", serialize_with = "crate::timestamp::serialize_option")]
    pub last_alert_acked_at: Option<DateTime<Utc>>,
    /// Every parameter that scored while the patient was at or above the open
    /// level. A lower aggregate clears by time only while all of them are
    /// fresh: a drop caused by one of them going stale is no evidence of
    /// recovery. Empty on items older than the field: then the lower
    /// aggregate must be complete.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alerting_parameters: Vec<Parameter>,
    /// Data time of the first result of the current unbroken run of fresh
    /// results below the open level.
    #[serde(default, skip_serializing_if = "Option::is_none", serialize_with = "crate::timestamp::serialize_option")]
    pub below_since: Option<DateTime<Utc>>,
}

mod text;

/// The serde form of the two nested fields of the state item, `latest` and `news2`: one JSON
/// text each (an `S` attribute), not a tree of maps. As maps they were about 50 of the item's
/// 60 attributes, each a `String` key hashed into the SDK's map and freed again, on every write
/// and read of every patient's state: most of a state write's CPU (issue 16). No condition,
/// update expression, index or projection reads inside them (the ack's update touches only
/// top-level `version`, `lastAlertId` and `lastAlertAckedAt`), so nothing else changes.
/// Reading accepts both forms: the text, and the value itself, as items written before the
/// text form hold it (nested maps) and as JSON carries it.
pub(crate) mod json_text {
    use std::fmt;
    use std::marker::PhantomData;

    use serde::de::{self, DeserializeOwned, Deserializer, MapAccess, Visitor};
    use serde::Serializer;

    /// `latest` as its JSON text (written by [`super::text`], byte for byte serde_json's).
    pub fn serialize_latest<S: Serializer>(value: &crate::vitals::LatestVitals, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::text::latest(value))
    }

    /// `news2` as its JSON text; `None` stays a null (which the store drops), so absence keeps its one form.
    pub fn serialize_news2<S: Serializer>(value: &Option<crate::news2::News2Result>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(v) => s.serialize_str(&super::text::news2(v)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, T: DeserializeOwned, D: Deserializer<'de>>(d: D) -> Result<T, D::Error> {
        d.deserialize_any(TextOrValue(PhantomData))
    }

    pub fn deserialize_option<'de, T: DeserializeOwned, D: Deserializer<'de>>(d: D) -> Result<Option<T>, D::Error> {
        d.deserialize_option(OptionOf(PhantomData))
    }

    struct TextOrValue<T>(PhantomData<T>);

    impl<'de, T: DeserializeOwned> Visitor<'de> for TextOrValue<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a JSON text or a map")
        }
        fn visit_str<E: de::Error>(self, text: &str) -> Result<T, E> {
            serde_json::from_str(text).map_err(E::custom)
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
            T::deserialize(de::value::MapAccessDeserializer::new(map))
        }
    }

    struct OptionOf<T>(PhantomData<T>);

    impl<'de, T: DeserializeOwned> Visitor<'de> for OptionOf<T> {
        type Value = Option<T>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("null, a JSON text or a map")
        }
        fn visit_none<E: de::Error>(self) -> Result<Option<T>, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Option<T>, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Option<T>, D::Error> {
            deserialize(d).map(Some)
        }
    }
}

impl VitalsState {
    pub fn new(trial_id: TrialId, patient_id: PatientId) -> Self {
        Self {
            trial_id,
            patient_id,
            version: 0,
            latest: LatestVitals::new(),
            news2: None,
            last_alert_level: None,
            last_alert_at: None,
            escalation_seq: 0,
            last_alert_id: None,
            last_alert_acked_at: None,
            alerting_parameters: Vec::new(),
            below_since: None,
        }
    }

    /// Whether this is the next version of `previous` (what the writer read;
    /// `None`: nothing stored) for the same patient. Version 0 is never
    /// stored, so it neither follows nor is followed.
    pub fn follows(&self, previous: Option<&VitalsState>) -> bool {
        match previous {
            None => self.version == 1,
            Some(p) => {
                p.version > 0
                    && p.version.checked_add(1) == Some(self.version)
                    && p.trial_id == self.trial_id
                    && p.patient_id == self.patient_id
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_follows_only_the_stored_version_before_it_of_the_same_patient() {
        let state = |patient: &str, version: u64| {
            let mut s = VitalsState::new(TrialId::parse("t1").unwrap(), PatientId::parse(patient).unwrap());
            s.version = version;
            s
        };
        assert!(state("p1", 1).follows(None));
        assert!(state("p1", 3).follows(Some(&state("p1", 2))));
        assert!(!state("p1", 2).follows(None), "nothing stored: only version 1 follows");
        assert!(!state("p1", 4).follows(Some(&state("p1", 2))), "a skipped version");
        assert!(!state("p1", 1).follows(Some(&state("p1", 0))), "version 0 is never stored");
        assert!(!state("p2", 3).follows(Some(&state("p1", 2))), "another patient");
    }
}
