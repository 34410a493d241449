//! A minimal OTLP/HTTP receiver on 127.0.0.1 and what its requests hold.

/// A one-worker tokio runtime for test servers (the receivers below) and gRPC exporters;
/// dropping or shutting it down stops what it runs — a collector killed.
pub fn server_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// A minimal OTLP/HTTP receiver on 127.0.0.1 (an ephemeral port, stopped with the runtime):
/// reads each POST, decodes the protobuf
/// `ExportTraceServiceRequest`, answers 200 with an empty `ExportTraceServiceResponse`.
/// Yields (request line, body) pairs; returns the base endpoint `http://127.0.0.1:PORT`.
pub async fn otlp_http_receiver() -> (
    String,
    tokio::sync::mpsc::UnboundedReceiver<(String, Vec<u8>)>,
) {
    otlp_http_receiver_on("127.0.0.1:0").await
}

/// [`otlp_http_receiver`] on a given address (to restart a collector on the port it had).
pub async fn otlp_http_receiver_on(
    addr: &str,
) -> (
    String,
    tokio::sync::mpsc::UnboundedReceiver<(String, Vec<u8>)>,
) {
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                loop {
                    let head_end = buf.windows(4).position(|w| w == b"\r\n\r\n");
                    if let Some(pos) = head_end {
                        let head = String::from_utf8_lossy(&buf[..pos]).to_string();
                        let len: usize = head
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse().unwrap_or(0))
                            })
                            .unwrap_or(0);
                        while buf.len() < pos + 4 + len {
                            let n = tokio::io::AsyncReadExt::read(&mut sock, &mut chunk)
                                .await
                                .unwrap_or(0);
                            if n == 0 {
                                return;
                            }
                            buf.extend_from_slice(&chunk[..n]);
                        }
                        let body = buf[pos + 4..pos + 4 + len].to_vec();
                        let request_line = head.lines().next().unwrap_or("").to_owned();
                        let _ = tx.send((request_line, body));
                        let resp = prost::Message::encode_to_vec(&opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse::default());
                        let header = format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: {}\r\n\r\n",
                            resp.len()
                        );
                        let _ =
                            tokio::io::AsyncWriteExt::write_all(&mut sock, header.as_bytes()).await;
                        let _ = tokio::io::AsyncWriteExt::write_all(&mut sock, &resp).await;
                        buf.drain(..pos + 4 + len);
                        continue;
                    }
                    let n = tokio::io::AsyncReadExt::read(&mut sock, &mut chunk)
                        .await
                        .unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
            });
        }
    });
    (format!("http://{addr}"), rx)
}

/// The `(trace id, span id)` hex pairs of the spans in OTLP/HTTP request bodies, in arrival
/// order (duplicates kept, so a test can check each arrived exactly once).
pub fn otlp_span_ids(bodies: &[Vec<u8>]) -> Vec<(String, String)> {
    use prost::Message as _;
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let mut ids = Vec::new();
    for body in bodies {
        let req =
            opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest::decode(
                body.as_slice(),
            )
            .expect("an OTLP/HTTP protobuf body");
        for rs in req.resource_spans {
            for ss in rs.scope_spans {
                for s in ss.spans {
                    ids.push((hex(&s.trace_id), hex(&s.span_id)));
                }
            }
        }
    }
    ids
}
