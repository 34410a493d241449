//! TracedStream: every span ends exactly once with the right end reason, wherever the
//! consumer stops (randomized drops at every point), and errors end it early.

use futures_util::StreamExt as _;
use loopotel::stream::StreamTraceExt as _;
use loopotel::{LoopTracer, LtfSpan, Outcome, SpanKind};

fn stream_spans(doc: &loopotel::LtfDocument) -> Vec<&LtfSpan> {
    doc.spans
        .iter()
        .filter(|s| s.name.as_str() == "chat stream")
        .collect()
}

#[tokio::test]
async fn dropping_at_every_point_ends_the_span_once_with_the_right_reason() {
    let mut rng = fastrand::Rng::with_seed(42);
    for case in 0..200 {
        let len = rng.usize(0..8);
        let take = rng.usize(0..=len + 1); // may read past the end
        let tracer = LoopTracer::new();
        let run = tracer.run("stream-loop").start();
        let it = run.iteration(1);
        let mut s = futures_util::stream::iter(0..len)
            .then(|x| async move {
                tokio::task::yield_now().await;
                x
            })
            .boxed()
            .traced(it.span("chat stream", SpanKind::Worker.client()));
        let mut got = 0;
        let mut finished = false;
        for _ in 0..take {
            match s.next().await {
                Some(_) => got += 1,
                None => {
                    finished = true;
                    break;
                }
            }
        }
        drop(s);
        drop(it);
        let doc = run.finish(Outcome::Success, "done");
        let spans = stream_spans(&doc);
        assert_eq!(spans.len(), 1, "case {case}");
        let a = &spans[0].attributes;
        assert_eq!(
            a.get("loop.stream.items").and_then(|v| v.as_i64()),
            Some(got as i64),
            "case {case}"
        );
        let reason = a.get("loop.stream.end_reason").and_then(|v| v.as_str());
        let expected = if finished {
            "completed"
        } else {
            "dropped_early"
        };
        assert_eq!(reason, Some(expected), "case {case}: len {len} take {take}");
        assert_eq!(
            a.get("loop.stream.time_to_first_item_ms").is_some(),
            got > 0
        );
        assert_eq!(a.get("loop.stream.gap_ms.max").is_some(), got > 1);
    }
}

#[tokio::test]
async fn an_error_item_ends_the_span_with_error_and_the_stream_goes_on() {
    let run = LoopTracer::new().run("stream-loop").start();
    let it = run.iteration(1);
    let items = vec![Ok(1), Err(std::io::Error::other("connection reset")), Ok(3)];
    let out: Vec<_> = futures_util::stream::iter(items)
        .traced_try(it.span("chat stream", SpanKind::Worker))
        .collect()
        .await;
    assert_eq!(out.len(), 3, "the caller sees every item unchanged");
    drop(it);
    let doc = run.finish(Outcome::Failure, "error");
    let span = stream_spans(&doc)[0];
    assert_eq!(
        span.attributes
            .get("loop.stream.end_reason")
            .and_then(|v| v.as_str()),
        Some("error")
    );
    assert_eq!(
        span.attributes
            .get("loop.stream.items")
            .and_then(|v| v.as_i64()),
        Some(2)
    );
    assert_eq!(
        span.attributes.get("error.type").and_then(|v| v.as_str()),
        Some("Error")
    );
}

mod body {
    use bytes::Bytes;
    use http_body::Frame;
    use http_body_util::{BodyExt as _, StreamBody};
    use loopotel::stream::TracedBody;
    use loopotel::{LoopTracer, Outcome, SpanKind};

    type Frames =
        futures_util::stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, std::io::Error>>>;

    fn frames(parts: &[&'static str], fail_at: Option<usize>) -> StreamBody<Frames> {
        let items: Vec<_> = parts
            .iter()
            .enumerate()
            .map(|(i, p)| {
                if Some(i) == fail_at {
                    Err(std::io::Error::other("connection reset"))
                } else {
                    Ok(Frame::data(Bytes::from_static(p.as_bytes())))
                }
            })
            .collect();
        StreamBody::new(futures_util::stream::iter(items))
    }

    #[tokio::test]
    async fn bodies_record_frames_bytes_and_how_they_ended() {
        for (fail_at, read_all, reason, items) in [
            (None, true, "completed", 3),
            (Some(1), true, "error", 1),
            (None, false, "dropped_early", 1),
        ] {
            let run = LoopTracer::new().run("body-loop").start();
            let it = run.iteration(1);
            let mut body = TracedBody::new(
                frames(&["data: a", "data: bb", "[DONE]"], fail_at),
                it.span("chat body", SpanKind::Worker),
            );
            if read_all {
                let _ = (&mut body).collect().await;
            } else {
                let _ = body.frame().await;
            }
            drop(body);
            drop(it);
            let doc = run.finish(Outcome::Success, "done");
            let span = doc
                .spans
                .iter()
                .find(|s| s.name.as_str() == "chat body")
                .unwrap();
            let a = &span.attributes;
            assert_eq!(
                a.get("loop.stream.end_reason").and_then(|v| v.as_str()),
                Some(reason)
            );
            assert_eq!(
                a.get("loop.stream.items").and_then(|v| v.as_i64()),
                Some(items)
            );
            if reason == "completed" {
                assert_eq!(
                    a.get("loop.stream.bytes").and_then(|v| v.as_i64()),
                    Some(21)
                );
            }
        }
    }
}

#[tokio::test]
async fn on_eos_sees_the_end_once_and_a_stream_can_own_its_run() {
    use loopotel::stream::StreamEnd;
    use std::sync::{Arc, Mutex};

    let ends = Arc::new(Mutex::new(Vec::<StreamEnd>::new()));
    let docs = Arc::new(Mutex::new(Vec::<loopotel::LtfDocument>::new()));
    let tracer = {
        let docs = docs.clone();
        LoopTracer::builder()
            .sink(move |d: &loopotel::LtfDocument| docs.lock().unwrap().push(d.clone()))
            .build()
    };
    // An erroring stream that is a run of its own; on_eos records and then panics (caught).
    let run = tracer.run("stream-run").start();
    let span = run.span("read pages", SpanKind::Worker);
    let seen = ends.clone();
    let items: Vec<Result<u32, String>> =
        futures_util::stream::iter(vec![Ok(1), Ok(2), Err("page 3 failed".to_owned()), Ok(4)])
            .traced_try(span)
            .on_eos(move |end: &StreamEnd, span: &mut loopotel::SpanGuard| {
                span.set_attribute("app.pages", end.items);
                seen.lock().unwrap().push(*end);
                panic!("bug in on_eos");
            })
            .with_run(run)
            .collect()
            .await;
    assert_eq!(items.len(), 4, "the stream itself is unchanged");
    let ends = ends.lock().unwrap();
    assert_eq!(ends.len(), 1);
    assert_eq!((ends[0].reason, ends[0].items), ("error", 3));
    let docs = docs.lock().unwrap();
    assert_eq!(docs.len(), 1, "the run ended with the stream");
    let doc = &docs[0];
    let s = doc
        .spans
        .iter()
        .find(|s| s.name.as_str() == "read pages")
        .unwrap();
    assert_eq!(s.attributes.get("app.pages").unwrap().as_i64(), Some(3));
    assert_eq!(
        s.attributes.get("error.type").unwrap().as_str(),
        Some("String")
    );
    let root = doc.root().unwrap();
    assert_eq!(
        root.attributes.get("loop.outcome").unwrap().as_str(),
        Some("failure")
    );
    assert_eq!(
        root.attributes
            .get("loop.termination_reason")
            .unwrap()
            .as_str(),
        Some("error")
    );
}
