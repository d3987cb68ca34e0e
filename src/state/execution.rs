//! The runtime state of pipelines: executions, stage runs, action executions, transitions.
//!
//! These are plain data; `engine` moves them. Everything an API reads (GetPipelineState, GetPipelineExecution,
//! ListPipelineExecutions, ListActionExecutions) is derived from here.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use serde::Serialize;

use super::Timestamp;
use super::declaration::{ActionTypeId, ExecutionMode, PipelineDeclaration};

/// `PipelineExecutionStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum ActionStatus {
    InProgress,
    Abandoned,
    Succeeded,
    Failed,
}

/// `ExecutionType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ExecutionType {
    Standard,
    Rollback,
}

/// `ExecutionTrigger`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionTrigger {
    pub trigger_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trigger_detail: Option<String>,
}

/// `ErrorDetails` of a failed action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorDetails {
    pub code: String,
    pub message: String,
}

/// A revision picked up by a source action (`currentRevision`, `artifactRevisions`, `sourceRevisions`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revision {
    pub revision_id: String,
    pub change_id: Option<String>,
    pub summary: Option<String>,
    pub url: Option<String>,
    pub created: Timestamp,
}

/// What a finished action produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Success {
    pub summary: Option<String>,
    pub external_execution_id: Option<String>,
    pub external_execution_url: Option<String>,
    pub output_variables: BTreeMap<String, String>,
    /// Set by source actions.
    pub revision: Option<Revision>,
}

/// How an action ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Succeed(Success),
    Fail(ErrorDetails),
}

/// What a running action waits for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pending {
    /// It ends by itself at a known time (simulated work).
    At(Timestamp, Outcome),
    /// It ends when something outside calls back (an approval, a held action, a job), or fails at `timeout`.
    External { timeout: Option<Timestamp>, on_timeout: ErrorDetails },
    /// Nothing: the action is finished.
    Nothing,
}

/// An artifact version stored in the artifact store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactInstance {
    pub name: String,
    pub bucket: String,
    pub key: String,
}

/// One action execution (one attempt of one action).
#[derive(Debug, Clone)]
pub struct ActionRun {
    pub id: String,
    /// Order of creation within the pipeline; newer runs have higher numbers.
    pub seq: u64,
    pub stage_index: usize,
    pub action_index: usize,
    pub stage_name: Arc<str>,
    pub action_name: Arc<str>,
    pub status: ActionStatus,
    pub summary: Option<String>,
    pub external_execution_id: Option<String>,
    pub external_execution_url: Option<String>,
    pub error: Option<ErrorDetails>,
    /// The approval token, while an approval waits for an answer.
    pub token: Option<String>,
    pub percent_complete: Option<i32>,
    pub start_time: Timestamp,
    pub last_update_time: Timestamp,
    /// When the status last changed after the start (absent while a running approval waits, as on AWS).
    pub last_status_change: Option<Timestamp>,
    pub updated_by: Option<String>,
    /// The configuration after variable resolution, when it differs from the declared one.
    pub resolved_configuration: Option<BTreeMap<String, String>>,
    pub region: String,
    pub input_artifacts: Vec<ArtifactInstance>,
    pub output_artifacts: Vec<ArtifactInstance>,
    pub output_variables: BTreeMap<String, String>,
    pub pending: Pending,
}

/// The run of one stage within one execution.
#[derive(Debug, Clone)]
pub struct StageRun {
    pub status: StageStatus,
    /// Action indices grouped by runOrder, ascending.
    pub groups: Vec<Vec<usize>>,
    /// The group currently running (or last run).
    pub group: usize,
    /// Indices into [`Execution::actions`] of this stage's action runs, oldest first.
    pub runs: Vec<usize>,
}

/// Where an execution is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StopRequest {
    pub abandon: bool,
    pub reason: Option<String>,
}

/// `ResolvedPipelineVariable`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedVariable {
    pub name: String,
    pub resolved_value: String,
}

/// A source revision override given to StartPipelineExecution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevisionOverride {
    pub action_name: String,
    pub revision_type: String,
    pub revision_value: String,
}

/// One pipeline execution.
#[derive(Debug, Clone)]
pub struct Execution {
    pub id: String,
    pub seq: u64,
    pub pipeline_version: i32,
    /// The definition it runs (the version it started with).
    pub declaration: Arc<PipelineDeclaration>,
    pub status: ExecutionStatus,
    pub status_summary: Option<String>,
    pub trigger: ExecutionTrigger,
    pub mode: ExecutionMode,
    pub execution_type: ExecutionType,
    pub start_time: Timestamp,
    pub last_update_time: Timestamp,
    pub variables: Vec<ResolvedVariable>,
    pub overrides: Vec<RevisionOverride>,
    pub stop: Option<StopRequest>,
    pub place: Place,
    pub stages: Vec<Option<StageRun>>,
    pub actions: Vec<ActionRun>,
    /// Output variables by namespace.
    pub namespaces: HashMap<String, BTreeMap<String, String>>,
    /// Artifacts produced so far, by name.
    pub artifacts: HashMap<String, ArtifactInstance>,
    /// Source revisions, in first-stage action order: (action name, output artifact name, revision).
    pub sources: Vec<(String, Option<String>, Revision)>,
}

/// `TransitionState` of a stage's inbound transition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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
    /// Every execution, oldest first.
    pub executions: Vec<Execution>,
    /// Execution id to index in `executions`.
    pub index: HashMap<String, usize>,
    /// The next sequence number (executions, action runs and arrivals share one counter).
    pub next_seq: u64,
    /// Inbound transitions by stage name (absent means enabled and never changed).
    pub transitions: BTreeMap<String, TransitionState>,
    /// StartPipelineExecution idempotency: client request token to execution id.
    pub client_tokens: HashMap<String, String>,
    /// The latest revision each source action picked up, by action name.
    pub current_revisions: HashMap<String, Revision>,
    /// Indices of the executions that are still InProgress or Stopping.
    pub active: BTreeSet<usize>,
    /// The execution that last entered each stage, by stage name (GetPipelineState `latestExecution`).
    pub latest_in_stage: HashMap<String, usize>,
    /// The latest action run of each (stage, action), as (execution index, run index).
    pub latest_runs: HashMap<(String, String), (usize, usize)>,
    /// The earliest wake-up already scheduled for this pipeline, so the scheduler holds one timer per due event.
    pub wake: Option<Timestamp>,
}

impl PipelineRuntime {
    /// A fresh sequence number.
    pub fn seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    /// The execution with this id.
    pub fn get(&self, id: &str) -> Option<&Execution> {
        self.index.get(id).and_then(|&i| self.executions.get(i))
    }

    /// The execution with this id, mutably.
    pub fn get_mut(&mut self, id: &str) -> Option<&mut Execution> {
        match self.index.get(id) {
            Some(&i) => self.executions.get_mut(i),
            None => None,
        }
    }

    /// Adds an execution.
    pub fn push(&mut self, execution: Execution) {
        self.index.insert(execution.id.clone(), self.executions.len());
        self.executions.push(execution);
    }

    /// The inbound transition of a stage.
    pub fn transition(&self, stage: &str) -> TransitionState {
        self.transitions.get(stage).cloned().unwrap_or_default()
    }
}

/// The action type of an action run, for history.
pub fn action_type_of(execution: &Execution, run: &ActionRun) -> Option<ActionTypeId> {
    execution
        .declaration
        .stages
        .get(run.stage_index)
        .and_then(|s| s.actions.get(run.action_index))
        .map(|a| a.action_type_id.clone())
}
