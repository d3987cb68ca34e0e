//! The runtime state of pipelines: executions, stage runs, action executions, transitions.
//!
//! These are plain data, one file per concept; `engine` moves them. Everything an API reads (GetPipelineState, GetPipelineExecution,
//! ListPipelineExecutions, ListActionExecutions) is derived from here.

use serde::Serialize;

use super::Definition;

mod change;
mod condition;
mod executions;
mod job;
mod outcome;
mod pipeline_execution;
mod revision;
mod run;
mod runtime;
mod status;

pub use change::*;
pub use condition::*;
pub use executions::*;
pub use job::*;
pub use outcome::*;
pub use pipeline_execution::*;
pub use revision::*;
pub use run::*;
pub use runtime::*;
pub use status::*;

/// Whether a list is empty, so that a saved row leaves it out (rows are read back with the default).
pub(super) fn is_empty<T>(items: &[T]) -> bool {
    items.is_empty()
}

/// Whether a counter is zero, so that a saved row leaves it out.
pub(super) fn is_zero(count: &u16) -> bool {
    *count == 0
}

/// Looks up an item by its typed position, as `get` and `get_mut` do by `usize`.
pub trait At<P> {
    type Item;
    /// The item at `at`, if there is one.
    fn at(&self, at: P) -> Option<&Self::Item>;
    /// The item at `at`, if there is one, to change.
    fn at_mut(&mut self, at: P) -> Option<&mut Self::Item>;
}

/// Declares a typed position in a vector of the pipeline's runtime state, so that an execution's position cannot be
/// used where an action run's is meant. Positions are stable: the vectors only grow.
macro_rules! position {
    ($(#[$doc:meta])* $name:ident in $item:ty) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, serde::Deserialize)]
        pub struct $name(u32);

        impl $name {
            /// The position `index` (saturating: no vector here holds 2^32 items).
            pub fn at(index: usize) -> $name {
                $name(u32::try_from(index).unwrap_or(u32::MAX))
            }

            /// The position the next item pushed onto `items` takes.
            pub fn next(items: &[$item]) -> $name {
                $name::at(items.len())
            }

            /// The position as a slice index.
            pub fn index(self) -> usize {
                self.0 as usize
            }
        }

        impl At<$name> for [$item] {
            type Item = $item;
            fn at(&self, at: $name) -> Option<&$item> {
                self.get(at.index())
            }
            fn at_mut(&mut self, at: $name) -> Option<&mut $item> {
                self.get_mut(at.index())
            }
        }

        impl std::ops::Index<$name> for [$item] {
            type Output = $item;
            fn index(&self, at: $name) -> &$item {
                &self[at.index()]
            }
        }

        impl std::ops::IndexMut<$name> for [$item] {
            fn index_mut(&mut self, at: $name) -> &mut $item {
                &mut self[at.index()]
            }
        }

        impl std::ops::Index<$name> for Vec<$item> {
            type Output = $item;
            fn index(&self, at: $name) -> &$item {
                &self[at.index()]
            }
        }

        impl std::ops::IndexMut<$name> for Vec<$item> {
            fn index_mut(&mut self, at: $name) -> &mut $item {
                &mut self[at.index()]
            }
        }
    };
}

position!(
    /// Where an execution is in [`PipelineRuntime::executions`].
    ExecutionIndex in Execution
);
position!(
    /// Where an action run is in [`Execution::actions`].
    RunIndex in ActionRun
);
position!(
    /// Where a rule run is in [`Conditions::rules`].
    RuleRunIndex in RuleRun
);
