//! Shared test harness: a fresh server on port 0 per test, SDK clients, and a raw HTTP/1.1 client for wire tests.

use std::time::Duration;

use aws_sdk_codepipeline::Client;
use aws_sdk_codepipeline::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_codepipeline::types::PipelineExecutionStatus;
use codepipeline_local::{Config, RunningServer};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A server listening on a free port, stopped when dropped.
pub struct TestServer {
    pub server: RunningServer,
}

impl TestServer {
    pub async fn start() -> TestServer {
        TestServer::with_config(Config::default()).await
    }

    pub async fn with_config(mut config: Config) -> TestServer {
        config.port = 0;
        config.host = "127.0.0.1".into();
        // This machine's LocalStack init scripts, if it has any, are not the tests'.
        config.localstack_init_dir = None;
        let server = RunningServer::start(config).await.expect("server starts");
        TestServer { server }
    }

    /// A server whose simulated actions take 5 ms.
    pub async fn fast() -> TestServer {
        TestServer::with_config(Config { action_duration_ms: 5, ..Config::default() }).await
    }

    pub fn url(&self) -> String {
        self.server.url()
    }

    /// An SDK client in us-east-1 with a non-numeric access key (so the default account).
    pub fn client(&self) -> Client {
        self.client_as("AKIDTESTTEST", "us-east-1")
    }

    /// An SDK client signing with the given access key id and region.
    pub fn client_as(&self, access_key: &str, region: &str) -> Client {
        keyed_client(&self.url(), region, (access_key, "secret"), None)
    }

    /// Sends a JSON request to a control endpoint (`/_emulator/...`) on a fresh connection.
    pub async fn control(&self, method: &str, path: &str, body: &Value) -> HttpResponse {
        let body = if body.is_null() { String::new() } else { body.to_string() };
        let headers = [("Content-Type", "application/json")];
        self.connect().await.request(method, path, &headers, body.as_bytes()).await
    }

    /// Replaces the emulator's behaviour rules (`PUT /_emulator/behaviors`) with `rules`, a JSON array.
    pub async fn set_behaviors(&self, rules: Value) {
        let response = self.control("PUT", "/_emulator/behaviors", &serde_json::json!({"rules": rules})).await;
        assert_eq!(response.status, 200, "{}", response.text());
    }

    /// Moves the emulator clock forward (`POST /_emulator/clock/advance`); what became due has happened on return.
    pub async fn advance_clock(&self, seconds: f64) {
        let response = self.control("POST", "/_emulator/clock/advance", &serde_json::json!({"seconds": seconds})).await;
        assert_eq!(response.status, 200, "{}", response.text());
    }

    /// A raw connection to the server.
    pub async fn connect(&self) -> Conn {
        Conn::open(&self.server.addr().to_string()).await
    }

    /// Sends one AWS JSON request on a fresh connection. A successful answer must fit the operation's output shape
    /// in the service model (see `shapes`).
    pub async fn call(&self, operation: &str, body: &str) -> HttpResponse {
        let response = self.connect().await.aws(operation, body).await;
        if response.status == 200 {
            let answer: serde_json::Value = serde_json::from_slice(&response.body).unwrap_or(serde_json::Value::Null);
            let mismatches = crate::shapes::output_mismatches(operation, &answer);
            assert!(mismatches.is_empty(), "{operation} answered outside its output shape: {mismatches:#?}");
        }
        response
    }

    /// Sends one AWS JSON request and expects an error with the given code; returns the message.
    pub async fn error(&self, operation: &str, body: &str, code: &str) -> String {
        let response = self.call(operation, body).await;
        assert_eq!(response.status, 400, "{operation} {body}: {}", response.text());
        assert_eq!(response.json()["__type"], code, "{operation} {body}: {}", response.text());
        assert_eq!(response.header("x-amzn-errortype"), Some(code));
        response.json()["message"].as_str().unwrap_or_default().to_string()
    }
}

/// A parsed HTTP response.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

/// A keep-alive HTTP/1.1 connection speaking just enough of the protocol for wire tests.
pub struct Conn {
    stream: TcpStream,
    buffer: Vec<u8>,
}

impl Conn {
    pub async fn open(addr: &str) -> Conn {
        let stream = TcpStream::connect(addr).await.expect("connects");
        stream.set_nodelay(true).expect("nodelay");
        Conn { stream, buffer: Vec::new() }
    }

    /// POST / with the CodePipeline target for `operation`.
    pub async fn aws(&mut self, operation: &str, body: &str) -> HttpResponse {
        let target = format!("CodePipeline_20150709.{operation}");
        self.request(
            "POST",
            "/",
            &[("X-Amz-Target", target.as_str()), ("Content-Type", "application/x-amz-json-1.1")],
            body.as_bytes(),
        )
        .await
    }

    /// Sends a request and reads its response.
    pub async fn request(&mut self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> HttpResponse {
        self.send(method, path, headers, body).await;
        self.read_response().await
    }

    /// Sends a request addressed to `host` and reads its response.
    pub async fn request_with_host(
        &mut self,
        method: &str,
        path: &str,
        host: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> HttpResponse {
        self.send_to(method, path, host, headers, body).await;
        self.read_response().await
    }

    /// Writes a request without reading the response.
    pub async fn send(&mut self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) {
        self.send_to(method, path, "localhost", headers, body).await;
    }

    async fn send_to(&mut self, method: &str, path: &str, host: &str, headers: &[(&str, &str)], body: &[u8]) {
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {}\r\n", body.len());
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        self.write(head.as_bytes()).await;
        self.write(body).await;
    }

    pub async fn write(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("writes");
    }

    /// Reads one response (Content-Length framed, as the server always frames them).
    pub async fn read_response(&mut self) -> HttpResponse {
        let head_end = loop {
            if let Some(pos) = find(&self.buffer, b"\r\n\r\n") {
                break pos;
            }
            self.fill().await;
        };
        let head = String::from_utf8_lossy(&self.buffer[..head_end]).into_owned();
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status: u16 = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        let headers: Vec<(String, String)> = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        let length: usize = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let body_start = head_end + 4;
        while self.buffer.len() < body_start + length {
            self.fill().await;
        }
        let body = self.buffer[body_start..body_start + length].to_vec();
        self.buffer.drain(..body_start + length);
        HttpResponse { status, headers, body }
    }

    /// Waits up to `within` for the server to close the connection; returns what it sent before closing, or `None`
    /// if the connection is still open at the end.
    pub async fn closed_within(&mut self, within: Duration) -> Option<Vec<u8>> {
        let deadline = tokio::time::Instant::now() + within;
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match tokio::time::timeout_at(deadline, self.stream.read(&mut chunk)).await {
                Err(_) => return None,
                Ok(Ok(0)) | Ok(Err(_)) => return Some(std::mem::take(&mut self.buffer)),
                Ok(Ok(n)) => self.buffer.extend_from_slice(&chunk[..n]),
            }
        }
    }

    async fn fill(&mut self) {
        let mut chunk = [0u8; 16 * 1024];
        let n = tokio::time::timeout(Duration::from_secs(20), self.stream.read(&mut chunk))
            .await
            .expect("server answers in time")
            .expect("reads");
        assert!(n > 0, "connection closed by the server");
        self.buffer.extend_from_slice(&chunk[..n]);
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A minimal valid pipeline declaration (S3 source, S3 deploy) as JSON text.
pub fn pipeline_json(name: &str) -> String {
    serde_json::json!({
        "name": name,
        "roleArn": "arn:aws:iam::123456789012:role/pipeline-role",
        "artifactStore": {"type": "S3", "location": "artifact-bucket"},
        "stages": [
            {"name": "Source", "actions": [{
                "name": "Source",
                "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "S3", "version": "1"},
                "configuration": {"S3Bucket": "source-bucket", "S3ObjectKey": "app.zip"},
                "outputArtifacts": [{"name": "SourceOutput"}]
            }]},
            {"name": "Deploy", "actions": [{
                "name": "Deploy",
                "actionTypeId": {"category": "Deploy", "owner": "AWS", "provider": "S3", "version": "1"},
                "configuration": {"BucketName": "site-bucket", "Extract": "true"},
                "inputArtifacts": [{"name": "SourceOutput"}]
            }]}
        ]
    })
    .to_string()
}

/// The same pipeline as an SDK declaration.
pub fn sdk_pipeline(name: &str) -> aws_sdk_codepipeline::types::PipelineDeclaration {
    use aws_sdk_codepipeline::types::*;
    let action_type = |category, provider: &str| {
        ActionTypeId::builder()
            .category(category)
            .owner(ActionOwner::Aws)
            .provider(provider)
            .version("1")
            .build()
            .expect("action type id")
    };
    PipelineDeclaration::builder()
        .name(name)
        .role_arn("arn:aws:iam::123456789012:role/pipeline-role")
        .artifact_store(
            ArtifactStore::builder()
                .r#type(ArtifactStoreType::S3)
                .location("artifact-bucket")
                .build()
                .expect("artifact store"),
        )
        .stages(
            StageDeclaration::builder()
                .name("Source")
                .actions(
                    ActionDeclaration::builder()
                        .name("Source")
                        .action_type_id(action_type(ActionCategory::Source, "S3"))
                        .configuration("S3Bucket", "source-bucket")
                        .configuration("S3ObjectKey", "app.zip")
                        .output_artifacts(OutputArtifact::builder().name("SourceOutput").build().expect("artifact"))
                        .build()
                        .expect("action"),
                )
                .build()
                .expect("stage"),
        )
        .stages(
            StageDeclaration::builder()
                .name("Deploy")
                .actions(
                    ActionDeclaration::builder()
                        .name("Deploy")
                        .action_type_id(action_type(ActionCategory::Deploy, "S3"))
                        .configuration("BucketName", "site-bucket")
                        .configuration("Extract", "true")
                        .input_artifacts(InputArtifact::builder().name("SourceOutput").build().expect("artifact"))
                        .build()
                        .expect("action"),
                )
                .build()
                .expect("stage"),
        )
        .build()
        .expect("pipeline")
}

/// Polls `check` every few milliseconds until it returns `Some`, for at most 10 seconds.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(std::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
}

/// The status of an execution.
pub async fn status(client: &Client, name: &str, id: &str) -> PipelineExecutionStatus {
    let out = client.get_pipeline_execution().pipeline_name(name).pipeline_execution_id(id).send().await.expect("get");
    out.pipeline_execution().and_then(|e| e.status()).cloned().expect("status")
}

/// Waits until an execution has the wanted status.
pub async fn wait_for(client: &Client, name: &str, id: &str, wanted: PipelineExecutionStatus) {
    eventually(&format!("{id} to be {wanted:?}"), || async {
        (status(client, name, id).await == wanted).then_some(())
    })
    .await;
}

/// The first execution of the pipeline (the one CreatePipeline started).
pub async fn first_execution(client: &Client, name: &str) -> String {
    eventually("an execution", || async {
        let out = client.list_pipeline_executions().pipeline_name(name).send().await.ok()?;
        out.pipeline_execution_summaries().last()?.pipeline_execution_id().map(str::to_string)
    })
    .await
}

/// `POST /_emulator/actions/complete`: ends a held action or rule.
pub async fn complete(server: &TestServer, body: Value) -> HttpResponse {
    server.control("POST", "/_emulator/actions/complete", &body).await
}

/// An SDK client of the server at `url` in `region`, signing with `key` (id, secret) and a session `token`.
pub fn keyed_client(url: &str, region: &str, (key, secret): (&str, &str), token: Option<&str>) -> Client {
    let config = aws_sdk_codepipeline::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .endpoint_url(url)
        .region(Region::new(region.to_string()))
        .credentials_provider(Credentials::new(key, secret, token.map(str::to_string), None, "tests"))
        .http_client(aws_smithy_http_client::Builder::new().build_http())
        .build();
    Client::from_conf(config)
}

/// A request to sign: by `key` (id, secret) at `time`, in the headers or (`query`) the query string.
pub struct Signed<'a> {
    pub key: (&'a str, &'a str),
    pub time: std::time::SystemTime,
    pub query: bool,
    pub method: &'a str,
    pub path: &'a str,
    pub headers: &'a [(&'a str, &'a str)],
    pub body: &'a str,
}

/// Sends `signed` to the server at `url`, signed with SigV4 for `codepipeline` in us-east-1, after `tamper` had its
/// way with it.
pub async fn send_signed(
    url: &str,
    signed: Signed<'_>,
    tamper: impl Fn(&mut axum::http::Request<String>),
) -> HttpResponse {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign};
    let authority = url.trim_start_matches("http://").to_string();
    let mut builder = axum::http::Request::builder()
        .method(signed.method)
        .uri(format!("http://{authority}{}", signed.path))
        .header("host", authority.as_str());
    for (name, value) in signed.headers {
        builder = builder.header(*name, *value);
    }
    let mut request = builder.body(signed.body.to_string()).expect("request");
    let (key, secret) = signed.key;
    let identity = aws_credential_types::Credentials::new(key, secret, None, None, "tests").into();
    let mut settings = SigningSettings::default();
    if signed.query {
        settings.signature_location = SignatureLocation::QueryParams;
        settings.expires_in = Some(Duration::from_secs(300));
    }
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("codepipeline")
        .time(signed.time)
        .settings(settings)
        .build()
        .expect("params")
        .into();
    let uri = request.uri().to_string();
    let headers: Vec<(String, String)> = request
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or_default().to_string()))
        .collect();
    let body =
        if signed.query { SignableBody::UnsignedPayload } else { SignableBody::Bytes(request.body().as_bytes()) };
    let signable =
        SignableRequest::new(signed.method, &uri, headers.iter().map(|(k, v)| (k.as_str(), v.as_str())), body)
            .expect("signable");
    let (instructions, _) = sign(signable, &params).expect("signs").into_parts();
    instructions.apply_to_request_http1x(&mut request);
    tamper(&mut request);
    let path = request.uri().path_and_query().map(|p| p.as_str().to_string()).unwrap_or_else(|| "/".into());
    let headers: Vec<(String, String)> = request
        .headers()
        .iter()
        .filter(|(k, _)| k.as_str() != "host")
        .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or_default().to_string()))
        .collect();
    let refs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut conn = Conn::open(&authority).await;
    // Conn sends `Host: localhost`, which the signature covers only if it is the signed host: send ours instead.
    conn.request_with_host(signed.method, &path, &authority, &refs, request.body().as_bytes()).await
}
