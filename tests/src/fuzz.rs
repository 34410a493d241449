//! Fuzz harnesses: each takes arbitrary bytes and must neither panic nor allocate without
//! bound; every input gets a value or a clear error. Used by the `cargo fuzz` targets in
//! `fuzz/` and by the corpus and mutation pass in `tests/tests/fuzz_corpus.rs`.

use std::io::Cursor;

/// `traceparent`, `tracestate` and `baggage` parsing, and the propagator over a header map.
pub fn trace_context(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(tp) = text.parse::<loopotel::propagation::TraceParent>() {
        // A parsed header writes back to one that parses to the same value.
        let again: loopotel::propagation::TraceParent = tp.to_string().parse().expect("round trip");
        assert_eq!(again, tp);
    }
    let _ = loopotel::propagation::parse_tracestate(text);
    let _ = loopotel::propagation::parse_baggage(text);
    let mut headers = std::collections::HashMap::new();
    let mut parts = text.splitn(3, '\n');
    headers.insert(
        "traceparent".to_owned(),
        parts.next().unwrap_or_default().to_owned(),
    );
    headers.insert(
        "tracestate".to_owned(),
        parts.next().unwrap_or_default().to_owned(),
    );
    headers.insert(
        "baggage".to_owned(),
        parts.next().unwrap_or_default().to_owned(),
    );
    let _ = loopotel::propagation::extract(&headers);
}

/// An LTF document: parse, validate (both modes), serialize.
pub fn ltf_json(data: &[u8]) {
    if let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = loopotel::validate::validate_value(&value, loopotel::validate::Mode::Reference);
        let _ = loopotel::validate::validate_value(&value, loopotel::validate::Mode::Strict);
    }
    if let Ok(doc) = serde_json::from_slice::<loopotel::LtfDocument>(data) {
        let _ = loopotel::validate::validate_document(&doc);
        let _ = doc.to_json_line();
    }
}

/// A JSONL trace file: every line a document or a clear, numbered error.
pub fn jsonl(data: &[u8]) {
    let reader = loopotel::jsonl::JsonlReader::new(Cursor::new(data)).max_line_bytes(1 << 20);
    for record in reader.documents().take(10_000) {
        if let Err(e) = record {
            let _ = e.to_string();
        }
    }
}

/// An LSS spec (and a task file after a NUL byte): load, build an env, run a few steps.
pub fn lss_spec(data: &[u8]) {
    let (spec, tasks) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], Some(&data[i + 1..])),
        None => (data, None),
    };
    let Ok(spec_text) = std::str::from_utf8(spec) else {
        return;
    };
    let Ok(spec) = loopotel_gym::spec::LssSpec::from_yaml(spec_text, "fuzz.yaml") else {
        return;
    };
    let tasks = tasks
        .and_then(|t| std::str::from_utf8(t).ok())
        .and_then(|t| loopotel_gym::spec::TaskFile::from_json_str(t, "fuzz.json").ok());
    let ids = tasks.as_ref().map(|t| t.ids()).unwrap_or_default();
    let Ok(mut env) = loopotel_gym::sim::SimEnv::new("fuzz/env", spec, tasks) else {
        return;
    };
    let task = ids.first().cloned().unwrap_or_default();
    if env.reset(&task, Some(1)).is_ok() {
        for _ in 0..25 {
            match env.step(&loopotel_gym::Action::EnvWorker) {
                Ok(s) if s.done => break,
                Ok(_) => {}
                Err(_) => break,
            }
        }
    }
}

/// A streamed chat chunk as an OpenAI-compatible server sends it (the SSE `data:` payload).
pub fn sse_chunk(data: &[u8]) {
    use loopotel_openai::async_openai::types::chat::CreateChatCompletionStreamResponse;
    if let Ok(chunk) = serde_json::from_slice::<CreateChatCompletionStreamResponse>(data) {
        let _ = serde_json::to_string(&chunk);
    }
}

/// A harness: arbitrary bytes in, no panic out.
pub type Harness = fn(&[u8]);

/// Every harness, by name (for the corpus directories).
pub const HARNESSES: &[(&str, Harness)] = &[
    ("trace_context", trace_context),
    ("ltf_json", ltf_json),
    ("jsonl", jsonl),
    ("lss_spec", lss_spec),
    ("sse_chunk", sse_chunk),
];
