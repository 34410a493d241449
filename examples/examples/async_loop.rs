//! An async agent loop: the run is found through the OpenTelemetry context, including in
//! tool calls running on spawned tasks.
//!
//! `cargo run -p examples --example async_loop`

use loopotel::{IterationRecord, LoopTracer, Outcome, SpanKind, start_span};
use opentelemetry::context::FutureExt as _;

async fn call_tool(name: &'static str) -> usize {
    // No handle passed in: the span finds its iteration through the context.
    let mut span = start_span(format!("execute_tool {name}"), SpanKind::Worker);
    span.set_attribute("gen_ai.tool.name", name);
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    name.len()
}

#[tokio::main]
async fn main() {
    let tracer = LoopTracer::new();
    let (answer, doc) = tracer
        .run("async-agent-loop")
        .scope(|run| async move {
            let mut total = 0;
            for n in 1..=3 {
                let it = run.iteration(n);
                let cx = it.context();
                // tokio::spawn does not carry the context: pass it explicitly.
                let tools: Vec<_> = ["search", "fetch"]
                    .into_iter()
                    .map(|t| tokio::spawn(call_tool(t).with_context(cx.clone())))
                    .collect();
                for t in tools {
                    total += t.await.unwrap_or(0);
                }
                let mut it = it;
                it.evaluator_complete("judge", 0.3 * n as f64);
            }
            // The free function finds the run through the context, as in the reference.
            loopotel::emit_iteration(IterationRecord::new(4, 0.95).worker("writer"));
            run.set_outcome(Outcome::Success, "quality_threshold");
            total
        })
        .await;
    println!(
        "answer {answer}; {} spans in trace {}",
        doc.spans.len(),
        doc.trace_id
    );
    println!("{}", doc.to_json_line());
}
