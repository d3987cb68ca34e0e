//! The executions of one pipeline and what they share: transitions, jobs, client tokens, the runtime index.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use serde::Serialize;
use uuid::Uuid;

use super::{
    ArtifactInstance, Execution, ExecutionIndex, Executions, Job, Revision, RuleRunIndex, RunIndex, StateChange,
};
use crate::state::Timestamp;
use crate::state::tracked::TrackedMap;

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

/// A polling source action could not read what it watches: GetPipelineState shows the action `Failed` with these
/// details, without an execution [real AWS session, issue 28].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PollFailure {
    pub error: super::ErrorDetails,
    pub at: Timestamp,
}

/// The executions of one pipeline and what they share.
#[derive(Debug, Clone, Default)]
pub struct PipelineRuntime {
    /// Every execution, oldest first (saved one row each).
    pub executions: Executions,
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
    /// The object version each polling S3 source action last started the pipeline for, by action name.
    pub polled: BTreeMap<String, String>,
    /// The latest failure of each polling S3 source action to read its object, by action name, until it reads it
    /// again.
    pub poll_failures: BTreeMap<String, PollFailure>,
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
    /// Action runs whose output artifacts are to be written, not yet handed to the artifact writer.
    pub undelivered_artifacts: Vec<(ExecutionIndex, RunIndex)>,
    /// State changes made since the engine last published them as events, oldest first.
    pub changes: Vec<StateChange>,
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
        self.index.insert(execution.id, ExecutionIndex::at(self.executions.end()));
        self.executions.push(execution);
    }

    /// Lets the oldest finished executions go until at most `keep` are kept, with their jobs and client tokens.
    /// Spared: executions still running, and those the pipeline's state points at (the latest to reach a stage or
    /// to run an action, which GetPipelineState shows; rule runs waiting for their invoker). Returns how many went.
    pub fn retain_executions(&mut self, keep: usize) -> usize {
        if self.executions.count() <= keep {
            return 0;
        }
        let mut pinned: HashSet<usize> = self.latest_in_stage.values().map(|i| i.index()).collect();
        pinned.extend(self.latest_runs.values().map(|(i, _)| i.index()));
        pinned.extend(self.undelivered_rules.iter().map(|(i, _)| i.index()));
        pinned.extend(self.undelivered_artifacts.iter().map(|(i, _)| i.index()));
        pinned.extend(self.active.iter().map(|i| i.index()));
        let gone = self.executions.retain(keep, |position, e| pinned.contains(&position) || e.status.is_active());
        if gone.is_empty() {
            return 0;
        }
        let positions: HashSet<usize> = gone.iter().map(|(position, _)| *position).collect();
        let ids: HashSet<Uuid> = gone.iter().map(|(_, e)| e.id).collect();
        for id in &ids {
            self.index.remove(id);
        }
        let jobs: Vec<Uuid> =
            self.jobs.iter().filter(|(_, job)| positions.contains(&job.execution.index())).map(|(id, _)| *id).collect();
        for id in jobs {
            self.jobs.remove(&id);
        }
        let runs: Vec<(ExecutionIndex, RunIndex)> =
            self.job_of_run.keys().copied().filter(|(e, _)| positions.contains(&e.index())).collect();
        for key in runs {
            self.job_of_run.remove(&key);
        }
        let tokens: Vec<String> =
            self.client_tokens.iter().filter(|(_, id)| ids.contains(*id)).map(|(token, _)| token.clone()).collect();
        for token in tokens {
            self.client_tokens.remove(&token);
        }
        gone.len()
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
