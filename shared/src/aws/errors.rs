//! The one mapping from AWS SDK errors to the ports' errors. Only error codes
//! and operation names reach the result: never a message, which for some
//! services echoes request values.

use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};

use crate::ports::{NotifyError, StorageError};

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
    "Throttled",
    "ThrottledException",
    "KMSThrottling",
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
pub(crate) fn from_sdk<E>(operation: &'static str, err: &SdkError<E>) -> StorageError
where
    E: ProvideErrorMetadata,
{
    match err {
        SdkError::TimeoutError(_) => StorageError::Unavailable(format!("{operation}: timeout")),
        SdkError::DispatchFailure(_) => StorageError::Unavailable(format!("{operation}: dispatch-failure")),
        SdkError::ResponseError(_) => StorageError::Unavailable(format!("{operation}: response-error")),
        SdkError::ConstructionFailure(_) => StorageError::Corrupt(format!("{operation}: construction-failure")),
        SdkError::ServiceError(service) => {
            let code = err.code().unwrap_or("unknown");
            let status = service.raw().status().as_u16();
            let code = sanitize(code);
            if is_retryable_code(&code) || status >= 500 || status == 429 {
                StorageError::Unavailable(format!("{operation}: {code}"))
            } else {
                StorageError::Corrupt(format!("{operation}: {code} (http {status})"))
            }
        }
        _ => StorageError::Corrupt(format!("{operation}: unknown-sdk-error")),
    }
}

/// SNS codes that no retry can fix. Retrying them only repeats the same
/// answer up to maxReceiveCount and then parks the alert in the DLQ, so they
/// are permanent: the dispatcher records the channel as failed at once.
/// The topic does not exist (deleted, or a wrong ARN in the trial).
const SNS_TOPIC_NOT_FOUND: &[&str] = &["NotFound", "NotFoundException"];
/// The caller may not publish to the topic, or use its KMS key.
const SNS_FORBIDDEN: &[&str] =
    &["AuthorizationError", "AuthorizationErrorException", "KMSAccessDenied", "InvalidSecurity", "KMSOptInRequired"];
/// The request or the topic's setup is wrong (bad parameter, disabled or
/// missing key, disabled endpoint).
const SNS_REFUSED: &[&str] = &[
    "InvalidParameter",
    "InvalidParameterValue",
    "InvalidParameterException",
    "ValidationError",
    "KMSDisabled",
    "KMSNotFound",
    "KMSInvalidState",
    "EndpointDisabled",
    "PlatformApplicationDisabled",
];

/// Maps an SNS SDK error. Permanent answers get their own variants
/// (`TopicNotFound`, `Forbidden`, `Refused`), which the dispatcher settles at
/// once; everything else (throttling, 5xx, timeouts, network) goes through
/// [`from_sdk`] and stays retryable.
pub(crate) fn from_sns<E>(operation: &'static str, err: &SdkError<E>) -> NotifyError
where
    E: ProvideErrorMetadata,
{
    let SdkError::ServiceError(_) = err else { return from_sdk(operation, err).into() };
    let code = sanitize(err.code().unwrap_or("unknown"));
    if SNS_TOPIC_NOT_FOUND.contains(&code.as_str()) {
        NotifyError::TopicNotFound
    } else if SNS_FORBIDDEN.contains(&code.as_str()) {
        NotifyError::Forbidden
    } else if SNS_REFUSED.contains(&code.as_str()) {
        NotifyError::Refused(format!("{operation}: {code}"))
    } else {
        from_sdk(operation, err).into()
    }
}

/// Codes are short identifiers; anything else (a proxy's HTML page, say) is cut.
fn sanitize(code: &str) -> String {
    code.chars().take(80).filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':')).collect()
}

/// A domain payload could not be turned into an item, or an item read back
/// does not fit the domain type: a bug or a corrupted record, never input.
pub(crate) fn codec(operation: &'static str, what: &'static str) -> impl FnOnce(serde_dynamo::Error) -> StorageError {
    move |_| StorageError::Corrupt(format!("{operation}: {what} does not fit its stored form"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::config::http::HttpResponse;
    use aws_sdk_dynamodb::error::ErrorMetadata;
    use aws_sdk_dynamodb::operation::put_item::PutItemError;
    use aws_sdk_sns::operation::publish::PublishError;
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
        assert!(matches!(e, StorageError::Corrupt(_)), "{e:?}");
    }

    fn sns_error(code: &str, status: u16) -> SdkError<PublishError> {
        let meta = ErrorMetadata::builder().code(code).message("topic arn:aws:sns:x is secret").build();
        let raw = HttpResponse::new(status.try_into().unwrap(), SdkBody::empty());
        SdkError::service_error(PublishError::generic(meta), raw)
    }

    #[test]
    fn sns_answers_no_retry_can_fix_are_permanent_and_a_missing_topic_says_so() {
        // GIVEN SNS says the topic does not exist
        let e = from_sns("sns.Publish", &sns_error("NotFound", 404));
        // THEN it is a not-found, which the dispatcher settles at once
        assert!(matches!(e, NotifyError::TopicNotFound), "{e:?}");
        assert!(e.is_permanent());
        // AND a bad parameter or a forbidden topic are permanent too, without the message
        let e = from_sns("sns.Publish", &sns_error("InvalidParameter", 400));
        assert!(matches!(&e, NotifyError::Refused(d) if d == "sns.Publish: InvalidParameter"), "{e:?}");
        assert!(matches!(from_sns("sns.Publish", &sns_error("AuthorizationError", 403)), NotifyError::Forbidden));
        assert!(matches!(from_sns("sns.Publish", &sns_error("KMSDisabled", 400)), NotifyError::Refused(_)));
    }

    #[test]
    fn sns_throttling_server_errors_and_timeouts_stay_retryable() {
        for (code, status) in [("Throttled", 429), ("Throttled", 400), ("KMSThrottling", 400), ("InternalError", 500), ("Whatever", 503)] {
            let e = from_sns("sns.Publish", &sns_error(code, status));
            assert!(matches!(&e, NotifyError::Storage(s) if s.is_retryable()), "{code} {status} -> {e:?}");
        }
        let timeout: SdkError<PublishError> = SdkError::timeout_error("slow");
        assert!(matches!(from_sns("sns.Publish", &timeout), NotifyError::Storage(s) if s.is_retryable()));
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
