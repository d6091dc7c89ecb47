//! `template.yaml` read as data: resources by type, and each function's
//! triggers (HTTP routes, SQS sources, schedules) for the local runner.
//!
//! CloudFormation's short-form tags (`!Ref X`, `!GetAtt X.Arn`, `!Sub ...`) are
//! rewritten to their long form (`{"Ref": "X"}`, `{"Fn::GetAtt": ["X", "Arn"]}`,
//! `{"Fn::Sub": ...}`) while parsing, so any tag, known or not, parses.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Map, Value};
use serde_yaml_ng::Value as Yaml;

use super::ProvisionError;

pub const FUNCTION_TYPE: &str = "AWS::Serverless::Function";
pub const TABLE_TYPE: &str = "AWS::DynamoDB::Table";
pub const QUEUE_TYPE: &str = "AWS::SQS::Queue";
pub const BUCKET_TYPE: &str = "AWS::S3::Bucket";
pub const TOPIC_TYPE: &str = "AWS::SNS::Topic";
pub const EVENT_BUS_TYPE: &str = "AWS::Events::EventBus";

/// A parsed SAM template, in CloudFormation's long (JSON) form.
#[derive(Debug, Clone)]
pub struct Template {
    root: Value,
    functions: Vec<FunctionSpec>,
}

/// One entry of `Resources`.
#[derive(Debug, Clone, Copy)]
pub struct Resource<'t> {
    pub logical_id: &'t str,
    pub kind: &'t str,
    /// `Properties`, or `Value::Null` when the resource has none.
    pub properties: &'t Value,
}

/// What the local runner needs to run one `AWS::Serverless::Function`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionSpec {
    pub logical_id: String,
    /// `Metadata.BuildProperties.Binary`: the cargo binary (= crate) name.
    pub binary: String,
    pub http_routes: Vec<HttpRoute>,
    pub sqs_sources: Vec<SqsSource>,
    pub schedules: Vec<Schedule>,
    /// Literal environment values, Globals first, then the function's own (which win, as in SAM).
    pub environment: BTreeMap<String, String>,
    /// Environment variables whose value is `!Ref <logical id>`: variable -> logical id.
    /// [`super::Provisioned::environment_for`] resolves them to physical names.
    pub environment_refs: BTreeMap<String, String>,
    pub timeout_seconds: u32,
    pub memory_mb: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRoute {
    /// Upper case, e.g. `POST`.
    pub method: String,
    /// API Gateway path template, e.g. `/v1/trials/{trialId}`.
    pub path: String,
    /// Whether the JWT authorizer guards the route (false for `Authorizer: NONE`).
    pub auth: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqsSource {
    pub event_name: String,
    pub queue_logical_id: String,
    pub batch_size: u32,
    pub maximum_concurrency: Option<u32>,
    pub report_batch_item_failures: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// The event's key under `Events`, e.g. `WeeklyReports`.
    pub name: String,
    /// `cron(...)` or `rate(...)`.
    pub expression: String,
    /// The constant JSON input, when the template sets one.
    pub input: Option<String>,
}

// Lambda's defaults when neither the function nor Globals say otherwise.
const DEFAULT_TIMEOUT_SECONDS: u32 = 3;
const DEFAULT_MEMORY_MB: u32 = 128;
const DEFAULT_SQS_BATCH_SIZE: u32 = 10;

impl Template {
    pub fn load(path: &Path) -> Result<Template, ProvisionError> {
        let text = std::fs::read_to_string(path).map_err(|source| ProvisionError::Read { path: path.to_path_buf(), source })?;
        Template::parse(&text)
    }

    pub fn parse(yaml: &str) -> Result<Template, ProvisionError> {
        let parsed: Yaml = serde_yaml_ng::from_str(yaml).map_err(|e| ProvisionError::Yaml(e.to_string()))?;
        let root = long_form(parsed)?;
        if !root.get("Resources").is_some_and(Value::is_object) {
            return Err(ProvisionError::Template("the template has no Resources mapping".into()));
        }
        let mut template = Template { root, functions: Vec::new() };
        template.functions =
            template.resources_of_type(FUNCTION_TYPE).iter().map(|r| template.function_spec(r)).collect::<Result<_, _>>()?;
        Ok(template)
    }

    /// The whole template in long form, for checks this API does not cover.
    pub fn as_json(&self) -> &Value {
        &self.root
    }

    pub fn resources(&self) -> Vec<Resource<'_>> {
        let Some(resources) = self.root.get("Resources").and_then(Value::as_object) else {
            return Vec::new();
        };
        resources
            .iter()
            .map(|(logical_id, body)| Resource {
                logical_id,
                kind: body.get("Type").and_then(Value::as_str).unwrap_or_default(),
                properties: body.get("Properties").unwrap_or(&Value::Null),
            })
            .collect()
    }

    pub fn resources_of_type(&self, kind: &str) -> Vec<Resource<'_>> {
        self.resources().into_iter().filter(|r| r.kind == kind).collect()
    }

    pub fn resource(&self, logical_id: &str) -> Option<Resource<'_>> {
        self.resources().into_iter().find(|r| r.logical_id == logical_id)
    }

    /// Every `AWS::Serverless::Function`, in logical-id order.
    pub fn functions(&self) -> Vec<FunctionSpec> {
        self.functions.clone()
    }

    pub fn function(&self, logical_id: &str) -> Option<&FunctionSpec> {
        self.functions.iter().find(|f| f.logical_id == logical_id)
    }

    /// `Globals.Function.Environment.Variables`, in long form.
    pub fn global_environment(&self) -> BTreeMap<String, Value> {
        environment_of(self.root.pointer("/Globals/Function"))
    }

    fn global_function(&self, property: &str) -> Option<&Value> {
        self.root.pointer("/Globals/Function").and_then(|g| g.get(property))
    }

    fn function_spec(&self, resource: &Resource<'_>) -> Result<FunctionSpec, ProvisionError> {
        let id = resource.logical_id;
        let body = self.root.pointer(&format!("/Resources/{}", escape_pointer(id))).unwrap_or(&Value::Null);
        let binary = body
            .pointer("/Metadata/BuildProperties/Binary")
            .and_then(Value::as_str)
            .ok_or_else(|| ProvisionError::Template(format!("{id}: Metadata.BuildProperties.Binary is required (workspace builds)")))?
            .to_string();

        let mut environment = BTreeMap::new();
        let mut environment_refs = BTreeMap::new();
        let global = self.global_environment();
        let own = environment_of(Some(resource.properties));
        for (name, value) in global.into_iter().chain(own) {
            // A later (function-level) value replaces the global one whatever its form.
            environment.remove(&name);
            environment_refs.remove(&name);
            match &value {
                Value::String(s) => {
                    environment.insert(name, s.clone());
                }
                Value::Number(n) => {
                    environment.insert(name, n.to_string());
                }
                Value::Bool(b) => {
                    environment.insert(name, b.to_string());
                }
                _ => {
                    if let Some(target) = value.get("Ref").and_then(Value::as_str) {
                        environment_refs.insert(name, target.to_string());
                    }
                }
            }
        }

        let number = |property: &str, default: u32| -> Result<u32, ProvisionError> {
            match resource.properties.get(property).or_else(|| self.global_function(property)) {
                None => Ok(default),
                Some(v) => as_u32(v).ok_or_else(|| ProvisionError::Template(format!("{id}: {property} must be a whole number"))),
            }
        };

        let mut spec = FunctionSpec {
            logical_id: id.to_string(),
            binary,
            http_routes: Vec::new(),
            sqs_sources: Vec::new(),
            schedules: Vec::new(),
            environment,
            environment_refs,
            timeout_seconds: number("Timeout", DEFAULT_TIMEOUT_SECONDS)?,
            memory_mb: number("MemorySize", DEFAULT_MEMORY_MB)?,
        };

        let events = resource.properties.get("Events").and_then(Value::as_object).cloned().unwrap_or_default();
        for (event_name, event) in &events {
            let props = event.get("Properties").unwrap_or(&Value::Null);
            let missing = |what: &str| ProvisionError::Template(format!("{id}.Events.{event_name}: {what} is required"));
            match event.get("Type").and_then(Value::as_str) {
                Some("HttpApi") => {
                    let method = props.get("Method").and_then(Value::as_str).ok_or_else(|| missing("Method"))?.to_ascii_uppercase();
                    let path = props.get("Path").and_then(Value::as_str).ok_or_else(|| missing("Path"))?.to_string();
                    let auth = match props.pointer("/Auth/Authorizer").and_then(Value::as_str) {
                        Some(name) => name != "NONE",
                        None => self.api_has_default_authorizer(props.get("ApiId")),
                    };
                    spec.http_routes.push(HttpRoute { method, path, auth });
                }
                Some("SQS") => {
                    let queue_logical_id =
                        props.get("Queue").and_then(get_att_target).ok_or_else(|| missing("Queue as !GetAtt <queue>.Arn"))?.to_string();
                    let batch_size = match props.get("BatchSize") {
                        None => DEFAULT_SQS_BATCH_SIZE,
                        Some(v) => as_u32(v).ok_or_else(|| missing("a whole-number BatchSize"))?,
                    };
                    let maximum_concurrency = match props.pointer("/ScalingConfig/MaximumConcurrency") {
                        None => None,
                        Some(v) => Some(as_u32(v).ok_or_else(|| missing("a whole-number MaximumConcurrency"))?),
                    };
                    let report_batch_item_failures = props
                        .get("FunctionResponseTypes")
                        .and_then(Value::as_array)
                        .is_some_and(|types| types.iter().any(|t| t == "ReportBatchItemFailures"));
                    spec.sqs_sources.push(SqsSource {
                        event_name: event_name.clone(),
                        queue_logical_id,
                        batch_size,
                        maximum_concurrency,
                        report_batch_item_failures,
                    });
                }
                Some("Schedule") | Some("ScheduleV2") => {
                    let expression = props
                        .get("Schedule")
                        .or_else(|| props.get("ScheduleExpression"))
                        .and_then(Value::as_str)
                        .ok_or_else(|| missing("Schedule"))?
                        .to_string();
                    let input = props.get("Input").and_then(Value::as_str).map(str::to_string);
                    spec.schedules.push(Schedule { name: event_name.clone(), expression, input });
                }
                // Other event types are not run locally; they are not an error.
                _ => {}
            }
        }
        Ok(spec)
    }

    /// SAM applies an HttpApi's `Auth.DefaultAuthorizer` to every route that does not name one.
    fn api_has_default_authorizer(&self, api_id: Option<&Value>) -> bool {
        let api = match api_id.and_then(|v| v.get("Ref")).and_then(Value::as_str) {
            Some(logical_id) => self.resource(logical_id).map(|r| r.properties),
            // Without ApiId, SAM's implicit API takes its settings from Globals.HttpApi.
            None => self.root.pointer("/Globals/HttpApi"),
        };
        api.and_then(|p| p.pointer("/Auth/DefaultAuthorizer")).is_some()
    }
}

fn environment_of(function: Option<&Value>) -> BTreeMap<String, Value> {
    function
        .and_then(|f| f.pointer("/Environment/Variables"))
        .and_then(Value::as_object)
        .map(|vars| vars.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

/// The logical id `X` of `{"Fn::GetAtt": ["X", ...]}`.
pub(crate) fn get_att_target(value: &Value) -> Option<&str> {
    value.get("Fn::GetAtt").and_then(Value::as_array).and_then(|parts| parts.first()).and_then(Value::as_str)
}

/// Whole numbers arrive as YAML numbers or, often in CloudFormation, as strings.
pub(crate) fn as_u32(value: &Value) -> Option<u32> {
    match value {
        Value::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn escape_pointer(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

/// YAML -> JSON, rewriting CloudFormation short-form tags to their long form.
fn long_form(value: Yaml) -> Result<Value, ProvisionError> {
    Ok(match value {
        Yaml::Null => Value::Null,
        Yaml::Bool(b) => Value::Bool(b),
        Yaml::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                // NaN and infinities have no JSON form; CloudFormation has no use for them either.
                n.as_f64().and_then(serde_json::Number::from_f64).map(Value::Number).unwrap_or(Value::Null)
            }
        }
        Yaml::String(s) => Value::String(s),
        Yaml::Sequence(items) => Value::Array(items.into_iter().map(long_form).collect::<Result<_, _>>()?),
        Yaml::Mapping(mapping) => {
            let mut object = Map::new();
            for (key, value) in mapping {
                let key = match key {
                    Yaml::String(s) => s,
                    Yaml::Number(n) => n.to_string(),
                    Yaml::Bool(b) => b.to_string(),
                    other => return Err(ProvisionError::Yaml(format!("unsupported mapping key {other:?}"))),
                };
                object.insert(key, long_form(value)?);
            }
            Value::Object(object)
        }
        Yaml::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            let name = tag.trim_start_matches('!');
            let inner = long_form(tagged.value)?;
            let (key, inner) = match name {
                "Ref" | "Condition" => (name.to_string(), inner),
                // `!GetAtt Res.Attr` is the scalar form of `Fn::GetAtt: [Res, Attr]`.
                "GetAtt" => match inner {
                    Value::String(s) => {
                        let parts = match s.split_once('.') {
                            Some((resource, attribute)) => vec![Value::from(resource), Value::from(attribute)],
                            None => vec![Value::from(s.as_str())],
                        };
                        ("Fn::GetAtt".to_string(), Value::Array(parts))
                    }
                    other => ("Fn::GetAtt".to_string(), other),
                },
                other => (format!("Fn::{other}"), inner),
            };
            let mut object = Map::new();
            object.insert(key, inner);
            Value::Object(object)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SMALL: &str = r#"
Globals:
  Function:
    Timeout: 10
    Environment:
      Variables:
        TABLE_NAME: !Ref Table
        MODE: "global"
Resources:
  Table:
    Type: AWS::DynamoDB::Table
    Properties:
      Arn: !GetAtt Queue.Arn
      Joined: !Join ["-", [a, !Ref AWS::Region]]
      Custom: !Whatever {k: v}
      Sub: !Sub "${Table.Arn}/index/*"
  Api:
    Type: AWS::Serverless::HttpApi
    Properties:
      Auth:
        DefaultAuthorizer: Jwt
  Fn:
    Type: AWS::Serverless::Function
    Metadata:
      BuildProperties:
        Binary: fn-bin
    Properties:
      MemorySize: 256
      Environment:
        Variables:
          MODE: local
          LEVEL: 3
      Events:
        Open:
          Type: HttpApi
          Properties: {ApiId: !Ref Api, Method: get, Path: /health, Auth: {Authorizer: NONE}}
        Closed:
          Type: HttpApi
          Properties: {ApiId: !Ref Api, Method: POST, Path: /v1/x}
        Q:
          Type: SQS
          Properties: {Queue: !GetAtt Queue.Arn, FunctionResponseTypes: [ReportBatchItemFailures]}
        Weekly:
          Type: Schedule
          Properties: {Schedule: rate(7 days)}
"#;

    #[test]
    fn short_form_tags_become_their_long_form_and_unknown_tags_still_parse() {
        // GIVEN a template using !GetAtt, !Join, !Ref, !Sub and a tag CloudFormation does not have
        // WHEN it is parsed
        let t = Template::parse(SMALL).expect("parses");
        // THEN each tag is the long-form object
        let p = t.resource("Table").expect("table").properties;
        assert_eq!(p["Arn"], json!({"Fn::GetAtt": ["Queue", "Arn"]}));
        assert_eq!(p["Joined"], json!({"Fn::Join": ["-", ["a", {"Ref": "AWS::Region"}]]}));
        assert_eq!(p["Custom"], json!({"Fn::Whatever": {"k": "v"}}));
        assert_eq!(p["Sub"], json!({"Fn::Sub": "${Table.Arn}/index/*"}));
    }

    #[test]
    fn function_settings_merge_globals_with_the_function_winning() {
        // GIVEN Globals with a timeout and two variables, and a function overriding one
        let t = Template::parse(SMALL).expect("parses");
        // WHEN the function spec is read
        let f = t.function("Fn").expect("function");
        // THEN literal values merge, refs are kept apart, numbers come from the right level
        assert_eq!(f.binary, "fn-bin");
        assert_eq!(f.environment.get("MODE").map(String::as_str), Some("local"));
        assert_eq!(f.environment.get("LEVEL").map(String::as_str), Some("3"));
        assert_eq!(f.environment_refs.get("TABLE_NAME").map(String::as_str), Some("Table"));
        assert_eq!((f.timeout_seconds, f.memory_mb), (10, 256));
    }

    #[test]
    fn routes_are_authorised_by_the_api_default_unless_they_say_none() {
        // GIVEN an API with a default authorizer and one route opting out
        let t = Template::parse(SMALL).expect("parses");
        // WHEN routes are listed
        let f = t.function("Fn").expect("function");
        // THEN only the opted-out route is open, and methods are upper case
        assert!(f.http_routes.contains(&HttpRoute { method: "GET".into(), path: "/health".into(), auth: false }));
        assert!(f.http_routes.contains(&HttpRoute { method: "POST".into(), path: "/v1/x".into(), auth: true }));
    }

    #[test]
    fn sqs_sources_and_schedules_take_lambda_defaults_where_unset() {
        // GIVEN an SQS event without BatchSize or ScalingConfig, and a rate schedule
        let t = Template::parse(SMALL).expect("parses");
        let f = t.function("Fn").expect("function");
        // THEN the batch size is Lambda's default of 10 and concurrency is unbounded
        assert_eq!(
            f.sqs_sources,
            vec![SqsSource {
                event_name: "Q".into(),
                queue_logical_id: "Queue".into(),
                batch_size: 10,
                maximum_concurrency: None,
                report_batch_item_failures: true
            }]
        );
        assert_eq!(f.schedules, vec![Schedule { name: "Weekly".into(), expression: "rate(7 days)".into(), input: None }]);
    }

    #[test]
    fn a_function_without_a_binary_name_is_rejected() {
        // GIVEN a function that does not say which workspace binary it runs
        let yaml = "Resources:\n  F:\n    Type: AWS::Serverless::Function\n    Properties: {CodeUri: .}\n";
        // WHEN it is parsed THEN the error names the function and the missing property
        let err = Template::parse(yaml).expect_err("must fail").to_string();
        assert!(err.contains("F") && err.contains("Binary"), "{err}");
    }

    #[test]
    fn malformed_yaml_and_templates_without_resources_are_errors_not_panics() {
        for text in ["Resources: [unclosed", "Description: nothing", "", "- a\n- b"] {
            assert!(Template::parse(text).is_err(), "{text:?} should be rejected");
        }
    }
}
