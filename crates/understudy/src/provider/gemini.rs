//! The `gemini` provider kind. (Stub: being written.)

use http::HeaderMap;

use super::{Adapter, Call, UpstreamRequest};
use crate::canonical::{ChatRequest, ChatResponse, Dialect};
use crate::failure::Failure;
use crate::wire::StreamDecoder;

pub struct Gemini;

impl Adapter for Gemini {
    fn dialect(&self) -> Dialect {
        Dialect::Gemini
    }
    fn build(&self, _req: &ChatRequest, _call: &Call<'_>) -> Result<UpstreamRequest, Failure> {
        unimplemented!()
    }
    fn decode_response(&self, _body: &[u8]) -> Result<ChatResponse, Failure> {
        unimplemented!()
    }
    fn classify_error(&self, _status: u16, _headers: &HeaderMap, _body: &[u8]) -> Failure {
        unimplemented!()
    }
    fn stream_decoder(&self) -> Box<dyn StreamDecoder> {
        unimplemented!()
    }
}
