//! Routing, identity and body-level outcomes that hold for every route.

use serde_json::json;

use super::*;

#[tokio::test]
async fn health_needs_no_token_and_reports_the_version() {
    let w = world();
    let r = w.call("GET", "/health", None, None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, json!({"status": "ok", "version": env!("CARGO_PKG_VERSION")}));
}

#[tokio::test]
async fn the_health_sample_event_is_served() {
    let w = world();
    let lambda: lambda_http::request::LambdaRequest = serde_json::from_str(include_str!("../../../../events/epro-health.json")).unwrap();
    assert_eq!(w.send(lambda_http::Request::from(lambda)).await.status, 200);
}

#[tokio::test]
async fn an_unknown_path_is_404_and_a_wrong_method_is_405() {
    let w = world();
    assert_eq!(w.call("GET", "/v2/nothing", Some(admin()), None).await.status, 404);
    assert_eq!(w.call("GET", "/v1/trials/tw-demo/reports", Some(admin()), None).await.status, 404);
    assert_eq!(w.call("DELETE", "/v1/trials/tw-demo", Some(admin()), None).await.status, 405);
    assert_eq!(w.call("GET", "/v1/trials/tw-demo/patients/P0001/vitals", Some(admin()), None).await.status, 405);
}

#[tokio::test]
async fn a_missing_or_unusable_identity_is_401() {
    let w = world();
    for claims in [None, Some(json!({})), Some(json!({"role": "root"})), Some(json!({"role": "patient"}))] {
        let r = w.call("GET", "/v1/trials/tw-demo/patients/P0001", claims.clone(), None).await;
        assert_eq!(r.status, 401, "{claims:?}");
        assert!(r.body["type"].as_str().unwrap().ends_with("/unauthorized"));
    }
}

#[tokio::test]
async fn a_bad_path_parameter_is_400_naming_it() {
    let w = world();
    let r = w.call("GET", "/v1/trials/tw%23demo/patients/P0001", Some(admin()), None).await;
    assert_eq!(r.status, 400);
    assert!(r.body["detail"].as_str().unwrap().contains("trialId"), "{}", r.text);
    let r = w.call("GET", "/v1/trials/tw-demo/patients/.hidden", Some(admin()), None).await;
    assert_eq!(r.status, 400);
    assert!(r.body["detail"].as_str().unwrap().contains("patientId"));
    let r = w.call("POST", "/v1/trials/tw-demo/alerts/a%20b/ack", Some(admin()), None).await;
    assert_eq!(r.status, 400);
    assert!(r.body["detail"].as_str().unwrap().contains("alertId"));
}

#[tokio::test]
async fn a_body_over_256_kib_is_413() {
    let w = world();
    let mut big = submission(&new_id(), 1);
    big["answers"][4]["value"] = json!("x".repeat(300 * 1024));
    let r = w.call("POST", SUBS, Some(patient("P0001")), Some(big)).await;
    assert_eq!(r.status, 413);
}

#[tokio::test]
async fn a_wrong_or_missing_content_type_is_415() {
    let w = world();
    let body = serde_json::to_vec(&submission(&new_id(), 1)).unwrap();
    for ct in ["text/plain", "application/xml", ""] {
        let r = w.send(request("POST", SUBS, Some(patient("P0001")), Some((ct, body.clone())))).await;
        assert_eq!(r.status, 415, "{ct:?}");
    }
    let r = w.send(request("POST", SUBS, Some(patient("P0001")), Some(("application/json; charset=utf-8", body)))).await;
    assert_eq!(r.status, 201, "charset parameters are fine: {}", r.text);
}

#[tokio::test]
async fn malformed_json_is_400_and_unknown_fields_are_422() {
    let w = world();
    let r = w.send(request("POST", SUBS, Some(patient("P0001")), Some(("application/json", b"{\"submissionId\":".to_vec())))).await;
    assert_eq!(r.status, 400);
    let mut body = submission(&new_id(), 1);
    body["patientName"] = json!("Jane Doe");
    let r = w.call("POST", SUBS, Some(patient("P0001")), Some(body)).await;
    assert_eq!(r.status, 422);
    assert_eq!(r.body["errors"][0]["field"], "patientName");
}

#[tokio::test]
async fn a_throttled_store_is_503_with_retry_after() {
    let w = world();
    w.store.fail_next("get_enrolment", 1);
    let r = w.call("GET", "/v1/trials/tw-demo/patients/P0001", Some(admin()), None).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.headers.get("retry-after").unwrap(), "1");
}

#[tokio::test]
async fn a_named_stage_prefix_is_not_part_of_the_route() {
    let w = world();
    // GIVEN events from a named stage, with and without the stage in rawPath
    for raw_path in ["/health", "/prod/health"] {
        let mut event: serde_json::Value = serde_json::from_str(include_str!("../../../../events/epro-health.json")).unwrap();
        event["requestContext"]["stage"] = json!("prod");
        event["rawPath"] = json!(raw_path);
        let lambda: lambda_http::request::LambdaRequest = serde_json::from_value(event).unwrap();
        // THEN the route is found either way
        assert_eq!(w.send(lambda_http::Request::from(lambda)).await.status, 200, "{raw_path}");
    }
}

#[tokio::test]
async fn a_wrong_method_is_405_naming_the_methods_the_path_takes() {
    // GIVEN a request no route key takes, delivered unrouted ($default)
    let w = world();
    // WHEN its path is a route's with another method
    let r = w.call("DELETE", "/v1/trials/tw-demo", Some(admin()), None).await;
    // THEN 405 with Allow (RFC 9110), which it lacked before
    assert_eq!(r.status, 405);
    assert_eq!(r.headers.get("allow").unwrap(), "GET, PUT");
    let r = w.call("GET", "/v1/trials/tw-demo/alerts/al-1/ack", Some(admin()), None).await;
    assert_eq!(r.headers.get("allow").unwrap(), "POST");
}

#[tokio::test]
async fn a_percent_encoded_id_is_decoded_once_as_api_gateway_does() {
    // GIVEN `tw-demo` with its hyphen percent-encoded (the path used to be
    // parsed raw, so this was 400)
    let w = world();
    let r = w.call("GET", "/v1/trials/tw%2Ddemo/patients/P0001", Some(admin()), None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["patientId"], "P0001");
}

#[tokio::test]
async fn ids_are_read_from_the_path_parameters_not_the_raw_path() {
    // GIVEN the sample event for P0001, whose path parameters name P0002
    let w = world();
    let mut event: serde_json::Value = serde_json::from_str(include_str!("../../../../events/epro-get-patient.json")).unwrap();
    event["requestContext"]["authorizer"]["jwt"]["claims"] = admin();
    event["pathParameters"]["patientId"] = json!("P0002");
    let lambda: lambda_http::request::LambdaRequest = serde_json::from_value(event).unwrap();
    // THEN P0002 is served
    let r = w.send(lambda_http::Request::from(lambda)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["patientId"], "P0002");
}

#[tokio::test]
async fn a_route_key_of_another_function_is_404() {
    // GIVEN report-generator's route key delivered to this function
    let w = world();
    let mut event: serde_json::Value = serde_json::from_str(include_str!("../../../../events/epro-health.json")).unwrap();
    event["routeKey"] = json!("POST /v1/trials/{trialId}/reports");
    event["requestContext"]["routeKey"] = event["routeKey"].clone();
    let lambda: lambda_http::request::LambdaRequest = serde_json::from_value(event).unwrap();
    let r = w.send(lambda_http::Request::from(lambda)).await;
    assert_eq!(r.status, 404);
    assert!(r.body["type"].as_str().unwrap().ends_with("/not-found"));
}
