//! The codec against what it replaced: `serde_dynamo::to_item` and
//! `to_attribute_value`, converted into the SDK's types.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use proptest::prelude::*;
use serde::Serialize;

use super::*;
use crate::ids::{PatientId, ReadingId, TrialId};
use crate::news2::{RiskLevel, Spo2Scale};
use crate::vitals::{merge_latest, Avpu, VitalCode, VitalReading, VitalValue};
use crate::vitals_state::VitalsState;

fn serde_dynamo_item<T: Serialize>(value: &T) -> Result<Item, serde_dynamo::Error> {
    serde_dynamo::to_item(value)
}

fn json() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::Bool),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<u64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_filter("JSON numbers are finite", |f| f.is_finite()).prop_map(serde_json::Value::from),
        ".{0,12}".prop_map(serde_json::Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
            proptest::collection::btree_map(".{0,8}", inner, 0..6).prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

#[derive(Debug, Clone, Serialize)]
enum Variant {
    Unit,
    Newtype(i32),
    Tuple(u8, String),
    Struct { a: Option<f32>, b: char },
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct Inner {
    flag: bool,
    small: i8,
    wide: u64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct Every {
    text: String,
    maybe: Option<i16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    skipped: Option<u32>,
    unit: (),
    pair: (u16, f64),
    list: Vec<Variant>,
    by_number: BTreeMap<u32, Inner>,
    by_flag: HashMap<bool, String>,
    by_name: BTreeMap<String, Option<Variant>>,
    #[serde(flatten)]
    flattened: Inner,
    bytes: serde_bytes_like::Bytes,
}

/// `serialize_bytes` without a dependency of its own.
mod serde_bytes_like {
    #[derive(Debug, Clone)]
    pub struct Bytes(pub Vec<u8>);
    impl serde::Serialize for Bytes {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(&self.0)
        }
    }
}

fn variant() -> impl Strategy<Value = Variant> {
    prop_oneof![
        Just(Variant::Unit),
        any::<i32>().prop_map(Variant::Newtype),
        (any::<u8>(), ".{0,6}").prop_map(|(a, b)| Variant::Tuple(a, b)),
        (proptest::option::of(any::<f32>()), any::<char>()).prop_map(|(a, b)| Variant::Struct { a, b }),
    ]
}

fn inner() -> impl Strategy<Value = Inner> {
    (any::<bool>(), any::<i8>(), any::<u64>()).prop_map(|(flag, small, wide)| Inner { flag, small, wide })
}

fn every() -> impl Strategy<Value = Every> {
    (
        (".{0,10}", proptest::option::of(any::<i16>()), proptest::option::of(any::<u32>()), (any::<u16>(), any::<f64>())),
        proptest::collection::vec(variant(), 0..4),
        proptest::collection::btree_map(any::<u32>(), inner(), 0..3),
        proptest::collection::hash_map(any::<bool>(), ".{0,4}", 0..2),
        proptest::collection::btree_map(".{0,5}", proptest::option::of(variant()), 0..3),
        inner(),
        proptest::collection::vec(any::<u8>(), 0..8),
    )
        .prop_map(|((text, maybe, skipped, pair), list, by_number, by_flag, by_name, flattened, bytes)| Every {
            text,
            maybe,
            skipped,
            unit: (),
            pair,
            list,
            by_number,
            by_flag,
            by_name,
            flattened,
            bytes: serde_bytes_like::Bytes(bytes),
        })
}

/// A state as the analyzer writes it: readings merged, scored, an alert recorded.
fn state(values: Vec<(usize, f64, i64)>, version: u64, alert: Option<(usize, i64)>) -> VitalsState {
    let now: DateTime<Utc> = "2026-11-26T20:00:00Z".parse().unwrap();
    let mut s = VitalsState::new(TrialId::parse("tw-1").unwrap(), PatientId::parse("P-1").unwrap());
    s.version = version;
    let readings: Vec<VitalReading> = values
        .into_iter()
        .enumerate()
        .map(|(i, (code, x, ms))| {
            let code = VitalCode::ALL[code % VitalCode::ALL.len()];
            let value = match code {
                VitalCode::SupplementalOxygen => VitalValue::Flag(x > 0.5),
                VitalCode::Consciousness => VitalValue::Avpu(if x > 0.5 { Avpu::A } else { Avpu::V }),
                _ => VitalValue::Number(x),
            };
            VitalReading {
                reading_id: ReadingId::parse(&format!("r{i}")).unwrap(),
                code,
                value,
                observed_at: now - chrono::Duration::milliseconds(ms),
            }
        })
        .collect();
    merge_latest(&mut s.latest, &readings);
    let result = crate::news2::score(&s.latest, Spo2Scale::Scale1, now, chrono::Duration::hours(24));
    s.alerting_parameters = result.components.iter().map(|c| c.parameter).collect();
    s.news2 = Some(result);
    if let Some((level, ms)) = alert {
        s.last_alert_level = Some(RiskLevel::ALL[level % RiskLevel::ALL.len()]);
        s.last_alert_at = Some(now - chrono::Duration::milliseconds(ms));
        s.escalation_seq = 1;
        s.last_alert_id = Some(crate::ids::AlertId::for_escalation(&s.trial_id, &s.patient_id, RiskLevel::High, 1));
        s.below_since = Some(now - chrono::Duration::microseconds(ms));
    }
    s
}

proptest! {
    #[test]
    fn an_f64_is_written_as_its_display_text(
        x in prop_oneof![
            any::<f64>(),
            (-1e16f64..1e16).prop_map(f64::trunc),
            (0u32..400).prop_map(f64::from),
            Just(-0.0),
            Just(9_007_199_254_740_992.0),
            Just(-9_007_199_254_740_991.0),
            Just(f64::NAN),
            Just(f64::NEG_INFINITY),
        ],
    ) {
        prop_assert_eq!(f64_text(x), x.to_string());
    }

    #[test]
    fn an_unsigned_integer_is_written_as_its_display_text(n in prop_oneof![any::<u64>(), 0u64..1000, Just(0), Just(u64::MAX)]) {
        let mut text = String::from("x");
        push_u64(&mut text, n);
        prop_assert_eq!(text, format!("x{n}"));
    }

    /// A shaped item is the map the inserts it replaced build, whatever the values, and
    /// one shape serves every item of its kind.
    #[test]
    fn a_shaped_item_is_the_map_its_inserts_build(items in proptest::collection::vec((".{0,12}", any::<u64>(), any::<bool>()), 1..4)) {
        static SHAPE: Shape<4> = Shape::new(["pk", "sk", "count", "flag"]);
        for (text, count, flag) in items {
            let values = || [AttributeValue::S(text.clone()), AttributeValue::S(format!("{text}#")), AttributeValue::N(count.to_string()), AttributeValue::Bool(flag)];
            let mut inserted = Item::new();
            for (name, value) in ["pk", "sk", "count", "flag"].into_iter().zip(values()) {
                inserted.insert(name.to_owned(), value);
            }
            prop_assert_eq!(SHAPE.item(values()), inserted);
        }
    }

    #[test]
    fn any_json_object_is_written_as_serde_dynamo_writes_it(value in json()) {
        let expected = serde_dynamo_item(&value).ok();
        prop_assert_eq!(to_item(&value).ok(), expected);
        let expected: Option<AttributeValue> = serde_dynamo::to_attribute_value(&value).ok();
        prop_assert_eq!(to_attribute_value(&value).ok(), expected);
    }

    #[test]
    fn every_serde_shape_a_record_uses_is_written_as_serde_dynamo_writes_it(value in every()) {
        prop_assert_eq!(to_item(&value).unwrap(), serde_dynamo_item(&value).unwrap());
    }

    #[test]
    fn a_vitals_state_item_is_serde_dynamo_s(
        values in proptest::collection::vec((0usize..8, 0.0f64..300.0, 0i64..100_000_000), 0..12),
        version in any::<u64>(),
        alert in proptest::option::of((0usize..4, 0i64..100_000_000)),
    ) {
        let s = state(values, version, alert);
        prop_assert_eq!(to_item(&s).unwrap(), serde_dynamo_item(&s).unwrap());
        // AND the stored item (latest and news2 as JSON text) reads back exactly, every f64 too
        let item = crate::aws::dynamo::to_record("t", "vitals state", &s, [("pk", "P".to_owned())]).unwrap();
        prop_assert_eq!(crate::aws::dynamo::from_record::<VitalsState>("t", "vitals state", item).unwrap(), s);
    }
}

#[test]
fn what_serde_dynamo_refuses_is_refused() {
    // GIVEN values that are no item: a list, a string, a map keyed by floats
    let list = vec![1, 2];
    assert!(to_item(&list).is_err() && serde_dynamo_item(&list).is_err());
    assert!(to_item("text").is_err() && serde_dynamo_item(&"text").is_err());
    let float_keys: Vec<(f64, u8)> = vec![(1.5, 1)];
    let as_map = FloatKeys(float_keys);
    assert!(to_item(&as_map).is_err() && serde_dynamo_item(&as_map).is_err());
    // AND an i128, which serde_dynamo does not write either
    assert!(to_attribute_value(&1i128).is_err());
    assert!(serde_dynamo::to_attribute_value::<_, AttributeValue>(1i128).is_err());
}

#[test]
fn serde_dynamo_s_sets_are_refused_not_written_differently() {
    let set = serde_dynamo::string_set::StringSet(vec!["a".to_owned()]);
    assert!(to_attribute_value(&set).is_err());
}

#[test]
fn the_stored_records_of_a_batch_are_serde_dynamo_s() {
    // GIVEN the audit entry and the events an escalation writes
    let s = state(vec![(0, 30.0, 0), (1, 85.0, 0), (4, 140.0, 0)], 3, Some((2, 0)));
    let at: DateTime<Utc> = "2026-11-26T20:00:00.123Z".parse().unwrap();
    let entry = crate::audit::AuditEntry::new(s.trial_id.clone(), "alert/a1", "alert.raised", crate::audit::Actor::system("t"), at)
        .with_detail("patientId", "P-1")
        .with_detail("level", "high");
    let event = crate::domain_event::DomainEvent::risk_level_changed(&s, None, RiskLevel::High, at, None);
    // THEN each is written as serde_dynamo writes it
    assert_eq!(to_item(&entry).unwrap(), serde_dynamo_item(&entry).unwrap());
    assert_eq!(to_attribute_value(&event).unwrap(), serde_dynamo::to_attribute_value::<_, AttributeValue>(&event).unwrap());
    assert_eq!(to_item(&s).unwrap(), serde_dynamo_item(&s).unwrap());
}

#[test]
fn a_state_item_holds_latest_and_news2_as_json_text_and_reads_back_both_forms() {
    // GIVEN a scored state with an alert recorded
    let s = state(vec![(0, 30.0, 0), (1, 85.5, 10), (4, 140.0, 0), (6, 0.7, 0)], 3, Some((2, 5)));
    // WHEN written
    let item = crate::aws::dynamo::to_record("t", "vitals state", &s, [("pk", "P".to_owned()), ("sk", "S".to_owned())]).unwrap();
    // THEN the nested fields are one text attribute each, every other attribute top-level as before
    assert!(matches!(&item["latest"], AttributeValue::S(_)) && matches!(&item["news2"], AttributeValue::S(_)), "{item:?}");
    assert!(item.len() <= 14, "{} attributes", item.len());
    assert_eq!(item["version"], AttributeValue::N("3".into()));
    assert!(matches!(&item["lastAlertId"], AttributeValue::S(_)));
    // AND it reads back as the same state
    assert_eq!(crate::aws::dynamo::from_record::<VitalsState>("t", "vitals state", item.clone()).unwrap(), s);
    // GIVEN the same state as items were written before the text form: nested maps
    let mut tree = serde_json::to_value(&s).unwrap();
    for field in ["latest", "news2"] {
        let text = tree[field].as_str().unwrap().to_owned();
        tree[field] = serde_json::from_str(&text).unwrap();
    }
    let mut old: Item = serde_dynamo_item(&tree).unwrap();
    assert!(matches!(&old["latest"], AttributeValue::M(_)) && matches!(&old["news2"], AttributeValue::M(_)));
    old.insert("pk".into(), AttributeValue::S("P".into()));
    // THEN it reads back as the same state too
    assert_eq!(crate::aws::dynamo::from_record::<VitalsState>("t", "vitals state", old).unwrap(), s);
    // AND a state without a result (news2 absent, as a null is dropped) reads back
    let fresh = VitalsState::new(s.trial_id.clone(), s.patient_id.clone());
    let item = crate::aws::dynamo::to_record("t", "vitals state", &fresh, []).unwrap();
    assert!(!item.contains_key("news2"));
    assert_eq!(crate::aws::dynamo::from_record::<VitalsState>("t", "vitals state", item).unwrap(), fresh);
}

struct FloatKeys(Vec<(f64, u8)>);

impl Serialize for FloatKeys {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}
