//! The analyzer's batch read against the emulator, through the real SDK
//! client: one BatchGetItem per 100 keys, every record decoded as the single
//! reads decode it.

mod aws_support;

use aws_support::{at, audit, enrol_patient, patient, trial, Emulator};
use trialwatch::news2::{News2Result, RiskLevel};
use trialwatch::ports::*;
use trialwatch::trial::Trial;
use trialwatch::vitals::{VitalCode, VitalReading, VitalValue};
use trialwatch::vitals_state::VitalsState;
use trialwatch::{PatientId, ReadingId, TrialId};

fn a_trial() -> Trial {
    serde_json::from_value(serde_json::json!({
        "trialId": trial().as_str(), "updatedAt": "2026-11-26T20:00:00.000Z",
        "name": "Heart failure at home", "sites": [{"id": "s1", "name": "Leeds"}],
        "alerting": {"news2": {"freshnessMinutes": 45, "cooldownMinutes": 30}}
    }))
    .unwrap()
}

fn state(p: &PatientId) -> VitalsState {
    let mut s = VitalsState::new(trial(), p.clone());
    s.version = 1;
    let reading = VitalReading {
        reading_id: ReadingId::parse("r-1").unwrap(),
        code: VitalCode::HeartRate,
        value: VitalValue::Number(72.0),
        observed_at: at("2026-11-26T20:00:00Z"),
    };
    trialwatch::vitals::merge_latest(&mut s.latest, &[reading]);
    s.news2 = Some(News2Result { score: 0, risk_level: RiskLevel::Low, components: vec![], missing: vec![], observed_at: None });
    s
}

#[tokio::test]
async fn a_batch_of_fifty_five_patients_and_its_trial_is_read_in_two_consistent_calls_and_decoded_as_single_reads() {
    // GIVEN a trial, 54 enrolled patients (every third with a vitals state) and one never enrolled
    let env = Emulator::provision("batchread").await;
    let setup = env.store();
    setup.put_trial(&a_trial(), &audit("trial", "trial.created", "2026-11-26T20:00:00Z")).await.unwrap();
    let enrolled: Vec<PatientId> = (0..54).map(|i| patient(&format!("P-{i:03}"))).collect();
    for (i, p) in enrolled.iter().enumerate() {
        enrol_patient(&setup, p).await;
        if i % 3 == 0 {
            assert_eq!(setup.put_state(None, &state(p), &[], &[]).await.unwrap(), StateWrite::Written);
        }
    }
    let stranger = patient("P-999");
    let t = trial();
    let mut keys: Vec<(&TrialId, &PatientId)> = enrolled.iter().map(|p| (&t, p)).collect();
    keys.push((&t, &stranger));
    // AND a patient listed twice (two records of one patient), which DynamoDB would refuse as a repeated key
    keys.push((&t, &enrolled[0]));

    // WHEN the batch is read: the trial plus 55 patients is 111 distinct keys
    let (store, requests) = env.counted_store();
    let read = store.read_batch(&[&t], &keys).await.unwrap();

    // THEN two BatchGetItem calls (100 + 11 keys) and no other request
    assert_eq!(requests.get("BatchGetItem"), 2);
    assert_eq!(requests.total(), 2);
    // AND every record is what the single consistent reads return, field for field
    assert_eq!(read.trials.get(&t), Some(&a_trial()));
    assert_eq!(read.enrolments.len(), 54);
    assert_eq!(read.states.len(), 18);
    for p in &enrolled {
        let key = (t.clone(), p.clone());
        assert_eq!(read.enrolments.get(&key), setup.get_enrolment_consistent(&t, p).await.unwrap().as_ref(), "{p}");
        assert_eq!(read.states.get(&key), setup.get_state(&t, p).await.unwrap().as_ref(), "{p}");
        assert_ne!(read.enrolments[&key].audit_head, Default::default(), "the chain head on the enrolment is read too");
    }
    // AND the stranger is simply absent
    assert!(!read.enrolments.contains_key(&(t.clone(), stranger.clone())));
    assert!(!read.states.contains_key(&(t.clone(), stranger)));
}

#[tokio::test]
async fn a_batch_of_an_unknown_trial_reads_nothing_and_an_empty_batch_sends_nothing() {
    let env = Emulator::provision("batchread-empty").await;
    let (store, requests) = env.counted_store();
    // GIVEN a trial that was never written
    let ghost = TrialId::parse("tw-ghost").unwrap();
    let p = patient("P-1");
    // WHEN read THEN nothing is found, in one call
    let read = store.read_batch(&[&ghost], &[(&ghost, &p)]).await.unwrap();
    assert!(read.trials.is_empty() && read.enrolments.is_empty() && read.states.is_empty());
    assert_eq!(requests.get("BatchGetItem"), 1);
    // AND an empty read costs no request
    requests.reset();
    let empty = store.read_batch(&[], &[]).await.unwrap();
    assert!(empty.trials.is_empty());
    assert_eq!(requests.total(), 0);
}
