//! No PHI in logs, proved: the whole flow runs on the local stack (every
//! function in-process) with every log line captured at DEBUG, and the test
//! fails if any canary appears in them: a free-text answer, a decimal answer,
//! vital values, an acknowledgement note, the bearer tokens and the webhook
//! secret. Its own binary, so the capturing subscriber is the process's only one.

use std::time::Duration;

use serde_json::{json, Value};
use trialwatch_e2e::require_emulator;
use trialwatch_local::auth::DevIdentity;
use trialwatch_local::client::Api;
use trialwatch_local::receiver::WebhookReceiver;
use trialwatch_local::{scenario, Stack, StackConfig};

const TRIAL: &str = "tw-phi";
/// A heart rate no other log field will carry as a bare number (see [`numeric_leaks`]).
const CANARY_HEART_RATE: i64 = 173;

/// Fields whose numbers are timings or counts, where 173 is innocent.
fn innocent_number_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    ["ms", "latency", "duration", "elapsed", "status", "count", "attempt", "line", "port", "len", "size", "bytes"]
        .iter()
        .any(|t| k.ends_with(t) || k.contains("time"))
}

/// Log fields holding a numeric canary (the heart rate 173, or a decimal such as
/// the temperature 39.71) as a value: a JSON number equal to it (or a string
/// holding only it) under any key that is not a timing or count, or the number
/// rendered into a message. A substring match would be fooled by ids,
/// timestamps and hashes: "…16:15:39.710585Z" holds "39.71".
fn numeric_leaks(logs: &str, canary: &str) -> Vec<String> {
    let wanted: f64 = canary.parse().expect("a numeric canary");
    fn walk(key: &str, v: &Value, canary: &str, wanted: f64, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => m.iter().for_each(|(k, v)| walk(k, v, canary, wanted, out)),
            Value::Array(a) => a.iter().for_each(|v| walk(key, v, canary, wanted, out)),
            Value::Number(n) if n.as_f64() == Some(wanted) && !innocent_number_key(key) => out.push(format!("{key}={n}")),
            Value::String(s) if s.trim() == canary => out.push(format!("{key}=\"{s}\"")),
            // A value rendered into a message or an error string: "...value 173..." / "=39.71".
            Value::String(s) => {
                let bytes = s.as_bytes();
                for (i, _) in s.match_indices(canary) {
                    let before = i.checked_sub(1).map(|j| bytes[j]);
                    // An integer canary held as f64 renders as "173.0".
                    let mut end = i + canary.len();
                    if !canary.contains('.') && bytes.get(end) == Some(&b'.') && bytes.get(end + 1) == Some(&b'0') {
                        end += 1 + bytes[end + 1..].iter().take_while(|&&b| b == b'0').count();
                    }
                    let after = bytes.get(end).copied();
                    let bounded = |c: Option<u8>| c.is_none_or(|c| !c.is_ascii_alphanumeric() && c != b'.' && c != b'-');
                    let ends = |c: Option<u8>| bounded(c) && c != Some(b':');
                    if bounded(before) && ends(after) && before.is_some_and(|c| matches!(c, b' ' | b'=' | b'(' | b'[' | b'"' | b':' | b','))
                    {
                        out.push(format!("{key}: {s}"));
                    }
                }
            }
            _ => {}
        }
    }
    let mut out = vec![];
    for line in logs.lines() {
        match serde_json::from_str::<Value>(line) {
            Ok(v) => walk("", &v, canary, wanted, &mut out),
            Err(_) => walk("", &Value::String(line.to_owned()), canary, wanted, &mut out),
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_canary_value_of_a_whole_flow_appears_in_any_log_line() {
    require_emulator();
    // GIVEN every log line of the process captured, at DEBUG
    let captured = trialwatch::telemetry::CapturedLogs::default();
    let writer = captured.clone();
    trialwatch_local::logs::init(move || writer.clone(), tracing::level_filters::LevelFilter::DEBUG);

    // AND canaries: values that appear nowhere unless something logs them
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let answer_text = format!("CANARY-ANSWER-7f3a-{tag}");
    let note = format!("CANARY-NOTE-b91e-{tag}");
    let secret = format!("whsec-CANARY-SECRET-{tag}");
    let weight = 123.45; // a decimal answer
    let refused_weight = 987.65; // out of range: the 422 path must not log it either
    let temperature = 39.71;

    // AND a stack with the demo trial, its webhook at a receiver that checks signatures
    let stack = Stack::start(StackConfig::for_test("phi-logs")).await.expect("the local stack starts");
    let receiver = WebhookReceiver::start(&secret).await.expect("webhook receiver");
    let api = Api::new(&stack.base_url, &trialwatch_local::auth::dev_secret(), 4);
    let token = |who: DevIdentity| api.token(&who).expect("token");
    let admin = token(DevIdentity::new("admin").subject("phi-admin"));
    let patient_id = scenario::patient_id(0);
    let patient = token(DevIdentity::new("patient").trial(TRIAL).patient(&patient_id));
    let pairs = scenario::site_pairs(TRIAL);
    let staff = token(DevIdentity::new("site_staff").trial(TRIAL).sites(&[pairs[0].as_str()]).subject("phi-nurse"));
    let sponsor = token(DevIdentity::new("sponsor").trial(TRIAL).subject("phi-sponsor"));

    // WHEN the whole flow runs: trial, enrolment, answers (one refused), vitals,
    // alerts delivered to the webhook, an acknowledgement with a note, reads, a report
    let t = api.put(&format!("/v1/trials/{TRIAL}"), &admin, &scenario::trial_definition(&receiver.url, &secret)).await.unwrap();
    assert_eq!(t.status, 201, "{}", t.body);
    let base = format!("/v1/trials/{TRIAL}/patients/{patient_id}");
    let e = api.put(&base, &admin, &scenario::enrolment(0)).await.unwrap();
    assert_eq!(e.status, 201, "{}", e.body);

    let answers = |weight: f64| {
        let mut s = scenario::submission(&uuid::Uuid::new_v4().to_string(), chrono::Utc::now(), 1, scenario::PRO_THRESHOLD + 1);
        for a in s["answers"].as_array_mut().unwrap() {
            match a["linkId"].as_str() {
                Some("comment") => a["value"] = json!(answer_text),
                Some("weight-kg") => a["value"] = json!(weight),
                _ => {}
            }
        }
        s
    };
    let refused = api.post(&format!("{base}/submissions"), &patient, &answers(refused_weight)).await.unwrap();
    assert_eq!(refused.status, 422, "{}", refused.body);
    let s = api.post(&format!("{base}/submissions"), &patient, &answers(weight)).await.unwrap();
    assert_eq!(s.status, 201, "{}", s.body);

    let mut vitals = scenario::vitals(scenario::Condition::Well, chrono::Utc::now());
    for r in vitals["readings"].as_array_mut().unwrap() {
        match r["code"].as_str() {
            Some("heart_rate") => r["value"] = json!(CANARY_HEART_RATE),
            Some("temperature") => r["value"] = json!(temperature),
            _ => {}
        }
    }
    let v = api.post(&format!("{base}/vitals"), &patient, &vitals).await.unwrap();
    assert_eq!(v.status, 202, "{}", v.body);

    // the PRO alert and the NEWS2 alert (pulse 173 scores 3) reach the webhook
    let delivered = receiver.wait_until(Duration::from_secs(90), |got| got.len() >= 2).await;
    assert!(delivered, "two alerts delivered; got {:?}", receiver.received().keys().collect::<Vec<_>>());
    assert_eq!(receiver.rejected(), 0);
    let alerts = api.patient_alerts(TRIAL, &patient_id, &staff).await.expect("alerts");
    let alert_id = alerts[0]["alert"]["alertId"].as_str().expect("alertId").to_owned();
    let ack = api.post(&format!("/v1/trials/{TRIAL}/alerts/{alert_id}/ack"), &staff, &json!({"note": note})).await.unwrap();
    assert_eq!(ack.status, 200, "{}", ack.body);
    // the values come back to those entitled to them (so they were stored), through responses only
    let listed = api.get(&format!("{base}/submissions"), &staff).await.unwrap();
    assert!(listed.body.to_string().contains(&answer_text), "the answer is stored: {}", listed.body);
    assert_eq!(api.get(&base, &staff).await.unwrap().status, 200);
    let today = chrono::Utc::now().date_naive();
    let period = json!({"from": (today - chrono::Duration::days(6)).to_string(), "to": today.to_string()});
    let report = api.post(&format!("/v1/trials/{TRIAL}/reports"), &sponsor, &period).await.unwrap();
    assert_eq!(report.status, 201, "{}", report.body);
    receiver.shutdown().await;
    stack.shutdown().await;

    // THEN the logs saw the flow (ids and codes) ...
    let logs = captured.text();
    assert!(logs.lines().count() > 20 && logs.contains(TRIAL) && logs.contains(&alert_id), "the capture holds the flow's log lines");
    // ... and none of its canaries
    let signature = |jwt: &str| jwt.rsplit('.').next().unwrap_or_default().to_owned();
    let mut canaries = vec![("answer text", answer_text.clone()), ("ack note", note.clone()), ("webhook secret", secret.clone())];
    for (who, jwt) in [("admin", &admin), ("patient", &patient), ("staff", &staff), ("sponsor", &sponsor)] {
        canaries.push((who, jwt.clone()));
        canaries.push((who, signature(jwt)));
    }
    let leaks: Vec<String> = canaries
        .iter()
        .filter(|(_, value)| logs.contains(value.as_str()))
        .map(|(what, value)| {
            let line = logs.lines().find(|l| l.contains(value.as_str())).unwrap_or_default();
            format!("{what} in: {line}")
        })
        .chain(
            [
                ("heart rate", CANARY_HEART_RATE.to_string()),
                ("weight answer", weight.to_string()),
                ("refused weight answer", refused_weight.to_string()),
                ("temperature", temperature.to_string()),
            ]
            .iter()
            .flat_map(|(what, value)| numeric_leaks(&logs, value).into_iter().map(move |l| format!("{what} {value} in: {l}"))),
        )
        .collect();
    assert!(leaks.is_empty(), "PHI or secrets in the logs:\n{}", leaks.join("\n"));
}

#[test]
fn numeric_canaries_ignore_ids_timestamps_and_timings_but_not_values() {
    // innocent: inside ids, timestamps, hashes, source locations and timing fields
    let innocent = [
        ("173", r#"{"fields":{"alert_id":"tw-phi.P00001.n2-1732","at":"2026-11-26T17:31:73Z","latencyMs":173,"sha":"ab173cd"}}"#),
        ("173", r#"{"fields":{"message":"request","status":200,"time.busy":"173µs"}}"#),
        ("173", r#"{"fields":{"message":"at src/lib.rs:173:5"}}"#),
        ("173", r#"{"fields":{"message":"took 173.05 ms"}}"#),
        // the line that failed CI: a timestamp whose seconds begin with the temperature
        (
            "39.71",
            r#"{"timestamp":"2026-11-28T16:15:39.710585Z","level":"DEBUG","fields":{"message":"entering 'before deserialization' phase"}}"#,
        ),
        ("39.71", r#"{"fields":{"message":"done","elapsed_ms":39.71}}"#),
        ("123.45", r#"{"fields":{"id":"a-123.456","v":"0123.45"}}"#),
    ];
    for (canary, l) in innocent {
        assert!(numeric_leaks(l, canary).is_empty(), "{canary} in {l}: {:?}", numeric_leaks(l, canary));
    }
    // leaks: a bare number under a value key, a string, or a value rendered into a message or a body
    for (canary, l) in [
        ("173", r#"{"fields":{"value":173}}"#),
        ("173", r#"{"fields":{"heart_rate":"173"}}"#),
        ("173", r#"{"fields":{"message":"reading out of range: 173 /min"}}"#),
        ("173", r#"{"fields":{"error":"value=173"}}"#),
        ("173", "value: VitalReading { code: HeartRate, value: Number(173.0) }"),
        ("39.71", r#"{"fields":{"temperature":39.71}}"#),
        ("39.71", r#"{"fields":{"body":"{\"N\":\"39.71\"}"}}"#),
        ("39.71", "plain text line: temperature=39.71, pulse=80"),
        ("123.45", r#"{"fields":{"message":"answers [123.45]"}}"#),
    ] {
        assert_eq!(numeric_leaks(l, canary).len(), 1, "{canary} in {l}");
    }
}
