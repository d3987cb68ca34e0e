//! The artifact writer's report (see [`crate::engine::providers::artifacts`]).

use uuid::Uuid;

use super::{Command, pipeline_not_found};
use crate::engine::Write;
use crate::engine::step::{self, StepEnv};
use crate::state::execution::{ActionStatus, ErrorDetails, Outcome, Pending, RunIndex, Success};
use crate::state::{PipelineRecord, Timestamp};

/// Record what came of writing a run's output artifacts: written, the run ends as simulated (at its due time, at
/// once if that has passed); not written, it fails with why. A report for a run no longer storing (stopped, or
/// reported already) changes nothing.
#[derive(Debug)]
pub struct StoreArtifacts {
    pub execution_id: Uuid,
    pub run_id: Uuid,
    /// Written; for an S3 source, with what it picked up (which replaces the simulated result). Or why not.
    pub result: Result<Option<Success>, ErrorDetails>,
}

/// Why a report is not recorded: its pipeline is gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreRefusal {
    PipelineNotFound,
}

pipeline_not_found!(StoreRefusal);

impl Command for StoreArtifacts {
    type Output = ();
    type Refusal = StoreRefusal;

    fn execute(self, record: &mut PipelineRecord, _: &StepEnv, now: Timestamp) -> Result<(), StoreRefusal> {
        let Some(&index) = record.runtime.index.get(&self.execution_id) else { return Ok(()) };
        let Some(execution) = record.runtime.executions.get(index.index()) else { return Ok(()) };
        let Some(position) = execution.actions.iter().position(|r| r.id == self.run_id) else { return Ok(()) };
        let run = &execution.actions[position];
        let Some(Pending::Storing { at, outcome, .. }) = run.pending.as_deref() else { return Ok(()) };
        if run.status != ActionStatus::InProgress {
            return Ok(());
        }
        let (at, outcome) = (*at, outcome.clone());
        let run_index = RunIndex::at(position);
        match self.result {
            Ok(picked) => {
                let outcome = picked.map_or(outcome, |success| Box::new(Outcome::Succeed(success)));
                let execution = &mut record.runtime.w().executions[index];
                if let Some(run) = execution.actions.get_mut(position) {
                    run.pending = Some(Box::new(Pending::At(at, outcome)));
                }
            }
            Err(error) => {
                step::finish_action(record, index, run_index, Outcome::Fail(error), now, step::FinishedBy::Worker);
            }
        }
        Ok(())
    }
}
