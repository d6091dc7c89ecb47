//! A trial's definition: sites, questionnaires, ePRO schedule, alerting. Written
//! by admins through `PUT /v1/trials/{trialId}`, read everywhere through the
//! config cache.

use serde::{Deserialize, Serialize};

use crate::egress::EgressPolicy;
use crate::ids::{QuestionnaireId, SiteId, TrialId};
use crate::news2::RiskLevel;
use crate::validation::{FieldErrors, Validator};

pub const MAX_SITES: usize = 500;
pub const MAX_QUESTIONNAIRES: usize = 50;
pub const MAX_ITEMS: usize = 200;
pub const MAX_NAME_LEN: usize = 200;

/// The trial as an admin writes it (`PUT /v1/trials/{trialId}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TrialDefinition {
    pub name: String,
    #[serde(deserialize_with = "crate::json_object::each")]
    pub sites: Vec<Site>,
    #[serde(default, deserialize_with = "crate::json_object::each")]
    pub questionnaires: Vec<Questionnaire>,
    /// Expected ePRO submissions, the denominator of compliance.
    #[serde(default, deserialize_with = "crate::json_object::each")]
    pub schedule: Vec<ScheduleEntry>,
    /// IANA zone used to bucket days in reports, e.g. `Europe/London`.
    #[serde(default = "default_timezone")]
    pub timezone: String,
    #[serde(default)]
    pub status: TrialStatus,
    #[serde(default, deserialize_with = "crate::json_object::one")]
    pub alerting: Alerting,
    /// Announce every stored submission on the event bus (`SubmissionReceived`).
    /// Off by default: at a national peak of 50k submissions/s, one event per
    /// submission is five times PutEvents' default quota (README, "Integrations").
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub publish_submission_events: bool,
}

fn default_timezone() -> String {
    "UTC".to_owned()
}

/// A stored trial: the definition plus its id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Trial {
    pub trial_id: TrialId,
    #[serde(flatten)]
    pub definition: TrialDefinition,
    pub updated_at: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TrialStatus {
    #[default]
    Active,
    Closed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Site {
    pub id: SiteId,
    pub name: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Questionnaire {
    pub id: QuestionnaireId,
    pub version: String,
    #[serde(deserialize_with = "crate::json_object::each")]
    pub items: Vec<Item>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ItemType {
    Integer,
    Decimal,
    Choice,
    Boolean,
    String,
}

/// A permitted answer of a `choice` item: a code, or a number that scores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ChoiceOption {
    Number(i64),
    Code(String),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Item {
    pub link_id: String,
    #[serde(rename = "type")]
    pub item_type: ItemType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<Vec<ChoiceOption>>,
    #[serde(default)]
    pub required: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Frequency {
    Daily,
    Weekly,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ScheduleEntry {
    pub questionnaire_id: QuestionnaireId,
    pub frequency: Frequency,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Alerting {
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "crate::json_object::optional")]
    pub webhook: Option<Webhook>,
    /// Overrides the default alert topic for this trial.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sns_topic_arn: Option<String>,
    #[serde(default, deserialize_with = "crate::json_object::one")]
    pub news2: News2Settings,
    #[serde(default, deserialize_with = "crate::json_object::each")]
    pub pro_rules: Vec<ProRule>,
}

/// Where a trial's alerts are POSTed. The secret is write-only: it is stored,
/// used to sign, and never returned or logged (see [`Webhook`]'s `Debug`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Webhook {
    pub url: String,
    pub secret: String,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook").field("url", &self.url).field("secret", &"<redacted>").finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct News2Settings {
    #[serde(default = "default_freshness")]
    pub freshness_minutes: u32,
    /// Holds back repeats of a level that has not cleared; never a new escalation.
    #[serde(default = "default_cooldown")]
    pub cooldown_minutes: u32,
    /// How long aggregates must stay below an alerted level, with the
    /// parameters that raised it fresh, before the level clears and a rise to
    /// it alerts again.
    #[serde(default = "default_clear")]
    pub clear_minutes: u32,
}

fn default_freshness() -> u32 {
    60
}
fn default_cooldown() -> u32 {
    60
}
fn default_clear() -> u32 {
    30
}

impl Default for News2Settings {
    fn default() -> Self {
        Self { freshness_minutes: default_freshness(), cooldown_minutes: default_cooldown(), clear_minutes: default_clear() }
    }
}

/// Raise an alert when an answer to `linkId` is at least `atLeast`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProRule {
    pub questionnaire_id: QuestionnaireId,
    pub link_id: String,
    pub at_least: f64,
    pub level: RiskLevel,
}

impl TrialDefinition {
    /// Every structural problem at once, with JSON paths as field names.
    /// Validates for a deployed function: [`EgressPolicy::DEPLOYED`].
    pub fn validate(&self) -> Result<(), FieldErrors> {
        self.validate_for(EgressPolicy::DEPLOYED)
    }

    /// Validates every field; the webhook URL under `egress` (only the local
    /// stack passes anything but [`EgressPolicy::DEPLOYED`]).
    pub fn validate_for(&self, egress: EgressPolicy) -> Result<(), FieldErrors> {
        let mut v = Validator::new();
        v.check(!self.name.trim().is_empty() && self.name.chars().count() <= MAX_NAME_LEN, "name", "must be 1-200 characters");
        v.check(!self.sites.is_empty() && self.sites.len() <= MAX_SITES, "sites", "must hold 1-500 sites");
        let mut seen = std::collections::HashSet::new();
        for (i, s) in self.sites.iter().enumerate() {
            v.check(seen.insert(&s.id), format!("sites[{i}].id"), "duplicate site id");
            v.check(
                !s.name.trim().is_empty() && s.name.chars().count() <= MAX_NAME_LEN,
                format!("sites[{i}].name"),
                "must be 1-200 characters",
            );
        }
        v.check(crate::zone::Zone::parse(&self.timezone).is_ok(), "timezone", "must be an IANA time zone, e.g. Europe/London");
        v.check(self.questionnaires.len() <= MAX_QUESTIONNAIRES, "questionnaires", "at most 50");
        let mut qids = std::collections::HashSet::new();
        for (qi, q) in self.questionnaires.iter().enumerate() {
            let p = format!("questionnaires[{qi}]");
            v.check(qids.insert(&q.id), format!("{p}.id"), "duplicate questionnaire id");
            v.check(crate::ids::check_safe_id(&q.version).is_ok(), format!("{p}.version"), "must be 1-64 of [A-Za-z0-9._-]");
            v.check(!q.items.is_empty() && q.items.len() <= MAX_ITEMS, format!("{p}.items"), "must hold 1-200 items");
            let mut links = std::collections::HashSet::new();
            for (ii, it) in q.items.iter().enumerate() {
                it.validate(&mut v, &format!("{p}.items[{ii}]"));
                v.check(links.insert(&it.link_id), format!("{p}.items[{ii}].linkId"), "duplicate linkId");
            }
        }
        for (i, s) in self.schedule.iter().enumerate() {
            v.check(
                self.questionnaires.iter().any(|q| q.id == s.questionnaire_id),
                format!("schedule[{i}].questionnaireId"),
                "names no questionnaire of this trial",
            );
        }
        let a = &self.alerting;
        if let Some(w) = &a.webhook {
            // Syntactic only (no DNS): alert-dispatcher checks the resolved address at connect time.
            if let Err(why) = egress.check_url(&w.url) {
                v.error("alerting.webhook.url", why.to_string());
            }
            v.check(w.url.len() <= 2048, "alerting.webhook.url", "at most 2048 characters");
            v.check(w.secret.len() >= 16 && w.secret.len() <= 256, "alerting.webhook.secret", "must be 16-256 characters");
        }
        v.check((1..=1440).contains(&a.news2.freshness_minutes), "alerting.news2.freshnessMinutes", "must be 1-1440");
        v.check(a.news2.cooldown_minutes <= 10080, "alerting.news2.cooldownMinutes", "must be 0-10080");
        v.check(a.news2.clear_minutes <= 1440, "alerting.news2.clearMinutes", "must be 0-1440");
        for (i, r) in a.pro_rules.iter().enumerate() {
            let item = self
                .questionnaires
                .iter()
                .find(|q| q.id == r.questionnaire_id)
                .and_then(|q| q.items.iter().find(|it| it.link_id == r.link_id));
            v.check(item.is_some(), format!("alerting.proRules[{i}]"), "names no item of this trial's questionnaires");
            // Stored as a DynamoDB number: outside its range the PUT would fail as a 500.
            v.check(
                crate::validation::storable_number(r.at_least),
                format!("alerting.proRules[{i}].atLeast"),
                "must be a finite number of magnitude below 1e126 (and, unless 0, at least 1e-130)",
            );
            v.check(r.level != RiskLevel::Low, format!("alerting.proRules[{i}].level"), "must be low-medium, medium or high");
        }
        // One alert per rule item, each a pending item in the submission's transaction.
        for q in &self.questionnaires {
            let items: std::collections::BTreeSet<&str> =
                a.pro_rules.iter().filter(|r| r.questionnaire_id == q.id).map(|r| r.link_id.as_str()).collect();
            v.check(
                items.len() <= crate::outbox::MAX_PRO_ALERTS_PER_SUBMISSION,
                "alerting.proRules",
                "at most 25 items of one questionnaire may carry rules",
            );
        }
        v.finish(())
    }

    pub fn site(&self, id: &SiteId) -> Option<&Site> {
        self.sites.iter().find(|s| &s.id == id)
    }

    pub fn questionnaire(&self, id: &QuestionnaireId, version: &str) -> Option<&Questionnaire> {
        self.questionnaires.iter().find(|q| &q.id == id && q.version == version)
    }

    pub fn tz(&self) -> crate::zone::Zone {
        crate::zone::Zone::parse(&self.timezone).unwrap_or_else(|_| crate::zone::Zone::utc())
    }
}

impl Item {
    fn validate(&self, v: &mut Validator, p: &str) {
        v.check(crate::ids::check_safe_id(&self.link_id).is_ok(), format!("{p}.linkId"), "must be 1-64 of [A-Za-z0-9._-]");
        let numeric = matches!(self.item_type, ItemType::Integer | ItemType::Decimal);
        for (name, bound) in [("min", self.min), ("max", self.max)] {
            if let Some(b) = bound {
                v.check(numeric, format!("{p}.{name}"), "only integer and decimal items have a range");
                v.check(
                    crate::validation::storable_number(b),
                    format!("{p}.{name}"),
                    "must be a finite number of magnitude below 1e126 (and, unless 0, at least 1e-130)",
                );
            }
        }
        if let (Some(lo), Some(hi)) = (self.min, self.max) {
            v.check(lo <= hi, format!("{p}.min"), "must not exceed max");
        }
        match (&self.options, self.item_type) {
            (Some(o), ItemType::Choice) => v.check(!o.is_empty() && o.len() <= 100, format!("{p}.options"), "must hold 1-100 options"),
            (None, ItemType::Choice) => v.error(format!("{p}.options"), "a choice item needs options"),
            (Some(_), _) => v.error(format!("{p}.options"), "only choice items have options"),
            _ => {}
        }
        if let Some(n) = self.max_length {
            v.check(self.item_type == ItemType::String, format!("{p}.maxLength"), "only string items have maxLength");
            v.check((1..=10_000).contains(&n), format!("{p}.maxLength"), "must be 1-10000");
        }
    }
}

/// What a trial looks like from outside: the webhook secret never leaves.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TrialView {
    pub trial_id: TrialId,
    pub name: String,
    pub sites: Vec<Site>,
    pub questionnaires: Vec<Questionnaire>,
    pub schedule: Vec<ScheduleEntry>,
    pub timezone: String,
    pub status: TrialStatus,
    pub alerting: AlertingView,
    pub updated_at: String,
}

/// A trial as its patients' app sees it: what it needs to render and
/// schedule questionnaires. No sites, and no alerting: a patient who could
/// read the PRO thresholds could learn to answer around them.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PatientTrialView {
    pub trial_id: TrialId,
    pub name: String,
    pub questionnaires: Vec<Questionnaire>,
    pub schedule: Vec<ScheduleEntry>,
    pub timezone: String,
    pub status: TrialStatus,
    pub updated_at: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AlertingView {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook: Option<WebhookView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sns_topic_arn: Option<String>,
    pub news2: News2Settings,
    pub pro_rules: Vec<ProRule>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookView {
    pub url: String,
    pub secret_set: bool,
}

impl Trial {
    pub fn patient_view(&self) -> PatientTrialView {
        let d = &self.definition;
        PatientTrialView {
            trial_id: self.trial_id.clone(),
            name: d.name.clone(),
            questionnaires: d.questionnaires.clone(),
            schedule: d.schedule.clone(),
            timezone: d.timezone.clone(),
            status: d.status,
            updated_at: self.updated_at.clone(),
        }
    }

    pub fn view(&self) -> TrialView {
        let d = &self.definition;
        TrialView {
            trial_id: self.trial_id.clone(),
            name: d.name.clone(),
            sites: d.sites.clone(),
            questionnaires: d.questionnaires.clone(),
            schedule: d.schedule.clone(),
            timezone: d.timezone.clone(),
            status: d.status,
            alerting: AlertingView {
                webhook: d.alerting.webhook.as_ref().map(|w| WebhookView { url: w.url.clone(), secret_set: !w.secret.is_empty() }),
                sns_topic_arn: d.alerting.sns_topic_arn.clone(),
                news2: d.alerting.news2,
                pro_rules: d.alerting.pro_rules.clone(),
            },
            updated_at: self.updated_at.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def() -> TrialDefinition {
        serde_json::from_value(serde_json::json!({
            "name": "Heart failure at home",
            "sites": [{"id": "s1", "name": "Leeds"}, {"id": "s2", "name": "北京协和医院"}],
            "questionnaires": [{"id": "kccq", "version": "1", "items": [
                {"linkId": "q1", "type": "integer", "min": 0, "max": 10, "required": true},
                {"linkId": "q2", "type": "choice", "options": [0, 1, 2, 3]},
                {"linkId": "q3", "type": "string", "maxLength": 200}
            ]}],
            "schedule": [{"questionnaireId": "kccq", "frequency": "daily"}],
            "timezone": "Europe/London",
            "alerting": {"webhook": {"url": "https://site.example/hook", "secret": "0123456789abcdef"},
                         "news2": {"freshnessMinutes": 60, "cooldownMinutes": 120},
                         "proRules": [{"questionnaireId": "kccq", "linkId": "q1", "atLeast": 8, "level": "medium"}]}
        }))
        .unwrap()
    }

    #[test]
    fn a_complete_definition_is_valid() {
        def().validate().unwrap();
    }

    #[test]
    fn every_bad_field_is_reported_at_once() {
        let mut d = def();
        d.name = String::new();
        d.timezone = "Mars/Olympus".into();
        d.alerting.pro_rules[0].link_id = "nope".into();
        let errs = d.validate().unwrap_err().into_vec();
        let fields: Vec<_> = errs.iter().map(|e| e.field.as_str()).collect();
        assert!(fields.contains(&"name") && fields.contains(&"timezone") && fields.contains(&"alerting.proRules[0]"), "{fields:?}");
    }

    #[test]
    fn a_misspelt_zone_is_422_naming_timezone_and_link_names_and_utc_are_zones() {
        // GIVEN a definition whose zone is misspelt
        let mut d = def();
        d.timezone = "Europe/Londn".into();
        // WHEN it is validated THEN it is a 422 naming timezone, with the message it always had
        let e = d.validate().unwrap_err();
        assert_eq!(crate::edge::http::HttpError::from(e.clone()).status(), 422);
        let errs = e.into_vec();
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!((errs[0].field.as_str(), errs[0].message.as_str()), ("timezone", "must be an IANA time zone, e.g. Europe/London"));
        // AND a stored trial with a name no longer known reads as UTC, as before
        assert_eq!(d.tz(), crate::zone::Zone::utc());
        // AND link names and UTC are valid zones, read back by their own names
        for zone in ["US/Eastern", "Asia/Calcutta", "UTC", "America/Argentina/Buenos_Aires"] {
            d.timezone = zone.into();
            d.validate().unwrap();
            assert_eq!(d.tz().name(), zone);
        }
    }

    #[test]
    fn the_webhook_secret_never_appears_in_views_or_debug() {
        let t = Trial { trial_id: TrialId::parse("t1").unwrap(), definition: def(), updated_at: "x".into() };
        let json = serde_json::to_string(&t.view()).unwrap();
        assert!(!json.contains("0123456789abcdef"));
        assert!(json.contains("\"secretSet\":true"));
        assert!(!format!("{t:?}").contains("0123456789abcdef"));
    }

    #[test]
    fn clear_minutes_defaults_to_30_and_is_validated_like_the_other_news2_settings() {
        // GIVEN a definition without clearMinutes THEN it defaults to 30
        let mut d = def();
        assert_eq!(d.alerting.news2.clear_minutes, 30);
        // WHEN it is above a day THEN the field is named
        d.alerting.news2.clear_minutes = 1441;
        let errs = d.validate().unwrap_err().into_vec();
        assert_eq!(errs.iter().map(|e| e.field.as_str()).collect::<Vec<_>>(), ["alerting.news2.clearMinutes"]);
        d.alerting.news2.clear_minutes = 0;
        d.validate().unwrap();
    }

    #[test]
    fn bounds_and_thresholds_dynamodb_cannot_store_are_named() {
        // GIVEN a range and a PRO threshold beyond DynamoDB's number range
        // (stored inside lists, where the emulator does not check numbers but DynamoDB does)
        let mut d = def();
        d.questionnaires[0].items[0].max = Some(1e130);
        d.alerting.pro_rules[0].at_least = 1e-131;
        // THEN each is a field error, not a failed write after validation
        let errs = d.validate().unwrap_err().into_vec();
        let fields: Vec<_> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["questionnaires[0].items[0].max", "alerting.proRules[0].atLeast"]);
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let r: Result<TrialDefinition, _> = serde_json::from_value(serde_json::json!({"name": "x", "sites": [], "bogus": 1}));
        assert!(r.is_err());
    }
}
