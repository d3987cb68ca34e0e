//! moto's server, started by the tests that talk to a real neighbour (`.ci/run` installs it).

use std::process::{Child, Command, Stdio};

use crate::common::{Conn, eventually};

/// An Authorization header in SigV4's form: moto checks who asks, not the signature.
const SIGNED: &str =
    "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=0";

/// moto's server on a free port, stopped when dropped.
pub struct Moto {
    child: Child,
    pub addr: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Moto {
    pub async fn start() -> Moto {
        Moto::start_with(&[]).await
    }

    /// moto's server with `environment` (moto reads some behaviour from variables, e.g.
    /// `MOTO_ECS_SERVICE_RUNNING`: how many tasks its ECS services run).
    pub async fn start_with(environment: &[(&str, &str)]) -> Moto {
        Moto::launch(environment, &[]).await
    }

    /// moto's server over TLS, with the certificate and key at these paths (its URL is then `https://`).
    pub async fn start_tls(certificate: &std::path::Path, key: &std::path::Path) -> Moto {
        let (certificate, key) = (certificate.display().to_string(), key.display().to_string());
        Moto::launch(&[], &["--ssl-cert", &certificate, "--ssl-key", &key]).await
    }

    async fn launch(environment: &[(&str, &str)], arguments: &[&str]) -> Moto {
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a port").port();
        let child = Command::new("python3")
            .args(["-c", "import sys; from moto.server import main; sys.exit(main())", "-p", &port.to_string()])
            .args(arguments)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .envs(environment.iter().copied())
            .spawn()
            .expect("moto's server starts (pip install 'moto[server]')");
        let addr = format!("127.0.0.1:{port}");
        let moto = Moto { child, addr };
        eventually("moto's server to listen", || async {
            tokio::net::TcpStream::connect(&moto.addr).await.ok().map(|_| ())
        })
        .await;
        moto
    }

    /// The URL of its API.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// An SDK configuration for calls to it (test credentials, us-east-1), for clients of its other services.
    pub fn sdk_config(&self) -> aws_types::SdkConfig {
        let credentials = aws_credential_types::Credentials::new("test", "test", None, None, "tests");
        aws_types::SdkConfig::builder()
            .behavior_version(aws_smithy_runtime_api::client::behavior_version::BehaviorVersion::latest())
            .endpoint_url(self.url())
            .region(aws_types::region::Region::new("us-east-1"))
            .credentials_provider(aws_credential_types::provider::SharedCredentialsProvider::new(credentials))
            .http_client(aws_smithy_http_client::Builder::new().build_http())
            .build()
    }

    /// Creates an S3 bucket (path-style, unsigned: moto does not check).
    pub async fn create_bucket(&self, name: &str) {
        let response = Conn::open(&self.addr).await.request("PUT", &format!("/{name}"), &[], b"").await;
        assert_eq!(response.status, 200, "CreateBucket {name}: {}", response.text());
    }

    /// Turns versioning on for a bucket.
    pub async fn enable_versioning(&self, bucket: &str) {
        let body = r#"<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Status>Enabled</Status></VersioningConfiguration>"#;
        let headers = [("Authorization", SIGNED)];
        let path = format!("/{bucket}?versioning");
        let response = Conn::open(&self.addr).await.request("PUT", &path, &headers, body.as_bytes()).await;
        assert_eq!(response.status, 200, "PutBucketVersioning {bucket}: {}", response.text());
    }

    /// Uploads an object; returns its version id, if the bucket keeps versions.
    pub async fn put_object(&self, bucket: &str, key: &str, bytes: &[u8]) -> Option<String> {
        let headers = [("Authorization", SIGNED)];
        let response = Conn::open(&self.addr).await.request("PUT", &format!("/{bucket}/{key}"), &headers, bytes).await;
        assert_eq!(response.status, 200, "PutObject {bucket}/{key}: {}", response.text());
        response.header("x-amz-version-id").map(str::to_string)
    }

    /// A versioned source bucket holding one object, as an S3 source action reads it.
    pub async fn seed_source(&self, bucket: &str, key: &str) -> String {
        self.create_bucket(bucket).await;
        self.enable_versioning(bucket).await;
        let empty_zip = b"PK\x05\x06\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0";
        self.put_object(bucket, key, empty_zip).await.expect("a version id")
    }

    /// An S3 object's status and bytes.
    pub async fn get_object(&self, bucket: &str, key: &str) -> (u16, Vec<u8>) {
        // Signed in form (moto checks who asks, not the signature): an anonymous read of a private object is refused.
        let headers = [("Authorization", SIGNED)];
        let response = Conn::open(&self.addr).await.request("GET", &format!("/{bucket}/{key}"), &headers, b"").await;
        (response.status, response.body)
    }
}
