//! The OpenAI Chat Completions dialect (OpenAI, Azure OpenAI and the many OpenAI-compatible
//! servers), both directions:
//! * front: [`request::decode`], [`response::encode`], [`stream::Encoder`], [`error::encode`];
//! * provider: [`request::encode`], [`response::decode`], [`stream::Decoder`], [`error::classify`].
//!
//! [`embeddings`] holds `POST /v1/embeddings`, both directions.

pub mod embeddings;
pub mod error;
pub mod request;
pub mod response;
pub mod stream;
