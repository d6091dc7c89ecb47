//! The HTTP edge (API Gateway HTTP API, payload format 2.0), shared by every
//! HTTP function and by the local runner's gateway:
//! - [`claims`]: the verified caller ([`Principal`]), read by one parser;
//! - [`body`]: size limit, media type and JSON decoding that names the field;
//! - [`problem`]: the edge's error ([`HttpError`]) and its problem+json;
//! - [`respond`]: JSON responses and the one problem+json response;
//! - [`route`]: the template's route keys, matched once (by API Gateway, or
//!   by the local gateway with [`Routes::find`]), and dispatched on by the
//!   functions through [`Routes::resolve`] and [`path_param`].

pub mod body;
pub mod claims;
pub mod problem;
pub mod respond;
pub mod route;

pub use claims::Principal;
pub use problem::{HttpError, Problem, PROBLEM_BASE, PROBLEM_CONTENT_TYPE, RETRY_AFTER_SECONDS};
pub use respond::api_gateway_v2_response;
pub use respond::{json, problem, HttpResponse};
pub use route::{path_param, percent_decode, RouteKey, RouteMatch, RouteMiss, Routes};

use serde_json::Value;

/// Whether a raw Lambda event came from the HTTP API (payload format 2.0
/// carries `requestContext.http`), for a function that also serves another trigger.
pub fn is_http_event(event: &Value) -> bool {
    event.pointer("/requestContext/http").is_some()
}

/// The request a `lambda_http` handler receives for this event, through the
/// same deserializer the Lambda runtime uses.
pub fn request_from_event(event: Value) -> Result<lambda_http::Request, serde_json::Error> {
    let lr: lambda_http::request::LambdaRequest = serde_json::from_value(event)?;
    Ok(lambda_http::Request::from(lr))
}

/// The request's correlation id ([`crate::correlation`]): a valid
/// `X-Correlation-Id` header, else API Gateway's request id. An invalid
/// header is ignored, never refused.
pub fn correlation_id(req: &lambda_http::Request) -> crate::correlation::CorrelationId {
    use lambda_http::request::RequestContext;
    use lambda_http::RequestExt;
    let header = req.headers().get(crate::correlation::HTTP_HEADER).and_then(|v| v.to_str().ok());
    let request_id = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.request_id.as_deref(),
        _ => None,
    };
    crate::correlation::CorrelationId::for_request(header, request_id)
}

/// The response with the request's correlation id echoed in `X-Correlation-Id`.
pub fn with_correlation_id(r: HttpResponse, id: &crate::correlation::CorrelationId) -> HttpResponse {
    respond::with_header(r, lambda_http::http::header::HeaderName::from_static(crate::correlation::HTTP_HEADER), id.as_str())
}
