//! The pure step function, without sockets or sleeps: time is a number the tests move.

use std::sync::Arc;

use serde_json::{Value, json};

use super::*;
use crate::engine::commands::Command;
use crate::engine::commands::approval::{AnswerApproval, ApprovalRefusal};
use crate::engine::commands::condition::{OverrideCondition, OverrideRefusal};
use crate::engine::commands::job::{AcknowledgeJob, ReportJob};
use crate::engine::commands::retry::{Retry, RetryRefusal};
use crate::engine::commands::rollback::{Rollback, RollbackRefusal};
use crate::engine::commands::stop::{APPROVAL_CANCELED, Stop, StopRefusal};
use crate::engine::commands::update::UpdateDefinition;
use crate::engine::jobs::{JobRefusal, JobReport};
use crate::state::behaviors::{BehaviorOutcome, BehaviorRule};
use crate::state::declaration::{PipelineDeclaration, PipelineType};
use crate::state::execution::{ActionStatus, ExecutionStatus, Outcome, StageStatus, Success, TransitionState};
use crate::state::execution::{ConditionStatus, ErrorDetails, FailureType};
use crate::state::{Definition, PipelineRecord, Scope, Timestamp};

const DURATION: i64 = 10;

fn at(category: &str, provider: &str) -> Value {
    json!({"category": category, "owner": "AWS", "provider": provider, "version": "1"})
}

/// Source (S3) -> Build (two parallel CodeBuild actions, then one at runOrder 2) -> Approve (manual) -> Deploy.
fn declaration(mode: &str) -> Value {
    json!({
        "name": "p", "roleArn": "arn:aws:iam::123456789012:role/r", "executionMode": mode,
        "artifactStore": {"type": "S3", "location": "artifact-bucket"},
        "stages": [
            {"name": "Source", "actions": [{"name": "Src", "namespace": "SourceVariables", "actionTypeId": at("Source", "S3"),
                "configuration": {"S3Bucket": "b", "S3ObjectKey": "k.zip"}, "outputArtifacts": [{"name": "Code"}]}]},
            {"name": "Build", "actions": [
                {"name": "A", "actionTypeId": at("Build", "CodeBuild"), "configuration": {"ProjectName": "a-#{SourceVariables.VersionId}"},
                 "inputArtifacts": [{"name": "Code"}], "outputArtifacts": [{"name": "OutA"}]},
                {"name": "B", "actionTypeId": at("Build", "CodeBuild"), "configuration": {"ProjectName": "b"}, "inputArtifacts": [{"name": "Code"}]},
                {"name": "C", "runOrder": 2, "actionTypeId": at("Build", "CodeBuild"), "configuration": {"ProjectName": "c-#{codepipeline.PipelineExecutionId}"},
                 "inputArtifacts": [{"name": "OutA"}]}]},
            {"name": "Approve", "actions": [{"name": "Gate", "actionTypeId": at("Approval", "Manual")}]},
            {"name": "Deploy", "actions": [{"name": "Ship", "actionTypeId": at("Deploy", "S3"),
                "configuration": {"BucketName": "site", "Extract": "true"}, "inputArtifacts": [{"name": "OutA"}]}]}
        ]
    })
}

fn definition(declaration: Value, version: i32) -> Arc<Definition> {
    let declared: PipelineDeclaration = serde_json::from_value(declaration).expect("declaration");
    Arc::new(Definition::new(declared.with_defaults(version, PipelineType::V2), Vec::new(), Vec::new()))
}

fn record(declaration: Value) -> PipelineRecord {
    let definition = definition(declaration, 1);
    let arn = "arn:aws:codepipeline:us-east-1:123456789012:p".to_string();
    PipelineRecord::new(arn, Timestamp::from_millis(0), definition, Default::default())
}

struct Sim {
    record: PipelineRecord,
    scope: Scope,
    rules: Vec<BehaviorRule>,
    now: i64,
    ids: crate::engine::ids::Ids,
    sources: crate::state::sources::Sources,
}

impl Sim {
    fn new(mode: &str) -> Sim {
        Sim::with(declaration(mode))
    }

    fn with(declaration: Value) -> Sim {
        Sim {
            record: record(declaration),
            scope: Scope { account: "123456789012".into(), region: "us-east-1".into() },
            rules: Vec::new(),
            now: 1_000,
            ids: crate::engine::ids::Ids::sequence(0),
            sources: crate::state::sources::Sources::default(),
        }
    }

    fn start(&mut self) -> String {
        let request = StartRequest {
            trigger: ExecutionTrigger { trigger_type: TriggerType::StartPipelineExecution, trigger_detail: None },
            variables: Vec::new(),
            overrides: Vec::new(),
        };
        let id = start_execution(&mut self.record, request, &self.ids, Timestamp::from_millis(self.now));
        self.advance();
        id
    }

    /// Runs `f` on the record with this simulation's step environment, at its current time.
    fn with_env<T>(&mut self, f: impl FnOnce(&mut PipelineRecord, &StepEnv, Timestamp) -> T) -> T {
        let catalogue = crate::state::catalogue::Catalogue::load().expect("catalogue");
        let env = StepEnv {
            scope: &self.scope,
            catalogue: &catalogue,
            pipeline: "p",
            behaviors: &self.rules,
            duration_ms: DURATION,
            max_executions: usize::MAX,
            lambda: false,
            real: crate::engine::providers::artifacts::Real::default(),
            ids: &self.ids,
            sources: &self.sources,
        };
        f(&mut self.record, &env, Timestamp::from_millis(self.now))
    }

    fn advance(&mut self) -> Option<Timestamp> {
        self.with_env(advance)
    }

    /// Moves time forward to each next due event, `steps` times.
    fn run(&mut self, steps: usize) {
        for _ in 0..steps {
            match self.advance() {
                Some(due) if due.millis() > self.now => self.now = due.millis(),
                _ => break,
            }
            self.advance();
        }
    }

    fn execution(&self, id: &str) -> &Execution {
        self.record.runtime.get(id).expect("execution exists")
    }

    fn status(&self, id: &str) -> ExecutionStatus {
        self.execution(id).status
    }

    fn stage_status(&self, id: &str, stage: usize) -> Option<StageStatus> {
        self.execution(id).stages[stage].as_ref().map(|s| s.status)
    }

    fn run_of(&self, id: &str, action: &str) -> &ActionRun {
        let execution = self.execution(id);
        execution.actions.iter().rev().find(|r| execution.names(r).1 == action).expect("action ran")
    }

    fn ran(&self, id: &str, action: &str) -> bool {
        let execution = self.execution(id);
        execution.actions.iter().any(|r| execution.names(r).1 == action)
    }

    fn variable(&self, id: &str, action: &str, key: &str) -> String {
        let run = self.run_of(id, action);
        crate::state::execution::variable(&run.output_variables, key).map(str::to_string).expect("variable")
    }

    /// Answers the approval of `id`.
    fn approve(&mut self, id: &str) {
        let index = self.record.runtime.position(id).expect("execution exists");
        let execution = &self.record.runtime.executions[index];
        let run = execution
            .actions
            .iter()
            .position(|r| execution.names(r).1 == "Gate" && r.status == ActionStatus::InProgress)
            .map(crate::state::execution::RunIndex::at)
            .expect("approval waiting");
        let success = Success { summary: Some("ok".into()), ..Success::default() };
        finish_action(
            &mut self.record,
            index,
            run,
            Outcome::Succeed(success),
            Timestamp::from_millis(self.now),
            FinishedBy::Approver("a".into()),
        );
        self.advance();
    }

    fn place(&self, id: &str) -> Place {
        self.execution(id).place
    }

    /// Carries out a command as `Engine::apply` does, then advances.
    fn command<C: Command>(&mut self, command: C) -> Result<C::Output, C::Refusal> {
        self.with_env(|record, env, now| {
            let applied = command.execute(record, env, now);
            advance(record, env, now);
            applied
        })
    }

    /// Asks for a stop without advancing afterwards.
    fn stop(&mut self, id: &str, abandon: bool, reason: Option<String>) -> Result<(), StopRefusal> {
        let stop = Stop { execution: id.to_string(), abandon, reason };
        self.with_env(|record, env, now| stop.execute(record, env, now))
    }

    /// Moves time forward event by event until `done` holds (at most 20 events).
    fn run_until(&mut self, what: &str, done: impl Fn(&Sim) -> bool) {
        for _ in 0..20 {
            if done(self) {
                return;
            }
            self.run(1);
        }
        assert!(done(self), "{what}");
    }

    /// Runs execution `id` until its action `action` is waiting.
    fn run_to(&mut self, id: &str, action: &str) {
        self.run_until(&format!("{action} to wait"), |sim| {
            let execution = sim.execution(id);
            execution.actions.iter().any(|r| execution.names(r).1 == action && r.status == ActionStatus::InProgress)
        });
    }

    /// The token of the waiting approval `action` of execution `id`.
    fn token(&self, id: &str, action: &str) -> String {
        let run = self.run_of(id, action);
        assert_eq!(run.status, ActionStatus::InProgress, "{action} waits");
        run.id.to_string()
    }

    fn answer(&mut self, token: &str, approved: bool, summary: &str) -> Result<(), ApprovalRefusal> {
        self.command(AnswerApproval {
            stage: "Approve".into(),
            action: "Gate".into(),
            token: token.into(),
            approved,
            summary: summary.into(),
            by: "arn:aws:iam::123456789012:user/approver".into(),
        })
    }
}

#[test]
fn an_execution_runs_stage_by_stage_and_group_by_group() {
    let mut sim = Sim::new("SUPERSEDED");
    let id = sim.start();
    assert_eq!(sim.place(&id), Place::InStage { stage: 0 });
    assert_eq!(sim.run_of(&id, "Src").status, ActionStatus::InProgress);
    assert_eq!(sim.run_of(&id, "Src").last_status_change, None);

    sim.run(1);
    assert_eq!(sim.run_of(&id, "Src").status, ActionStatus::Succeeded);
    assert_eq!(sim.stage_status(&id, 0), Some(StageStatus::Succeeded));
    // Build group 1 (A and B, in parallel) started; C (runOrder 2) has not.
    assert_eq!(sim.run_of(&id, "A").status, ActionStatus::InProgress);
    assert_eq!(sim.run_of(&id, "B").status, ActionStatus::InProgress);
    assert!(!sim.ran(&id, "C"));

    sim.run(1);
    assert_eq!(sim.run_of(&id, "C").status, ActionStatus::InProgress, "group 2 starts when group 1 succeeded");
    sim.run(1);
    assert_eq!(sim.stage_status(&id, 1), Some(StageStatus::Succeeded));
    assert_eq!(sim.place(&id), Place::InStage { stage: 2 });
    let gate = sim.run_of(&id, "Gate");
    assert_eq!(gate.approval_token(), Some(gate.id.to_string()), "the approval token is the action execution id");

    sim.approve(&id);
    sim.run(2);
    assert_eq!(sim.status(&id), ExecutionStatus::Succeeded);
    assert_eq!(sim.place(&id), Place::Done);
    assert!(sim.record.runtime.active.is_empty());

    // Variables resolved once, shown as resolved configuration.
    let version = sim.variable(&id, "Src", "VersionId");
    let a = sim.run_of(&id, "A");
    assert_eq!(a.resolved().and_then(|c| c.get("ProjectName")), Some(format!("a-{version}").as_str()));
    assert_eq!(
        sim.run_of(&id, "C").resolved().and_then(|c| c.get("ProjectName")).map(str::to_string),
        Some(format!("c-{id}"))
    );
    assert!(sim.run_of(&id, "B").resolved().is_none(), "unchanged configuration is not repeated");
    // Artifacts flow from producers to consumers, with the artifact store's bucket.
    let out = &sim.run_of(&id, "A").output_artifacts[0];
    assert_eq!(&*out.bucket, "artifact-bucket");
    assert!(out.key.starts_with("p/OutA/") && out.key.len() == "p/OutA/".len() + 7, "no extension: {}", out.key);
    assert_eq!(sim.run_of(&id, "Ship").input_artifacts[0].key, out.key);
    assert_eq!(sim.record.runtime.current_revisions["Src"].revision_id, version);
}

#[test]
fn a_failed_action_fails_its_stage_after_its_group_and_releases_the_lock() {
    let mut sim = Sim::new("SUPERSEDED");
    sim.rules.push(BehaviorRule {
        action: Some("A".into()),
        outcome: BehaviorOutcome::Fail,
        delay_ms: Some(1),
        error_code: Some(FailureType::JobFailed),
        message: Some("compile error".into()),
        ..Default::default()
    });
    let id = sim.start();
    sim.run(1); // source done
    sim.now += 1;
    sim.advance(); // A failed, B still running: the stage waits for its group
    assert_eq!(sim.run_of(&id, "A").status, ActionStatus::Failed);
    assert_eq!(sim.stage_status(&id, 1), Some(StageStatus::InProgress));
    sim.run(1);
    assert_eq!(sim.stage_status(&id, 1), Some(StageStatus::Failed));
    assert_eq!(sim.status(&id), ExecutionStatus::Failed);
    assert!(!sim.ran(&id, "C"), "no later group starts");
    let error = sim.run_of(&id, "A").error().cloned().expect("error details");
    assert_eq!((error.code.as_str(), error.message.as_str()), ("JobFailed", "compile error"));
    // The lock is free: a new execution goes through the stage.
    sim.rules.clear();
    let next = sim.start();
    sim.run(3);
    assert_eq!(sim.place(&next), Place::InStage { stage: 2 });
}

#[test]
fn superseded_mode_keeps_one_waiting_execution_per_stage() {
    let mut sim = Sim::new("SUPERSEDED");
    let e1 = sim.start();
    sim.run(3); // E1 waits at the approval, holding the Approve stage
    assert_eq!(sim.place(&e1), Place::InStage { stage: 2 });
    let e2 = sim.start();
    sim.run(3);
    assert_eq!(
        sim.place(&e2),
        Place::Waiting {
            stage: 2,
            since: match sim.place(&e2) {
                Place::Waiting { since, .. } => since,
                _ => 0,
            }
        }
    );
    assert_eq!(sim.status(&e2), ExecutionStatus::InProgress);
    let e3 = sim.start();
    sim.run(3);
    assert_eq!(sim.status(&e2), ExecutionStatus::Superseded, "a newer arrival supersedes the waiting one");
    assert!(matches!(sim.place(&e3), Place::Waiting { stage: 2, .. }));
    assert_eq!(sim.status(&e1), ExecutionStatus::InProgress, "the execution inside the stage is never interrupted");
    sim.approve(&e1);
    assert_eq!(sim.place(&e3), Place::InStage { stage: 2 }, "the newest waiting execution enters when the lock frees");
}

#[test]
fn queued_mode_admits_waiting_executions_in_order() {
    let mut sim = Sim::new("QUEUED");
    let e1 = sim.start();
    sim.run(3);
    let e2 = sim.start();
    sim.run(3);
    let e3 = sim.start();
    sim.run(3);
    assert!(matches!(sim.place(&e2), Place::Waiting { stage: 2, .. }));
    assert!(matches!(sim.place(&e3), Place::Waiting { stage: 2, .. }));
    assert_eq!(sim.status(&e2), ExecutionStatus::InProgress, "nothing is superseded");
    sim.approve(&e1);
    assert_eq!(sim.place(&e2), Place::InStage { stage: 2 }, "first come, first served");
    assert!(matches!(sim.place(&e3), Place::Waiting { .. }));
    sim.approve(&e2);
    assert_eq!(sim.place(&e3), Place::InStage { stage: 2 });
}

#[test]
fn parallel_mode_takes_no_locks() {
    let mut sim = Sim::new("PARALLEL");
    let e1 = sim.start();
    sim.run(3);
    let e2 = sim.start();
    sim.run(3);
    assert_eq!(sim.place(&e1), Place::InStage { stage: 2 });
    assert_eq!(sim.place(&e2), Place::InStage { stage: 2 }, "both are in the stage at once");
    sim.approve(&e2);
    sim.run(1); // only the deploy is due; e1's approval waits on
    assert_eq!(sim.status(&e2), ExecutionStatus::Succeeded);
    assert_eq!(sim.status(&e1), ExecutionStatus::InProgress);
}

#[test]
fn stop_and_wait_lets_running_actions_finish_and_starts_nothing_new() {
    let mut sim = Sim::new("SUPERSEDED");
    let id = sim.start();
    sim.run(1); // Build group 1 running
    assert_eq!(sim.stop(&id, false, Some("enough".into())), Ok(()));
    assert_eq!(sim.status(&id), ExecutionStatus::Stopping);
    assert_eq!(sim.stage_status(&id, 1), Some(StageStatus::Stopping));
    assert_eq!(sim.stop(&id, false, None), Err(StopRefusal::Duplicated));
    sim.run(2);
    assert_eq!(sim.run_of(&id, "A").status, ActionStatus::Succeeded, "in-flight actions end naturally");
    assert!(!sim.ran(&id, "C"));
    assert_eq!(sim.status(&id), ExecutionStatus::Stopped);
    assert_eq!(sim.stage_status(&id, 1), Some(StageStatus::Stopped));
    assert_eq!(sim.execution(&id).status_summary.as_deref(), Some("enough"));
    assert_eq!(sim.stop(&id, true, None), Err(StopRefusal::NotStoppable));
}

#[test]
fn an_update_lets_running_actions_finish_then_cancels_and_a_stop_may_still_overtake_it() {
    let mut sim = Sim::new("SUPERSEDED");
    let id = sim.start();
    sim.run(1); // Build group 1 running
    let next = definition(declaration("SUPERSEDED"), 2);
    assert_eq!(sim.command(UpdateDefinition { version: next }), Ok(()));
    assert_eq!(sim.record.version(), 2);
    assert_eq!(sim.status(&id), ExecutionStatus::InProgress, "no Cancelling status: it runs on");
    sim.run(3);
    assert_eq!(sim.run_of(&id, "A").status, ActionStatus::Succeeded, "in-flight actions end naturally");
    assert!(!sim.ran(&id, "C"), "nothing new starts");
    assert_eq!(sim.status(&id), ExecutionStatus::Cancelled);
    assert_eq!(sim.stage_status(&id, 1), Some(StageStatus::Cancelled));
    assert_eq!(sim.execution(&id).status_summary.as_deref(), Some(CANCELLED_BY_UPDATE));
    assert_eq!(sim.execution(&id).pipeline_version, 1, "it keeps its version");

    // A stop asked while the update's end waits overtakes it.
    let id = sim.start();
    sim.run(1);
    let next = definition(declaration("SUPERSEDED"), 3);
    assert_eq!(sim.command(UpdateDefinition { version: next }), Ok(()));
    assert_eq!(sim.stop(&id, false, Some("mine".into())), Ok(()));
    sim.run(3);
    assert_eq!(sim.status(&id), ExecutionStatus::Stopped);
    assert_eq!(sim.execution(&id).status_summary.as_deref(), Some("mine"));
}

#[test]
fn abandon_marks_running_actions_abandoned_at_once() {
    let mut sim = Sim::new("SUPERSEDED");
    let id = sim.start();
    sim.run(3);
    assert_eq!(sim.place(&id), Place::InStage { stage: 2 });
    // A stop-and-wait may be upgraded to abandon.
    assert_eq!(sim.stop(&id, false, None), Ok(()));
    assert_eq!(sim.stop(&id, true, None), Ok(()));
    sim.advance();
    let gate = sim.run_of(&id, "Gate");
    assert_eq!(gate.status, ActionStatus::Abandoned);
    assert_eq!(gate.summary.as_deref(), Some(APPROVAL_CANCELED));
    assert!(!gate.awaits_approval, "the token is invalidated");
    assert_eq!(sim.status(&id), ExecutionStatus::Stopped);
    assert_eq!(sim.stop(&id, true, None), Err(StopRefusal::NotStoppable));
}

#[test]
fn a_waiting_execution_can_be_stopped_and_never_enters() {
    let mut sim = Sim::new("QUEUED");
    let e1 = sim.start();
    sim.run(3);
    let e2 = sim.start();
    sim.run(3);
    assert!(matches!(sim.place(&e2), Place::Waiting { stage: 2, .. }));
    assert_eq!(sim.stop(&e2, false, None), Ok(()));
    assert_eq!(sim.status(&e2), ExecutionStatus::Stopped);
    sim.approve(&e1);
    assert_eq!(sim.stage_status(&e2, 2), None, "it never entered the stage");
    assert_eq!(sim.stop("no-such-id", false, None), Err(StopRefusal::NotStoppable));
}

#[test]
fn a_disabled_transition_holds_executions_until_enabled() {
    let mut sim = Sim::new("SUPERSEDED");
    sim.record.runtime.w().transitions.insert(
        "Build".into(),
        TransitionState { enabled: false, disabled_reason: Some("freeze".into()), ..TransitionState::default() },
    );
    let e1 = sim.start();
    sim.run(3);
    assert!(matches!(sim.place(&e1), Place::Waiting { stage: 1, .. }));
    let e2 = sim.start();
    sim.run(3);
    assert_eq!(sim.status(&e1), ExecutionStatus::Superseded, "waiting at a disabled transition can be superseded");
    sim.record.runtime.w().transitions.remove("Build");
    sim.advance();
    assert_eq!(sim.place(&e2), Place::InStage { stage: 1 });
}

#[test]
fn an_unresolvable_variable_fails_the_action() {
    let mut declaration = declaration("SUPERSEDED");
    declaration["stages"][1]["actions"][1]["configuration"]["ProjectName"] = json!("#{SourceVariables.NoSuchKey}");
    let mut sim = Sim::with(declaration);
    let id = sim.start();
    sim.run(3);
    let b = sim.run_of(&id, "B");
    assert_eq!(b.status, ActionStatus::Failed);
    let error = b.error().cloned().expect("error");
    assert_eq!(error.code, FailureType::ConfigurationError);
    assert!(error.message.contains("#{SourceVariables.NoSuchKey}"), "{}", error.message);
    assert_eq!(sim.status(&id), ExecutionStatus::Failed);
}

#[test]
fn a_required_variable_without_value_fails_the_execution_at_once() {
    let mut declaration = declaration("QUEUED");
    declaration["variables"] =
        json!([{"name": "Env"}, {"name": "Region", "defaultValue": "eu-west-1"}, {"name": "Tier"}]);
    let mut sim = Sim::with(declaration);
    let id = sim.start();
    assert_eq!(sim.status(&id), ExecutionStatus::Failed);
    assert_eq!(
        sim.execution(&id).status_summary.as_deref(),
        Some("Values for required variables haven't been provided: Env, Tier")
    );
    assert!(sim.execution(&id).actions.is_empty(), "no action runs");
    assert!(sim.execution(&id).variables.is_empty());
}

#[test]
fn held_actions_time_out_on_the_emulator_clock() {
    let mut sim = Sim::new("SUPERSEDED");
    sim.rules.push(BehaviorRule { action: Some("A".into()), outcome: BehaviorOutcome::Hold, ..Default::default() });
    let id = sim.start();
    sim.run(2);
    assert_eq!(sim.run_of(&id, "A").status, ActionStatus::InProgress);
    // CodeBuild actions time out after 8 hours.
    let due = sim.advance().expect("a timeout is due");
    assert_eq!(due.millis(), sim.run_of(&id, "A").start_time.millis() + 8 * 3_600_000);
    sim.now = due.millis();
    sim.advance();
    assert_eq!(sim.run_of(&id, "A").status, ActionStatus::Failed);
    sim.run(1);
    assert_eq!(sim.status(&id), ExecutionStatus::Failed);
}

#[test]
fn approvals_time_out_after_seven_days_by_default() {
    let mut sim = Sim::new("SUPERSEDED");
    let id = sim.start();
    sim.run(3);
    let gate = sim.run_of(&id, "Gate");
    let Some(Pending::External { timeout: Some(timeout), .. }) = gate.pending.as_deref().cloned() else {
        panic!("waiting")
    };
    assert_eq!(timeout.millis() - gate.start_time.millis(), 7 * 24 * 3_600_000);
    sim.now = timeout.millis();
    sim.advance();
    assert_eq!(sim.run_of(&id, "Gate").status, ActionStatus::Failed);
    assert_eq!(sim.status(&id), ExecutionStatus::Failed);
}

/// Source -> Gate (one build action; `gate` merged into the stage) -> Deploy, on a V2 pipeline.
fn conditional(gate: Value) -> Value {
    let mut declaration = declaration("QUEUED");
    let stages = declaration["stages"].as_array_mut().expect("stages");
    stages.remove(2);
    for (key, value) in gate.as_object().into_iter().flatten() {
        stages[1][key] = value.clone();
    }
    declaration
}

fn rule(name: &str, provider: &str, configuration: Value) -> Value {
    json!({"name": name, "ruleTypeId": {"category": "Rule", "owner": "AWS", "provider": provider, "version": "1"},
           "configuration": configuration})
}

fn condition_status(sim: &Sim, id: &str, stage: usize, kind: ConditionKind) -> Option<ConditionStatus> {
    sim.execution(id).condition(stage, kind).map(|c| c.status)
}

#[test]
fn an_entry_condition_runs_before_the_actions_and_skip_moves_on() {
    let check = rule(
        "Check",
        "VariableCheck",
        json!({"Variable": "#{SourceVariables.ObjectKey}", "Operator": "EQ", "Value": "other.zip"}),
    );
    // FAIL: the stage fails without running an action.
    let mut sim =
        Sim::with(conditional(json!({"beforeEntry": {"conditions": [{"result": "FAIL", "rules": [check.clone()]}]}})));
    let id = sim.start();
    sim.run(1);
    assert_eq!(
        sim.stage_status(&id, 1),
        Some(StageStatus::InProgress),
        "the execution holds the stage while it checks"
    );
    assert_eq!(condition_status(&sim, &id, 1, ConditionKind::BeforeEntry), Some(ConditionStatus::InProgress));
    sim.run(1);
    assert_eq!(sim.status(&id), ExecutionStatus::Failed);
    assert_eq!(sim.stage_status(&id, 1), Some(StageStatus::Failed));
    assert_eq!(condition_status(&sim, &id, 1, ConditionKind::BeforeEntry), Some(ConditionStatus::Failed));
    assert!(!sim.ran(&id, "A"));
    let execution = sim.execution(&id);
    assert_eq!(execution.rules().len(), 1);
    assert_eq!(execution.rules()[0].status, RuleStatus::Failed);
    assert_eq!(
        execution.rules()[0].resolved_configuration.as_ref().and_then(|c| c.get("Variable")).map(str::to_string),
        Some("k.zip".to_string()),
        "the rule sees the source's variables"
    );

    // SKIP: the stage is Skipped and the execution goes on to the end.
    let mut sim =
        Sim::with(conditional(json!({"beforeEntry": {"conditions": [{"result": "SKIP", "rules": [check]}]}})));
    let id = sim.start();
    sim.run(10);
    assert_eq!(sim.stage_status(&id, 1), Some(StageStatus::Skipped));
    assert_eq!(sim.status(&id), ExecutionStatus::Succeeded);
    assert!(!sim.ran(&id, "A") && sim.ran(&id, "Ship"));
}

#[test]
fn a_deployment_window_is_due_when_it_opens_and_held_rules_time_out() {
    // The clock starts one second after the epoch; the window opens at 01:00:00 UTC.
    let window = rule("Window", "DeploymentWindow", json!({"Cron": "* 0 1 * * ? *"}));
    let mut sim = Sim::with(conditional(json!({"beforeEntry": {"conditions": [{"rules": [window]}]}})));
    let id = sim.start();
    sim.run(1);
    assert_eq!(sim.advance().map(|t| t.millis()), Some(3_600_000), "the scheduler wakes when the window opens");
    sim.run(1);
    assert_eq!(condition_status(&sim, &id, 1, ConditionKind::BeforeEntry), Some(ConditionStatus::Succeeded));
    assert!(sim.ran(&id, "A"));

    // A held rule with a timeout fails when it passes.
    let mut held = rule("Held", "CloudWatchAlarm", json!({"AlarmName": "a"}));
    held["timeoutInMinutes"] = json!(5);
    let mut sim = Sim::with(conditional(json!({"onSuccess": {"conditions": [{"result": "FAIL", "rules": [held]}]}})));
    sim.rules = vec![BehaviorRule { rule: Some("Held".into()), outcome: BehaviorOutcome::Hold, ..Default::default() }];
    let id = sim.start();
    sim.run(3);
    assert_eq!(condition_status(&sim, &id, 1, ConditionKind::OnSuccess), Some(ConditionStatus::InProgress));
    let started = sim.execution(&id).rules()[0].start_time.millis();
    assert_eq!(sim.advance().map(|t| t.millis()), Some(started + 5 * 60_000));
    sim.run(1);
    assert_eq!(sim.status(&id), ExecutionStatus::Failed);
    let error = sim.execution(&id).rules()[0].error.as_deref().map(|e| e.message.clone()).unwrap_or_default();
    assert!(error.contains("timed out after 5 minutes"), "{error}");
}

#[test]
fn resolution_limits_are_the_models() {
    let model = crate::protocol::model::Model::load().expect("model");
    let max =
        |name: &str| model.shape_id(name).and_then(|id| model.shape(id).max).and_then(|m| usize::try_from(m).ok());
    assert_eq!(max("ActionConfigurationValue"), Some(ACTION_VALUE_LIMIT));
    assert_eq!(max("RuleConfigurationValue"), Some(RULE_VALUE_LIMIT));
}

// --- Commands, as Engine::apply carries them out ------------------------------------------------------------------

#[test]
fn approval_answers_succeed_fail_and_refuse_as_aws_does() {
    let mut sim = Sim::new("QUEUED");
    let id = sim.start();
    sim.run_to(&id, "Gate");
    let token = sim.token(&id, "Gate");
    let unknown = uuid::Uuid::new_v4().to_string();
    assert_eq!(sim.answer(&unknown, true, "ok"), Err(ApprovalRefusal::UnknownToken));
    assert_eq!(sim.answer(&token, false, "not today"), Ok(()));
    let run = sim.run_of(&id, "Gate");
    assert_eq!(run.status, ActionStatus::Failed);
    assert_eq!((run.summary.as_deref(), run.error()), (Some("not today"), None), "a rejection has no error details");
    assert_eq!(run.external_execution_id.as_deref(), Some(token.as_str()));
    assert_eq!(run.updated_by(), Some("arn:aws:iam::123456789012:user/approver"));
    assert_eq!(sim.status(&id), ExecutionStatus::Failed);
    assert_eq!(sim.answer(&token, true, "after all"), Err(ApprovalRefusal::AlreadyCompleted));

    // Required summaries; an abandoned approval is out of date.
    let mut declared = declaration("QUEUED");
    declared["stages"][2]["actions"][0]["configuration"] = json!({"IsSummaryRequired": "true"});
    let mut sim = Sim::with(declared);
    let id = sim.start();
    sim.run_to(&id, "Gate");
    let token = sim.token(&id, "Gate");
    assert_eq!(sim.answer(&token, true, " "), Err(ApprovalRefusal::SummaryRequired));
    assert_eq!(sim.run_of(&id, "Gate").status, ActionStatus::InProgress, "nothing changed");
    let stop = Stop { execution: id.clone(), abandon: true, reason: None };
    assert_eq!(sim.command(stop), Ok(()));
    assert_eq!(sim.answer(&token, true, "late"), Err(ApprovalRefusal::OutOfDate));
}

#[test]
fn retry_reruns_failed_or_all_actions_of_the_stage() {
    let mut sim = Sim::new("QUEUED");
    sim.rules.push(BehaviorRule { action: Some("B".into()), outcome: BehaviorOutcome::Fail, ..Default::default() });
    let id = sim.start();
    sim.run(10);
    assert_eq!(sim.status(&id), ExecutionStatus::Failed);
    let retry = |all| Retry { execution: id.clone(), stage: "Build".into(), all };
    assert_eq!(
        sim.command(Retry { execution: id.clone(), stage: "Source".into(), all: false }),
        Err(RetryRefusal::NotRetryable),
        "a stage that succeeded cannot be retried"
    );
    let attempts = |sim: &Sim, action: &str| {
        let execution = sim.execution(&id);
        execution.actions.iter().filter(|r| execution.names(r).1 == action).count()
    };
    sim.rules.clear();
    assert_eq!(sim.command(retry(false)), Ok(()));
    assert_eq!(sim.status(&id), ExecutionStatus::InProgress);
    assert_eq!((attempts(&sim, "A"), attempts(&sim, "B")), (1, 2), "only the failed action runs again");
    sim.run(10);
    assert!(sim.ran(&id, "C"), "the stage goes on after the retry");

    // ALL_ACTIONS runs every action of the stage again.
    let mut sim = Sim::new("QUEUED");
    sim.rules.push(BehaviorRule { action: Some("B".into()), outcome: BehaviorOutcome::Fail, ..Default::default() });
    let id = sim.start();
    sim.run(10);
    sim.rules.clear();
    assert_eq!(sim.command(Retry { execution: id.clone(), stage: "Build".into(), all: true }), Ok(()));
    let execution = sim.execution(&id);
    assert_eq!(execution.actions.iter().filter(|r| execution.names(r).1 == "A").count(), 2);
}

#[test]
fn rollback_reruns_the_stage_with_the_target_and_refuses_as_aws_does() {
    let mut sim = Sim::new("SUPERSEDED");
    let first = sim.start();
    sim.run_to(&first, "Gate");
    sim.approve(&first);
    sim.run_until("the first execution to succeed", |sim| sim.status(&first) == ExecutionStatus::Succeeded);
    let trigger = || ExecutionTrigger { trigger_type: TriggerType::ManualRollback, trigger_detail: None };
    let rollback =
        |target: &str, stage: &str| Rollback { target: target.into(), stage: stage.into(), trigger: trigger() };
    let unknown = uuid::Uuid::new_v4().to_string();
    assert_eq!(sim.command(rollback(&unknown, "Deploy")), Err(RollbackRefusal::TargetNotFound));
    let Ok(back) = sim.command(rollback(&first, "Deploy")) else { panic!("rolls back") };
    // While the rollback holds the stage, another is refused; the rollback itself is no target.
    assert_eq!(sim.command(rollback(&first, "Deploy")), Err(RollbackRefusal::StageBusy));
    sim.run_until("the rollback to succeed", |sim| sim.status(&back) == ExecutionStatus::Succeeded);
    assert_eq!(sim.execution(&back).execution_type, ExecutionType::Rollback);
    assert!(sim.ran(&back, "Ship") && !sim.ran(&back, "A"), "only the named stage runs");
    assert_eq!(sim.command(rollback(&back, "Deploy")), Err(RollbackRefusal::NotCompleted));
    // The rollback picks up the target's source revision when it reruns the source stage.
    let Ok(source) = sim.command(rollback(&first, "Source")) else { panic!("rolls back") };
    sim.run_until("the source rollback to succeed", |sim| sim.status(&source) == ExecutionStatus::Succeeded);
    assert_eq!(sim.execution(&source).sources, sim.execution(&first).sources);
}

/// A pipeline whose build is a custom action: its runs wait for a job worker.
fn custom_build() -> Value {
    let mut declared = declaration("QUEUED");
    declared["stages"][1]["actions"] = json!([{"name": "Work",
        "actionTypeId": {"category": "Build", "owner": "Custom", "provider": "Worker", "version": "1"},
        "inputArtifacts": [{"name": "Code"}], "outputArtifacts": [{"name": "OutA"}]}]);
    declared
}

fn job_of(sim: &Sim) -> uuid::Uuid {
    let open = sim.record.runtime.jobs.values().filter(|j| !j.status.is_terminal()).map(|j| j.id).collect::<Vec<_>>();
    assert_eq!(open.len(), 1, "one open job");
    open[0]
}

#[test]
fn job_results_continue_repeat_and_conflict_as_aws_rules_say() {
    let mut sim = Sim::with(custom_build());
    let id = sim.start();
    sim.run_to(&id, "Work");
    let first = job_of(&sim);
    let success = |continuation: Option<&str>| JobReport::Success {
        outcome: Success { summary: Some("step".into()), ..Success::default() },
        continuation: continuation.map(str::to_string),
        percent: Some(50),
    };
    let report = |job, fingerprint: &str, report| ReportJob { job, fingerprint: fingerprint.into(), report };
    // A continuation keeps the action running and creates the next job.
    assert_eq!(sim.command(report(first, "r1", success(Some("more")))), Ok(()));
    assert_eq!(sim.run_of(&id, "Work").status, ActionStatus::InProgress);
    assert_eq!(sim.run_of(&id, "Work").percent_complete(), Some(50));
    let second = job_of(&sim);
    assert_ne!(first, second);
    assert_eq!(sim.record.runtime.jobs[&second].continuation_token.as_deref(), Some("more"));
    // The same result again is accepted; another with the same status or the other status is refused.
    assert_eq!(sim.command(report(first, "r1", success(Some("more")))), Ok(()));
    assert_eq!(sim.command(report(first, "r2", success(None))), Err(JobRefusal::SameStatusOtherResult));
    let failure = JobReport::Failure {
        error: ErrorDetails { code: FailureType::JobFailed, message: "x".into() },
        external_execution_id: None,
    };
    assert_eq!(sim.command(report(first, "f", failure)), Err(JobRefusal::AlreadyTerminated));
    assert_eq!(sim.record.runtime.jobs.values().filter(|j| !j.status.is_terminal()).count(), 1, "nothing changed");
    // The last job's success ends the action.
    assert_eq!(sim.command(report(second, "done", success(None))), Ok(()));
    assert_eq!(sim.run_of(&id, "Work").status, ActionStatus::Succeeded);
    // Acknowledging needs the nonce of the last hand-out.
    let nonce = AcknowledgeJob { job: second, nonce: "wrong".into() };
    assert_eq!(sim.command(nonce), Err(JobRefusal::WrongNonce));
}

#[test]
fn an_overridden_condition_counts_as_passed() {
    let held = rule("Held", "CloudWatchAlarm", json!({"AlarmName": "a"}));
    let mut sim = Sim::with(conditional(json!({"beforeEntry": {"conditions": [{"result": "FAIL", "rules": [held]}]}})));
    sim.rules = vec![BehaviorRule { rule: Some("Held".into()), outcome: BehaviorOutcome::Hold, ..Default::default() }];
    let id = sim.start();
    sim.run(3);
    assert_eq!(condition_status(&sim, &id, 1, ConditionKind::BeforeEntry), Some(ConditionStatus::InProgress));
    let over = |kind| OverrideCondition { execution: id.clone(), stage: "Build".into(), kind };
    assert_eq!(
        sim.command(over(ConditionKind::OnSuccess)),
        Err(OverrideRefusal::NotOverridable),
        "not being evaluated"
    );
    assert_eq!(sim.command(over(ConditionKind::BeforeEntry)), Ok(()));
    assert_eq!(condition_status(&sim, &id, 1, ConditionKind::BeforeEntry), Some(ConditionStatus::Overridden));
    assert!(sim.ran(&id, "A"), "the stage's actions run");
}

#[test]
fn the_same_input_gives_the_same_output() {
    let run = || {
        let mut sim = Sim::with(custom_build());
        let id = sim.start();
        sim.run_to(&id, "Work");
        let job = job_of(&sim);
        let done = JobReport::Success { outcome: Success::default(), continuation: None, percent: None };
        let report = ReportJob { job, fingerprint: "done".into(), report: done };
        assert_eq!(sim.command(report), Ok(()));
        sim.run_to(&id, "Gate");
        // What the step made, in a stable order (the maps of a running execution are hash maps).
        let executions = &sim.record.runtime.executions;
        let made: Vec<_> = executions
            .iter()
            .map(|e| {
                let runs: Vec<_> = e
                    .actions
                    .iter()
                    .map(|r| {
                        (r.id, r.status, &r.summary, &r.external_execution_id, &r.output_artifacts, &r.output_variables)
                    })
                    .collect();
                (e.id, e.status, &e.sources, runs)
            })
            .collect();
        let mut jobs: Vec<_> = sim.record.runtime.jobs.values().map(|j| (j.id, j.status, j.nonce.clone())).collect();
        jobs.sort_by_key(|j| j.0);
        format!("{made:?} {jobs:?}")
    };
    let (first, second) = (run(), run());
    assert!(first.contains(".zip") && first.contains("Succeeded"), "{first}");
    assert_eq!(first, second, "ids, artifact names and simulated results repeat");
}

#[test]
fn a_loaded_execution_shares_its_artifacts_and_names_again() {
    let mut sim = Sim::new("PARALLEL");
    let first = sim.start();
    let second = sim.start();
    sim.run_to(&first, "Gate");
    sim.run_to(&second, "Gate");
    let document = sim.record.to_document("p", false);
    let text = serde_json::to_string(&document).expect("serializes");
    let loaded: crate::store::document::PipelineDocument = serde_json::from_str(&text).expect("parses");
    let record = loaded.into_record().expect("loads");
    let runs = |id: &str| {
        let execution = record.runtime.executions.iter().find(|e| e.id.to_string() == id).expect("the execution");
        execution.actions.clone()
    };
    let (one, two) = (runs(&first), runs(&second));
    let produced = |runs: &[crate::state::execution::ActionRun], action: u32| {
        runs.iter().find(|r| r.stage_index == 1 && r.action_index == action).expect("the run").clone()
    };
    // Build action A's output is the very instance Build action C takes in, as when the engine made them.
    let (a, c) = (produced(&one, 0), produced(&one, 2));
    assert!(Arc::ptr_eq(&a.output_artifacts[0], &c.input_artifacts[0]));
    // Names and buckets are shared between executions; keys are each execution's own.
    let other = produced(&two, 0);
    assert!(Arc::ptr_eq(&a.output_artifacts[0].name, &other.output_artifacts[0].name));
    assert!(Arc::ptr_eq(&a.output_artifacts[0].bucket, &other.output_artifacts[0].bucket));
    assert_ne!(a.output_artifacts[0].key, other.output_artifacts[0].key);
    // Rows leave out what is empty or unset, and read back the same.
    assert!(!text.contains("\"manualRetries\":0") && !text.contains("\"awaitsApproval\":false"));
    assert!(!text.contains(":null"), "{text}");
    let again = serde_json::to_value(record.to_document("p", false)).expect("serializes");
    assert_eq!(again, serde_json::from_str::<Value>(&text).expect("parses"));
}
