//! Reading `text/event-stream` responses the way a real client does: bytes arrive split
//! anywhere (mid-line, between `\r` and `\n`, inside a UTF-8 character), and only complete events
//! (ended by a blank line) count.

use futures::StreamExt;

/// One event: its `event:` field (if any) and its `data:` lines joined with `\n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The `event:` field; `None` for the default `message` type.
    pub event: Option<String>,
    /// The data.
    pub data: String,
}

/// An incremental parser: feed it chunks, get complete events.
#[derive(Debug, Default)]
pub struct Parser {
    line: Vec<u8>,
    after_cr: bool,
    event: Option<String>,
    data: Vec<String>,
}

impl Parser {
    /// Feed the next chunk; returns the events it completed, in order.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<Event> {
        let mut out = Vec::new();
        for &b in chunk {
            if std::mem::take(&mut self.after_cr) && b == b'\n' {
                continue;
            }
            match b {
                b'\n' => self.end_line(&mut out),
                b'\r' => {
                    self.after_cr = true;
                    self.end_line(&mut out);
                }
                _ => self.line.push(b),
            }
        }
        out
    }

    /// Bytes of an unfinished event left when the stream ended (a server that forgot the final
    /// blank line); `true` means the stream was cut.
    pub fn has_partial_event(&self) -> bool {
        !self.line.is_empty() || !self.data.is_empty()
    }

    fn end_line(&mut self, out: &mut Vec<Event>) {
        let line = String::from_utf8(std::mem::take(&mut self.line)).expect("SSE lines are UTF-8");
        if line.is_empty() {
            if !self.data.is_empty() {
                out.push(Event { event: self.event.take(), data: std::mem::take(&mut self.data).join("\n") });
            }
            self.event = None;
            return;
        }
        if line.starts_with(':') {
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line.as_str(), ""),
        };
        match field {
            "data" => self.data.push(value.to_string()),
            "event" => self.event = Some(value.to_string()),
            _ => {}
        }
    }
}

/// Read a whole event-stream response into its events, as the bytes arrive.
pub async fn read_events(response: reqwest::Response) -> Vec<Event> {
    let mut parser = Parser::default();
    let mut events = Vec::new();
    let mut body = response.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.unwrap_or_else(|e| panic!("the event stream broke: {e}"));
        events.extend(parser.feed(&chunk));
    }
    assert!(!parser.has_partial_event(), "the event stream ended in the middle of an event");
    events
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_anywhere_come_out_whole() {
        let body =
            "data: {\"a\":\"é\"}\r\n\r\n: keep-alive\n\ndata: one\ndata: two\n\nevent: x\ndata: [DONE]\n\n".as_bytes();
        for cut in 1..body.len() {
            let mut p = Parser::default();
            let mut events = p.feed(&body[..cut]);
            events.extend(p.feed(&body[cut..]));
            assert_eq!(events.len(), 3, "cut at {cut}");
            assert_eq!(events[0].data, "{\"a\":\"é\"}");
            assert_eq!(events[1].data, "one\ntwo");
            assert_eq!(events[2], Event { event: Some("x".into()), data: "[DONE]".into() });
            assert!(!p.has_partial_event());
        }
    }
}
