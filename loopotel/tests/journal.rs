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
fn in_a_child_that_aborts(name: &str, out: &std::path::Path) -> String {
    let o = std::process::Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env("LOOPOTEL_JOURNAL_CHILD", out)
        .output()
        .unwrap();
    assert!(!o.status.success(), "the child aborts");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The child: records, flushes the journal, prints the trace id, aborts.
#[test]
fn child_cut_short() {
    let Some(out) = std::env::var_os("LOOPOTEL_JOURNAL_CHILD") else {
        return;
    };
    let out = std::path::PathBuf::from(out);
    let tracer = LoopTracer::builder()
        .sink(JsonlExporter::create(&out).unwrap())
        .journal(JournalConfig::beside(&out))
        .build();
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
    let open_span = open_it.span("execute_tool slow", SpanKind::Worker);
    assert!(tracer.flush_journal());
    assert_eq!(tracer.stats().journal_lost, 0);
    println!("TRACE {}", run.trace_id());
    drop((open_span, open_it));
    std::process::abort();
}

#[test]
fn an_unfinished_run_is_recovered_with_every_ended_iteration() {
    if std::env::var_os("LOOPOTEL_JOURNAL_CHILD").is_some() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("t.jsonl");
    let said = in_a_child_that_aborts("child_cut_short", &out);
    let trace_id: loopotel::TraceId = said
        .lines()
        .find_map(|l| Some(l.split_once("TRACE ")?.1.trim()))
        .unwrap_or_else(|| panic!("the child printed no trace id: {said}"))
        .parse()
        .unwrap();
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
        .map(|s| {
            s.attributes
                .get("loop.iteration")
                .unwrap()
                .as_i64()
                .unwrap()
        })
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

#[test]
fn a_tracer_opened_on_the_same_output_recovers_first() {
    if std::env::var_os("LOOPOTEL_JOURNAL_CHILD").is_some() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("t.jsonl");
    in_a_child_that_aborts("child_cut_short", &out);
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
