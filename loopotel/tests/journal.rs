//! The journal: a run whose process "ended" (its `Run` forgotten, its tracer gone) is
//! recovered from the journal as a strictly valid document; finished runs leave nothing;
//! recovery is idempotent; an unwritable journal loses nothing of the recording.

use loopotel::journal::{self, JournalConfig};
use loopotel::jsonl::{JsonlExporter, JsonlReader};
use loopotel::{LoopTracer, Outcome, SpanKind};

fn documents(path: &std::path::Path) -> Vec<loopotel::LtfDocument> {
    JsonlReader::open(path)
        .unwrap()
        .documents()
        .map(|d| d.unwrap().value)
        .collect()
}

/// Runs `name` (a test of this file) in a child process with `LOOPOTEL_JOURNAL_CHILD=out`;
/// the child aborts, as a process killed mid-run.
/// Its tracer recovers the journal when it is built unless `recover_on_open` is false.
fn in_a_child_that_aborts(name: &str, out: &std::path::Path, recover_on_open: bool) -> String {
    let mut child = std::process::Command::new(std::env::current_exe().unwrap());
    child
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env("LOOPOTEL_JOURNAL_CHILD", out);
    if !recover_on_open {
        child.env("LOOPOTEL_JOURNAL_NO_RECOVERY", "1");
    }
    let o = child.output().unwrap();
    assert!(!o.status.success(), "the child aborts");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn iteration_number(s: &loopotel::LtfSpan) -> i64 {
    s.attributes
        .get("loop.iteration")
        .and_then(|v| v.as_i64())
        .expect("an iteration's number")
}

/// In a child (`LOOPOTEL_JOURNAL_CHILD` set): a tracer writing to the output it names,
/// with the journal beside it (not recovered when the tracer is built if
/// `LOOPOTEL_JOURNAL_NO_RECOVERY` is set).
fn child_tracer() -> Option<LoopTracer> {
    let out = std::path::PathBuf::from(std::env::var_os("LOOPOTEL_JOURNAL_CHILD")?);
    let recover = std::env::var_os("LOOPOTEL_JOURNAL_NO_RECOVERY").is_none();
    Some(
        LoopTracer::builder()
            .sink(JsonlExporter::create(&out).unwrap())
            .journal(JournalConfig::beside(&out).recover_on_open(recover))
            .build(),
    )
}

/// The child: records, flushes the journal, prints the trace id, aborts.
#[test]
fn child_cut_short() {
    let Some(tracer) = child_tracer() else {
        return;
    };
    // A finished run: nothing of it stays in the journal.
    let done = tracer.run("finished-loop").start();
    done.iteration(1).evaluator_complete("critic", 0.9);
    done.finish(Outcome::Success, "quality_threshold");
    // A run cut short after 3 iterations, with a span and an iteration still open.
    let run = tracer
        .run("cut-loop")
        .env_id("e/v1")
        .task_id("t1")
        .metadata("seed", 4)
        .start();
    for n in 1..=3u64 {
        let mut it = run.iteration(n);
        let mut llm = it.span("chat m", SpanKind::Worker);
        llm.add_tokens(100);
        llm.end();
        it.worker_complete("w");
        it.evaluator_complete("critic", 0.2 * n as f64);
    }
    let open_it = run.iteration(4);
    let _open_span = open_it.span("execute_tool slow", SpanKind::Worker);
    die_journaled(&tracer, &run);
}

/// The end of a child: everything journaled, the run's trace id printed, the process
/// aborted with its run (and whatever is open) unfinished.
fn die_journaled(tracer: &LoopTracer, run: &loopotel::Run) -> ! {
    assert!(tracer.flush_journal());
    assert_eq!(tracer.stats().journal_lost, 0);
    println!("TRACE {}", run.trace_id());
    std::process::abort();
}

/// Runs the child test `name` writing to a fresh output; returns the output's directory,
/// the output and the trace id the child printed. `None` in a child.
fn after_child(name: &str) -> Option<(tempfile::TempDir, std::path::PathBuf, loopotel::TraceId)> {
    if std::env::var_os("LOOPOTEL_JOURNAL_CHILD").is_some() {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("t.jsonl");
    let said = in_a_child_that_aborts(name, &out, true);
    let trace_id = said
        .lines()
        .find_map(|l| Some(l.split_once("TRACE ")?.1.trim()))
        .unwrap_or_else(|| panic!("the child printed no trace id: {said}"))
        .parse()
        .unwrap();
    Some((dir, out, trace_id))
}

#[test]
fn an_unfinished_run_is_recovered_with_every_ended_iteration() {
    let Some((_dir, out, trace_id)) = after_child("child_cut_short") else {
        return;
    };
    let jdir = journal::dir_beside(&out);
    assert_eq!(journal::pending(&jdir).unwrap().runs, 1);
    let r = journal::recover(&out, &jdir).unwrap();
    assert_eq!(r.runs, 1, "{r:?}");
    let docs = documents(&out);
    assert_eq!(docs.len(), 2, "the finished run and the recovered one");
    let doc = docs.iter().find(|d| d.trace_id == trace_id).unwrap();
    assert_eq!(doc.outcome, Some(Outcome::Unknown));
    assert_eq!(
        doc.termination_reason.as_deref(),
        Some(journal::RECOVERED_REASON)
    );
    let errors = loopotel::validate::validate_document(doc);
    assert!(errors.is_empty(), "{errors:?}");
    let ended: Vec<i64> = doc
        .iterations()
        .filter(|s| s.attributes.get("loop.end_reason").is_none())
        .map(iteration_number)
        .collect();
    assert_eq!(ended, [1, 2, 3]);
    let open: Vec<&str> = doc
        .spans
        .iter()
        .filter(|s| {
            s.attributes.get("loop.end_reason").and_then(|v| v.as_str()) == Some("recovered")
        })
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(open, ["loop.iteration", "execute_tool slow"]);
    let root = doc.root().unwrap();
    assert_eq!(
        root.attributes.get("loop.tokens_total").unwrap().as_i64(),
        Some(300)
    );
    assert_eq!(doc.metadata.as_ref().unwrap()["seed"], 4);
    assert_eq!(
        doc.spans
            .iter()
            .filter(|s| s.name.as_str() == "chat m")
            .count(),
        3
    );
    // Idempotent: the journal is gone, and a second recovery writes nothing.
    assert!(!jdir.exists());
    assert_eq!(journal::recover(&out, &jdir).unwrap().runs, 0);
    assert_eq!(documents(&out).len(), 2);
}

/// Iterations of the long child run, each with [`LONG_CHILD_SPANS`] child spans: more
/// spans than recovery writes in one call.
const LONG_ITERATIONS: u64 = 6_600;
const LONG_CHILD_SPANS: u64 = 9;

/// The child of the long run: records, prints the trace id, aborts.
#[test]
fn child_cut_short_long() {
    let Some(tracer) = child_tracer() else {
        return;
    };
    let run = tracer.run("long-loop").start();
    for n in 1..=LONG_ITERATIONS {
        let mut it = run.iteration(n);
        for _ in 0..LONG_CHILD_SPANS {
            it.span("step", SpanKind::Worker).end();
        }
        it.add_tokens(10);
        it.evaluator_complete("critic", n as f64 / LONG_ITERATIONS as f64);
        if n % 500 == 0 {
            // As a loop waiting on its models: the journal keeps up.
            assert!(tracer.flush_journal());
        }
    }
    let _open = run.iteration(LONG_ITERATIONS + 1);
    die_journaled(&tracer, &run);
}

#[test]
fn a_long_unfinished_run_is_recovered_a_span_at_a_time() {
    let Some((_dir, out, trace_id)) = after_child("child_cut_short_long") else {
        return;
    };
    let jdir = journal::dir_beside(&out);
    let started = std::time::Instant::now();
    let r = journal::recover(&out, &jdir).unwrap();
    eprintln!("recovered in {:?}", started.elapsed());
    let ended = LONG_ITERATIONS * (1 + LONG_CHILD_SPANS);
    assert_eq!(r.runs, 1, "{r:?}");
    // The root, every ended span, the open iteration.
    assert_eq!(r.spans as u64, 1 + ended + 1, "{r:?}");
    let verdicts =
        loopotel::validate::validate_file(&out, loopotel::validate::Mode::Strict).unwrap();
    assert!(verdicts.iter().all(|v| v.is_valid()), "{verdicts:?}");
    let docs = documents(&out);
    assert_eq!(docs.len(), 1);
    let doc = &docs[0];
    assert_eq!(doc.trace_id, trace_id);
    assert_eq!(doc.spans.len() as u64, 1 + ended + 1);
    let numbers: Vec<i64> = doc.iterations().map(iteration_number).collect();
    assert_eq!(
        numbers,
        (1..=LONG_ITERATIONS as i64 + 1).collect::<Vec<_>>()
    );
    let root = doc.root().unwrap();
    let total = |k: &str| root.attributes.get(k).and_then(|v| v.as_i64());
    assert_eq!(total("loop.iterations"), Some(LONG_ITERATIONS as i64));
    assert_eq!(
        total("loop.tokens_total"),
        Some(10 * LONG_ITERATIONS as i64)
    );
    let les = |s: &loopotel::LtfSpan| {
        s.attributes
            .get(loopotel::semconv::LOOP_LES_CUMULATIVE)
            .and_then(|v| v.as_f64())
    };
    let last_ended = doc.iterations().nth(LONG_ITERATIONS as usize - 1).unwrap();
    assert_eq!(les(root), les(last_ended));
    assert!(les(root).is_some());
    // Idempotent.
    assert!(!jdir.exists());
    assert_eq!(journal::recover(&out, &jdir).unwrap().runs, 0);
}

/// Two processes ended with a run each in the same journal directory: each run is
/// recovered from its own files, whole.
#[test]
fn runs_of_two_ended_processes_are_recovered_each_from_its_files() {
    let Some((_dir, out, first)) = after_child("child_cut_short") else {
        return;
    };
    // The second process leaves the first one's run in the journal.
    in_a_child_that_aborts("child_cut_short", &out, false);
    assert_eq!(
        documents(&out).len(),
        2,
        "two finished runs, nothing recovered yet"
    );
    let r = journal::recover(&out, &journal::dir_beside(&out)).unwrap();
    assert_eq!(r.runs, 2, "{r:?}");
    let docs = documents(&out);
    assert_eq!(docs.len(), 4);
    let recovered: Vec<_> = docs
        .iter()
        .filter(|d| d.outcome == Some(Outcome::Unknown))
        .collect();
    assert_eq!(recovered.len(), 2);
    assert!(recovered.iter().any(|d| d.trace_id == first));
    for doc in recovered {
        assert!(loopotel::validate::validate_document(doc).is_empty());
        let chats = doc.spans.iter().filter(|s| s.name.as_str() == "chat m");
        assert_eq!(chats.count(), 3, "{}", doc.trace_id);
    }
}

#[test]
fn a_tracer_opened_on_the_same_output_recovers_first() {
    let Some((_dir, out, _)) = after_child("child_cut_short") else {
        return;
    };
    let before = documents(&out).len();
    let again = LoopTracer::builder()
        .sink(JsonlExporter::create(&out).unwrap())
        .journal(JournalConfig::beside(&out))
        .build();
    assert_eq!(
        documents(&out).len(),
        before + 1,
        "recovered when the tracer was built"
    );
    drop(again);
    assert!(!journal::dir_beside(&out).exists());
}

#[test]
fn an_unwritable_journal_loses_nothing_of_the_recording() {
    if std::env::var_os("LOOPOTEL_JOURNAL_CHILD").is_some() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("t.jsonl");
    // The journal directory cannot be created: a file is in its place.
    std::fs::write(journal::dir_beside(&out), b"not a directory").unwrap();
    let tracer = LoopTracer::builder()
        .sink(JsonlExporter::create(&out).unwrap())
        .journal(JournalConfig::beside(&out).recover_on_open(false))
        .build();
    let run = tracer.run("l").start();
    for n in 1..=5 {
        run.iteration(n).evaluator_complete("c", 0.1 * n as f64);
    }
    tracer.flush_journal();
    let doc = run.finish(Outcome::Success, "done");
    assert_eq!(doc.iterations().count(), 5);
    assert!(tracer.stats().journal_lost > 0);
    assert_eq!(documents(&out).len(), 1);
}
