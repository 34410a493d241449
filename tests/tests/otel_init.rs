//! `loopotel::otel::init()` from the standard `OTEL_*` variables, against a real OTLP/HTTP
//! receiver on 127.0.0.1. One test in its own binary: it sets process environment variables.

use loopotel::{IterationRecord, Outcome, SpanKind};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

fn string_attr(
    attrs: &[opentelemetry_proto::tonic::common::v1::KeyValue],
    key: &str,
) -> Option<String> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| match &kv.value.as_ref()?.value {
            Some(opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(s)) => {
                Some(s.clone())
            }
            _ => None,
        })
}

#[test]
fn init_reads_the_environment_exports_spans_and_metrics_and_honours_sdk_disabled() {
    let rt = tests::server_runtime();
    let (endpoint, mut rx) = rt.block_on(tests::otlp_http_receiver());
    // SAFETY: this binary runs this one test; nothing else reads the environment meanwhile.
    unsafe {
        std::env::set_var("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint);
        std::env::set_var("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf");
        std::env::set_var("OTEL_SERVICE_NAME", "init-test-service");
        std::env::set_var("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=ci");
        std::env::set_var("OTEL_TRACES_SAMPLER", "always_on");
    }
    let otel = loopotel::otel::init::init().expect("init");
    assert!(otel.tracer_provider().is_some() && otel.meter_provider().is_some());
    let tracer = otel.loop_tracer().build();
    let run = tracer.run("init-loop").start();
    {
        let it = run.iteration(1);
        let mut tool = it.span("execute_tool search", SpanKind::Worker);
        tool.set_attribute("gen_ai.operation.name", "execute_tool");
        tool.set_attribute("gen_ai.tool.name", "search");
    }
    run.emit_iteration(IterationRecord::new(2, 0.9));
    let doc = run.finish(Outcome::Success, "done");
    let delivery = otel.delivery_counters();
    otel.shutdown(std::time::Duration::from_secs(5))
        .expect("shutdown");
    let stats = delivery.snapshot();
    assert_eq!((stats.ended, stats.exported), (4, 4), "{stats:?}");
    assert_eq!(stats.dropped(), 0, "{stats:?}");

    let mut span_ids = Vec::new();
    let mut metric_names = Vec::new();
    while let Ok((line, body)) = rx.try_recv() {
        if line.starts_with("POST /v1/traces ") {
            let req = ExportTraceServiceRequest::decode(body.as_slice()).unwrap();
            for rs in req.resource_spans {
                let res = rs.resource.unwrap_or_default();
                assert_eq!(
                    string_attr(&res.attributes, "service.name").as_deref(),
                    Some("init-test-service")
                );
                assert_eq!(
                    string_attr(&res.attributes, "deployment.environment").as_deref(),
                    Some("ci")
                );
                for ss in rs.scope_spans {
                    for s in ss.spans {
                        assert_eq!(hex(&s.trace_id), doc.trace_id.to_hex());
                        span_ids.push(hex(&s.span_id));
                    }
                }
            }
        } else if line.starts_with("POST /v1/metrics ") {
            let req = ExportMetricsServiceRequest::decode(body.as_slice()).unwrap();
            for rm in req.resource_metrics {
                for sm in rm.scope_metrics {
                    metric_names.extend(sm.metrics.into_iter().map(|m| m.name));
                }
            }
        }
    }
    span_ids.sort();
    let mut want: Vec<_> = doc.spans.iter().map(|s| s.span_id.to_string()).collect();
    want.sort();
    assert_eq!(span_ids, want);
    for name in [
        "loop.runs",
        "loop.run.iterations",
        "loop.iteration.goal_score",
        "loop.tool.duration",
    ] {
        assert!(
            metric_names.iter().any(|n| n == name),
            "{name} missing from {metric_names:?}"
        );
    }

    // LOOPOTEL_SPOOL_DIR: with the collector unreachable the spans are spooled, and the
    // next init() on the same spool delivers them once the collector answers.
    let spool = tempfile::tempdir().unwrap();
    let refused = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    unsafe {
        std::env::set_var("LOOPOTEL_SPOOL_DIR", spool.path());
        std::env::set_var("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{refused}"));
    }
    let otel = loopotel::otel::init::init().expect("init with a spool");
    let spooled = otel
        .loop_tracer()
        .build()
        .run("spooled-loop")
        .start()
        .finish(Outcome::Success, "done");
    let delivery = otel.delivery_counters();
    // Metrics have no spool: their final export fails, which shutdown reports.
    let _ = otel.shutdown(std::time::Duration::from_secs(5));
    let stats = delivery.snapshot();
    assert_eq!((stats.spooled, stats.dropped()), (1, 0), "{stats:?}");
    unsafe { std::env::set_var("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint) };
    let otel = loopotel::otel::init::init().expect("init on the same spool");
    let delivery = otel.delivery_counters();
    otel.shutdown(std::time::Duration::from_secs(5)).unwrap();
    assert_eq!(delivery.snapshot().resent, 1);
    let mut arrived = Vec::new();
    while let Ok((line, body)) = rx.try_recv() {
        if line.starts_with("POST /v1/traces ") {
            let req = ExportTraceServiceRequest::decode(body.as_slice()).unwrap();
            for rs in req.resource_spans {
                for ss in rs.scope_spans {
                    arrived.extend(ss.spans.iter().map(|s| hex(&s.span_id)));
                }
            }
        }
    }
    assert_eq!(arrived, [spooled.spans[0].span_id.to_string()]);
    unsafe { std::env::remove_var("LOOPOTEL_SPOOL_DIR") };

    // OTEL_SDK_DISABLED: no providers, loops still record.
    unsafe { std::env::set_var("OTEL_SDK_DISABLED", "true") };
    let off = loopotel::otel::init::init().unwrap();
    assert!(off.tracer_provider().is_none());
    let doc = off
        .loop_tracer()
        .build()
        .run("off-loop")
        .start()
        .finish(Outcome::Unknown, "x");
    assert_eq!(doc.spans.len(), 1);

    // Inside an async executor: init, record, and drop the guard without blocking it or
    // panicking (the blocking HTTP client and the shutdown move off the executor).
    rt.block_on(async {
        let otel = loopotel::otel::init::init().expect("init inside a runtime");
        let tracer = otel.loop_tracer().build();
        tracer
            .run("async-init-loop")
            .start()
            .finish(Outcome::Success, "done");
        drop(otel);
    });

    // gRPC outside a runtime is a clear error, not a panic.
    unsafe {
        std::env::remove_var("OTEL_SDK_DISABLED");
        std::env::set_var("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc");
    }
    assert!(matches!(
        loopotel::otel::init::init(),
        Err(loopotel::otel::init::InitError::GrpcNeedsRuntime)
    ));
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
