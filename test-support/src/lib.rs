//! What loopotel's tests and benches share, with no dependency on loopotel itself (so every
//! crate of the workspace can use it as a dev-dependency):
//!
//! - [`peers`]: the local peers `scripts/test.sh` starts (llmock, aimock, Phoenix), and the
//!   one rule for a missing peer — skipped, unless the script requires it;
//! - [`python`]: the Python reference venv and the traces it writes;
//! - [`otlp`]: a minimal OTLP/HTTP receiver on 127.0.0.1;
//! - [`json`]: JSONL files and a plain HTTP GET;
//! - [`sampler`]: a sampler that records what each span was created with;
//! - [`otel_layer`]: the bare-SDK Tower layer the traced layer is measured against;
//! - [`alloc`]: exact allocation counts through a counting global allocator;
//! - [`bench`](mod@bench): criterion helpers and the paired-rounds ratio.

pub mod alloc;
pub mod bench;
pub mod json;
pub mod otel_layer;
pub mod otlp;
pub mod peers;
pub mod python;
pub mod sampler;

pub use json::{http_get_json, http_post_json, read_jsonl_values};
pub use otlp::{otlp_http_receiver, otlp_http_receiver_on, otlp_span_ids, server_runtime};
pub use peers::{Browser, Phoenix, aimock, browser, llmock, phoenix};
pub use python::{
    Reference, ReferenceTraces, generate_reference_traces, reference, run, workspace_root,
};
