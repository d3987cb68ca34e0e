//! The CloudFormation deploy action against the CloudFormation neighbour (real-actions.md §7): every action mode,
//! the template and its configuration file from the input artifacts, parameter overrides with `Fn::GetParam` and
//! `Fn::GetArtifactAtt`, capabilities, the service role; the action waits for the stack (or the change set) to
//! settle and fails with the stack's reason; the stack's outputs become its output variables and, with
//! `OutputFileName`, a JSON file in its output artifact.
//!
//! Choices where AWS's behaviour is UNCONFIRMED: "No updates are to be performed." and a change set without changes
//! succeed without change; a failed stack's message names its status and the first failed resource of the
//! operation; the outputs file is one JSON object of `OutputKey` to `OutputValue`; `Fn::GetArtifactAtt`'s `URL` is
//! the object's URL at the S3 neighbour; the summary names the stack's final status.

use std::collections::BTreeMap;
use std::sync::Arc;

use aws_sdk_cloudformation::Client;
use aws_sdk_cloudformation::error::ProvideErrorMetadata;
use aws_sdk_cloudformation::types::{Capability, ChangeSetType, Parameter, Tag};
use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use serde_json::Value;

use super::artifacts::{ArtifactWork, ArtifactWriter};
use super::neighbour::{Wait, abandoned, configuration_error, job_failed, sdk_config, zip_of};
use crate::engine::Engine;
use crate::state::execution::{ActionRun, ArtifactInstance, ErrorDetails, Success};

/// What a CloudFormation deploy does: its resolved configuration and input artifacts.
#[derive(Debug, Clone)]
pub struct Deploy {
    mode: String,
    stack: String,
    change_set: String,
    template_path: Option<String>,
    template_configuration: Option<String>,
    parameter_overrides: Option<String>,
    capabilities: Option<String>,
    role_arn: Option<String>,
    output_file_name: Option<String>,
    inputs: Vec<Arc<ArtifactInstance>>,
    region: String,
}

impl Deploy {
    /// The deploy `configuration` asks for, with `run`'s inputs, in `region`.
    pub fn new(configuration: &BTreeMap<String, String>, run: &ActionRun, region: String) -> Deploy {
        let value = |key: &str| configuration.get(key).filter(|v| !v.is_empty()).cloned();
        Deploy {
            mode: value("ActionMode").unwrap_or_default(),
            stack: value("StackName").unwrap_or_default(),
            change_set: value("ChangeSetName").unwrap_or_default(),
            template_path: value("TemplatePath"),
            template_configuration: value("TemplateConfiguration"),
            parameter_overrides: value("ParameterOverrides"),
            capabilities: value("Capabilities"),
            role_arn: value("RoleArn"),
            output_file_name: value("OutputFileName"),
            inputs: run.input_artifacts.to_vec(),
            region,
        }
    }
}

/// A stack as DescribeStacks shows it.
struct StackView {
    id: String,
    status: String,
    reason: Option<String>,
    outputs: Vec<(String, String)>,
}

/// What a template needs to be deployed: its body and everything that goes with it.
#[derive(Default)]
struct Request {
    template: String,
    parameters: Vec<Parameter>,
    capabilities: Vec<Capability>,
    tags: Vec<Tag>,
    stack_policy: Option<String>,
}

/// CreateStack's and UpdateStack's request (two builder types with the same setters): the stack, its template,
/// parameters, capabilities, tags, policy and role.
macro_rules! deploying {
    ($builder:expr, $deploy:expr, $request:expr) => {
        $builder
            .stack_name(&$deploy.stack)
            .template_body(&$request.template)
            .set_parameters(Some($request.parameters))
            .set_capabilities(Some($request.capabilities))
            .set_tags(Some($request.tags))
            .set_stack_policy_body($request.stack_policy)
            .set_role_arn($deploy.role_arn.clone())
    };
}

/// Stack states that `REPLACE_ON_FAILURE` replaces.
const REPLACEABLE: [&str; 5] =
    ["ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "CREATE_FAILED", "DELETE_FAILED", "UPDATE_ROLLBACK_FAILED"];

/// One deploy's conversation with the neighbour.
struct Stack<'a> {
    client: Client,
    endpoint: &'a str,
    deploy: &'a Deploy,
    wait: Wait<'a>,
}

impl ArtifactWriter {
    /// Deploys; the result names the stack (its id as external id) and carries its outputs.
    pub(super) async fn cloudformation(
        &self,
        engine: &Engine,
        work: &ArtifactWork,
        deploy: &Deploy,
    ) -> Result<Success, ErrorDetails> {
        let endpoint = self.settings.cloudformation.as_deref().unwrap_or_default();
        let client = Client::new(&sdk_config(&self.settings, endpoint, &deploy.region));
        let mut stack = Stack { client, endpoint, deploy, wait: Wait::new(engine, work) };
        let settled = match deploy.mode.as_str() {
            "CREATE_UPDATE" => stack.create_or_update(self.request(deploy).await?, false).await?,
            "REPLACE_ON_FAILURE" => stack.create_or_update(self.request(deploy).await?, true).await?,
            "DELETE_ONLY" => stack.delete().await?,
            "CHANGE_SET_REPLACE" => stack.replace_change_set(self.request(deploy).await?).await?,
            "CHANGE_SET_EXECUTE" => stack.execute_change_set().await?,
            other => {
                return Err(configuration_error(format!(
                    "Invalid action mode: {other}. Edit your pipeline and set ActionMode to CREATE_UPDATE, \
                     DELETE_ONLY, REPLACE_ON_FAILURE, CHANGE_SET_REPLACE or CHANGE_SET_EXECUTE."
                )));
            }
        };
        let outputs = settled.as_ref().map(|s| s.outputs.clone()).unwrap_or_default();
        if !work.outputs.is_empty() {
            // The outputs file, or (no OutputFileName) an empty archive: a declared output artifact always exists.
            let zip = match &deploy.output_file_name {
                Some(name) => {
                    let object: serde_json::Map<String, Value> =
                        outputs.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
                    zip_of(name, Value::Object(object).to_string().as_bytes())
                }
                None => super::neighbour::empty_zip(),
            };
            self.put_zip(&work.outputs, zip).await?;
        }
        let summary = match &settled {
            Some(view) => format!("Stack {} is {}", deploy.stack, view.status),
            None => format!("Stack {} does not exist", deploy.stack),
        };
        Ok(Success {
            summary: Some(summary),
            external_execution_id: Some(settled.map_or_else(|| deploy.stack.clone(), |s| s.id)),
            output_variables: outputs.into_iter().collect(),
            ..Success::default()
        })
    }

    /// The template, its configuration file and the parameter overrides, read from the input artifacts.
    async fn request(&self, deploy: &Deploy) -> Result<Request, ErrorDetails> {
        let mut archives: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        let Some(template_path) = &deploy.template_path else {
            return Err(configuration_error(format!(
                "The action mode {} needs a TemplatePath. Edit your pipeline and name the template as \
                 ArtifactName::TemplateFileName.",
                deploy.mode
            )));
        };
        let template = self.artifact_file(deploy, &mut archives, template_path, "TemplatePath").await?;
        let template = String::from_utf8(template).map_err(|_| {
            job_failed(format!("Template format error: the template {template_path} is not UTF-8 text."))
        })?;
        if template.trim_start().starts_with('{')
            && let Err(error) = serde_json::from_str::<Value>(&template)
        {
            return Err(job_failed(format!(
                "Template format error: JSON not well-formed. (line {}, column {})",
                error.line(),
                error.column()
            )));
        }
        let mut parameters: BTreeMap<String, String> = BTreeMap::new();
        let mut request = Request { template, ..Request::default() };
        if let Some(path) = &deploy.template_configuration {
            let bytes = self.artifact_file(deploy, &mut archives, path, "TemplateConfiguration").await?;
            let file: Value = serde_json::from_slice(&bytes).map_err(|e| {
                configuration_error(format!("The template configuration file {path} is not valid JSON: {e}"))
            })?;
            for (key, value) in file.get("Parameters").and_then(Value::as_object).into_iter().flatten() {
                parameters.insert(key.clone(), text(value));
            }
            for (key, value) in file.get("Tags").and_then(Value::as_object).into_iter().flatten() {
                request.tags.push(Tag::builder().key(key).value(text(value)).build());
            }
            request.stack_policy = file.get("StackPolicy").map(Value::to_string);
        }
        if let Some(overrides) = &deploy.parameter_overrides {
            let overrides: serde_json::Map<String, Value> = serde_json::from_str(overrides).map_err(|e| {
                configuration_error(format!("ParameterOverrides must be a JSON object of parameter values: {e}"))
            })?;
            for (key, value) in overrides {
                let value = self.parameter_value(deploy, &mut archives, &value).await?;
                parameters.insert(key, value);
            }
        }
        request.parameters = parameters
            .into_iter()
            .map(|(key, value)| Parameter::builder().parameter_key(key).parameter_value(value).build())
            .collect();
        request.capabilities = deploy
            .capabilities
            .iter()
            .flat_map(|c| c.split(','))
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(Capability::from)
            .collect();
        Ok(request)
    }

    /// A parameter override's value: plain, or `Fn::GetParam` / `Fn::GetArtifactAtt` resolved.
    async fn parameter_value(
        &self,
        deploy: &Deploy,
        archives: &mut BTreeMap<String, Vec<u8>>,
        value: &Value,
    ) -> Result<String, ErrorDetails> {
        let function = |name: &str| value.get(name).and_then(Value::as_array).cloned();
        let strings = |args: &[Value]| args.iter().map(|a| a.as_str().map(str::to_string)).collect::<Option<Vec<_>>>();
        if let Some(args) = function("Fn::GetParam") {
            let Some([artifact, file, key]) =
                strings(&args).as_deref().map(<[String]>::to_vec).and_then(|v| <[String; 3]>::try_from(v).ok())
            else {
                return Err(configuration_error(
                    "Fn::GetParam takes three strings: [ArtifactName, JSONFileName, KeyName].".into(),
                ));
            };
            let bytes = self.artifact_file(deploy, archives, &format!("{artifact}::{file}"), "Fn::GetParam").await?;
            let object: Value = serde_json::from_slice(&bytes).map_err(|e| {
                configuration_error(format!("The file {file} in artifact {artifact} is not valid JSON: {e}"))
            })?;
            return object.get(&key).map(text).ok_or_else(|| {
                configuration_error(format!("The key {key} does not exist in file {file} of artifact {artifact}."))
            });
        }
        if let Some(args) = function("Fn::GetArtifactAtt") {
            let Some([artifact, attribute]) = strings(&args).and_then(|v| <[String; 2]>::try_from(v).ok()) else {
                return Err(configuration_error(
                    "Fn::GetArtifactAtt takes two strings: [ArtifactName, BucketName | ObjectKey | URL].".into(),
                ));
            };
            let instance = input(deploy, &artifact, "Fn::GetArtifactAtt")?;
            return match attribute.as_str() {
                "BucketName" => Ok(instance.bucket.to_string()),
                "ObjectKey" => Ok(instance.key.to_string()),
                "URL" => Ok(format!("{}/{}/{}", self.endpoint, instance.bucket, instance.key)),
                other => Err(configuration_error(format!(
                    "Fn::GetArtifactAtt has no attribute {other}: use BucketName, ObjectKey or URL."
                ))),
            };
        }
        Ok(text(value))
    }

    /// The file `ArtifactName::path` names, from an input artifact (each archive read once).
    async fn artifact_file(
        &self,
        deploy: &Deploy,
        archives: &mut BTreeMap<String, Vec<u8>>,
        reference: &str,
        key: &str,
    ) -> Result<Vec<u8>, ErrorDetails> {
        let Some((artifact, path)) = reference.split_once("::") else {
            return Err(configuration_error(format!(
                "{key} must be ArtifactName::FileName, not \"{reference}\". Edit your pipeline to fix the \
                 configuration."
            )));
        };
        let instance = input(deploy, artifact, key)?;
        if !archives.contains_key(artifact) {
            let bytes = self.read_artifact(&instance.name, &instance.bucket, &instance.key).await?;
            archives.insert(artifact.to_string(), bytes);
        }
        let archive = archives.get(artifact).map(Vec::as_slice).unwrap_or_default();
        super::neighbour::file(archive, artifact, path)?
            .ok_or_else(|| configuration_error(format!("File [{path}] does not exist in artifact [{artifact}]")))
    }
}

/// The input artifact `name`, which the action must have.
fn input<'a>(deploy: &'a Deploy, name: &str, key: &str) -> Result<&'a ArtifactInstance, ErrorDetails> {
    deploy.inputs.iter().find(|a| &*a.name == name).map(|a| &**a).ok_or_else(|| {
        configuration_error(format!(
            "{key} names the artifact {name}, which is not an input artifact of the action. Edit your pipeline to \
             fix the configuration."
        ))
    })
}

/// A JSON value as CloudFormation takes a parameter: strings as they are, anything else as its JSON.
fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl Stack<'_> {
    /// What the neighbour answered, as AWS passes CloudFormation's errors through (in the AWS SDK for Java's form);
    /// no answer at all names the neighbour and what was attempted.
    fn failed<E>(
        &self,
        what: &str,
        error: &aws_smithy_runtime_api::client::result::SdkError<E, HttpResponse>,
    ) -> ErrorDetails
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let status = error.raw_response().map(|r| r.status().as_u16());
        match (error.code(), status) {
            (Some(code), Some(status)) => job_failed(format!(
                "{} (Service: AmazonCloudFormation; Status Code: {status}; Error Code: {code}; Request ID: {})",
                error.message().unwrap_or(code),
                error.meta().extra("aws_request_id").unwrap_or("none")
            )),
            _ => job_failed(format!(
                "The CloudFormation neighbour ({}) did not answer {what} for stack {}: {}",
                self.endpoint,
                self.deploy.stack,
                super::neighbour::chain(error)
            )),
        }
    }

    /// The stack, if it exists (a deleted stack does not).
    async fn describe(&self) -> Result<Option<StackView>, ErrorDetails> {
        match self.client.describe_stacks().stack_name(&self.deploy.stack).send().await {
            Ok(answer) => Ok(answer.stacks().first().and_then(|stack| {
                let status = stack.stack_status().map(|s| s.as_str().to_string()).unwrap_or_default();
                (status != "DELETE_COMPLETE").then(|| StackView {
                    id: stack.stack_id().unwrap_or_default().to_string(),
                    status,
                    reason: stack.stack_status_reason().map(str::to_string),
                    outputs: stack
                        .outputs()
                        .iter()
                        .filter_map(|o| Some((o.output_key()?.to_string(), o.output_value().unwrap_or("").to_string())))
                        .collect(),
                })
            })),
            Err(error) if error.message().is_some_and(|m| m.contains("does not exist")) => Ok(None),
            Err(error) => Err(self.failed("DescribeStacks", &error)),
        }
    }

    /// Waits until no operation runs on the stack; `None` once it is gone.
    async fn settle(&mut self) -> Result<Option<StackView>, ErrorDetails> {
        loop {
            let view = self.describe().await?;
            match view {
                Some(view) if view.status.ends_with("_IN_PROGRESS") && view.status != "REVIEW_IN_PROGRESS" => {
                    if !self.wait.pause().await {
                        return Err(abandoned());
                    }
                }
                other => return Ok(other),
            }
        }
    }

    /// The first resource that failed in the stack's latest operation, as `logical id (type): reason`.
    async fn first_failure(&self) -> Option<String> {
        let answer = self.client.describe_stack_events().stack_name(&self.deploy.stack).send().await.ok()?;
        // Newest first: the events of the latest operation come before the stack's own *_IN_PROGRESS that began it.
        let mut failure = None;
        for event in answer.stack_events() {
            let status = event.resource_status().map(|s| s.as_str()).unwrap_or_default();
            let is_stack = event.resource_type() == Some("AWS::CloudFormation::Stack");
            if is_stack
                && status.ends_with("_IN_PROGRESS")
                && !status.contains("ROLLBACK")
                && !status.contains("CLEANUP")
            {
                break;
            }
            if status.ends_with("_FAILED") && !is_stack {
                failure = Some(format!(
                    "{} ({}): {}",
                    event.logical_resource_id().unwrap_or_default(),
                    event.resource_type().unwrap_or_default(),
                    event.resource_status_reason().unwrap_or("no reason was given")
                ));
            }
        }
        failure
    }

    /// A settled stack that did not reach `wanted`: the action's failure, naming the stack's status and reason.
    async fn check(&self, view: Option<StackView>, wanted: &[&str]) -> Result<Option<StackView>, ErrorDetails> {
        match view {
            Some(view) if !wanted.contains(&view.status.as_str()) => {
                let reason = match self.first_failure().await {
                    Some(failure) => failure,
                    None => view.reason.clone().unwrap_or_else(|| "No reason was provided.".into()),
                };
                Err(job_failed(format!("Stack {} is in {} state: {reason}", self.deploy.stack, view.status)))
            }
            other => Ok(other),
        }
    }

    async fn create_or_update(&mut self, request: Request, replace: bool) -> Result<Option<StackView>, ErrorDetails> {
        let mut existing = self.describe().await?;
        if replace && existing.as_ref().is_some_and(|s| REPLACEABLE.contains(&s.status.as_str())) {
            existing = self.delete().await?;
        }
        if existing.is_none() {
            let create = deploying!(self.client.create_stack(), self.deploy, request);
            create.send().await.map_err(|e| self.failed("CreateStack", &e))?;
            let view = self.settle().await?;
            return self.check(view, &["CREATE_COMPLETE"]).await;
        }
        let update = deploying!(self.client.update_stack(), self.deploy, request);
        match update.send().await {
            Ok(_) => {}
            // Nothing to change: the stack stays as it is and the action succeeds.
            Err(e) if e.message().is_some_and(|m| m.contains("No updates are to be performed")) => {
                return Ok(existing);
            }
            Err(e) => return Err(self.failed("UpdateStack", &e)),
        }
        let view = self.settle().await?;
        self.check(view, &["UPDATE_COMPLETE"]).await
    }

    /// Deletes the stack (nothing to do if it does not exist) and waits until it is gone.
    async fn delete(&mut self) -> Result<Option<StackView>, ErrorDetails> {
        if self.describe().await?.is_none() {
            return Ok(None);
        }
        let delete =
            self.client.delete_stack().stack_name(&self.deploy.stack).set_role_arn(self.deploy.role_arn.clone());
        delete.send().await.map_err(|e| self.failed("DeleteStack", &e))?;
        let view = self.settle().await?;
        self.check(view, &[]).await
    }

    /// The change set's status, reason and execution status, once it is no longer being created.
    async fn settle_change_set(&mut self) -> Result<(String, String, String), ErrorDetails> {
        loop {
            let describe = self.client.describe_change_set().stack_name(&self.deploy.stack);
            let answer = describe
                .change_set_name(&self.deploy.change_set)
                .send()
                .await
                .map_err(|e| self.failed("DescribeChangeSet", &e))?;
            let status = answer.status().map(|s| s.as_str().to_string()).unwrap_or_default();
            if !status.ends_with("_IN_PROGRESS") && status != "CREATE_PENDING" {
                let execution = answer.execution_status().map(|s| s.as_str().to_string()).unwrap_or_default();
                return Ok((status, answer.status_reason().unwrap_or_default().to_string(), execution));
            }
            if !self.wait.pause().await {
                return Err(abandoned());
            }
        }
    }

    async fn replace_change_set(&mut self, request: Request) -> Result<Option<StackView>, ErrorDetails> {
        let existing = self.describe().await?;
        let kind = match &existing {
            Some(view) if view.status != "REVIEW_IN_PROGRESS" => ChangeSetType::Update,
            _ => ChangeSetType::Create,
        };
        if existing.is_some() {
            // A change set of that name is replaced; none is fine.
            let delete = self.client.delete_change_set().stack_name(&self.deploy.stack);
            let _ = delete.change_set_name(&self.deploy.change_set).send().await;
        }
        let create = self
            .client
            .create_change_set()
            .stack_name(&self.deploy.stack)
            .change_set_name(&self.deploy.change_set)
            .change_set_type(kind)
            .template_body(&request.template)
            .set_parameters(Some(request.parameters))
            .set_capabilities(Some(request.capabilities))
            .set_tags(Some(request.tags))
            .set_role_arn(self.deploy.role_arn.clone());
        create.send().await.map_err(|e| self.failed("CreateChangeSet", &e))?;
        let (status, reason, _) = self.settle_change_set().await?;
        if status == "FAILED" && !no_changes(&reason) {
            return Err(job_failed(format!(
                "Failed to create change set {} for stack {}: {reason}",
                self.deploy.change_set, self.deploy.stack
            )));
        }
        Ok(existing.filter(|view| view.status != "REVIEW_IN_PROGRESS"))
    }

    async fn execute_change_set(&mut self) -> Result<Option<StackView>, ErrorDetails> {
        let (status, reason, execution) = self.settle_change_set().await?;
        if status == "FAILED" && no_changes(&reason) {
            return self.describe().await;
        }
        // Executed already (this work handed out again after a restart): wait for the stack, do not run it twice.
        if !execution.starts_with("EXECUTE_") {
            let execute = self.client.execute_change_set().stack_name(&self.deploy.stack);
            execute
                .change_set_name(&self.deploy.change_set)
                .send()
                .await
                .map_err(|e| self.failed("ExecuteChangeSet", &e))?;
        }
        let view = self.settle().await?;
        match view {
            Some(view) if matches!(view.status.as_str(), "CREATE_COMPLETE" | "UPDATE_COMPLETE" | "IMPORT_COMPLETE") => {
                Ok(Some(view))
            }
            Some(view) => Err(job_failed(format!(
                "Failed to execute change set. Current stack status: {}. Reason: {}",
                view.status,
                view.reason.as_deref().filter(|r| !r.is_empty()).unwrap_or("No reason was provided.")
            ))),
            None => Err(job_failed(format!(
                "Failed to execute change set. The stack {} does not exist.",
                self.deploy.stack
            ))),
        }
    }
}

/// Whether a failed change set failed only because it changes nothing.
fn no_changes(reason: &str) -> bool {
    reason.contains("didn't contain changes") || reason.contains("No updates are to be performed")
}
