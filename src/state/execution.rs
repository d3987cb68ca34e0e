//! The runtime state of pipelines: executions, stage runs, action executions, transitions.
//!
//! These are plain data; `engine` moves them. Everything an API reads (GetPipelineState, GetPipelineExecution,
//! ListPipelineExecutions, ListActionExecutions) is derived from here.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use serde::Serialize;
use uuid::Uuid;

use super::declaration::ConditionKind;
use super::declaration::{ActionDeclaration, ExecutionMode, RuleDeclaration};
use super::tracked::{TrackedMap, TrackedVec};
use super::{Definition, Timestamp};

/// `PipelineExecutionStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
pub enum ExecutionStatus {
    Cancelled,
    InProgress,
    Stopped,
    Stopping,
    Succeeded,
    Superseded,
    Failed,
}

impl ExecutionStatus {
    /// Whether the execution can still change.
    pub fn is_active(self) -> bool {
        matches!(self, ExecutionStatus::InProgress | ExecutionStatus::Stopping)
    }
}

/// `StageExecutionStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
pub enum StageStatus {
    Cancelled,
    InProgress,
    Failed,
    Stopped,
    Stopping,
    Succeeded,
    Skipped,
}

impl StageStatus {
    /// Whether an execution in this state occupies (locks) the stage.
    pub fn holds_lock(self) -> bool {
        matches!(self, StageStatus::InProgress | StageStatus::Stopping)
    }
}

/// `ActionExecutionStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
pub enum ActionStatus {
    InProgress,
    Abandoned,
    Succeeded,
    Failed,
}

/// `ExecutionType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ExecutionType {
    Standard,
    Rollback,
}

/// `TriggerType`: what started an execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
pub enum TriggerType {
    CreatePipeline,
    StartPipelineExecution,
    PollForSourceChanges,
    Webhook,
    CloudWatchEvent,
    PutActionRevision,
    WebhookV2,
    ManualRollback,
    AutomatedRollback,
}

/// `ExecutionTrigger`. The detail repeats across executions and is shared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionTrigger {
    pub trigger_type: TriggerType,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trigger_detail: Option<Arc<str>>,
}

/// Whether a list is empty, so that a saved row leaves it out (rows are read back with the default).
fn is_empty<T>(items: &[T]) -> bool {
    items.is_empty()
}

/// Whether a counter is zero, so that a saved row leaves it out.
fn is_zero(count: &u16) -> bool {
    *count == 0
}

/// Looks up an item by its typed position, as `get` and `get_mut` do by `usize`.
pub trait At<P> {
    type Item;
    /// The item at `at`, if there is one.
    fn at(&self, at: P) -> Option<&Self::Item>;
    /// The item at `at`, if there is one, to change.
    fn at_mut(&mut self, at: P) -> Option<&mut Self::Item>;
}

/// Declares a typed position in a vector of the pipeline's runtime state, so that an execution's position cannot be
/// used where an action run's is meant. Positions are stable: the vectors only grow.
macro_rules! position {
    ($(#[$doc:meta])* $name:ident in $item:ty) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, serde::Deserialize)]
        pub struct $name(u32);

        impl $name {
            /// The position `index` (saturating: no vector here holds 2^32 items).
            pub fn at(index: usize) -> $name {
                $name(u32::try_from(index).unwrap_or(u32::MAX))
            }

            /// The position the next item pushed onto `items` takes.
            pub fn next(items: &[$item]) -> $name {
                $name::at(items.len())
            }

            /// The position as a slice index.
            pub fn index(self) -> usize {
                self.0 as usize
            }
        }

        impl At<$name> for [$item] {
            type Item = $item;
            fn at(&self, at: $name) -> Option<&$item> {
                self.get(at.index())
            }
            fn at_mut(&mut self, at: $name) -> Option<&mut $item> {
                self.get_mut(at.index())
            }
        }

        impl std::ops::Index<$name> for [$item] {
            type Output = $item;
            fn index(&self, at: $name) -> &$item {
                &self[at.index()]
            }
        }

        impl std::ops::IndexMut<$name> for [$item] {
            fn index_mut(&mut self, at: $name) -> &mut $item {
                &mut self[at.index()]
            }
        }

        impl At<$name> for super::tracked::TrackedVec<$item> {
            type Item = $item;
            fn at(&self, at: $name) -> Option<&$item> {
                self.get(at.index())
            }
            fn at_mut(&mut self, at: $name) -> Option<&mut $item> {
                self.get_mut(at.index())
            }
        }

        impl std::ops::Index<$name> for super::tracked::TrackedVec<$item> {
            type Output = $item;
            fn index(&self, at: $name) -> &$item {
                &self[at.index()]
            }
        }

        impl std::ops::IndexMut<$name> for super::tracked::TrackedVec<$item> {
            fn index_mut(&mut self, at: $name) -> &mut $item {
                &mut self[at.index()]
            }
        }

        impl std::ops::Index<$name> for Vec<$item> {
            type Output = $item;
            fn index(&self, at: $name) -> &$item {
                &self[at.index()]
            }
        }

        impl std::ops::IndexMut<$name> for Vec<$item> {
            fn index_mut(&mut self, at: $name) -> &mut $item {
                &mut self[at.index()]
            }
        }
    };
}

position!(
    /// Where an execution is in [`PipelineRuntime::executions`].
    ExecutionIndex in Execution
);
position!(
    /// Where an action run is in [`Execution::actions`].
    RunIndex in ActionRun
);
position!(
    /// Where a rule run is in [`Conditions::rules`].
    RuleRunIndex in RuleRun
);

/// `ErrorDetails` of a failed action or rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ErrorDetails {
    pub code: FailureType,
    pub message: String,
}

impl ErrorDetails {
    /// A `JobFailed` error: what a job worker or function reported, or a simulated failure.
    pub fn job_failed(message: impl Into<String>) -> ErrorDetails {
        ErrorDetails { code: FailureType::JobFailed, message: message.into() }
    }

    /// A `ConfigurationError`: the action or rule cannot run as declared.
    pub fn configuration(message: impl Into<String>) -> ErrorDetails {
        ErrorDetails { code: FailureType::ConfigurationError, message: message.into() }
    }
}

/// `FailureType`: the code of a failed action's or rule's `errorDetails`. Job workers report one of these, and the
/// emulator's own failures use them too, so a failed run's code is always one AWS can send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
pub enum FailureType {
    JobFailed,
    ConfigurationError,
    PermissionError,
    RevisionOutOfSync,
    RevisionUnavailable,
    SystemUnavailable,
}

impl FailureType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureType::JobFailed => "JobFailed",
            FailureType::ConfigurationError => "ConfigurationError",
            FailureType::PermissionError => "PermissionError",
            FailureType::RevisionOutOfSync => "RevisionOutOfSync",
            FailureType::RevisionUnavailable => "RevisionUnavailable",
            FailureType::SystemUnavailable => "SystemUnavailable",
        }
    }
}

/// A revision picked up by a source action (`currentRevision`, `artifactRevisions`, `sourceRevisions`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Revision {
    pub revision_id: String,
    /// The change identifier (`revisionChangeIdentifier`, `revisionChangeId`), for providers that have one: a
    /// commit or image digest has one, an S3 object version has none. See [`Revision::change_id`].
    pub change: ChangeId,
    /// Shared with the summary of the action run that picked the revision up, when they are the same text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<Arc<str>>,
    /// When the revision was made, for providers that tell (S3 does not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<Timestamp>,
}

/// A revision's change identifier, kept without repeating the revision id when it is the same (a commit is both).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub enum ChangeId {
    /// The provider has none.
    None,
    /// The revision id itself.
    Revision,
    Other(Box<str>),
}

impl ChangeId {
    /// The change identifier `change` of revision `revision_id`.
    pub fn of(revision_id: &str, change: Option<String>) -> ChangeId {
        match change {
            None => ChangeId::None,
            Some(c) if c == revision_id => ChangeId::Revision,
            Some(c) => ChangeId::Other(c.into_boxed_str()),
        }
    }
}

impl Revision {
    /// The change identifier, if the provider has one.
    pub fn change_id(&self) -> Option<&str> {
        match &self.change {
            ChangeId::None => None,
            ChangeId::Revision => Some(&self.revision_id),
            ChangeId::Other(c) => Some(c),
        }
    }
}

/// Output variables of an action, sorted by name. A boxed slice rather than a map: most actions have a handful,
/// and a finished execution keeps them for its whole life.
pub type Variables = Box<[(Arc<str>, Box<str>)]>;

/// Looks a variable up by name.
pub fn variable<'a>(variables: &'a Variables, key: &str) -> Option<&'a str> {
    variables.iter().find(|(k, _)| &**k == key).map(|(_, v)| &**v)
}

/// What a finished action produced.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Success {
    pub summary: Option<String>,
    pub external_execution_id: Option<String>,
    pub external_execution_url: Option<String>,
    pub output_variables: BTreeMap<String, String>,
    /// Set by source actions.
    pub revision: Option<Revision>,
}

/// How an action ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub enum Outcome {
    Succeed(Success),
    Fail(ErrorDetails),
}

/// What a running action waits for. Boxed payloads keep finished runs (which hold `Nothing`) small.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub enum Pending {
    /// It ends by itself at a known time (simulated work).
    At(Timestamp, Box<Outcome>),
    /// It ends when something outside calls back (an approval, a held action, a job), or fails at `timeout`.
    External { timeout: Option<Timestamp>, on_timeout: Box<ErrorDetails> },
    /// Nothing: the action is finished.
    Nothing,
}

/// An artifact version stored in the artifact store. Names and buckets repeat across executions and are shared.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactInstance {
    pub name: Arc<str>,
    pub bucket: Arc<str>,
    pub key: Box<str>,
}

/// One action execution (one attempt of one action). Kept for the life of the pipeline, so it is compact: names
/// come from the execution's declaration by index, artifacts are shared, and rarely set members are boxed.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActionRun {
    pub id: Uuid,
    /// Order of creation within the pipeline; newer runs have higher numbers.
    pub seq: u32,
    pub stage_index: u32,
    pub action_index: u32,
    pub status: ActionStatus,
    /// Whether the run is an approval waiting for an answer; its token is then the run id.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub awaits_approval: bool,
    /// Shared with the revision it picked up, for a source action whose summary is the revision's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<Arc<str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_execution_id: Option<Box<str>>,
    pub start_time: Timestamp,
    pub last_update_time: Timestamp,
    /// When the status last changed after the start (absent while a running approval waits, as on AWS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_status_change: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "is_empty")]
    pub input_artifacts: Box<[Arc<ArtifactInstance>]>,
    #[serde(default, skip_serializing_if = "is_empty")]
    pub output_artifacts: Box<[Arc<ArtifactInstance>]>,
    #[serde(default, skip_serializing_if = "is_empty")]
    pub output_variables: Variables,
    /// What the run waits for; `None` once it has finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<Box<Pending>>,
    /// Members most runs never set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra: Option<Box<RunExtra>>,
}

/// The rarely set members of an action run.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunExtra {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_execution_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorDetails>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent_complete: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_by: Option<String>,
    /// The configuration values variable resolution changed, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_configuration: Option<Resolved>,
    /// The action's region, when it is not the pipeline's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

impl ActionRun {
    /// The stage index, for indexing.
    pub fn stage(&self) -> usize {
        self.stage_index as usize
    }

    /// The action index within its stage, for indexing.
    pub fn action(&self) -> usize {
        self.action_index as usize
    }

    /// The approval token, while the approval waits for an answer.
    pub fn approval_token(&self) -> Option<String> {
        self.awaits_approval.then(|| self.id.to_string())
    }

    /// The rarely set members, created on first use.
    pub fn extra_mut(&mut self) -> &mut RunExtra {
        self.extra.get_or_insert_with(Box::default)
    }

    /// The error of a failed run.
    pub fn error(&self) -> Option<&ErrorDetails> {
        self.extra.as_ref().and_then(|e| e.error.as_ref())
    }

    /// Who answered the run (an approver), if anyone.
    pub fn updated_by(&self) -> Option<&str> {
        self.extra.as_ref().and_then(|e| e.updated_by.as_deref())
    }

    /// The provider's link to the external execution.
    pub fn external_execution_url(&self) -> Option<&str> {
        self.extra.as_ref().and_then(|e| e.external_execution_url.as_deref())
    }

    /// The completion a job worker reported.
    pub fn percent_complete(&self) -> Option<i32> {
        self.extra.as_ref().and_then(|e| e.percent_complete)
    }

    /// The configuration the run used: the declared one (`declared`'s), with the values variables changed.
    pub fn configuration<'a>(&'a self, declared: Option<&'a ActionDeclaration>) -> ConfigView<'a> {
        ConfigView::new(declared.and_then(|a| a.configuration.as_ref()), self.resolved())
    }

    /// The configuration values variables changed, if any.
    pub fn resolved(&self) -> Option<&Resolved> {
        self.extra.as_ref().and_then(|e| e.resolved_configuration.as_ref())
    }

    /// The action's region, when it is not the pipeline's.
    pub fn region(&self) -> Option<&str> {
        self.extra.as_ref().and_then(|e| e.region.as_deref())
    }
}

/// The run of one stage within one execution.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StageRun {
    /// When the execution entered the stage.
    pub entered: Timestamp,
    pub status: StageStatus,
    /// The runOrder group currently running (or last run), counted from 0 in ascending runOrder.
    pub group: u32,
    /// This stage's action runs, oldest first (while it runs).
    #[serde(default, skip_serializing_if = "is_empty")]
    pub runs: Vec<RunIndex>,
    /// Manual retries of the stage in this execution.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub manual_retries: u16,
    /// Automatic retries of the stage in this execution.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub auto_retries: u16,
    /// What started the latest retry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_retry: Option<RetryTrigger>,
}

impl StageRun {
    /// A stage run that has just been entered.
    pub fn entered(now: Timestamp) -> StageRun {
        StageRun {
            entered: now,
            status: StageStatus::InProgress,
            group: 0,
            runs: Vec::new(),
            manual_retries: 0,
            auto_retries: 0,
            latest_retry: None,
        }
    }
}

/// `ConditionExecutionStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
pub enum ConditionStatus {
    InProgress,
    Failed,
    Errored,
    Succeeded,
    Cancelled,
    Abandoned,
    Overridden,
}

/// The stage conditions an execution evaluated: the latest evaluation of each (stage, kind), and every rule run.
/// Kept apart (and boxed) so that executions of pipelines without conditions pay one pointer for them.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Conditions {
    pub evaluations: Vec<ConditionRun>,
    /// Rule executions, oldest first.
    pub rules: Vec<RuleRun>,
}

/// One evaluation of a stage condition: its rules run side by side, and all must succeed for it to pass.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConditionRun {
    pub stage: u32,
    pub kind: ConditionKind,
    pub status: ConditionStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<Box<str>>,
    pub last_status_change: Timestamp,
    /// This evaluation's rule runs.
    #[serde(default, skip_serializing_if = "is_empty")]
    pub rules: Vec<RuleRunIndex>,
}

/// `RuleExecutionStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
pub enum RuleStatus {
    InProgress,
    Abandoned,
    Succeeded,
    Failed,
}

/// One rule execution: one rule of one condition evaluation. Kept for the life of the pipeline
/// (ListRuleExecutions), like action runs.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleRun {
    pub id: Uuid,
    /// Order of creation within the pipeline (shared with action runs).
    pub seq: u32,
    pub stage_index: u32,
    pub kind: ConditionKind,
    /// The rule's index in its condition's rule list.
    pub rule_index: u32,
    pub status: RuleStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<Box<str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_execution_id: Option<Box<str>>,
    pub start_time: Timestamp,
    pub last_update_time: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_status_change: Option<Timestamp>,
    /// What the run waits for; `None` once it has finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<Box<Pending>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Box<ErrorDetails>>,
    /// The configuration values variable resolution changed, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_configuration: Option<Resolved>,
    #[serde(default, skip_serializing_if = "is_empty")]
    pub input_artifacts: Box<[Arc<ArtifactInstance>]>,
}

impl RuleRun {
    /// The configuration the run used: the declared one (`declared`'s), with the values variables changed.
    pub fn configuration<'a>(&'a self, declared: Option<&'a RuleDeclaration>) -> ConfigView<'a> {
        ConfigView::new(declared.and_then(|r| r.configuration.as_ref()), self.resolved_configuration.as_ref())
    }
}

/// The configuration values of a run that variable resolution changed, sorted by key. The other values are the
/// declared ones, which the run shares with its pipeline version rather than copying.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Resolved(Box<[(Box<str>, Box<str>)]>);

impl Resolved {
    /// The changed values, given in key order.
    pub fn new(changed: Vec<(Box<str>, Box<str>)>) -> Resolved {
        Resolved(changed.into_boxed_slice())
    }

    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The bytes of the changed values.
    pub fn bytes(&self) -> usize {
        self.0.iter().map(|(_, v)| v.len()).sum()
    }

    /// The changed value of `key`, if variables changed it.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.binary_search_by(|(k, _)| (**k).cmp(key)).ok().map(|i| &*self.0[i].1)
    }
}

/// A run's configuration as it ran: the declared values, with those variables changed replaced. Cheap to copy;
/// reads in place.
#[derive(Debug, Clone, Copy)]
pub struct ConfigView<'a> {
    declared: Option<&'a BTreeMap<String, String>>,
    changed: Option<&'a Resolved>,
}

impl<'a> ConfigView<'a> {
    /// The view of `declared` with `changed` applied.
    pub fn new(declared: Option<&'a BTreeMap<String, String>>, changed: Option<&'a Resolved>) -> ConfigView<'a> {
        ConfigView { declared, changed }
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&'a str> {
        let changed = self.changed;
        changed.and_then(|c| c.get(key)).or_else(|| self.declared.and_then(|d| d.get(key)).map(String::as_str))
    }

    /// Every (key, value), in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        let changed = self.changed;
        self.declared
            .into_iter()
            .flatten()
            .map(move |(k, v)| (k.as_str(), changed.and_then(|c| c.get(k)).unwrap_or(v.as_str())))
    }

    /// An owned copy, for job data.
    pub fn to_map(&self) -> BTreeMap<String, String> {
        self.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }
}

/// `RetryTrigger`: what retried a stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
pub enum RetryTrigger {
    AutomatedStageRetry,
    ManualStageRetry,
}

/// Where an execution is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
pub enum Place {
    /// Waiting to enter stage `stage` (its transition is disabled, or another execution holds it). `since` orders
    /// arrivals.
    Waiting { stage: usize, since: u64 },
    /// Inside stage `stage`.
    InStage { stage: usize },
    /// Finished (any terminal status).
    Done,
}

/// A stop request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StopRequest {
    pub abandon: bool,
    pub reason: Option<String>,
}

/// `ResolvedPipelineVariable`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedVariable {
    pub name: String,
    pub resolved_value: String,
}

/// A source revision override given to StartPipelineExecution (or, with the type [`RevisionType::ActionRevision`],
/// by PutActionRevision).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RevisionOverride {
    pub action_name: String,
    pub revision_type: RevisionType,
    pub revision_value: String,
    /// The change identifier of a PutActionRevision revision.
    pub change_id: Option<String>,
    /// When a PutActionRevision revision was created.
    pub created: Option<Timestamp>,
}

/// `SourceRevisionType`, and the revision PutActionRevision gives, which applies to any source provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RevisionType {
    CommitId,
    ImageDigest,
    S3ObjectVersionId,
    S3ObjectKey,
    /// A revision given by PutActionRevision (not a wire value: the model's validation refuses it as input).
    #[serde(rename = "PutActionRevision")]
    ActionRevision,
}

impl RevisionType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            RevisionType::CommitId => "COMMIT_ID",
            RevisionType::ImageDigest => "IMAGE_DIGEST",
            RevisionType::S3ObjectVersionId => "S3_OBJECT_VERSION_ID",
            RevisionType::S3ObjectKey => "S3_OBJECT_KEY",
            RevisionType::ActionRevision => "PutActionRevision",
        }
    }
}

/// One pipeline execution.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Execution {
    pub id: Uuid,
    pub seq: u64,
    pub pipeline_version: i32,
    /// The definition it runs (the version it started with), shared with the pipeline while that keeps it. Stored
    /// apart (by `pipeline_version`) and attached again when state is loaded.
    #[serde(skip, default = "super::Definition::placeholder")]
    pub declaration: Arc<Definition>,
    pub status: ExecutionStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_summary: Option<Box<str>>,
    pub trigger: ExecutionTrigger,
    pub mode: ExecutionMode,
    pub execution_type: ExecutionType,
    pub start_time: Timestamp,
    pub last_update_time: Timestamp,
    #[serde(default, skip_serializing_if = "is_empty")]
    pub variables: Box<[ResolvedVariable]>,
    #[serde(default, skip_serializing_if = "is_empty")]
    pub overrides: Box<[RevisionOverride]>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<Box<StopRequest>>,
    pub place: Place,
    #[serde(default, skip_serializing_if = "is_empty")]
    pub stages: Box<[Option<StageRun>]>,
    #[serde(default, skip_serializing_if = "is_empty")]
    pub actions: Vec<ActionRun>,
    /// What only a running execution needs; dropped when it finishes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running: Option<Box<Running>>,
    /// Source revisions, in the order the source actions finished: (index of the action in the first stage,
    /// revision).
    #[serde(default, skip_serializing_if = "is_empty")]
    pub sources: Vec<(u32, Revision)>,
    /// The execution a rollback execution rolls back to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_target: Option<Uuid>,
    /// The stage conditions it evaluated, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Box<Conditions>>,
}

/// The state of a running execution that a finished one no longer needs.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Running {
    /// Output variables by namespace.
    pub namespaces: HashMap<String, Variables>,
    /// Artifacts produced so far, by name.
    pub artifacts: HashMap<String, Arc<ArtifactInstance>>,
    /// Bytes of configuration values its variables changed so far, in all its action and rule runs.
    pub resolved_bytes: usize,
}

impl Execution {
    /// The names of a run's stage and action, from the declaration the execution runs.
    pub fn names(&self, run: &ActionRun) -> (&str, &str) {
        let stage = self.declaration.stages.get(run.stage());
        let action = stage.and_then(|s| s.actions.get(run.action()));
        (stage.map_or("", |s| s.name.as_str()), action.map_or("", |a| a.name.as_str()))
    }

    /// The rule executions of its stage conditions, oldest first.
    pub fn rules(&self) -> &[RuleRun] {
        self.conditions.as_ref().map_or(&[], |c| &c.rules)
    }

    /// Its stage conditions, created on first use.
    pub fn conditions_mut(&mut self) -> &mut Conditions {
        self.conditions.get_or_insert_with(Box::default)
    }

    /// The latest evaluation of stage `stage`'s condition of `kind`.
    pub fn condition(&self, stage: usize, kind: ConditionKind) -> Option<&ConditionRun> {
        let evaluations = self.conditions.as_ref().map_or(&[][..], |c| &c.evaluations);
        evaluations.iter().find(|c| c.stage as usize == stage && c.kind == kind)
    }

    /// The condition of stage `stage` being evaluated, if any.
    pub fn condition_in_progress(&self, stage: usize) -> Option<&ConditionRun> {
        let evaluations = self.conditions.as_ref().map_or(&[][..], |c| &c.evaluations);
        evaluations.iter().find(|c| c.stage as usize == stage && c.status == ConditionStatus::InProgress)
    }

    /// The declaration of a rule run's rule.
    pub fn rule_declaration(&self, run: &RuleRun) -> Option<&RuleDeclaration> {
        let stage = self.declaration.stages.get(run.stage_index as usize)?;
        stage.condition(run.kind)?.rules.as_ref()?.get(run.rule_index as usize)
    }

    /// The source action and output artifact names of a recorded source revision.
    pub fn source_names(&self, action: u32) -> (&str, Option<&str>) {
        let action = self.declaration.stages.first().and_then(|s| s.actions.get(action as usize));
        let artifact =
            action.and_then(|a| a.output_artifacts.as_ref()).and_then(|o| o.first()).map(|o| o.name.as_str());
        (action.map_or("", |a| a.name.as_str()), artifact)
    }

    /// Keeps what variables changed in a run's configuration: counts it against the execution's bound, and returns
    /// it for the run to store, or `None` when nothing changed.
    pub fn keep_resolved(&mut self, resolved: Resolved) -> Option<Resolved> {
        if resolved.is_empty() {
            return None;
        }
        self.running_mut().resolved_bytes += resolved.bytes();
        Some(resolved)
    }

    /// The running state, created on first use.
    pub fn running_mut(&mut self) -> &mut Running {
        self.running.get_or_insert_with(Box::default)
    }

    /// Releases what only a running execution needs, once it has finished.
    pub fn compact(&mut self) {
        self.running = None;
        for stage in self.stages.iter_mut().flatten() {
            stage.runs = Vec::new();
        }
        self.actions.shrink_to_fit();
        if let Some(conditions) = self.conditions.as_mut() {
            conditions.rules.shrink_to_fit();
            conditions.evaluations.shrink_to_fit();
        }
        self.sources.shrink_to_fit();
    }
}

/// `TransitionState` of a stage's inbound transition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransitionState {
    pub enabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_changed_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_changed_at: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled_reason: Option<String>,
}

impl Default for TransitionState {
    fn default() -> TransitionState {
        TransitionState { enabled: true, last_changed_by: None, last_changed_at: None, disabled_reason: None }
    }
}

/// The executions of one pipeline and what they share.
#[derive(Debug, Clone, Default)]
pub struct PipelineRuntime {
    /// Every execution, oldest first (saved one row each).
    pub executions: TrackedVec<Execution>,
    /// Execution id to index in `executions`.
    pub index: HashMap<Uuid, ExecutionIndex>,
    /// The next sequence number (executions, action runs and arrivals share one counter).
    pub next_seq: u64,
    /// Inbound transitions by stage name (absent means enabled and never changed).
    pub transitions: BTreeMap<String, TransitionState>,
    /// StartPipelineExecution idempotency: client request token to execution id.
    pub client_tokens: TrackedMap<String, Uuid>,
    /// The latest revision each source action picked up, by action name.
    pub current_revisions: HashMap<String, Revision>,
    /// Indices of the executions that are still InProgress or Stopping.
    pub active: BTreeSet<ExecutionIndex>,
    /// The execution that last entered each stage, by stage name (GetPipelineState `latestExecution`).
    pub latest_in_stage: HashMap<String, ExecutionIndex>,
    /// The latest action run of each (stage, action).
    pub latest_runs: HashMap<(String, String), (ExecutionIndex, RunIndex)>,
    /// The earliest wake-up already scheduled for this pipeline, so the scheduler holds one timer per due event.
    pub wake: Option<Timestamp>,
    /// Shared copies of strings that every execution repeats (artifact names, buckets).
    pub interned: HashSet<Arc<str>>,
    /// Jobs of custom actions, by id.
    pub jobs: TrackedMap<Uuid, Job>,
    /// The current job of each action run that has one.
    pub job_of_run: TrackedMap<(ExecutionIndex, RunIndex), Uuid>,
    /// Lambda jobs created but not yet handed to the invoker.
    pub undelivered: Vec<Uuid>,
    /// LambdaInvoke rule runs started but not yet handed to the invoker.
    pub undelivered_rules: Vec<(ExecutionIndex, RuleRunIndex)>,
    /// State changes made since the engine last published them as events, oldest first.
    pub changes: Vec<StateChange>,
}

/// A state an execution, stage or action entered, as AWS spells it in its events (`CANCELED`, `RESUMED`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventState {
    Started,
    Resumed,
    Stopping,
    Stopped,
    Succeeded,
    Failed,
    Superseded,
    Canceled,
    Abandoned,
}

impl EventState {
    /// The event's `state`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventState::Started => "STARTED",
            EventState::Resumed => "RESUMED",
            EventState::Stopping => "STOPPING",
            EventState::Stopped => "STOPPED",
            EventState::Succeeded => "SUCCEEDED",
            EventState::Failed => "FAILED",
            EventState::Superseded => "SUPERSEDED",
            EventState::Canceled => "CANCELED",
            EventState::Abandoned => "ABANDONED",
        }
    }
}

/// What changed state: the execution, one of its stages (by index), or one of its action runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Entity {
    Pipeline,
    Stage(u32),
    Action(RunIndex),
}

impl Entity {
    /// Stage `stage` (by index in the declaration).
    pub fn stage(stage: usize) -> Entity {
        Entity::Stage(u32::try_from(stage).unwrap_or(u32::MAX))
    }
}

/// A state change the engine made, to be published as an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateChange {
    pub execution: ExecutionIndex,
    pub entity: Entity,
    pub state: EventState,
    pub at: Timestamp,
}

/// `JobStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
pub enum JobStatus {
    Created,
    Queued,
    Dispatched,
    InProgress,
    TimedOut,
    Succeeded,
    Failed,
}

impl JobStatus {
    /// Whether the job has ended.
    pub fn is_terminal(self) -> bool {
        matches!(self, JobStatus::TimedOut | JobStatus::Succeeded | JobStatus::Failed)
    }
}

/// The job of a custom action: one per attempt, and one more per continuation token.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Job {
    pub id: Uuid,
    pub execution: ExecutionIndex,
    pub run: RunIndex,
    pub status: JobStatus,
    /// The nonce handed out with the job by the latest poll.
    pub nonce: Option<String>,
    /// When a job handed out but not acknowledged may be handed out again.
    pub visible_at: Timestamp,
    /// The continuation token this job carries, from the previous job of the same action.
    pub continuation_token: Option<String>,
    /// The request that ended the job, for telling identical repeats from conflicting ones.
    pub result: Option<String>,
    pub created: Timestamp,
    /// Who works the job.
    pub kind: JobKind,
}

/// Who works a job, and so through which API it is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
pub enum JobKind {
    /// A custom action's job worker, through PollForJobs and the other custom job operations.
    Custom,
    /// A partner's job worker, through the ThirdParty job operations and the type's client token.
    ThirdParty,
    /// A Lambda function the emulator invokes; it answers through PutJobSuccessResult/PutJobFailureResult.
    Lambda,
}

impl PipelineRuntime {
    /// A fresh sequence number.
    pub fn seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    /// The index of the execution with this id (as a client wrote it).
    pub fn position(&self, id: &str) -> Option<ExecutionIndex> {
        Uuid::parse_str(id).ok().and_then(|id| self.index.get(&id).copied())
    }

    /// The execution with this id.
    pub fn get(&self, id: &str) -> Option<&Execution> {
        self.position(id).and_then(|i| self.executions.get(i.index()))
    }

    /// Adds an execution.
    pub fn push(&mut self, execution: Execution) {
        self.index.insert(execution.id, ExecutionIndex::next(&self.executions));
        self.executions.push(execution);
    }

    /// A shared copy of `text`.
    pub fn intern(&mut self, text: &str) -> Arc<str> {
        if let Some(shared) = self.interned.get(text) {
            return Arc::clone(shared);
        }
        let shared: Arc<str> = Arc::from(text);
        self.interned.insert(Arc::clone(&shared));
        shared
    }

    /// Shares again what a loaded execution repeats, as the engine shares it when it makes them (reading gives every
    /// string and artifact its own copy): the artifacts its actions pass on to each other, artifact names and
    /// buckets, the trigger detail, summaries and output variable names.
    pub fn reshare(&mut self, execution: &mut Execution) {
        if let Some(detail) = &execution.trigger.trigger_detail {
            execution.trigger.trigger_detail = Some(self.intern(detail));
        }
        let mut artifacts: HashSet<Arc<ArtifactInstance>> = HashSet::new();
        let mut share = |runtime: &mut PipelineRuntime, artifact: &mut Arc<ArtifactInstance>| {
            if let Some(shared) = artifacts.get(&**artifact) {
                *artifact = Arc::clone(shared);
                return;
            }
            let shared = Arc::new(ArtifactInstance {
                name: runtime.intern(&artifact.name),
                bucket: runtime.intern(&artifact.bucket),
                key: artifact.key.clone(),
            });
            artifacts.insert(Arc::clone(&shared));
            *artifact = shared;
        };
        for run in &mut execution.actions {
            if let Some(summary) = &run.summary {
                run.summary = Some(self.intern(summary));
            }
            for artifact in run.input_artifacts.iter_mut().chain(run.output_artifacts.iter_mut()) {
                share(self, artifact);
            }
            for (name, _) in run.output_variables.iter_mut() {
                *name = self.intern(name);
            }
        }
        if let Some(conditions) = &mut execution.conditions {
            for rule in &mut conditions.rules {
                for artifact in rule.input_artifacts.iter_mut() {
                    share(self, artifact);
                }
            }
        }
        for (_, revision) in &mut execution.sources {
            if let Some(summary) = &revision.summary {
                revision.summary = Some(self.intern(summary));
            }
        }
    }

    /// The inbound transition of a stage.
    pub fn transition(&self, stage: &str) -> TransitionState {
        self.transitions.get(stage).cloned().unwrap_or_default()
    }
}
