//! # loopotel-gym
//!
//! LoopGym-style environments for Rust agent loops, and traced episodes.
//!
//! - [`Env`]: the gym-style API — `reset(task_id, seed)`, `step(action)` → [`Step`]
//!   (observation, reward, done, info), `close()` — async, so remote and live environments
//!   share it.
//! - [`sim::SimEnv`] (and `.perturbed()`) and [`sim::ComposedSimEnv`]: native ports of the
//!   reference's simulated envs (the deterministic SHA-256 mock LLM and loop runtime of
//!   `loopgym` 0.1.x): the same outputs, quality scores, rewards, token counts, termination
//!   reasons and done flags for the same spec, task and seed — checked against the
//!   installed Python package in CI.
//! - [`run_traced_episode`] with a [`Policy`]: iteration spans holding the policy's spans and
//!   a `loop.env.step` span; env errors and panics end the episode `failure`.
//! - `live` (feature `live`): [`live::LiveEnv`] and [`live::LlmPolicy`] over any
//!   OpenAI-compatible endpoint; `remote` (feature `remote`): [`remote::RemoteEnv`], any
//!   Python LoopGym env through the shipped JSON-lines bridge.
//! - [`spec`]: LSS specs (YAML) and `tasks.json`, key order kept, with errors that name the
//!   file, the field and why.
//! - [`registry`]: the reference's env ids; specs come from an installed `loopgym`
//!   ([`registry::LoopgymDir::discover`]), never copied here.
//!
//! ```no_run
//! use loopotel_gym::{Action, registry};
//!
//! let dir = registry::LoopgymDir::discover().expect("pip install loopgym, or set LOOPOTEL_LOOPGYM_DIR");
//! let mut env = registry::make("loopbench/code-repair-v1", &dir)?;
//! let mut obs = env.reset("cr-001", Some(7))?;
//! while !obs.done {
//!     let step = env.step(&Action::EnvWorker)?;
//!     println!("{} {:.2} {}", step.observation.iteration, step.observation.quality_score, step.reward);
//!     obs = step.observation;
//! }
//! # Ok::<(), loopotel_gym::EnvError>(())
//! ```
//!
//! Python-compatible formatting makes the strings match byte for byte: Python
//! `repr()` of strings and floats, `json.dumps` defaults, `%.2f`, code-point slicing. Known
//! difference: YAML is read as YAML 1.2 (PyYAML reads 1.1: `yes`/`on` are booleans there).

#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod env;
pub mod episode;
#[cfg(feature = "live")]
pub mod live;
mod pyhash;
mod pyvalue;
pub mod registry;
#[cfg(feature = "remote")]
pub mod remote;
pub mod replay;
pub mod sim;
pub mod spec;

pub use env::{Action, Env, EnvError, Info, Observation, Step};
pub use episode::{
    EnvDescription, EnvWorkerPolicy, EpisodeEnv, EpisodeResult, Policy, run_traced_episode,
};
pub use loopotel;
pub use pyvalue::PyValue;
