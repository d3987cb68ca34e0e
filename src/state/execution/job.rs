//! Jobs of custom, partner and Lambda actions.

use serde::Serialize;
use uuid::Uuid;

use super::{ExecutionIndex, RunIndex};
use crate::state::Timestamp;

/// `JobStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
pub enum JobStatus {
    Created,
    Queued,
    Dispatched,
    InProgress,
    TimedOut,
    Succeeded,
    Failed,
}

impl JobStatus {
    /// Whether the job has ended.
    pub fn is_terminal(self) -> bool {
        matches!(self, JobStatus::TimedOut | JobStatus::Succeeded | JobStatus::Failed)
    }
}

/// The job of a custom action: one per attempt, and one more per continuation token.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Job {
    pub id: Uuid,
    pub execution: ExecutionIndex,
    pub run: RunIndex,
    pub status: JobStatus,
    /// The nonce handed out with the job by the latest poll.
    pub nonce: Option<String>,
    /// When a job handed out but not acknowledged may be handed out again.
    pub visible_at: Timestamp,
    /// The continuation token this job carries, from the previous job of the same action.
    pub continuation_token: Option<String>,
    /// The request that ended the job, for telling identical repeats from conflicting ones.
    pub result: Option<String>,
    pub created: Timestamp,
    /// Who works the job.
    pub kind: JobKind,
}

/// Who works a job, and so through which API it is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
pub enum JobKind {
    /// A custom action's job worker, through PollForJobs and the other custom job operations.
    Custom,
    /// A partner's job worker, through the ThirdParty job operations and the type's client token.
    ThirdParty,
    /// A Lambda function the emulator invokes; it answers through PutJobSuccessResult/PutJobFailureResult.
    Lambda,
}
