//! A job worker's acknowledgement and result (AcknowledgeJob, PutJobSuccessResult, PutJobFailureResult and their
//! ThirdParty twins, and a Lambda function's answer through them).

use super::{Command, PipelineNotFound};
use crate::engine::jobs::{self, JobRefusal, JobReport};
use crate::engine::step::StepEnv;
use crate::state::execution::JobStatus;
use crate::state::{PipelineRecord, Timestamp};

/// A job worker acknowledges a job with the nonce it got.
#[derive(Debug)]
pub struct AcknowledgeJob {
    pub job: uuid::Uuid,
    pub nonce: String,
}

/// A job worker's result; `fingerprint` identifies it, so that a repeat is told from a conflict.
#[derive(Debug)]
pub struct ReportJob {
    pub job: uuid::Uuid,
    pub fingerprint: String,
    pub report: JobReport,
}

/// A job's pipeline that is gone is a job that is not found.
impl From<PipelineNotFound> for JobRefusal {
    fn from(_: PipelineNotFound) -> JobRefusal {
        JobRefusal::NotFound
    }
}

impl Command for AcknowledgeJob {
    /// The job's status after the acknowledgement.
    type Output = JobStatus;
    type Refusal = JobRefusal;

    fn execute(self, record: &mut PipelineRecord, _: &StepEnv, _: Timestamp) -> Result<JobStatus, JobRefusal> {
        jobs::acknowledge(record, self.job, &self.nonce)
    }
}

impl Command for ReportJob {
    type Output = ();
    type Refusal = JobRefusal;

    fn execute(self, record: &mut PipelineRecord, env: &StepEnv, now: Timestamp) -> Result<(), JobRefusal> {
        jobs::report(record, self.job, self.fingerprint, self.report, env.ids, now)
    }
}
