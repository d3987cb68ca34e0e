//! A polling S3 source saw its object (see [`crate::engine::providers::polling`]).

use super::start::{Start, StartRefusal};
use super::{Command, pipeline_not_found};
use crate::engine::Write;
use crate::engine::step::{StartRequest, StepEnv};
use crate::state::execution::{ExecutionTrigger, RevisionOverride, RevisionType, TriggerType};
use crate::state::{PipelineRecord, Timestamp};

/// Record the object version a polling S3 source action sees; a version it has not started the pipeline for (or
/// any version, with `again`: polling was just turned on) starts an execution as AWS's polling does: trigger
/// `PollForSourceChanges` naming the action, the action bound to that version.
#[derive(Debug)]
pub struct PollSource {
    pub action: String,
    pub version: String,
    pub again: bool,
}

/// Why a poll is not recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PollRefusal {
    PipelineNotFound,
    /// The action is no longer a source action of the pipeline (it was updated meanwhile).
    NotASourceAction,
}

pipeline_not_found!(PollRefusal);

impl Command for PollSource {
    /// The id of the execution started, if the version was new.
    type Output = Option<String>;
    type Refusal = PollRefusal;

    fn execute(
        self,
        record: &mut PipelineRecord,
        env: &StepEnv,
        now: Timestamp,
    ) -> Result<Option<String>, PollRefusal> {
        if !self.again && record.runtime.polled.get(&self.action) == Some(&self.version) {
            return Ok(None);
        }
        let trigger = ExecutionTrigger {
            trigger_type: TriggerType::PollForSourceChanges,
            trigger_detail: Some(self.action.as_str().into()),
        };
        let overrides = vec![RevisionOverride {
            action_name: self.action.clone(),
            revision_type: RevisionType::S3ObjectVersionId,
            revision_value: self.version.clone(),
            change_id: None,
            created: None,
        }];
        let start = Start { request: StartRequest { trigger, variables: Vec::new(), overrides }, client_token: None };
        let id = start.execute(record, env, now).map_err(|refusal| match refusal {
            StartRefusal::PipelineNotFound => PollRefusal::PipelineNotFound,
            StartRefusal::NotASourceAction { .. } | StartRefusal::RevisionTypeNotAllowed { .. } => {
                PollRefusal::NotASourceAction
            }
        })?;
        record.runtime.w().polled.insert(self.action, self.version);
        Ok(Some(id))
    }
}
