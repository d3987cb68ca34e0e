//! What a build reads from and writes to neighbours: Parameter Store and Secrets Manager values for its
//! environment (`env/parameter-store`, `env/secrets-manager`, and the action's `PARAMETER_STORE` and
//! `SECRETS_MANAGER` variables), and its log in CloudWatch Logs (`/aws/codebuild/<project>`, stream `<build uuid>`;
//! a `Commands` action's in `/aws/codepipeline/<pipeline>`).

use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use aws_sdk_ssm::error::ProvideErrorMetadata as _;

use super::super::artifacts::ArtifactWriter;
use super::super::neighbour::sdk_config;

/// What a CodeBuild neighbour knows of a project: its buildspec (inline YAML or a path in the primary source), its
/// environment variables `(name, value, type)` and its timeout.
#[derive(Debug, Default)]
pub(super) struct Project {
    pub buildspec: Option<String>,
    pub environment: Vec<(String, String, String)>,
    pub timeout_minutes: Option<i64>,
}

impl ArtifactWriter {
    /// The project `name` as the CodeBuild neighbour has it (or why not); nothing without a neighbour (the build
    /// then reads `buildspec.yml`, with CodeBuild's default timeout).
    pub(super) async fn project(&self, name: &str, account: &str, region: &str) -> Result<Project, String> {
        let Some(endpoint) = self.settings.codebuild.as_deref() else { return Ok(Project::default()) };
        let client = aws_sdk_codebuild::Client::new(&sdk_config(&self.settings, endpoint, region));
        let answer = client.batch_get_projects().names(name).send().await;
        let answer = answer.map_err(|e| super::super::neighbour::answer(&e))?;
        // As StartBuild answers for a project it does not know (AWS passes it through in the Java SDK's form).
        let Some(project) = answer.projects().first() else {
            return Err(format!(
                "Project cannot be found: arn:aws:codebuild:{region}:{account}:project/{name} (Service: AWSCodeBuild; \
                 Status Code: 400; Error Code: ResourceNotFoundException; Proxy: null)"
            ));
        };
        let environment = project
            .environment()
            .map(|e| {
                e.environment_variables()
                    .iter()
                    .map(|v| {
                        let kind = v.r#type().map_or("PLAINTEXT", |t| t.as_str()).to_string();
                        (v.name().to_string(), v.value().to_string(), kind)
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(Project {
            buildspec: project.source().and_then(|s| s.buildspec()).filter(|b| !b.is_empty()).map(str::to_string),
            environment,
            // CodeBuild's range is 5 to 2,160 minutes: 0 (what moto answers when none was set) is none.
            timeout_minutes: project.timeout_in_minutes().filter(|m| *m > 0).map(i64::from),
        })
    }

    /// A Parameter Store value (decrypted), or why it cannot be read.
    pub(super) async fn parameter(&self, name: &str, region: &str) -> Result<String, String> {
        let Some(endpoint) = self.settings.ssm.as_deref() else {
            return Err(format!(
                "the parameter {name} is read from Parameter Store, and no SSM neighbour is configured \
                 (AWS_ENDPOINT_URL_SSM or --aws-endpoint)"
            ));
        };
        let client = aws_sdk_ssm::Client::new(&sdk_config(&self.settings, endpoint, region));
        let answer = client.get_parameter().name(name).with_decryption(true).send().await;
        match answer {
            Ok(answer) => Ok(answer.parameter().and_then(|p| p.value()).unwrap_or_default().to_string()),
            Err(e) if e.code() == Some("ParameterNotFound") => Err(format!("parameter does not exist: {name}")),
            Err(e) => Err(format!("{name}: {}", super::super::neighbour::answer(&e))),
        }
    }

    /// A Secrets Manager value: `secret-id[:json-key[:version-stage[:version-id]]]` (the secret id may be an ARN).
    pub(super) async fn secret(&self, reference: &str, region: &str) -> Result<String, String> {
        let Some(endpoint) = self.settings.secrets_manager.as_deref() else {
            return Err(format!(
                "the secret {reference} is read from Secrets Manager, and no Secrets Manager neighbour is configured \
                 (AWS_ENDPOINT_URL_SECRETS_MANAGER or --aws-endpoint)"
            ));
        };
        let parts: Vec<&str> = reference.split(':').collect();
        // An ARN is its first seven fields.
        let (id, rest) = if reference.starts_with("arn:") && parts.len() >= 7 {
            (parts[..7].join(":"), &parts[7..])
        } else {
            (parts[0].to_string(), &parts[1..])
        };
        let field = |i: usize| rest.get(i).copied().filter(|s| !s.is_empty());
        let client = aws_sdk_secretsmanager::Client::new(&sdk_config(&self.settings, endpoint, region));
        let request = client
            .get_secret_value()
            .secret_id(&id)
            .set_version_stage(field(1).map(str::to_string))
            .set_version_id(field(2).map(str::to_string));
        let answer = request.send().await.map_err(|e| format!("{id}: {}", super::super::neighbour::answer(&e)))?;
        let secret = answer.secret_string().unwrap_or_default().to_string();
        match field(0) {
            None => Ok(secret),
            Some(key) => {
                let json: serde_json::Value = serde_json::from_str(&secret)
                    .map_err(|_| format!("the secret {id} is not JSON, so has no key {key}"))?;
                match json.get(key) {
                    Some(serde_json::Value::String(value)) => Ok(value.clone()),
                    Some(other) => Ok(other.to_string()),
                    None => Err(format!("the secret {id} has no key {key}")),
                }
            }
        }
    }

    /// Sends a build's log to CloudWatch Logs, if a neighbour is configured; a failure is logged, not the build's.
    pub(super) async fn ship_log(&self, group: &str, stream: &str, text: &str, region: &str) {
        let Some(endpoint) = self.settings.logs.as_deref() else { return };
        let client = aws_sdk_cloudwatchlogs::Client::new(&sdk_config(&self.settings, endpoint, region));
        // Either may exist already.
        let _ = client.create_log_group().log_group_name(group).send().await;
        let _ = client.create_log_stream().log_group_name(group).log_stream_name(stream).send().await;
        let now = chrono::Utc::now().timestamp_millis();
        let events: Vec<InputLogEvent> = text
            .lines()
            .filter_map(|line| InputLogEvent::builder().timestamp(now).message(line).build().ok())
            .collect();
        // PutLogEvents takes at most 10,000 events (and 1 MB) a call.
        for batch in events.chunks(5_000) {
            let put = client.put_log_events().log_group_name(group).log_stream_name(stream);
            if let Err(e) = put.set_log_events(Some(batch.to_vec())).send().await {
                tracing::warn!(
                    group,
                    stream,
                    "the build log could not be sent to CloudWatch Logs: {}",
                    super::super::neighbour::answer(&e)
                );
                return;
            }
        }
    }
}
