//! The Python reference (`loopotel`, `loopgym` from PyPI) in the venv
//! `scripts/setup-python-ref.sh` makes, and the traces it writes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(".."))
}

/// The Python reference: its interpreter and `loopotel-validate`.
#[derive(Debug, Clone)]
pub struct Reference {
    /// The venv's python.
    pub python: PathBuf,
    /// The venv's `loopotel-validate`.
    pub validate: PathBuf,
}

/// Finds the reference venv (`LOOPOTEL_REF_PYTHON`, else `<root>/.venv-ref`). Returns `None`
/// (and says so on stderr) when absent, unless `LOOPOTEL_REQUIRE_INTEROP=1`, when it panics
/// with how to set it up.
pub fn reference() -> Option<Reference> {
    let python = std::env::var_os("LOOPOTEL_REF_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".venv-ref/bin/python"));
    let validate = python.with_file_name("loopotel-validate");
    if python.exists() && validate.exists() {
        return Some(Reference { python, validate });
    }
    crate::peers::missing(
        "LOOPOTEL_REQUIRE_INTEROP",
        &format!("the Python reference ({})", python.display()),
        "bash scripts/setup-python-ref.sh",
    )
}

/// Traces the reference wrote, one JSONL file per kind.
#[derive(Debug)]
pub struct ReferenceTraces {
    /// `run_traced_episode` over every loopgym env, several tasks, sampled seeds.
    pub episodes: PathBuf,
    /// The manual `LoopTracer` API; `metadata.case` holds each run's inputs.
    pub manual: PathBuf,
    /// The generator's seed (printed so a failure can be reproduced).
    pub seed: u64,
}

/// Runs `scripts/reference_traces.py` with the reference into `dir`.
pub fn generate_reference_traces(
    r: &Reference,
    dir: &Path,
    episodes_per_env: u32,
    cases: u32,
) -> ReferenceTraces {
    let script = workspace_root().join("scripts/reference_traces.py");
    let mut cmd = Command::new(&r.python);
    cmd.arg(&script)
        .arg(dir)
        .arg("--episodes")
        .arg(episodes_per_env.to_string())
        .arg("--cases")
        .arg(cases.to_string());
    if let Ok(seed) = std::env::var("LOOPOTEL_REF_SEED") {
        cmd.arg("--seed").arg(seed);
    }
    let out = run(&mut cmd);
    assert!(
        out.status.success(),
        "reference_traces.py failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: Value = serde_json::from_slice(&out.stdout).expect("reference_traces.py summary");
    let seed = summary["seed"].as_u64().unwrap_or(0);
    eprintln!("reference traces: {summary} (reproduce with LOOPOTEL_REF_SEED={seed})");
    ReferenceTraces {
        episodes: dir.join("episodes.jsonl"),
        manual: dir.join("manual.jsonl"),
        seed,
    }
}

/// Runs a command to completion, panicking with its name if it cannot start.
pub fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}
