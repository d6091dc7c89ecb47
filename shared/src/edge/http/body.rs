//! Request bodies: size limit, media type, and JSON decoding whose errors name
//! the field (422) or say the JSON is malformed (400).

use lambda_http::Request;
use serde::de::DeserializeOwned;

use super::problem::HttpError;
use crate::validation::FieldError;
use crate::Error;

/// The two JSON dialects the API speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaType {
    Json,
    FhirJson,
}

/// The body's bytes after the size check; each route sets its own `limit`.
pub fn bytes(req: &Request, limit: usize) -> Result<&[u8], HttpError> {
    let b: &[u8] = req.body().as_ref();
    if b.len() > limit {
        return Err(HttpError::PayloadTooLarge { limit });
    }
    Ok(b)
}

/// The declared media type, which is required. Parameters such as `charset`
/// are ignored, as JSON is UTF-8; the type itself must match exactly
/// (`application/jsonx` is not JSON).
pub fn media_type(req: &Request) -> Result<MediaType, HttpError> {
    let raw = req.headers().get(lambda_http::http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let essence = raw.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    match essence.as_str() {
        "application/json" => Ok(MediaType::Json),
        "application/fhir+json" => Ok(MediaType::FhirJson),
        _ => Err(HttpError::UnsupportedMediaType("Content-Type must be application/json or application/fhir+json".into())),
    }
}

/// A native-JSON body: `application/json` only, at most `limit` bytes.
pub fn json<T: DeserializeOwned>(req: &Request, limit: usize) -> Result<T, HttpError> {
    let b = bytes(req, limit)?;
    match media_type(req)? {
        MediaType::Json => decode(b),
        MediaType::FhirJson => Err(HttpError::UnsupportedMediaType("this route takes application/json".into())),
    }
}

/// Decodes JSON into `T`. Syntax errors are 400; a well-formed document of
/// the wrong shape is 422 naming the field path (`answers[2].linkId`).
///
/// Valid bodies, nearly all of them, take serde_json's direct path; only a
/// failure is decoded again with path tracking, which costs nearly twice the
/// plain decode of a 20-item submission (65k vs 36k instructions, callgrind).
pub fn decode<T: DeserializeOwned>(b: &[u8]) -> Result<T, HttpError> {
    // Every valid JSON body is UTF-8: checked once for the whole body, serde_json reads it as
    // text and does not check each string again (40 strings of a 20-item submission, 5.7k
    // instructions, issue 16). Any other body takes the byte path, and its error, as before.
    let parsed = match std::str::from_utf8(b) {
        Ok(text) => serde_json::from_str(text),
        Err(_) => serde_json::from_slice(b),
    };
    match parsed {
        // Every body of this API is an object; serde would also read a struct
        // from an array, field by field (see `crate::json_object`).
        Ok(value) if is_an_object(b) => Ok(value),
        Ok(_) => Err(Error::Validation(vec![FieldError::new("body", "must be a JSON object")]).into()),
        Err(_) => Err(decode_with_path::<T>(b)),
    }
}

fn is_an_object(b: &[u8]) -> bool {
    b.iter().find(|c| !c.is_ascii_whitespace()) == Some(&b'{')
}

fn decode_with_path<T: DeserializeOwned>(b: &[u8]) -> HttpError {
    let mut de = serde_json::Deserializer::from_slice(b);
    match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Err(e) => classify(e.path().to_string(), e.into_inner()),
        Ok(_) => match de.end() {
            Err(e) => classify(String::new(), e),
            // serde_json refused what the tracking decoder took; report it unplaced.
            Ok(()) => HttpError::MalformedJson("the body is not valid JSON for this route".into()),
        },
    }
}

/// Decodes an already-parsed JSON value into `T`, naming the field at fault.
pub fn decode_value<T: DeserializeOwned>(v: serde_json::Value) -> Result<T, HttpError> {
    serde_path_to_error::deserialize(v).map_err(|e| classify(e.path().to_string(), e.into_inner()))
}

fn classify(path: String, e: serde_json::Error) -> HttpError {
    use serde_json::error::Category;
    let message = without_position(&e.to_string());
    match e.classify() {
        Category::Data => {
            let path = if path == "." { String::new() } else { path };
            // serde reports "unknown field `x`, expected ..." and "missing field
            // `x`" at the enclosing object; name the field itself.
            let named = |prefix: &str| message.strip_prefix(prefix).and_then(|r| r.split('`').next()).map(str::to_owned);
            let (field, message) = match (named("unknown field `"), named("missing field `")) {
                (Some(name), _) if path.is_empty() || !path.ends_with(&name) => (join(&path, &name), "unknown field".to_owned()),
                (Some(_), _) => (path, "unknown field".to_owned()),
                (None, Some(name)) => (join(&path, &name), "is required".to_owned()),
                (None, None) if path.is_empty() => ("body".to_owned(), message),
                (None, None) => (path, message),
            };
            Error::Validation(vec![FieldError::new(field, message)]).into()
        }
        Category::Syntax | Category::Eof | Category::Io => HttpError::MalformedJson(message),
    }
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_owned()
    } else {
        format!("{path}.{name}")
    }
}

/// serde_json appends " at line L column C"; the position is noise to clients.
fn without_position(s: &str) -> String {
    match s.rfind(" at line ") {
        Some(i) => s[..i].to_owned(),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::submission::SubmissionRequest;

    fn fields(e: HttpError) -> Vec<(String, String)> {
        match e {
            HttpError::Refused(Error::Validation(errs)) => errs.into_iter().map(|e| (e.field, e.message)).collect(),
            other => panic!("expected 422, got {other:?}"),
        }
    }
    fn names(e: HttpError) -> Vec<String> {
        fields(e).into_iter().map(|(f, _)| f).collect()
    }

    fn request(content_type: Option<&str>, body: &str) -> Request {
        let mut b = lambda_http::http::Request::builder().method("POST").uri("/x");
        if let Some(ct) = content_type {
            b = b.header("content-type", ct);
        }
        b.body(lambda_http::Body::from(body)).unwrap()
    }

    #[test]
    fn an_unknown_field_is_422_naming_it() {
        let e = decode::<SubmissionRequest>(br#"{"submissionId":"x","bogus":1}"#).unwrap_err();
        assert_eq!(names(e), ["bogus"]);
        let e = decode::<SubmissionRequest>(
            br#"{"submissionId":"x","questionnaireId":"q","questionnaireVersion":"1","completedAt":"t","answers":[{"linkId":"a","value":1,"extra":2}]}"#,
        )
        .unwrap_err();
        assert_eq!(names(e), ["answers[0].extra"]);
    }

    #[test]
    fn a_wrong_type_is_422_naming_the_path() {
        let e = decode::<SubmissionRequest>(br#"{"submissionId":"x","questionnaireId":"q","questionnaireVersion":"1","completedAt":"t","answers":[{"linkId":5,"value":1}]}"#)
            .unwrap_err();
        assert_eq!(names(e), ["answers[0].linkId"]);
    }

    #[test]
    fn a_missing_field_is_422_naming_it_not_the_body() {
        // epro-api named "body" here; report-generator named the field
        let e = decode::<SubmissionRequest>(br#"{"questionnaireId":"q"}"#).unwrap_err();
        assert_eq!(fields(e), [("submissionId".to_owned(), "is required".to_owned())]);
        let e = decode::<SubmissionRequest>(
            br#"{"submissionId":"x","questionnaireId":"q","questionnaireVersion":"1","completedAt":"t","answers":[{"value":1}]}"#,
        )
        .unwrap_err();
        assert_eq!(names(e), ["answers[0].linkId"]);
    }

    #[test]
    fn a_body_that_is_not_an_object_is_422_even_where_serde_would_read_it() {
        // GIVEN a submission in serde's positional (array) form, and other non-objects
        let positional = br#"["0f8fad5b-d9cb-469f-a165-70867728950e","kccq","1","2026-11-26T19:00:00Z",[]]"#;
        for b in [&positional[..], b"[]", b"1", b"\"x\"", b"null"] {
            // WHEN decoded as a body THEN it is refused, naming the body
            let e = decode::<serde_json::Value>(b).unwrap_err();
            assert_eq!(fields(e), [("body".to_owned(), "must be a JSON object".to_owned())], "{b:?}");
        }
        assert_eq!(names(decode::<SubmissionRequest>(positional).unwrap_err()), ["body"]);
        // AND a nested array in place of an object is refused at its path (found by schemathesis:
        // `"alerting": [null, null]` was stored as the default alerting)
        let e =
            decode::<crate::trial::TrialDefinition>(br#"{"name":"t","sites":[{"id":"s","name":"S"}],"alerting":[null,null]}"#).unwrap_err();
        assert_eq!(names(e), ["alerting"]);
        let e = decode::<crate::trial::TrialDefinition>(br#"{"name":"t","sites":[["s","S"]]}"#).unwrap_err();
        assert_eq!(names(e), ["sites[0]"]);
        let e = decode::<SubmissionRequest>(
            br#"{"submissionId":"x","questionnaireId":"q","questionnaireVersion":"1","completedAt":"t","answers":[["a",1]]}"#,
        )
        .unwrap_err();
        assert_eq!(names(e), ["answers[0]"]);
    }

    #[test]
    fn a_body_that_is_not_utf8_is_400_naming_the_bad_code_point_and_text_decodes_as_bytes_did() {
        // GIVEN a submission whose id holds a byte that is not UTF-8
        let bad = b"{\"submissionId\":\"\xff\",\"questionnaireId\":\"q\"}";
        // WHEN decoded THEN it is malformed JSON, with serde_json's message for the bytes
        match decode::<SubmissionRequest>(bad) {
            Err(HttpError::MalformedJson(m)) => assert_eq!(m, "invalid unicode code point"),
            other => panic!("expected 400, got {other:?}"),
        }
        // AND a valid body, escapes and non-ASCII text included, decodes as the byte reader decodes it
        let good = r#"{"submissionId":"0f8fad5b-d9cb-469f-a165-70867728950e","questionnaireId":"k\u00e9","questionnaireVersion":"1","completedAt":"t","answers":[{"linkId":"a\"b","value":"Zoë 痛み \ud83d\ude00"}]}"#;
        let via_bytes: SubmissionRequest = serde_json::from_slice(good.as_bytes()).unwrap();
        assert_eq!(decode::<SubmissionRequest>(good.as_bytes()).unwrap(), via_bytes);
        assert_eq!(via_bytes.answers[0].value, "Zoë 痛み 😀");
    }

    #[test]
    fn malformed_or_trailing_json_is_400() {
        for b in [&b"{"[..], b"", b"{} {}", b"nul"] {
            assert!(matches!(decode::<serde_json::Value>(b), Err(HttpError::MalformedJson(_))), "{b:?}");
        }
    }

    #[test]
    fn the_media_type_is_required_and_matched_exactly_with_parameters_ignored() {
        // report-generator accepted a missing Content-Type and any type starting
        // with "application/json"
        for ct in [None, Some("application/jsonx"), Some("application/json-seq"), Some("text/plain")] {
            let r = json::<serde_json::Value>(&request(ct, "{}"), 64);
            assert!(matches!(r, Err(HttpError::UnsupportedMediaType(_))), "{ct:?}: {r:?}");
        }
        for ct in ["application/json", "Application/JSON; charset=utf-8"] {
            assert!(json::<serde_json::Value>(&request(Some(ct), "{}"), 64).is_ok(), "{ct}");
        }
        assert_eq!(media_type(&request(Some("application/fhir+json"), "{}")).unwrap(), MediaType::FhirJson);
        assert!(matches!(
            json::<serde_json::Value>(&request(Some("application/fhir+json"), "{}"), 64),
            Err(HttpError::UnsupportedMediaType(_))
        ));
    }

    #[test]
    fn a_body_over_the_routes_limit_is_413_naming_the_limit() {
        let r = json::<serde_json::Value>(&request(Some("application/json"), &format!("\"{}\"", "x".repeat(64))), 64);
        assert!(matches!(r, Err(HttpError::PayloadTooLarge { limit: 64 })), "{r:?}");
    }
}
