//! The engine's core: pure functions of (pipeline runtime state, time) that move executions.
//!
//! [`advance`] brings every execution of one pipeline to a fixed point at a given time: it completes actions whose
//! result is due, starts the next runOrder group or stage, admits waiting executions into free stages according to
//! the execution mode, and returns the next time anything is due. Nothing here sleeps, touches a socket or reads a
//! clock, so plain unit tests cover every transition.

use crate::engine::Write;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::conditions;
use super::providers::{self, ActionStart};
use crate::state::behaviors::{self, BehaviorRule};
use crate::state::declaration::ConditionKind;
use crate::state::declaration::ConditionResult;
use crate::state::declaration::{ActionCategory, ActionOwner, ExecutionMode, StageDeclaration};
use crate::state::execution::{
    ActionRun, ActionStatus, ArtifactInstance, At, ConfigView, Execution, ExecutionIndex, ExecutionStatus,
    ExecutionTrigger, ExecutionType, Job, JobKind, JobStatus, Outcome, Pending, Place, Resolved, ResolvedVariable,
    RevisionOverride, RunExtra, RunIndex, StageRun, StageStatus,
};
use crate::state::execution::{Entity, EventState, RetryTrigger, RuleStatus, StateChange, TriggerType};
use crate::state::{PipelineRecord, Scope, Timestamp};

use super::ids::Ids;
use recovery::{automatic_retry, automatic_rollback_target, resume_stage, start_rollback};

/// What [`advance`] needs besides the pipeline.
pub struct StepEnv<'a> {
    pub scope: &'a Scope,
    /// The built-in action types: a ThirdParty type not among them is a partner integration run by job workers.
    pub catalogue: &'a crate::state::catalogue::Catalogue,
    pub pipeline: &'a str,
    pub behaviors: &'a [BehaviorRule],
    /// How long a simulated action takes, in milliseconds.
    pub duration_ms: i64,
    /// How many executions the pipeline keeps.
    pub max_executions: usize,
    /// Whether Lambda invoke actions call real functions (a Lambda endpoint is configured).
    pub lambda: bool,
    /// Whether output artifacts are real objects in an S3 neighbour (written before a simulated action ends).
    pub real: providers::artifacts::Real,
    /// Where the ids of new executions, runs, jobs and artifacts come from.
    pub ids: &'a super::ids::Ids,
    /// The emulated world source actions read.
    pub sources: &'a crate::state::sources::Sources,
}

/// A request to start an execution.
#[derive(Debug, Clone)]
pub struct StartRequest {
    pub trigger: ExecutionTrigger,
    /// Pipeline variable overrides (unknown names are ignored, as on AWS).
    pub variables: Vec<(String, String)>,
    pub overrides: Vec<RevisionOverride>,
}

/// Summary of an execution that fails at once because required variables have no value [NATIVE].
fn missing_variables_summary(names: &[String]) -> String {
    format!("Values for required variables haven't been provided: {}", names.join(", "))
}

/// Starts an execution of the pipeline's current version and returns its id. The execution waits to enter the
/// first stage; [`advance`] lets it in.
pub fn start_execution(record: &mut PipelineRecord, mut request: StartRequest, ids: &Ids, now: Timestamp) -> String {
    let version = record.version();
    let declaration = Arc::clone(record.current());
    let runtime = &mut record.runtime;
    request.trigger.trigger_detail = request.trigger.trigger_detail.map(|d| runtime.w().intern(&d));
    let seq = runtime.w().seq();
    let id = ids.uuid();

    let mut variables = Vec::new();
    let mut missing = Vec::new();
    for declared in declaration.variables.iter().flatten() {
        let value = request
            .variables
            .iter()
            .rev()
            .find(|(name, _)| name == &declared.name)
            .map(|(_, v)| v.clone())
            .or_else(|| declared.default_value.clone());
        match value {
            Some(value) => variables.push(ResolvedVariable { name: declared.name.clone(), resolved_value: value }),
            None => missing.push(declared.name.clone()),
        }
    }
    super::variables::aws_order(&mut variables, |v| v.name.as_str());
    let (status, summary, place) = if missing.is_empty() {
        (ExecutionStatus::InProgress, None, Place::Waiting { stage: 0, since: seq })
    } else {
        // No actions run and no resolved variables are shown [NATIVE].
        variables.clear();
        (ExecutionStatus::Failed, Some(missing_variables_summary(&missing).into_boxed_str()), Place::Done)
    };
    let execution = Execution {
        id,
        seq,
        pipeline_version: version,
        mode: declaration.mode(),
        stages: vec![None; declaration.stages.len()].into_boxed_slice(),
        declaration,
        status,
        status_summary: summary,
        trigger: request.trigger,
        execution_type: ExecutionType::Standard,
        start_time: now,
        last_update_time: now,
        variables: variables.into_boxed_slice(),
        overrides: request.overrides.into_boxed_slice(),
        stop: None,
        place,
        actions: Vec::new(),
        running: None,
        sources: Vec::new(),
        rollback_target: None,
        conditions: None,
    };
    let index = ExecutionIndex::at(runtime.executions.end());
    runtime.w().push(execution);
    changed(record, index, Entity::Pipeline, EventState::Started, now);
    if status.is_active() {
        record.runtime.w().active.insert(index);
        arrive(record, index, 0);
    } else if let Some(state) = pipeline_event(status) {
        // It failed at once (required variables without values): it started and failed.
        changed(record, index, Entity::Pipeline, state, now);
    }
    id.to_string()
}

/// Moves every execution of the pipeline as far as it can go at `now`; returns when something is next due.
pub fn advance(record: &mut PipelineRecord, env: &StepEnv, now: Timestamp) -> Option<Timestamp> {
    if record.runtime.executions.count() > env.max_executions {
        record.runtime.w().retain_executions(env.max_executions);
    }
    // Each pass either changes something or ends the loop; the bound only guards against a logic error.
    for _ in 0..100_000 {
        let mut changed = complete_due(record, now);
        for index in active(record) {
            if let Place::InStage { stage } = record.runtime.executions[index].place {
                changed |= progress_stage(record, index, stage, env, now);
            }
        }
        changed |= admit(record, env, now);
        if !changed {
            break;
        }
    }
    next_due(record)
}

fn active(record: &PipelineRecord) -> Vec<ExecutionIndex> {
    record.runtime.active.iter().copied().collect()
}

/// The outcome of a running action or rule whose result (or timeout) is due at `now`.
pub(super) fn due_outcome(pending: &Pending, now: Timestamp) -> Option<Outcome> {
    match pending {
        Pending::At(at, outcome) if *at <= now => Some((**outcome).clone()),
        Pending::External { timeout: Some(at), on_timeout } if *at <= now => {
            Some(Outcome::Fail((**on_timeout).clone()))
        }
        Pending::Storing { timeout: Some((at, on_timeout)), .. } if *at <= now => {
            Some(Outcome::Fail((**on_timeout).clone()))
        }
        _ => None,
    }
}

/// When a running action or rule is next due: its result, or its timeout.
fn due_at(pending: &Pending) -> Option<Timestamp> {
    match pending {
        Pending::At(at, _) => Some(*at),
        Pending::External { timeout, .. } => *timeout,
        // The worker's report moves it on, unless it times out first.
        Pending::Storing { timeout, .. } => timeout.as_ref().map(|(at, _)| *at),
        Pending::Nothing => None,
    }
}

/// Ends every running action and condition rule whose result (or timeout) is due.
fn complete_due(record: &mut PipelineRecord, now: Timestamp) -> bool {
    let mut changed = false;
    for index in active(record) {
        let due: Vec<(RunIndex, Outcome)> = record.runtime.executions[index]
            .actions
            .iter()
            .enumerate()
            .filter(|(_, run)| run.status == ActionStatus::InProgress)
            .filter_map(|(i, run)| Some((RunIndex::at(i), due_outcome(run.pending.as_deref()?, now)?)))
            .collect();
        for (run, outcome) in due {
            finish_action(record, index, run, outcome, now, FinishedBy::Simulation);
            // A job whose action timed out is TimedOut.
            if let Some(job) = record.runtime.job_of_run.get(&(index, run)).copied()
                && let Some(job) = record.runtime.w().jobs.get_mut(&job)
                && !job.status.is_terminal()
            {
                job.status = JobStatus::TimedOut;
            }
            changed = true;
        }
        for (rule, outcome) in conditions::due(record, index, now) {
            conditions::finish_rule(record, index, rule, outcome, now);
            changed = true;
        }
    }
    changed
}

/// The earliest time a running action's or rule's result or timeout is due.
fn next_due(record: &PipelineRecord) -> Option<Timestamp> {
    let executions = record.runtime.active.iter().map(|&i| &record.runtime.executions[i]);
    let actions = executions
        .clone()
        .flat_map(|e| e.actions.iter())
        .filter(|run| run.status == ActionStatus::InProgress)
        .filter_map(|run| due_at(run.pending.as_deref()?));
    let rules = executions
        .flat_map(|e| e.rules().iter())
        .filter(|run| run.status == RuleStatus::InProgress)
        .filter_map(|run| due_at(run.pending.as_deref()?));
    actions.chain(rules).min()
}

/// Takes the state changes recorded since the last call, oldest first (the engine publishes them as events; a
/// caller driving the step directly, like the engine benchmark, drops them).
pub fn take_changes(record: &mut PipelineRecord) -> Vec<StateChange> {
    std::mem::take(&mut record.runtime.w().changes)
}

/// Records a state change for the engine to publish as an event (see `engine::events`).
pub(super) fn changed(
    record: &mut PipelineRecord,
    execution: ExecutionIndex,
    entity: Entity,
    state: EventState,
    at: Timestamp,
) {
    record.runtime.w().changes.push(StateChange { execution, entity, state, at });
}

/// The event state of an execution's status, for the statuses that end it or stop it.
fn pipeline_event(status: ExecutionStatus) -> Option<EventState> {
    match status {
        ExecutionStatus::Succeeded => Some(EventState::Succeeded),
        ExecutionStatus::Failed => Some(EventState::Failed),
        ExecutionStatus::Stopped => Some(EventState::Stopped),
        ExecutionStatus::Stopping => Some(EventState::Stopping),
        ExecutionStatus::Superseded => Some(EventState::Superseded),
        ExecutionStatus::Cancelled => Some(EventState::Canceled),
        ExecutionStatus::InProgress => None,
    }
}

/// The summary of an execution cancelled because its pipeline was updated [issue 28].
pub const CANCELLED_BY_UPDATE: &str = "Pipeline definition was updated";

pub(super) fn set_status(record: &mut PipelineRecord, index: ExecutionIndex, status: ExecutionStatus, now: Timestamp) {
    if let Some(state) = pipeline_event(status) {
        changed(record, index, Entity::Pipeline, state, now);
    }
    let execution = &mut record.runtime.w().executions[index];
    execution.status = status;
    execution.last_update_time = now;
    // A stop's reason becomes the summary once the execution has stopped; while stopping AWS shows none [NATIVE].
    if status == ExecutionStatus::Stopped
        && let Some(reason) = execution.stop.as_ref().and_then(|s| s.reason.as_deref())
    {
        execution.status_summary = Some(reason.into());
    }
    // An execution overtaken by an update of its pipeline, in AWS's words [issue 28].
    if status == ExecutionStatus::Cancelled {
        execution.status_summary = Some(CANCELLED_BY_UPDATE.into());
    }
    if !status.is_active() {
        execution.place = Place::Done;
        execution.compact();
        record.runtime.w().active.remove(&index);
    }
}

/// The execution arrives in front of `stage`. In SUPERSEDED mode a newer arrival supersedes the execution already
/// waiting there (supersession happens only between stages, never inside one).
fn arrive(record: &mut PipelineRecord, index: ExecutionIndex, stage: usize) {
    let since = record.runtime.w().seq();
    let execution = &mut record.runtime.w().executions[index];
    execution.place = Place::Waiting { stage, since };
    if execution.mode != ExecutionMode::Superseded {
        return;
    }
    let stage_name = execution.declaration.stages.get(stage).map(|s| s.name.clone());
    let last_update = execution.last_update_time;
    let superseded: Vec<ExecutionIndex> = active(record)
        .into_iter()
        .filter(|&other| other != index)
        .filter(|&other| {
            let o = &record.runtime.executions[other];
            o.mode == ExecutionMode::Superseded
                && matches!(o.place, Place::Waiting { stage: s, .. } if o.declaration.stages.get(s).map(|st| &st.name) == stage_name.as_ref())
        })
        .collect();
    for other in superseded {
        set_status(record, other, ExecutionStatus::Superseded, last_update);
    }
}

/// The name of stage `stage` of an execution.
pub(super) fn stage_name(execution: &Execution, stage: usize) -> Option<&str> {
    execution.declaration.stages.get(stage).map(|s| s.name.as_str())
}

/// Whether some execution occupies the stage named `name` (locks are by stage name, across versions).
pub(super) fn locked(record: &PipelineRecord, name: &str) -> bool {
    record.runtime.active.iter().any(|&i| {
        let e = &record.runtime.executions[i];
        matches!(e.place, Place::InStage { stage } if stage_name(e, stage) == Some(name)
            && e.stages[stage].as_ref().is_some_and(|r| r.status.holds_lock()))
    })
}

/// Lets waiting executions into their stage where the transition is enabled and the mode allows it.
fn admit(record: &mut PipelineRecord, env: &StepEnv, now: Timestamp) -> bool {
    let mut waiting: BTreeMap<String, Vec<(u64, ExecutionIndex, usize)>> = BTreeMap::new();
    for index in active(record) {
        let e = &record.runtime.executions[index];
        if let Place::Waiting { stage, since } = e.place
            && let Some(name) = stage_name(e, stage)
        {
            waiting.entry(name.to_string()).or_default().push((since, index, stage));
        }
    }
    let mut changed = false;
    for (name, mut candidates) in waiting {
        if !record.runtime.transition(&name).enabled {
            continue;
        }
        candidates.sort_unstable();
        // PARALLEL executions take no lock and never wait for one.
        for &(_, index, stage) in &candidates {
            if record.runtime.executions[index].mode == ExecutionMode::Parallel {
                enter(record, index, stage, env, now);
                changed = true;
            }
        }
        if locked(record, &name) {
            continue;
        }
        // QUEUED: first come, first served. SUPERSEDED: only the newest is still waiting.
        let next = candidates.iter().find(|(_, index, _)| {
            let e = &record.runtime.executions[*index];
            e.mode != ExecutionMode::Parallel && matches!(e.place, Place::Waiting { .. })
        });
        if let Some(&(_, index, stage)) = next {
            enter(record, index, stage, env, now);
            changed = true;
        }
    }
    changed
}

/// The distinct runOrders of a stage, ascending: group `n` is the actions with the `n`th of them.
fn orders(stage: &StageDeclaration) -> Vec<i32> {
    let orders: BTreeSet<i32> = stage.actions.iter().map(|a| a.order()).collect();
    orders.into_iter().collect()
}

/// The action indices of group `group` of a stage.
fn group_members(stage: &StageDeclaration, group: u32) -> Vec<usize> {
    let Some(order) = orders(stage).get(group as usize).copied() else { return Vec::new() };
    stage.actions.iter().enumerate().filter(|(_, a)| a.order() == order).map(|(i, _)| i).collect()
}

fn enter(record: &mut PipelineRecord, index: ExecutionIndex, stage: usize, env: &StepEnv, now: Timestamp) {
    let execution = &mut record.runtime.w().executions[index];
    let Some(declared) = execution.declaration.stages.get(stage) else { return };
    let name = declared.name.clone();
    let entry_condition = declared.condition(ConditionKind::BeforeEntry).is_some();
    execution.stages[stage] = Some(StageRun::entered(now));
    execution.place = Place::InStage { stage };
    execution.last_update_time = now;
    record.runtime.w().latest_in_stage.insert(name, index);
    changed(record, index, Entity::stage(stage), EventState::Started, now);
    if entry_condition {
        conditions::start(record, index, stage, ConditionKind::BeforeEntry, env, now);
    } else {
        start_group(record, index, stage, env, now);
    }
}

pub(super) fn start_group(
    record: &mut PipelineRecord,
    index: ExecutionIndex,
    stage: usize,
    env: &StepEnv,
    now: Timestamp,
) {
    let execution = &record.runtime.executions[index];
    let actions = match (execution.stages[stage].as_ref(), execution.declaration.stages.get(stage)) {
        (Some(run), Some(declared)) => group_members(declared, run.group),
        _ => Vec::new(),
    };
    for action in actions {
        start_action(record, index, stage, action, env, now);
    }
}

fn start_action(
    record: &mut PipelineRecord,
    index: ExecutionIndex,
    stage: usize,
    action_index: usize,
    env: &StepEnv,
    now: Timestamp,
) {
    let seq = record.runtime.w().seq();
    let execution = &record.runtime.executions[index];
    let declaration = Arc::clone(&execution.declaration);
    let Some(stage_declared) = declaration.stages.get(stage) else { return };
    let Some(action) = stage_declared.actions.get(action_index) else { return };
    let id = env.ids.uuid();
    let worker = job_kind(env, &action.action_type_id);

    let declared_config = action.configuration.as_ref();
    let resolved = resolve_configuration(execution, declared_config, "action", &action.name, ACTION_VALUE_LIMIT);
    let region = action.region.as_deref().unwrap_or(&env.scope.region);
    let store = bucket(&declaration, region);
    let names: Vec<(Arc<str>, Arc<str>)> = action
        .output_artifacts
        .iter()
        .flatten()
        .map(|a| (record.runtime.w().intern(&a.name), record.runtime.w().intern(&store)))
        .collect();
    let execution = &record.runtime.executions[index];
    let input_artifacts = inputs(execution, action.input_artifacts.as_deref());
    let source = action.action_type_id.category == ActionCategory::Source;
    // A source action of a rollback reuses its target's artifact [real AWS session, issue 28].
    let reused = source.then(|| rollback_outputs(record, index, stage, action_index)).flatten();
    let output_artifacts: Box<[Arc<ArtifactInstance>]> = match reused {
        Some(reused) => reused,
        None => names
            .into_iter()
            .map(|(name, bucket)| {
                let key = artifact_key(env.pipeline, &name, source, env.ids).into_boxed_str();
                Arc::new(ArtifactInstance { name, bucket, key })
            })
            .collect(),
    };
    let execution = &record.runtime.executions[index];
    let (status, pending, error, resolved) = match resolved {
        Err(error) => (ActionStatus::Failed, Pending::Nothing, Some(error), Resolved::default()),
        Ok(resolved) => {
            let behavior =
                behaviors::for_action(env.behaviors, env.scope, env.pipeline, &stage_declared.name, &action.name);
            let action_execution_id = id.to_string();
            let execution_id = execution.id.to_string();
            let pending = providers::start(&ActionStart {
                action,
                configuration: ConfigView::new(declared_config, Some(&resolved)),
                account: &env.scope.account,
                region,
                pipeline: env.pipeline,
                execution_id: &execution_id,
                action_execution_id: &action_execution_id,
                now,
                duration_ms: env.duration_ms,
                overrides: &execution.overrides,
                behavior,
                job_worker: worker.is_some(),
                ids: env.ids,
                sources: env.sources,
                real: env.real,
            });
            (ActionStatus::InProgress, pending, None, resolved)
        }
    };
    // With an S3 neighbour, simulated work that succeeds writes its output artifacts before it ends, and an S3
    // deploy deploys.
    let stores = |outcome: &Outcome| {
        let has_outputs = !output_artifacts.is_empty();
        providers::artifacts::stores_first(env.real, &action.action_type_id, has_outputs, outcome)
    };
    let pending = match pending {
        Pending::At(at, outcome) if stores(&outcome) => providers::storing(action, env.real, now, at, outcome),
        other => other,
    };
    let storing = matches!(pending, Pending::Storing { .. });
    let is_approval = action.action_type_id.category == ActionCategory::Approval;
    let waits = matches!(pending, Pending::External { .. });
    let pending = (!matches!(pending, Pending::Nothing)).then(|| Box::new(pending));
    let resolved_configuration = record.runtime.w().executions[index].keep_resolved(resolved);
    let region = action.region.clone().filter(|r| r != &env.scope.region);
    let extra = (error.is_some() || resolved_configuration.is_some() || region.is_some())
        .then(|| Box::new(RunExtra { error, resolved_configuration, region, ..RunExtra::default() }));
    let run = ActionRun {
        awaits_approval: is_approval && waits,
        id,
        seq: u32::try_from(seq).unwrap_or(u32::MAX),
        stage_index: u32::try_from(stage).unwrap_or(u32::MAX),
        action_index: u32::try_from(action_index).unwrap_or(u32::MAX),
        status,
        summary: None,
        external_execution_id: None,
        last_status_change: (status != ActionStatus::InProgress).then_some(now),
        start_time: now,
        last_update_time: now,
        input_artifacts,
        output_artifacts,
        output_variables: Box::default(),
        pending,
        extra,
    };
    let execution = &mut record.runtime.w().executions[index];
    let run_index = RunIndex::next(&execution.actions);
    let failed_at_once = run.status == ActionStatus::Failed;
    execution.actions.push(run);
    changed(record, index, Entity::Action(run_index), EventState::Started, now);
    if failed_at_once {
        changed(record, index, Entity::Action(run_index), EventState::Failed, now);
    }
    let execution = &mut record.runtime.w().executions[index];
    execution.last_update_time = now;
    if let Some(stage_run) = execution.stages[stage].as_mut() {
        stage_run.runs.push(run_index);
    }
    let key = (stage_declared.name.clone(), action.name.clone());
    record.runtime.w().latest_runs.insert(key, (index, run_index));
    if waits && let Some(kind) = worker {
        create_job(record, index, run_index, kind, None, env.ids, now);
    }
    if storing {
        record.runtime.w().undelivered_artifacts.push((index, run_index));
    }
}

/// Who works actions of this type, if not the emulator's simulation: custom types have job workers, partner
/// (ThirdParty) types other than the built-in ones the emulator simulates have partner job workers, and Lambda
/// invoke actions call a real function when a Lambda endpoint is configured.
fn job_kind(env: &StepEnv, id: &crate::state::declaration::ActionTypeId) -> Option<JobKind> {
    match id.owner {
        ActionOwner::Custom => Some(JobKind::Custom),
        ActionOwner::ThirdParty => env.catalogue.action_type(id).is_none().then_some(JobKind::ThirdParty),
        ActionOwner::Aws => {
            (env.lambda && id.category == ActionCategory::Invoke && id.provider == "Lambda").then_some(JobKind::Lambda)
        }
    }
}

/// Creates a job for a running action worked outside the emulator (or the next job of one that returned a
/// continuation token).
pub fn create_job(
    record: &mut PipelineRecord,
    execution: ExecutionIndex,
    run: RunIndex,
    kind: JobKind,
    continuation_token: Option<String>,
    ids: &Ids,
    now: Timestamp,
) -> uuid::Uuid {
    let id = ids.uuid();
    let job = Job {
        id,
        execution,
        run,
        status: JobStatus::Created,
        nonce: None,
        visible_at: now,
        continuation_token,
        result: None,
        created: now,
        kind,
    };
    if kind == JobKind::Lambda {
        record.runtime.w().undelivered.push(id);
    }
    record.runtime.w().jobs.insert(id, job);
    record.runtime.w().job_of_run.insert((execution, run), id);
    id
}

/// Who ended an action run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FinishedBy {
    /// The emulator's simulation (or a timeout): its summaries repeat from execution to execution, so the pipeline
    /// keeps one copy of each.
    Simulation,
    /// A job worker, a Lambda function or a control request.
    Worker,
    /// An approver, who shows as the run's `updatedBy`.
    Approver(String),
}

/// Ends a running action with `outcome`.
pub fn finish_action(
    record: &mut PipelineRecord,
    index: ExecutionIndex,
    run_index: RunIndex,
    outcome: Outcome,
    now: Timestamp,
    by: FinishedBy,
) {
    // Only a running action ends (a late result for one that ended otherwise changes nothing).
    let running = record.runtime.executions.at(index).and_then(|e| e.actions.at(run_index));
    if running.is_none_or(|run| run.status != ActionStatus::InProgress) {
        return;
    }
    let mut summary: Option<Arc<str>> = match (&outcome, &by) {
        (Outcome::Succeed(success), FinishedBy::Simulation) => {
            success.summary.as_deref().map(|s| record.runtime.w().intern(s))
        }
        (Outcome::Succeed(success), _) => success.summary.as_deref().map(Arc::from),
        (Outcome::Fail(_), _) => None,
    };
    // Variable names repeat across executions: share them.
    let mut variables_out: Option<crate::state::execution::Variables> = match &outcome {
        Outcome::Succeed(success) => Some(
            success
                .output_variables
                .iter()
                .map(|(k, v)| (record.runtime.w().intern(k), v.clone().into_boxed_str()))
                .collect(),
        ),
        Outcome::Fail(_) => None,
    };
    let execution = &mut record.runtime.w().executions[index];
    let declaration = Arc::clone(&execution.declaration);
    let Some(run) = execution.actions.at_mut(run_index) else { return };
    let action = declaration.stages.get(run.stage()).and_then(|s| s.actions.get(run.action()));
    let mut revision = None;
    match outcome {
        Outcome::Succeed(success) => {
            run.status = ActionStatus::Succeeded;
            run.summary = summary.take();
            // An id reported earlier (with a continuation, or Lambda's request id) stays unless replaced.
            if let Some(id) = success.external_execution_id {
                run.external_execution_id = Some(id.into_boxed_str());
            }
            if success.external_execution_url.is_some() {
                run.extra_mut().external_execution_url = success.external_execution_url;
            }
            run.output_variables = variables_out.take().unwrap_or_default();
            revision = success.revision;
            // A source's run summary is usually its revision's: keep the text once.
            if let (Some(r), Some(summary)) = (revision.as_mut(), run.summary.as_ref())
                && r.summary.as_deref() == Some(&**summary)
            {
                r.summary = Some(Arc::clone(summary));
            }
        }
        Outcome::Fail(error) => {
            run.status = ActionStatus::Failed;
            run.extra_mut().error = Some(error);
        }
    }
    run.pending = None;
    run.awaits_approval = false;
    run.last_status_change = Some(now);
    run.last_update_time = now;
    if let FinishedBy::Approver(by) = by {
        run.extra_mut().updated_by = Some(by);
    }
    let succeeded = run.status == ActionStatus::Succeeded;
    let outputs = run.output_artifacts.clone();
    let variables = run.output_variables.clone();
    let action_index = run.action_index;
    execution.last_update_time = now;
    let state = if succeeded { EventState::Succeeded } else { EventState::Failed };
    changed(record, index, Entity::Action(run_index), state, now);
    if !succeeded {
        return;
    }
    let execution = &mut record.runtime.w().executions[index];
    let running = execution.running_mut();
    if let Some(namespace) = action.and_then(|a| a.namespace.clone()) {
        running.namespaces.insert(namespace, variables);
    }
    for artifact in outputs.iter() {
        running.artifacts.insert(artifact.name.to_string(), Arc::clone(artifact));
    }
    // Only a source action's revision is the execution's: another's `currentRevision` is not shown [real AWS
    // session, issue 28].
    let action = action.filter(|a| a.action_type_id.category == ActionCategory::Source);
    // A rollback's source action shows what it read now, on itself and in the stage's current revision; the
    // execution keeps naming its target's revisions [real AWS session, issue 28].
    let rollback = execution.execution_type == ExecutionType::Rollback;
    if let (Some(revision), Some(action), true) = (revision.as_ref(), action, rollback) {
        record.runtime.w().current_revisions.insert(action.name.clone(), revision.clone());
        return;
    }
    if let (Some(revision), Some(action)) = (revision, action) {
        // An action run again (a retry, a rollback) replaces what it picked up before. The revision of the polling
        // action that started the execution comes first [real AWS session, issue 28].
        let triggered = execution.trigger.trigger_type == TriggerType::PollForSourceChanges
            && execution.trigger.trigger_detail.as_deref() == Some(action.name.as_str());
        match execution.sources.iter_mut().find(|(i, _)| *i == action_index) {
            Some(known) => known.1 = revision.clone(),
            None if triggered => execution.sources.insert(0, (action_index, revision.clone())),
            None => execution.sources.push((action_index, revision.clone())),
        }
        record.runtime.w().current_revisions.insert(action.name.clone(), revision);
    }
}

/// Moves an execution inside `stage`: its condition, the next group, the next stage, or the end.
fn progress_stage(
    record: &mut PipelineRecord,
    index: ExecutionIndex,
    stage: usize,
    env: &StepEnv,
    now: Timestamp,
) -> bool {
    let execution = &record.runtime.executions[index];
    let Some(run) = execution.stages[stage].as_ref() else { return false };
    if !run.status.holds_lock() {
        return false;
    }
    if execution.condition_in_progress(stage).is_some() {
        return conditions::check(record, index, stage, env, now);
    }
    // A stopping execution whose actions have all ended stops (also when an abandoned condition ran no action).
    let idle = run.runs.iter().filter_map(|&r| execution.actions.at(r)).all(|a| a.status != ActionStatus::InProgress);
    if let Some(stop) = execution.stop.as_ref().filter(|_| idle) {
        end_stage(record, index, stage, stop.stage_status(), None, env, now);
        return true;
    }
    let Some(declared) = execution.declaration.stages.get(stage) else { return false };
    let group: BTreeSet<usize> = group_members(declared, run.group).into_iter().collect();
    // The latest attempt of each action of the current group.
    let latest: BTreeMap<usize, ActionStatus> =
        latest_attempts(execution, &run.runs).into_iter().filter(|(action, _)| group.contains(action)).collect();
    if latest.len() < group.len() || latest.values().any(|s| *s == ActionStatus::InProgress) {
        return false;
    }
    let failed = latest.values().any(|s| *s == ActionStatus::Failed);
    let last_group = run.group as usize + 1 >= orders(declared).len();

    let (stage_status, condition) = if failed {
        (StageStatus::Failed, Some(ConditionKind::OnFailure))
    } else if !last_group {
        (StageStatus::InProgress, None)
    } else {
        (StageStatus::Succeeded, Some(ConditionKind::OnSuccess))
    };
    // A stage with a success or failure condition evaluates it before it ends.
    if let Some(kind) = condition.filter(|&kind| declared.condition(kind).is_some()) {
        conditions::start(record, index, stage, kind, env, now);
        return true;
    }
    if stage_status == StageStatus::InProgress {
        let execution = &mut record.runtime.w().executions[index];
        execution.last_update_time = now;
        if let Some(run) = execution.stages[stage].as_mut() {
            run.group += 1;
        }
        start_group(record, index, stage, env, now);
        return true;
    }
    // An onFailure without conditions applies its result to every failure.
    let then = declared.on_failure.as_ref().and_then(|f| f.unconditional_result());
    end_stage(record, index, stage, stage_status, then.filter(|_| stage_status == StageStatus::Failed), env, now);
    true
}

/// Ends an execution's run of `stage` with `status` (Succeeded, Skipped, Failed, Stopped or Cancelled) and moves the execution
/// on: to the next stage, or to its end. A failed stage then retries itself or rolls back when `then` says so.
pub(super) fn end_stage(
    record: &mut PipelineRecord,
    index: ExecutionIndex,
    stage: usize,
    status: StageStatus,
    then: Option<ConditionResult>,
    env: &StepEnv,
    now: Timestamp,
) {
    let execution = &mut record.runtime.w().executions[index];
    let last_stage = stage + 1 >= execution.declaration.stages.len();
    execution.last_update_time = now;
    if let Some(run) = execution.stages[stage].as_mut() {
        run.status = status;
    }
    // UNCONFIRMED: AWS documents no event for a skipped stage; none is sent.
    let state = match status {
        StageStatus::Succeeded => Some(EventState::Succeeded),
        StageStatus::Failed => Some(EventState::Failed),
        StageStatus::Stopped => Some(EventState::Stopped),
        StageStatus::Cancelled => Some(EventState::Canceled),
        StageStatus::InProgress | StageStatus::Stopping | StageStatus::Skipped => None,
    };
    if let Some(state) = state {
        changed(record, index, Entity::stage(stage), state, now);
    }
    match status {
        StageStatus::Stopped => set_status(record, index, ExecutionStatus::Stopped, now),
        StageStatus::Cancelled => set_status(record, index, ExecutionStatus::Cancelled, now),
        StageStatus::Failed => {
            set_status(record, index, ExecutionStatus::Failed, now);
            match then {
                Some(ConditionResult::Retry) => {
                    if let Some(all) = automatic_retry(&record.runtime.executions[index], stage) {
                        resume_stage(record, index, stage, all, RetryTrigger::AutomatedStageRetry, env, now);
                    }
                }
                Some(ConditionResult::Rollback) => {
                    if let Some(target) = automatic_rollback_target(record, index, stage) {
                        let failed = record.runtime.executions[index].id.to_string();
                        let trigger = ExecutionTrigger {
                            trigger_type: TriggerType::AutomatedRollback,
                            trigger_detail: Some(failed.into()),
                        };
                        start_rollback(record, target, stage, trigger, env.ids, now);
                    }
                }
                _ => {}
            }
        }
        // A rollback execution runs its one stage and does not go on [NATIVE].
        _ if last_stage || record.runtime.executions[index].execution_type == ExecutionType::Rollback => {
            set_status(record, index, ExecutionStatus::Succeeded, now)
        }
        _ => arrive(record, index, stage + 1),
    }
}

/// The status of the latest attempt of each action (by index in its stage) among a stage's runs.
fn latest_attempts(execution: &Execution, runs: &[RunIndex]) -> BTreeMap<usize, ActionStatus> {
    runs.iter().filter_map(|&r| execution.actions.at(r)).map(|run| (run.action(), run.status)).collect()
}

mod outputs;
pub mod recovery;
mod resolve;

pub(super) use outputs::inputs;
use outputs::{artifact_key, bucket, rollback_outputs};
pub(super) use resolve::resolve_configuration;
pub use resolve::{ACTION_VALUE_LIMIT, RESOLVED_EXECUTION_LIMIT, RESOLVED_TOTAL_LIMIT, RULE_VALUE_LIMIT};

#[cfg(test)]
mod tests;
