//! A traced episode of a built-in simulated environment (no Python, no API keys): the
//! agent's policy runs inside each iteration — its own spans nest there — and hands the env
//! its own output on every other step; the env's step is a `loop.env.step` span.
//!
//! `cargo run -p examples --example traced_episode`

use loopotel::{LoopTracer, SpanKind, start_span};
use loopotel_gym::registry::make_any;
use loopotel_gym::{Action, Observation, run_traced_episode};

#[tokio::main]
async fn main() -> Result<(), loopotel_gym::EnvError> {
    let mut env = make_any("builtin/summarize-v1", None)?;
    let mut step = 0;
    let mut policy = |obs: &Observation| {
        step += 1;
        let previous = obs.output.clone();
        let own_turn = step % 2 == 0;
        async move {
            // Found through the context: a child of the current iteration.
            let mut span = start_span("agent.plan", SpanKind::Worker);
            span.set_attribute("app.previous_chars", previous.len());
            if own_turn {
                Action::Output(format!(
                    "Summary, take {}: {}",
                    previous.len(),
                    "numbers kept"
                ))
            } else {
                Action::EnvWorker
            }
        }
    };
    let (result, doc) = run_traced_episode(
        &mut env,
        &LoopTracer::new(),
        "sum-002",
        Some(7),
        &mut policy,
    )
    .await;
    println!(
        "success {} after {} steps, quality {:.2}: {}",
        result.success, result.steps, result.quality_score, result.termination_reason
    );
    for s in &doc.spans {
        println!(
            "{:<16} {:<10} {}",
            s.name.as_str(),
            format!("{:?}", s.kind),
            s.span_id
        );
    }
    println!("{}", doc.to_json_line());
    Ok(())
}
