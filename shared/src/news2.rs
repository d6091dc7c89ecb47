//! NEWS2 (Royal College of Physicians, 2017): pure scoring, no I/O.
//! ENGINE: to be completed (see `score`).

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::vitals::{LatestVitals, VitalValue};

/// Clinical risk from the aggregate and single-parameter scores. Ordered, so
/// "rose above the last alerted level" is a comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RiskLevel {
    Low,
    LowMedium,
    Medium,
    High,
}

impl RiskLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            RiskLevel::Low => "low",
            RiskLevel::LowMedium => "low-medium",
            RiskLevel::Medium => "medium",
            RiskLevel::High => "high",
        }
    }
    pub const ALL: [RiskLevel; 4] = [RiskLevel::Low, RiskLevel::LowMedium, RiskLevel::Medium, RiskLevel::High];
}

impl std::fmt::Display for RiskLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The seven NEWS2 chart rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Parameter {
    RespirationRate,
    Spo2,
    AirOrOxygen,
    SystolicBp,
    Pulse,
    Consciousness,
    Temperature,
}

impl Parameter {
    pub const ALL: [Parameter; 7] = [
        Parameter::RespirationRate,
        Parameter::Spo2,
        Parameter::AirOrOxygen,
        Parameter::SystolicBp,
        Parameter::Pulse,
        Parameter::Consciousness,
        Parameter::Temperature,
    ];
}

/// Which SpO2 row applies: scale 2 only for patients enrolled as hypercapnic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Spo2Scale {
    Scale1,
    Scale2,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Component {
    pub parameter: Parameter,
    pub value: VitalValue,
    pub score: u8,
    pub observed_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct News2Result {
    pub score: u8,
    pub risk_level: RiskLevel,
    pub components: Vec<Component>,
    pub missing: Vec<Parameter>,
    pub observed_at: Option<DateTime<Utc>>,
}

/// Scores each parameter's latest reading observed within `freshness` before
/// `now`; stale or absent parameters score nothing and are listed in `missing`.
pub fn score(latest: &LatestVitals, scale: Spo2Scale, now: DateTime<Utc>, freshness: Duration) -> News2Result {
    let _ = (latest, scale, now, freshness);
    todo!("NEWS2 engine")
}
