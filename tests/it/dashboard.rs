//! The dashboard as served over HTTP: where browsers are sent, what the page may load, and the endpoint it lists
//! accounts and regions from. (What it shows and does in a browser is tested with headless Chromium.)

use serde_json::json;

use crate::common::{Conn, TestServer, pipeline_json};

const ASSETS: [(&str, &str); 5] = [
    ("/_emulator/ui/", "text/html"),
    ("/_emulator/ui/app.js", "text/javascript"),
    ("/_emulator/ui/history.js", "text/javascript"),
    ("/_emulator/ui/sigv4.js", "text/javascript"),
    ("/_emulator/ui/style.css", "text/css"),
];

#[tokio::test]
async fn a_browser_asking_for_the_root_is_sent_to_the_dashboard_and_an_sdk_is_not() {
    let server = TestServer::start().await;
    let mut conn = Conn::open(&server.server.addr().to_string()).await;
    let accept = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
    let page = conn.request("GET", "/", &[("Accept", accept)], b"").await;
    assert_eq!(page.status, 303);
    assert_eq!(page.header("location"), Some("/_emulator/ui/"));
    let other = conn.request("GET", "/", &[("Accept", "application/json")], b"").await;
    assert_eq!(other.status, 405, "{}", other.text());
    assert_eq!(other.json()["__type"], "MethodNotAllowedException");
    let bare = conn.request("GET", "/_emulator/ui", &[], b"").await;
    assert_eq!(bare.header("location"), Some("/_emulator/ui/"));
}

#[tokio::test]
async fn the_page_and_its_assets_load_nothing_from_elsewhere() {
    let server = TestServer::start().await;
    let mut conn = Conn::open(&server.server.addr().to_string()).await;
    for (path, content_type) in ASSETS {
        let asset = conn.request("GET", path, &[], b"").await;
        assert_eq!(asset.status, 200, "{path}");
        assert!(asset.header("content-type").is_some_and(|t| t.starts_with(content_type)), "{path}");
        let policy = asset.header("content-security-policy").expect("a content security policy");
        assert!(policy.contains("default-src 'none'") && policy.contains("connect-src 'self'"), "{policy}");
        assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
        assert_eq!(asset.header("x-content-type-options"), Some("nosniff"));
        // No address of another site anywhere in the page, its script or its style.
        let text = asset.text();
        for foreign in ["http://", "https://", "//cdn", "url(//", "src=\"//", "href=\"//"] {
            assert!(!text.contains(foreign), "{path} refers to {foreign}");
        }
    }
    // The page names its own assets relative to itself.
    let page = conn.request("GET", "/_emulator/ui/", &[], b"").await.text();
    assert!(page.contains(r#"src="app.js""#) && page.contains(r#"href="style.css""#));
}

#[tokio::test]
async fn the_dashboard_is_guarded_like_the_other_control_endpoints() {
    let server = TestServer::start().await;
    let mut conn = Conn::open(&server.server.addr().to_string()).await;
    let framed = conn.request("GET", "/_emulator/ui/", &[("Origin", "https://evil.example")], b"").await;
    assert_eq!(framed.status, 403, "{}", framed.text());
    let listed = conn.request("GET", "/_emulator/partitions", &[("Origin", "https://evil.example")], b"").await;
    assert_eq!(listed.status, 403);
}

#[tokio::test]
async fn partitions_lists_the_accounts_and_regions_that_hold_pipelines() {
    let server = TestServer::start().await;
    let empty = server.control("GET", "/_emulator/partitions", &json!({})).await.json();
    assert_eq!(
        empty,
        json!({"default": {"account": "000000000000", "region": "us-east-1"}, "partitions": [], "realArtifacts": false,
            "runBuilds": false})
    );
    let mut conn = Conn::open(&server.server.addr().to_string()).await;
    for (name, region) in [("one", "us-east-1"), ("two", "us-east-1"), ("three", "eu-west-1")] {
        let credential =
            format!("AWS4-HMAC-SHA256 Credential=111122223333/20260101/{region}/codepipeline/aws4_request");
        let body = format!(r#"{{"pipeline": {}}}"#, pipeline_json(name));
        let created = conn
            .request(
                "POST",
                "/",
                &[
                    ("X-Amz-Target", "CodePipeline_20150709.CreatePipeline"),
                    ("Content-Type", "application/x-amz-json-1.1"),
                    ("Authorization", credential.as_str()),
                ],
                body.as_bytes(),
            )
            .await;
        assert_eq!(created.status, 200, "{}", created.text());
    }
    let listed = server.control("GET", "/_emulator/partitions", &json!({})).await.json();
    assert_eq!(
        listed["partitions"],
        json!([
            {"account": "111122223333", "region": "eu-west-1", "pipelines": 1},
            {"account": "111122223333", "region": "us-east-1", "pipelines": 2}
        ])
    );
}
