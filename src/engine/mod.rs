//! The execution engine: the background scheduler that moves pipeline executions through stages and actions, and
//! the action providers it drives. Executions are not run yet; the engine arrives with the execution issue. Time,
//! which the engine will follow, is the store's [`Clock`](crate::state::Clock), so tests can advance it today.
