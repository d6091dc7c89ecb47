//! SNS adapter of the Notifier port: a notice of the alert (ids, level and a
//! link, never clinical values), with `level` and `trialId` attributes that
//! subscription filter policies match on.

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_sns::types::MessageAttributeValue;

use super::errors::from_sns;
use crate::alert::Alert;
use crate::ports::{Notifier, NotifyError, StorageError};

#[derive(Clone, Debug)]
pub struct SnsNotifier {
    client: aws_sdk_sns::Client,
    default_topic_arn: String,
}

impl SnsNotifier {
    pub fn new(config: &SdkConfig, default_topic_arn: impl Into<String>) -> Self {
        Self::with_client(aws_sdk_sns::Client::new(config), default_topic_arn)
    }
    pub fn with_client(client: aws_sdk_sns::Client, default_topic_arn: impl Into<String>) -> Self {
        Self { client, default_topic_arn: default_topic_arn.into() }
    }
}

fn string_attribute(value: &str) -> Result<MessageAttributeValue, StorageError> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .map_err(|_| StorageError::Corrupt("sns.Publish: request-build".into()))
}

/// The e-mail subject: ids and level only (at most 100 ASCII characters by SNS's rules).
pub(crate) fn subject(alert: &Alert) -> String {
    let mut s = format!("TrialWatch {} alert {} (trial {})", alert.level.as_str(), alert.alert_id, alert.trial_id);
    s.truncate(100);
    s
}

/// The message body. E-mail subscribers receive it under the subject and SMS subscribers
/// receive only it, over channels outside the trial's control: so it names the alert and
/// where to read it (the API, behind the JWT), never the score, vitals or answers behind it.
/// Systems that need the values get them from the signed webhook.
pub(crate) fn message(alert: &Alert) -> String {
    serde_json::json!({
        "alertId": alert.alert_id.as_str(),
        "trialId": alert.trial_id.as_str(),
        "siteId": alert.site_id.as_str(),
        "patientId": alert.patient_id.as_str(),
        "level": alert.level.as_str(),
        "createdAt": alert.created_at,
        // Relative to the stack's ApiUrl output.
        "link": format!("/v1/trials/{}/patients/{}/alerts", alert.trial_id, alert.patient_id),
    })
    .to_string()
}

#[async_trait]
impl Notifier for SnsNotifier {
    async fn publish(&self, topic: Option<&str>, alert: &Alert) -> Result<(), NotifyError> {
        const OP: &str = "sns.Publish";
        let topic = topic.unwrap_or(&self.default_topic_arn);
        let mut req = self
            .client
            .publish()
            .topic_arn(topic)
            .subject(subject(alert))
            .message(message(alert))
            .message_attributes("level", string_attribute(alert.level.as_str())?)
            .message_attributes("trialId", string_attribute(alert.trial_id.as_str())?);
        if topic.ends_with(".fifo") {
            // FIFO topics need a group and dedup id; the alert id is deterministic.
            req =
                req.message_group_id(format!("{}#{}", alert.trial_id, alert.patient_id)).message_deduplication_id(alert.alert_id.as_str());
        }
        req.send().await.map_err(|e| from_sns(OP, &e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_subject_is_short_and_names_ids_only() {
        let alert: Alert = serde_json::from_value(serde_json::json!({
            "alertId": format!("al-{}", "f".repeat(60)), "trialId": "t".repeat(64), "patientId": "p1", "siteId": "s1",
            "level": "high", "reason": {"kind": "news2", "score": 9, "components": []},
            "createdAt": "2026-11-26T20:00:00Z"
        }))
        .unwrap();
        let s = subject(&alert);
        assert!(s.len() <= 100 && s.is_ascii(), "{s}");
        assert!(s.starts_with("TrialWatch high alert al-"));
        assert!(!s.contains('9'), "no score in the subject: {s}");
    }

    #[test]
    fn the_message_carries_ids_level_and_a_link_never_values() {
        // GIVEN a PRO alert whose reason holds the answer that fired it
        let alert: Alert = serde_json::from_value(serde_json::json!({
            "alertId": "al-1", "trialId": "t1", "patientId": "p1", "siteId": "s1", "level": "high",
            "reason": {"kind": "pro-rule", "questionnaireId": "q1", "submissionId": "0f8fad5b-d9cb-469f-a165-70867728950e", "linkId": "pain", "value": 8.5, "atLeast": 7.0},
            "createdAt": "2026-11-26T20:00:00Z"
        }))
        .unwrap();
        // WHEN it becomes the SNS message body
        let body: serde_json::Value = serde_json::from_str(&message(&alert)).unwrap();
        // THEN the body is exactly the ids, the level, the time and the link
        assert_eq!(
            body,
            serde_json::json!({
                "alertId": "al-1", "trialId": "t1", "siteId": "s1", "patientId": "p1", "level": "high",
                "createdAt": "2026-11-26T20:00:00Z", "link": "/v1/trials/t1/patients/p1/alerts"
            })
        );
        // AND nothing of the reason reaches it
        let text = body.to_string();
        assert!(!text.contains("8.5") && !text.contains("pain") && !text.contains("reason"), "{text}");
    }
}
