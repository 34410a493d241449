//! Environment ids. Built-in envs (`builtin/…`, original specs shipped in this crate) run
//! with no Python at all; the reference's ids (`loopbench/…`, `sim/…`) load their specs from
//! an installed `loopgym` package (`LOOPOTEL_LOOPGYM_DIR`, or found through Python) — the
//! reference's spec files are not copied into this repository.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::env::{Action, EnvError, Observation, Step};
use crate::episode::{EnvDescription, EpisodeEnv};
use crate::sim::{ComposedSimEnv, SimEnv};

/// A natively implemented environment, as [`make`] and [`make_any`] return it.
#[derive(Debug, Clone)]
pub enum NativeEnv {
    /// `SimEnv` or `PerturbedSimEnv`.
    Sim(Box<SimEnv>),
    /// `ComposedSimEnv`.
    Composed(Box<ComposedSimEnv>),
    /// `ReplayEnv` (`replay/loopnet-v1`).
    Replay(Box<crate::replay::ReplayEnv>),
}

impl NativeEnv {
    /// Starts an episode.
    pub fn reset(&mut self, task_id: &str, seed: Option<i64>) -> Result<Observation, EnvError> {
        match self {
            NativeEnv::Sim(e) => e.reset(task_id, seed),
            NativeEnv::Composed(e) => e.reset(task_id, seed),
            NativeEnv::Replay(e) => e.reset(task_id, seed),
        }
    }

    /// One step.
    pub fn step(&mut self, action: &Action) -> Result<Step, EnvError> {
        match self {
            NativeEnv::Sim(e) => e.step(action),
            NativeEnv::Composed(e) => e.step(action),
            NativeEnv::Replay(e) => e.step(action),
        }
    }

    /// Whether the episode has ended.
    pub fn done(&self) -> bool {
        match self {
            NativeEnv::Sim(e) => e.done(),
            NativeEnv::Composed(e) => e.done(),
            NativeEnv::Replay(e) => e.done(),
        }
    }

    /// The env's task ids (the orchestrator's for a composed env).
    pub fn task_ids(&self) -> Vec<String> {
        match self {
            NativeEnv::Sim(e) => e.task_ids(),
            NativeEnv::Composed(e) => e.task_ids(),
            NativeEnv::Replay(_) => Vec::new(),
        }
    }

    /// Tokens its (orchestrator's) mock LLM counted this episode.
    pub fn tokens_used(&self) -> u64 {
        match self {
            NativeEnv::Sim(e) => e.tokens_used(),
            NativeEnv::Composed(e) => e.orchestrator_tokens(),
            NativeEnv::Replay(_) => 0,
        }
    }

    /// For a composed env: the `PYTHONHASHSEED` of the reference run to reproduce.
    pub fn with_hash_seed(self, hash_seed: u32) -> Self {
        match self {
            NativeEnv::Composed(e) => NativeEnv::Composed(Box::new(e.hash_seed(hash_seed))),
            other => other,
        }
    }
}

impl crate::env::Env for NativeEnv {
    async fn reset(&mut self, task_id: &str, seed: Option<i64>) -> Result<Observation, EnvError> {
        NativeEnv::reset(self, task_id, seed)
    }

    async fn step(&mut self, action: Action) -> Result<Step, EnvError> {
        NativeEnv::step(self, &action)
    }
}

impl EpisodeEnv for NativeEnv {
    fn describe(&self) -> EnvDescription {
        match self {
            NativeEnv::Sim(e) => e.describe(),
            NativeEnv::Composed(e) => e.describe(),
            NativeEnv::Replay(e) => e.describe(),
        }
    }

    fn tokens_used(&self) -> Option<u64> {
        Some(NativeEnv::tokens_used(self))
    }

    fn is_done(&self) -> bool {
        self.done()
    }
}

/// How the reference runs an env.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// `SimEnv` (native port: [`SimEnv`]).
    Sim,
    /// `PerturbedSimEnv` (native port: [`SimEnv::perturbed`]).
    Perturbed,
    /// `ComposedSimEnv` (native port: [`ComposedSimEnv`]).
    Composed,
    /// `ReplayEnv` (not ported yet).
    Replay,
}

impl Backend {
    /// The reference's backend name.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sim => "sim",
            Backend::Perturbed => "perturbed",
            Backend::Composed => "composed",
            Backend::Replay => "replay",
        }
    }
}

/// One registered env: id, backend, spec directory under `envs/loopbench`, and whether it
/// has a task file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnvEntry {
    /// The id (`loopbench/code-repair-v1`; an `lg/` prefix is accepted by [`make`]).
    pub id: &'static str,
    /// The reference backend.
    pub backend: Backend,
    /// The spec's directory under `envs/loopbench` (`None`: no spec).
    pub spec_dir: Option<&'static str>,
    /// Whether the reference passes the spec's `tasks.json`.
    pub has_tasks: bool,
}

/// The reference registry (loopgym 0.1.x), in its order.
pub const ENVS: &[EnvEntry] = &[
    EnvEntry {
        id: "loopbench/code-repair-v1",
        backend: Backend::Sim,
        spec_dir: Some("code-repair-v1"),
        has_tasks: true,
    },
    EnvEntry {
        id: "loopbench/research-synthesis-v1",
        backend: Backend::Sim,
        spec_dir: Some("research-synthesis-v1"),
        has_tasks: true,
    },
    EnvEntry {
        id: "loopbench/multi-agent-debate-v1",
        backend: Backend::Sim,
        spec_dir: Some("multi-agent-debate-v1"),
        has_tasks: true,
    },
    EnvEntry {
        id: "loopbench/composed-swarm-v1",
        backend: Backend::Composed,
        spec_dir: Some("composed-swarm-v1"),
        has_tasks: true,
    },
    EnvEntry {
        id: "loopbench/rag-retrieval-v1",
        backend: Backend::Perturbed,
        spec_dir: Some("rag-retrieval-v1"),
        has_tasks: true,
    },
    EnvEntry {
        id: "loopbench/hitl-gate-v1",
        backend: Backend::Perturbed,
        spec_dir: Some("hitl-gate-v1"),
        has_tasks: true,
    },
    EnvEntry {
        id: "loopbench/safety-constrained-v1",
        backend: Backend::Perturbed,
        spec_dir: Some("safety-constrained-v1"),
        has_tasks: true,
    },
    EnvEntry {
        id: "replay/loopnet-v1",
        backend: Backend::Replay,
        spec_dir: None,
        has_tasks: false,
    },
    EnvEntry {
        id: "sim/mock-llm-v1",
        backend: Backend::Sim,
        spec_dir: Some("code-repair-v1"),
        has_tasks: false,
    },
];

/// An installed `loopgym` package directory (the one holding `envs/loopbench`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoopgymDir(pub PathBuf);

impl LoopgymDir {
    /// `LOOPOTEL_LOOPGYM_DIR`, else asks `python` (`LOOPOTEL_PYTHON`, else `python3`) where
    /// `loopgym` is installed. `None` when neither works.
    pub fn discover() -> Option<Self> {
        if let Some(dir) = std::env::var_os("LOOPOTEL_LOOPGYM_DIR") {
            return Some(Self(PathBuf::from(dir)));
        }
        let python = std::env::var_os("LOOPOTEL_PYTHON").unwrap_or_else(|| "python3".into());
        Self::from_python(Path::new(&python))
    }

    /// Asks this interpreter where `loopgym` is installed.
    pub fn from_python(python: &Path) -> Option<Self> {
        let out = Command::new(python)
            .args([
                "-c",
                "import loopgym, os; print(os.path.dirname(loopgym.__file__))",
            ])
            .output()
            .ok()?;
        if !out.status.success() {
            return None;
        }
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        dir.join("envs/loopbench").is_dir().then_some(Self(dir))
    }

    /// The spec file of `entry`.
    pub fn spec_path(&self, entry: &EnvEntry) -> Option<PathBuf> {
        entry
            .spec_dir
            .map(|d| self.0.join("envs/loopbench").join(d).join("spec.yaml"))
    }
}

/// A built-in environment: an original spec and task file embedded in the crate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuiltinEnv {
    /// `builtin/…`.
    pub id: &'static str,
    /// One line about it.
    pub description: &'static str,
    spec: &'static str,
    tasks: &'static str,
}

/// The built-in environments.
pub const BUILTIN: &[BuiltinEnv] = &[
    BuiltinEnv {
        id: "builtin/summarize-v1",
        description: "Iterative summarization with a critic (6 iterations max, pass 0.85)",
        spec: include_str!("../envs/summarize-v1/spec.yaml"),
        tasks: include_str!("../envs/summarize-v1/tasks.json"),
    },
    BuiltinEnv {
        id: "builtin/bugfix-v1",
        description: "Patch loop for a failing unit test (8 iterations max, pass 0.8)",
        spec: include_str!("../envs/bugfix-v1/spec.yaml"),
        tasks: include_str!("../envs/bugfix-v1/tasks.json"),
    },
    BuiltinEnv {
        id: "builtin/triage-v1",
        description: "Support-ticket routing with a strict reviewer (3 iterations max, pass 0.9)",
        spec: include_str!("../envs/triage-v1/spec.yaml"),
        tasks: include_str!("../envs/triage-v1/tasks.json"),
    },
];

impl BuiltinEnv {
    /// A fresh environment.
    pub fn make(&self) -> Result<NativeEnv, EnvError> {
        let origin = format!("{}/spec.yaml", self.id);
        let spec = crate::spec::LssSpec::from_yaml(self.spec, &origin)?;
        let tasks =
            crate::spec::TaskFile::from_json_str(self.tasks, format!("{}/tasks.json", self.id))?;
        Ok(NativeEnv::Sim(Box::new(SimEnv::new(
            self.id,
            spec,
            Some(tasks),
        )?)))
    }
}

/// One line of `loopotel list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedEnv {
    /// The id.
    pub id: String,
    /// `builtin` or `loopgym`.
    pub source: &'static str,
    /// The reference backend (`sim` for built-ins).
    pub backend: &'static str,
    /// Whether it runs natively.
    pub native: bool,
}

/// Every env: the built-ins, then (with a `loopgym` package) the reference's.
pub fn list(dir: Option<&LoopgymDir>) -> Vec<ListedEnv> {
    let mut out: Vec<ListedEnv> = BUILTIN
        .iter()
        .map(|b| ListedEnv {
            id: b.id.into(),
            source: "builtin",
            backend: "sim",
            native: true,
        })
        .collect();
    if let Some(dir) = dir {
        out.extend(ENVS.iter().map(|e| ListedEnv {
            id: e.id.into(),
            source: "loopgym",
            backend: e.backend.name(),
            native: e.backend == Backend::Replay || dir.spec_path(e).is_some_and(|p| p.exists()),
        }));
    }
    out
}

/// Makes an environment by id: a built-in one, or a reference env from `dir`.
pub fn make_any(id: &str, dir: Option<&LoopgymDir>) -> Result<NativeEnv, EnvError> {
    if let Some(b) = BUILTIN.iter().find(|b| b.id == id.trim()) {
        return b.make();
    }
    match (entry(id), dir) {
        (Some(e), _) if e.backend == Backend::Replay => make_replay_from_env(),
        (Some(_), Some(dir)) => make(id, dir),
        (Some(e), None) => Err(EnvError::NoLoopgym {
            id: e.id.to_owned(),
        }),
        (None, _) => Err(EnvError::UnknownEnv {
            id: id.to_owned(),
            available: list(dir)
                .into_iter()
                .map(|e| e.id)
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

/// The entry for `id` (`lg/` prefix accepted).
pub fn entry(id: &str) -> Option<&'static EnvEntry> {
    let id = id.trim();
    let id = id.strip_prefix("lg/").unwrap_or(id);
    ENVS.iter().find(|e| e.id == id)
}

/// Loads the spec and (when the entry has one) the task file of a reference env directory.
fn load_sim(
    id: &str,
    dir: &LoopgymDir,
    spec_dir: &str,
    with_tasks: bool,
) -> Result<SimEnv, EnvError> {
    let spec_path = dir
        .0
        .join("envs/loopbench")
        .join(spec_dir)
        .join("spec.yaml");
    let spec = crate::spec::LssSpec::from_file(&spec_path)?;
    let tasks = if with_tasks {
        let path = spec_path.with_file_name("tasks.json");
        path.exists()
            .then(|| crate::spec::TaskFile::from_file(&path))
            .transpose()?
    } else {
        None
    };
    Ok(SimEnv::new(id, spec, tasks)?)
}

/// The composed env's branches, as the reference registers them.
const COMPOSED_BRANCHES: &[(&str, &str)] = &[
    ("falsifier", "research-synthesis-v1"),
    ("evidence", "multi-agent-debate-v1"),
    ("operator", "code-repair-v1"),
];

/// `replay/loopnet-v1` over a LoopNet records file (`ln/record-v1` JSONL).
pub fn make_replay(records: &Path) -> Result<NativeEnv, EnvError> {
    Ok(NativeEnv::Replay(Box::new(
        crate::replay::ReplayEnv::from_records_file("replay/loopnet-v1", records)?,
    )))
}

/// `replay/loopnet-v1` over the records file `LOOPNET_RECORDS_PATH` (or
/// `LOOPNET_SEED_PATH`) names, as the reference finds its corpus.
fn make_replay_from_env() -> Result<NativeEnv, EnvError> {
    let records = ["LOOPNET_RECORDS_PATH", "LOOPNET_SEED_PATH"]
        .iter()
        .find_map(std::env::var_os)
        .ok_or_else(|| EnvError::Records {
            path: "(none)".to_owned(),
            why: "replay/loopnet-v1 replays a LoopNet records file: pass it \
                  (`loopotel run replay/loopnet-v1 --loopnet FILE`) or set \
                  LOOPNET_RECORDS_PATH"
                .to_owned(),
        })?;
    make_replay(Path::new(&records))
}

/// Makes a native environment for a reference env id from the installed package's spec.
pub fn make(id: &str, dir: &LoopgymDir) -> Result<NativeEnv, EnvError> {
    let entry = entry(id).ok_or_else(|| EnvError::UnknownEnv {
        id: id.to_owned(),
        available: ENVS.iter().map(|e| e.id).collect::<Vec<_>>().join(", "),
    })?;
    let not_native = || EnvError::NotNative {
        id: entry.id.to_owned(),
        backend: entry.backend.name().to_owned(),
    };
    if entry.backend == Backend::Replay {
        return make_replay_from_env();
    }
    let spec_dir = entry.spec_dir.ok_or_else(not_native)?;
    match entry.backend {
        Backend::Sim => Ok(NativeEnv::Sim(Box::new(load_sim(
            entry.id,
            dir,
            spec_dir,
            entry.has_tasks,
        )?))),
        Backend::Perturbed => Ok(NativeEnv::Sim(Box::new(
            load_sim(entry.id, dir, spec_dir, entry.has_tasks)?.perturbed(),
        ))),
        Backend::Composed => {
            let orchestrator = load_sim(entry.id, dir, spec_dir, entry.has_tasks)?;
            let branches = COMPOSED_BRANCHES
                .iter()
                .map(|(branch, d)| Ok(((*branch).to_owned(), load_sim(entry.id, dir, d, true)?)))
                .collect::<Result<Vec<_>, EnvError>>()?;
            Ok(NativeEnv::Composed(Box::new(ComposedSimEnv::new(
                entry.id,
                orchestrator,
                branches,
            ))))
        }
        Backend::Replay => make_replay_from_env(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::env::Action;

    #[test]
    fn builtin_envs_load_and_run_to_the_end_without_python() {
        for b in BUILTIN {
            let mut env = make_any(b.id, None).unwrap();
            assert!(!env.task_ids().is_empty(), "{}", b.id);
            for task in env.task_ids() {
                env.reset(&task, Some(3)).unwrap();
                let mut steps = 0;
                while !env.done() {
                    env.step(&Action::EnvWorker).unwrap();
                    steps += 1;
                    assert!(steps <= 10, "{} runs away", b.id);
                }
                let NativeEnv::Sim(sim) = &env else { panic!() };
                assert!(!sim.termination_reason().is_empty());
            }
        }
    }

    #[test]
    fn unknown_and_unavailable_envs_are_clear_errors() {
        let e = make_any("nope/x", None).unwrap_err().to_string();
        assert!(
            e.contains("unknown env \"nope/x\"") && e.contains("builtin/triage-v1"),
            "{e}"
        );
        let e = make_any("loopbench/code-repair-v1", None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("pip install loopgym"), "{e}");
    }
}
