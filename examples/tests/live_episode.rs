//! `examples/live_episode.rs` against llmock (`scripts/llmock.sh`): the live env reports
//! done, its tokens are the server's usage, and the LLM spans nest where they belong.

#[path = "../examples/live_episode.rs"]
mod example;

#[tokio::test]
async fn a_live_episode_ends_and_counts_the_servers_tokens() {
    let Some(base) = loopotel_test_support::llmock() else {
        return;
    };
    let (result, doc) =
        example::run_live(&format!("{base}/v1"), "sk-live-test-0123456789", "lt-live")
            .await
            .expect("live episode");
    // triage-v1 allows 3 iterations: the episode ends (the reference's LiveEnv never does).
    assert!(result.steps >= 1 && result.steps <= 3, "{result:?}");
    assert!(!result.termination_reason.is_empty());
    let named = |name: &'static str| doc.spans.iter().filter(move |s| s.name.as_str() == name);
    let steps: Vec<_> = named("loop.env.step").map(|s| s.span_id).collect();
    let iterations: Vec<_> = doc.iterations().map(|s| s.span_id).collect();
    let chats: Vec<_> = named("chat lt-live").collect();
    // Per step: the agent's call (in the iteration) and the critic's (in the env step).
    assert_eq!(
        chats.len() as u64,
        2 * result.steps,
        "{}",
        doc.to_json_line()
    );
    let in_steps = chats
        .iter()
        .filter(|c| c.parent_span_id.is_some_and(|p| steps.contains(&p)))
        .count();
    let in_iterations = chats
        .iter()
        .filter(|c| c.parent_span_id.is_some_and(|p| iterations.contains(&p)))
        .count();
    assert_eq!(in_steps as u64, result.steps);
    assert_eq!(in_iterations as u64, result.steps);
    // The env's tokens are the usage the server reported for the env's own calls.
    let env_tokens: i64 = chats
        .iter()
        .filter(|c| c.parent_span_id.is_some_and(|p| steps.contains(&p)))
        .map(|c| {
            c.attributes
                .get("gen_ai.usage.input_tokens")
                .and_then(|v| v.as_i64())
                .unwrap_or(0)
                + c.attributes
                    .get("gen_ai.usage.output_tokens")
                    .and_then(|v| v.as_i64())
                    .unwrap_or(0)
        })
        .sum();
    assert!(env_tokens > 0);
    assert_eq!(result.tokens, Some(env_tokens as u64));
    // Each token once: the iterations' tokens are the usage of every LLM call in the
    // episode (the env's and the policy's), not the env's count added again.
    let all_chats: i64 = doc
        .spans
        .iter()
        .filter(|s| s.name.as_str() == "chat lt-live")
        .map(|s| {
            let n = |k: &str| s.attributes.get(k).and_then(|v| v.as_i64()).unwrap_or(0);
            n("gen_ai.usage.input_tokens") + n("gen_ai.usage.output_tokens")
        })
        .sum();
    let per_iteration: i64 = doc
        .iterations()
        .filter_map(|s| s.attributes.get("loop.tokens_delta")?.as_i64())
        .sum();
    assert_eq!(per_iteration, all_chats);
    assert!(!doc.to_json_line().contains("0123456789"));
}
