//! A refine loop recorded with iteration guards and child spans, written to JSONL.
//!
//! `cargo run -p examples --example basic_loop -- [OUT.jsonl]` (default `basic_loop.jsonl`)

use loopotel::jsonl::JsonlExporter;
use loopotel::{LoopTracer, Outcome, SpanKind};

fn main() -> std::io::Result<()> {
    let out = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "basic_loop.jsonl".into());
    let tracer = LoopTracer::builder()
        .sink(JsonlExporter::create(&out)?)
        .build();

    let run = tracer
        .run("basic-refine-loop")
        .env_id("examples/basic-v1")
        .task_id("summarize-42")
        .start();
    let mut quality = 0.35;
    let mut iteration = 0;
    let outcome = loop {
        iteration += 1;
        let mut it = run.iteration(iteration);
        {
            // An LLM call: a worker span whose tokens roll up into loop.tokens_delta.
            let mut llm = it.span("chat small-model", SpanKind::Worker);
            llm.set_attribute("gen_ai.operation.name", "chat");
            llm.set_attribute("gen_ai.request.model", "small-model");
            llm.add_tokens(250);
        }
        it.worker_complete("writer");
        quality += 0.2;
        it.evaluator_complete("critic", quality);
        drop(it); // ends the iteration: duration, LES, events
        if quality >= 0.8 {
            break (
                Outcome::Success,
                format!("quality_threshold ({quality:.2} >= 0.8)"),
            );
        }
        if iteration == 10 {
            break (Outcome::Failure, "max_iterations".to_owned());
        }
    };
    let doc = run.finish(outcome.0, outcome.1);
    for span in doc.iterations() {
        let a = &span.attributes;
        println!(
            "iteration {}: goal_score {:?}, cumulative LES {:?}",
            a.get("loop.iteration")
                .and_then(|v| v.as_i64())
                .unwrap_or_default(),
            a.get("loop.goal_score").and_then(|v| v.as_f64()),
            a.get("loop.les.cumulative_normalized")
                .and_then(|v| v.as_f64()),
        );
    }
    println!("trace {} appended to {out}", doc.trace_id);
    Ok(())
}
