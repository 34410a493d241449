//! RemoteEnv against real Python LoopGym environments through the shipped bridge: a
//! reference env (same trajectory as the native port), `replay/loopnet-v1` over a LoopNet
//! records file, a custom env from a factory, and a bridge that crashes, hangs, writes
//! garbage or raises — each a clear error, never a hung runner.

use std::time::{Duration, Instant};

use loopotel::LoopTracer;
use loopotel_gym::registry::{self, LoopgymDir};
use loopotel_gym::remote::{RemoteEnv, RemoteSpec};
use loopotel_gym::{Action, Env as _, EnvWorkerPolicy, run_traced_episode};

const CUSTOM_ENV: &str = r#"
import os, sys, time
from loopgym.envs.base import LoopEnv, Observation

class Countdown(LoopEnv):
    """Three steps to the goal; misbehaves on request."""
    def __init__(self, env_id="custom/countdown-v1", misbehave=None):
        super().__init__(env_id)
        self.misbehave = misbehave
        self.n = 0
    def reset(self, task_id="", seed=None, **kw):
        self.n = 0
        self._done = False
        print("custom env says hello")  # must not corrupt the protocol
        return Observation(task_id or "default", 0, "", 0.0, "count down", False, {"seed": seed})
    def step(self, action=None):
        self.n += 1
        if self.misbehave == "crash" and self.n == 2:
            os._exit(3)
        if self.misbehave == "hang" and self.n == 2:
            time.sleep(30)
        if self.misbehave == "garbage" and self.n == 2:
            sys.__stdout__.write("this is not json\n"); sys.__stdout__.flush()
            time.sleep(5)
        if self.misbehave == "raise" and self.n == 2:
            raise RuntimeError("env exploded")
        self._done = self.n >= 3
        q = 0.3 * self.n
        out = action["output"] if isinstance(action, dict) else f"step {self.n}"
        obs = Observation("t", self.n, out, q, "count down", self._done, {"success": self._done})
        return obs, q, self._done, {"success": self._done, "termination_reason": "goal" if self._done else ""}

def make(**kw):
    return Countdown(**kw)
"#;

fn python() -> Option<std::path::PathBuf> {
    tests::reference().map(|r| r.python)
}

fn custom(python: &std::path::Path, dir: &std::path::Path, misbehave: Option<&str>) -> RemoteSpec {
    let mut kwargs = serde_json::json!({});
    if let Some(m) = misbehave {
        kwargs["misbehave"] = serde_json::json!(m);
    }
    RemoteSpec::factory("custom/countdown-v1", "custom_env:make")
        .python(python)
        .env_var("PYTHONPATH", dir.display().to_string())
        .kwargs(kwargs)
        .timeout(Duration::from_secs(2))
}

#[tokio::test]
async fn a_reference_env_through_the_bridge_matches_the_native_port() {
    let Some(py) = python() else { return };
    let dir = LoopgymDir::from_python(&py).expect("loopgym");
    let mut remote = RemoteEnv::start(RemoteSpec::env("loopbench/code-repair-v1").python(&py))
        .await
        .expect("bridge");
    assert_eq!(remote.task_ids(), ["cr-001", "cr-002", "cr-003"]);
    let mut native = registry::make("loopbench/code-repair-v1", &dir).unwrap();
    for seed in [0, 5, 99] {
        let a = remote.reset("cr-002", Some(seed)).await.unwrap();
        let b = native.reset("cr-002", Some(seed)).unwrap();
        assert_eq!(a, b);
        while !native.done() {
            let a = remote.step(Action::EnvWorker).await.unwrap();
            let b = native.step(&Action::EnvWorker).unwrap();
            assert_eq!(a, b, "seed {seed}");
        }
        assert!(remote.done());
    }
    // A traced episode over the bridge.
    let (result, doc) = run_traced_episode(
        &mut remote,
        &LoopTracer::new(),
        "cr-001",
        Some(3),
        &mut EnvWorkerPolicy,
    )
    .await;
    assert!(!result.termination_reason.is_empty());
    assert_eq!(
        doc.root()
            .unwrap()
            .attributes
            .get("loop.name")
            .unwrap()
            .as_str(),
        Some("code-repair-loop")
    );
    assert!(
        doc.root()
            .unwrap()
            .attributes
            .get("loop.tokens_total")
            .unwrap()
            .as_i64()
            .unwrap()
            > 0
    );
}

#[tokio::test]
async fn replay_loopnet_runs_over_a_records_file() {
    let Some(py) = python() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let records = tmp.path().join("records.jsonl");
    std::fs::write(
        &records,
        serde_json::json!({"record_id": "ln-test-1", "loop_name": "repair", "objective": "fix it",
            "trajectory": [{"iteration": 1, "goal_score": 0.4}, {"iteration": 2, "goal_score": 0.7},
                           {"iteration": 3, "goal_score": 0.9}]})
        .to_string()
            + "\n",
    )
    .unwrap();
    let mut env = RemoteEnv::start(
        RemoteSpec::env("replay/loopnet-v1")
            .python(&py)
            .env_var("LOOPNET_RECORDS_PATH", records.display().to_string()),
    )
    .await
    .expect("bridge");
    let (result, doc) = run_traced_episode(
        &mut env,
        &LoopTracer::new(),
        "ln-test-1",
        Some(1),
        &mut EnvWorkerPolicy,
    )
    .await;
    assert!(result.steps >= 1, "{result:?}");
    assert!(!result.termination_reason.starts_with("env_"), "{result:?}");
    assert!(doc.iterations().count() >= 1);
    let scores: Vec<f64> = doc
        .iterations()
        .filter_map(|s| s.attributes.get("loop.goal_score")?.as_f64())
        .collect();
    assert!(
        scores
            .iter()
            .any(|s| (*s - 0.7).abs() < 1e-9 || (*s - 0.9).abs() < 1e-9),
        "{scores:?}"
    );
}

#[tokio::test]
async fn a_custom_env_runs_and_misbehaving_bridges_are_clear_errors() {
    let Some(py) = python() else { return };
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("custom_env.py"), CUSTOM_ENV).unwrap();

    let mut env = RemoteEnv::start(custom(&py, tmp.path(), None))
        .await
        .expect("bridge");
    let mut policy = |_: &loopotel_gym::Observation| async { Action::Output("agent text".into()) };
    let (result, doc) =
        run_traced_episode(&mut env, &LoopTracer::new(), "t", Some(1), &mut policy).await;
    assert!(result.success, "{result:?}");
    assert_eq!(result.steps, 3);
    assert_eq!(result.termination_reason, "goal");
    assert_eq!(doc.iterations().count(), 3);

    for (misbehave, needle) in [
        ("crash", "exited"),
        ("hang", "did not answer"),
        ("garbage", "not a reply"),
        ("raise", "RuntimeError: env exploded"),
    ] {
        let mut env = RemoteEnv::start(custom(&py, tmp.path(), Some(misbehave)))
            .await
            .expect("bridge");
        env.reset("t", Some(1)).await.unwrap();
        env.step(Action::EnvWorker).await.unwrap();
        let t0 = Instant::now();
        let err = env
            .step(Action::EnvWorker)
            .await
            .expect_err(misbehave)
            .to_string();
        assert!(err.contains(needle), "{misbehave}: {err}");
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "{misbehave}: took {:?}",
            t0.elapsed()
        );
        if misbehave == "raise" {
            // The bridge survives a Python exception.
            env.reset("t", Some(2)).await.expect("still alive");
        } else {
            let again = env.reset("t", Some(2)).await.expect_err("gone").to_string();
            assert!(again.contains("the bridge is gone"), "{again}");
        }
    }
    // An episode over a crashing bridge still returns its trace.
    let mut env = RemoteEnv::start(custom(&py, tmp.path(), Some("crash")))
        .await
        .expect("bridge");
    let (result, doc) = run_traced_episode(
        &mut env,
        &LoopTracer::new(),
        "t",
        Some(1),
        &mut EnvWorkerPolicy,
    )
    .await;
    assert!(
        result
            .termination_reason
            .starts_with("env_error: remote env: the bridge exited"),
        "{result:?}"
    );
    assert_eq!(
        doc.root()
            .unwrap()
            .attributes
            .get("loop.outcome")
            .unwrap()
            .as_str(),
        Some("failure")
    );
}

#[tokio::test]
async fn a_missing_interpreter_is_a_clear_error() {
    let err = RemoteEnv::start(RemoteSpec::env("x").python("/nonexistent/python3"))
        .await
        .expect_err("no python")
        .to_string();
    assert!(err.contains("cannot start /nonexistent/python3"), "{err}");
}
