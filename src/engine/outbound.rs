//! What the engine's outgoing calls to AWS APIs share (the Lambda invoker, event delivery to EventBridge, approval
//! notifications to SNS): one kind of HTTP client, SigV4 signing, and a signed POST retried with backoff.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// The plain-HTTP client outgoing calls use.
pub type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// A new client.
pub fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

/// Signs a request to an AWS API with SigV4 (header signing) for `service` in `region`.
pub fn sign_for(
    request: &mut axum::http::Request<Full<Bytes>>,
    (access_key_id, secret_access_key): (&str, &str),
    service: &str,
    region: &str,
    body: &[u8],
) -> Result<(), String> {
    let identity = Credentials::new(access_key_id, secret_access_key, None, None, "codepipeline-local").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| e.to_string())?
        .into();
    let uri = request.uri().to_string();
    let headers = request.headers().iter().filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?)));
    let signable = SignableRequest::new("POST", &uri, headers, SignableBody::Bytes(body)).map_err(|e| e.to_string())?;
    let (instructions, _) = sign(signable, &params).map_err(|e| e.to_string())?.into_parts();
    instructions.apply_to_request_http1x(request);
    Ok(())
}

/// Attempts of one call, and the wait before the first retry (doubled each time).
const ATTEMPTS: u32 = 3;
const FIRST_BACKOFF: Duration = Duration::from_millis(200);

/// How long one attempt may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Where a signed call goes and how it is signed.
pub struct Call<'a> {
    /// The full URL.
    pub url: String,
    pub headers: &'a [(&'a str, &'a str)],
    pub keys: (&'a str, &'a str),
    pub service: &'a str,
    pub region: &'a str,
}

/// POSTs `body`, signed, retrying an attempt that could not be made, timed out or got a 5xx; the answer's body, or
/// why the call failed (a 4xx is not retried).
pub async fn post_with_retries(client: &HttpClient, call: &Call<'_>, body: Bytes) -> Result<Bytes, String> {
    let mut backoff = FIRST_BACKOFF;
    let mut last = String::new();
    for attempt in 1..=ATTEMPTS {
        let (retryable, reason) = match post(client, call, body.clone()).await {
            Ok(answer) => return Ok(answer),
            Err(failure) => failure,
        };
        last = reason;
        if !retryable || attempt == ATTEMPTS {
            break;
        }
        tokio::time::sleep(backoff).await;
        backoff *= 2;
    }
    Err(last)
}

/// One attempt: the answer's body, or (whether to retry, why not).
async fn post(client: &HttpClient, call: &Call<'_>, body: Bytes) -> Result<Bytes, (bool, String)> {
    let mut builder = axum::http::Request::post(&call.url);
    for (name, value) in call.headers {
        builder = builder.header(*name, *value);
    }
    let mut request = builder.body(Full::new(body.clone())).map_err(|e| (false, e.to_string()))?;
    sign_for(&mut request, call.keys, call.service, call.region, &body).map_err(|e| (false, e))?;
    let response = tokio::time::timeout(CALL_TIMEOUT, client.request(request))
        .await
        .map_err(|_| (true, "the call timed out".to_string()))?
        .map_err(|e| (true, format!("the endpoint cannot be reached: {e}")))?;
    let status = response.status();
    let bytes = response.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    if !status.is_success() {
        let text = String::from_utf8_lossy(&bytes).chars().take(300).collect::<String>();
        return Err((status.is_server_error(), format!("the endpoint answered {status}: {text}")));
    }
    Ok(bytes)
}
