//! The audit trail's anchors and verifier against the emulator, with real SDK
//! clients. The trails are written here as the audit spec stores them (the
//! writers link their own entries on another branch): entries at
//! `CHAIN#<trial>#<chain>` / 12-digit seq, heads on the trial and enrolment items.

use aws_sdk_dynamodb::types::AttributeValue;
use trialwatch::audit::chain::{ChainHead, ChainId};
use trialwatch::audit::verify::Finding;
use trialwatch::audit::{Actor, AuditEntry};
use trialwatch::{PatientId, TrialId};
use trialwatch_e2e::require_emulator;
use trialwatch_local::verify_audit::{self, Target};
use trialwatch_local::{Stack, StackConfig};

struct Trail {
    dynamodb: aws_sdk_dynamodb::Client,
    target: Target,
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn patient(p: &str) -> ChainId {
    ChainId::Patient(PatientId::parse(p).unwrap())
}

/// FNV-1a of the entry id over 16 shards, as the writers spread the time index.
fn shard(entry_id: &str) -> u32 {
    entry_id.bytes().fold(0x811c_9dc5_u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193)) % 16
}

impl Trail {
    fn new(stack: &Stack) -> Trail {
        Trail {
            dynamodb: aws_sdk_dynamodb::Client::new(&stack.sdk),
            target: Target::provisioned(&stack.provisioned).expect("anchor bucket provisioned"),
        }
    }

    fn chain_key(trial: &str, chain: &ChainId, seq: u64) -> (String, String) {
        (format!("CHAIN#{trial}#{chain}"), format!("{seq:012}"))
    }

    /// PutItem of one entry as the spec stores it (no condition: also the tamperer's overwrite).
    async fn put_entry(&self, trial: &str, entry: &AuditEntry) {
        let chain = ChainId::parse(entry.chain.as_deref().unwrap()).unwrap();
        let (pk, sk) = Self::chain_key(trial, &chain, entry.seq.unwrap());
        let mut item: std::collections::HashMap<String, AttributeValue> = serde_dynamo::to_item(entry).unwrap();
        item.insert("pk".into(), s(pk));
        item.insert("sk".into(), s(sk));
        item.insert("gsi1pk".into(), s(format!("AUDIT#{trial}#{}", shard(&entry.entry_id))));
        item.insert("gsi1sk".into(), s(format!("{}#{}", entry.at, entry.entry_id)));
        self.dynamodb.put_item().table_name(&self.target.audit_table).set_item(Some(item)).send().await.expect("put entry");
    }

    /// Sets the head on the trial item (the trial chain) or the enrolment.
    async fn set_head(&self, trial: &str, chain: &ChainId, head: &ChainHead) {
        let sk = match chain {
            ChainId::Trial => "META".to_owned(),
            ChainId::Patient(p) => format!("PATIENT#{p}"),
        };
        let mut update = self
            .dynamodb
            .update_item()
            .table_name(&self.target.table)
            .key("pk", s(format!("TRIAL#{trial}")))
            .key("sk", s(sk))
            .update_expression("SET auditSeq = :seq, auditHash = :hash")
            .expression_attribute_values(":seq", AttributeValue::N(head.seq.to_string()))
            .expression_attribute_values(":hash", s(&head.hash));
        if *chain == ChainId::Trial {
            // Listed in the trials index, as every trial item is: the anchoring schedule finds it there.
            update = update
                .update_expression("SET auditSeq = :seq, auditHash = :hash, gsi1pk = :g, gsi1sk = :t")
                .expression_attribute_values(":g", s("TRIALS"))
                .expression_attribute_values(":t", s(trial));
        }
        update.send().await.expect("set head");
    }

    /// A valid trail: the trial chain (2 entries) and `patients` chains of 3 entries each.
    async fn write(&self, trial: &str, patients: &[&str]) -> Vec<(ChainId, Vec<AuditEntry>)> {
        let t = TrialId::parse(trial).unwrap();
        let mut chains = vec![(ChainId::Trial, 2)];
        chains.extend(patients.iter().map(|p| (patient(p), 3)));
        let mut out = Vec::new();
        for (chain, n) in chains {
            let mut head = ChainHead::genesis();
            let mut entries = Vec::new();
            for i in 0..n {
                let mut e = AuditEntry::new(t.clone(), chain.to_string(), "submission.created", Actor::system("e2e"), chrono::Utc::now())
                    .with_detail("score", i)
                    .with_reason(Some("entered".into()));
                head = e.link(&chain, &head);
                self.put_entry(trial, &e).await;
                entries.push(e);
            }
            self.set_head(trial, &chain, &head).await;
            out.push((chain, entries));
        }
        out
    }

    async fn verify(&self, stack: &Stack, trial: &str) -> trialwatch::audit::verify::Report {
        let report =
            verify_audit::verify(&stack.sdk, &self.target, &TrialId::parse(trial).unwrap()).await.expect("verifier read the trail");
        // What `make verify-audit` prints, for the test log.
        eprintln!("{report}");
        report
    }

    async fn delete(&self, trial: &str, chain: &ChainId, seq: u64) {
        let (pk, sk) = Self::chain_key(trial, chain, seq);
        self.dynamodb.delete_item().table_name(&self.target.audit_table).key("pk", s(pk)).key("sk", s(sk)).send().await.expect("delete");
    }
}

fn unique(label: &str) -> String {
    format!("tw-{label}-{}", &uuid::Uuid::new_v4().simple().to_string()[..8])
}

async fn anchor_now(stack: &Stack) -> serde_json::Value {
    stack.fire("AuditAnchors").await.expect("the anchoring schedule ran")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anchors_are_written_locked_in_compliance_mode_and_a_locked_version_cannot_be_deleted() {
    require_emulator();
    // GIVEN a stack and a trial with a valid chained trail
    let stack = Stack::start(StackConfig::for_test("e2e-anchor")).await.expect("stack");
    let trail = Trail::new(&stack);
    let trial = unique("anchor");
    let chains = trail.write(&trial, &["P1", "P2"]).await;

    // WHEN the template's hourly AuditAnchors schedule fires (through report-generator)
    let outcome = anchor_now(&stack).await;
    assert_eq!(outcome["failed"], 0, "{outcome}");
    assert!(outcome["anchored"].as_u64().unwrap() >= 1, "{outcome}");

    // THEN one object anchors every chain head of the trial
    let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&stack.sdk).force_path_style(true).build());
    let bucket = &trail.target.anchor_bucket;
    let listed = s3.list_objects_v2().bucket(bucket).prefix(format!("anchors/{trial}/")).send().await.expect("list");
    assert_eq!(listed.contents().len(), 1);
    let key = listed.contents()[0].key().unwrap().to_owned();
    assert!(key.ends_with("Z.json"), "{key}");
    let object = s3.get_object().bucket(bucket).key(&key).send().await.expect("get");
    // AND it is locked in COMPLIANCE mode for the template's retention (3653 days)
    assert_eq!(object.object_lock_mode().map(|m| m.as_str()), Some("COMPLIANCE"));
    let until = object.object_lock_retain_until_date().expect("retain-until date").secs();
    let days = (until - chrono::Utc::now().timestamp()) / 86_400;
    assert!((3652..=3653).contains(&days), "locked for {days} days");
    let version = object.version_id().expect("versioned").to_owned();
    let body: serde_json::Value = serde_json::from_slice(&object.body.collect().await.unwrap().into_bytes()).unwrap();
    assert_eq!(body["trialId"], trial.as_str());
    assert_eq!(body["chains"].as_object().unwrap().len(), 3, "{body}");
    for (chain, entries) in &chains {
        let head = entries.last().unwrap();
        assert_eq!(body["chains"][chain.to_string()]["seq"], head.seq.unwrap());
        assert_eq!(body["chains"][chain.to_string()]["hash"], head.hash.as_deref().unwrap());
    }
    // AND the bucket's own lock configuration came from the template
    let lock = s3.get_object_lock_configuration().bucket(bucket).send().await.expect("lock configuration");
    let rule = lock.object_lock_configuration().and_then(|c| c.rule()).and_then(|r| r.default_retention()).expect("default retention");
    assert_eq!((rule.mode().map(|m| m.as_str()), rule.days()), (Some("COMPLIANCE"), Some(3653)));

    // WHEN the locked version is deleted THEN S3 (moto too) refuses
    let refused = s3.delete_object().bucket(bucket).key(&key).version_id(&version).send().await;
    let err = refused.expect_err("a locked version must not be deletable");
    assert_eq!(aws_sdk_s3::error::ProvideErrorMetadata::code(&err), Some("AccessDenied"), "{err:?}");
    // AND a plain delete only adds a delete marker: the verifier still reads the locked version
    s3.delete_object().bucket(bucket).key(&key).send().await.expect("delete marker");
    let report = trail.verify(&stack, &trial).await;
    assert!(report.intact(), "{report}");
    assert_eq!((report.chains, report.entries, report.anchors, report.anchored_heads), (3, 8, 1, 3), "{report}");
    stack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_verifier_names_exactly_the_entry_edited_deleted_cut_or_rewritten_through_the_sdk() {
    require_emulator();
    // GIVEN four trials, each with a valid trail (trial chain, patients P1..P3), anchored, verified OK
    let stack = Stack::start(StackConfig::for_test("e2e-verify")).await.expect("stack");
    let trail = Trail::new(&stack);
    let [edit, gap, tail, rewrite] = ["edit", "gap", "tail", "rewrite"].map(unique);
    let mut written = std::collections::BTreeMap::new();
    for trial in [&edit, &gap, &tail, &rewrite] {
        written.insert(trial.clone(), trail.write(trial, &["P1", "P2", "P3"]).await);
    }
    assert_eq!(anchor_now(&stack).await["failed"], 0);
    for trial in [&edit, &gap, &tail, &rewrite] {
        let report = trail.verify(&stack, trial).await;
        assert!(report.intact(), "{report}");
        assert_eq!((report.chains, report.entries, report.anchored_heads), (4, 11, 4), "{report}");
        assert!(report.to_string().ends_with("OK"));
    }
    let entry = |trial: &String, chain: usize, seq: usize| written[trial][chain].1[seq - 1].clone();

    // WHEN one entry's details.score is changed with UpdateItem (P2, entry 2)
    let edited = entry(&edit, 2, 2);
    let (pk, sk) = Trail::chain_key(&edit, &patient("P2"), 2);
    trail
        .dynamodb
        .update_item()
        .table_name(&trail.target.audit_table)
        .key("pk", s(pk))
        .key("sk", s(sk))
        .update_expression("SET details.score = :v")
        .expression_attribute_values(":v", AttributeValue::N("7".into()))
        .send()
        .await
        .expect("edit");
    // THEN the verifier names exactly that entry, and only it
    let report = trail.verify(&stack, &edit).await;
    assert_eq!(report.findings.len(), 1, "{report}");
    let f = &report.findings[0];
    assert_eq!((f.chain(), f.seq(), f.entry_id()), (Some("patient/P2"), Some(2), Some(edited.entry_id.as_str())), "{report}");
    assert!(f.to_string().contains("was altered"), "{f}");

    // WHEN an entry is deleted from the middle (P1, entry 2) THEN the gap is named
    trail.delete(&gap, &patient("P1"), 2).await;
    let report = trail.verify(&stack, &gap).await;
    assert_eq!(report.findings.len(), 1, "{report}");
    let f = &report.findings[0];
    assert_eq!((f.chain(), f.seq(), f.entry_id()), (Some("patient/P1"), Some(2), Some(entry(&gap, 1, 3).entry_id.as_str())), "{report}");
    assert!(f.to_string().contains("entry 2 is missing"), "{f}");

    // WHEN the tail is deleted (P3, entry 3) THEN the chain misses its recorded head
    trail.delete(&tail, &patient("P3"), 3).await;
    let report = trail.verify(&stack, &tail).await;
    assert_eq!(report.findings.len(), 1, "{report}");
    let f = &report.findings[0];
    assert_eq!((f.chain(), f.seq()), (Some("patient/P3"), Some(2)), "{report}");
    assert!(f.to_string().contains("recorded head is entry 3"), "{f}");

    // WHEN P1's whole chain is rewritten from entry 2 with its hashes and its head recomputed consistently
    let p1 = patient("P1");
    let mut forged: Vec<AuditEntry> = written[&rewrite][1].1.clone();
    forged[1].reason = Some("rewritten".into());
    let mut head = forged[0].as_head().unwrap();
    for e in forged.iter_mut().skip(1) {
        head = e.link(&p1, &head);
        trail.put_entry(&rewrite, e).await;
    }
    trail.set_head(&rewrite, &p1, &head).await;
    // THEN the chain and head agree, and only the anchor catches it: the anchored entry 3 is named
    let report = trail.verify(&stack, &rewrite).await;
    assert_eq!(report.findings.len(), 1, "{report}");
    let f = &report.findings[0];
    assert!(matches!(f, Finding::Anchor { .. }), "{report}");
    assert_eq!((f.chain(), f.seq(), f.entry_id()), (Some("patient/P1"), Some(3), Some(forged[2].entry_id.as_str())), "{report}");
    assert!(f.to_string().contains(&format!("anchors/{rewrite}/")), "{f}");
    stack.shutdown().await;
}
