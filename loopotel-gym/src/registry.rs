//! The reference's environment ids, and where their specs are: an installed `loopgym`
//! package (`LOOPOTEL_LOOPGYM_DIR`, or found through Python). The reference's spec files are
//! not copied into this repository.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::env::EnvError;
use crate::sim::SimEnv;

/// How the reference runs an env.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// `SimEnv` (native port: [`SimEnv`]).
    Sim,
    /// `PerturbedSimEnv` (not ported yet).
    Perturbed,
    /// `ComposedSimEnv` (not ported yet).
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

/// The entry for `id` (`lg/` prefix accepted).
pub fn entry(id: &str) -> Option<&'static EnvEntry> {
    let id = id.trim();
    let id = id.strip_prefix("lg/").unwrap_or(id);
    ENVS.iter().find(|e| e.id == id)
}

/// Makes a native environment for a reference env id from the installed package's spec.
pub fn make(id: &str, dir: &LoopgymDir) -> Result<SimEnv, EnvError> {
    let entry = entry(id).ok_or_else(|| EnvError::UnknownEnv {
        id: id.to_owned(),
        available: ENVS.iter().map(|e| e.id).collect::<Vec<_>>().join(", "),
    })?;
    if entry.backend != Backend::Sim {
        return Err(EnvError::NotNative {
            id: entry.id.to_owned(),
            backend: entry.backend.name().to_owned(),
        });
    }
    let spec_path = dir.spec_path(entry).ok_or_else(|| EnvError::NotNative {
        id: entry.id.to_owned(),
        backend: entry.backend.name().to_owned(),
    })?;
    let spec = crate::spec::LssSpec::from_file(&spec_path)?;
    let tasks = if entry.has_tasks {
        let path = spec_path.with_file_name("tasks.json");
        path.exists()
            .then(|| crate::spec::TaskFile::from_file(&path))
            .transpose()?
    } else {
        None
    };
    Ok(SimEnv::new(entry.id, spec, tasks)?)
}
