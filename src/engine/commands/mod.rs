//! The engine's doors: every change a caller asks of a running pipeline is a [`Command`], one file each, with its own
//! output and refusal types, so that the compiler knows which refusals each can meet and every caller words them all
//! (no catch-all). [`Engine::apply`](super::Engine::apply) carries a command out under the pipeline's partition lock,
//! through the pure steps, followed by an advance and its timers. A command looks up what it names itself (its
//! stage, its action): an operation's preconditions are its command's refusals, checked under the same lock as the
//! change. A refused command changes nothing.
//!
//! | command | operation or endpoint | output |
//! |---|---|---|
//! | [`start::Start`] | StartPipelineExecution, CreatePipeline, UpdatePipeline, triggers | the execution id |
//! | [`stop::Stop`] | StopPipelineExecution | |
//! | [`retry::Retry`] | RetryStageExecution | |
//! | [`rollback::Rollback`] | RollbackStage | the rollback execution's id |
//! | [`approval::AnswerApproval`] | PutApprovalResult | |
//! | [`condition::OverrideCondition`] | OverrideStageCondition | |
//! | [`transition::SetTransition`] | Enable/DisableStageTransition | |
//! | [`revision::PushRevision`] | PutActionRevision | a new execution, or the one that has the revision |
//! | [`job::AcknowledgeJob`], [`job::ReportJob`] | job workers' calls | the job's status |
//! | [`complete::CompleteAction`], [`complete::CompleteRule`] | `POST /_emulator/actions/complete` | the run's id |
//! | [`invocation::RecordInvocation`] | the Lambda provider's worker | |
//! | [`artifacts::StoreArtifacts`] | the artifact writer (an S3 neighbour) | |
//! | [`poll::PollSource`] | the S3 source poller (an S3 neighbour) | a new execution, if the version is new |
//! | [`update::UpdateDefinition`] | UpdatePipeline | |

pub mod approval;
pub mod artifacts;
pub mod complete;
pub mod condition;
pub mod invocation;
pub mod job;
pub mod poll;
pub mod retry;
pub mod revision;
pub mod rollback;
pub mod start;
pub mod stop;
pub mod transition;
pub mod update;

use super::step::StepEnv;
use crate::state::{PipelineRecord, Timestamp};

/// A change a caller asks of a running pipeline.
pub trait Command {
    /// What the command answers when it was carried out.
    type Output;
    /// Why it may be refused (then nothing changed). Every command can meet a pipeline that is not there.
    type Refusal: From<PipelineNotFound>;

    /// Carries the command out on the pipeline, under its partition lock; the engine advances it afterwards.
    fn execute(self, record: &mut PipelineRecord, env: &StepEnv, now: Timestamp)
    -> Result<Self::Output, Self::Refusal>;
}

/// The pipeline a command names does not exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PipelineNotFound;

/// Lets each refusal type say "no such pipeline" in its own words.
macro_rules! pipeline_not_found {
    ($($refusal:ty),+) => {$(
        impl From<$crate::engine::commands::PipelineNotFound> for $refusal {
            fn from(_: $crate::engine::commands::PipelineNotFound) -> $refusal {
                <$refusal>::PipelineNotFound
            }
        }
    )+};
}
pub(crate) use pipeline_not_found;

/// The index of the stage named `name` in the pipeline's current version.
fn current_stage(record: &PipelineRecord, name: &str) -> Option<usize> {
    record.current().stages.iter().position(|s| s.name == name)
}
