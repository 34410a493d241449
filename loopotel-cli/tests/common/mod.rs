//! What the CLI's integration tests share: the built `loopotel` binary, run without an
//! installed loopgym or Python, and its output as text.

use std::process::{Command, Output};

/// The `loopotel` binary under test.
pub(crate) const OURS: &str = env!("CARGO_BIN_EXE_loopotel");

/// Runs `loopotel` with `args`: no loopgym directory, no Python, no colour.
pub(crate) fn loopotel(args: &[&str]) -> Output {
    Command::new(OURS)
        .args(args)
        .env_remove("LOOPOTEL_LOOPGYM_DIR")
        .env("LOOPOTEL_PYTHON", "/nonexistent/python")
        .env("NO_COLOR", "1")
        .output()
        .expect("run loopotel")
}

/// A run's standard output and standard error as text.
#[allow(dead_code)] // not every test file reads both streams
pub(crate) fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}
