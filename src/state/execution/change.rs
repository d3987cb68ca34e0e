//! The state changes the engine records, to be published as events.

use super::{ExecutionIndex, RunIndex};
use crate::state::Timestamp;

/// A state an execution, stage or action entered, as AWS spells it in its events (`CANCELED`, `RESUMED`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventState {
    Started,
    Resumed,
    Stopping,
    Stopped,
    Succeeded,
    Failed,
    Superseded,
    Canceled,
    Abandoned,
}

impl EventState {
    /// The event's `state`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventState::Started => "STARTED",
            EventState::Resumed => "RESUMED",
            EventState::Stopping => "STOPPING",
            EventState::Stopped => "STOPPED",
            EventState::Succeeded => "SUCCEEDED",
            EventState::Failed => "FAILED",
            EventState::Superseded => "SUPERSEDED",
            EventState::Canceled => "CANCELED",
            EventState::Abandoned => "ABANDONED",
        }
    }
}

/// What changed state: the execution, one of its stages (by index), or one of its action runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Entity {
    Pipeline,
    Stage(u32),
    Action(RunIndex),
}

impl Entity {
    /// Stage `stage` (by index in the declaration).
    pub fn stage(stage: usize) -> Entity {
        Entity::Stage(u32::try_from(stage).unwrap_or(u32::MAX))
    }
}

/// A state change the engine made, to be published as an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateChange {
    pub execution: ExecutionIndex,
    pub entity: Entity,
    pub state: EventState,
    pub at: Timestamp,
}
