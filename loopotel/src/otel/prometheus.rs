//! loopotel's metrics on a Prometheus scrape endpoint (feature `prometheus`): the maintained
//! `opentelemetry-prometheus` exporter behind a meter provider, served as the Prometheus
//! text format at `GET /metrics` by a small HTTP/1.0 loop on its own thread.
//!
//! ```no_run
//! use loopotel::otel::prometheus::PrometheusEndpoint;
//!
//! let endpoint = PrometheusEndpoint::serve("127.0.0.1:9464")?;
//! let tracer = loopotel::LoopTracer::builder()
//!     .meter_provider(endpoint.meter_provider())
//!     .build();
//! // … run loops; Prometheus scrapes http://127.0.0.1:9464/metrics
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! Fail-open: a scrape that fails (a bad request, a client that goes away) is answered or
//! dropped and never reaches the loop; recording only updates the provider's instruments.
//! Prometheus needs cumulative temporality, which this exporter uses.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use opentelemetry_sdk::metrics::SdkMeterProvider;
use prometheus::{Encoder as _, TextEncoder};

/// A running scrape endpoint and the meter provider whose metrics it serves. Dropping it
/// stops the endpoint and shuts the provider down.
#[derive(Debug)]
pub struct PrometheusEndpoint {
    provider: SdkMeterProvider,
    registry: prometheus::Registry,
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl PrometheusEndpoint {
    /// Binds `addr` (port 0 picks a free one) and serves `GET /metrics`.
    pub fn serve(addr: impl ToSocketAddrs) -> std::io::Result<Self> {
        let registry = prometheus::Registry::new();
        let exporter = opentelemetry_prometheus::exporter()
            .with_registry(registry.clone())
            .build()
            .map_err(std::io::Error::other)?;
        let provider = SdkMeterProvider::builder().with_reader(exporter).build();
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (registry, stop) = (registry.clone(), stop.clone());
            std::thread::Builder::new()
                .name("loopotel-prometheus".into())
                .spawn(move || {
                    for conn in listener.incoming() {
                        if stop.load(Ordering::Relaxed) {
                            break;
                        }
                        if let Ok(conn) = conn {
                            let _ = answer(conn, &registry);
                        }
                    }
                })?
        };
        Ok(Self {
            provider,
            registry,
            addr,
            stop,
            thread: Some(thread),
        })
    }

    /// The provider to give the tracer (`LoopTracerBuilder::meter_provider`).
    pub fn meter_provider(&self) -> &SdkMeterProvider {
        &self.provider
    }

    /// Where it listens.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The metrics as a scrape would get them now (Prometheus text format).
    pub fn render(&self) -> String {
        render(&self.registry)
    }
}

impl Drop for PrometheusEndpoint {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = self.provider.shutdown();
    }
}

fn render(registry: &prometheus::Registry) -> String {
    let mut out = Vec::new();
    let _ = TextEncoder::new().encode(&registry.gather(), &mut out);
    String::from_utf8(out).unwrap_or_default()
}

/// Answers one connection: the metrics for `GET /metrics` (or `/`), 404 otherwise.
fn answer(conn: TcpStream, registry: &prometheus::Registry) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    conn.set_write_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(conn);
    let mut request = String::new();
    reader.read_line(&mut request)?;
    // Drain the headers (the request has no body we need).
    let mut line = String::new();
    while reader.read_line(&mut line)? > 2 {
        line.clear();
    }
    let mut conn = reader.into_inner();
    let path = request.split_whitespace().nth(1).unwrap_or("");
    if request.starts_with("GET ") && (path == "/metrics" || path == "/") {
        let body = render(registry);
        write!(
            conn,
            "HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    } else {
        conn.write_all(b"HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_shows_on_the_endpoint() {
        let endpoint = PrometheusEndpoint::serve("127.0.0.1:0").unwrap();
        let tracer = crate::LoopTracer::builder()
            .meter_provider(endpoint.meter_provider())
            .build();
        let run = tracer.run("prom-loop").env_id("e/v1").start();
        run.emit_iteration(crate::IterationRecord::new(1, 0.9).tokens(12));
        drop(run.finish(crate::Outcome::Success, "done"));
        let mut conn = TcpStream::connect(endpoint.local_addr()).unwrap();
        conn.write_all(b"GET /metrics HTTP/1.0\r\n\r\n").unwrap();
        let mut body = String::new();
        std::io::Read::read_to_string(&mut conn, &mut body).unwrap();
        assert!(body.starts_with("HTTP/1.0 200"), "{body}");
        assert!(body.contains("loop_runs"), "{body}");
        assert_eq!(
            endpoint.render().contains("prom-loop"),
            body.contains("prom-loop")
        );
        if std::env::var_os("LOOPOTEL_DUMP_PROMETHEUS").is_some() {
            eprintln!("{}", endpoint.render());
        }
    }
}
