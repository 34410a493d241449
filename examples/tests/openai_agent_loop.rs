//! `examples/openai_agent_loop.rs` for real against llmock (`scripts/llmock.sh`): several
//! iterations of LLM and tool calls; the LTF document it writes passes the Python reference
//! validator (`loopotel-validate`), and its token totals equal what the server reported.

use std::process::Command;

use loopotel::LoopTracer;
use loopotel::jsonl::JsonlExporter;

#[path = "../examples/openai_agent_loop.rs"]
mod example;

#[tokio::test]
async fn an_openai_agent_loop_is_valid_ltf_with_the_servers_token_totals() {
    let Some(base) = loopotel_test_support::llmock() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.jsonl");
    let tracer = LoopTracer::builder()
        .sink(JsonlExporter::create(&path).unwrap())
        .build();
    let report = example::run_agent(
        &tracer,
        example::AgentOptions {
            base_url: format!("{base}/v1"),
            api_key: "sk-agent-loop-test-0123456789".into(),
            model: "lt-agent".into(),
            cities: vec!["Paris".into(), "Oslo".into()],
            max_iterations: 10,
        },
    )
    .await
    .expect("the loop runs");
    let doc = &report.doc;
    assert_eq!(report.answers.len(), 2);
    let iterations = doc.iterations().count();
    assert!(iterations >= 3, "several iterations: {iterations}");
    let root = doc.root().unwrap();
    assert_eq!(
        root.attributes.get("loop.outcome").unwrap().as_str(),
        Some("success")
    );
    // Token totals: the run, the iterations and the LLM spans all equal the server's usage.
    let total = root.attributes.get("loop.tokens_total").unwrap().as_i64();
    assert_eq!(total, Some(report.server_reported_tokens as i64));
    let per_iteration: i64 = doc
        .iterations()
        .filter_map(|s| s.attributes.get("loop.tokens_delta")?.as_i64())
        .sum();
    assert_eq!(per_iteration, report.server_reported_tokens as i64);
    let llm_calls = doc
        .spans
        .iter()
        .filter(|s| s.name.as_str() == "chat lt-agent")
        .count();
    let tool_calls = doc
        .spans
        .iter()
        .filter(|s| s.name.as_str() == "execute_tool get_weather")
        .count();
    assert_eq!(llm_calls, iterations);
    assert!(tool_calls >= 1, "the model called the tool");
    assert!(
        !doc.to_json_line().contains("0123456789"),
        "API key recorded"
    );

    // The reference validator accepts the file the sink wrote.
    let Some(reference) = loopotel_test_support::reference() else {
        return;
    };
    let out = loopotel_test_support::run(Command::new(&reference.validate).arg(&path));
    assert!(
        out.status.success(),
        "loopotel-validate rejected the agent trace:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
