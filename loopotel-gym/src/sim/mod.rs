//! Native ports of the reference's simulated environments (no API keys, deterministic).

mod env;
pub mod runtime;

pub use env::{SimEnv, goal_target, task_input};
