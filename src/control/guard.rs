//! What keeps the control endpoints safe on a developer's laptop, where any web page the developer visits can send
//! requests to `localhost`:
//!
//! - a request that changes state must say `Content-Type: application/json`, which a page can only send after a
//!   CORS preflight this server never grants (a cross-site `text/plain` or form POST is refused), unless nothing
//!   about it could come from a page: no body, no `Content-Type`, no `Origin` and no fetch metadata (`Sec-Fetch-*`,
//!   which browsers send with every request), as `curl -X POST .../_emulator/reset` is;
//! - a request carrying an `Origin` must come from this server's own origin, a loopback origin, or one allowed with
//!   `--allowed-origins`;
//! - the `Host` must be a loopback name, an IP address, the listen address, the `--public-url` host or one allowed
//!   with `--allowed-hosts`, so a page whose domain was re-pointed at this machine (DNS rebinding) is refused.
//!
//! With `--verify-signatures` (or `--enforce-iam`), a control request must also be signed as an AWS request is
//! (SigV4 with service `codepipeline`, in the headers or, for links and event streams, the query string); the
//! dashboard's own files are the exception, they hold no data. The verified [`Caller`] then acts on its own account
//! only, unless its principal is marked `"admin": true` in the credentials file.
//!
//! Refusals are JSON errors like every other answer. Bodies are read with the same size and stall bounds as the AWS
//! endpoint's.

use std::net::IpAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use crate::app::AppState;
use crate::protocol::body::{MAX_BODY_BYTES, read_limited};
use crate::protocol::sigv4::{Principal, without_signature};
use crate::protocol::{ApiError, ErrorCode};
use crate::state::Scope;

pub use crate::config::{allowed_name, split_authority};

/// Whether a host name or address is this machine's loopback.
fn is_loopback(host: &str) -> bool {
    host == "localhost" || host.ends_with(".localhost") || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The host of an `http(s)://host[:port]` URL.
fn url_host(url: &str) -> Option<String> {
    let rest = url.strip_prefix("http://").or_else(|| url.strip_prefix("https://"))?;
    let authority = rest.split('/').next()?;
    split_authority(authority).map(|(host, _)| host)
}

/// The origin (`scheme://host[:port]`, lowercase, no path) of a URL.
fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split('/').next()?;
    split_authority(authority)?;
    Some(format!("{}://{}", scheme.to_ascii_lowercase(), authority.to_ascii_lowercase()))
}

/// Whether a request addressed to `host` may use the control endpoints.
fn host_allowed(app: &AppState, host: &str) -> bool {
    let config = app.config();
    // An IP address cannot be re-pointed by DNS; only names can be rebound.
    is_loopback(host)
        || host.parse::<IpAddr>().is_ok()
        || host.eq_ignore_ascii_case(&config.host)
        || config.public_url.as_deref().and_then(url_host).is_some_and(|h| h == host)
        || config.allowed_hosts.iter().any(|h| h == "*" || allowed_name(h).is_some_and(|h| h == host))
}

/// Whether a request from a page of `origin`, addressed to `host_header`, may use the control endpoints.
fn origin_allowed(app: &AppState, origin: &str, host_header: Option<&str>) -> bool {
    let config = app.config();
    let origin = origin.trim().trim_end_matches('/');
    if config.allowed_origins.iter().any(|o| o == "*" || o.trim_end_matches('/').eq_ignore_ascii_case(origin)) {
        return true;
    }
    let Some(normalized) = origin_of(origin).filter(|o| o.starts_with("http://") || o.starts_with("https://")) else {
        // `null` (sandboxed frames, files) and anything unparsable.
        return false;
    };
    let authority = normalized.split_once("://").map_or("", |(_, a)| a);
    let own = host_header.is_some_and(|h| h.eq_ignore_ascii_case(authority));
    let public = config.public_url.as_deref().and_then(origin_of).is_some_and(|o| o == normalized);
    own || public || split_authority(authority).is_some_and(|(host, _)| is_loopback(&host))
}

fn forbidden(message: String) -> Response {
    ApiError::new(ErrorCode::ForbiddenException, message).into_response()
}

/// Middleware of every `/_emulator/*` route: the Host, Origin and content-type rules above.
pub async fn protect(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let headers = request.headers();
    let host_header = headers.get(header::HOST).map(|h| h.to_str().unwrap_or("\u{fffd}"));
    if let Some(host) = host_header {
        match split_authority(host) {
            Some((name, _)) if host_allowed(&app, &name) => {}
            Some((name, _)) => {
                return forbidden(format!(
                    "Control requests addressed to host '{name}' are refused; allow it with --allowed-hosts {name} \
                     (or CODEPIPELINE_LOCAL_ALLOWED_HOSTS={name})"
                ));
            }
            None => {
                return forbidden(format!(
                    "Control requests addressed to host '{}' are refused: it is not a host name; allow a name with \
                     --allowed-hosts (or CODEPIPELINE_LOCAL_ALLOWED_HOSTS)",
                    host.chars().take(100).collect::<String>()
                ));
            }
        }
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("\u{fffd}");
        if !origin_allowed(&app, origin, host_header) {
            return forbidden(format!(
                "Control requests from web pages of origin '{}' are refused; add it with --allowed-origins",
                origin.chars().take(100).collect::<String>()
            ));
        }
    }
    let changes_state = !matches!(*request.method(), Method::GET | Method::HEAD);
    if changes_state && !is_json(request.headers()) && !not_from_a_page(request.headers()) {
        return ApiError::new(
            ErrorCode::UnsupportedMediaTypeException,
            "Control requests that change state must send Content-Type: application/json",
        )
        .into_response();
    }
    match verified(&app, request).await {
        Ok(request) => next.run(request).await,
        Err(refusal) => refusal.into_response(),
    }
}

/// With `--verify-signatures`, `request` once its signature checks out, knowing its [`Caller`]; else as it is.
async fn verified(app: &AppState, request: Request) -> Result<Request, ApiError> {
    let Some(principals) = app.principals() else { return Ok(request) };
    let path = request.uri().path();
    if path.starts_with(crate::control::ui::PATH) || path == crate::control::ui::PATH.trim_end_matches('/') {
        return Ok(request);
    }
    let (mut parts, body) = request.into_parts();
    let config = app.config();
    let limit = if parts.uri.path() == "/_emulator/state" {
        config.max_import_bytes.max(MAX_BODY_BYTES)
    } else {
        MAX_BODY_BYTES
    };
    let bytes = read_limited(&parts.headers, body, limit, config.body_timeout).await?;
    let (principal, region) = principals.verify(parts.method.as_str(), &parts.uri, &parts.headers, &bytes).await?;
    parts.extensions.insert(Caller(Some((principal, region))));
    // A query-string signature has done its work: the endpoint reads its own parameters only.
    if parts.uri.query().is_some_and(|q| q.contains("X-Amz-")) {
        parts.uri = without_signature(&parts.uri)
            .parse()
            .map_err(|_| ApiError::validation("The request's URI cannot be read"))?;
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

/// Who made a control request: with `--verify-signatures`, its verified principal and the region it signed for.
#[derive(Debug, Clone, Default)]
pub struct Caller(Option<(Arc<Principal>, String)>);

impl Caller {
    /// The verified principal, if requests are verified.
    pub fn principal(&self) -> Option<&Principal> {
        self.0.as_ref().map(|(p, _)| p.as_ref())
    }

    /// Refuses a caller that may act on its own account only, for what concerns every account.
    pub fn must_act_anywhere(&self, what: &str) -> Result<(), ApiError> {
        match self.principal() {
            Some(p) if !p.admin => Err(ApiError::new(
                ErrorCode::ForbiddenException,
                format!(
                    "User: {} may not {what}, which concerns every account: only a principal marked \"admin\": true in \
                     the credentials file may",
                    p.arn
                ),
            )),
            _ => Ok(()),
        }
    }

    /// The scope a verified caller acts in by default (its account, the region it signed for).
    pub fn scope(&self) -> Option<Scope> {
        self.0.as_ref().map(|(p, region)| Scope { account: p.account.clone(), region: region.clone() })
    }

    /// Refuses a caller that may not act on `account`.
    pub fn may_act_on(&self, account: &str) -> Result<(), ApiError> {
        match self.principal() {
            Some(p) if !p.admin && p.account != account => Err(ApiError::new(
                ErrorCode::ForbiddenException,
                format!(
                    "User: {} may act on account {} only through the control endpoints, not on {account}: only a \
                     principal marked \"admin\": true in the credentials file may act on other accounts",
                    p.arn, p.account
                ),
            )),
            _ => Ok(()),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Caller, Self::Rejection> {
        Ok(parts.extensions.get::<Caller>().cloned().unwrap_or_default())
    }
}

/// Whether a request carries nothing a web page's request would: no body (no length, or length 0, and no chunked
/// body), no `Content-Type`, no `Origin`, no fetch metadata.
fn not_from_a_page(headers: &HeaderMap) -> bool {
    let empty = headers.get(header::CONTENT_LENGTH).is_none_or(|l| l.as_bytes() == b"0")
        && !headers.contains_key(header::TRANSFER_ENCODING);
    let fetch_metadata = headers.keys().any(|name| name.as_str().starts_with("sec-fetch-"));
    empty && !headers.contains_key(header::CONTENT_TYPE) && !headers.contains_key(header::ORIGIN) && !fetch_metadata
}

fn is_json(headers: &HeaderMap) -> bool {
    let essence = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    essence.as_deref() == Some("application/json")
}

/// A control request's JSON body, read within the AWS endpoint's size and stall bounds; an empty body is `{}`.
pub struct ControlJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for ControlJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request<Body>, app: &AppState) -> Result<ControlJson<T>, ApiError> {
        let (parts, body) = request.into_parts();
        let bytes = read_limited(&parts.headers, body, MAX_BODY_BYTES, app.config().body_timeout).await?;
        let bytes = if bytes.iter().all(u8::is_ascii_whitespace) { b"{}".as_slice() } else { &bytes };
        serde_json::from_slice(bytes)
            .map(ControlJson)
            .map_err(|e| ApiError::validation(format!("Invalid request body: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorities_are_host_and_port_only() {
        assert_eq!(split_authority("localhost:4566"), Some(("localhost".into(), Some(4566))));
        assert_eq!(split_authority("Example.TEST"), Some(("example.test".into(), None)));
        assert_eq!(split_authority("[::1]:4566"), Some(("::1".into(), Some(4566))));
        assert_eq!(split_authority("codepipeline_local:80"), Some(("codepipeline_local".into(), Some(80))));
        for bad in ["", "user@host", "host/path", "host?x=1", "host:port", "host:99999", "a b", "[::1", "[zz]:1"] {
            assert_eq!(split_authority(bad), None, "{bad}");
        }
    }

    #[test]
    fn loopback_names_and_addresses() {
        for host in ["localhost", "app.localhost", "127.0.0.1", "127.1.2.3", "::1"] {
            assert!(is_loopback(host), "{host}");
        }
        for host in ["example.test", "10.0.0.1", "localhost.example.test"] {
            assert!(!is_loopback(host), "{host}");
        }
    }

    #[test]
    fn origins_are_normalized() {
        assert_eq!(origin_of("HTTP://LocalHost:4566/"), Some("http://localhost:4566".into()));
        assert_eq!(origin_of("null"), None);
        assert_eq!(url_host("https://hooks.example.test:8443/base"), Some("hooks.example.test".into()));
    }
}
