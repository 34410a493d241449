//! Process death: `kill -9` while `loopotel run` writes traces as fast as it can. Every
//! complete line is a valid document; at most the last line is torn; the reader and
//! `loopotel validate` report the torn line by number and keep going.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use loopotel::jsonl::{JsonlError, JsonlReader};

const OURS: &str = env!("CARGO_BIN_EXE_loopotel");

/// `loopotel demo` recording a slow loop into `out` (`iterations` iterations, `delay_ms`
/// each, task `demo-{seed}`), printing `iteration N journaled` on its piped stdout as each
/// one is journaled.
fn slow_demo(
    out: &std::path::Path,
    iterations: u64,
    delay_ms: u64,
    seed: u64,
) -> std::process::Child {
    Command::new(OURS)
        .args(["demo", "--progress", "--keep-going"])
        .args(["--seed", &seed.to_string()])
        .args(["--iterations", &iterations.to_string()])
        .args(["--iteration-delay-ms", &delay_ms.to_string()])
        .arg("--out")
        .arg(out)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

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

/// `kill -9` at random moments of a long loop (`demo --progress` prints each iteration once
/// the journal holds it), then `loopotel recover`: every iteration the child reported is in
/// the recovered document, which passes `validate --strict`; nothing is duplicated; a
/// second recovery changes nothing.
#[test]
fn kill_9_at_random_moments_then_recover_keeps_every_reported_iteration() {
    use std::io::BufRead as _;
    let mut rng = fastrand::Rng::with_seed(0x6b696c6c);
    let trials = 50;
    let mut recovered_iterations = 0;
    for trial in 0..trials {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("t.jsonl");
        let mut child = slow_demo(&out, 10_000, 1, 3);
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .filter_map(|l| {
                    l.strip_prefix("iteration ")?
                        .strip_suffix(" journaled")?
                        .parse::<i64>()
                        .ok()
                })
                .collect::<Vec<i64>>()
        });
        std::thread::sleep(Duration::from_millis(rng.u64(5..150)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let reported = reader.join().unwrap();

        let r = Command::new(OURS)
            .arg("recover")
            .arg(&out)
            .output()
            .unwrap();
        assert!(r.status.success(), "trial {trial}: {r:?}");
        let docs: Vec<_> = if out.exists() {
            JsonlReader::open(&out)
                .unwrap()
                .documents()
                .map(|d| d.unwrap().value)
                .collect()
        } else {
            Vec::new()
        };
        if reported.is_empty() && docs.is_empty() {
            continue; // killed before the first iteration was journaled
        }
        assert_eq!(docs.len(), 1, "trial {trial}: one run");
        let doc = &docs[0];
        assert_eq!(doc.outcome, Some(loopotel::Outcome::Unknown));
        let ended: Vec<i64> = doc
            .iterations()
            .filter(|s| s.attributes.get("loop.end_reason").is_none())
            .filter_map(|s| s.attributes.get("loop.iteration")?.as_i64())
            .collect();
        for n in &reported {
            assert!(
                ended.contains(n),
                "trial {trial}: reported iteration {n} lost; have {ended:?}"
            );
        }
        recovered_iterations += ended.len();
        let mut ids: Vec<_> = doc.spans.iter().map(|s| s.span_id).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(
            ids.len(),
            doc.spans.len(),
            "trial {trial}: duplicated spans"
        );
        let v = Command::new(OURS)
            .args(["validate", "--strict"])
            .arg(&out)
            .output()
            .unwrap();
        assert!(v.status.success(), "trial {trial}: {v:?}");
        let before = std::fs::read(&out).unwrap();
        let r = Command::new(OURS)
            .arg("recover")
            .arg(&out)
            .output()
            .unwrap();
        assert!(r.status.success());
        assert_eq!(
            std::fs::read(&out).unwrap(),
            before,
            "trial {trial}: recovery is idempotent"
        );
    }
    assert!(recovered_iterations > trials, "kills landed mid-loop");
}

/// A journal that cannot be written (its directory cannot be made: a file is in its
/// place, as a read-only or full disk would refuse it): the loop runs on, the document is
/// complete, the loss is warned once.
/// Runs `loopotel demo` (200 iterations) into `out` with the journal directory made
/// unwritable by `how`: a file in its place (`None`), or a file system mounted on it with
/// these options (in a mount namespace of its own, `unshare -rm`). The demo succeeds,
/// warns once about the journal (saying `why`), and writes every iteration to the JSONL.
fn demo_with_an_unwritable_journal(how: Option<&str>, why: &str) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("t.jsonl");
    let journal = loopotel::journal::dir_beside(&out);
    let demo = ["demo", "--iterations", "200", "--keep-going", "--out"];
    let o = match how {
        None => {
            std::fs::write(&journal, b"in the way").unwrap();
            Command::new(OURS).args(demo).arg(&out).output().unwrap()
        }
        Some(options) => {
            std::fs::create_dir(&journal).unwrap();
            Command::new("unshare")
                .args(["-rm", "sh", "-c"])
                .arg(format!(
                    "mount -t tmpfs -o {options} none \"$0\" && shift && exec \"$@\""
                ))
                .arg(&journal)
                .arg("--")
                .arg(OURS)
                .args(demo)
                .arg(&out)
                .output()
                .expect("unshare (util-linux) runs the demo in a mount namespace")
        }
    };
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{how:?}: {stderr}");
    assert_eq!(
        stderr.matches("loopotel: journal").count(),
        1,
        "{how:?}: warned once: {stderr}"
    );
    assert!(stderr.contains(why), "{how:?}: {stderr}");
    let docs: Vec<_> = JsonlReader::open(&out).unwrap().documents().collect();
    assert_eq!(docs.len(), 1, "{how:?}");
    let doc = docs.into_iter().next().unwrap().unwrap().value;
    assert_eq!(doc.iterations().count(), 200, "{how:?}");
    assert!(loopotel::validate::validate_document(&doc).is_empty());
}

#[test]
fn an_unwritable_journal_does_not_stop_the_loop() {
    demo_with_an_unwritable_journal(None, "File exists");
}

/// The journal's file system fills up (64 KiB) while the loop records.
#[test]
fn a_full_disk_does_not_stop_the_loop() {
    demo_with_an_unwritable_journal(Some("size=64k"), "No space left on device");
}

/// The journal directory is on a read-only file system.
#[test]
fn a_read_only_journal_directory_does_not_stop_the_loop() {
    demo_with_an_unwritable_journal(Some("ro"), "Read-only file system");
}

/// `show --follow` lists a run in progress from its journal, live, with its iteration and
/// score; once its process is killed, as ended.
#[test]
fn show_follow_lists_the_runs_in_progress() {
    use std::io::BufRead as _;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("t.jsonl");
    let mut demo = slow_demo(&out, 100_000, 10, 7);
    // Wait for the first journaled iteration.
    let mut lines = std::io::BufReader::new(demo.stdout.take().unwrap()).lines();
    assert!(lines.next().unwrap().unwrap().contains("journaled"));
    let follow = |until: &str| {
        let mut show = Command::new(OURS)
            .args(["show", "--follow"])
            .arg(&out)
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut block = Vec::new();
        for line in std::io::BufReader::new(show.stdout.take().unwrap()).lines() {
            let line = line.unwrap();
            let done = line.contains("in progress");
            block.push(line);
            if done && block.iter().any(|l| l.contains(until)) {
                break;
            }
            if done {
                block.clear();
            }
        }
        show.kill().unwrap();
        show.wait().unwrap();
        block
    };
    let block = follow("live");
    let row = block
        .iter()
        .find(|l| l.contains("demo-7"))
        .unwrap_or_else(|| panic!("{block:?}"));
    assert!(row.contains("live"), "{row}");
    assert!(block.last().unwrap().starts_with("1 run(s) in progress"));
    demo.kill().unwrap();
    demo.wait().unwrap();
    let block = follow("ended");
    assert!(
        block
            .iter()
            .any(|l| l.contains("demo-7") && l.contains("ended")),
        "{block:?}"
    );
}
