//! The AWS JSON 1.1 protocol, independent of what CodePipeline does: routing by `X-Amz-Target`, request bodies,
//! the service model and validation against it, identity, errors, pagination tokens.

pub mod body;
pub mod error;
pub mod identity;
pub mod model;
pub mod pagination;
pub mod policy;
pub mod precheck;
pub mod router;
pub mod sigv4;
pub mod validate;

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

pub use self::error::{AMZ_JSON, ApiError, ErrorCode};
pub use self::router::Operation;

/// A successful answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// A JSON document.
    Json(bytes::Bytes),
    /// Nothing to report. How that goes on the wire depends on the operation's model, and is decided in one place
    /// (`operations::dispatch`): an operation with an output shape (even one without members) answers `{}`, one
    /// without an output shape answers an empty body, as AWS does.
    Done,
    /// No body at all.
    Empty,
}

impl Reply {
    /// Serializes an output structure.
    pub fn json<T: Serialize>(output: &T) -> Result<Reply, ApiError> {
        serde_json::to_vec(output)
            .map(|body| Reply::Json(body.into()))
            .map_err(|e| ApiError::new(ErrorCode::InternalFailure, format!("Could not serialize the response: {e}")))
    }

    /// The `{}` answer of operations whose output structure has no members set.
    pub fn empty_object() -> Reply {
        Reply::Json(bytes::Bytes::from_static(b"{}"))
    }

    /// `Done` as the operation's model says to send it: `{}` when it has an output shape, else an empty body.
    pub fn for_output(self, has_output: bool) -> Reply {
        match self {
            Reply::Done if has_output => Reply::empty_object(),
            Reply::Done => Reply::Empty,
            other => other,
        }
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        // Built directly (200 is a response's default status): this runs for every successful request.
        let mut response = match self {
            Reply::Json(body) => Response::new(axum::body::Body::from(body)),
            Reply::Empty | Reply::Done => Response::new(axum::body::Body::empty()),
        };
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(AMZ_JSON));
        response
    }
}
