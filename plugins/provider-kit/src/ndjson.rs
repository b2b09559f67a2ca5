//! An incremental splitter for newline-delimited JSON (Ollama's streaming format): one JSON value
//! per line, lines split wherever the network split them.

/// Turns a byte stream into complete, non-empty lines.
#[derive(Debug, Default)]
pub struct LineSplitter {
    pending: Vec<u8>,
}

impl LineSplitter {
    /// A splitter at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feed the next chunk; returns the lines it completed (without the line ending), in order.
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        for &b in chunk {
            if b == b'\n' {
                let line = std::mem::take(&mut self.pending);
                push_line(&mut out, &line);
            } else {
                self.pending.push(b);
            }
        }
        out
    }

    /// The stream ended: the last line, if it had no newline after it.
    pub fn finish(&mut self) -> Option<String> {
        let line = std::mem::take(&mut self.pending);
        let mut out = Vec::new();
        push_line(&mut out, &line);
        out.pop()
    }
}

fn push_line(out: &mut Vec<String>, line: &[u8]) {
    let text = String::from_utf8_lossy(line);
    let text = text.trim();
    if !text.is_empty() {
        out.push(text.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_come_out_whole_whatever_the_chunk_boundaries() {
        let input = "{\"a\":\"ü\"}\r\n\n{\"b\":2}\n{\"c\":3}";
        for size in 1..=input.len() {
            let mut s = LineSplitter::new();
            let mut got = Vec::new();
            for chunk in input.as_bytes().chunks(size) {
                got.extend(s.feed(chunk));
            }
            got.extend(s.finish());
            assert_eq!(got, ["{\"a\":\"ü\"}", "{\"b\":2}", "{\"c\":3}"], "chunk size {size}");
        }
    }
}
