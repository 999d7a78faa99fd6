//! TEMP STUB
pub mod request {
    pub fn decode(_b: &[u8]) -> Result<crate::canonical::ChatRequest, crate::wire::BadRequest> {
        todo!()
    }
}
pub mod response {
    pub fn encode(_r: &crate::canonical::ChatResponse) -> serde_json::Value {
        todo!()
    }
}
pub mod error {
    pub fn encode(_r: &crate::wire::ErrorBody) -> serde_json::Value {
        todo!()
    }
}
pub mod stream {
    pub struct Encoder;
    impl Encoder {
        pub fn new(_i: crate::wire::StreamInit) -> Self {
            Encoder
        }
    }
    impl crate::wire::StreamEncoder for Encoder {
        fn event(&mut self, _e: &crate::canonical::StreamEvent, _o: &mut bytes::BytesMut) {}
        fn finish(&mut self, _u: Option<crate::canonical::Usage>, _o: &mut bytes::BytesMut) {}
        fn error(&mut self, _e: &crate::wire::ErrorBody, _o: &mut bytes::BytesMut) {}
    }
}
