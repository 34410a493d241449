//! `loopotel export` of a stored JSONL file into Arize Phoenix (started on 127.0.0.1 by
//! `scripts/phoenix.sh`), read back through its REST API with the original ids.

use std::process::Command;
use std::time::Duration;

use tests::{assert_phoenix_has, phoenix, sample_documents};

#[test]
fn a_replayed_jsonl_file_lands_in_phoenix_with_its_original_ids() {
    let Some(p) = phoenix() else { return };
    let dir = tempfile::tempdir().unwrap();
    for (protocol, endpoint) in [("http", &p.url), ("grpc", &p.grpc)] {
        // Fresh documents per protocol: Phoenix keeps the first copy of a span id.
        let path = dir.path().join(format!("{protocol}.jsonl"));
        let docs = sample_documents();
        let lines: Vec<_> = docs.iter().map(|d| d.to_json_line()).collect();
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        let project = format!("loopotel-replay-{protocol}-{}", loopotel::SpanId::random());
        let out = Command::new(env!("CARGO_BIN_EXE_loopotel"))
            .args(["export", "--otlp", endpoint, "--protocol", protocol])
            .arg(&path)
            .env(
                "OTEL_RESOURCE_ATTRIBUTES",
                format!("openinference.project.name={project}"),
            )
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{protocol}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let total: usize = docs.iter().map(|d| d.spans.len()).sum();
        let spans = p.spans(&project, total, Duration::from_secs(60));
        assert_eq!(spans.len(), total, "{protocol}");
        for doc in &docs {
            let trace = doc.trace_id.to_hex();
            let mine: Vec<_> = spans
                .iter()
                .filter(|s| s["context"]["trace_id"] == trace)
                .cloned()
                .collect();
            assert_phoenix_has(doc, &mine);
        }
    }
}
