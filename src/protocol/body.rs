//! Request bodies: a bounded read, the content type, and JSON parsing into `SerializationException`s.

use std::future::Future;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use axum::body::Body;
use axum::http::HeaderMap;
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use serde_json::Value;

use super::error::{ApiError, ErrorCode};

/// The largest request body the emulator accepts: 8 MiB, far above any valid CodePipeline request.
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// How much of an oversized body is still read (and discarded) so that the client sees the error response and
/// the keep-alive connection stays usable. Beyond this the connection is closed after the response.
const DRAIN_BYTES: u64 = 64 * 1024 * 1024;

/// Reads the whole body, refusing more than `limit` bytes with `RequestEntityTooLargeException` (HTTP 413), and a
/// body that stalls (no data for `stall`) with `RequestTimeoutException` (HTTP 408).
pub async fn read_limited(headers: &HeaderMap, body: Body, limit: usize, stall: Duration) -> Result<Bytes, ApiError> {
    let too_large = |size: Option<u64>| {
        let size = size.map_or_else(|| "more than the limit".to_string(), |s| format!("{s} bytes"));
        ApiError::new(
            ErrorCode::RequestEntityTooLargeException,
            format!("The request body ({size}) exceeds the limit of {limit} bytes"),
        )
    };
    let declared = headers.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<u64>().ok());
    let limit_u64 = u64::try_from(limit).unwrap_or(u64::MAX);
    if declared.is_some_and(|len| len > limit_u64.saturating_add(DRAIN_BYTES)) {
        // Not worth reading: answer now and let the connection close.
        return Err(too_large(declared));
    }

    let mut body = body;
    // A body that arrives as one frame (nearly every request) is kept as it is; only more frames are copied.
    let mut first: Option<Bytes> = None;
    let mut buffer = BytesMut::new();
    let mut total: u64 = 0;
    loop {
        let mut next = std::pin::pin!(body.frame());
        // Data that has already arrived is taken without arming a timer; only a wait is bounded.
        let ready = next.as_mut().poll(&mut Context::from_waker(Waker::noop()));
        let frame = match ready {
            Poll::Ready(frame) => frame,
            Poll::Pending => tokio::time::timeout(stall, next).await.map_err(|_| {
                ApiError::new(
                    ErrorCode::RequestTimeoutException,
                    format!("The request body stalled: no data arrived for {} ms", stall.as_millis()),
                )
            })?,
        };
        let Some(frame) = frame else { break };
        let frame = frame.map_err(|e| {
            ApiError::new(ErrorCode::SerializationException, format!("Could not read the request body: {e}"))
        })?;
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        total = total.saturating_add(data.len() as u64);
        if total <= limit_u64 {
            match first.take() {
                None if buffer.is_empty() => first = Some(data),
                earlier => {
                    if let Some(earlier) = earlier {
                        buffer.extend_from_slice(&earlier);
                    }
                    buffer.extend_from_slice(&data);
                }
            }
        } else if total > limit_u64.saturating_add(DRAIN_BYTES) {
            return Err(too_large(Some(total)));
        }
    }
    if total > limit_u64 {
        return Err(too_large(Some(total)));
    }
    Ok(first.unwrap_or_else(|| buffer.freeze()))
}

/// Accepts the AWS JSON content types, plain JSON, and no content type at all. Anything else (for example a form
/// post from a client speaking the query protocol) is refused with a message saying what is expected.
pub fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(value) = headers.get(CONTENT_TYPE) else {
        return Ok(());
    };
    // Compared in place, letter case ignored: this runs for every request.
    let essence = value.as_bytes().split(|b| *b == b';').next().unwrap_or_default().trim_ascii();
    let accepted = [&b"application/x-amz-json-1.1"[..], b"application/x-amz-json-1.0", b"application/json", b""];
    if accepted.iter().any(|a| a.eq_ignore_ascii_case(essence)) {
        return Ok(());
    }
    Err(ApiError::new(
        ErrorCode::SerializationException,
        format!(
            "Unsupported Content-Type '{}'; CodePipeline expects application/x-amz-json-1.1",
            String::from_utf8_lossy(value.as_bytes())
        ),
    ))
}

/// Parses a request body. An empty (or all-whitespace) body means `{}`; anything else must be a JSON object.
pub fn parse_json(bytes: &[u8]) -> Result<Value, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(serde_json::Map::new()));
    }
    let value: Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::serialization(format!("The request body is not valid JSON: {e}")))?;
    match value {
        Value::Object(_) => Ok(value),
        Value::Array(_) => Err(ApiError::serialization(
            "Start of list found where not expected: the request body must be a JSON object",
        )),
        _ => Err(ApiError::serialization("The request body must be a JSON object")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn empty_body_is_an_empty_object() {
        assert_eq!(parse_json(b"").expect("ok"), serde_json::json!({}));
        assert_eq!(parse_json(b" \n").expect("ok"), serde_json::json!({}));
    }

    #[test]
    fn malformed_or_non_object_json_is_a_serialization_error() {
        for body in [&b"{"[..], b"{\"a\":}", b"[1,2]", b"\"text\"", b"42", b"null", b"\xff\xfe"] {
            let err = parse_json(body).expect_err("refused");
            assert_eq!(err.code, ErrorCode::SerializationException);
        }
    }

    #[test]
    fn deep_nesting_is_refused_not_overflowed() {
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(parse_json(deep.as_bytes()).expect_err("refused").code, ErrorCode::SerializationException);
    }

    #[test]
    fn content_types() {
        let mut headers = HeaderMap::new();
        assert!(check_content_type(&headers).is_ok());
        for ok in
            ["application/x-amz-json-1.1", "application/json", "application/json; charset=utf-8", "Application/JSON"]
        {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static(ok));
            assert!(check_content_type(&headers).is_ok(), "{ok}");
        }
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/x-www-form-urlencoded"));
        assert_eq!(check_content_type(&headers).expect_err("refused").code, ErrorCode::SerializationException);
    }

    const STALL: Duration = Duration::from_secs(5);

    #[tokio::test]
    async fn a_stalled_body_is_refused() {
        /// A body whose data never comes.
        struct Silent;
        impl hyper::body::Body for Silent {
            type Data = Bytes;
            type Error = std::convert::Infallible;
            fn poll_frame(
                self: std::pin::Pin<&mut Self>,
                _: &mut std::task::Context<'_>,
            ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
                std::task::Poll::Pending
            }
        }
        let body = Body::new(Silent);
        let err = read_limited(&HeaderMap::new(), body, 10, Duration::from_millis(20)).await.expect_err("stalls");
        assert_eq!(err.code, ErrorCode::RequestTimeoutException);
        assert_eq!(err.code.status(), axum::http::StatusCode::REQUEST_TIMEOUT);
    }

    #[tokio::test]
    async fn bodies_over_the_limit_are_refused() {
        let headers = HeaderMap::new();
        let ok = read_limited(&headers, Body::from(vec![b'x'; 10]), 10, STALL).await.expect("at the limit");
        assert_eq!(ok.len(), 10);
        let err = read_limited(&headers, Body::from(vec![b'x'; 11]), 10, STALL).await.expect_err("over");
        assert_eq!(err.code, ErrorCode::RequestEntityTooLargeException);
        assert_eq!(err.code.status(), axum::http::StatusCode::PAYLOAD_TOO_LARGE);
    }
}
