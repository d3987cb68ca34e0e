//! Set the inbound transition of a stage (EnableStageTransition, DisableStageTransition).

use serde::{Deserialize, Serialize};

use super::{Command, current_stage, pipeline_not_found};
use crate::engine::Write;
use crate::engine::step::StepEnv;
use crate::state::execution::TransitionState;
use crate::state::{PipelineRecord, Timestamp};

/// Which transition of a stage a request names (the model's `StageTransitionType`): its own inbound one, or the
/// outbound one, which is the next stage's inbound transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TransitionType {
    Inbound,
    Outbound,
}

/// Set a stage transition; enabling it lets a waiting execution in.
#[derive(Debug)]
pub struct SetTransition {
    pub stage: String,
    pub transition_type: TransitionType,
    pub state: TransitionState,
}

/// Why a transition change is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransitionRefusal {
    PipelineNotFound,
    /// The pipeline's current version has no stage of that name.
    StageNotFound,
    /// The outbound transition of the last stage: there is none.
    NoOutboundTransition,
}

pipeline_not_found!(TransitionRefusal);

impl Command for SetTransition {
    type Output = ();
    type Refusal = TransitionRefusal;

    fn execute(self, record: &mut PipelineRecord, _: &StepEnv, _: Timestamp) -> Result<(), TransitionRefusal> {
        let index = current_stage(record, &self.stage).ok_or(TransitionRefusal::StageNotFound)?;
        let target = match self.transition_type {
            TransitionType::Inbound => self.stage,
            TransitionType::Outbound => record
                .current()
                .stages
                .get(index + 1)
                .map(|s| s.name.clone())
                .ok_or(TransitionRefusal::NoOutboundTransition)?,
        };
        record.runtime.w().transitions.insert(target, self.state);
        Ok(())
    }
}
