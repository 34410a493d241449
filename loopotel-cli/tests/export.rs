//! `loopotel export` against real OTLP receivers on 127.0.0.1: the in-process gRPC collector
//! from `fake-opentelemetry-collector`, and an OTLP/HTTP receiver that decodes the protobuf
//! body. Every span arrives with its original ids, parent and timestamps.

use std::collections::{BTreeSet, HashMap};
use std::io::Write;
use std::process::{Command, Output};
use std::time::Duration;

use fake_opentelemetry_collector::FakeCollectorServer;
use loopotel::LtfDocument;
use prost::Message;
use tests::sample_documents;

const OURS: &str = env!("CARGO_BIN_EXE_loopotel");

/// (trace id, span id) → (parent span id, name, start ns, end ns), all hex / nanoseconds.
type Expected = HashMap<(String, String), (String, String, u64, u64)>;

fn expected(docs: &[LtfDocument]) -> Expected {
    let mut out = HashMap::new();
    for d in docs {
        for s in &d.spans {
            let parent = match s.parent_span_id {
                Some(p) => p.to_string(),
                None => s
                    .attributes
                    .get("loop.parent_span_id")
                    .and_then(|v| v.as_str())
                    .unwrap_or("")
                    .to_owned(),
            };
            out.insert(
                (d.trace_id.to_hex(), s.span_id.to_string()),
                (
                    parent,
                    s.name.to_string(),
                    s.start_time.unix_nanos() as u64,
                    s.end_time.unwrap_or(s.start_time).unix_nanos() as u64,
                ),
            );
        }
    }
    out
}

fn write_traces(dir: &std::path::Path, docs: &[LtfDocument], garbage: bool) -> std::path::PathBuf {
    let path = dir.join("traces.jsonl");
    let mut f = std::fs::File::create(&path).unwrap();
    for (i, d) in docs.iter().enumerate() {
        writeln!(f, "{}", d.to_json_line()).unwrap();
        if garbage && i == 1 {
            writeln!(f, "{{not json").unwrap();
        }
    }
    path
}

/// The shared sample documents (built off the async runtime: they run one of their own).
async fn samples() -> Vec<LtfDocument> {
    tokio::task::spawn_blocking(sample_documents).await.unwrap()
}

async fn run_export(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        Command::new(OURS)
            .args(args)
            .output()
            .expect("run loopotel")
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_over_grpc_keeps_ids_parents_and_timestamps() {
    let mut collector = FakeCollectorServer::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let docs = samples().await;
    let want = expected(&docs);
    let path = write_traces(dir.path(), &docs, true);
    let args = vec![
        "export".into(),
        "--otlp".into(),
        collector.endpoint(),
        "--protocol".into(),
        "grpc".into(),
        "--batch-size".into(),
        "100".into(),
        path.display().to_string(),
    ];
    let (out, spans) = tokio::join!(
        run_export(args),
        drain(&mut collector, want.len(), Duration::from_secs(60))
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // One malformed line: reported with its line number, everything else sent, exit 1.
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!(
            "sent {} traces ({} spans)",
            docs.len(),
            want.len()
        )),
        "{stdout}\n{stderr}"
    );
    assert!(stdout.contains("skipped 1 lines"), "{stdout}");
    assert!(stderr.contains("line 3"), "{stderr}");

    assert_eq!(spans.len(), want.len());
    for s in &spans {
        let key = (s.trace_id.clone(), s.span_id.clone());
        let (parent, name, start, end) = want
            .get(&key)
            .unwrap_or_else(|| panic!("unexpected span {key:?}"));
        assert_eq!(&s.parent_span_id, parent, "{name}");
        assert_eq!(&s.name, name);
        assert_eq!(s.start_time_unix_nano, *start, "{name}");
        assert_eq!(s.end_time_unix_nano, *end, "{name}");
    }
    let error_span = spans
        .iter()
        .find(|s| s.attributes.contains_key("error.type"))
        .expect("an error span");
    assert_eq!(
        error_span.status.as_ref().map(|s| s.code.as_str()),
        Some("STATUS_CODE_ERROR")
    );
    let root = spans.iter().find(|s| s.name == "loop.run").unwrap();
    assert!(root.attributes.contains_key("ltf.spec_pins.ltf"));
    let traces: BTreeSet<_> = spans.iter().map(|s| &s.trace_id).collect();
    assert_eq!(traces.len(), docs.len());
}

/// Everything the collector receives, up to `n` spans. Its channel holds 64 spans, so it is
/// drained while the export runs.
async fn drain(
    collector: &mut FakeCollectorServer,
    n: usize,
    deadline: Duration,
) -> Vec<fake_opentelemetry_collector::ExportedSpan> {
    let start = std::time::Instant::now();
    let mut all = Vec::new();
    while all.len() < n && start.elapsed() < deadline {
        all.extend(
            collector
                .exported_spans(1, Duration::from_millis(200))
                .await,
        );
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_over_http_protobuf_keeps_ids_and_timestamps() {
    let (endpoint, mut rx) = tests::otlp_http_receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let docs = samples().await;
    let want = expected(&docs);
    let path = write_traces(dir.path(), &docs, false);
    let out = run_export(vec![
        "export".into(),
        "--otlp".into(),
        endpoint,
        path.display().to_string(),
    ])
    .await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut seen = 0;
    while let Ok((line, body)) = rx.try_recv() {
        assert!(line.starts_with("POST /v1/traces "), "{line}");
        let req =
            opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest::decode(
                body.as_slice(),
            )
            .unwrap();
        for rs in req.resource_spans {
            let service = rs.resource.as_ref().and_then(|r| {
                r.attributes
                    .iter()
                    .find(|kv| kv.key == "service.name")
                    .and_then(|kv| kv.value.clone())
            });
            assert!(format!("{service:?}").contains("loopotel"));
            for ss in rs.scope_spans {
                for s in ss.spans {
                    let key = (hex(&s.trace_id), hex(&s.span_id));
                    let (parent, name, start, end) = want.get(&key).expect("known span");
                    assert_eq!(&hex(&s.parent_span_id), parent, "{name}");
                    assert_eq!(
                        (s.start_time_unix_nano, s.end_time_unix_nano),
                        (*start, *end),
                        "{name}"
                    );
                    seen += 1;
                }
            }
        }
    }
    assert_eq!(seen, want.len());
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_endpoint_fails_cleanly_and_is_reported() {
    // A port with nothing listening (bound, then released).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let path = write_traces(dir.path(), &samples().await[..2], false);
    for protocol in ["http", "grpc"] {
        let out = run_export(vec![
            "export".into(),
            "--otlp".into(),
            format!("http://127.0.0.1:{port}"),
            "--protocol".into(),
            protocol.into(),
            "--timeout".into(),
            "3".into(),
            path.display().to_string(),
        ])
        .await;
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{protocol}: {stdout}");
        assert!(
            stdout.contains("sent 0 traces") && stdout.contains("failed 2 traces"),
            "{protocol}: {stdout}"
        );
        assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
    }
}

#[test]
fn bad_arguments_are_usage_errors() {
    let out = Command::new(OURS)
        .args([
            "export",
            "--otlp",
            "http://127.0.0.1:1",
            "--protocol",
            "smtp",
            "x.jsonl",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = Command::new(OURS)
        .args([
            "export",
            "--otlp",
            "not a url",
            "--protocol",
            "http",
            "x.jsonl",
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
