//! `replay/loopnet-v1`, native, against the reference `ReplayEnv` live: for the sample
//! LoopNet corpus, every observation, reward, `done` flag and info of every step is the
//! same — records chosen by seed (Python's `random.Random(seed).choice`, reproduced), by
//! record id, by loop name, and an unknown task. (`loopotel run replay/loopnet-v1 --loopnet
//! FILE` is tested in `loopotel-cli/tests/run.rs`.)

use std::process::Command;

use loopotel_gym::Action;
use loopotel_gym::registry::make_replay;
use serde_json::{Value, json};

const SCRIPT: &str = r#"
import json, sys
from loopgym.envs.replay import ReplayEnv
records, cases = sys.argv[1], json.loads(sys.argv[2])
env = ReplayEnv("replay/loopnet-v1", records_path=records)
out = []
for task, seed in cases:
    obs = env.reset(task_id=task, seed=seed)
    steps = [{"obs": obs.to_dict()}]
    for _ in range(100):
        o, r, d, info = env.step()
        steps.append({"obs": o.to_dict(), "reward": r, "done": d, "info": info})
        if d:
            break
    out.append(steps)
print(json.dumps(out))
"#;

#[test]
fn native_replay_equals_the_reference_replay_env() {
    let Some(reference) = tests::reference() else {
        return;
    };
    let records = tests::workspace_root().join("tests/fixtures/loopnet/records.jsonl");
    let corpus = tests::read_jsonl_values(&records);
    let mut cases: Vec<(String, Option<i64>)> = (0..40).map(|s| (String::new(), Some(s))).collect();
    cases.push((String::new(), None));
    cases.push(("default".into(), Some(7)));
    cases.push(("no-such-loop".into(), Some(3)));
    for r in corpus.iter().step_by(97) {
        cases.push((r["record_id"].as_str().unwrap().to_owned(), Some(1)));
        cases.push((r["loop_name"].as_str().unwrap().to_owned(), None));
    }
    let arg = serde_json::to_string(&cases).unwrap();
    let out = tests::run(
        Command::new(&reference.python)
            .arg("-c")
            .arg(SCRIPT)
            .arg(&records)
            .arg(&arg),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let theirs: Vec<Vec<Value>> = serde_json::from_slice(&out.stdout).unwrap();

    let mut env = make_replay(&records).expect("the corpus loads");
    let mut steps_compared = 0;
    for ((task, seed), expected) in cases.iter().zip(&theirs) {
        let obs = env.reset(task, *seed).unwrap();
        let mut ours = vec![json!({"obs": obs})];
        for _ in 0..100 {
            let step = env.step(&Action::EnvWorker).unwrap();
            ours.push(json!({
                "obs": step.observation, "reward": step.reward, "done": step.done, "info": step.info,
            }));
            if step.done {
                break;
            }
        }
        assert_eq!(&ours, expected, "task {task:?} seed {seed:?}");
        steps_compared += ours.len();
    }
    assert!(steps_compared > 200, "{steps_compared} steps");
}
