//! A new version of the pipeline (UpdatePipeline), and what it does to the executions of the old one.
//!
//! AWS's guide: when a pipeline is updated, running actions complete, and then their stages and executions end
//! without going on; the model calls that end `Cancelled` ("the pipeline's definition was updated before the
//! execution could be completed"). Two real AWS sessions (issue 28) show an execution waiting at a manual approval
//! when its pipeline was updated: the approval ends `Failed` with the summary "The approval action has been
//! canceled.", and the execution ends `Cancelled` with the summary "Pipeline definition was updated". UNCONFIRMED and
//! inferred from those: a waiting (inbound) execution ends `Cancelled` at once; the cancelled approval has no error
//! details and its status change time is the update's; the stage ends `Cancelled` too.

use std::sync::Arc;

use super::approval::fail_approval;
use super::poll::{PollSource, Seen, polling_s3_sources};
use super::stop::APPROVAL_CANCELED;
use super::{Command, pipeline_not_found};
use crate::engine::Write;
use crate::engine::step::{FinishedBy, StepEnv, set_status};
use crate::state::execution::{ActionStatus, At, ExecutionStatus, Place, RunIndex, StopRequest};
use crate::state::{Definition, PipelineRecord, Timestamp};

/// Store `version` as the pipeline's next version, and cancel the executions of the old one.
#[derive(Debug)]
pub struct UpdateDefinition {
    pub version: Arc<Definition>,
}

/// Why an update is refused: only when the pipeline is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateRefusal {
    PipelineNotFound,
}

pipeline_not_found!(UpdateRefusal);

impl Command for UpdateDefinition {
    type Output = ();
    type Refusal = UpdateRefusal;

    fn execute(self, record: &mut PipelineRecord, env: &StepEnv, now: Timestamp) -> Result<(), UpdateRefusal> {
        record.push_version(self.version, now);
        let active: Vec<_> = record.runtime.active.iter().copied().collect();
        for index in active {
            let execution = &record.runtime.executions[index];
            if execution.status != ExecutionStatus::InProgress {
                // A stopping execution goes on stopping.
                continue;
            }
            let Place::InStage { stage } = execution.place else {
                // It had not entered a stage: it ends now.
                set_status(record, index, ExecutionStatus::Cancelled, now);
                continue;
            };
            let approvals: Vec<RunIndex> = execution.stages[stage]
                .as_ref()
                .map(|run| run.runs.clone())
                .unwrap_or_default()
                .into_iter()
                .filter(|&r| {
                    execution.actions.at(r).is_some_and(|a| a.status == ActionStatus::InProgress && a.awaits_approval)
                })
                .collect();
            record.runtime.w().executions[index].stop =
                Some(Box::new(StopRequest { abandon: false, reason: None, cancel: true }));
            for run in approvals {
                fail_approval(record, index, run, Some(APPROVAL_CANCELED), FinishedBy::Simulation, now);
            }
            // The stage ends once its other running actions have (the engine's advance sees to it).
        }
        // Polling sources look at their objects (the S3 neighbour's poller does it at its next look): one turned on,
        // or pointed at another object, starts the pipeline on a version it has not started it for.
        if !env.real.s3 {
            for action in polling_s3_sources(record) {
                let _ = PollSource { action, seen: Seen::Emulated }.execute(record, env, now);
            }
        }
        Ok(())
    }
}
