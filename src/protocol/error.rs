//! Errors as the AWS JSON 1.1 protocol carries them, and the one place where an error becomes an HTTP response.
//!
//! Two tiers, as in smithy-rs: the exceptions the CodePipeline model declares (all HTTP 400), and protocol or
//! emulator errors (unknown operation, bad JSON, oversized body, ...). Every response body is
//! `{"__type": "<Code>", "message": "..."}` with the code repeated in `x-amzn-ErrorType`, which is where the
//! newer SDKs look first.

use std::fmt;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Content type of every AWS JSON 1.1 response.
pub const AMZ_JSON: &str = "application/x-amz-json-1.1";

macro_rules! error_codes {
    ($( $(#[$doc:meta])* $name:ident = $status:literal ),+ $(,)?) => {
        /// Every error code the emulator can answer with.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $( $(#[$doc])* $name, )+
        }

        impl ErrorCode {
            /// All codes, for tests that check the list against the model.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$name),+];

            /// The code as it appears in `__type`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( ErrorCode::$name => stringify!($name), )+
                }
            }

            /// The HTTP status AWS uses for the code.
            pub fn status(self) -> StatusCode {
                match self {
                    $( ErrorCode::$name => match StatusCode::from_u16($status) {
                        Ok(status) => status,
                        Err(_) => StatusCode::BAD_REQUEST,
                    }, )+
                }
            }
        }
    };
}

error_codes! {
    // Exceptions declared by the CodePipeline model. None carries an httpStatusCode trait, so all are 400.
    ActionExecutionNotFoundException = 400,
    ActionNotFoundException = 400,
    ActionTypeAlreadyExistsException = 400,
    ActionTypeNotFoundException = 400,
    ApprovalAlreadyCompletedException = 400,
    ConcurrentModificationException = 400,
    ConcurrentPipelineExecutionsLimitExceededException = 400,
    ConditionNotOverridableException = 400,
    ConflictException = 400,
    DuplicatedStopRequestException = 400,
    InvalidActionDeclarationException = 400,
    InvalidApprovalTokenException = 400,
    InvalidArnException = 400,
    InvalidBlockerDeclarationException = 400,
    InvalidClientTokenException = 400,
    InvalidJobException = 400,
    InvalidJobStateException = 400,
    InvalidNextTokenException = 400,
    InvalidNonceException = 400,
    InvalidStageDeclarationException = 400,
    InvalidStructureException = 400,
    InvalidTagsException = 400,
    InvalidWebhookAuthenticationParametersException = 400,
    InvalidWebhookFilterPatternException = 400,
    JobNotFoundException = 400,
    LimitExceededException = 400,
    NotLatestPipelineExecutionException = 400,
    OutputVariablesSizeExceededException = 400,
    PipelineExecutionNotFoundException = 400,
    PipelineExecutionNotStoppableException = 400,
    PipelineExecutionOutdatedException = 400,
    PipelineNameInUseException = 400,
    PipelineNotFoundException = 400,
    PipelineVersionNotFoundException = 400,
    RequestFailedException = 400,
    ResourceNotFoundException = 400,
    StageNotFoundException = 400,
    StageNotRetryableException = 400,
    TooManyTagsException = 400,
    UnableToRollbackStageException = 400,
    ValidationException = 400,
    WebhookNotFoundException = 400,

    // Protocol errors of AWS JSON 1.1 services.
    /// The `X-Amz-Target` header is missing, has another service's prefix, or names no operation.
    UnknownOperationException = 400,
    /// The body is not JSON, not an object, or a member has the wrong JSON type.
    SerializationException = 400,

    // Signature errors (`--verify-signatures`).
    /// No signature at all.
    MissingAuthenticationTokenException = 400,
    /// A signature missing one of its parts.
    IncompleteSignatureException = 400,
    /// An access key (or session token) that no principal has.
    UnrecognizedClientException = 400,
    /// A signature that does not match, is scoped elsewhere, or is out of its time window.
    InvalidSignatureException = 400,
    /// A verified caller whose policies do not allow the request (`--enforce-iam`).
    AccessDeniedException = 400,

    // Emulator errors, outside the AWS surface.
    /// The request body is larger than the server accepts.
    RequestEntityTooLargeException = 413,
    /// The request body stopped arriving.
    RequestTimeoutException = 408,
    /// A control request from a web page of another origin, or addressed to a host name the server does not answer
    /// to.
    ForbiddenException = 403,
    /// A control request that changes state without a JSON content type.
    UnsupportedMediaTypeException = 415,
    /// A path the emulator does not serve.
    NotFoundException = 404,
    /// A known path called with the wrong HTTP method.
    MethodNotAllowedException = 405,
    /// A bug in the emulator. Never expected; answered instead of dropping the connection.
    InternalFailure = 500,
    /// A change that could not be saved to the data directory (a full or failing disk): nothing of it was made, and
    /// it may be retried.
    ServiceUnavailableException = 503,
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error answer: a code and a human-readable message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
}

impl ApiError {
    /// An error with the given code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError { code, message: message.into() }
    }

    /// A `ValidationException` with the given message.
    pub fn validation(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::ValidationException, message)
    }

    /// A `SerializationException` with the given message.
    pub fn serialization(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::SerializationException, message)
    }

    /// Renders the error body.
    pub fn body(&self) -> String {
        serde_json::json!({ "__type": self.code.as_str(), "message": self.message }).to_string()
    }
}

/// The single place where an error becomes a response. The request id header is added by the server's request
/// layer, for errors and successes alike.
impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.code.status(), self.body()).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(AMZ_JSON));
        headers.insert("x-amzn-errortype", HeaderValue::from_static(self.code.as_str()));
        if self.code == ErrorCode::RequestTimeoutException {
            // The rest of the body may still arrive; the connection cannot be reused.
            headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::model::Model;

    #[test]
    fn every_modeled_exception_has_a_code() {
        let model = Model::load().expect("model loads");
        for name in model.exception_names() {
            let code = ErrorCode::ALL.iter().find(|c| c.as_str() == name);
            let code = code.unwrap_or_else(|| panic!("no ErrorCode for modeled exception {name}"));
            assert_eq!(code.status(), StatusCode::BAD_REQUEST, "{name} is a client error");
        }
    }

    #[test]
    fn body_carries_type_and_message() {
        let error = ApiError::validation("bad \"input\"");
        let body: serde_json::Value = serde_json::from_str(&error.body()).expect("valid JSON");
        assert_eq!(body["__type"], "ValidationException");
        assert_eq!(body["message"], "bad \"input\"");
    }

    #[test]
    fn response_has_status_and_headers() {
        let response = ApiError::new(ErrorCode::PipelineNotFoundException, "none").into_response();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(response.headers()["x-amzn-errortype"], "PipelineNotFoundException");
        assert_eq!(response.headers()[header::CONTENT_TYPE], AMZ_JSON);
    }
}
