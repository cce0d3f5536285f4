//! The reference implementation's wire (`--wire reference`): what the Python original puts
//! on its sockets, and a tolerant reading of it.
//!
//! The original has no framing of its own. A peer pads each frame it sends to another peer
//! (and each `Dead Node` report) with spaces to 1 024 bytes, sends no newline, and reads with
//! one `recv(1024)` a frame. The exchange with a seed (`register:IP:PORT`, `peer list`,
//! `registered successfully`, `peer list::IP#PORT:...`) is sent bare, one message a `send`,
//! each side waiting for the other's answer. Its nodes call themselves `localhost`.
//!
//! [`Framer`] cuts such a byte stream into frames without trusting `recv` boundaries:
//! - padding is skipped wherever a frame would start, so the original's 1 031-byte hello
//!   (padded before its address was filled in) and its forwards that outgrow 1 024 bytes
//!   (re-stamped with a longer header) leave the stream aligned;
//! - a padded kind is a 1 024-byte window (a space in a body cannot be told from padding, so
//!   a short read waits for the rest);
//! - a bare kind (the seed exchange) is what is there once the socket is drained, or its
//!   fixed text when something follows it.
//!
//! [`encode`] writes a message as the original would (127.0.0.1 is `localhost`, the name
//! the original's seeds list and match dead-node reports against), with one refusal: a
//! frame is never longer than 1 024 bytes because of a re-stamp (the body's old padding is
//! dropped before padding again).
//! [`decode`] reads `localhost` as 127.0.0.1 and keeps a gossip body as received, padding
//! included: that text is the original's message identity ([`reference_identity`]).

use std::borrow::Cow;
use std::sync::Arc;

use crate::wire::{Gossip, Message, WireError};

/// The size of a padded frame.
pub const FRAME_BYTES: usize = 1024;

/// Whether the original pads `msg`: every frame between peers and the dead-node report; not
/// the bare exchange with a seed.
pub fn is_padded(msg: &Message) -> bool {
    !matches!(
        msg,
        Message::Register { .. }
            | Message::Registered
            | Message::RegistrationRefused { .. }
            | Message::PeerListRequest
            | Message::PeerList { .. }
            | Message::Degree { .. }
    )
}

/// Appends `msg` as the original's wire has it: bare, or padded with spaces to
/// [`FRAME_BYTES`]. A peer list has a leading empty field (`peer list::IP#PORT:...`, which
/// the original's peers read from the third field on) and no degrees; a gossip body loses
/// the padding it came with before the frame is padded again.
pub fn encode(msg: &Message, out: &mut Vec<u8>) {
    use std::io::Write;
    let start = out.len();
    // Writing into a Vec cannot fail.
    let _ = match msg {
        Message::PeerList { peers } => {
            // The original reads the list with one `recv(1024)`: the entries that would
            // pass that are left out rather than cut.
            out.extend_from_slice(b"peer list:");
            for p in peers {
                let entry = format!(":{}#{}", Host(p.addr), p.addr.port);
                if out.len() - start + entry.len() > FRAME_BYTES {
                    break;
                }
                out.extend_from_slice(entry.as_bytes());
            }
            Ok(())
        }
        Message::Register { addr } => write!(out, "register:{}:{}", Host(*addr), addr.port),
        Message::Hello { addr } => {
            write!(out, "Connection with Peer:{}:{}", Host(*addr), addr.port)
        }
        Message::LivenessRequest { ts, addr } => {
            write!(
                out,
                "Liveness Request:{}:{}:{}",
                Ts(ts),
                Host(*addr),
                addr.port
            )
        }
        Message::LivenessReply { ts, to, from } => write!(
            out,
            "Liveness Reply:{}:{}:{}:{}:{}",
            Ts(ts),
            Host(*to),
            to.port,
            Host(*from),
            from.port
        ),
        Message::DeadNode(d) => write!(
            out,
            "Dead Node:{}:{}:{}:{}:{}",
            Host(d.dead),
            d.dead.port,
            Ts(&d.ts),
            Host(d.reporter),
            d.reporter.port
        ),
        Message::Gossip(g) => write!(
            out,
            "gmessage:{}:{}:{}:{}",
            Ts(&g.ts),
            Host(g.origin),
            g.origin.port,
            g.body.trim_end_matches(' ')
        ),
        other => write!(out, "{other}"),
    };
    if is_padded(msg) {
        let len = out.len() - start;
        out.resize(start + len.max(FRAME_BYTES), b' ');
    }
}

/// An address's host as the original names it: 127.0.0.1 is `localhost` (what its nodes
/// call themselves and so what its seeds list and match reports against), any other the
/// dotted IP.
struct Host(crate::addr::NodeAddr);

impl core::fmt::Display for Host {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        if self.0.ip.is_loopback() && self.0.ip.octets() == [127, 0, 0, 1] {
            f.write_str("localhost")
        } else {
            write!(f, "{}", self.0.ip)
        }
    }
}

/// A timestamp as gossipnet writes it on the reference wire: with all six decimals. The
/// original writes Python's shortest form (12 to 17 characters) and re-stamps each forward
/// with its own time: a forwarder whose header is longer than the one it received sends
/// more than 1 024 bytes, which its neighbours' `recv(1024)` cuts. The longest form makes
/// gossipnet's headers at least as long as the original's, so its frames never grow when
/// an original peer re-stamps them.
struct Ts<'a>(&'a crate::wire::Timestamp);

impl core::fmt::Display for Ts<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0.micros() {
            Some(us) => write!(f, "{}.{:06}", us / 1_000_000, us % 1_000_000),
            None => write!(f, "{}", self.0),
        }
    }
}

/// Decodes one frame of the reference wire (from [`Framer`]): padding and NULs at its end
/// are dropped, except from a gossip body, which keeps them (the original hashes the body as
/// received); `localhost` stands for 127.0.0.1.
pub fn decode(frame: &[u8]) -> Result<Message, WireError> {
    let text = core::str::from_utf8(frame).map_err(|e| WireError::NotUtf8 {
        valid_up_to: e.valid_up_to(),
    })?;
    let text = text.trim_start_matches([' ', '\0']);
    let gossip = text.starts_with("gmessage:");
    let text = if gossip {
        text.trim_end_matches('\0')
    } else {
        text.trim_end_matches([' ', '\0'])
    };
    if text.contains(['\n', '\r']) {
        // A newline-framed peer: the frame is this line (what follows is read as more).
        return crate::wire::decode(text.as_bytes());
    }
    crate::wire::decode(localhost_as_loopback(text).as_bytes())
}

/// `text` with every address field `localhost` (as in `register:localhost:5000` or
/// `peer list::localhost#5000`) written 127.0.0.1; a gossip body is left as it is.
fn localhost_as_loopback(text: &str) -> Cow<'_, str> {
    if !text.contains("localhost") {
        return Cow::Borrowed(text);
    }
    // A gossip frame's fields are kind, time, IP, port, then the body (which may hold `:`).
    let fields = if text.starts_with("gmessage:") {
        5
    } else {
        usize::MAX
    };
    let mut out = String::with_capacity(text.len() + 16);
    for (i, field) in text.splitn(fields, ':').enumerate() {
        if i > 0 {
            out.push(':');
        }
        let last = i + 1 == fields;
        match field.strip_prefix("localhost") {
            Some(rest) if !last && (rest.is_empty() || rest.starts_with('#')) => {
                out.push_str("127.0.0.1");
                out.push_str(rest);
            }
            _ => out.push_str(field),
        }
    }
    Cow::Owned(out)
}

/// The original's message identity of `g`: its body as a node of the original receives it,
/// padding included. A body that came off the reference wire already holds its padding; one
/// made here (an originated message, or any in the simulator) is padded as [`encode`]
/// would pad the frame that carries it. Two messages with the same body and headers of the
/// same length are one message to the original, whoever sent them.
pub fn reference_identity(g: &Gossip) -> Cow<'_, str> {
    if g.body.ends_with(' ') {
        return Cow::Borrowed(&g.body);
    }
    let header = format!(
        "gmessage:{}:{}:{}:",
        Ts(&g.ts),
        Host(g.origin),
        g.origin.port
    )
    .len();
    let pad = FRAME_BYTES.saturating_sub(header + g.body.len());
    let mut id = String::with_capacity(g.body.len() + pad);
    id.push_str(&g.body);
    id.extend(std::iter::repeat_n(' ', pad));
    Cow::Owned(id)
}

/// The gossip `g` re-stamped by the node that forwards it, as the original does: the
/// forwarder's time and address, the body as received (its padding is dropped on the wire
/// by [`encode`]).
pub fn restamped(g: &Arc<Gossip>, ts: crate::wire::Timestamp, by: crate::addr::NodeAddr) -> Gossip {
    let mut next = Gossip::new(ts, by, g.body.clone());
    next.lineage = crate::wire::Inert(Some(Arc::clone(g.root())));
    next
}

/// Bare messages of fixed text, which may be followed by more in one read.
const FIXED_BARE: [&[u8]; 2] = [b"registered successfully", b"peer list"];

/// Kinds the original sends bare (their end is the end of what was sent).
const BARE_HEADS: [&[u8]; 5] = [
    b"register:",
    b"registration refused:",
    b"peer list",
    b"degree:",
    b"registered successfully",
];

/// Cuts a byte stream of the reference wire into frames (see the module docs).
#[derive(Debug, Default)]
pub struct Framer {
    buf: Vec<u8>,
}

impl Framer {
    /// Bytes held, not yet a frame.
    pub fn held(&self) -> usize {
        self.buf.len()
    }

    /// Appends bytes read from the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next whole frame, if there is one. `drained` says that the socket had nothing
    /// more when it was last read: a bare message, or a frame padded short, then ends where
    /// the bytes end.
    pub fn next_frame(&mut self, drained: bool) -> Option<Vec<u8>> {
        let skip = self
            .buf
            .iter()
            .position(|&b| b != b' ' && b != b'\0')
            .unwrap_or(self.buf.len());
        self.buf.drain(..skip);
        if self.buf.is_empty() {
            return None;
        }
        let bare = BARE_HEADS.iter().any(|h| self.buf.starts_with(h));
        if bare {
            // A fixed text followed by more is cut there (answers that came together).
            for fixed in FIXED_BARE {
                if self.buf.len() > fixed.len()
                    && self.buf.starts_with(fixed)
                    && self.buf[fixed.len()] != b':'
                {
                    return Some(self.buf.drain(..fixed.len()).collect());
                }
            }
            // Padding after a bare message ends it (a sender that pads everything).
            if let Some(end) = self.buf.windows(2).position(|w| w == b"  ") {
                return Some(self.buf.drain(..end).collect());
            }
        }
        if self.buf.len() >= FRAME_BYTES {
            return Some(self.buf.drain(..FRAME_BYTES).collect());
        }
        if drained && bare {
            return Some(std::mem::take(&mut self.buf));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::NodeAddr;
    use crate::wire::{DeadNode, ListedPeer, Timestamp};

    fn a(s: &str) -> NodeAddr {
        s.parse().unwrap()
    }

    fn padded(text: &str) -> Vec<u8> {
        let mut v = text.as_bytes().to_vec();
        v.resize(FRAME_BYTES.max(v.len()), b' ');
        v
    }

    fn gossip(ts: &str, origin: &str, body: &str) -> Arc<Gossip> {
        Arc::new(Gossip::new(
            Timestamp::parse(ts).unwrap(),
            a(origin),
            body.into(),
        ))
    }

    #[test]
    fn the_seed_exchange_is_bare_and_peer_frames_are_padded() {
        let enc = |m: &Message| {
            let mut v = Vec::new();
            encode(m, &mut v);
            v
        };
        assert_eq!(
            enc(&Message::Register {
                addr: a("127.0.0.1:5000")
            }),
            b"register:localhost:5000"
        );
        assert_eq!(enc(&Message::PeerListRequest), b"peer list");
        assert_eq!(enc(&Message::Registered), b"registered successfully");
        let list = Message::PeerList {
            peers: vec![
                ListedPeer::plain(a("127.0.0.1:5000")),
                ListedPeer {
                    addr: a("127.0.0.1:5001"),
                    degree: Some(3),
                },
            ],
        };
        assert_eq!(enc(&list), b"peer list::localhost#5000:localhost#5001");
        assert_eq!(
            enc(&Message::PeerList { peers: vec![] }),
            b"peer list:",
            "an empty list is the bare tag"
        );
        let hello = enc(&Message::Hello {
            addr: a("127.0.0.1:5000"),
        });
        // 127.0.0.1 is `localhost`, as the original's nodes call themselves; others keep
        // their address.
        assert_eq!(
            enc(&Message::Register {
                addr: a("10.1.2.3:5000")
            }),
            b"register:10.1.2.3:5000"
        );
        assert_eq!(hello, padded("Connection with Peer:localhost:5000"));
        let dead = enc(&Message::DeadNode(DeadNode {
            dead: a("127.0.0.1:5003"),
            ts: Timestamp::parse("1739612390.654321").unwrap(),
            reporter: a("127.0.0.1:5000"),
        }));
        assert_eq!(
            dead,
            padded("Dead Node:localhost:5003:1739612390.654321:localhost:5000")
        );
        assert_eq!(enc(&Message::Forwarding), padded("forwarding"));
    }

    #[test]
    fn a_forward_drops_the_old_padding_and_is_padded_again_to_exactly_1024() {
        let g = gossip("1739612345.5", "127.0.0.1:5001", "message 1");
        let received = padded(&format!("gmessage:{}:127.0.0.1:5001:message 1", g.ts));
        let Ok(Message::Gossip(got)) = decode(&received) else {
            panic!("not gossip")
        };
        assert!(
            got.body.starts_with("message 1 "),
            "the body keeps its padding"
        );
        // Re-stamped by a node whose header is longer: the original would send 1 031 bytes.
        let fwd = restamped(
            &got,
            Timestamp::parse("1739612345.123456").unwrap(),
            a("127.0.0.1:50001"),
        );
        let mut out = Vec::new();
        encode(&Message::Gossip(Arc::new(fwd)), &mut out);
        assert_eq!(
            out,
            padded("gmessage:1739612345.123456:localhost:50001:message 1")
        );
    }

    #[test]
    fn localhost_reads_as_loopback_except_in_a_gossip_body() {
        assert_eq!(
            decode(b"register:localhost:5000"),
            Ok(Message::Register {
                addr: a("127.0.0.1:5000")
            })
        );
        assert_eq!(
            decode(b"peer list::localhost#5000:localhost#5001"),
            Ok(Message::PeerList {
                peers: vec![
                    ListedPeer::plain(a("127.0.0.1:5000")),
                    ListedPeer::plain(a("127.0.0.1:5001"))
                ]
            })
        );
        let frame = padded("gmessage:1739612345.5:localhost:5000:hi localhost:localhost");
        let Ok(Message::Gossip(g)) = decode(&frame) else {
            panic!("not gossip")
        };
        assert_eq!(g.origin, a("127.0.0.1:5000"));
        assert_eq!(g.body.trim_end(), "hi localhost:localhost");
        assert_eq!(
            decode(&padded(
                "Liveness Reply:1739612345.5:localhost:5000:localhost:5001"
            )),
            Ok(Message::LivenessReply {
                ts: Timestamp::parse("1739612345.5").unwrap(),
                to: a("127.0.0.1:5000"),
                from: a("127.0.0.1:5001"),
            })
        );
    }

    #[test]
    fn the_identity_is_the_padded_body_whoever_sent_it() {
        let x = gossip("1739612345.123456", "127.0.0.1:5000", "message 1");
        let y = gossip("1739612999.654321", "127.0.0.1:5001", "message 1");
        // Times are written with six decimals: a time's own length never tells two apart.
        let z = gossip("1739612999.5", "127.0.0.1:5001", "message 1");
        let w = gossip("1739612999.5", "127.0.0.1:50001", "message 1");
        assert_eq!(reference_identity(&x), reference_identity(&y));
        assert_eq!(reference_identity(&x), reference_identity(&z));
        assert_ne!(
            reference_identity(&x),
            reference_identity(&w),
            "a longer header (a five-digit port) pads the body less"
        );
        let mut frame = Vec::new();
        encode(&Message::Gossip(z), &mut frame);
        assert!(frame.starts_with(b"gmessage:1739612999.500000:localhost:5001:message 1 "));
        let header = "gmessage:1739612345.123456:127.0.0.1:5000:".len();
        assert_eq!(reference_identity(&x).len(), FRAME_BYTES - header);
        // As received off the wire, it is the body's text with its padding.
        let frame = padded("gmessage:1739612345.123456:localhost:5000:message 1");
        let Ok(Message::Gossip(g)) = decode(&frame) else {
            panic!("not gossip")
        };
        assert_eq!(reference_identity(&g), reference_identity(&x));
    }

    fn frames(chunks: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut f = Framer::default();
        let mut out = Vec::new();
        for c in chunks {
            f.push(c);
            while let Some(fr) = f.next_frame(true) {
                out.push(fr);
            }
        }
        out
    }

    #[test]
    fn the_framer_realigns_after_the_originals_overlong_frames() {
        // The original's hello is padded before its address is filled in: 1 031 bytes.
        let mut hello = padded("Connection with Peer:{0}:{1}");
        let s = String::from_utf8(hello.clone()).unwrap();
        hello = s
            .replacen("{0}", "localhost", 1)
            .replacen("{1}", "5000", 1)
            .into_bytes();
        assert_eq!(hello.len(), 1031);
        let g = padded("gmessage:1739612345.5:localhost:5000:message 1");
        let mut stream = hello.clone();
        stream.extend_from_slice(&g);
        stream.extend_from_slice(&g);
        // Read in 1 024-byte chunks, as the original reads, and in odd ones.
        for size in [1024, 1000, 7, 4096] {
            let chunks: Vec<&[u8]> = stream.chunks(size).collect();
            let got = frames(&chunks);
            let msgs: Vec<_> = got.iter().map(|f| decode(f).map(|m| m.kind())).collect();
            assert_eq!(
                msgs,
                vec![Ok("hello"), Ok("gossip"), Ok("gossip")],
                "chunks of {size}"
            );
        }
    }

    #[test]
    fn bare_answers_that_come_together_are_cut_apart() {
        let got = frames(&[b"registered successfullypeer list::localhost#5000"]);
        assert_eq!(
            got,
            vec![
                b"registered successfully".to_vec(),
                b"peer list::localhost#5000".to_vec()
            ]
        );
        // A bare message waits for the socket to drain: its end is the end of the send.
        let mut f = Framer::default();
        f.push(b"register:localhost:50");
        assert_eq!(f.next_frame(false), None);
        f.push(b"00");
        assert_eq!(
            f.next_frame(true),
            Some(b"register:localhost:5000".to_vec())
        );
        // A padded frame waits for its 1 024 bytes, whatever the reads.
        let frame = padded("gmessage:1739612345.5:localhost:5000:message 1");
        let mut f = Framer::default();
        f.push(&frame[..500]);
        assert_eq!(f.next_frame(true), None);
        f.push(&frame[500..]);
        assert_eq!(f.next_frame(true), Some(frame));
    }

    #[test]
    fn a_peer_list_fits_in_one_read_of_the_original() {
        let peers = (0..100)
            .map(|i| ListedPeer::plain(a(&format!("127.0.0.1:{}", 50000 + i))))
            .collect();
        let mut out = Vec::new();
        encode(&Message::PeerList { peers }, &mut out);
        assert!(out.len() <= FRAME_BYTES, "{}", out.len());
        let Ok(Message::PeerList { peers }) = decode(&out) else {
            panic!("not a list")
        };
        assert_eq!(peers.len(), (FRAME_BYTES - "peer list:".len()) / 16);
    }
}
