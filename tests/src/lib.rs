//! Helpers shared by loopotel's cross-crate tests (`tests/tests/`) and the CLI tests:
//! finding the Python reference, generating reference traces live, and comparing documents.
//!
//! The Python reference venv is made by `scripts/setup-python-ref.sh`; `scripts/test.sh`
//! exports `LOOPOTEL_REF_PYTHON` and `LOOPOTEL_REQUIRE_INTEROP=1`, so in CI a missing reference
//! fails the tests instead of skipping them.

pub mod fuzz;

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
    let required = std::env::var("LOOPOTEL_REQUIRE_INTEROP").is_ok_and(|v| v == "1");
    assert!(
        !required,
        "Python reference not found at {} — run `bash scripts/setup-python-ref.sh`",
        python.display()
    );
    eprintln!(
        "SKIPPED: Python reference not found at {} (run scripts/test.sh to include interop tests)",
        python.display()
    );
    None
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

/// Reads the non-blank lines of a JSONL file as JSON values.
pub fn read_jsonl_values(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("valid JSON line"))
        .collect()
}

/// Normalises an LTF document for semantic comparison: `env_id`/`task_id`/`parent_span_id`
/// null ⇔ absent, and every `date-time` field replaced by its instant (nanoseconds).
pub fn normalize(doc: &Value) -> Value {
    let mut doc = doc.clone();
    if let Some(obj) = doc.as_object_mut() {
        for key in ["env_id", "task_id"] {
            if obj.get(key).is_some_and(Value::is_null) {
                obj.remove(key);
            }
        }
        for key in ["started_at", "ended_at"] {
            normalize_time(obj.get_mut(key));
        }
        if let Some(spans) = obj.get_mut("spans").and_then(Value::as_array_mut) {
            for span in spans {
                let Some(s) = span.as_object_mut() else {
                    continue;
                };
                if !s.contains_key("parent_span_id") {
                    s.insert("parent_span_id".into(), Value::Null);
                }
                normalize_time(s.get_mut("start_time"));
                normalize_time(s.get_mut("end_time"));
                if let Some(events) = s.get_mut("events").and_then(Value::as_array_mut) {
                    for e in events {
                        normalize_time(e.get_mut("timestamp"));
                    }
                }
            }
        }
    }
    doc
}

fn normalize_time(v: Option<&mut Value>) {
    if let Some(v) = v
        && let Some(ts) = v
            .as_str()
            .and_then(|s| s.parse::<loopotel::Timestamp>().ok())
    {
        *v = Value::from(ts.unix_nanos());
    }
}

/// Documents recorded by our tracer, covering every recording path: iteration guards with
/// child spans and roll-ups, one-shot records, the context API, async scopes with spawned
/// tasks, drops and panics, a disabled tracer, the span cap, odd names and metadata.
pub fn sample_documents() -> Vec<loopotel::LtfDocument> {
    use loopotel::{IterationRecord, LoopTracer, Outcome, SpanKind};
    use opentelemetry::context::FutureExt as _;

    let tracer = LoopTracer::new();
    let mut docs = Vec::new();

    // Guards, child spans, roll-ups, errors.
    let run = tracer
        .run("guarded-loop")
        .env_id("sample/env-v1")
        .task_id("t-1")
        .start();
    for n in 1..=4u64 {
        let mut it = run.iteration(n);
        {
            let mut llm = it.span("chat model-x", SpanKind::Worker);
            llm.add_tokens(100 * n);
            llm.add_cost_usd(0.001);
            if n == 3 {
                llm.record_error("timeout", "upstream took too long");
            }
        }
        it.worker_complete("writer");
        it.evaluator_complete("critic", 0.2 * n as f64);
    }
    docs.push(run.finish(Outcome::Success, "quality_threshold"));

    // One-shot records with every optional field, and through the context.
    let run = tracer
        .run("oneshot-loop")
        .goal_target(0.9)
        .metadata("nested", serde_json::json!({"a": [1, 2]}))
        .start();
    run.emit_iteration(
        IterationRecord::new(1, 0.31)
            .tokens(10)
            .cost_usd(0.5)
            .latency_ms(12.5)
            .worker("w")
            .evaluator("e"),
    );
    {
        let _g = run.enter();
        loopotel::emit_iteration(IterationRecord::new(2, 1.7).goal_target(0.5));
        let _s = loopotel::start_span("execute_tool search", SpanKind::Worker);
    }
    docs.push(run.finish(Outcome::Partial, ""));

    // Async scope with work on spawned tasks.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (_, doc) = rt.block_on(tracer.run("async-loop").scope(|run| async move {
        for n in 1..=3u64 {
            let it = run.iteration(n);
            let cx = it.context();
            let tasks: Vec<_> = (0..3)
                .map(|k| {
                    tokio::spawn(
                        async move {
                            let mut s = loopotel::start_span(
                                format!("execute_tool t{k}"),
                                SpanKind::Worker,
                            );
                            tokio::task::yield_now().await;
                            s.add_tokens(7);
                        }
                        .with_context(cx.clone()),
                    )
                })
                .collect();
            for t in tasks {
                let _ = t.await;
            }
            let mut it = it;
            it.set_goal_score(0.3 * n as f64);
        }
        run.set_outcome(Outcome::Success, "done");
    }));
    docs.push(doc);

    // Dropped without finish, and a panic unwinding through a run and an iteration.
    let collected = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = {
        let collected = collected.clone();
        move |d: &loopotel::LtfDocument| collected.lock().expect("lock").push(d.clone())
    };
    let collecting = LoopTracer::builder().sink(sink).build();
    {
        let run = collecting.run("dropped-loop").start();
        let _it = run.iteration(1);
    }
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let run = collecting.run("panicking-loop").start();
        let _it = run.iteration(1);
        panic!("agent bug");
    }));
    docs.extend(collected.lock().expect("lock").drain(..));

    // Disabled tracer, span cap, odd names.
    docs.push(
        LoopTracer::disabled()
            .run("disabled-loop")
            .env_id("e")
            .start()
            .finish(Outcome::Unknown, "disabled"),
    );
    let capped = LoopTracer::builder().max_spans_per_run(5).build();
    let run = capped.run("capped-loop").start();
    for n in 1..=10 {
        run.emit_iteration(IterationRecord::new(n, 0.5));
    }
    docs.push(run.finish(Outcome::Failure, "max_iterations"));
    let run = tracer
        .run("ünïcode \"quoted\" lööp ✓")
        .task_id("t\n2")
        .start();
    run.emit_iteration(IterationRecord::new(1, f64::NAN));
    run.set_attribute("user.key", "line\u{2028}sep");
    docs.push(run.finish(Outcome::Unknown, "weird\tinput"));

    // A long run.
    let run = tracer.run("long-loop").start();
    for n in 1..=500 {
        run.emit_iteration(IterationRecord::new(n, (n % 97) as f64 / 97.0).tokens(n));
    }
    docs.push(run.finish(Outcome::Failure, "max_iterations"));
    docs
}

/// A one-worker tokio runtime for test servers (the receivers below) and gRPC exporters;
/// dropping or shutting it down stops what it runs — a collector killed.
pub fn server_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// A minimal OTLP/HTTP receiver on 127.0.0.1 (an ephemeral port, stopped with the runtime):
/// reads each POST, decodes the protobuf
/// `ExportTraceServiceRequest`, answers 200 with an empty `ExportTraceServiceResponse`.
/// Yields (request line, body) pairs; returns the base endpoint `http://127.0.0.1:PORT`.
pub async fn otlp_http_receiver() -> (
    String,
    tokio::sync::mpsc::UnboundedReceiver<(String, Vec<u8>)>,
) {
    otlp_http_receiver_on("127.0.0.1:0").await
}

/// [`otlp_http_receiver`] on a given address (to restart a collector on the port it had).
pub async fn otlp_http_receiver_on(
    addr: &str,
) -> (
    String,
    tokio::sync::mpsc::UnboundedReceiver<(String, Vec<u8>)>,
) {
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                loop {
                    let head_end = buf.windows(4).position(|w| w == b"\r\n\r\n");
                    if let Some(pos) = head_end {
                        let head = String::from_utf8_lossy(&buf[..pos]).to_string();
                        let len: usize = head
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        while buf.len() < pos + 4 + len {
                            let n = tokio::io::AsyncReadExt::read(&mut sock, &mut chunk)
                                .await
                                .unwrap_or(0);
                            if n == 0 {
                                return;
                            }
                            buf.extend_from_slice(&chunk[..n]);
                        }
                        let body = buf[pos + 4..pos + 4 + len].to_vec();
                        let request_line = head.lines().next().unwrap_or("").to_owned();
                        let _ = tx.send((request_line, body));
                        let resp = prost::Message::encode_to_vec(&opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse::default());
                        let header = format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: {}\r\n\r\n",
                            resp.len()
                        );
                        let _ =
                            tokio::io::AsyncWriteExt::write_all(&mut sock, header.as_bytes()).await;
                        let _ = tokio::io::AsyncWriteExt::write_all(&mut sock, &resp).await;
                        buf.drain(..pos + 4 + len);
                        continue;
                    }
                    let n = tokio::io::AsyncReadExt::read(&mut sock, &mut chunk)
                        .await
                        .unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
            });
        }
    });
    (format!("http://{addr}"), rx)
}

/// The fault tests' workload: `runs` runs of `iterations` iterations, each with one tool
/// span, plus a scored iteration record per run. Returns how long it took. Per run it ends
/// `1 + (iterations + 1) + iterations` spans.
pub fn loop_workload(
    tracer: &loopotel::LoopTracer,
    runs: u64,
    iterations: u64,
) -> std::time::Duration {
    let start = std::time::Instant::now();
    for r in 0..runs {
        let run = tracer.run("fault-loop").task_id(format!("t{r}")).start();
        for n in 1..=iterations {
            let it = run.iteration(n);
            let mut tool = it.span("execute_tool search", loopotel::SpanKind::Worker);
            tool.add_tokens(10);
            drop(tool);
            drop(it);
        }
        run.emit_iteration(loopotel::IterationRecord::new(iterations + 1, 0.9));
        let doc = run.finish(loopotel::Outcome::Success, "done");
        assert_eq!(doc.iterations().count() as u64, iterations + 1);
    }
    start.elapsed()
}

/// A provider exporting over OTLP/HTTP to `endpoint` (2 s timeout) through loopotel's
/// counted batch pipeline, with a disk spool when given; and its delivery counters.
pub fn counted_otlp_provider(
    endpoint: &str,
    spool: Option<loopotel::otel::spool::SpoolConfig>,
) -> (
    opentelemetry_sdk::trace::SdkTracerProvider,
    loopotel::otel::delivery::DeliveryCounters,
) {
    use loopotel::otel::otlp::{Protocol, span_exporter};
    let exporter = span_exporter(
        endpoint,
        Protocol::HttpProtobuf,
        std::time::Duration::from_secs(2),
        &[],
    )
    .expect("an OTLP/HTTP exporter");
    let counters = loopotel::otel::delivery::DeliveryCounters::new();
    let processor = loopotel::otel::delivery::counted_batch_processor(exporter, spool, &counters)
        .expect("the span pipeline");
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_span_processor(processor)
        .build();
    (provider, counters)
}

/// The `(trace id, span id)` hex pairs of the spans in OTLP/HTTP request bodies, in arrival
/// order (duplicates kept, so a test can check each arrived exactly once).
pub fn otlp_span_ids(bodies: &[Vec<u8>]) -> Vec<(String, String)> {
    use prost::Message as _;
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let mut ids = Vec::new();
    for body in bodies {
        let req =
            opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest::decode(
                body.as_slice(),
            )
            .expect("an OTLP/HTTP protobuf body");
        for rs in req.resource_spans {
            for ss in rs.scope_spans {
                for s in ss.spans {
                    ids.push((hex(&s.trace_id), hex(&s.span_id)));
                }
            }
        }
    }
    ids
}

/// The `(trace id, span id)` hex pairs of every span in LTF documents.
pub fn ltf_span_ids<'a>(
    docs: impl IntoIterator<Item = &'a loopotel::LtfDocument>,
) -> Vec<(String, String)> {
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    docs.into_iter()
        .flat_map(|d| {
            let trace = hex(&d.trace_id.to_bytes());
            d.spans
                .iter()
                .map(move |s| (trace.clone(), hex(&s.span_id.to_bytes())))
        })
        .collect()
}

/// A running Arize Phoenix (started by `scripts/phoenix.sh start`).
#[derive(Debug, Clone)]
pub struct Phoenix {
    /// Base URL of its HTTP server (OTLP/HTTP at `/v1/traces`, REST API at `/v1/...`).
    pub url: String,
    /// Its OTLP/gRPC endpoint.
    pub grpc: String,
}

/// The Phoenix the test script started (`LOOPOTEL_PHOENIX_URL`, `LOOPOTEL_PHOENIX_GRPC`).
/// `None` (said on stderr) when absent, unless `LOOPOTEL_REQUIRE_PHOENIX=1`: then it panics.
pub fn phoenix() -> Option<Phoenix> {
    match (
        std::env::var("LOOPOTEL_PHOENIX_URL"),
        std::env::var("LOOPOTEL_PHOENIX_GRPC"),
    ) {
        (Ok(url), Ok(grpc)) => Some(Phoenix { url, grpc }),
        _ => {
            assert!(
                !std::env::var("LOOPOTEL_REQUIRE_PHOENIX").is_ok_and(|v| v == "1"),
                "Phoenix is required: run `bash scripts/phoenix.sh start` (scripts/test.sh does)"
            );
            eprintln!("SKIPPED: no Phoenix (run scripts/test.sh to include the end-to-end tests)");
            None
        }
    }
}

/// A plain HTTP/1.0 GET on 127.0.0.1, returning the parsed JSON body.
pub fn http_get_json(url: &str) -> Result<Value, String> {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").ok_or("only http:// URLs")?;
    let (host, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_owned()), |(h, p)| (h, format!("/{p}")));
    let mut sock = std::net::TcpStream::connect(host).map_err(|e| e.to_string())?;
    sock.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    write!(
        sock,
        "GET {path} HTTP/1.0\r\nHost: {host}\r\nAccept: application/json\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    sock.read_to_end(&mut raw).map_err(|e| e.to_string())?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no HTTP header end")?;
    let head = String::from_utf8_lossy(&raw[..split]);
    if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
        return Err(head.lines().next().unwrap_or("").to_owned());
    }
    serde_json::from_slice(&raw[split + 4..]).map_err(|e| e.to_string())
}

impl Phoenix {
    /// Every span of `project`, waiting (up to `timeout`) until at least `expected` arrived.
    pub fn spans(
        &self,
        project: &str,
        expected: usize,
        timeout: std::time::Duration,
    ) -> Vec<Value> {
        let start = std::time::Instant::now();
        loop {
            let mut all = Vec::new();
            let mut cursor: Option<String> = None;
            loop {
                let mut url = format!("{}/v1/projects/{project}/spans?limit=1000", self.url);
                if let Some(c) = &cursor {
                    url.push_str(&format!("&cursor={c}"));
                }
                let Ok(page) = http_get_json(&url) else { break };
                all.extend(page["data"].as_array().cloned().unwrap_or_default());
                match page["next_cursor"].as_str() {
                    Some(c) => cursor = Some(c.to_owned()),
                    None => break,
                }
            }
            if all.len() >= expected || start.elapsed() > timeout {
                return all;
            }
            std::thread::sleep(std::time::Duration::from_millis(300));
        }
    }
}

/// Asserts Phoenix holds exactly the document's spans: trace id, span ids, names, parents.
pub fn assert_phoenix_has(doc: &loopotel::LtfDocument, spans: &[Value]) {
    assert_eq!(spans.len(), doc.spans.len(), "span count");
    for ltf in &doc.spans {
        let got = spans
            .iter()
            .find(|s| s["context"]["span_id"] == ltf.span_id.to_string())
            .unwrap_or_else(|| panic!("Phoenix lacks {} {}", ltf.name, ltf.span_id));
        assert_eq!(
            got["context"]["trace_id"],
            doc.trace_id.to_hex(),
            "{}",
            ltf.name
        );
        assert_eq!(got["name"], ltf.name.as_str());
        match ltf.parent_span_id {
            Some(p) => assert_eq!(got["parent_id"], p.to_string(), "{}", ltf.name),
            None => assert!(
                got["parent_id"].is_null(),
                "{}: root parent {}",
                ltf.name,
                got["parent_id"]
            ),
        }
        for (k, v) in ltf.attributes.iter() {
            if let (true, loopotel::AttrValue::Int(n)) = (k.starts_with("loop."), v) {
                let n = *n;
                assert_eq!(got["attributes"][k].as_i64(), Some(n), "{}: {k}", ltf.name);
            }
        }
    }
}
