//! The one mapping from AWS SDK errors to the domain error. Only error codes
//! and operation names reach the result: never a message, which for some
//! services echoes request values.

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};

use crate::error::Error;

/// Service error codes that mean "try the same request again later".
const RETRYABLE_CODES: &[&str] = &[
    // DynamoDB
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "TransactionConflictException",
    "TransactionInProgressException",
    "InternalServerError",
    "ServiceUnavailable",
    "LimitExceededException",
    // SQS / SNS / KMS behind them
    "RequestThrottled",
    "AWS.SimpleQueueService.RequestThrottled",
    "Throttling",
    "ThrottledException",
    "KMSThrottlingException",
    "KMS.ThrottlingException",
    "InternalError",
    "InternalFailure",
    "ServiceUnavailableException",
    // S3
    "SlowDown",
    "RequestTimeout",
    // DynamoDB transaction cancellation reason codes
    "TransactionConflict",
    "ThrottlingError",
    "ProvisionedThroughputExceeded",
];

/// Whether a service error code (or a transaction cancellation reason code)
/// is transient.
pub(crate) fn is_retryable_code(code: &str) -> bool {
    RETRYABLE_CODES.contains(&code)
}

/// Maps any SDK error: throttling, conflicts, 5xx, timeouts and network
/// failures are `Unavailable` (the caller answers 503 / lets SQS redeliver);
/// everything else is `Internal`. `operation` names the call, e.g.
/// `dynamodb.TransactWriteItems`.
pub(crate) fn from_sdk<E>(operation: &'static str, err: &SdkError<E>) -> Error
where
    E: ProvideErrorMetadata,
{
    match err {
        SdkError::TimeoutError(_) => Error::Unavailable(format!("{operation}: timeout")),
        SdkError::DispatchFailure(_) => Error::Unavailable(format!("{operation}: dispatch-failure")),
        SdkError::ResponseError(_) => Error::Unavailable(format!("{operation}: response-error")),
        SdkError::ConstructionFailure(_) => Error::Internal(format!("{operation}: construction-failure")),
        SdkError::ServiceError(service) => {
            let code = err.code().unwrap_or("unknown");
            let status = service.raw().status().as_u16();
            let code = sanitize(code);
            if is_retryable_code(&code) || status >= 500 || status == 429 {
                Error::Unavailable(format!("{operation}: {code}"))
            } else {
                Error::Internal(format!("{operation}: {code} (http {status})"))
            }
        }
        _ => Error::Internal(format!("{operation}: unknown-sdk-error")),
    }
}

/// Codes are short identifiers; anything else (a proxy's HTML page, say) is cut.
fn sanitize(code: &str) -> String {
    code.chars().take(80).filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':')).collect()
}

/// A domain payload could not be turned into an item, or an item read back
/// does not fit the domain type: a bug or a corrupted record, never input.
pub(crate) fn codec(operation: &'static str, what: &'static str) -> impl FnOnce(serde_dynamo::Error) -> Error {
    move |_| Error::Internal(format!("{operation}: {what} does not fit its stored form"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::config::http::HttpResponse;
    use aws_sdk_dynamodb::error::ErrorMetadata;
    use aws_sdk_dynamodb::operation::put_item::PutItemError;
    use aws_smithy_types::body::SdkBody;

    fn service_error(code: &str, status: u16) -> SdkError<PutItemError> {
        let meta = ErrorMetadata::builder().code(code).message("value 42 is secret").build();
        let raw = HttpResponse::new(status.try_into().unwrap(), SdkBody::empty());
        SdkError::service_error(PutItemError::generic(meta), raw)
    }

    #[test]
    fn throttling_and_transaction_conflicts_are_retryable() {
        // GIVEN the codes AWS uses for "slow down" and "someone else was first"
        for code in
            ["ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded", "TransactionConflictException"]
        {
            // WHEN mapped
            let e = from_sdk("dynamodb.PutItem", &service_error(code, 400));
            // THEN the request is worth retrying
            assert!(e.is_retryable(), "{code} -> {e:?}");
        }
    }

    #[test]
    fn server_errors_are_retryable_and_client_errors_are_internal() {
        assert!(from_sdk("dynamodb.PutItem", &service_error("Whatever", 503)).is_retryable());
        let e = from_sdk("dynamodb.PutItem", &service_error("ValidationException", 400));
        assert!(matches!(e, Error::Internal(_)), "{e:?}");
    }

    #[test]
    fn error_messages_never_reach_the_domain_error() {
        // GIVEN a service message that echoes a request value
        let e = from_sdk("dynamodb.PutItem", &service_error("ValidationException", 400));
        // THEN only the operation and code are kept
        assert!(!e.to_string().contains("42"), "{e}");
        assert!(e.to_string().contains("ValidationException"));
    }
}
