//! The typed pipeline declaration: `PipelineDeclaration` of the model and everything inside it.
//!
//! These types are both the input of CreatePipeline/UpdatePipeline and what GetPipeline echoes, so a member a
//! client left out stays out (`Option`), except where AWS fills a default on echo ([`PipelineDeclaration::with_defaults`]).
//! Requests are validated against the model before they are deserialized here, so enum values and required
//! members are already known to be present and well-formed.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `PipelineDeclaration`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PipelineDeclaration {
    pub name: String,
    pub role_arn: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_store: Option<ArtifactStore>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_stores: Option<BTreeMap<String, ArtifactStore>>,
    pub stages: Vec<StageDeclaration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_mode: Option<ExecutionMode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline_type: Option<PipelineType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variables: Option<Vec<PipelineVariableDeclaration>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub triggers: Option<Vec<PipelineTriggerDeclaration>>,
}

impl PipelineDeclaration {
    /// The triggers AWS adds to a V2 pipeline that declares none (integrations.md §4.6): for each connection source
    /// action that detects changes, a push trigger on its `BranchName`. UNCONFIRMED shape; GetPipeline shows them
    /// so that tools reading the computed triggers (Terraform's `trigger_all`) see what AWS would add. `None` when
    /// the pipeline declares triggers, is V1, or has no such action.
    pub fn default_triggers(&self) -> Option<Vec<PipelineTriggerDeclaration>> {
        if self.triggers.as_ref().is_some_and(|t| !t.is_empty()) || self.pipeline_type != Some(PipelineType::V2) {
            return None;
        }
        let first = self.stages.first()?;
        let defaults: Vec<PipelineTriggerDeclaration> = first
            .actions
            .iter()
            .filter(|a| a.action_type_id.category == ActionCategory::Source)
            .filter(|a| a.action_type_id.provider == "CodeStarSourceConnection")
            .filter_map(|a| {
                let config = a.configuration.as_ref()?;
                let detects = config.get("DetectChanges").is_none_or(|v| !v.eq_ignore_ascii_case("false"));
                let branch = config.get("BranchName").filter(|b| detects && !b.is_empty())?;
                let branches = GitFilterCriteria { includes: Some(vec![branch.clone()]), excludes: None };
                Some(PipelineTriggerDeclaration {
                    provider_type: "CodeStarSourceConnection".into(),
                    git_configuration: GitConfiguration {
                        source_action_name: a.name.clone(),
                        push: Some(vec![GitPushFilter { tags: None, branches: Some(branches), file_paths: None }]),
                        pull_request: None,
                    },
                })
            })
            .collect();
        (!defaults.is_empty()).then_some(defaults)
    }

    /// The declaration as AWS echoes it: `runOrder: 1`, `configuration: {}`, `inputArtifacts: []` and
    /// `outputArtifacts: []` on every action, and the pipeline's `version`, `executionMode` and `pipelineType`.
    pub fn with_defaults(mut self, version: i32, pipeline_type: PipelineType) -> PipelineDeclaration {
        self.version = Some(version);
        self.pipeline_type = Some(pipeline_type);
        self.execution_mode.get_or_insert(ExecutionMode::Superseded);
        for stage in &mut self.stages {
            for action in &mut stage.actions {
                action.run_order.get_or_insert(1);
                action.configuration.get_or_insert_with(BTreeMap::new);
                action.input_artifacts.get_or_insert_with(Vec::new);
                action.output_artifacts.get_or_insert_with(Vec::new);
            }
        }
        self
    }

    /// The execution mode, defaulting as AWS does.
    pub fn mode(&self) -> ExecutionMode {
        self.execution_mode.unwrap_or(ExecutionMode::Superseded)
    }
}

/// `ArtifactStore`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactStore {
    #[serde(rename = "type")]
    pub store_type: String,
    pub location: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption_key: Option<EncryptionKey>,
}

/// `EncryptionKey`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncryptionKey {
    pub id: String,
    #[serde(rename = "type")]
    pub key_type: String,
}

/// `StageDeclaration`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StageDeclaration {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blockers: Option<Vec<BlockerDeclaration>>,
    pub actions: Vec<ActionDeclaration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_failure: Option<FailureConditions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_success: Option<SuccessConditions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before_entry: Option<BeforeEntryConditions>,
}

/// `BlockerDeclaration` ("reserved for future use" in the model).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockerDeclaration {
    pub name: String,
    #[serde(rename = "type")]
    pub blocker_type: String,
}

/// `ActionDeclaration`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionDeclaration {
    pub name: String,
    pub action_type_id: ActionTypeId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_order: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configuration: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commands: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_artifacts: Option<Vec<OutputArtifact>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_artifacts: Option<Vec<InputArtifact>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_variables: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_in_minutes: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment_variables: Option<Vec<EnvironmentVariable>>,
}

impl ActionDeclaration {
    /// The action's run order, defaulting to 1.
    pub fn order(&self) -> i32 {
        self.run_order.unwrap_or(1)
    }

    /// Whether a source action detects changes by polling: `PollForSourceChanges` `true` in any letter case, or
    /// absent (AWS's default for S3 and CodeCommit; `False`, `yes`, `1` do not poll); ECR never polls.
    pub fn polls(&self) -> bool {
        let value = self.configuration.as_ref().and_then(|c| c.get("PollForSourceChanges"));
        self.action_type_id.provider != "ECR" && value.is_none_or(|v| v.eq_ignore_ascii_case("true"))
    }

    /// Whether it is an S3 source action (`Source/AWS/S3`).
    pub fn is_s3_source(&self) -> bool {
        let id = &self.action_type_id;
        id.category == ActionCategory::Source && id.owner == ActionOwner::Aws && id.provider == "S3"
    }
}

/// Which of a stage's conditions: the entry condition, or the one checked on success or on failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ConditionKind {
    BeforeEntry,
    OnSuccess,
    OnFailure,
}

/// `ActionTypeId`: category, owner, provider and version of an action type. AWS writes it with a
/// `"__type": "ActionTypeId"` member on the wire (raw responses of GetPipeline, CreatePipeline, UpdatePipeline and
/// ListActionExecutions show it; SDKs ignore it), and so does the emulator; requests may carry it too.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
pub struct ActionTypeId {
    pub category: ActionCategory,
    pub owner: ActionOwner,
    pub provider: String,
    pub version: String,
}

impl Serialize for ActionTypeId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut out = serializer.serialize_struct("ActionTypeId", 5)?;
        out.serialize_field("__type", "ActionTypeId")?;
        out.serialize_field("category", &self.category)?;
        out.serialize_field("owner", &self.owner)?;
        out.serialize_field("provider", &self.provider)?;
        out.serialize_field("version", &self.version)?;
        out.end()
    }
}

/// `ActionCategory`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ActionCategory {
    Source,
    Build,
    Deploy,
    Test,
    Invoke,
    Approval,
    Compute,
}

impl ActionCategory {
    /// The category's wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionCategory::Source => "Source",
            ActionCategory::Build => "Build",
            ActionCategory::Deploy => "Deploy",
            ActionCategory::Test => "Test",
            ActionCategory::Invoke => "Invoke",
            ActionCategory::Approval => "Approval",
            ActionCategory::Compute => "Compute",
        }
    }
}

/// `ActionOwner`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ActionOwner {
    #[serde(rename = "AWS")]
    Aws,
    ThirdParty,
    Custom,
}

impl ActionOwner {
    /// The owner's wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionOwner::Aws => "AWS",
            ActionOwner::ThirdParty => "ThirdParty",
            ActionOwner::Custom => "Custom",
        }
    }
}

/// `OutputArtifact`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputArtifact {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<Vec<String>>,
}

/// `InputArtifact`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputArtifact {
    pub name: String,
}

/// `EnvironmentVariable` of the Commands action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvironmentVariable {
    pub name: String,
    pub value: String,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub variable_type: Option<String>,
}

/// `FailureConditions` (`onFailure`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FailureConditions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<ConditionResult>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_configuration: Option<RetryConfiguration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<Condition>>,
}

impl FailureConditions {
    /// The result that applies to every failure: the `result` of an onFailure without conditions.
    pub fn unconditional_result(&self) -> Option<ConditionResult> {
        self.conditions.as_ref().is_none_or(Vec::is_empty).then_some(self.result).flatten()
    }
}

impl StageDeclaration {
    /// The condition of `kind`, if the stage declares one with rules (the model allows exactly one per kind).
    pub fn condition(&self, kind: ConditionKind) -> Option<&Condition> {
        let conditions = match kind {
            ConditionKind::BeforeEntry => self.before_entry.as_ref().map(|c| &c.conditions),
            ConditionKind::OnSuccess => self.on_success.as_ref().map(|c| &c.conditions),
            ConditionKind::OnFailure => self.on_failure.as_ref().and_then(|c| c.conditions.as_ref()),
        };
        conditions.and_then(|c| c.first()).filter(|c| c.rules.as_ref().is_some_and(|r| !r.is_empty()))
    }
}

/// `RetryConfiguration`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetryConfiguration {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_mode: Option<StageRetryMode>,
}

/// `SuccessConditions` (`onSuccess`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SuccessConditions {
    pub conditions: Vec<Condition>,
}

/// `BeforeEntryConditions` (`beforeEntry`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BeforeEntryConditions {
    pub conditions: Vec<Condition>,
}

/// `Condition`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Condition {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<ConditionResult>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules: Option<Vec<RuleDeclaration>>,
}

/// `Result`: what happens when a condition's rules fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ConditionResult {
    Rollback,
    Fail,
    Retry,
    Skip,
}

/// `StageRetryMode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StageRetryMode {
    FailedActions,
    AllActions,
}

/// `RuleDeclaration`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleDeclaration {
    pub name: String,
    pub rule_type_id: RuleTypeId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configuration: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commands: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_artifacts: Option<Vec<InputArtifact>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_in_minutes: Option<i32>,
}

/// `RuleTypeId`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RuleTypeId {
    pub category: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    pub provider: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// `PipelineVariableDeclaration`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PipelineVariableDeclaration {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// `PipelineTriggerDeclaration`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PipelineTriggerDeclaration {
    pub provider_type: String,
    pub git_configuration: GitConfiguration,
}

/// `GitConfiguration`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GitConfiguration {
    pub source_action_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push: Option<Vec<GitPushFilter>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_request: Option<Vec<GitPullRequestFilter>>,
}

/// `GitPushFilter`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GitPushFilter {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<GitFilterCriteria>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branches: Option<GitFilterCriteria>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_paths: Option<GitFilterCriteria>,
}

/// `GitPullRequestFilter`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GitPullRequestFilter {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branches: Option<GitFilterCriteria>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_paths: Option<GitFilterCriteria>,
}

/// `GitTagFilterCriteria`, `GitBranchFilterCriteria` and `GitFilePathFilterCriteria`, which share one shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GitFilterCriteria {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub includes: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub excludes: Option<Vec<String>>,
}

/// `ExecutionMode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ExecutionMode {
    Queued,
    Superseded,
    Parallel,
}

/// `PipelineType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PipelineType {
    V1,
    V2,
}

/// `WebhookDefinition`. Its authentication members are capitalised on the wire, as in the model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookDefinition {
    pub name: String,
    pub target_pipeline: String,
    pub target_action: String,
    pub filters: Vec<WebhookFilterRule>,
    pub authentication: WebhookAuthenticationType,
    pub authentication_configuration: WebhookAuthConfiguration,
}

/// `WebhookFilterRule`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookFilterRule {
    pub json_path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_equals: Option<String>,
}

/// `WebhookAuthenticationType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum WebhookAuthenticationType {
    GithubHmac,
    Ip,
    Unauthenticated,
}

/// `WebhookAuthConfiguration`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookAuthConfiguration {
    #[serde(rename = "AllowedIPRange", default, skip_serializing_if = "Option::is_none")]
    pub allowed_ip_range: Option<String>,
    #[serde(rename = "SecretToken", default, skip_serializing_if = "Option::is_none")]
    pub secret_token: Option<String>,
}

/// `Tag`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults_are_filled_and_absent_members_stay_absent() {
        let declared: PipelineDeclaration = serde_json::from_value(json!({
            "name": "p", "roleArn": "arn:aws:iam::123456789012:role/r",
            "artifactStore": {"type": "S3", "location": "bucket"},
            "stages": [{"name": "Source", "actions": [{"name": "S", "actionTypeId":
                {"category": "Source", "owner": "AWS", "provider": "S3", "version": "1"}}]}]
        }))
        .expect("deserializes");
        let echoed = serde_json::to_value(declared.with_defaults(1, PipelineType::V1)).expect("serializes");
        assert_eq!(
            echoed,
            json!({
                "name": "p", "roleArn": "arn:aws:iam::123456789012:role/r",
                "artifactStore": {"type": "S3", "location": "bucket"},
                "stages": [{"name": "Source", "actions": [{"name": "S", "actionTypeId":
                    {"__type": "ActionTypeId", "category": "Source", "owner": "AWS", "provider": "S3", "version": "1"},
                    "runOrder": 1, "configuration": {}, "outputArtifacts": [], "inputArtifacts": []}]}],
                "version": 1, "executionMode": "SUPERSEDED", "pipelineType": "V1"
            })
        );
    }

    #[test]
    fn enums_use_wire_names() {
        assert_eq!(serde_json::to_value(ExecutionMode::Parallel).expect("ok"), json!("PARALLEL"));
        assert_eq!(serde_json::to_value(StageRetryMode::FailedActions).expect("ok"), json!("FAILED_ACTIONS"));
        assert_eq!(serde_json::to_value(ConditionResult::Rollback).expect("ok"), json!("ROLLBACK"));
        assert_eq!(serde_json::to_value(ActionOwner::Aws).expect("ok"), json!("AWS"));
        assert_eq!(serde_json::to_value(PipelineType::V2).expect("ok"), json!("V2"));
        assert_eq!(serde_json::to_value(WebhookAuthenticationType::GithubHmac).expect("ok"), json!("GITHUB_HMAC"));
        let config = WebhookAuthConfiguration { allowed_ip_range: Some("10.0.0.0/8".into()), secret_token: None };
        assert_eq!(serde_json::to_value(config).expect("ok"), json!({"AllowedIPRange": "10.0.0.0/8"}));
    }
}
