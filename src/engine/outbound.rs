//! What the engine's outgoing calls to AWS APIs share (the Lambda invoker, event delivery to EventBridge, approval
//! notifications to SNS): one kind of HTTP client, SigV4 signing, and a signed POST retried with backoff; and the
//! certificates every neighbour's TLS is checked against ([`Trust`]), for these and for the SDK clients alike.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::sync::Arc;

/// The client outgoing calls use: `http://`, and `https://` checked against the [`Trust`].
pub type HttpClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// A new client whose TLS trusts `trust`.
pub fn client(trust: &Trust) -> HttpClient {
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config((*trust.config()).clone())
        .https_or_http()
        .enable_http1()
        .build();
    Client::builder(TokioExecutor::new()).build(connector)
}

/// The certificates a neighbour's TLS certificate is checked against: the system's roots and, for a neighbour with
/// its own certificate (AWS's emulator serves HTTPS only), a PEM bundle (`--aws-ca-bundle`, or the SDK-standard
/// `AWS_CA_BUNDLE`). The system's roots are loaded only when a neighbour is `https://`.
#[derive(Clone)]
pub struct Trust {
    config: Arc<rustls::ClientConfig>,
    /// Whether some neighbour is `https://`.
    tls: bool,
    /// The bundle's PEM, for the SDK clients.
    bundle: Option<Arc<Vec<u8>>>,
}

impl std::fmt::Debug for Trust {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trust").field("tls", &self.tls).field("bundle", &self.bundle.is_some()).finish()
    }
}

impl Trust {
    /// The trust for neighbours of which some are `https://` (`tls`), with the PEM `bundle` if one is named: the
    /// bundle must hold at least one usable certificate.
    pub fn load(tls: bool, bundle: Option<&std::path::Path>) -> Result<Trust, String> {
        use rustls_pki_types::pem::PemObject as _;
        let mut roots = rustls::RootCertStore::empty();
        let mut pem = None;
        if let Some(path) = bundle {
            let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let certificates = rustls_pki_types::CertificateDer::pem_slice_iter(&bytes)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("{} is not a PEM certificate bundle: {e}", path.display()))?;
            if certificates.is_empty() {
                return Err(format!("{} holds no PEM certificate", path.display()));
            }
            for certificate in certificates {
                roots
                    .add(certificate)
                    .map_err(|e| format!("a certificate of {} is not usable: {e}", path.display()))?;
            }
            pem = Some(Arc::new(bytes));
        }
        if tls {
            // The system's roots, as the SDKs use them; one that does not parse is left out.
            roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        }
        // ring: no post-quantum key exchange, which local neighbours do not need, and no C toolchain to build.
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS cannot be set up: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Trust { config: Arc::new(config), tls, bundle: pem })
    }

    /// The TLS configuration of outgoing calls.
    fn config(&self) -> Arc<rustls::ClientConfig> {
        Arc::clone(&self.config)
    }

    /// The HTTP client of the SDK neighbours' clients (S3, CloudFormation, ECS, ECR).
    pub fn sdk_client(&self) -> aws_smithy_runtime_api::client::http::SharedHttpClient {
        use aws_smithy_http_client::tls;
        if !self.tls {
            return aws_smithy_http_client::Builder::new().build_http();
        }
        let mut store = tls::TrustStore::empty().with_native_roots(true);
        if let Some(pem) = &self.bundle {
            store = store.with_pem_certificate(pem.as_slice());
        }
        let context = tls::TlsContext::builder().with_trust_store(store).build();
        let builder = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::Ring));
        match context {
            Ok(context) => builder.tls_context(context).build_https(),
            Err(_) => builder.build_https(),
        }
    }
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
