//! The AWS JSON 1.1 protocol, independent of what CodePipeline does: routing by `X-Amz-Target`, request bodies,
//! the service model and validation against it, identity, errors, pagination tokens.

pub mod body;
pub mod error;
pub mod identity;
pub mod model;
pub mod pagination;
pub mod router;
pub mod validate;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

pub use self::error::{AMZ_JSON, ApiError, ErrorCode};
pub use self::router::Operation;

/// A successful answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// A JSON document (operations with an output shape, including empty ones, which answer `{}`).
    Json(Vec<u8>),
    /// No body at all: operations the model declares without an output shape, as AWS answers them.
    Empty,
}

impl Reply {
    /// Serializes an output structure.
    pub fn json<T: Serialize>(output: &T) -> Result<Reply, ApiError> {
        serde_json::to_vec(output)
            .map(Reply::Json)
            .map_err(|e| ApiError::new(ErrorCode::InternalFailure, format!("Could not serialize the response: {e}")))
    }

    /// The `{}` answer of operations whose output structure has no members set.
    pub fn empty_object() -> Reply {
        Reply::Json(b"{}".to_vec())
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let mut response = match self {
            Reply::Json(body) => (StatusCode::OK, body).into_response(),
            Reply::Empty => StatusCode::OK.into_response(),
        };
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(AMZ_JSON));
        response
    }
}
