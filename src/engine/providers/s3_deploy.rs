//! The S3 deploy action against the S3 neighbour (real-actions.md §3, from native captures): the input artifact as
//! one object (`Extract` false) or each of its files (`Extract` true), with the configured ACL, cache control and
//! KMS key; run-time checks and failures in AWS's words.

use aws_sdk_s3::error::ProvideErrorMetadata;

use super::artifacts::{ArtifactWriter, S3Deploy};
use super::neighbour::configuration_error;
use crate::state::execution::{ErrorDetails, FailureType, Success};

/// The content type AWS gives an extracted file, by its extension (`application/octet-stream` when unknown).
pub fn content_type(name: &str) -> &'static str {
    let extension = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    match extension.as_str() {
        "html" | "htm" => "text/html",
        "js" => "application/x-javascript",
        "css" => "text/css",
        "json" => "application/json",
        "xml" => "application/xml",
        "txt" => "text/plain",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        _ => "application/octet-stream",
    }
}

/// What AWS checks of an S3 deploy's configuration when the action runs (not when the pipeline is created):
/// `Extract` exactly `true` or `false`, and an `ObjectKey` when it is `false`; whether to extract.
pub fn check(extract: &str, object_key: Option<&str>) -> Result<bool, ErrorDetails> {
    let extract = match extract {
        "true" => true,
        "false" => false,
        other => {
            return Err(configuration_error(format!(
                "Invalid value for configuration property '{other}': 'Extract'. Edit your pipeline and set \
                 'Extract' to either 'true' or 'false'."
            )));
        }
    };
    if !extract && object_key.is_none_or(str::is_empty) {
        return Err(configuration_error(
            "When the extract feature is disabled, you must provide an object. Edit your pipeline to fix the \
             configuration."
                .into(),
        ));
    }
    Ok(extract)
}

impl ArtifactWriter {
    /// Deploys; the result is AWS's: `Deployment Succeeded`, the bucket (and object key) as external id.
    pub(super) async fn deploy(&self, deploy: &S3Deploy) -> Result<Success, ErrorDetails> {
        let extract = check(&deploy.extract, deploy.object_key.as_deref())?;
        let artifact = &deploy.input;
        let input = self.read_artifact(&artifact.name, &artifact.bucket, &artifact.key).await?;
        if extract {
            for (name, bytes) in super::neighbour::files(&input, &artifact.name)? {
                if name.contains("../") {
                    return Err(configuration_error(format!(
                        "The file name {name} contains invalid sequence: dot-dot-slash."
                    )));
                }
                let key = match &deploy.object_key {
                    Some(prefix) => format!("{prefix}/{name}"),
                    None => name.clone(),
                };
                self.put(deploy, &key, bytes, content_type(&name)).await?;
            }
        } else if let Some(key) = &deploy.object_key {
            self.put(deploy, key, input, "application/octet-stream").await?;
        }
        let external = match &deploy.object_key {
            Some(key) => format!("{}/{key}", deploy.bucket),
            None => deploy.bucket.clone(),
        };
        Ok(Success {
            summary: Some("Deployment Succeeded".into()),
            external_execution_id: Some(external),
            ..Success::default()
        })
    }

    async fn put(&self, deploy: &S3Deploy, key: &str, bytes: Vec<u8>, content_type: &str) -> Result<(), ErrorDetails> {
        let mut put = self
            .client
            .put_object()
            .bucket(&deploy.bucket)
            .key(key)
            .content_type(content_type)
            .body(aws_sdk_s3::primitives::ByteStream::from(bytes));
        if let Some(acl) = &deploy.canned_acl {
            put = put.acl(aws_sdk_s3::types::ObjectCannedAcl::from(acl.as_str()));
        }
        if let Some(cache) = &deploy.cache_control {
            put = put.cache_control(cache);
        }
        if let Some(kms) = &deploy.kms_key {
            put = put.server_side_encryption(aws_sdk_s3::types::ServerSideEncryption::AwsKms).ssekms_key_id(kms);
        }
        put.send().await.map(|_| ()).map_err(|e| {
            let answer = super::neighbour::chain(&e);
            if e.code() == Some("AccessDenied") {
                ErrorDetails {
                    code: FailureType::PermissionError,
                    message: format!(
                        "You do not have sufficient permissions to call s3.putObject for the deployment bucket, {}. \
                         Verify that the policy on the resource allows you to perform this task. If you choose a \
                         canned ACL for your Amazon S3 deployment action, the policy must include the PutObjectAcl \
                         action. If the object already exists, the policy must also include the \
                         PutObjectVersionAcl action. {answer}",
                        deploy.bucket
                    ),
                }
            } else {
                ErrorDetails {
                    code: FailureType::JobFailed,
                    message: format!(
                        "Could not deploy \"{}/{key}\" to the S3 neighbour ({}): {answer}",
                        deploy.bucket, self.endpoint
                    ),
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_follow_what_aws_sets() {
        assert_eq!(content_type("index.HTML"), "text/html");
        assert_eq!(content_type("app.js"), "application/x-javascript");
        assert_eq!(content_type("a/b/data.json"), "application/json");
        assert_eq!(content_type("font.woff2"), "application/octet-stream");
        assert_eq!(content_type("README"), "application/octet-stream");
    }
}
