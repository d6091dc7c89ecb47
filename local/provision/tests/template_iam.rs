//! Least privilege, checked on template.yaml itself: no function role may be granted a
//! wildcard action, or a wildcard resource. Key and topic policies are resource policies
//! (they need `Resource: "*"`) and are out of scope.
//!
//! The one exception is X-Ray's: its write API has no resource-level permissions, so
//! tracing (`Tracing: Active`, which makes SAM attach `AWSXrayWriteOnlyAccess`) needs
//! `Resource: "*"` for exactly [`XRAY_WRITE_ACTIONS`], and nothing else may have it.

use serde_json::Value;
use trialwatch_provision::{template_path, Template};

/// Services whose resources hold or move clinical data.
const DATA_SERVICES: &[&str] = &["dynamodb", "sqs", "s3", "sns", "kms", "logs", "secretsmanager", "ssm"];

/// Managed policies a function role may carry: logging and tracing only, no data access.
const ALLOWED_MANAGED_POLICIES: &[&str] = &["AWSLambdaBasicExecutionRole", "AWSXRayDaemonWriteAccess", "AWSXrayWriteOnlyAccess"];

/// The documented exception: X-Ray's write actions take only `Resource: "*"`.
const XRAY_WRITE_ACTIONS: &[&str] = &[
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
    "xray:GetSamplingStatisticSummaries",
];

fn one_or_many(value: Option<&Value>) -> Vec<&Value> {
    match value {
        None => Vec::new(),
        Some(Value::Array(items)) => items.iter().collect(),
        Some(v) => vec![v],
    }
}

/// A resource is scoped when it names a resource of this template (Ref/GetAtt, or a `${X...}`
/// inside a Sub); a wildcard is acceptable only beneath such an ARN (`${Table.Arn}/index/*`).
fn resource_is_scoped(resource: &Value) -> bool {
    match resource {
        Value::String(s) => !s.contains('*'),
        Value::Object(o) if o.contains_key("Ref") || o.contains_key("Fn::GetAtt") => true,
        Value::Object(o) if o.contains_key("Fn::Sub") => {
            let text = match &o["Fn::Sub"] {
                Value::String(s) => s.as_str(),
                Value::Array(parts) => parts.first().and_then(Value::as_str).unwrap_or(""),
                _ => "",
            };
            if !text.contains('*') {
                return true;
            }
            // `${AWS::...}` pseudo parameters name an account or region, not a resource.
            let names_a_resource = text.split("${").skip(1).any(|v| !v.starts_with("AWS::"));
            names_a_resource && !text.starts_with('*')
        }
        // Fn::If, Fn::Join...: too clever for a role policy; ask for a plain reference.
        _ => false,
    }
}

/// Every way `statement` is broader than least privilege, as readable findings.
fn statement_findings(owner: &str, statement: &Value) -> Vec<String> {
    if statement.get("Effect").and_then(Value::as_str) != Some("Allow") {
        return Vec::new();
    }
    let sid = statement.get("Sid").and_then(Value::as_str).unwrap_or("(no Sid)");
    let mut findings = Vec::new();
    for key in ["NotAction", "NotResource"] {
        if statement.get(key).is_some() {
            findings.push(format!("{owner} {sid}: Allow with {key} grants everything else"));
        }
    }
    let actions: Vec<&str> = one_or_many(statement.get("Action")).into_iter().filter_map(Value::as_str).collect();
    for action in &actions {
        if action.contains('*') {
            findings.push(format!("{owner} {sid}: wildcard action {action}"));
        }
    }
    let on_data = actions.iter().any(|a| a.split(':').next().is_some_and(|service| DATA_SERVICES.contains(&service)));
    let xray_only = !actions.is_empty() && actions.iter().all(|a| XRAY_WRITE_ACTIONS.contains(a));
    for resource in one_or_many(statement.get("Resource")) {
        if !resource_is_scoped(resource) && (on_data || !xray_only) {
            findings.push(format!("{owner} {sid}: wildcard resource {resource} for {actions:?}"));
        }
    }
    findings
}

/// Findings for every function's `Policies` and every IAM role/policy resource of a template.
fn least_privilege_findings(template: &Template) -> Vec<String> {
    let mut findings = Vec::new();
    let resources = template.as_json()["Resources"].as_object().cloned().unwrap_or_default();
    for (id, body) in &resources {
        let kind = body["Type"].as_str().unwrap_or_default();
        let properties = &body["Properties"];
        let documents: Vec<Value> = match kind {
            "AWS::Serverless::Function" => {
                let mut documents = Vec::new();
                for policy in one_or_many(properties.get("Policies")) {
                    match policy {
                        Value::String(name) if ALLOWED_MANAGED_POLICIES.iter().any(|a| name.ends_with(a)) => {}
                        Value::String(name) => findings.push(format!("{id}: managed policy {name} is not scoped to this stack")),
                        Value::Object(o) if o.contains_key("Statement") => documents.push(policy.clone()),
                        Value::Object(o) => {
                            // A SAM policy template, e.g. {DynamoDBReadPolicy: {TableName: !Ref T}}.
                            for (template_name, args) in o {
                                if template_name.contains("FullAccess") {
                                    findings.push(format!("{id}: SAM policy template {template_name} grants every action"));
                                }
                                for arg in args.as_object().into_iter().flat_map(|a| a.values()) {
                                    if !resource_is_scoped(arg) {
                                        findings.push(format!("{id}: SAM policy template {template_name} on {arg}"));
                                    }
                                }
                            }
                        }
                        other => findings.push(format!("{id}: unreadable policy {other}")),
                    }
                }
                documents
            }
            "AWS::IAM::Role" => properties["Policies"].as_array().into_iter().flatten().map(|p| p["PolicyDocument"].clone()).collect(),
            "AWS::IAM::Policy" | "AWS::IAM::ManagedPolicy" => vec![properties["PolicyDocument"].clone()],
            _ => Vec::new(),
        };
        for document in &documents {
            for statement in one_or_many(document.get("Statement")) {
                findings.extend(statement_findings(id, statement));
            }
        }
    }
    findings
}

fn parse(yaml: &str) -> Template {
    Template::parse(yaml).expect("test template parses")
}

fn function_with_policies(policies: &str) -> Template {
    parse(&format!(
        r#"
Resources:
  Table:
    Type: AWS::DynamoDB::Table
  Fn:
    Type: AWS::Serverless::Function
    Metadata:
      BuildProperties:
        Binary: fn
    Properties:
      Policies:
{policies}
"#
    ))
}

#[test]
fn no_function_role_in_template_yaml_has_a_wildcard_action_or_data_resource() {
    // GIVEN the template that is deployed
    let template = Template::load(&template_path()).expect("template.yaml parses");
    // WHEN every function role's statements are checked
    let findings = least_privilege_findings(&template);
    // THEN none is broader than least privilege
    assert!(findings.is_empty(), "least-privilege findings:\n{}", findings.join("\n"));
    // AND the check did read the four functions' statements
    let statements: usize = template
        .resources_of_type("AWS::Serverless::Function")
        .iter()
        .flat_map(|f| one_or_many(f.properties.get("Policies")))
        .map(|p| one_or_many(p.get("Statement")).len())
        .sum();
    assert!(statements >= 12, "only {statements} statements were checked");
}

#[test]
fn a_wildcard_action_is_found() {
    // GIVEN a role statement allowing dynamodb:* on the table
    let t = function_with_policies(
        "        - Statement:\n            - Sid: Broad\n              Effect: Allow\n              Action: dynamodb:*\n              Resource: !GetAtt Table.Arn",
    );
    // WHEN checked THEN the action is reported
    assert_eq!(least_privilege_findings(&t), vec!["Fn Broad: wildcard action dynamodb:*".to_string()]);
}

#[test]
fn a_star_resource_on_a_data_service_is_found() {
    // GIVEN a role statement allowing sqs:SendMessage on every queue
    let t = function_with_policies(
        "        - Statement:\n            - Sid: AnyQueue\n              Effect: Allow\n              Action: [sqs:SendMessage]\n              Resource: \"*\"",
    );
    // WHEN checked THEN the resource is reported
    let findings = least_privilege_findings(&t);
    assert_eq!(findings.len(), 1, "{findings:?}");
    assert!(findings[0].starts_with("Fn AnyQueue: wildcard resource \"*\""), "{findings:?}");
}

#[test]
fn an_account_wide_sub_arn_is_a_wildcard_too() {
    // GIVEN every table of the account, written with pseudo parameters only
    let t = function_with_policies(
        "        - Statement:\n            - Sid: AllTables\n              Effect: Allow\n              Action: dynamodb:GetItem\n              Resource: !Sub arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/*",
    );
    // WHEN checked THEN it is reported, while the template's own table indexes would not be
    assert_eq!(least_privilege_findings(&t).len(), 1);
    let scoped = function_with_policies(
        "        - Statement:\n            - Sid: Indexes\n              Effect: Allow\n              Action: dynamodb:Query\n              Resource: !Sub ${Table.Arn}/index/*",
    );
    assert_eq!(least_privilege_findings(&scoped), Vec::<String>::new());
}

#[test]
fn sam_full_access_templates_and_broad_managed_policies_are_found() {
    // GIVEN a SAM FullAccess policy template and an AWS managed data policy
    let t = function_with_policies("        - S3FullAccessPolicy:\n            BucketName: !Ref Table\n        - AmazonDynamoDBFullAccess");
    // WHEN checked THEN both are reported
    let findings = least_privilege_findings(&t);
    assert_eq!(findings.len(), 2, "{findings:?}");
    assert!(findings.iter().any(|f| f.contains("S3FullAccessPolicy")), "{findings:?}");
    assert!(findings.iter().any(|f| f.contains("AmazonDynamoDBFullAccess")), "{findings:?}");
}

#[test]
fn a_star_resource_is_found_on_any_service_but_x_ray_s_write_actions() {
    // GIVEN a star resource on a service that holds no data, and X-Ray mixed with another action
    let t = function_with_policies(
        "        - Statement:\n            - Sid: Metrics\n              Effect: Allow\n              Action: cloudwatch:PutMetricData\n              Resource: \"*\"\n            - Sid: Mixed\n              Effect: Allow\n              Action: [xray:PutTraceSegments, events:PutEvents]\n              Resource: \"*\"",
    );
    // WHEN checked THEN both are reported: only X-Ray's write actions may have "*"
    let findings = least_privilege_findings(&t);
    assert_eq!(findings.len(), 2, "{findings:?}");
    assert!(findings.iter().any(|f| f.contains("Metrics")) && findings.iter().any(|f| f.contains("Mixed")), "{findings:?}");
}

#[test]
fn template_yaml_traces_every_function_with_x_ray() {
    let template = Template::load(&template_path()).expect("template.yaml parses");
    assert_eq!(template.as_json()["Globals"]["Function"]["Tracing"], "Active");
}

#[test]
fn deny_statements_and_non_data_wildcard_resources_are_not_findings() {
    // GIVEN a Deny with a star and an X-Ray statement, whose API takes only Resource "*"
    let t = function_with_policies(
        "        - Statement:\n            - Effect: Deny\n              Action: s3:*\n              Resource: \"*\"\n            - Effect: Allow\n              Action: [xray:PutTraceSegments]\n              Resource: \"*\"",
    );
    // WHEN checked THEN nothing is reported
    assert_eq!(least_privilege_findings(&t), Vec::<String>::new());
}

#[test]
fn the_analyzer_may_send_to_the_vitals_dlq_and_its_alert_queue_only() {
    // GIVEN the analyzer's policy statements in template.yaml
    let template = Template::load(&template_path()).expect("template.yaml parses");
    let policies = &template.as_json()["Resources"]["VitalsAnalyzerFunction"]["Properties"]["Policies"];
    let statements: Vec<&Value> = one_or_many(Some(policies)).into_iter().flat_map(|p| one_or_many(p.get("Statement"))).collect();
    // WHEN the queues it may send to are collected
    let mut targets: Vec<String> = statements
        .iter()
        .filter(|s| one_or_many(s.get("Action")).iter().any(|a| a.as_str() == Some("sqs:SendMessage")))
        .flat_map(|s| one_or_many(s.get("Resource")))
        .map(|r| r["Fn::GetAtt"][0].as_str().unwrap_or("(not a GetAtt)").to_owned())
        .collect();
    targets.sort();
    // THEN it parks in the vitals DLQ itself and enqueues alerts, and nothing else
    assert_eq!(targets, ["AlertQueue", "VitalsDLQ"]);
    // AND its environment names the DLQ it parks in
    let env = &template.as_json()["Resources"]["VitalsAnalyzerFunction"]["Properties"]["Environment"]["Variables"];
    assert_eq!(env["VITALS_DLQ_URL"]["Ref"].as_str(), Some("VitalsDLQ"));
}

// ------------------------------------------------------------------ the audit trail

/// The audit trail's table in template.yaml.
const AUDIT_TABLE: &str = "AuditTable";

/// Actions that would let a role edit an audit entry (UpdateItem), remove one (DeleteItem,
/// BatchWriteItem's deletes), make entries expire (UpdateTimeToLive) or drop the table.
const AUDIT_FORBIDDEN: &[&str] =
    &["dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem", "dynamodb:UpdateTimeToLive", "dynamodb:DeleteTable"];

/// Whether `resource` names the template resource `logical_id` (or something beneath it).
fn names_resource(resource: &Value, logical_id: &str) -> bool {
    match resource {
        Value::Object(o) => {
            if let Some(r) = o.get("Ref").and_then(Value::as_str) {
                return r == logical_id;
            }
            if let Some(att) = o.get("Fn::GetAtt") {
                let target = match att {
                    Value::String(s) => s.split('.').next().unwrap_or(""),
                    Value::Array(parts) => parts.first().and_then(Value::as_str).unwrap_or(""),
                    _ => "",
                };
                return target == logical_id;
            }
            if let Some(sub) = o.get("Fn::Sub") {
                let text = match sub {
                    Value::String(s) => s.as_str(),
                    Value::Array(parts) => parts.first().and_then(Value::as_str).unwrap_or(""),
                    _ => "",
                };
                return text.contains(&format!("${{{logical_id}}}")) || text.contains(&format!("${{{logical_id}."));
            }
            // Fn::If, Fn::Join...: could name anything; treat as naming it (fail closed).
            true
        }
        // A literal ARN or "*" may be the audit table.
        Value::String(s) => s.contains('*') || s.contains(":table/"),
        _ => false,
    }
}

/// Whether `action` (as written, wildcards allowed) covers `wanted`.
fn action_covers(action: &str, wanted: &str) -> bool {
    let (a, w) = (action.to_ascii_lowercase(), wanted.to_ascii_lowercase());
    match a.find('*') {
        None => a == w,
        Some(star) => w.starts_with(&a[..star]),
    }
}

/// Every way a function role could change or remove entries of `table`.
fn audit_tamper_findings(template: &Template, table: &str) -> Vec<String> {
    let mut findings = Vec::new();
    let resources = template.as_json()["Resources"].as_object().cloned().unwrap_or_default();
    for (id, body) in &resources {
        let properties = &body["Properties"];
        let documents: Vec<Value> = match body["Type"].as_str().unwrap_or_default() {
            "AWS::Serverless::Function" => {
                let mut documents = Vec::new();
                for policy in one_or_many(properties.get("Policies")) {
                    match policy {
                        Value::Object(o) if o.contains_key("Statement") => documents.push(policy.clone()),
                        Value::Object(o) => {
                            // SAM policy templates: only the read-only one may name the audit table.
                            for (template_name, args) in o {
                                let on_audit = args.as_object().into_iter().flat_map(|a| a.values()).any(|v| names_resource(v, table));
                                if on_audit && template_name != "DynamoDBReadPolicy" {
                                    findings.push(format!("{id}: SAM policy template {template_name} on {table}"));
                                }
                            }
                        }
                        _ => {}
                    }
                }
                documents
            }
            "AWS::IAM::Role" => properties["Policies"].as_array().into_iter().flatten().map(|p| p["PolicyDocument"].clone()).collect(),
            "AWS::IAM::Policy" | "AWS::IAM::ManagedPolicy" => vec![properties["PolicyDocument"].clone()],
            _ => Vec::new(),
        };
        for statement in documents.iter().flat_map(|d| one_or_many(d.get("Statement"))) {
            if statement.get("Effect").and_then(Value::as_str) != Some("Allow") {
                continue;
            }
            let sid = statement.get("Sid").and_then(Value::as_str).unwrap_or("(no Sid)");
            if !one_or_many(statement.get("Resource")).into_iter().any(|r| names_resource(r, table)) {
                continue;
            }
            for action in one_or_many(statement.get("Action")).into_iter().filter_map(Value::as_str) {
                for forbidden in AUDIT_FORBIDDEN.iter().filter(|f| action_covers(action, f)) {
                    findings.push(format!("{id} {sid}: {action} allows {forbidden} on {table}"));
                }
            }
        }
    }
    findings
}

#[test]
fn no_function_role_can_edit_expire_or_delete_audit_entries() {
    // GIVEN the template that is deployed
    let template = Template::load(&template_path()).expect("template.yaml parses");
    // WHEN every role statement that names the audit table is checked
    let findings = audit_tamper_findings(&template, AUDIT_TABLE);
    // THEN none allows UpdateItem, DeleteItem, BatchWriteItem, UpdateTimeToLive or DeleteTable
    assert!(findings.is_empty(), "audit trail findings:\n{}", findings.join("\n"));
    // AND the check is not vacuous: the functions that audit do append (PutItem) to that table
    let appenders: Vec<String> = template
        .resources_of_type("AWS::Serverless::Function")
        .iter()
        .filter(|f| {
            one_or_many(f.properties.get("Policies")).into_iter().flat_map(|p| one_or_many(p.get("Statement"))).any(|s| {
                one_or_many(s.get("Resource")).into_iter().any(|r| names_resource(r, AUDIT_TABLE))
                    && one_or_many(s.get("Action")).into_iter().filter_map(Value::as_str).any(|a| a == "dynamodb:PutItem")
            })
        })
        .map(|f| f.logical_id.to_string())
        .collect();
    for function in ["EproApiFunction", "AlertDispatcherFunction", "ReportGeneratorFunction"] {
        assert!(appenders.iter().any(|a| a == function), "{function} must append to {AUDIT_TABLE}; appenders: {appenders:?}");
    }
}

#[test]
fn the_audit_table_keeps_entries_no_ttl_pitr_deletion_protection_and_the_data_key() {
    // GIVEN the deployed template's audit table
    let template = Template::load(&template_path()).expect("template.yaml parses");
    let json = template.as_json();
    let table = &json["Resources"][AUDIT_TABLE];
    assert_eq!(table["Type"], "AWS::DynamoDB::Table");
    // THEN nothing can expire its entries, and it survives deletes and bad writes
    assert!(table["Properties"].get("TimeToLiveSpecification").is_none(), "an audit table must have no TTL");
    assert_eq!(table["Properties"]["DeletionProtectionEnabled"], true);
    assert_eq!(table["Properties"]["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"], true);
    assert_eq!(table["DeletionPolicy"], "Retain");
    assert_eq!(table["UpdateReplacePolicy"], "Retain");
    // AND it is encrypted with the stack's customer key, like the data table
    assert_eq!(table["Properties"]["SSESpecification"], json["Resources"]["TrialTable"]["Properties"]["SSESpecification"]);
    // AND every function is told its name
    assert_eq!(template.global_environment()["AUDIT_TABLE_NAME"], serde_json::json!({"Ref": AUDIT_TABLE}));
}

#[test]
fn update_delete_and_batch_writes_on_the_audit_table_are_found() {
    // GIVEN roles that could rewrite the trail in each of the ways a role can
    let t = parse(
        r#"
Resources:
  AuditTable:
    Type: AWS::DynamoDB::Table
  Fn:
    Type: AWS::Serverless::Function
    Metadata:
      BuildProperties:
        Binary: fn
    Properties:
      Policies:
        - Statement:
            - Sid: Edit
              Effect: Allow
              Action: [dynamodb:PutItem, dynamodb:UpdateItem]
              Resource: !GetAtt AuditTable.Arn
            - Sid: Purge
              Effect: Allow
              Action: dynamodb:BatchWriteItem
              Resource: !Sub ${AuditTable.Arn}
            - Sid: ReadOnly
              Effect: Allow
              Action: [dynamodb:GetItem, dynamodb:Query]
              Resource: !GetAtt AuditTable.Arn
        - DynamoDBCrudPolicy:
            TableName: !Ref AuditTable
  Other:
    Type: AWS::IAM::Role
    Properties:
      Policies:
        - PolicyDocument:
            Statement:
              - Sid: Expire
                Effect: Allow
                Action: dynamodb:Update*
                Resource: !GetAtt AuditTable.Arn
"#,
    );
    // WHEN checked
    let findings = audit_tamper_findings(&t, AUDIT_TABLE);
    // THEN each is reported, and the read-only statement is not
    for expected in [
        "Fn Edit: dynamodb:UpdateItem allows dynamodb:UpdateItem on AuditTable",
        "Fn Purge: dynamodb:BatchWriteItem allows dynamodb:BatchWriteItem on AuditTable",
        "Fn: SAM policy template DynamoDBCrudPolicy on AuditTable",
        "Other Expire: dynamodb:Update* allows dynamodb:UpdateItem on AuditTable",
        "Other Expire: dynamodb:Update* allows dynamodb:UpdateTimeToLive on AuditTable",
    ] {
        assert!(findings.iter().any(|f| f == expected), "missing {expected:?} in {findings:#?}");
    }
    assert!(!findings.iter().any(|f| f.contains("ReadOnly")), "{findings:#?}");
}

#[test]
fn the_audit_trail_is_read_only_by_epro_api_and_only_by_query_on_its_time_index() {
    // GIVEN the deployed template's function roles
    let template = Template::load(&template_path()).expect("template.yaml parses");
    let reads = ["dynamodb:Query", "dynamodb:Scan", "dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:PartiQLSelect"];
    let mut grants = Vec::new();
    for (id, body) in template.as_json()["Resources"].as_object().cloned().unwrap_or_default() {
        if body["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        let statements: Vec<Value> =
            one_or_many(body["Properties"].get("Policies")).into_iter().flat_map(|p| one_or_many(p.get("Statement"))).cloned().collect();
        for statement in &statements {
            let on_audit: Vec<&Value> =
                one_or_many(statement.get("Resource")).into_iter().filter(|r| names_resource(r, AUDIT_TABLE)).collect();
            for action in one_or_many(statement.get("Action")).into_iter().filter_map(Value::as_str) {
                for read in reads.iter().filter(|r| action_covers(action, r)) {
                    for resource in &on_audit {
                        grants.push(format!("{id} {read} {}", resource.get("Fn::Sub").and_then(Value::as_str).unwrap_or("(the table)")));
                    }
                }
            }
        }
    }
    // THEN the one read grant is epro-api's Query on the time index (the audit route), never
    // the table itself (whose key may change), never Scan
    assert_eq!(grants, ["EproApiFunction dynamodb:Query ${AuditTable.Arn}/index/gsi1"]);
}

// ---------------------------------------------------------------- the audit anchors

#[test]
fn anchors_are_locked_in_compliance_mode_and_only_report_generator_may_put_them_never_delete() {
    // GIVEN the deployed template's anchor bucket
    let template = Template::load(&template_path()).expect("template.yaml parses");
    let json = template.as_json();
    let bucket = &json["Resources"]["AuditAnchorBucket"]["Properties"];
    // THEN Object Lock is on with a COMPLIANCE default retention, on a versioned bucket under the stack key
    assert_eq!(bucket["ObjectLockEnabled"], true);
    assert_eq!(bucket["ObjectLockConfiguration"]["Rule"]["DefaultRetention"]["Mode"], "COMPLIANCE");
    assert_eq!(bucket["VersioningConfiguration"]["Status"], "Enabled");
    assert_eq!(
        bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]["KMSMasterKeyID"],
        serde_json::json!({"Fn::GetAtt": ["DataKey", "Arn"]})
    );
    // WHEN every function statement naming the bucket is collected
    let mut grants = Vec::new();
    for f in template.resources_of_type("AWS::Serverless::Function") {
        for s in one_or_many(f.properties.get("Policies")).into_iter().flat_map(|p| one_or_many(p.get("Statement"))) {
            if s.get("Effect").and_then(Value::as_str) != Some("Allow") {
                continue;
            }
            for r in one_or_many(s.get("Resource")).into_iter().filter(|r| names_resource(r, "AuditAnchorBucket") && r.is_object()) {
                let actions: Vec<&str> = one_or_many(s.get("Action")).into_iter().filter_map(Value::as_str).collect();
                grants.push((f.logical_id.to_string(), r["Fn::Sub"].as_str().unwrap_or("(not a Sub)").to_owned(), actions.join(",")));
            }
        }
    }
    // THEN only report-generator may put anchors, and lock them, under anchors/ only: no delete, read or bypass
    assert_eq!(
        grants,
        [(
            "ReportGeneratorFunction".to_owned(),
            "${AuditAnchorBucket.Arn}/anchors/*".to_owned(),
            "s3:PutObject,s3:PutObjectRetention".to_owned()
        )]
    );
    // AND it is told the bucket and the retention, and anchors hourly
    let function = &json["Resources"]["ReportGeneratorFunction"]["Properties"];
    assert_eq!(function["Environment"]["Variables"]["AUDIT_ANCHOR_BUCKET"], serde_json::json!({"Ref": "AuditAnchorBucket"}));
    assert_eq!(function["Events"]["AuditAnchors"]["Properties"]["Schedule"], "rate(1 hour)");
}

#[test]
fn every_function_that_publishes_domain_events_may_settle_their_pending_items() {
    // GIVEN the deployed template: a published event's pending item is deleted with a
    // BatchWriteItem on the trial table (the emulator does not enforce IAM, so only this
    // check sees a role that cannot, whose events the sweep would republish every minute)
    let template = Template::load(&template_path()).expect("template.yaml parses");
    let mut publishers = Vec::new();
    for f in template.resources_of_type("AWS::Serverless::Function") {
        let statements: Vec<&Value> =
            one_or_many(f.properties.get("Policies")).into_iter().flat_map(|p| one_or_many(p.get("Statement"))).collect();
        let allows = |action: &str, resource: &str| {
            statements.iter().any(|s| {
                one_or_many(s.get("Resource")).into_iter().any(|r| names_resource(r, resource))
                    && one_or_many(s.get("Action")).into_iter().filter_map(Value::as_str).any(|a| action_covers(a, action))
            })
        };
        let publishes =
            statements.iter().any(|s| one_or_many(s.get("Action")).into_iter().filter_map(Value::as_str).any(|a| a == "events:PutEvents"));
        if publishes {
            publishers.push(f.logical_id.to_string());
            // THEN its role may delete them from the trial table
            assert!(allows("dynamodb:BatchWriteItem", "TrialTable"), "{} publishes events but cannot settle them", f.logical_id);
        }
    }
    // AND the check is not vacuous: every function publishes
    assert_eq!(publishers.len(), 4, "{publishers:?}");
}
