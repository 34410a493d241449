//! The OpenTelemetry side of the cross-crate tests: the fault tests' workload, a provider
//! over loopotel's counted pipeline, span ids of LTF documents, and Phoenix assertions.

use serde_json::Value;

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
    let processor = loopotel::otel::pipeline::counted_batch_processor(exporter, spool, &counters)
        .expect("the span pipeline");
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_span_processor(processor)
        .build();
    (provider, counters)
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
