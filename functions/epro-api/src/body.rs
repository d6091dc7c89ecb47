//! This API's request bodies: the edge's decoding ([`trialwatch::edge::http::body`])
//! under this API's size limit.

use lambda_http::Request;
use serde::de::DeserializeOwned;
use trialwatch::edge::http::body;
use trialwatch::edge::http::HttpError;

pub use trialwatch::edge::http::body::{decode, decode_value, media_type, MediaType};

/// Largest accepted body. SQS (256 KiB per message) bounds what a submission
/// or vitals batch can become downstream, so larger bodies stop here with 413.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// The body's bytes after the size check.
pub fn bytes(req: &Request) -> Result<&[u8], HttpError> {
    body::bytes(req, MAX_BODY_BYTES)
}

/// A native-JSON body: `application/json` only.
pub fn json<T: DeserializeOwned>(req: &Request) -> Result<T, HttpError> {
    body::json(req, MAX_BODY_BYTES)
}
