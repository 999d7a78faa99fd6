//! A complete answer as a sequence of stream events, for callers who asked for a stream but got
//! an answer in one piece (a server that ignored `stream: true`, or a cache).

use crate::canonical::{ChatResponse, ContentPart, StreamEvent};

pub fn events(resp: &ChatResponse) -> Vec<StreamEvent> {
    let mut out = vec![StreamEvent::Start { id: Some(resp.id.clone()), model: Some(resp.model.clone()) }];
    for choice in &resp.choices {
        let mut call = 0;
        for part in &choice.content {
            match part {
                ContentPart::Text { text } if !text.is_empty() => {
                    out.push(StreamEvent::Text { index: choice.index, text: text.clone() })
                }
                ContentPart::ToolCall { id, name, arguments } => {
                    out.push(StreamEvent::ToolCall {
                        index: choice.index,
                        call,
                        id: Some(id.clone()),
                        name: Some(name.clone()),
                        arguments: arguments.clone(),
                    });
                    call += 1;
                }
                _ => {}
            }
        }
        out.push(StreamEvent::Finish { index: choice.index, reason: choice.finish_reason.clone() });
    }
    out.push(StreamEvent::Usage(resp.usage));
    out.push(StreamEvent::Done);
    out
}
