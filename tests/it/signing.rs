//! Opt-in signature verification (issue 30, item 1): `--verify-signatures` with a credentials file.

use std::time::{Duration, SystemTime};

use aws_sdk_codepipeline::Client;
use aws_sdk_codepipeline::error::ProvideErrorMetadata;
use codepipeline_local::config::Config;
use serde_json::Value;

use crate::common::{Conn, Signed, TestServer, send_signed};

const DEPLOYER: (&str, &str) = ("AKIADEPLOYER00000001", "deployer-secret");
const AUDITOR: (&str, &str) = ("AKIAAUDITOR000000002", "auditor-secret");
const TEMPORARY: (&str, &str, &str) = ("ASIATEMPORARY0000003", "temporary-secret", "the-session-token");

async fn verifying() -> TestServer {
    let file = std::env::temp_dir().join(format!("cpl-credentials-{}.json", uuid::Uuid::new_v4()));
    let principals = serde_json::json!({"principals": [
        {"accessKeyId": DEPLOYER.0, "secretAccessKey": DEPLOYER.1, "account": "111111111111",
         "arn": "arn:aws:iam::111111111111:user/deployer", "policies": []},
        {"accessKeyId": AUDITOR.0, "secretAccessKey": AUDITOR.1, "account": "222222222222",
         "arn": "arn:aws:iam::222222222222:user/auditor"},
        {"accessKeyId": TEMPORARY.0, "secretAccessKey": TEMPORARY.1, "sessionToken": TEMPORARY.2,
         "account": "111111111111", "arn": "arn:aws:sts::111111111111:assumed-role/ci/session"}]});
    std::fs::write(&file, principals.to_string()).expect("writes");
    let config =
        Config { verify_signatures: true, credentials: Some(file), action_duration_ms: 5, ..Config::default() };
    TestServer::with_config(config).await
}

fn client(server: &TestServer, key: &str, secret: &str, token: Option<&str>) -> Client {
    crate::common::keyed_client(&server.url(), "us-east-1", (key, secret), token)
}

/// A request to `ListPipelines` signed by `key`/`secret` at `time` (headers, or the query string), then `tamper`ed.
async fn signed_request(
    server: &TestServer,
    key: (&str, &str),
    time: SystemTime,
    query: bool,
    tamper: impl Fn(&mut axum::http::Request<String>),
) -> (u16, Value) {
    let headers =
        [("content-type", "application/x-amz-json-1.1"), ("x-amz-target", "CodePipeline_20150709.ListPipelines")];
    let signed = Signed { key, time, query, method: "POST", path: "/", headers: &headers, body: "{}" };
    let response = send_signed(&server.url(), signed, tamper).await;
    (response.status, response.json())
}

#[tokio::test]
async fn signed_requests_act_in_their_key_s_account_and_every_failure_is_aws_s() {
    let server = verifying().await;
    let deployer = client(&server, DEPLOYER.0, DEPLOYER.1, None);
    let pipeline =
        crate::sdk_json::pipeline(&serde_json::from_str(&crate::common::pipeline_json("signed")).expect("json"));
    deployer.create_pipeline().pipeline(pipeline).send().await.expect("the deployer creates");
    // Its account is the key's: the auditor (another account) sees nothing.
    let auditor = client(&server, AUDITOR.0, AUDITOR.1, None);
    assert_eq!(auditor.list_pipelines().send().await.expect("lists").pipelines().len(), 0);
    assert_eq!(deployer.list_pipelines().send().await.expect("lists").pipelines().len(), 1);
    // Control requests are signed too, and see the signer's account only.
    let unsigned = server.control("GET", "/_emulator/partitions", &Value::Null).await;
    assert_eq!(unsigned.json()["__type"], "MissingAuthenticationTokenException", "{}", unsigned.text());
    let signed = Signed {
        key: AUDITOR,
        time: SystemTime::now(),
        query: false,
        method: "GET",
        path: "/_emulator/partitions",
        headers: &[],
        body: "",
    };
    let partitions = send_signed(&server.url(), signed, |_| {}).await.json();
    assert_eq!(partitions["default"]["account"], "222222222222", "{partitions}");
    assert!(!partitions.to_string().contains("111111111111"), "{partitions}");
    // The signer is the caller AWS names.
    let started = deployer.start_pipeline_execution().name("signed").send().await.expect("starts");
    let id = started.pipeline_execution_id().unwrap_or_default();
    let execution = deployer.get_pipeline_execution().pipeline_name("signed").pipeline_execution_id(id).send().await;
    let trigger = execution.expect("gets").pipeline_execution().and_then(|e| e.trigger().cloned()).expect("a trigger");
    assert_eq!(trigger.trigger_detail(), Some("arn:aws:iam::111111111111:user/deployer"));
    // A session token must be the principal's.
    let temporary = client(&server, TEMPORARY.0, TEMPORARY.1, Some(TEMPORARY.2));
    assert_eq!(temporary.list_pipelines().send().await.expect("lists").pipelines().len(), 1);

    let refused = |client: Client| async move {
        let error = client.list_pipelines().send().await.expect_err("refused");
        (error.code().unwrap_or_default().to_string(), error.message().unwrap_or_default().to_string())
    };
    assert_eq!(
        refused(client(&server, "AKIANOBODY0000000000", "x", None)).await,
        ("UnrecognizedClientException".into(), "The security token included in the request is invalid.".into())
    );
    assert_eq!(
        refused(client(&server, TEMPORARY.0, TEMPORARY.1, Some("another-token"))).await.0,
        "UnrecognizedClientException"
    );
    let wrong_secret = refused(client(&server, DEPLOYER.0, "not-the-secret", None)).await;
    assert_eq!(
        wrong_secret,
        (
            "InvalidSignatureException".into(),
            "The request signature we calculated does not match the signature you provided. Check your AWS Secret \
             Access Key and signing method. Consult the service documentation for details."
                .into()
        )
    );

    // Raw HTTP: no signature, a malformed one.
    let mut conn = Conn::open(&server.server.addr().to_string()).await;
    let bare = conn.aws("ListPipelines", "{}").await;
    assert_eq!((bare.status, bare.json()["__type"].clone()), (400, "MissingAuthenticationTokenException".into()));
    assert_eq!(bare.json()["message"], "Request is missing Authentication Token");
    let partial = "AWS4-HMAC-SHA256 Credential=AKIADEPLOYER00000001/20261207/us-east-1/codepipeline/aws4_request";
    let answer = conn
        .request(
            "POST",
            "/",
            &[
                ("Authorization", partial),
                ("X-Amz-Target", "CodePipeline_20150709.ListPipelines"),
                ("Content-Type", "application/x-amz-json-1.1"),
            ],
            b"{}",
        )
        .await;
    assert_eq!(answer.json()["__type"], "IncompleteSignatureException");
    assert_eq!(
        answer.json()["message"],
        format!(
            "Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' \
             parameter. Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. \
             Authorization={partial}"
        )
    );

    // Signed here: as it is, accepted; with a tampered body, refused; 20 minutes old, expired.
    let now = SystemTime::now();
    let (status, body) = signed_request(&server, DEPLOYER, now, false, |_| {}).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) =
        signed_request(&server, DEPLOYER, now, false, |r| *r.body_mut() = r#"{"nextToken": "x"}"#.into()).await;
    assert_eq!((status, body["__type"].as_str()), (400, Some("InvalidSignatureException")), "{body}");
    let (_, body) = signed_request(&server, DEPLOYER, now - Duration::from_secs(20 * 60), false, |_| {}).await;
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.starts_with("Signature expired: ") && message.ends_with(" - 15 min.)"), "{body}");
    assert!(message.contains("is now earlier than"), "{message}");
    // The query-string form.
    let (status, body) = signed_request(&server, DEPLOYER, now, true, |_| {}).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = signed_request(&server, DEPLOYER, now, true, |r| {
        let uri = r.uri().to_string().replace("X-Amz-Signature=", "X-Amz-Signature=0");
        *r.uri_mut() = uri.parse().expect("uri");
    })
    .await;
    assert_eq!((status, body["__type"].as_str()), (400, Some("InvalidSignatureException")), "{body}");
}

#[test]
fn verification_without_a_credentials_file_is_refused_at_start() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_codepipeline-local"))
        .args(["--port", "0", "--verify-signatures"])
        .output()
        .expect("runs");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--credentials"), "{output:?}");
}
