//! Fault-injecting mock LLM provider speaking the OpenAI, Anthropic, Gemini and Bedrock wire
//! formats, the first three also as served by Azure OpenAI and Vertex AI.
//!
//! An independent implementation of the providers' formats (it does not use the engine), so
//! that it catches the gateway's translation bugs instead of mirroring them.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use understudy_mock::{start, Fault, MockConfig};
//! let mock = start("127.0.0.1:0".parse().unwrap(), MockConfig::default()).await?;
//! // Every request for `gpt-4o` now gets a 429 with `Retry-After: 2`.
//! mock.set_fault("gpt-4o", Fault::parse("error=rate_limit+retry_after=2").unwrap());
//! // Or name the fault in the model itself: "gpt-4o+latency=600ms".
//! println!("{}", mock.url());
//! # Ok(()) }
//! ```
//!
//! Endpoints: `POST /v1/chat/completions`, `POST /v1/messages`, `GET /v1/models` (OpenAI, or
//! Anthropic when the request carries `anthropic-version` / `x-api-key`),
//! `POST /v1beta/models/{model}:generateContent`, `...:streamGenerateContent?alt=sse`,
//! `GET /v1beta/models`, embeddings (`POST /v1/embeddings` and
//! `POST /v1beta/models/{model}:batchEmbedContents`, deterministic unit vectors from a hash of
//! each input, 8 dimensions unless asked otherwise), Bedrock's `POST /model/{modelId}/converse`,
//! `.../converse-stream` (binary event stream) and `.../invoke` (Titan and Cohere embeddings),
//! with SigV4 checked against [`MockConfig::aws_secret_access_key`], Azure OpenAI
//! (`/openai/deployments/{deployment}/chat/completions?api-version=`, `/openai/v1/chat/completions`,
//! `embeddings` under both; `api-key` auth), Vertex AI
//! (`/v1/projects/{p}/locations/{l}/publishers/google/models/{m}:generateContent` or
//! `:streamGenerateContent`, `…/publishers/anthropic/models/{m}:rawPredict` or `:streamRawPredict`;
//! bearer tokens from the mock's own `POST /token`, the service-account jwt-bearer grant), and
//! the control plane under `/_mock/` (`GET stats`, `GET requests?model=&limit=`,
//! `GET|DELETE faults`, `PUT|DELETE faults/{model}`, `POST reset`).
//!
//! A request's fault is the run-time rule for its base model, else the `*` rule, else the
//! model-name suffix (`base+key=value+flag`, see [`Fault::parse`]), else
//! [`MockConfig::default_fault`]. Requests are counted and recorded before any fault applies.
//!
//! All delays use `tokio::time`, so tests can run on tokio's paused clock.

mod answer;
mod body;
mod control;
mod dialect;
mod fault;
mod http;
mod parse;
mod route;
mod server;
mod state;
mod token;
mod vectors;

pub use body::StreamCut;
pub use fault::{ErrorKind, Fault};
pub use server::{start, MockControl, MockHandle};
pub use state::{Dialect, MockConfig, Recorded, Stats, AWS_TEST_SECRET_ACCESS_KEY};
