//! A source action's new revision (PutActionRevision).

use super::{Command, current_stage, pipeline_not_found};
use crate::engine::step::{self, StartRequest, StepEnv};
use crate::state::declaration::ActionCategory;
use crate::state::execution::{ExecutionTrigger, RevisionOverride};
use crate::state::{PipelineRecord, Timestamp};

/// A source action's new revision: an execution starts with it, unless the action picked it up already.
#[derive(Debug)]
pub struct PushRevision {
    /// The stage of the source action the revision names.
    pub stage: String,
    pub revision: RevisionOverride,
    pub trigger: ExecutionTrigger,
}

/// What a pushed revision did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pushed {
    /// A new revision: the execution it started.
    New(String),
    /// A revision the action has already: the newest execution that picked it up, if any.
    Known(Option<String>),
}

/// Why a pushed revision is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushRefusal {
    PipelineNotFound,
    /// The pipeline's current version has no stage of that name.
    StageNotFound,
    /// The stage has no action of that name.
    ActionNotFound,
    /// The action is not a source action; only source actions take revisions.
    NotASourceAction,
}

pipeline_not_found!(PushRefusal);

impl Command for PushRevision {
    type Output = Pushed;
    type Refusal = PushRefusal;

    fn execute(self, record: &mut PipelineRecord, env: &StepEnv, now: Timestamp) -> Result<Pushed, PushRefusal> {
        let action = self.revision.action_name.as_str();
        let stage = current_stage(record, &self.stage).ok_or(PushRefusal::StageNotFound)?;
        let declared = record.current().stages[stage].actions.iter().find(|a| a.name == action);
        let declared = declared.ok_or(PushRefusal::ActionNotFound)?;
        if declared.action_type_id.category != ActionCategory::Source {
            return Err(PushRefusal::NotASourceAction);
        }
        let value = &self.revision.revision_value;
        if record.runtime.current_revisions.get(action).is_some_and(|r| &r.revision_id == value) {
            // The execution that picked the revision up, newest first.
            let previous = record
                .runtime
                .executions
                .iter()
                .rev()
                .find(|e| e.sources.iter().any(|(i, r)| e.source_names(*i).0 == action && &r.revision_id == value));
            return Ok(Pushed::Known(previous.map(|e| e.id.to_string())));
        }
        let request = StartRequest { trigger: self.trigger, variables: Vec::new(), overrides: vec![self.revision] };
        Ok(Pushed::New(step::start_execution(record, request, env.ids, now)))
    }
}
