//! Structural validation of a pipeline declaration (CreatePipeline, UpdatePipeline), after shape validation.
//!
//! One pass over the typed declaration, in the order a pipeline runs: pipeline-level settings, then stage by stage
//! and, within a stage, runOrder group by runOrder group, tracking which artifacts and variable namespaces earlier
//! actions have made available. The first violation is reported, as AWS reports one at a time. Messages are AWS's
//! own where they are known (behaviour.md §12.2, and real errors quoted in public issue trackers); where AWS's
//! wording is unknown (marked UNCONFIRMED) the message says what is wrong and what is allowed.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};

use crate::protocol::{ApiError, ErrorCode};
use crate::state::catalogue::{ActionType, Catalogue, ConfigurationProperty};
use crate::state::declaration::ConditionKind;
use crate::state::declaration::{
    ActionCategory, ActionDeclaration, ActionOwner, Condition, ConditionResult, ExecutionMode, GitConfiguration,
    PipelineDeclaration, PipelineType, StageDeclaration,
};
use crate::state::{PartitionData, PatternRef, Scope, SecretRef};

/// Stages per pipeline (Appendix B).
pub const MAX_STAGES: usize = 50;
/// Actions per stage (Appendix B).
pub const MAX_ACTIONS_PER_STAGE: usize = 50;
/// Actions per pipeline (Appendix B).
pub const MAX_ACTIONS: usize = 500;

/// What validation needs besides the declaration.
pub struct Env<'a> {
    pub scope: &'a Scope,
    pub catalogue: &'a Catalogue,
    pub data: &'a PartitionData,
}

impl Env<'_> {
    /// The action type with this id as this account sees it: the built-in catalogue (with any UpdateActionType
    /// applied) or the account's custom types, deleted ones excluded.
    pub fn action_type(&self, id: &crate::state::declaration::ActionTypeId) -> Option<Cow<'_, ActionType>> {
        self.data.action_type(self.catalogue, id)
    }
}

/// The outcome of a successful check.
#[derive(Debug, Clone)]
pub struct Checked {
    /// The pipeline's type: as declared, else implied by V2 features, else the previous version's, else V1.
    pub pipeline_type: PipelineType,
    /// `(stage index, action index, configuration key)` of every secret configuration value.
    pub secrets: Vec<SecretRef>,
    /// The compiled `MATCHES` patterns of VariableCheck rules.
    pub patterns: Vec<PatternRef>,
}

/// Validates the structure of `pipeline`. `previous_type` is the current type of the pipeline being updated.
pub fn check(
    pipeline: &PipelineDeclaration,
    previous_type: Option<PipelineType>,
    env: &Env,
) -> Result<Checked, ApiError> {
    let pipeline_type = pipeline_type(pipeline, previous_type)?;
    check_variables(pipeline)?;
    check_artifact_stores(pipeline, env)?;
    check_stage_counts(pipeline)?;
    let mut walk = Walk::new(pipeline, env);
    for (index, stage) in pipeline.stages.iter().enumerate() {
        walk.stage(index, stage)?;
    }
    check_triggers(pipeline)?;
    Ok(Checked { pipeline_type, secrets: walk.secrets, patterns: walk.patterns })
}

fn structure(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidStructureException, message)
}

fn action_error(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidActionDeclarationException, message)
}

fn stage_error(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidStageDeclarationException, message)
}

fn limit(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::LimitExceededException, message)
}

/// The region as AWS names it in action-type messages: `us-east-1` is `US_EAST_1`.
fn region_enum(region: &str) -> String {
    region.to_ascii_uppercase().replace('-', "_")
}

/// The first V2-only feature a declaration uses, as the error a V1 pipeline gets for it.
fn v2_feature(pipeline: &PipelineDeclaration) -> Option<ApiError> {
    if let Some(triggers) = pipeline.triggers.as_deref().filter(|t| !t.is_empty()) {
        let on_tags =
            triggers.iter().flat_map(|t| t.git_configuration.push.iter().flatten()).any(|push| push.tags.is_some());
        // The tag wording is AWS's [real error, cloudposse/terraform-aws-ecs-codepipeline#145]; the general one
        // follows it (UNCONFIRMED).
        return Some(structure(if on_tags {
            "Triggers on tag can only be used with V2 pipelines"
        } else {
            "Triggers can only be used with V2 pipelines"
        }));
    }
    if pipeline.variables.as_deref().is_some_and(|v| !v.is_empty()) {
        return Some(structure("Pipeline-level variables can only be used with V2 pipelines"));
    }
    match pipeline.execution_mode {
        Some(ExecutionMode::Queued) => {
            return Some(structure("Execution mode QUEUED can only be used with V2 pipelines"));
        }
        Some(ExecutionMode::Parallel) => {
            return Some(structure("Execution mode PARALLEL can only be used with V2 pipelines"));
        }
        _ => {}
    }
    for stage in &pipeline.stages {
        if stage.before_entry.is_some() || stage.on_success.is_some() || stage.on_failure.is_some() {
            return Some(structure(format!(
                "Stage conditions (beforeEntry, onSuccess, onFailure) can only be used with V2 pipelines; stage \
                 '{}' declares them",
                stage.name
            )));
        }
        for action in &stage.actions {
            if is_commands(action) {
                return Some(action_error(format!(
                    "The Commands action can only be used with V2 pipelines; action '{}' in stage '{}' uses it",
                    action.name, stage.name
                )));
            }
        }
    }
    None
}

fn is_commands(action: &ActionDeclaration) -> bool {
    action.action_type_id.category == ActionCategory::Compute && action.action_type_id.provider == "Commands"
}

/// V1 with V2 features is refused; an omitted type is implied by V2 features (model documentation), else kept from
/// the previous version (NATIVE), else V1.
fn pipeline_type(pipeline: &PipelineDeclaration, previous: Option<PipelineType>) -> Result<PipelineType, ApiError> {
    let feature = v2_feature(pipeline);
    match (pipeline.pipeline_type, feature) {
        (Some(PipelineType::V1), Some(error)) => Err(error),
        (Some(declared), _) => Ok(declared),
        (None, Some(_)) => Ok(PipelineType::V2),
        (None, None) => Ok(previous.unwrap_or(PipelineType::V1)),
    }
}

fn check_variables(pipeline: &PipelineDeclaration) -> Result<(), ApiError> {
    let mut seen = HashSet::new();
    for variable in pipeline.variables.iter().flatten() {
        if !seen.insert(variable.name.as_str()) {
            return Err(structure(format!(
                "Pipeline variable '{}' is declared more than once; variable names must be unique",
                variable.name
            )));
        }
    }
    Ok(())
}

/// The regions CodePipeline artifact stores may name. The request's own region is always accepted too, so an
/// emulator addressed under a custom region name still works.
const REGIONS: &[&str] = &[
    "af-south-1",
    "ap-east-1",
    "ap-east-2",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-northeast-3",
    "ap-south-1",
    "ap-south-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-southeast-4",
    "ap-southeast-5",
    "ap-southeast-6",
    "ap-southeast-7",
    "ca-central-1",
    "ca-west-1",
    "cn-north-1",
    "cn-northwest-1",
    "eu-central-1",
    "eu-central-2",
    "eu-north-1",
    "eu-south-1",
    "eu-south-2",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "il-central-1",
    "me-central-1",
    "me-south-1",
    "mx-central-1",
    "sa-east-1",
    "us-east-1",
    "us-east-2",
    "us-gov-east-1",
    "us-gov-west-1",
    "us-west-1",
    "us-west-2",
];

fn is_region(region: &str, env: &Env) -> bool {
    region == env.scope.region || REGIONS.contains(&region)
}

fn check_artifact_stores(pipeline: &PipelineDeclaration, env: &Env) -> Result<(), ApiError> {
    match (&pipeline.artifact_store, &pipeline.artifact_stores) {
        (Some(_), Some(_)) => Err(structure(
            "A pipeline must include either artifactStore or artifactStores, but cannot use both; use \
             artifactStores for a pipeline with cross-region actions",
        )),
        (None, None) => Err(structure("A pipeline must include either artifactStore or artifactStores")),
        (Some(_), None) => Ok(()),
        (None, Some(stores)) => {
            for region in stores.keys() {
                if !is_region(region, env) {
                    // AWS's wording [NATIVE].
                    return Err(ApiError::validation(format!(
                        "The region {region} specified in 'pipeline.artifactStores' is not a valid AWS Region."
                    )));
                }
            }
            if !stores.contains_key(&env.scope.region) {
                return Err(structure(format!(
                    "artifactStores must include an artifact store for the pipeline's region ({})",
                    env.scope.region
                )));
            }
            Ok(())
        }
    }
}

fn check_stage_counts(pipeline: &PipelineDeclaration) -> Result<(), ApiError> {
    let stages = pipeline.stages.len();
    if stages < 2 {
        // AWS's wording [real errors, behaviour.md §12.2].
        return Err(structure(format!(
            "Pipeline has only {stages} stage(s). There should be a minimum of 2 stages in a pipeline"
        )));
    }
    if stages > MAX_STAGES {
        return Err(limit(format!(
            "Pipeline has {stages} stages, more than the limit of {MAX_STAGES} stages per pipeline"
        )));
    }
    let actions: usize = pipeline.stages.iter().map(|s| s.actions.len()).sum();
    if actions > MAX_ACTIONS {
        return Err(limit(format!(
            "Pipeline has {actions} actions, more than the limit of {MAX_ACTIONS} actions per pipeline"
        )));
    }
    let mut names = HashSet::new();
    for stage in &pipeline.stages {
        if !names.insert(stage.name.as_str()) {
            return Err(stage_error(format!(
                "Stage name '{}' is used by more than one stage; stage names must be unique in a pipeline",
                stage.name
            )));
        }
    }
    Ok(())
}

/// The state of the walk: what earlier actions made available.
struct Walk<'a> {
    pipeline: &'a PipelineDeclaration,
    env: &'a Env<'a>,
    /// Output artifacts of actions that have run before the current runOrder group.
    available_artifacts: HashSet<&'a str>,
    /// Every output artifact seen so far, to catch duplicates.
    produced: HashSet<&'a str>,
    /// Namespaces of actions that run before the current group.
    available_namespaces: HashSet<&'a str>,
    /// Every namespace seen so far, with where it was declared.
    namespaces: HashMap<&'a str, (&'a str, &'a str)>,
    /// Names of declared pipeline-level variables.
    variables: HashSet<&'a str>,
    secrets: Vec<SecretRef>,
    patterns: Vec<PatternRef>,
}

impl<'a> Walk<'a> {
    fn new(pipeline: &'a PipelineDeclaration, env: &'a Env<'a>) -> Walk<'a> {
        Walk {
            pipeline,
            env,
            available_artifacts: HashSet::new(),
            produced: HashSet::new(),
            available_namespaces: HashSet::new(),
            namespaces: HashMap::new(),
            variables: pipeline.variables.iter().flatten().map(|v| v.name.as_str()).collect(),
            secrets: Vec::new(),
            patterns: Vec::new(),
        }
    }

    fn stage(&mut self, stage_index: usize, stage: &'a StageDeclaration) -> Result<(), ApiError> {
        if stage.blockers.as_deref().is_some_and(|b| !b.is_empty()) {
            return Err(ApiError::new(
                ErrorCode::InvalidBlockerDeclarationException,
                format!("Stage '{}' declares blockers, which are reserved for future use", stage.name),
            ));
        }
        if stage.actions.is_empty() {
            return Err(stage_error(format!(
                "Stage '{}' has no actions; a stage must contain at least one action",
                stage.name
            )));
        }
        if stage.actions.len() > MAX_ACTIONS_PER_STAGE {
            return Err(limit(format!(
                "Stage '{}' has {} actions, more than the limit of {MAX_ACTIONS_PER_STAGE} actions per stage",
                stage.name,
                stage.actions.len()
            )));
        }
        let mut names = HashSet::new();
        for action in &stage.actions {
            if !names.insert(action.name.as_str()) {
                return Err(action_error(format!(
                    "Action name '{}' is used more than once in stage '{}'; action names must be unique in a stage",
                    action.name, stage.name
                )));
            }
        }
        self.source_placement(stage_index, stage)?;
        if let Some(before) = &stage.before_entry {
            let allowed = [ConditionResult::Fail, ConditionResult::Skip];
            self.conditions(stage_index, stage, ConditionKind::BeforeEntry, &before.conditions, &allowed)?;
        }

        // runOrder groups, in ascending order; actions of one group run in parallel and cannot see each other.
        let mut groups: BTreeMap<i32, Vec<usize>> = BTreeMap::new();
        for (index, action) in stage.actions.iter().enumerate() {
            groups.entry(action.order()).or_default().push(index);
        }
        for indices in groups.values() {
            for &index in indices {
                self.action(stage_index, stage, index, &stage.actions[index])?;
            }
            for &index in indices {
                let action = &stage.actions[index];
                for output in action.output_artifacts.iter().flatten() {
                    self.available_artifacts.insert(output.name.as_str());
                }
                if let Some(namespace) = &action.namespace {
                    self.available_namespaces.insert(namespace.as_str());
                }
            }
        }

        if let Some(success) = &stage.on_success {
            let allowed = [ConditionResult::Rollback, ConditionResult::Fail];
            self.conditions(stage_index, stage, ConditionKind::OnSuccess, &success.conditions, &allowed)?;
        }
        if let Some(failure) = &stage.on_failure {
            self.on_failure(stage_index, stage, failure)?;
        }
        Ok(())
    }

    fn source_placement(&self, stage_index: usize, stage: &StageDeclaration) -> Result<(), ApiError> {
        let is_source = |a: &ActionDeclaration| a.action_type_id.category == ActionCategory::Source;
        if stage_index == 0 {
            if !stage.actions.iter().all(is_source) {
                // AWS's wording [real CloudFormation error, aws-cloudformation/cfn-lint#29].
                return Err(structure("Pipeline should start with a stage that only contains source actions."));
            }
        } else if let Some(action) = stage.actions.iter().find(|a| is_source(a)) {
            return Err(structure(format!(
                "Source actions can only be declared in the first stage of a pipeline; stage '{}' declares source \
                 action '{}'",
                stage.name, action.name
            )));
        }
        Ok(())
    }

    fn action(
        &mut self,
        stage_index: usize,
        stage: &'a StageDeclaration,
        action_index: usize,
        action: &'a ActionDeclaration,
    ) -> Result<(), ApiError> {
        let id = &action.action_type_id;
        let Some(action_type) = self.env.action_type(id) else {
            // AWS's wording [NATIVE].
            return Err(action_error(format!(
                "{} in action '{}' is not available in region '{}'",
                ActionType::describe(id),
                action.name,
                region_enum(&self.env.scope.region)
            )));
        };
        self.compute_fields(action)?;
        if action.timeout_in_minutes.is_some() && !(id.category == ActionCategory::Approval && id.provider == "Manual")
        {
            return Err(action_error(format!(
                "Action '{}' sets timeoutInMinutes, which only manual approval actions support",
                action.name
            )));
        }
        self.action_region(stage, action)?;
        artifact_counts(action, &action_type)?;
        configuration(action, &action_type)?;
        for (key, value) in action.configuration.iter().flatten() {
            if action_type.property(key).is_some_and(|p| p.secret) && !value.is_empty() {
                self.secrets.push((stage_index, action_index, key.clone()));
            }
        }
        self.inputs(stage, action)?;
        self.outputs(action)?;
        self.namespace(stage, action)?;
        self.references(stage, action)?;
        Ok(())
    }

    /// `commands`, `outputVariables`, `environmentVariables` and output `files` belong to the Commands action.
    fn compute_fields(&self, action: &ActionDeclaration) -> Result<(), ApiError> {
        if is_commands(action) {
            if action.commands.as_deref().is_none_or(<[String]>::is_empty) {
                return Err(action_error(format!(
                    "The Commands action '{}' must declare commands to run",
                    action.name
                )));
            }
            return Ok(());
        }
        let has_files = action.output_artifacts.iter().flatten().any(|o| o.files.is_some());
        if action.commands.is_some() || has_files {
            // AWS's wording, also for output artifact files [real error, aws/aws-cdk#38843].
            return Err(action_error(format!(
                "The following action cannot contain a commands field: {}. To use the commands field, use a \
                 compute action.",
                action.name
            )));
        }
        for (field, present) in [
            ("outputVariables", action.output_variables.is_some()),
            ("environmentVariables", action.environment_variables.is_some()),
        ] {
            if present {
                return Err(action_error(format!(
                    "The following action cannot contain a {field} field: {}. To use the {field} field, use a \
                     compute action.",
                    action.name
                )));
            }
        }
        Ok(())
    }

    fn action_region(&self, stage: &StageDeclaration, action: &ActionDeclaration) -> Result<(), ApiError> {
        let Some(region) = action.region.as_deref() else {
            return Ok(());
        };
        if !is_region(region, self.env) {
            return Err(ApiError::validation(format!(
                "The region {region} specified in action '{}' is not a valid AWS Region.",
                action.name
            )));
        }
        if region == self.env.scope.region {
            return Ok(());
        }
        let id = &action.action_type_id;
        if id.category == ActionCategory::Source || id.owner != ActionOwner::Aws {
            return Err(action_error(format!(
                "Action '{}' cannot run in region {region}: source actions and actions owned by ThirdParty or \
                 Custom must run in the pipeline's region ({})",
                action.name, self.env.scope.region
            )));
        }
        let has_store = self.pipeline.artifact_stores.as_ref().is_some_and(|s| s.contains_key(region));
        if !has_store {
            return Err(structure(format!(
                "Action '{}' in stage '{}' runs in region {region}; a cross-region action needs artifactStores \
                 with an artifact store in {region}",
                action.name, stage.name
            )));
        }
        Ok(())
    }

    fn inputs(&self, stage: &StageDeclaration, action: &ActionDeclaration) -> Result<(), ApiError> {
        for input in action.input_artifacts.iter().flatten() {
            if !self.available_artifacts.contains(input.name.as_str()) {
                // UNCONFIRMED wording.
                return Err(structure(format!(
                    "Input artifact '{}' of action '{}' in stage '{}' is not the output of an action that runs \
                     before it (in an earlier stage, or earlier in the same stage by runOrder)",
                    input.name, action.name, stage.name
                )));
            }
        }
        Ok(())
    }

    fn outputs(&mut self, action: &'a ActionDeclaration) -> Result<(), ApiError> {
        for output in action.output_artifacts.iter().flatten() {
            if !self.produced.insert(output.name.as_str()) {
                // AWS's wording [behaviour.md §12.2, medium confidence].
                return Err(structure(format!(
                    "Output Artifact Bundle name must be unique within the pipeline. {} has been used more than \
                     once.",
                    output.name
                )));
            }
        }
        Ok(())
    }

    fn namespace(&mut self, stage: &'a StageDeclaration, action: &'a ActionDeclaration) -> Result<(), ApiError> {
        let Some(namespace) = action.namespace.as_deref() else {
            return Ok(());
        };
        if namespace == "codepipeline" || (namespace == "variables" && !self.variables.is_empty()) {
            return Err(action_error(format!(
                "Action '{}' in stage '{}' uses the reserved namespace '{namespace}'",
                action.name, stage.name
            )));
        }
        if self.namespaces.insert(namespace, (stage.name.as_str(), action.name.as_str())).is_some() {
            // AWS's wording [real errors, aws/aws-cdk#6111 and #16142].
            return Err(action_error(format!(
                "Namespaces must be unique across the pipeline definition. The following occur more than once in \
                 the pipeline.\nStageName=[{}], ActionName=[{}], Namespace=[{namespace}]",
                stage.name, action.name
            )));
        }
        if self.produced.contains(namespace) {
            return Err(action_error(format!(
                "Namespace '{namespace}' of action '{}' in stage '{}' has the name of an output artifact; \
                 namespaces and artifact names must differ",
                action.name, stage.name
            )));
        }
        Ok(())
    }

    /// Every `#{namespace.key}` in the action's configuration, commands and environment variables must name a
    /// namespace available when the action runs.
    fn references(&self, stage: &StageDeclaration, action: &ActionDeclaration) -> Result<(), ApiError> {
        let texts = action
            .configuration
            .iter()
            .flatten()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .chain(action.commands.iter().flatten().map(|c| ("commands", c.as_str())))
            .chain(action.environment_variables.iter().flatten().map(|e| (e.name.as_str(), e.value.as_str())));
        for (key, text) in texts {
            self.check_references(&stage.name, &action.name, key, text)?;
        }
        Ok(())
    }

    fn check_references(&self, stage: &str, action: &str, key: &str, text: &str) -> Result<(), ApiError> {
        for reference in variable_references(text) {
            let (namespace, name) = reference.split_once('.').unwrap_or((reference, ""));
            let known = match namespace {
                "codepipeline" => !name.is_empty(),
                "variables" if !self.variables.is_empty() => {
                    if !self.variables.contains(name) {
                        return Err(action_error(format!(
                            "The following pipeline variables are referenced but not declared in the pipeline.\n\
                             StageName=[{stage}], ActionName=[{action}], ActionConfigurationKey=[{key}], \
                             VariableReferenceText=[{reference}]"
                        )));
                    }
                    true
                }
                _ => !name.is_empty() && self.available_namespaces.contains(namespace),
            };
            if !known {
                // AWS's wording [NATIVE].
                return Err(action_error(format!(
                    "Valid format for a pipeline execution variable reference is a namespace and a key separated by \
                     a period (.). The following pipeline execution variables are referencing a namespace that does \
                     not exist.\nStageName=[{stage}], ActionName=[{action}], ActionConfigurationKey=[{key}], \
                     VariableReferenceText=[{reference}]"
                )));
            }
        }
        Ok(())
    }

    fn conditions(
        &mut self,
        stage_index: usize,
        stage: &StageDeclaration,
        condition_kind: ConditionKind,
        conditions: &[Condition],
        allowed: &[ConditionResult],
    ) -> Result<(), ApiError> {
        let kind = match condition_kind {
            ConditionKind::BeforeEntry => "beforeEntry",
            ConditionKind::OnSuccess => "onSuccess",
            ConditionKind::OnFailure => "onFailure",
        };
        for condition in conditions {
            let result = condition.result.unwrap_or(ConditionResult::Fail);
            if !allowed.contains(&result) {
                return Err(stage_error(format!(
                    "The {kind} condition of stage '{}' has result {}, which {kind} conditions do not support",
                    stage.name,
                    result_name(result)
                )));
            }
            if result == ConditionResult::Rollback {
                self.rollback_allowed(stage)?;
            }
            self.rules(stage, condition, result)?;
        }
        // The engine evaluates the first condition of each kind (the model allows one).
        if let Some(rules) = conditions.first().and_then(|c| c.rules.as_deref()) {
            for (rule_index, rule) in rules.iter().enumerate() {
                if let Some(pattern) = matches_pattern(stage, rule)? {
                    self.patterns.push((stage_index, condition_kind, rule_index, pattern));
                }
            }
        }
        Ok(())
    }

    fn on_failure(
        &mut self,
        stage_index: usize,
        stage: &StageDeclaration,
        failure: &crate::state::declaration::FailureConditions,
    ) -> Result<(), ApiError> {
        let result = failure.result;
        if result == Some(ConditionResult::Skip) {
            return Err(stage_error(format!(
                "The onFailure condition of stage '{}' has result SKIP, which onFailure conditions do not support",
                stage.name
            )));
        }
        if failure.retry_configuration.is_some() && result != Some(ConditionResult::Retry) {
            return Err(stage_error(format!(
                "Stage '{}' declares an onFailure retryConfiguration, which requires the result RETRY",
                stage.name
            )));
        }
        if result == Some(ConditionResult::Rollback) {
            self.rollback_allowed(stage)?;
        }
        let allowed = [ConditionResult::Rollback, ConditionResult::Fail, ConditionResult::Retry];
        let conditions = failure.conditions.as_deref().unwrap_or_default();
        self.conditions(stage_index, stage, ConditionKind::OnFailure, conditions, &allowed)
    }

    fn rollback_allowed(&self, stage: &StageDeclaration) -> Result<(), ApiError> {
        if self.pipeline.mode() == ExecutionMode::Parallel {
            // The docs say rollback is unavailable in PARALLEL mode; the exception is UNCONFIRMED.
            return Err(structure(format!(
                "Stage '{}' declares a ROLLBACK result, but rollback is not supported for pipelines in PARALLEL \
                 execution mode",
                stage.name
            )));
        }
        Ok(())
    }

    fn rules(&self, stage: &StageDeclaration, condition: &Condition, result: ConditionResult) -> Result<(), ApiError> {
        let mut names = HashSet::new();
        for rule in condition.rules.iter().flatten() {
            if !names.insert(rule.name.as_str()) {
                return Err(stage_error(format!(
                    "Rule name '{}' is used more than once in a condition of stage '{}'",
                    rule.name, stage.name
                )));
            }
            let id = &rule.rule_type_id;
            let version = id.version.as_deref().unwrap_or("1");
            let rule_type = (id.category == "Rule" && id.owner.as_deref().unwrap_or("AWS") == "AWS")
                .then(|| self.env.catalogue.rule_type(&id.provider, version))
                .flatten();
            let Some(rule_type) = rule_type else {
                return Err(stage_error(format!(
                    "RuleType (Category: '{}', Provider: '{}', Owner: '{}', Version: '{version}') in rule '{}' is \
                     not available in region '{}'",
                    id.category,
                    id.provider,
                    id.owner.as_deref().unwrap_or("AWS"),
                    rule.name,
                    region_enum(&self.env.scope.region)
                )));
            };
            if result == ConditionResult::Skip && !matches!(id.provider.as_str(), "LambdaInvoke" | "VariableCheck") {
                return Err(stage_error(format!(
                    "Rule '{}' of stage '{}' uses {}, which cannot be used in a condition with result SKIP; only \
                     LambdaInvoke and VariableCheck rules can",
                    rule.name, stage.name, id.provider
                )));
            }
            if id.provider == "Commands" && rule.commands.as_deref().is_none_or(<[String]>::is_empty) {
                return Err(stage_error(format!("The Commands rule '{}' must declare commands to run", rule.name)));
            }
            let config = rule.configuration.clone().unwrap_or_default();
            check_keys(&rule_type.rule_configuration_properties, &config, "Rule", &rule.name, stage_error)?;
            for (key, text) in &config {
                self.check_references(&stage.name, &rule.name, key, text)?;
            }
        }
        Ok(())
    }
}

fn result_name(result: ConditionResult) -> &'static str {
    match result {
        ConditionResult::Rollback => "ROLLBACK",
        ConditionResult::Fail => "FAIL",
        ConditionResult::Retry => "RETRY",
        ConditionResult::Skip => "SKIP",
    }
}

fn artifact_counts(action: &ActionDeclaration, action_type: &ActionType) -> Result<(), ApiError> {
    let inputs = action.input_artifacts.as_ref().map_or(0, Vec::len);
    let outputs = action.output_artifacts.as_ref().map_or(0, Vec::len);
    for (count, details, kind) in [
        (inputs, action_type.input_artifact_details, "input"),
        (outputs, action_type.output_artifact_details, "output"),
    ] {
        let count = i32::try_from(count).unwrap_or(i32::MAX);
        // AWS's wording [NATIVE]; the maximum twin mirrors it.
        if count < details.minimum_count {
            return Err(action_error(format!(
                "Action {} declares {count} {kind} artifacts which is less than the minimum count ({})",
                action.name, details.minimum_count
            )));
        }
        if count > details.maximum_count {
            return Err(action_error(format!(
                "Action {} declares {count} {kind} artifacts which is greater than the maximum count ({})",
                action.name, details.maximum_count
            )));
        }
    }
    Ok(())
}

fn configuration(action: &ActionDeclaration, action_type: &ActionType) -> Result<(), ApiError> {
    let empty = BTreeMap::new();
    let config = action.configuration.as_ref().unwrap_or(&empty);
    check_keys(&action_type.action_configuration_properties, config, "Action", &action.name, action_error)?;
    if action.action_type_id.owner == ActionOwner::Custom {
        for property in action_type.action_configuration_properties.iter().filter(|p| p.is_queryable()) {
            if let Some(value) = config.get(&property.name) {
                let valid =
                    value.len() <= 20 && value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
                if !valid {
                    return Err(action_error(format!(
                        "The value of the queryable property '{}' of action '{}' must be at most 20 characters of \
                         letters, digits, underscores and hyphens",
                        property.name, action.name
                    )));
                }
            }
        }
    }
    Ok(())
}

/// Required keys present and no unknown keys, with AWS's messages [NATIVE].
fn check_keys(
    properties: &[ConfigurationProperty],
    config: &BTreeMap<String, String>,
    what: &str,
    name: &str,
    error: fn(String) -> ApiError,
) -> Result<(), ApiError> {
    for property in properties.iter().filter(|p| p.required) {
        if !config.contains_key(&property.name) {
            return Err(error(format!(
                "{what} configuration for {} '{name}' is missing required configuration '{}'",
                what.to_ascii_lowercase(),
                property.name
            )));
        }
    }
    for key in config.keys() {
        if !properties.iter().any(|p| &p.name == key) {
            return Err(error(format!(
                "{what} configuration for {} '{name}' contains unknown configuration '{key}'",
                what.to_ascii_lowercase()
            )));
        }
    }
    Ok(())
}

fn check_triggers(pipeline: &PipelineDeclaration) -> Result<(), ApiError> {
    let Some(triggers) = pipeline.triggers.as_deref() else {
        return Ok(());
    };
    let first = pipeline.stages.first().map(|s| s.actions.as_slice()).unwrap_or_default();
    let mut used = HashSet::new();
    for trigger in triggers {
        let git = &trigger.git_configuration;
        let is_connection = first.iter().any(|a| {
            a.name == git.source_action_name
                && a.action_type_id.category == ActionCategory::Source
                && a.action_type_id.provider == "CodeStarSourceConnection"
        });
        if !is_connection || !used.insert(git.source_action_name.as_str()) {
            // AWS's wording, its typo included [real error, aws/aws-cdk#28694].
            return Err(structure(
                "Triggers for connection must reference a CodeStarSourceConnection action. Note that when you \
                 specify a trigger, you cant specify more than one trigger per source action.",
            ));
        }
        if !valid_filter_combination(git) {
            // AWS's wording [real error, hashicorp/terraform-provider-aws#43105].
            return Err(structure(
                "The trigger configuration for the source action is not valid. Make sure to choose valid filter \
                 combinations.",
            ));
        }
    }
    Ok(())
}

/// Push filters: tags alone, branches alone, or branches with file paths. Pull-request filters: branches,
/// optionally with file paths. At least one filter list must be given.
fn valid_filter_combination(git: &GitConfiguration) -> bool {
    let push_ok = git.push.iter().flatten().all(|push| {
        matches!((&push.tags, &push.branches, &push.file_paths), (Some(_), None, None) | (None, Some(_), _))
    });
    let pull_ok = git.pull_request.iter().flatten().all(|pr| pr.branches.is_some());
    push_ok && pull_ok && (git.push.is_some() || git.pull_request.is_some())
}

/// The texts of the `#{...}` references in `text`, without the braces.
pub fn variable_references(text: &str) -> Vec<&str> {
    crate::engine::variables::references(text).map(|r| r.text).collect()
}

/// The compiled `MATCHES` pattern of a VariableCheck rule, when the rule has one known in advance. The pattern must
/// be valid and small when the operator is `MATCHES`; when the operator is itself a variable, a pattern that
/// compiles is kept for the case it resolves to `MATCHES`. UNCONFIRMED: whether AWS allows variables in a MATCHES
/// pattern; here it does not, so that no pattern is compiled while an execution runs.
fn matches_pattern(
    stage: &StageDeclaration,
    rule: &crate::state::declaration::RuleDeclaration,
) -> Result<Option<regex::Regex>, ApiError> {
    if rule.rule_type_id.provider != "VariableCheck" {
        return Ok(None);
    }
    let config = rule.configuration.as_ref();
    let operator = config.and_then(|c| c.get("Operator")).map_or("", String::as_str);
    let Some(value) = config.and_then(|c| c.get("Value")) else { return Ok(None) };
    let operator_is_variable = operator.contains("#{");
    if operator != "MATCHES" && !operator_is_variable {
        return Ok(None);
    }
    let refuse = |why: String| {
        Err(stage_error(format!(
            "The MATCHES pattern of VariableCheck rule '{}' in stage '{}' {why}",
            rule.name, stage.name
        )))
    };
    if value.contains("#{") {
        return if operator_is_variable {
            Ok(None)
        } else {
            refuse("contains a variable reference; a MATCHES pattern must be a literal regular expression".into())
        };
    }
    match crate::engine::rules::compile_pattern(value) {
        Ok(pattern) => Ok(Some(pattern)),
        Err(_) if operator_is_variable => Ok(None),
        Err(e) => refuse(format!("is not a regular expression this emulator accepts: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_extracted() {
        assert_eq!(
            variable_references("a #{x.y} b #{codepipeline.PipelineExecutionId}"),
            ["x.y", "codepipeline.PipelineExecutionId"]
        );
        assert_eq!(variable_references("#{unterminated"), Vec::<&str>::new());
        assert_eq!(variable_references("#{}"), [""]);
        assert_eq!(variable_references("plain"), Vec::<&str>::new());
    }

    #[test]
    fn region_names_in_aws_enum_form() {
        assert_eq!(region_enum("us-east-1"), "US_EAST_1");
        assert_eq!(region_enum("ap-southeast-2"), "AP_SOUTHEAST_2");
    }
}
