//! Reading newline-terminated frames with a length cap enforced while reading: a line longer
//! than the limit is skipped to its newline without being buffered.

use std::io::{self, BufRead};

/// What one read produced.
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    /// A whole line, without its `\n` (a `\r` before it is kept; the decoder removes it).
    Line(Vec<u8>),
    /// A line longer than the limit; `bytes` were read and dropped up to its newline.
    TooLong {
        /// Its length.
        bytes: usize,
    },
    /// The stream ended; `partial` bytes of an unfinished line were dropped.
    End {
        /// Bytes after the last newline.
        partial: usize,
    },
}

/// Reads frames of at most `limit` bytes (before the newline) from `inner`.
pub struct LineReader<R> {
    inner: R,
    limit: usize,
    line: Vec<u8>,
}

impl<R: BufRead> LineReader<R> {
    /// A reader of frames of at most `limit` bytes.
    pub fn new(inner: R, limit: usize) -> Self {
        LineReader {
            inner,
            limit,
            line: Vec::new(),
        }
    }

    /// The next frame. Never holds more than `limit + 1` bytes of one line.
    pub fn next_frame(&mut self) -> io::Result<Frame> {
        self.line.clear();
        let mut dropped = 0usize;
        loop {
            let buf = match self.inner.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if buf.is_empty() {
                let partial = self.line.len() + dropped;
                return Ok(Frame::End { partial });
            }
            let (chunk, found) = match buf.iter().position(|&b| b == b'\n') {
                Some(i) => (&buf[..i], true),
                None => (buf, false),
            };
            let used = chunk.len() + usize::from(found);
            if dropped > 0 || self.line.len() + chunk.len() > self.limit + 1 {
                // `+ 1` leaves room for a `\r` before the newline.
                dropped += self.line.len() + chunk.len();
                self.line.clear();
            } else {
                self.line.extend_from_slice(chunk);
            }
            self.inner.consume(used);
            if found {
                let bytes = dropped;
                return Ok(if bytes > 0 {
                    Frame::TooLong { bytes }
                } else {
                    Frame::Line(std::mem::take(&mut self.line))
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufReader;

    fn frames(input: &[u8], limit: usize, buf: usize) -> Vec<Frame> {
        let mut r = LineReader::new(BufReader::with_capacity(buf, input), limit);
        let mut out = Vec::new();
        for _ in 0..100 {
            let f = r.next_frame().unwrap();
            let end = matches!(f, Frame::End { .. });
            out.push(f);
            if end {
                return out;
            }
        }
        panic!("no end after 100 frames");
    }

    #[test]
    fn lines_split_on_newline_whatever_the_buffer_size() {
        for buf in [1, 3, 64] {
            assert_eq!(
                frames(b"ab\r\ncd\n\nef", 8, buf),
                [
                    Frame::Line(b"ab\r".to_vec()),
                    Frame::Line(b"cd".to_vec()),
                    Frame::Line(Vec::new()),
                    Frame::End { partial: 2 }
                ]
            );
        }
    }

    #[test]
    fn an_oversized_line_is_skipped_to_its_newline_and_reading_goes_on() {
        for buf in [1, 4, 64] {
            let input = [&[b'x'; 30][..], b"\nok\n"].concat();
            assert_eq!(
                frames(&input, 8, buf),
                [
                    Frame::TooLong { bytes: 30 },
                    Frame::Line(b"ok".to_vec()),
                    Frame::End { partial: 0 }
                ]
            );
        }
    }

    #[test]
    fn a_line_of_exactly_the_limit_passes() {
        let input = [&[b'y'; 8][..], b"\r\n"].concat();
        assert_eq!(
            frames(&input, 8, 3)[0],
            Frame::Line([&[b'y'; 8][..], b"\r"].concat())
        );
    }
}
