//! Process death: `kill -9` while `loopotel run` writes traces as fast as it can. Every
//! complete line is a valid document; at most the last line is torn; the reader and
//! `loopotel validate` report the torn line by number and keep going.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use loopotel::jsonl::{JsonlError, JsonlReader};

const OURS: &str = env!("CARGO_BIN_EXE_loopotel");

#[test]
fn kill_9_during_heavy_writing_leaves_at_most_one_torn_line() {
    for round in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("t.jsonl");
        let mut child = Command::new(OURS)
            .args([
                "run",
                "builtin/triage-v1",
                "builtin/summarize-v1",
                "--seeds",
                "0..5000000",
                "--concurrency",
                "2",
            ])
            .arg("--out")
            .arg(&out)
            .env("LOOPOTEL_PYTHON", "/nonexistent/python")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        // Different amounts written before the kill each round.
        let want = 200_000 * (round + 1);
        while std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0) < want {
            assert!(Instant::now() < deadline, "no traces written");
            std::thread::sleep(Duration::from_millis(5));
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();

        let mut good = 0;
        let mut bad = Vec::new();
        let records: Vec<_> = JsonlReader::open(&out).unwrap().documents().collect();
        let n = records.len();
        for (i, r) in records.into_iter().enumerate() {
            match r {
                Ok(d) => {
                    assert!(loopotel::validate::validate_document(&d.value).is_empty());
                    good += 1;
                }
                Err(e) => bad.push((i, e)),
            }
        }
        assert!(good > 0);
        assert!(bad.len() <= 1, "round {round}: {bad:?}");
        if let Some((i, e)) = bad.first() {
            assert_eq!(*i, n - 1, "only the last line may be torn");
            assert!(matches!(e, JsonlError::Torn { .. }), "{e:?}");
            // validate reports it by line number and still checks the rest.
            let v = Command::new(OURS)
                .arg("validate")
                .arg(&out)
                .output()
                .unwrap();
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&v.stdout),
                String::from_utf8_lossy(&v.stderr)
            );
            assert!(text.contains(&format!("line {}", n)), "{text}");
            assert!(!text.contains("panicked"));
        }
    }
}
