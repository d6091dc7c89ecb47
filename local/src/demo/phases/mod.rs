//! The demo's phases, one function each, in the order [`Demo::run_all`]
//! runs them, grouped in one module per part of the story. Each prints its
//! numbered line, records what it must prove in [`Checks`] and adds its
//! figures to the [`Summary`], naming the backend.

mod alerts;
mod burst;
mod ingest;
mod records;
mod setup;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};

use super::{Checks, DemoError, DemoOptions, Summary, TRIAL};
use crate::auth::DevIdentity;
use crate::client::Api;
use crate::receiver::WebhookReceiver;
use crate::scenario;
use crate::Stack;

/// Backend labels used in the summary.
const MEMORY: &str = "[in-memory]";
const EMULATOR: &str = "[emulator]";

pub struct Demo<'a> {
    emulator: &'a Stack,
    memory: &'a Stack,
    opts: &'a DemoOptions,
    receiver: &'a WebhookReceiver,
    secret: &'a str,
    /// The emulator stack's API and the in-memory one's (tokens work on both: same dev secret).
    api: Api,
    memory_api: Api,
    admin: String,
    staff: String,
    sponsor: String,
    patients: Vec<String>,
    retries: AtomicU64,
    pub checks: Checks,
    pub summary: Summary,
    /// Patients whose checked submissions tripped the PRO rule, and how many of those were accepted.
    pro_patients: BTreeSet<usize>,
    pro_submissions: usize,
    /// Alerts the API lists, by id: (patient, level).
    alerts: BTreeMap<String, (usize, String)>,
}

impl<'a> Demo<'a> {
    pub fn new(
        emulator: &'a Stack,
        memory: &'a Stack,
        opts: &'a DemoOptions,
        receiver: &'a WebhookReceiver,
        secret: &'a str,
    ) -> Result<Self, DemoError> {
        let api = Api::new(&emulator.base_url, &crate::auth::dev_secret(), opts.emulator_concurrency);
        let memory_api = Api::new(&memory.base_url, &crate::auth::dev_secret(), opts.concurrency);
        let admin = api.token(&DevIdentity::new("admin").subject("demo-admin"))?;
        // Staff sites are (trial, site) pairs: `trialId/siteId`.
        let pairs = scenario::site_pairs(TRIAL);
        let staff = api.token(
            &DevIdentity::new("site_staff").trial(TRIAL).sites(&pairs.iter().map(String::as_str).collect::<Vec<_>>()).subject("demo-nurse"),
        )?;
        let sponsor = api.token(&DevIdentity::new("sponsor").trial(TRIAL).subject("demo-sponsor"))?;
        let patients = (0..opts.patients)
            .map(|n| api.token(&DevIdentity::new("patient").trial(TRIAL).patient(&scenario::patient_id(n))))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            emulator,
            memory,
            opts,
            receiver,
            secret,
            api,
            memory_api,
            admin,
            staff,
            sponsor,
            patients,
            retries: AtomicU64::new(0),
            checks: Checks::default(),
            summary: Summary::default(),
            pro_patients: BTreeSet::new(),
            pro_submissions: 0,
            alerts: BTreeMap::new(),
        })
    }

    pub async fn run_all(&mut self) -> Result<(), DemoError> {
        self.trial().await?;
        self.enrol().await?;
        self.burst().await;
        self.correctness().await?;
        self.vitals().await?;
        self.alerts().await?;
        self.acknowledge().await?;
        self.report().await?;
        self.dead_letters().await?;
        self.audit().await?;
        self.domain_events().await;
        Ok(())
    }

    /// The closing lines, then the summary; true when every check passed.
    pub fn finish(mut self) -> bool {
        self.summary.line("retries after 503", self.retries.load(Ordering::Relaxed).to_string());
        // Every function of both stacks runs in this process, so the counter covers all their chain appends.
        self.summary.line(
            "audit head re-reads",
            format!("{} (an append whose chain head another writer moved first)", trialwatch::audit::append::head_retries()),
        );
        self.summary.line(
            "backends",
            format!(
                "{MEMORY} TrialWatch's own code: HTTP, JWT authorizer, validation, handler, no database (`make load` gives CPU per request); \
                 {EMULATOR} moto, one Python process (~150-200 DynamoDB item writes/s): proves storage, not speed"
            ),
        );
        self.summary.print(&self.checks)
    }
}
