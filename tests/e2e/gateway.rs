use trialwatch_e2e::{World, TRIAL};
use trialwatch_local::auth::{self, DevIdentity};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_authorizer_answers_401_like_api_gateway_for_missing_forged_and_expired_tokens() {
    let w = World::start("e2e-authorizer").await;
    let path = format!("{}/v1/trials/{TRIAL}", w.stack.base_url);
    let http = w.api.http();
    let now = chrono::Utc::now().timestamp();
    let forged = auth::issue("not-the-dev-secret", &DevIdentity::new("admin"), now, 600).expect("token");
    let expired = auth::issue(&auth::dev_secret(), &DevIdentity::new("admin"), now - 3600, 60).expect("token");

    // Public route: no token needed.
    assert_eq!(http.get(format!("{}/health", w.stack.base_url)).send().await.expect("health").status().as_u16(), 200);

    for (what, token) in [("missing", None), ("forged", Some(forged)), ("expired", Some(expired))] {
        let mut req = http.get(&path);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let r = req.send().await.expect("request");
        assert_eq!(r.status().as_u16(), 401, "{what} token");
        let body: serde_json::Value = r.json().await.expect("json");
        assert_eq!(body, serde_json::json!({"message": "Unauthorized"}), "{what} token");
    }

    // A valid token passes, and an unknown route is API Gateway's 404.
    let ok = w.get(&format!("/v1/trials/{TRIAL}"), &w.admin()).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let missing = http.get(format!("{}/v2/nothing", w.stack.base_url)).send().await.expect("request");
    assert_eq!(missing.status().as_u16(), 404);
    w.shutdown().await;
}
