//! The dashboard: a single page served from the binary itself (`/_emulator/ui/`), plain HTML, CSS and JavaScript from
//! `assets/dashboard/`, embedded at build time (no CDN, works offline, no Node toolchain to build).
//!
//! The page talks only to this server: the AWS JSON endpoint for CodePipeline operations and the `/_emulator/*`
//! endpoints, with the same protections as any other caller. Its Content-Security-Policy lets it load and connect to
//! nothing else.

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;

use crate::app::AppState;

/// The page base. Its assets are relative to it.
pub const PATH: &str = "/_emulator/ui/";

const INDEX: &str = include_str!("../../assets/dashboard/index.html");
const SCRIPT: &str = include_str!("../../assets/dashboard/app.js");
const HISTORY: &str = include_str!("../../assets/dashboard/history.js");
const SIGV4: &str = include_str!("../../assets/dashboard/sigv4.js");
const STYLE: &str = include_str!("../../assets/dashboard/style.css");

/// Same origin only: no script, style, image or connection elsewhere, no framing by other pages.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; \
                   base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The dashboard's routes (to be guarded like the other `/_emulator/*` routes).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/_emulator/ui", get(|| async { Redirect::permanent(PATH) }))
        .route(PATH, get(|| async { asset("text/html; charset=utf-8", INDEX) }))
        .route("/_emulator/ui/app.js", get(|| async { asset("text/javascript; charset=utf-8", SCRIPT) }))
        .route("/_emulator/ui/history.js", get(|| async { asset("text/javascript; charset=utf-8", HISTORY) }))
        .route("/_emulator/ui/sigv4.js", get(|| async { asset("text/javascript; charset=utf-8", SIGV4) }))
        .route("/_emulator/ui/style.css", get(|| async { asset("text/css; charset=utf-8", STYLE) }))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    // The assets change with the binary; a browser asks again rather than keep an old copy.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// Whether a request to `GET /` comes from a browser, which is sent to the dashboard.
pub fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.split(',').any(|part| part.trim().starts_with("text/html")))
}
