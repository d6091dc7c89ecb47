//! template.yaml as the single description of the system: what it declares, and
//! what provisioning makes of it on the emulator (run with `make test`).

use std::collections::BTreeMap;

use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::Value;
use trialwatch::settings;
use trialwatch_provision::{
    emulator_sdk_config, provision, provision_all, template_path, unique_prefix, HttpRoute, Provisioned, Schedule, SqsSource, Template,
    QUEUE_TYPE,
};

fn template() -> Template {
    Template::load(&template_path()).expect("template.yaml parses")
}

// ------------------------------------------------------------ the template itself

#[test]
fn the_template_declares_the_four_functions_with_their_workspace_binaries() {
    // GIVEN the workspace template WHEN its functions are listed
    let binaries: BTreeMap<String, String> = template().functions().into_iter().map(|f| (f.logical_id, f.binary)).collect();
    // THEN each function names the crate that builds it
    let expected: BTreeMap<String, String> = [
        ("AlertDispatcherFunction", "alert-dispatcher"),
        ("EproApiFunction", "epro-api"),
        ("ReportGeneratorFunction", "report-generator"),
        ("VitalsAnalyzerFunction", "vitals-analyzer"),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(binaries, expected);
}

#[test]
fn every_api_route_needs_a_jwt_except_health() {
    // GIVEN every HTTP route of every function
    let routes: Vec<HttpRoute> = template().functions().into_iter().flat_map(|f| f.http_routes).collect();
    // THEN the API contract's routes are all there
    for (method, path) in [
        ("GET", "/health"),
        ("PUT", "/v1/trials/{trialId}"),
        ("GET", "/v1/trials/{trialId}"),
        ("PUT", "/v1/trials/{trialId}/patients/{patientId}"),
        ("GET", "/v1/trials/{trialId}/patients/{patientId}"),
        ("POST", "/v1/trials/{trialId}/patients/{patientId}/submissions"),
        ("GET", "/v1/trials/{trialId}/patients/{patientId}/submissions"),
        ("POST", "/v1/trials/{trialId}/patients/{patientId}/vitals"),
        ("GET", "/v1/trials/{trialId}/patients/{patientId}/alerts"),
        ("POST", "/v1/trials/{trialId}/alerts/{alertId}/ack"),
        ("POST", "/v1/trials/{trialId}/reports"),
        ("GET", "/v1/trials/{trialId}/reports/{reportId}"),
    ] {
        assert!(routes.iter().any(|r| r.method == method && r.path == path), "missing {method} {path}");
    }
    // AND only /health is open
    let open: Vec<&str> = routes.iter().filter(|r| !r.auth).map(|r| r.path.as_str()).collect();
    assert_eq!(open, vec!["/health"]);
}

#[test]
fn queue_consumers_report_partial_batch_failures_with_bounded_concurrency() {
    let t = template();
    let source = |id: &str| t.function(id).map(|f| f.sqs_sources.clone()).unwrap_or_default();
    // THEN the analyzer reads the FIFO vitals queue and the dispatcher the alert queue, 10 at a time
    assert_eq!(
        source("VitalsAnalyzerFunction"),
        vec![SqsSource {
            event_name: "Vitals".into(),
            queue_logical_id: "VitalsQueue".into(),
            batch_size: 10,
            maximum_concurrency: Some(50),
            report_batch_item_failures: true,
        }]
    );
    assert_eq!(
        source("AlertDispatcherFunction"),
        vec![SqsSource {
            event_name: "Alerts".into(),
            queue_logical_id: "AlertQueue".into(),
            batch_size: 10,
            maximum_concurrency: Some(20),
            report_batch_item_failures: true,
        }]
    );
}

#[test]
fn each_consumed_queue_hides_messages_for_at_least_six_times_its_consumer_timeout() {
    // AWS guidance for SQS event sources: a shorter visibility timeout redelivers
    // messages that are still being processed.
    let t = template();
    for f in t.functions() {
        for s in &f.sqs_sources {
            let queue = t.resource(&s.queue_logical_id).expect("queue exists");
            let visibility = queue.properties["VisibilityTimeout"].as_u64().expect("VisibilityTimeout set");
            assert!(visibility >= 6 * u64::from(f.timeout_seconds), "{}: {visibility} s < 6 x {} s", s.queue_logical_id, f.timeout_seconds);
        }
    }
}

#[test]
fn every_consumed_queue_has_a_dead_letter_queue_with_an_alarm() {
    // Nothing leaves a DLQ silently.
    let t = template();
    let alarms: Vec<Value> = t
        .resources_of_type("AWS::CloudWatch::Alarm")
        .iter()
        .map(|a| a.properties["Dimensions"][0]["Value"]["Fn::GetAtt"][0].clone())
        .collect();
    for f in t.functions() {
        for s in &f.sqs_sources {
            let queue = t.resource(&s.queue_logical_id).expect("queue exists");
            let dlq = queue.properties["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0].as_str().expect("redrive policy to a DLQ");
            assert_eq!(t.resource(dlq).map(|r| r.kind), Some(QUEUE_TYPE));
            assert!(alarms.contains(&Value::from(dlq)), "no alarm watches {dlq}");
        }
    }
}

#[test]
fn the_weekly_report_runs_on_monday_mornings_and_the_audit_anchors_hourly() {
    let t = template();
    let schedules = t.function("ReportGeneratorFunction").map(|f| f.schedules.clone()).unwrap_or_default();
    assert_eq!(
        schedules,
        vec![
            // The constant input is how the function tells the anchoring run from the reports.
            Schedule { name: "AuditAnchors".into(), expression: "rate(1 hour)".into(), input: Some(r#"{"job": "audit-anchors"}"#.into()) },
            Schedule { name: "WeeklyReports".into(), expression: "cron(0 6 ? * MON *)".into(), input: None },
        ]
    );
}

#[test]
fn every_function_gets_the_resource_names_from_the_globals() {
    for f in template().functions() {
        for (var, logical_id) in [
            (settings::TABLE_NAME, "TrialTable"),
            (settings::VITALS_QUEUE_URL, "VitalsQueue"),
            (settings::ALERT_QUEUE_URL, "AlertQueue"),
            (settings::REPORTS_BUCKET, "ReportsBucket"),
            (settings::ALERT_TOPIC_ARN, "AlertTopic"),
        ] {
            assert_eq!(f.environment_refs.get(var).map(String::as_str), Some(logical_id), "{}: {var}", f.logical_id);
        }
        assert_eq!(f.environment.get(settings::CONFIG_TTL_SECONDS).map(String::as_str), Some("300"));
    }
}

#[test]
fn every_function_runs_mimalloc_without_transparent_huge_pages() {
    // GIVEN the functions that link mimalloc (epro-api, vitals-analyzer) and those that ignore it
    for f in template().functions() {
        // THEN each is told not to back mimalloc's arenas with huge pages (README, "Cold start and
        // size": half the peak RSS and about 0.5 ms of init, handler CPU unchanged)
        assert_eq!(f.environment.get("MIMALLOC_ALLOW_THP").map(String::as_str), Some("0"), "{}", f.logical_id);
    }
}

// ------------------------------------------------------------ on the emulator

async fn provisioned(label: &str) -> (aws_config::SdkConfig, Provisioned) {
    let sdk = emulator_sdk_config().await;
    let p = provision_all(&sdk, &template_path(), &unique_prefix(label)).await.expect("provisioning succeeds");
    (sdk, p)
}

#[tokio::test]
async fn the_table_has_the_template_key_schema_gsis_and_ttl() {
    // GIVEN a fresh copy of the template's resources
    let (sdk, p) = provisioned("table").await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    // WHEN the table is described
    let table = dynamodb.describe_table().table_name(&p.resources.table_name).send().await.expect("table exists");
    let table = table.table().expect("description");
    // THEN its keys and indexes are the template's
    let keys = |schema: &[aws_sdk_dynamodb::types::KeySchemaElement]| -> Vec<(String, String)> {
        schema.iter().map(|k| (k.attribute_name().to_string(), k.key_type().as_str().to_string())).collect()
    };
    assert_eq!(keys(table.key_schema()), vec![("pk".into(), "HASH".into()), ("sk".into(), "RANGE".into())]);
    type Gsi = (String, Vec<(String, String)>, String);
    let mut gsis: Vec<Gsi> = table
        .global_secondary_indexes()
        .iter()
        .map(|g| {
            let projection = g.projection().and_then(|p| p.projection_type()).map(|t| t.as_str().to_string()).unwrap_or_default();
            (g.index_name().unwrap_or_default().to_string(), keys(g.key_schema()), projection)
        })
        .collect();
    gsis.sort();
    assert_eq!(
        gsis,
        vec![
            // The sparse index of domain events not yet on the bus: only the event projected.
            ("events".into(), vec![("eventspk".into(), "HASH".into()), ("eventssk".into(), "RANGE".into())], "INCLUDE".into()),
            ("gsi1".into(), vec![("gsi1pk".into(), "HASH".into()), ("gsi1sk".into(), "RANGE".into())], "ALL".into()),
            ("gsi2".into(), vec![("gsi2pk".into(), "HASH".into()), ("gsi2sk".into(), "RANGE".into())], "ALL".into()),
            // The sparse outbox of unclaimed PRO alerts: only the alert projected.
            ("outbox".into(), vec![("outboxpk".into(), "HASH".into()), ("outboxsk".into(), "RANGE".into())], "INCLUDE".into()),
        ]
    );
    // AND expired items are removed by TTL on expiresAt
    let ttl = dynamodb.describe_time_to_live().table_name(&p.resources.table_name).send().await.expect("ttl");
    let ttl = ttl.time_to_live_description().expect("ttl description");
    assert_eq!(ttl.attribute_name(), Some("expiresAt"));
    assert_eq!(ttl.time_to_live_status().map(|s| s.as_str()), Some("ENABLED"));
}

#[tokio::test]
async fn the_audit_table_is_provisioned_without_ttl_with_pitr_and_deletion_protection() {
    // GIVEN a fresh copy of the template's resources
    let (sdk, p) = provisioned("audit-table").await;
    let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
    // WHEN the audit table is described
    let name = &p.resources.audit_table_name;
    assert_ne!(name, &p.resources.table_name, "the audit trail needs a table of its own");
    let table = dynamodb.describe_table().table_name(name).send().await.expect("audit table exists");
    let table = table.table().expect("description");
    // THEN nothing can delete it, and its write-sharded time index is there
    assert_eq!(table.deletion_protection_enabled(), Some(true));
    let indexes: Vec<&str> = table.global_secondary_indexes().iter().filter_map(|g| g.index_name()).collect();
    assert_eq!(indexes, vec!["gsi1"]);
    let refused = dynamodb.delete_table().table_name(name).send().await;
    assert!(refused.is_err(), "a protected table must refuse DeleteTable");
    // AND no entry can expire: TTL is off
    let ttl = dynamodb.describe_time_to_live().table_name(name).send().await.expect("ttl");
    let status = ttl.time_to_live_description().and_then(|d| d.time_to_live_status()).map(|s| s.as_str().to_owned());
    assert_eq!(status.as_deref().unwrap_or("DISABLED"), "DISABLED");
    // AND point-in-time recovery is on
    let backups = dynamodb.describe_continuous_backups().table_name(name).send().await.expect("backups");
    let pitr = backups.continuous_backups_description().and_then(|d| d.point_in_time_recovery_description());
    assert_eq!(pitr.and_then(|d| d.point_in_time_recovery_status()).map(|s| s.as_str()), Some("ENABLED"));
}

async fn queue_attributes(sqs: &aws_sdk_sqs::Client, url: &str) -> BTreeMap<String, String> {
    let out = sqs.get_queue_attributes().queue_url(url).attribute_names(QueueAttributeName::All).send().await.expect("queue exists");
    out.attributes().map(|a| a.iter().map(|(k, v)| (k.as_str().to_string(), v.clone())).collect()).unwrap_or_default()
}

#[tokio::test]
async fn each_queue_redrives_to_its_own_dead_letter_queue_after_the_template_count() {
    // GIVEN a fresh copy of the template's resources
    let (sdk, p) = provisioned("redrive").await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    for (source, url, dlq_url, max_receive) in [
        ("VitalsQueue", &p.resources.vitals_queue_url, p.vitals_dlq_url().expect("vitals DLQ"), 5),
        ("AlertQueue", &p.resources.alert_queue_url, p.alert_dlq_url().expect("alert DLQ"), 8),
    ] {
        // WHEN the queue's attributes are read back
        let attributes = queue_attributes(&sqs, url).await;
        let dlq_arn = queue_attributes(&sqs, dlq_url).await.remove("QueueArn").expect("DLQ ARN");
        // THEN its redrive policy targets the DLQ made for this prefix, with the template's count
        let policy: Value = serde_json::from_str(attributes.get("RedrivePolicy").expect("redrive policy")).expect("JSON policy");
        assert_eq!(policy["deadLetterTargetArn"], Value::from(dlq_arn), "{source}");
        assert_eq!(policy["maxReceiveCount"].to_string().trim_matches('"'), max_receive.to_string(), "{source}");
        assert_eq!(p.dead_letters[source].max_receive_count, max_receive);
        assert_eq!(attributes.get("VisibilityTimeout").map(String::as_str), Some("180"), "{source}");
    }
    // AND the vitals queue is high-throughput FIFO, as in the cloud
    let vitals = queue_attributes(&sqs, &p.resources.vitals_queue_url).await;
    for (name, value) in [
        ("FifoQueue", "true"),
        ("ContentBasedDeduplication", "false"),
        ("DeduplicationScope", "messageGroup"),
        ("FifoThroughputLimit", "perMessageGroupId"),
    ] {
        assert_eq!(vitals.get(name).map(String::as_str), Some(value), "{name}");
    }
}

#[tokio::test]
async fn a_message_received_more_than_max_receive_count_times_moves_to_the_dlq() {
    // GIVEN the alert queue (maxReceiveCount 8) with one message
    let (sdk, p) = provisioned("dlq-move").await;
    let sqs = aws_sdk_sqs::Client::new(&sdk);
    let queue = &p.resources.alert_queue_url;
    let dlq = p.alert_dlq_url().expect("alert DLQ").to_string();
    sqs.send_message().queue_url(queue).message_body("{\"alertId\":\"a1\"}").send().await.expect("sent");
    // WHEN a consumer receives it 8 times without deleting it (visibility 0 = immediate redelivery)
    let max_receive = p.dead_letters["AlertQueue"].max_receive_count;
    for attempt in 1..=max_receive {
        let got = sqs.receive_message().queue_url(queue).visibility_timeout(0).send().await.expect("receive");
        assert_eq!(got.messages().len(), 1, "receive {attempt} still on the source queue");
    }
    // THEN the next receive finds nothing, and the DLQ holds the message
    let after = sqs.receive_message().queue_url(queue).visibility_timeout(0).send().await.expect("receive");
    assert!(after.messages().is_empty(), "message should have left the source queue");
    let parked = sqs.receive_message().queue_url(&dlq).wait_time_seconds(1).send().await.expect("receive DLQ");
    assert_eq!(parked.messages().iter().filter_map(|m| m.body()).collect::<Vec<_>>(), vec!["{\"alertId\":\"a1\"}"]);
}

#[tokio::test]
async fn the_bucket_and_topic_exist_and_functions_get_their_names() {
    // GIVEN a fresh copy of the template's resources
    let (sdk, p) = provisioned("bucket-topic").await;
    // THEN the bucket and topic are there under the names the functions will read
    let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&sdk).force_path_style(true).build());
    s3.head_bucket().bucket(&p.resources.reports_bucket).send().await.expect("bucket exists");
    let sns = aws_sdk_sns::Client::new(&sdk);
    sns.get_topic_attributes().topic_arn(&p.resources.alert_topic_arn).send().await.expect("topic exists");
    // AND a function's environment resolves every reference the emulator can hold
    let analyzer = template().function("VitalsAnalyzerFunction").cloned().expect("analyzer");
    let env = p.environment_for(&analyzer);
    assert_eq!(env.get(settings::TABLE_NAME), Some(&p.resources.table_name));
    assert_eq!(env.get(settings::ALERT_QUEUE_URL), Some(&p.resources.alert_queue_url));
    assert_eq!(env.get("ANALYZER_CONCURRENCY").map(String::as_str), Some("8"));
    // AND the KMS key, which exists only in the cloud, is left out rather than faked
    assert_eq!(env.get(settings::REPORTS_KMS_KEY_ID), None);
}

#[tokio::test]
async fn provisioning_twice_with_the_same_prefix_converges_on_the_same_resources() {
    // GIVEN resources provisioned under one prefix
    let sdk = emulator_sdk_config().await;
    let prefix = unique_prefix("rerun");
    let first = provision_all(&sdk, &template_path(), &prefix).await.expect("first run");
    // WHEN provisioning runs again
    let second = provision(&sdk, &template_path(), &prefix).await.expect("second run succeeds");
    // THEN it returns the same names
    assert_eq!(second, first.resources);
}

#[tokio::test]
async fn the_anchor_bucket_is_locked_and_provisioning_again_after_an_anchor_still_converges() {
    // GIVEN the anchor bucket provisioned, with an anchor stored in it (Object Lock, compliance mode)
    let sdk = emulator_sdk_config().await;
    let prefix = unique_prefix("anchor-rerun");
    let first = provision_all(&sdk, &template_path(), &prefix).await.expect("first run");
    let bucket = first.anchor_bucket().expect("AuditAnchorBucket provisioned").to_owned();
    let anchors = trialwatch::aws::S3Anchors::new(&sdk, bucket.clone());
    let anchor = trialwatch::audit::anchor::Anchor {
        trial_id: trialwatch::TrialId::parse("t1").unwrap(),
        at: "2026-11-27T20:00:00.000Z".into(),
        chains: BTreeMap::new(),
    };
    let until = chrono::Utc::now() + chrono::Duration::days(1);
    trialwatch::ports::AnchorStore::put_anchor(&anchors, &anchor, until).await.expect("anchor stored");
    // WHEN provisioning runs again (moto refuses to change a non-empty bucket's lock configuration)
    let second = provision_all(&sdk, &template_path(), &prefix).await.expect("second run succeeds");
    // THEN it converges on the same bucket, still locked in COMPLIANCE mode by default
    assert_eq!(second.anchor_bucket(), Some(bucket.as_str()));
    let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&sdk).force_path_style(true).build());
    let lock = s3.get_object_lock_configuration().bucket(&bucket).send().await.expect("lock configuration");
    let retention = lock.object_lock_configuration().and_then(|c| c.rule()).and_then(|r| r.default_retention()).expect("default retention");
    assert_eq!((retention.mode().map(|m| m.as_str()), retention.days()), (Some("COMPLIANCE"), Some(3653)));
}

#[tokio::test]
async fn two_prefixes_never_share_resources() {
    let (_, a) = provisioned("isolation").await;
    let (_, b) = provisioned("isolation").await;
    assert_ne!(a.resources.table_name, b.resources.table_name);
    assert_ne!(a.resources.vitals_queue_url, b.resources.vitals_queue_url);
    assert_ne!(a.resources.reports_bucket, b.resources.reports_bucket);
}
