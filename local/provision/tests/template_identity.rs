//! Identity, checked on template.yaml itself: the user pool the template can
//! create lets no user write the attributes authorisation rests on, and the
//! claims those attributes become reach the API's JWT authorizer and mean what
//! the edge kit's parser reads them as.

use std::collections::HashMap;

use serde_json::{json, Value};
use trialwatch::edge::http::Principal;
use trialwatch::{SiteId, TrialId};
use trialwatch_provision::{template_path, Template};

/// The attributes whose claims decide what a caller may touch.
const AUTHORISATION_ATTRIBUTES: [&str; 4] = ["role", "trial_ids", "site_ids", "patient_id"];

fn template() -> Template {
    Template::load(&template_path()).expect("template.yaml parses")
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect()).unwrap_or_default()
}

#[test]
fn the_pool_is_optional_and_off_when_an_external_issuer_is_used() {
    let t = template();
    let root = t.as_json();
    // GIVEN the CreateUserPool parameter, off by default (an external issuer)
    assert_eq!(root["Parameters"]["CreateUserPool"]["Default"], "false");
    assert_eq!(root["Conditions"]["CreateUserPool"], json!({"Fn::Equals": [{"Ref": "CreateUserPool"}, "true"]}));
    // THEN the pool and its client exist only under it
    for id in ["TrialWatchUserPool", "TrialWatchUserPoolClient"] {
        let r = &root["Resources"][id];
        assert_eq!(r["Condition"], "CreateUserPool", "{id}");
    }
    // AND without it, an issuer and audience must be given
    let rule = &root["Rules"]["ExternalIssuerIsNamed"];
    assert_eq!(rule["RuleCondition"], json!({"Fn::Equals": [{"Ref": "CreateUserPool"}, "false"]}));
    let asserted: Vec<String> = rule["Assertions"].as_array().unwrap().iter().map(|a| a["Assert"].to_string()).collect();
    assert!(asserted.iter().any(|a| a.contains("JwtIssuer")) && asserted.iter().any(|a| a.contains("JwtAudience")));
}

#[test]
fn no_user_can_write_an_authorisation_attribute() {
    let t = template();
    let pool = t.resource("TrialWatchUserPool").expect("TrialWatchUserPool");
    let client = t.resource("TrialWatchUserPoolClient").expect("TrialWatchUserPoolClient");
    // GIVEN the pool's custom attributes
    let schema: Vec<&str> = pool.properties["Schema"].as_array().unwrap().iter().filter_map(|a| a["Name"].as_str()).collect();
    for a in AUTHORISATION_ATTRIBUTES {
        assert!(schema.contains(&a), "the pool defines custom:{a}");
    }
    // THEN the app client lists what it may write (absent, it could write every
    // mutable attribute), and that list holds no custom attribute at all
    let writable = client.properties.get("WriteAttributes").map(strings).expect("WriteAttributes must be listed explicitly");
    for a in &writable {
        assert!(!a.starts_with("custom:") && !a.starts_with("dev:"), "the app client may write {a}");
    }
    for a in AUTHORISATION_ATTRIBUTES {
        assert!(!writable.contains(&format!("custom:{a}")), "custom:{a} is writable");
    }
    // AND users cannot sign themselves up
    assert_eq!(pool.properties["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"], true);
}

#[test]
fn the_authorizer_takes_the_pools_id_tokens_whose_claims_the_parser_reads() {
    let t = template();
    let api = t.resource("HttpApi").expect("HttpApi");
    let jwt = &api.properties["Auth"]["Authorizers"]["TrialWatchJwt"]["JwtConfiguration"];
    // GIVEN the pool: the issuer is the pool's, the audience its app client id,
    // which is the `aud` of the client's ID tokens (access tokens carry none of
    // the custom attributes, so they are no usable identity)
    let issuer = jwt["issuer"]["Fn::If"].as_array().expect("issuer chooses by CreateUserPool");
    assert_eq!(issuer[0], "CreateUserPool");
    assert!(issuer[1]["Fn::Sub"].as_str().unwrap().ends_with("amazonaws.com/${TrialWatchUserPool}"), "{}", issuer[1]);
    assert_eq!(issuer[2], json!({"Ref": "JwtIssuer"}));
    let audience = &jwt["audience"][0]["Fn::If"];
    assert_eq!(audience, &json!(["CreateUserPool", {"Ref": "TrialWatchUserPoolClient"}, {"Ref": "JwtAudience"}]));
    // AND the client may read every authorisation attribute, so Cognito puts it in the ID token
    let client = t.resource("TrialWatchUserPoolClient").unwrap();
    let readable = strings(&client.properties["ReadAttributes"]);
    for a in AUTHORISATION_ATTRIBUTES {
        assert!(readable.contains(&format!("custom:{a}")), "custom:{a} is not readable, so not in the ID token");
    }
    // WHEN an ID token carries them under the names Cognito gives them
    let claims: HashMap<String, String> = [
        ("sub", "5b0c7f3e-2d4a-4c1b-9e8f-0a1b2c3d4e5f"),
        ("custom:role", "site_staff"),
        ("custom:trial_ids", "trial-a,trial-b"),
        ("custom:site_ids", "trial-a/leeds,trial-b/york"),
        ("token_use", "id"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    // THEN the edge kit's parser reads them as that identity
    let p = Principal::from_claims(&claims).unwrap();
    let (a, b) = (TrialId::parse("trial-a").unwrap(), TrialId::parse("trial-b").unwrap());
    assert_eq!(p.role(), "site_staff");
    assert!(p.has_site(&a, &SiteId::parse("leeds").unwrap()) && p.has_site(&b, &SiteId::parse("york").unwrap()));
    assert!(!p.has_site(&a, &SiteId::parse("york").unwrap()));
}
