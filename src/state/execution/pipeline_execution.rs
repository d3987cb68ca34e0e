//! One pipeline execution: where it is, what it carries, how it was stopped or retried.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;
use uuid::Uuid;

use super::{
    ActionRun, ArtifactInstance, ConditionRun, ConditionStatus, Conditions, ExecutionStatus, ExecutionTrigger,
    ExecutionType, Resolved, Revision, RevisionOverride, RuleRun, StageRun, Variables,
};
use crate::state::declaration::ConditionKind;
use crate::state::declaration::{ExecutionMode, RuleDeclaration};
use crate::state::{Definition, Timestamp};

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

/// A stop request, or the end an update of the pipeline asks of the executions of the old version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StopRequest {
    pub abandon: bool,
    pub reason: Option<String>,
    /// The pipeline was updated: the stage and the execution end `Cancelled` rather than `Stopped`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cancel: bool,
}

impl StopRequest {
    /// How the stage ends once its running actions have.
    pub fn stage_status(&self) -> super::StageStatus {
        if self.cancel { super::StageStatus::Cancelled } else { super::StageStatus::Stopped }
    }
}

/// `ResolvedPipelineVariable`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedVariable {
    pub name: String,
    pub resolved_value: String,
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
    #[serde(default, skip_serializing_if = "super::is_empty")]
    pub variables: Box<[ResolvedVariable]>,
    #[serde(default, skip_serializing_if = "super::is_empty")]
    pub overrides: Box<[RevisionOverride]>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<Box<StopRequest>>,
    pub place: Place,
    #[serde(default, skip_serializing_if = "super::is_empty")]
    pub stages: Box<[Option<StageRun>]>,
    #[serde(default, skip_serializing_if = "super::is_empty")]
    pub actions: Vec<ActionRun>,
    /// What only a running execution needs; dropped when it finishes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running: Option<Box<Running>>,
    /// Source revisions, in the order the source actions finished: (index of the action in the first stage,
    /// revision).
    #[serde(default, skip_serializing_if = "super::is_empty")]
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
