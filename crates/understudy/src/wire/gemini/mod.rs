//! The gemini dialect (Google Gemini API, `generativelanguage` v1beta). Provider side only: the
//! gateway has no Gemini front, so there is no `request::decode`, `response::encode`,
//! `stream::Encoder` or `error::encode` here. [`embeddings`] holds `batchEmbedContents`.

pub mod embeddings;
pub mod error;
pub mod request;
pub mod response;
pub mod stream;

#[cfg(test)]
mod proptests;
