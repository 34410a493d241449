//! OTLP transports (feature `otlp`): gRPC (tonic) and HTTP/protobuf (blocking reqwest, which
//! is safe on the SDK's own export thread — the async reqwest client panics there).

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use opentelemetry_otlp::{WithExportConfig, WithHttpConfig, WithTonicConfig};

/// An OTLP transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Protocol {
    /// OTLP/gRPC (default port 4317). Build and use the exporter inside a tokio runtime.
    Grpc,
    /// OTLP/HTTP with protobuf bodies (default port 4318), the OpenTelemetry default.
    #[default]
    HttpProtobuf,
}

/// A protocol name that is not `grpc`, `http` or `http/protobuf`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown OTLP protocol {0:?} (expected grpc, http or http/protobuf)")]
pub struct UnknownProtocol(pub String);

impl FromStr for Protocol {
    type Err = UnknownProtocol;
    fn from_str(s: &str) -> Result<Self, UnknownProtocol> {
        match s.trim().to_ascii_lowercase().as_str() {
            "grpc" => Ok(Protocol::Grpc),
            "http" | "http/protobuf" => Ok(Protocol::HttpProtobuf),
            other => Err(UnknownProtocol(other.to_owned())),
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Grpc => "grpc",
            Protocol::HttpProtobuf => "http/protobuf",
        })
    }
}

/// The URL an OTLP/HTTP trace exporter posts to: `endpoint` as given when it has a path,
/// else `endpoint/v1/traces` (the spec's rule for the base endpoint).
pub(crate) fn http_traces_url(endpoint: &str) -> String {
    let trimmed = endpoint.trim_end_matches('/');
    let after_scheme = trimmed.split_once("://").map_or(trimmed, |(_, rest)| rest);
    if after_scheme.contains('/') {
        trimmed.to_owned()
    } else {
        format!("{trimmed}/v1/traces")
    }
}

/// Builds an OTLP span exporter for `endpoint`. gRPC exporters must be built inside a tokio
/// runtime.
pub fn span_exporter(
    endpoint: &str,
    protocol: Protocol,
    timeout: Duration,
    headers: &[(String, String)],
) -> Result<opentelemetry_otlp::SpanExporter, opentelemetry_otlp::ExporterBuildError> {
    match protocol {
        Protocol::Grpc => {
            // gRPC metadata is HTTP/2 headers: the same names and values.
            let mut map = http::HeaderMap::new();
            for (k, v) in headers {
                if let (Ok(name), Ok(value)) = (
                    http::header::HeaderName::from_bytes(k.to_ascii_lowercase().as_bytes()),
                    http::header::HeaderValue::from_str(v),
                ) {
                    map.insert(name, value);
                }
            }
            let metadata =
                opentelemetry_otlp::tonic_types::metadata::MetadataMap::from_headers(map);
            opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint)
                .with_timeout(timeout)
                .with_metadata(metadata)
                .build()
        }
        Protocol::HttpProtobuf => opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_endpoint(http_traces_url(endpoint))
            .with_timeout(timeout)
            .with_headers(headers.iter().cloned().collect::<HashMap<_, _>>())
            .build(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_endpoint_rules() {
        assert_eq!(
            http_traces_url("http://127.0.0.1:4318"),
            "http://127.0.0.1:4318/v1/traces"
        );
        assert_eq!(
            http_traces_url("http://127.0.0.1:4318/"),
            "http://127.0.0.1:4318/v1/traces"
        );
        assert_eq!(
            http_traces_url("http://h:1/custom/path"),
            "http://h:1/custom/path"
        );
    }

    #[test]
    fn protocols_parse() {
        assert_eq!("grpc".parse(), Ok(Protocol::Grpc));
        assert_eq!("HTTP/protobuf".parse(), Ok(Protocol::HttpProtobuf));
        assert!("http/json".parse::<Protocol>().is_err());
    }
}
