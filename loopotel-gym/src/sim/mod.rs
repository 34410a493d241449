//! Native ports of the reference's simulated environments (no API keys, deterministic).

mod composed;
mod env;
pub(crate) mod runtime;

pub use composed::{BranchEpisode, ComposedSimEnv};
pub use env::{SimEnv, goal_target, task_input};
