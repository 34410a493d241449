//! The native SimEnv against the Python reference's, live: `scripts/sim_trajectories.py`
//! runs the installed `loopgym` over every plain-sim env, every task (plus the default and an
//! unknown one) and fixed plus sampled seeds, with the env's own worker and with agent
//! outputs; the native port must produce the same observations, rewards, done flags, info,
//! and token counts — floats bit for bit.

use std::process::Command;

use loopotel_gym::registry::{self, LoopgymDir};
use loopotel_gym::{Action, Observation};
use serde_json::Value;

fn obs_json(o: &Observation) -> Value {
    serde_json::to_value(o).expect("observation JSON")
}

/// Compares JSON values, floats by bits (through their shortest round-trip text).
fn assert_same(want: &Value, got: &Value, at: &str) {
    match (want, got) {
        (Value::Number(a), Value::Number(b)) if a.is_f64() || b.is_f64() => {
            let (a, b) = (a.as_f64().unwrap(), b.as_f64().unwrap());
            assert_eq!(a.to_bits(), b.to_bits(), "{at}: {a} vs {b}");
        }
        (Value::Object(a), Value::Object(b)) => {
            let mut ka: Vec<_> = a.keys().collect();
            let mut kb: Vec<_> = b.keys().collect();
            ka.sort();
            kb.sort();
            assert_eq!(ka, kb, "{at}: keys");
            for (k, v) in a {
                assert_same(v, &b[k], &format!("{at}.{k}"));
            }
        }
        _ => assert_eq!(want, got, "{at}"),
    }
}

#[test]
fn native_sim_env_reproduces_the_reference_trajectories() {
    let Some(reference) = tests::reference() else {
        return;
    };
    let dir = LoopgymDir::from_python(&reference.python)
        .expect("loopgym installed in the reference venv");
    let meta_seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(1);
    eprintln!("sampled seeds from meta seed {meta_seed}");
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("trajectories.jsonl");
    let script = tests::workspace_root().join("scripts/sim_trajectories.py");
    let run = tests::run(
        Command::new(&reference.python)
            .arg(&script)
            .arg(&out)
            .arg(meta_seed.to_string()),
    );
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let episodes = tests::read_jsonl_values(&out);
    assert!(episodes.len() >= 200, "{} episodes", episodes.len());
    let mut steps = 0;
    for ep in &episodes {
        let env_id = ep["env"].as_str().unwrap();
        let task = ep["task"].as_str().unwrap();
        let seed = ep["seed"].as_i64().unwrap();
        let agent = ep["agent"].as_bool().unwrap();
        let case =
            format!("{env_id} task={task:?} seed={seed} agent={agent} (meta seed {meta_seed})");
        let mut env = registry::make(env_id, &dir).unwrap_or_else(|e| panic!("{case}: {e}"));
        let reset = env.reset(task, Some(seed)).unwrap();
        assert_same(&ep["reset"], &obs_json(&reset), &format!("{case} reset"));
        for (n, want) in ep["steps"].as_array().unwrap().iter().enumerate() {
            let action = if agent && n % 2 == 1 {
                Action::Output(format!(
                    "agent answer {n} for {}: é \"q\" 'x'",
                    if task.is_empty() { "default" } else { task }
                ))
            } else {
                Action::EnvWorker
            };
            let got = env.step(&action).unwrap();
            let at = format!("{case} step {}", n + 1);
            assert_same(&want["obs"], &obs_json(&got.observation), &at);
            assert_same(
                &want["reward"],
                &serde_json::json!(got.reward),
                &format!("{at} reward"),
            );
            assert_eq!(want["done"].as_bool(), Some(got.done), "{at} done");
            assert_same(
                &want["info"],
                &Value::Object(got.info.clone()),
                &format!("{at} info"),
            );
            steps += 1;
        }
        assert!(env.done(), "{case}: the native episode ended too");
        let after = env.step(&Action::EnvWorker).unwrap();
        let want = &ep["after_done"];
        assert_same(
            &want["obs"],
            &obs_json(&after.observation),
            &format!("{case} after done"),
        );
        assert_same(
            &want["info"],
            &Value::Object(after.info),
            &format!("{case} after done info"),
        );
        assert_eq!(
            ep["tokens_used"].as_u64(),
            Some(env.tokens_used()),
            "{case} tokens"
        );
    }
    eprintln!("{} episodes, {steps} steps identical", episodes.len());
}
