//! The execution engine: the background scheduler that moves pipeline executions through stages and actions, and
//! the action providers it drives.

pub mod behaviors;
pub mod providers;
pub mod step;
pub mod variables;
