//! # loopotel-openai
//!
//! Status: scaffold. The traced async-openai client (chat, streams, embeddings, responses as
//! GenAI spans inside loop runs) is tracked in issue 5. This crate re-exports the core so
//! dependants can already name it.

pub use loopotel;
