//! # loopotel-gym
//!
//! Status: scaffold. LoopGym-style environments (native Sim/Live/Remote envs) and traced
//! episode runners are tracked in issue 6. This crate re-exports the core so dependants can
//! already name it.

pub use loopotel;
