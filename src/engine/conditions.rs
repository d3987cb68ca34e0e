//! Stage conditions (behaviour.md §5.2): the entry condition checked before a stage's actions run, and the
//! conditions checked when the stage succeeds or fails. A condition's rules run side by side; it passes when all
//! succeed, and otherwise its `result` applies:
//!
//! | condition   | passes                     | fails                                                  |
//! |-------------|----------------------------|--------------------------------------------------------|
//! | beforeEntry | the actions start          | `FAIL`: the stage fails; `SKIP`: it is Skipped         |
//! | onSuccess   | the stage succeeds         | `FAIL`: the stage fails; `ROLLBACK`: it fails and rolls back |
//! | onFailure   | the stage fails as it is   | `ROLLBACK`: automatic rollback; `RETRY`: one automatic retry |
//!
//! An in-progress entry or success condition can be overridden (OverrideStageCondition): it counts as passed.
//! Like `step`, these are pure functions of the pipeline's state and the time.

use crate::engine::Write;
use std::sync::Arc;

use super::lambda;
use super::rules::{self, RuleStart};
use super::step::{self, StepEnv};
use crate::state::behaviors;
use crate::state::declaration::ConditionKind;
use crate::state::declaration::ConditionResult;
use crate::state::execution::{
    At, ConditionRun, ConditionStatus, ConfigView, ExecutionIndex, Outcome, Pending, Resolved, RuleRun, RuleRunIndex,
    RuleStatus, StageStatus,
};
use crate::state::{PipelineRecord, Timestamp};

/// Starts evaluating the stage's condition of `kind`: one rule execution per rule, all at once.
pub(super) fn start(
    record: &mut PipelineRecord,
    index: ExecutionIndex,
    stage: usize,
    kind: ConditionKind,
    env: &StepEnv,
    now: Timestamp,
) {
    let declaration = Arc::clone(&record.runtime.executions[index].declaration);
    let Some(stage_declared) = declaration.stages.get(stage) else { return };
    let rules = stage_declared.condition(kind).and_then(|c| c.rules.as_deref()).unwrap_or_default();
    let mut started = Vec::with_capacity(rules.len());
    for (rule_index, rule) in rules.iter().enumerate() {
        let seq = record.runtime.w().seq();
        let execution = &record.runtime.executions[index];
        let declared = rule.configuration.as_ref();
        let mut invoke = false;
        let resolved = step::resolve_configuration(execution, declared, "rule", &rule.name, step::RULE_VALUE_LIMIT);
        let (pending, resolved) = match resolved {
            Err(error) => (Pending::At(now, Box::new(Outcome::Fail(error))), Resolved::default()),
            Ok(resolved) => {
                let behavior =
                    behaviors::for_rule(env.behaviors, env.scope, env.pipeline, &stage_declared.name, &rule.name);
                // With a Lambda endpoint, a LambdaInvoke rule calls its function for real; behaviour rules still win.
                let pending = if behavior.is_none() && env.lambda && rule.rule_type_id.provider == "LambdaInvoke" {
                    invoke = true;
                    lambda::rule_pending(now)
                } else {
                    let ctx = RuleStart {
                        rule,
                        configuration: ConfigView::new(declared, Some(&resolved)),
                        pattern: declaration.pattern(stage, kind, rule_index),
                        now,
                        duration_ms: env.duration_ms,
                        behavior,
                    };
                    rules::start(&ctx)
                };
                (pending, resolved)
            }
        };
        let input_artifacts = step::inputs(execution, rule.input_artifacts.as_deref());
        let resolved_configuration = record.runtime.w().executions[index].keep_resolved(resolved);
        let run = RuleRun {
            id: env.ids.uuid(),
            seq: u32::try_from(seq).unwrap_or(u32::MAX),
            stage_index: u32::try_from(stage).unwrap_or(u32::MAX),
            kind,
            rule_index: u32::try_from(rule_index).unwrap_or(u32::MAX),
            status: RuleStatus::InProgress,
            summary: None,
            external_execution_id: None,
            start_time: now,
            last_update_time: now,
            last_status_change: None,
            pending: Some(Box::new(pending)),
            error: None,
            resolved_configuration,
            input_artifacts,
        };
        let rules = &mut record.runtime.w().executions[index].conditions_mut().rules;
        let position = RuleRunIndex::next(rules);
        started.push(position);
        rules.push(run);
        if invoke {
            record.runtime.w().undelivered_rules.push((index, position));
        }
    }
    let execution = &mut record.runtime.w().executions[index];
    execution.last_update_time = now;
    let stage_index = u32::try_from(stage).unwrap_or(u32::MAX);
    let evaluations = &mut execution.conditions_mut().evaluations;
    evaluations.retain(|c| c.stage != stage_index || c.kind != kind);
    evaluations.push(ConditionRun {
        stage: stage_index,
        kind,
        status: ConditionStatus::InProgress,
        summary: None,
        last_status_change: now,
        rules: started,
    });
}

/// Ends a running rule with `outcome`.
pub fn finish_rule(
    record: &mut PipelineRecord,
    index: ExecutionIndex,
    rule: RuleRunIndex,
    outcome: Outcome,
    now: Timestamp,
) {
    let execution = &mut record.runtime.w().executions[index];
    let Some(run) = execution.conditions.as_mut().and_then(|c| c.rules.at_mut(rule)) else { return };
    if run.status != RuleStatus::InProgress {
        return;
    }
    match outcome {
        Outcome::Succeed(success) => {
            run.status = RuleStatus::Succeeded;
            run.summary = success.summary.map(String::into_boxed_str);
            run.external_execution_id = success.external_execution_id.map(String::into_boxed_str);
        }
        Outcome::Fail(error) => {
            run.status = RuleStatus::Failed;
            run.summary = Some(error.message.as_str().into());
            run.error = Some(Box::new(error));
        }
    }
    run.pending = None;
    run.last_status_change = Some(now);
    run.last_update_time = now;
    execution.last_update_time = now;
}

/// Abandons a condition's running rules (the execution was abandoned, or the condition overridden).
pub(super) fn abandon_rules(
    record: &mut PipelineRecord,
    index: ExecutionIndex,
    rules: &[RuleRunIndex],
    now: Timestamp,
) {
    let Some(conditions) = record.runtime.w().executions[index].conditions.as_mut() else { return };
    for &rule in rules {
        if let Some(run) = conditions.rules.at_mut(rule)
            && run.status == RuleStatus::InProgress
        {
            run.status = RuleStatus::Abandoned;
            run.pending = None;
            run.last_status_change = Some(now);
            run.last_update_time = now;
        }
    }
}

/// Ends the condition being evaluated in `stage` with `status`.
pub(super) fn close(
    record: &mut PipelineRecord,
    index: ExecutionIndex,
    stage: usize,
    status: ConditionStatus,
    now: Timestamp,
) {
    let Some(conditions) = record.runtime.w().executions[index].conditions.as_mut() else { return };
    let running = conditions
        .evaluations
        .iter_mut()
        .find(|c| c.stage as usize == stage && c.status == ConditionStatus::InProgress);
    if let Some(condition) = running {
        condition.status = status;
        condition.last_status_change = now;
        condition.summary = match status {
            ConditionStatus::Overridden => Some("The condition was overridden.".into()),
            ConditionStatus::Abandoned => Some("The condition was abandoned.".into()),
            _ => None,
        };
    }
}

/// Stop-and-abandon: the condition being evaluated in `stage` is abandoned with its running rules.
pub(super) fn abandon(record: &mut PipelineRecord, index: ExecutionIndex, stage: usize, now: Timestamp) {
    let rules =
        record.runtime.executions[index].condition_in_progress(stage).map(|c| c.rules.clone()).unwrap_or_default();
    if rules.is_empty() {
        return;
    }
    abandon_rules(record, index, &rules, now);
    close(record, index, stage, ConditionStatus::Abandoned, now);
}

/// Moves a stage whose condition is being evaluated: once every rule has ended, applies the outcome. Returns whether
/// anything changed.
pub(super) fn check(
    record: &mut PipelineRecord,
    index: ExecutionIndex,
    stage: usize,
    env: &StepEnv,
    now: Timestamp,
) -> bool {
    let execution = &record.runtime.executions[index];
    let Some(condition) = execution.condition_in_progress(stage) else { return false };
    let kind = condition.kind;
    let statuses: Vec<RuleStatus> =
        condition.rules.iter().filter_map(|&r| execution.rules().at(r)).map(|r| r.status).collect();
    if statuses.contains(&RuleStatus::InProgress) {
        return false;
    }
    let passed = statuses.iter().all(|s| *s == RuleStatus::Succeeded);
    let stopping = execution.stop.as_ref().map(|s| s.stage_status());
    let declared = execution.declaration.stages.get(stage);
    // A condition without a result fails the stage; onFailure may give its result once for all its conditions.
    let result = declared
        .and_then(|d| d.condition(kind))
        .and_then(|c| c.result)
        .or_else(|| declared.and_then(|d| d.on_failure.as_ref()).filter(|_| kind == ConditionKind::OnFailure)?.result)
        .unwrap_or(ConditionResult::Fail);
    close(record, index, stage, if passed { ConditionStatus::Succeeded } else { ConditionStatus::Failed }, now);
    if let Some(status) = stopping {
        step::end_stage(record, index, stage, status, None, env, now);
        return true;
    }
    proceed(record, index, stage, kind, passed.then_some(()).ok_or(result), env, now);
    true
}

/// Goes on after a condition of `kind` has passed (`Ok`) or failed with its result (`Err`).
pub(super) fn proceed(
    record: &mut PipelineRecord,
    index: ExecutionIndex,
    stage: usize,
    kind: ConditionKind,
    outcome: Result<(), ConditionResult>,
    env: &StepEnv,
    now: Timestamp,
) {
    let (status, then) = match (kind, outcome) {
        (ConditionKind::BeforeEntry, Ok(())) => {
            step::start_group(record, index, stage, env, now);
            return;
        }
        (ConditionKind::OnSuccess, Ok(())) => (StageStatus::Succeeded, None),
        // The failure handling's rules did not call for its result: the stage just fails.
        (ConditionKind::OnFailure, Ok(())) => (StageStatus::Failed, None),
        (ConditionKind::BeforeEntry, Err(ConditionResult::Skip)) => (StageStatus::Skipped, None),
        // UNCONFIRMED: a stage that fails its entry condition ran no action, so its onFailure handling does not
        // apply.
        (ConditionKind::BeforeEntry, Err(_)) => (StageStatus::Failed, None),
        (_, Err(result)) => (StageStatus::Failed, Some(result)),
    };
    step::end_stage(record, index, stage, status, then, env, now);
}

/// The rule runs whose result or timeout is due at `now`.
pub(super) fn due(record: &PipelineRecord, index: ExecutionIndex, now: Timestamp) -> Vec<(RuleRunIndex, Outcome)> {
    record.runtime.executions[index]
        .rules()
        .iter()
        .enumerate()
        .filter(|(_, run)| run.status == RuleStatus::InProgress)
        .filter_map(|(i, run)| Some((RuleRunIndex::at(i), step::due_outcome(run.pending.as_deref()?, now)?)))
        .collect()
}
