//! Stage conditions: their evaluations and rule runs.

use std::sync::Arc;

use serde::Serialize;
use uuid::Uuid;

use super::{ArtifactInstance, ConfigView, ErrorDetails, Pending, Resolved, RuleRunIndex};
use crate::state::Timestamp;
use crate::state::declaration::ConditionKind;
use crate::state::declaration::RuleDeclaration;

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
    #[serde(default, skip_serializing_if = "super::is_empty")]
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
    #[serde(default, skip_serializing_if = "super::is_empty")]
    pub input_artifacts: Box<[Arc<ArtifactInstance>]>,
}

impl RuleRun {
    /// The configuration the run used: the declared one (`declared`'s), with the values variables changed.
    pub fn configuration<'a>(&'a self, declared: Option<&'a RuleDeclaration>) -> ConfigView<'a> {
        ConfigView::new(declared.and_then(|r| r.configuration.as_ref()), self.resolved_configuration.as_ref())
    }
}
