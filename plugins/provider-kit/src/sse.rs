//! An incremental parser for `text/event-stream` (server-sent events), as the WHATWG HTML
//! specification defines it.
//!
//! Bytes arrive wherever the network split them: in the middle of a line, between `\r` and `\n`,
//! or inside a multi-byte UTF-8 character. [`SseParser::feed`] keeps the unfinished tail and
//! returns only complete events, so the caller never sees a partial one.

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SseEvent {
    /// The `event:` field; `None` means the default type (`message`).
    pub event: Option<String>,
    /// The `data:` lines, joined with `\n`.
    pub data: String,
    /// The `id:` field, if the event had one.
    pub id: Option<String>,
}

/// Turns a byte stream into [`SseEvent`]s.
#[derive(Debug, Default)]
pub struct SseParser {
    /// Bytes of the current, unfinished line.
    line: Vec<u8>,
    /// The previous chunk ended in `\r`: a `\n` at the start of the next one belongs to it.
    after_cr: bool,
    event: Option<String>,
    data: String,
    has_data: bool,
    id: Option<String>,
}

impl SseParser {
    /// A parser at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feed the next chunk; returns the events it completed, in order.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        let mut out = Vec::new();
        for &b in chunk {
            if self.after_cr {
                self.after_cr = false;
                if b == b'\n' {
                    continue;
                }
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

    /// The stream ended: return the last event if the server did not close it with a blank line
    /// (the specification drops it; real servers often forget the blank line, so keep it).
    pub fn finish(&mut self) -> Option<SseEvent> {
        let mut out = Vec::new();
        if !self.line.is_empty() {
            self.end_line(&mut out);
        }
        self.dispatch(&mut out);
        out.pop()
    }

    fn end_line(&mut self, out: &mut Vec<SseEvent>) {
        let line = std::mem::take(&mut self.line);
        if line.is_empty() {
            self.dispatch(out);
            return;
        }
        // A line is decoded only once it is complete, so a character split across chunks is whole.
        let line = String::from_utf8_lossy(&line);
        if line.starts_with(':') {
            return; // a comment (keep-alive)
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line.as_ref(), ""),
        };
        match field {
            "event" => self.event = Some(value.to_string()),
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            "id" => self.id = Some(value.to_string()),
            _ => {} // `retry` and unknown fields do not matter to a client that reads once
        }
    }

    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        let event = self.event.take();
        let id = self.id.take();
        if !self.has_data {
            // An event without data is not dispatched, except a named one (Anthropic sends
            // named events whose payload is always in `data`, so this only keeps odd servers
            // readable).
            if let Some(name) = event {
                out.push(SseEvent { event: Some(name), data: String::new(), id });
            }
            return;
        }
        self.has_data = false;
        out.push(SseEvent { event, data: std::mem::take(&mut self.data), id });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STREAM: &str = "event: message_start\ndata: {\"a\":1}\n\n: keep-alive\n\ndata: first\r\ndata: second\r\n\r\nid: 7\nevent: delta\ndata: héllo wörld ✓\n\ndata:[DONE]\n\n";

    fn expected() -> Vec<SseEvent> {
        vec![
            SseEvent { event: Some("message_start".into()), data: "{\"a\":1}".into(), id: None },
            SseEvent { event: None, data: "first\nsecond".into(), id: None },
            SseEvent { event: Some("delta".into()), data: "héllo wörld ✓".into(), id: Some("7".into()) },
            SseEvent { event: None, data: "[DONE]".into(), id: None },
        ]
    }

    #[test]
    fn parses_a_whole_stream() {
        let mut p = SseParser::new();
        let mut got = p.feed(STREAM.as_bytes());
        got.extend(p.finish());
        assert_eq!(got, expected());
    }

    #[test]
    fn the_same_events_come_out_whatever_the_chunk_boundaries() {
        let bytes = STREAM.as_bytes();
        for size in 1..=bytes.len() {
            let mut p = SseParser::new();
            let mut got = Vec::new();
            for chunk in bytes.chunks(size) {
                got.extend(p.feed(chunk));
            }
            got.extend(p.finish());
            assert_eq!(got, expected(), "chunk size {size}");
        }
    }

    #[test]
    fn a_lone_cr_ends_a_line_and_a_missing_final_blank_line_still_dispatches() {
        let mut p = SseParser::new();
        let mut got = p.feed(b"data: a\r\rdata: b");
        got.extend(p.finish());
        assert_eq!(got.iter().map(|e| e.data.as_str()).collect::<Vec<_>>(), ["a", "b"]);
    }
}
