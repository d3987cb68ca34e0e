//! How a finished execution runs again: a stage resumed by a retry (a caller's, or the stage's own on failure) and
//! a rollback execution started for a stage (a caller's, or the stage's own on failure). The caller-driven commands
//! check that they may (`engine::commands::retry`, `engine::commands::rollback`); the mechanics are here, shared
//! with the automatic paths of `end_stage`.

use std::sync::Arc;

use super::{changed, group_members, latest_attempts, stage_name, start_action};
use crate::engine::Write;
use crate::engine::conditions;
use crate::engine::ids::Ids;
use crate::engine::step::StepEnv;
use crate::state::PipelineRecord;
use crate::state::Timestamp;
use crate::state::declaration::{ConditionKind, ExecutionMode, StageRetryMode};
use crate::state::execution::{
    ActionStatus, ConditionStatus, Entity, EventState, Execution, ExecutionIndex, ExecutionStatus, ExecutionTrigger,
    ExecutionType, Place, RetryTrigger, RevisionOverride, RunIndex, StageStatus,
};

/// Resumes a finished execution in `stage` (the retry command checks that it may; a stage that retries itself on
/// failure does it at once).
pub(in crate::engine) fn resume_stage(
    record: &mut PipelineRecord,
    index: ExecutionIndex,
    stage: usize,
    all: bool,
    trigger: RetryTrigger,
    env: &StepEnv,
    now: Timestamp,
) {
    let execution = &mut record.runtime.w().executions[index];
    rebuild_running(execution, stage, all);
    execution.status = ExecutionStatus::InProgress;
    execution.stop = None;
    execution.status_summary = None;
    execution.place = Place::InStage { stage };
    execution.last_update_time = now;
    // A finished execution dropped its stages' run lists: rebuild this one from the action runs.
    let runs: Vec<RunIndex> = execution
        .actions
        .iter()
        .enumerate()
        .filter(|(_, r)| r.stage() == stage)
        .map(|(i, _)| RunIndex::at(i))
        .collect();
    let latest = latest_attempts(execution, &runs);
    let Some(run) = execution.stages[stage].as_mut() else { return };
    run.runs = runs;
    run.status = StageStatus::InProgress;
    // The retried stage starts again: its events' start-time and last retry time (UNCONFIRMED: AWS may keep the
    // first start-time).
    run.entered = now;
    match trigger {
        RetryTrigger::ManualStageRetry => run.manual_retries = run.manual_retries.saturating_add(1),
        RetryTrigger::AutomatedStageRetry => run.auto_retries = run.auto_retries.saturating_add(1),
    }
    run.latest_retry = Some(trigger);
    if all {
        run.group = 0;
    }
    // A stage that failed its entry condition evaluates it again; success and failure conditions are evaluated
    // again when the retried actions end.
    let group = run.group;
    let entry_failed =
        execution.condition(stage, ConditionKind::BeforeEntry).is_some_and(|c| c.status == ConditionStatus::Failed);
    if let Some(conditions) = execution.conditions.as_mut() {
        conditions.evaluations.retain(|c| c.stage as usize != stage || c.kind == ConditionKind::BeforeEntry);
    }
    let members = execution.declaration.stages.get(stage).map(|d| group_members(d, group)).unwrap_or_default();
    record.runtime.w().active.insert(index);
    changed(record, index, Entity::Pipeline, EventState::Resumed, now);
    changed(record, index, Entity::stage(stage), EventState::Resumed, now);
    if entry_failed {
        conditions::start(record, index, stage, ConditionKind::BeforeEntry, env, now);
        return;
    }
    for action in members {
        if all || latest.get(&action) != Some(&ActionStatus::Succeeded) {
            start_action(record, index, stage, action, env, now);
        }
    }
}

/// The retry mode of a stage that retries itself on failure (`onFailure {result: RETRY}`), if it has not yet: AWS
/// allows one automatic attempt [MODEL].
pub(super) fn automatic_retry(execution: &Execution, stage: usize) -> Option<bool> {
    let declared = execution.declaration.stages.get(stage)?;
    let run = execution.stages.get(stage)?.as_ref()?;
    let all = declared.on_failure.as_ref().and_then(|f| f.retry_configuration.as_ref()).and_then(|c| c.retry_mode)
        == Some(StageRetryMode::AllActions);
    (run.auto_retries == 0).then_some(all)
}

/// Rebuilds the variables and artifacts a finished execution dropped, from its successful action runs before the
/// retried stage (and, when only failed actions are retried, the ones of that stage that succeeded).
fn rebuild_running(execution: &mut Execution, stage: usize, all: bool) {
    let running = outputs_before(execution, |s| s < stage || (s == stage && !all));
    execution.running = Some(Box::new(running));
}

/// The variables (by namespace) and artifacts of an execution's successful action runs in the stages `keep`
/// selects, later attempts winning.
fn outputs_before(execution: &Execution, keep: impl Fn(usize) -> bool) -> crate::state::execution::Running {
    let mut running = crate::state::execution::Running::default();
    for run in execution.actions.iter().filter(|r| r.status == ActionStatus::Succeeded && keep(r.stage())) {
        let action = execution.declaration.stages.get(run.stage()).and_then(|s| s.actions.get(run.action()));
        if let Some(namespace) = action.and_then(|a| a.namespace.clone()) {
            running.namespaces.insert(namespace, run.output_variables.clone());
        }
        for artifact in run.output_artifacts.iter() {
            running.artifacts.insert(artifact.name.to_string(), Arc::clone(artifact));
        }
    }
    running
}

/// The most recent standard execution of the current version that succeeded in `stage`, for an automatic rollback
/// of an execution that failed there (none: no rollback [DOC]). PARALLEL pipelines and rollback executions do not
/// roll back.
pub(super) fn automatic_rollback_target(
    record: &PipelineRecord,
    failed: ExecutionIndex,
    stage: usize,
) -> Option<ExecutionIndex> {
    let execution = &record.runtime.executions[failed];
    if execution.mode == ExecutionMode::Parallel || execution.execution_type == ExecutionType::Rollback {
        return None;
    }
    let name = stage_name(execution, stage)?;
    let version = record.version();
    record
        .runtime
        .executions
        .iter()
        .enumerate()
        .filter(|(_, e)| e.pipeline_version == version && e.execution_type == ExecutionType::Standard)
        .filter(|(_, e)| {
            let index = e.declaration.stages.iter().position(|s| s.name == name);
            index.and_then(|i| e.stages[i].as_ref()).is_some_and(|r| r.status == StageStatus::Succeeded)
        })
        .max_by_key(|(_, e)| e.seq)
        .map(|(i, _)| ExecutionIndex::at(i))
}

/// Starts a rollback execution of stage `stage` to execution `target`: it carries the target's revisions, variables
/// and the artifacts and namespaces of the stages before, and waits to enter that stage only.
pub(in crate::engine) fn start_rollback(
    record: &mut PipelineRecord,
    target: ExecutionIndex,
    stage: usize,
    trigger: ExecutionTrigger,
    ids: &Ids,
    now: Timestamp,
) -> String {
    let seq = record.runtime.w().seq();
    let id = ids.uuid();
    let source = &record.runtime.executions[target];
    // A source action run again reads its source as it is now, whatever revision the target was started with, and
    // reuses the target's artifact; the execution keeps naming the target's revisions [real AWS session, issue 28].
    let overrides: Box<[RevisionOverride]> = Box::default();
    let mut execution = Execution {
        id,
        seq,
        pipeline_version: source.pipeline_version,
        declaration: Arc::clone(&source.declaration),
        status: ExecutionStatus::InProgress,
        status_summary: None,
        trigger,
        mode: source.mode,
        execution_type: ExecutionType::Rollback,
        start_time: now,
        last_update_time: now,
        variables: source.variables.clone(),
        overrides,
        stop: None,
        place: Place::Waiting { stage, since: seq },
        stages: vec![None; source.stages.len()].into_boxed_slice(),
        actions: Vec::new(),
        running: None,
        sources: source.sources.clone(),
        rollback_target: Some(source.id),
        conditions: None,
    };
    // The target's outputs of the stages before, as a retry of the whole stage would see them.
    execution.running = Some(Box::new(outputs_before(source, |s| s < stage)));
    let index = ExecutionIndex::at(record.runtime.executions.end());
    record.runtime.w().push(execution);
    record.runtime.w().active.insert(index);
    changed(record, index, Entity::Pipeline, EventState::Started, now);
    id.to_string()
}
