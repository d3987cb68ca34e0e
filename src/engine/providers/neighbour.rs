//! What every real provider shares: SDK clients for a neighbour, reading an artifact's zip, explaining an SDK error,
//! and waiting for a neighbour's long operation (a stack, a service) without outliving the action.

use std::io::{Read as _, Write as _};
use std::time::Duration;

use aws_credential_types::provider::SharedCredentialsProvider;
use aws_types::SdkConfig;
use aws_types::region::Region;
use aws_types::sdk_config::{RetryConfig, TimeoutConfig};

use super::artifacts::{ArtifactSettings, ArtifactWork};
use crate::engine::Engine;
use crate::state::execution::{ErrorDetails, FailureType};

/// The SDK configuration for calls to the neighbour at `endpoint`: the neighbours' credentials, plain HTTP, each
/// attempt bounded by `settings.timeout`, and the SDK's standard retries (3 attempts, with backoff) between a failed
/// attempt and a failed action.
pub(super) fn sdk_config(settings: &ArtifactSettings, endpoint: &str, region: &str) -> SdkConfig {
    sdk_config_with(&settings.credentials, &settings.trust, settings.timeout, endpoint, region)
}

/// The SDK configuration for calls to the neighbour at `endpoint` with `credentials`, its TLS checked against
/// `trust`, each attempt bounded by `timeout`, with the SDK's standard retries.
pub fn sdk_config_with(
    credentials: &super::Credentials,
    trust: &crate::engine::outbound::Trust,
    timeout: Duration,
    endpoint: &str,
    region: &str,
) -> SdkConfig {
    let credentials = aws_credential_types::Credentials::new(
        credentials.access_key_id.clone(),
        credentials.secret_access_key.clone(),
        credentials.session_token.clone(),
        None,
        "codepipeline-local",
    );
    SdkConfig::builder()
        .behavior_version(aws_smithy_runtime_api::client::behavior_version::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new(region.to_string()))
        .credentials_provider(SharedCredentialsProvider::new(credentials))
        .http_client(trust.sdk_client())
        .retry_config(RetryConfig::standard())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(timeout.min(Duration::from_secs(5)))
                .operation_attempt_timeout(timeout)
                .build(),
        )
        .build()
}

/// An SDK error with its causes (its own text alone is "dispatch failure" for a refused connection).
pub(super) fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// What a neighbour answered: its error code and message when it gave them, else the error and its causes.
pub fn answer<E, R>(error: &aws_smithy_runtime_api::client::result::SdkError<E, R>) -> String
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug + 'static,
{
    use aws_smithy_types::error::metadata::ProvideErrorMetadata as _;
    match (error.code(), error.message()) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        (Some(code), None) => code.to_string(),
        _ => chain(error),
    }
}

/// A failure of the action (`JobFailed`) with `message`.
pub(super) fn job_failed(message: String) -> ErrorDetails {
    ErrorDetails { code: FailureType::JobFailed, message }
}

/// A failure the pipeline's configuration causes (`ConfigurationError`) with `message`.
pub(super) fn configuration_error(message: String) -> ErrorDetails {
    ErrorDetails { code: FailureType::ConfigurationError, message }
}

/// The files of a zip, in order: their names (backslashes as slashes) and bytes; directories left out. A zip that
/// does not read is the action's failure, never a crash.
pub(super) fn files(archive: &[u8], artifact: &str) -> Result<Vec<(String, Vec<u8>)>, ErrorDetails> {
    let malformed = |why: String| job_failed(format!("The input artifact {artifact} is not a readable zip: {why}"));
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(archive)).map_err(|e| malformed(e.to_string()))?;
    let mut out = Vec::with_capacity(zip.len());
    for index in 0..zip.len() {
        let mut file = zip.by_index(index).map_err(|e| malformed(e.to_string()))?;
        if file.is_dir() {
            continue;
        }
        let name = file.name().map_err(|e| malformed(e.to_string()))?.replace('\\', "/");
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(|e| malformed(e.to_string()))?;
        out.push((name, bytes));
    }
    Ok(out)
}

/// A zip holding one file.
pub(super) fn zip_of(name: &str, bytes: &[u8]) -> Vec<u8> {
    let mut buffer = std::io::Cursor::new(Vec::new());
    let mut zip = zip::ZipWriter::new(&mut buffer);
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    let written = zip.start_file(name, options).and_then(|()| zip.write_all(bytes).map_err(Into::into));
    if written.and_then(|()| zip.finish().map(|_| ())).is_err() {
        // Writing to memory does not fail; an empty archive is still a valid zip.
        return empty_zip();
    }
    buffer.into_inner()
}

/// A zip holding nothing.
pub(super) fn empty_zip() -> Vec<u8> {
    b"PK\x05\x06\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0".to_vec()
}

/// One file of a zip, by its path (a leading `./` or `/` ignored), if it holds it.
pub(super) fn file(archive: &[u8], artifact: &str, path: &str) -> Result<Option<Vec<u8>>, ErrorDetails> {
    let wanted = path.trim_start_matches("./").trim_start_matches('/');
    Ok(files(archive, artifact)?.into_iter().find(|(name, _)| name.trim_start_matches("./") == wanted).map(|f| f.1))
}

/// The pace of a wait on a neighbour's long operation: quick at first (local neighbours settle at once), then every
/// two seconds; it ends when the action is no longer waiting for the work (stopped, timed out, its pipeline gone).
pub(super) struct Wait<'a> {
    engine: &'a Engine,
    work: &'a ArtifactWork,
    pause: Duration,
}

impl<'a> Wait<'a> {
    pub(super) fn new(engine: &'a Engine, work: &'a ArtifactWork) -> Wait<'a> {
        Wait { engine, work, pause: Duration::from_millis(50) }
    }

    /// Pauses before the next look; `false` when the action no longer waits for this work.
    pub(super) async fn pause(&mut self) -> bool {
        tokio::time::sleep(self.pause).await;
        self.pause = (self.pause * 2).min(Duration::from_secs(2));
        self.engine.is_storing(&self.work.scope, &self.work.pipeline, self.work.execution_id, self.work.run_id)
    }
}

/// Why a wait ended early: the action no longer waits for the work. Its report is not looked at.
pub(super) fn abandoned() -> ErrorDetails {
    job_failed("The action no longer waits for this work.".into())
}
