//! The world every end-to-end test starts from: a local stack of its own
//! (uniquely prefixed resources on the emulator, a free port), a webhook
//! receiver that checks signatures, and the demo trial configured to use it.

use serde_json::Value;
use trialwatch_local::auth::DevIdentity;
use trialwatch_local::client::{Answer, Api};
use trialwatch_local::receiver::WebhookReceiver;
use trialwatch_local::{scenario, Stack, StackConfig};

pub const TRIAL: &str = "tw-e2e";

/// Fails loudly without an emulator: these tests never skip, and never reach AWS.
pub fn require_emulator() {
    if std::env::var("AWS_ENDPOINT_URL").map(|v| v.trim().is_empty()).unwrap_or(true) {
        panic!("AWS_ENDPOINT_URL is not set: run the end-to-end tests with `make test`, which starts the emulator");
    }
}

pub struct World {
    pub stack: Stack,
    pub receiver: WebhookReceiver,
    pub api: Api,
}

impl World {
    /// GIVEN a running stack with the demo trial (3 sites, PRO rule, webhook to the receiver).
    pub async fn start(label: &str) -> World {
        require_emulator();
        let stack = Stack::start(StackConfig::for_test(label)).await.unwrap_or_else(|e| panic!("the local stack did not start: {e}"));
        let secret = format!("whsec-{}", uuid::Uuid::new_v4().simple());
        let receiver = WebhookReceiver::start(&secret).await.expect("webhook receiver");
        let api = Api::new(&stack.base_url, &trialwatch_local::auth::dev_secret(), 8);
        let world = World { stack, receiver, api };
        let t = world
            .api
            .put(&format!("/v1/trials/{TRIAL}"), &world.admin(), &scenario::trial_definition(&world.receiver.url, &secret))
            .await
            .expect("PUT trial");
        assert_eq!(t.status, 201, "PUT trial: {}", t.body);
        world
    }

    pub fn admin(&self) -> String {
        self.api.token(&DevIdentity::new("admin").subject("e2e-admin")).expect("token")
    }
    pub fn staff(&self, sites: &[&str]) -> String {
        self.api.token(&DevIdentity::new("site_staff").trial(TRIAL).sites(sites).subject("e2e-nurse")).expect("token")
    }
    pub fn sponsor(&self) -> String {
        self.api.token(&DevIdentity::new("sponsor").trial(TRIAL).subject("e2e-sponsor")).expect("token")
    }
    pub fn patient(&self, patient: &str) -> String {
        self.api.token(&DevIdentity::new("patient").trial(TRIAL).patient(patient)).expect("token")
    }

    /// Enrols patient number `n` (`P0000n`, at `scenario::site_of(n)`) and returns its id.
    pub async fn enrol(&self, n: usize) -> String {
        let id = scenario::patient_id(n);
        let a =
            self.api.put(&format!("/v1/trials/{TRIAL}/patients/{id}"), &self.admin(), &scenario::enrolment(n)).await.expect("PUT patient");
        assert_eq!(a.status, 201, "enrol {id}: {}", a.body);
        id
    }

    pub async fn get(&self, path: &str, token: &str) -> Answer {
        self.api.get(path, token).await.expect("GET")
    }
    pub async fn post(&self, path: &str, token: &str, body: &Value) -> Answer {
        self.api.post(path, token, body).await.expect("POST")
    }

    pub async fn shutdown(self) {
        self.receiver.shutdown().await;
        self.stack.shutdown().await;
    }
}
