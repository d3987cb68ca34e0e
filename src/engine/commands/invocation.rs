//! What came of a Lambda invocation (the Lambda provider's worker reports it).

use super::{Command, pipeline_not_found};
use crate::engine::providers::lambda::{self, Invocation, InvokeResult};
use crate::engine::step::StepEnv;
use crate::state::{PipelineRecord, Timestamp};

/// Record what came of an invocation: a failed one fails its action or rule; a synchronous one's answer decides its
/// rule; an accepted asynchronous one shows the function as the action's external execution id.
#[derive(Debug)]
pub struct RecordInvocation {
    pub call: Invocation,
    pub result: InvokeResult,
}

/// Why a result is not recorded: its pipeline is gone (then there is nothing to record it in).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvocationRefusal {
    PipelineNotFound,
}

pipeline_not_found!(InvocationRefusal);

impl Command for RecordInvocation {
    type Output = ();
    type Refusal = InvocationRefusal;

    fn execute(self, record: &mut PipelineRecord, _: &StepEnv, now: Timestamp) -> Result<(), InvocationRefusal> {
        lambda::record_result(record, &self.call, self.result, now);
        Ok(())
    }
}
