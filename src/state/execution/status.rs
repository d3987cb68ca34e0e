//! The statuses of executions, stages and actions, and what started an execution.

use std::sync::Arc;

use serde::Serialize;

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
