//! S3ReportStore and SnsNotifier against the emulator: a report stored and
//! downloaded through its presigned URL; an alert published to the topic and
//! seen by a queue subscribed to it.

mod aws_support;

use aws_sdk_s3::types::ChecksumMode;
use aws_support::{at, patient, site, trial, Emulator};
use chrono::NaiveDate;
use trialwatch::alert::{Alert, AlertReason};
use trialwatch::aws::{S3ReportStore, SnsNotifier};
use trialwatch::news2::RiskLevel;
use trialwatch::ports::{Notifier, ReportStore};
use trialwatch::report::{ReportMeta, ReportSummary};
use trialwatch::{AlertId, ReportId};

fn pdf_bytes() -> Vec<u8> {
    // A PDF header followed by every byte value, so any re-encoding would show.
    let mut b = b"%PDF-1.7\n".to_vec();
    b.extend((0..=255u8).cycle().take(70_000));
    b
}

#[tokio::test]
async fn a_report_is_stored_with_its_metadata_and_downloads_byte_for_byte_through_a_presigned_url() {
    // GIVEN the reports bucket and a generated PDF
    let env = Emulator::provision("reports").await;
    let bucket = env.provisioned.resources.reports_bucket.clone();
    let reports = S3ReportStore::new(&env.sdk, &bucket, None, env.store());
    let report_id = ReportId::parse("rep-2026-w48").unwrap();
    let pdf = pdf_bytes();
    let meta = ReportMeta {
        report_id: report_id.clone(),
        trial_id: trial(),
        from: NaiveDate::from_ymd_opt(2026, 11, 23).unwrap(),
        to: NaiveDate::from_ymd_opt(2026, 11, 29).unwrap(),
        generated_at: at("2026-11-30T06:00:00Z"),
        object_key: ReportMeta::object_key_for(&trial(), &report_id),
        pages: 3,
        bytes: pdf.len() as u64,
        summary: ReportSummary {
            sites: 2,
            patients_enrolled: 40,
            compliance: Some(0.875),
            median_minutes_to_ack: None,
            ..Default::default()
        },
    };
    // WHEN stored and a 5-minute URL is presigned
    reports.put_report(&meta, pdf.clone(), &[]).await.unwrap();
    let url = reports.presign(&meta.object_key, std::time::Duration::from_secs(300)).await.unwrap();
    // THEN the metadata reads back as written
    assert_eq!(reports.get_report(&trial(), &report_id).await.unwrap(), Some(meta.clone()));
    assert_eq!(reports.get_report(&trial(), &ReportId::parse("other").unwrap()).await.unwrap(), None);
    // AND the URL is a signed GET of that object that downloads the same bytes without AWS credentials
    assert!(url.contains(&meta.object_key) && url.contains("X-Amz-Signature=") && url.contains("X-Amz-Expires=300"), "{url}");
    let response = reqwest::get(&url).await.unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    assert_eq!(response.bytes().await.unwrap().to_vec(), pdf);
    // AND the object is a PDF, encrypted with KMS, labelled with ids only
    let head = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&env.sdk).force_path_style(true).build())
        .head_object()
        .bucket(&bucket)
        .key(&meta.object_key)
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();
    // AND the put carried the SDK's default request checksum, the CRC-32 of the bytes (zlib's value,
    // computed outside Rust: the emulator stores it unchecked). It is the workspace's crc-fast
    // stand-in (vendor/crc-fast) that computes it, so this is that stand-in on the real put path.
    assert_eq!(head.checksum_crc32(), Some("skxobA=="), "x-amz-checksum-crc32 of the PDF (0xB24C686C)");
    assert_eq!(head.content_type(), Some("application/pdf"));
    assert_eq!(head.server_side_encryption().map(|s| s.as_str()), Some("aws:kms"));
    let labels = head.metadata().unwrap();
    assert_eq!((labels["trial-id"].as_str(), labels["report-id"].as_str()), (trial().as_str(), report_id.as_str()));
    assert_eq!((labels["from"].as_str(), labels["to"].as_str()), ("2026-11-23", "2026-11-29"));
}

#[tokio::test]
async fn an_alert_is_published_as_json_with_level_and_trial_attributes() {
    // GIVEN the alert topic with a queue subscribed to it
    let env = Emulator::provision("sns").await;
    let topic = env.provisioned.resources.alert_topic_arn.clone();
    let sqs = aws_sdk_sqs::Client::new(&env.sdk);
    let queue = sqs.create_queue().queue_name(format!("{}-sub", env.provisioned.prefix)).send().await.unwrap();
    let queue_url = queue.queue_url().unwrap().to_owned();
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap();
    let queue_arn = attrs.attributes().unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn].clone();
    let sns = aws_sdk_sns::Client::new(&env.sdk);
    sns.subscribe().topic_arn(&topic).protocol("sqs").endpoint(&queue_arn).send().await.unwrap();
    let p = patient("P-1");
    let alert = Alert {
        alert_id: AlertId::for_escalation(&trial(), &p, RiskLevel::Medium, 9),
        trial_id: trial(),
        patient_id: p,
        site_id: site("s1"),
        level: RiskLevel::Medium,
        reason: AlertReason::News2 { score: 5, components: vec![] },
        created_at: at("2026-11-26T20:00:00Z"),
        correlation_id: None,
    };
    // WHEN the notifier publishes to the default topic
    SnsNotifier::new(&env.sdk, &topic).publish(None, &alert).await.unwrap();
    // THEN the subscriber receives a notice of ids, level and link (no values) with level and trialId attributes and an ids-only subject
    let out = sqs.receive_message().queue_url(&queue_url).wait_time_seconds(2).send().await.unwrap();
    let messages = out.messages.unwrap_or_default();
    assert_eq!(messages.len(), 1);
    let envelope: serde_json::Value = serde_json::from_str(messages[0].body().unwrap()).unwrap();
    assert_eq!(envelope["TopicArn"], topic.as_str());
    let notice: serde_json::Value = serde_json::from_str(envelope["Message"].as_str().unwrap()).unwrap();
    assert_eq!(notice["alertId"], alert.alert_id.as_str());
    assert_eq!(notice["level"], "medium");
    assert_eq!(notice["link"], format!("/v1/trials/{}/patients/P-1/alerts", trial()));
    assert!(notice.get("reason").is_none() && !notice.to_string().contains("news2"), "no clinical values: {notice}");
    assert_eq!(envelope["MessageAttributes"]["level"]["Value"], "medium");
    assert_eq!(envelope["MessageAttributes"]["trialId"]["Value"], trial().as_str());
    let subject = envelope["Subject"].as_str().unwrap();
    assert!(subject.contains(alert.alert_id.as_str()) && subject.contains(trial().as_str()), "{subject}");
    assert!(
        !subject.contains("score") && !subject.contains("news2") && !subject.contains("P-1"),
        "no clinical detail or subject id: {subject}"
    );
}

#[tokio::test]
async fn publishing_to_a_deleted_topic_is_a_permanent_not_found_not_a_retry() {
    // GIVEN a topic that existed and was deleted (a trial's topic removed by a redeploy)
    let env = Emulator::provision("sns-gone").await;
    let sns = aws_sdk_sns::Client::new(&env.sdk);
    let gone = sns.create_topic().name(format!("{}-gone", env.provisioned.prefix)).send().await.unwrap().topic_arn.unwrap();
    sns.delete_topic().topic_arn(&gone).send().await.unwrap();
    let p = patient("P-2");
    let alert = Alert {
        alert_id: AlertId::for_escalation(&trial(), &p, RiskLevel::High, 10),
        trial_id: trial(),
        patient_id: p,
        site_id: site("s1"),
        level: RiskLevel::High,
        reason: AlertReason::News2 { score: 8, components: vec![] },
        created_at: at("2026-11-26T20:00:00Z"),
        correlation_id: None,
    };
    let notifier = SnsNotifier::new(&env.sdk, &env.provisioned.resources.alert_topic_arn);
    // WHEN the notifier publishes to it, and to an ARN that never existed
    for topic in [gone.clone(), format!("{gone}-never")] {
        let err = notifier.publish(Some(&topic), &alert).await.unwrap_err();
        // THEN SNS's answer is a not-found: no retry can fix it
        assert!(matches!(err, trialwatch::ports::NotifyError::TopicNotFound), "{topic}: {err:?}");
        assert!(err.is_permanent());
    }
}
