//! Loop and GenAI metrics through the SDK's in-memory exporter: names, units, bounds,
//! data points, bounded attributes — and independence from trace sampling.

use std::collections::HashMap;

use loopotel::{IterationRecord, LoopTracer, Outcome, SpanKind};
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::{InMemorySpanExporter, Sampler, SdkTracerProvider};

/// One data point: attributes, count (or counter value), sum (or value), bucket bounds.
type Point = (HashMap<String, String>, f64, f64, Vec<f64>);

/// A metric's unit and data points.
#[derive(Debug, Default)]
struct Seen {
    unit: String,
    points: Vec<Point>,
}

fn collect(
    provider: &SdkMeterProvider,
    exporter: &InMemoryMetricExporter,
) -> HashMap<String, Seen> {
    provider.force_flush().unwrap();
    let mut out: HashMap<String, Seen> = HashMap::new();
    for rm in exporter.get_finished_metrics().unwrap() {
        for sm in rm.scope_metrics() {
            for m in sm.metrics() {
                let seen = out.entry(m.name().to_owned()).or_default();
                seen.unit = m.unit().to_owned();
                let attrs = |it: &mut dyn Iterator<Item = &opentelemetry::KeyValue>| {
                    it.map(|kv| (kv.key.to_string(), kv.value.to_string()))
                        .collect::<HashMap<_, _>>()
                };
                match m.data() {
                    AggregatedMetrics::F64(MetricData::Histogram(h)) => {
                        for p in h.data_points() {
                            seen.points.push((
                                attrs(&mut p.attributes()),
                                p.count() as f64,
                                p.sum(),
                                p.bounds().collect(),
                            ));
                        }
                    }
                    AggregatedMetrics::U64(MetricData::Histogram(h)) => {
                        for p in h.data_points() {
                            seen.points.push((
                                attrs(&mut p.attributes()),
                                p.count() as f64,
                                p.sum() as f64,
                                p.bounds().collect(),
                            ));
                        }
                    }
                    AggregatedMetrics::F64(MetricData::Sum(s)) => {
                        for p in s.data_points() {
                            seen.points.push((
                                attrs(&mut p.attributes()),
                                p.value(),
                                p.value(),
                                vec![],
                            ));
                        }
                    }
                    AggregatedMetrics::U64(MetricData::Sum(s)) => {
                        for p in s.data_points() {
                            seen.points.push((
                                attrs(&mut p.attributes()),
                                p.value() as f64,
                                p.value() as f64,
                                vec![],
                            ));
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    out
}

#[test]
fn loop_and_genai_metrics_are_recorded_with_bounded_attributes() {
    let exporter = InMemoryMetricExporter::default();
    let meters = SdkMeterProvider::builder()
        .with_reader(PeriodicReader::builder(exporter.clone()).build())
        .build();
    // A tracer provider that samples nothing: metrics must not care.
    let spans = InMemorySpanExporter::default();
    let traces = SdkTracerProvider::builder()
        .with_sampler(Sampler::AlwaysOff)
        .with_simple_exporter(spans.clone())
        .build();
    let tracer = LoopTracer::builder()
        .tracer_provider(&traces)
        .meter_provider(&meters)
        .build();
    for task in 0..3 {
        let run = tracer
            .run("metric-loop")
            .task_id(format!("task-{task}"))
            .start();
        for n in 1..=2 {
            let mut it = run.iteration(n);
            {
                let mut llm = it.span("chat m1", SpanKind::Worker.client());
                llm.set_attribute("gen_ai.operation.name", "chat");
                llm.set_attribute("gen_ai.request.model", "m1");
                llm.set_attribute("gen_ai.usage.input_tokens", 100i64);
                llm.set_attribute("gen_ai.usage.output_tokens", 20i64);
                llm.add_tokens(120);
                llm.add_cost_usd(0.5);
            }
            {
                let mut tool = it.span("execute_tool search", SpanKind::Worker);
                tool.set_attribute("gen_ai.operation.name", "execute_tool");
                tool.set_attribute("gen_ai.tool.name", "search");
                if n == 2 {
                    tool.record_error("timeout", "slow");
                }
            }
            it.evaluator_complete("critic", 0.4 * n as f64);
        }
        run.finish(
            Outcome::Success,
            format!("quality_threshold ({task} >= 0.8)"),
        );
    }
    assert!(
        spans.get_finished_spans().unwrap().is_empty(),
        "nothing sampled"
    );
    let m = collect(&meters, &exporter);

    let runs = &m["loop.runs"];
    assert_eq!(
        runs.points.len(),
        1,
        "termination reasons are bounded: {:?}",
        runs.points
    );
    assert_eq!(runs.points[0].1, 3.0);
    assert_eq!(
        runs.points[0].0["loop.termination_reason"],
        "quality_threshold"
    );
    assert_eq!(runs.points[0].0["loop.outcome"], "success");
    let iterations = &m["loop.run.iterations"];
    assert_eq!((iterations.points[0].1, iterations.points[0].2), (3.0, 6.0));
    assert_eq!(m["loop.run.duration"].unit, "s");

    let tokens = &m["loop.iteration.tokens"];
    assert_eq!((tokens.points[0].1, tokens.points[0].2), (6.0, 720.0));
    assert_eq!(m["loop.cost"].points[0].1, 3.0);
    let score = &m["loop.iteration.goal_score"];
    assert_eq!(score.points[0].1, 6.0);
    assert_eq!(score.points[0].3[0], 0.1);
    assert_eq!(m["loop.iteration.les.cumulative"].points[0].1, 6.0);

    let usage = &m["gen_ai.client.token.usage"];
    assert_eq!(usage.unit, "{token}");
    let by_type: HashMap<_, _> = usage
        .points
        .iter()
        .map(|p| (p.0["gen_ai.token.type"].clone(), p.2))
        .collect();
    assert_eq!(by_type["input"], 600.0);
    assert_eq!(by_type["output"], 120.0);
    assert_eq!(usage.points[0].3.first(), Some(&1.0));
    let duration = &m["gen_ai.client.operation.duration"];
    assert_eq!(duration.unit, "s");
    assert_eq!(duration.points[0].3.first(), Some(&0.01));
    assert_eq!(duration.points[0].0["gen_ai.request.model"], "m1");

    assert_eq!(m["loop.tool.duration"].points[0].1, 6.0);
    let errors = &m["loop.tool.errors"];
    assert_eq!(errors.points[0].1, 3.0);
    assert_eq!(errors.points[0].0["error.type"], "timeout");

    // No ids as metric attributes, anywhere.
    for (name, seen) in &m {
        for (attrs, ..) in &seen.points {
            for key in attrs.keys() {
                assert!(
                    !key.contains("task_id") && !key.ends_with(".id") && !key.contains("trace"),
                    "{name}: {key}"
                );
            }
        }
    }
}

#[test]
fn dropped_telemetry_is_counted() {
    let exporter = InMemoryMetricExporter::default();
    let meters = SdkMeterProvider::builder()
        .with_reader(PeriodicReader::builder(exporter.clone()).build())
        .build();
    let tracer = LoopTracer::builder()
        .meter_provider(&meters)
        .max_spans_per_run(2)
        .build();
    let run = tracer.run("capped-loop").start();
    for n in 1..=5 {
        run.emit_iteration(IterationRecord::new(n, 0.5));
    }
    run.finish(Outcome::Unknown, "x");
    let m = collect(&meters, &exporter);
    let dropped = &m["loop.telemetry.dropped"];
    assert_eq!(dropped.points[0].1, 4.0);
    assert_eq!(dropped.points[0].0["loop.telemetry.reason"], "span_cap");
}

/// An exporter slower than the loop (the batch queue fills), or one that always fails.
#[derive(Debug)]
struct Troubled {
    fail: bool,
}

impl opentelemetry_sdk::trace::SpanExporter for Troubled {
    async fn export(
        &self,
        _batch: Vec<opentelemetry_sdk::trace::SpanData>,
    ) -> opentelemetry_sdk::error::OTelSdkResult {
        std::thread::sleep(std::time::Duration::from_millis(20));
        if self.fail {
            return Err(opentelemetry_sdk::error::OTelSdkError::InternalFailure(
                "collector down".into(),
            ));
        }
        Ok(())
    }
}

fn reason_count(m: &HashMap<String, Seen>, reason: &str) -> f64 {
    m.get("loop.telemetry.dropped")
        .into_iter()
        .flat_map(|s| &s.points)
        .filter(|p| p.0.get("loop.telemetry.reason").map(String::as_str) == Some(reason))
        .map(|p| p.1)
        .sum()
}

#[test]
fn sdk_queue_drops_and_failed_exports_are_counted_and_every_span_is_accounted_for() {
    use loopotel::otel::delivery::{CountingSpanExporter, CountingSpanProcessor, DeliveryCounters};
    use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor};

    for fail in [false, true] {
        let exporter = InMemoryMetricExporter::default();
        let meters = SdkMeterProvider::builder()
            .with_reader(PeriodicReader::builder(exporter.clone()).build())
            .build();
        let counters = DeliveryCounters::new().with_meter_provider(&meters);
        let batch = BatchSpanProcessor::builder(CountingSpanExporter::new(
            Troubled { fail },
            counters.clone(),
        ))
        .with_batch_config(
            BatchConfigBuilder::default()
                .with_max_queue_size(16)
                .with_max_export_batch_size(4)
                .build(),
        )
        .build();
        let traces = SdkTracerProvider::builder()
            .with_span_processor(CountingSpanProcessor::new(batch, counters.clone()))
            .build();
        let tracer = LoopTracer::builder().tracer_provider(&traces).build();
        let run = tracer.run("flooded-loop").start();
        let it = run.iteration(1);
        for _ in 0..2_000 {
            drop(it.span("execute_tool search", SpanKind::Worker));
        }
        drop(it);
        let doc = run.finish(Outcome::Success, "done");
        assert_eq!(doc.spans.len(), 2_002, "the LTF view keeps everything");
        traces.shutdown().unwrap();
        let stats = counters.report_final();
        assert_eq!(stats.ended, 2_002);
        assert_eq!(
            stats.exported + stats.failed + stats.pending(),
            stats.ended,
            "{stats:?}"
        );
        let m = collect(&meters, &exporter);
        if fail {
            assert_eq!(stats.exported, 0, "{stats:?}");
            assert!(stats.failed > 0, "{stats:?}");
        } else {
            assert_eq!(stats.failed, 0, "{stats:?}");
            assert!(stats.exported > 0, "{stats:?}");
        }
        assert!(
            stats.pending() > 0,
            "a 16-span queue must overflow: {stats:?}"
        );
        assert_eq!(stats.dropped(), stats.ended - stats.exported);
        assert_eq!(reason_count(&m, "export_failed"), stats.failed as f64);
        assert_eq!(reason_count(&m, "queue_full"), stats.pending() as f64);
    }
}
