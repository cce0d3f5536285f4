//! The wire protocol: one text message per line (DESIGN.md, "Wire protocol").
//!
//! [`decode`] is strict and total: every byte string maps to a [`Message`] or to a
//! [`WireError`] that names the field and the problem. `decode(encode(m)) == m` for every
//! message, which the property tests check.

use core::fmt;
use std::sync::Arc;

use crate::addr::{AddrError, NodeAddr};
use crate::limits::{FRAME_BYTES_MAX, NEIGHBOURS_MAX};
use crate::time::Time;

/// A protocol timestamp: UNIX seconds with an optional fraction (`1732406400.125`), or in the
/// simulator seconds of virtual time. Its identity is its text, so that a message is forwarded
/// byte for byte and its identity (and so its digest) never changes. A timestamp whose text
/// is the canonical form of a microsecond count (what [`Timestamp::at`] writes: no leading
/// zeros, at most six decimals, no trailing zero) is held as that count, so making, copying
/// and comparing one allocates nothing; any other valid text is kept as it came.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Timestamp(TsRepr);

/// The one representation of a timestamp's text (canonical counts never appear as text), so
/// that derived equality and hashing are those of the text.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
enum TsRepr {
    Micros(u64),
    Text(Box<str>),
}

/// Longest timestamp text accepted.
const TIMESTAMP_BYTES_MAX: usize = 32;

impl Timestamp {
    /// The timestamp of `now` for a node whose wall clock is `now + wall_offset_micros`.
    pub fn at(now: Time, wall_offset_micros: u64) -> Self {
        Timestamp(TsRepr::Micros(now.0.saturating_add(wall_offset_micros)))
    }

    /// Validates timestamp text: decimal digits, optionally `.` and more digits.
    pub fn parse(s: &str) -> Result<Self, &'static str> {
        let (int, frac) = s.split_once('.').unwrap_or((s, "0"));
        let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
        if s.len() > TIMESTAMP_BYTES_MAX {
            Err("longer than 32 bytes")
        } else if !digits(int) || !digits(frac) {
            Err("expected seconds such as 1732406400.125")
        } else {
            Ok(Timestamp(match canonical_micros(s) {
                Some(us) => TsRepr::Micros(us),
                None => TsRepr::Text(s.into()),
            }))
        }
    }

    /// The microsecond count this timestamp is the canonical text of, if it is one (every
    /// timestamp a node makes with [`Timestamp::at`]).
    pub fn micros(&self) -> Option<u64> {
        match self.0 {
            TsRepr::Micros(us) => Some(us),
            TsRepr::Text(_) => None,
        }
    }

    /// The text.
    pub fn as_str(&self) -> std::borrow::Cow<'_, str> {
        match &self.0 {
            TsRepr::Micros(us) => Time(*us).to_string().into(),
            TsRepr::Text(t) => std::borrow::Cow::Borrowed(t),
        }
    }
}

/// `Some(µs)` when `s` (already checked to be digits with an optional fraction) is exactly
/// what `Time(µs)` displays as.
fn canonical_micros(s: &str) -> Option<u64> {
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) if !f.is_empty() && f.len() <= 6 && !f.ends_with('0') => (i, f),
        Some(_) => return None,
        None => (s, ""),
    };
    if int.len() > 1 && int.starts_with('0') {
        return None;
    }
    let secs: u64 = int.parse().ok()?;
    let mut us: u64 = 0;
    for k in 0..6 {
        let d = frac.as_bytes().get(k).map_or(0, |b| u64::from(b - b'0'));
        us = us * 10 + d;
    }
    secs.checked_mul(1_000_000)?.checked_add(us)
}

impl PartialOrd for Timestamp {
    fn partial_cmp(&self, other: &Self) -> Option<core::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Timestamp {
    /// The order of the texts.
    fn cmp(&self, other: &Self) -> core::cmp::Ordering {
        self.as_str().cmp(&other.as_str())
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            TsRepr::Micros(us) => fmt::Display::fmt(&Time(*us), f),
            TsRepr::Text(t) => f.write_str(t),
        }
    }
}

/// A gossip message. Its identity is `TS:ORIGIN_IP:ORIGIN_PORT:BODY`.
///
/// Forwarding shares one allocation (`Arc<Gossip>`) among every copy in a process, and that
/// allocation remembers the dedup handle a [`DigestMemo`](crate::digest::DigestMemo) gave it,
/// so that a peer receiving a copy finds its digest without a look-up.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Gossip {
    /// When the origin created it.
    pub ts: Timestamp,
    /// Who created it.
    pub origin: NodeAddr,
    /// Free text; may hold `:` but never a line break.
    pub body: String,
    pub(crate) memo: crate::digest::MemoCell,
    /// On the reference wire, the message this one re-stamps (see [`Gossip::root`]).
    pub(crate) lineage: Inert<Option<Arc<Gossip>>>,
}

/// A value a message carries that takes part in no comparison, hash or debug output: two
/// messages are equal when their fields on the wire are.
#[derive(Clone, Default)]
pub(crate) struct Inert<T>(pub(crate) T);

impl<T> PartialEq for Inert<T> {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl<T> Eq for Inert<T> {}
impl<T> core::hash::Hash for Inert<T> {
    fn hash<H: core::hash::Hasher>(&self, _: &mut H) {}
}
impl<T> fmt::Debug for Inert<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("_")
    }
}

/// Which wire a node speaks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Wire {
    /// gossipnet's: one message a line (DESIGN.md).
    #[default]
    Line,
    /// The Python original's: frames padded to 1 024 bytes, a bare exchange with seeds,
    /// gossip re-stamped by each forwarder and known by its body ([`crate::refwire`]).
    Reference,
}

impl Wire {
    /// The name on the command line.
    pub const fn name(self) -> &'static str {
        match self {
            Wire::Line => "line",
            Wire::Reference => "reference",
        }
    }
}

impl fmt::Display for Wire {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl core::str::FromStr for Wire {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "line" => Ok(Wire::Line),
            "reference" => Ok(Wire::Reference),
            other => Err(format!(
                "unknown wire {other:?}: expected line or reference"
            )),
        }
    }
}

impl Gossip {
    /// A message created at `ts` by `origin`.
    pub fn new(ts: Timestamp, origin: NodeAddr, body: String) -> Self {
        Gossip {
            ts,
            origin,
            body,
            memo: crate::digest::MemoCell::default(),
            lineage: Inert::default(),
        }
    }

    /// The message as its origin made it: on the reference wire each forwarder re-stamps a
    /// message, and the simulator keeps the original so that deliveries are counted against
    /// the message their origin sent. Itself for any other.
    pub fn root(self: &Arc<Self>) -> &Arc<Gossip> {
        self.lineage.0.as_ref().unwrap_or(self)
    }

    /// The identity that the dedup digest is computed over.
    pub fn identity(&self) -> String {
        format!(
            "{}:{}:{}:{}",
            self.ts, self.origin.ip, self.origin.port, self.body
        )
    }
}

/// Why a peer refused a neighbour connection.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum RefuseReason {
    /// It has no free neighbour slot.
    Full,
    /// It already has (or is setting up) a connection with that peer.
    Duplicate,
    /// The hello named the refusing peer itself.
    SelfConnection,
    /// The node has as many connections open as it allows (`connections_max`).
    Busy,
}

impl RefuseReason {
    /// The reason's word on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            RefuseReason::Full => "full",
            RefuseReason::Duplicate => "duplicate",
            RefuseReason::SelfConnection => "self",
            RefuseReason::Busy => "busy",
        }
    }
}

/// Why a seed refused a registration.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum RegisterRefusal {
    /// The address's IP is not the connection's source IP.
    NotYourAddress,
    /// The address is registered, live, on another connection.
    OtherConnection,
    /// This connection registered another address already.
    OnePerConnection,
    /// The seed dialed the address back and got no liveness reply: nothing listens there.
    Unreachable,
    /// Too many registrations are being checked; try again later.
    Busy,
}

impl RegisterRefusal {
    /// The reason's words on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            RegisterRefusal::NotYourAddress => "not your address",
            RegisterRefusal::OtherConnection => "registered on another connection",
            RegisterRefusal::OnePerConnection => "one registration per connection",
            RegisterRefusal::Unreachable => "unreachable",
            RegisterRefusal::Busy => "busy",
        }
    }
}

/// A `Dead Node` notice.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct DeadNode {
    /// The peer declared dead.
    pub dead: NodeAddr,
    /// When the reporter declared it dead.
    pub ts: Timestamp,
    /// Who declared it dead.
    pub reporter: NodeAddr,
}

/// One entry of a peer list: a registered peer and, if it reported one, its degree.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct ListedPeer {
    /// The peer's listening address.
    pub addr: NodeAddr,
    /// Its neighbour count as last reported to the seed (`degree:` messages); `None` for a
    /// peer that never reported one. Written `IP#PORT#DEGREE`; without it, `IP#PORT`.
    pub degree: Option<u32>,
}

impl ListedPeer {
    /// An entry without a degree, as the reference seeds write them.
    pub const fn plain(addr: NodeAddr) -> Self {
        ListedPeer { addr, degree: None }
    }
}

/// Every message of the protocol.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Message {
    /// `register:IP:PORT` (peer -> seed): add or refresh the listening address.
    Register {
        /// The registering peer's listening address.
        addr: NodeAddr,
    },
    /// `registered successfully` (seed -> peer).
    Registered,
    /// `registration refused:REASON` (seed -> peer).
    RegistrationRefused {
        /// Why.
        reason: RegisterRefusal,
    },
    /// `peer list` (peer -> seed).
    PeerListRequest,
    /// `peer list:IP#PORT:IP#PORT#DEGREE:...` (seed -> peer).
    PeerList {
        /// The registered peers (or a random sample of them).
        peers: Vec<ListedPeer>,
    },
    /// `degree:IP:PORT:DEGREE` (peer -> seed): the peer's current neighbour count, sent by
    /// peers whose topology policy needs degrees (preferential attachment). Not answered.
    Degree {
        /// The reporting peer's listening address (as registered).
        addr: NodeAddr,
        /// Its neighbour count, at most [`NEIGHBOURS_MAX`].
        degree: u32,
    },
    /// `Connection with Peer:IP:PORT` (peer <-> peer): asks for, or accepts, a neighbour link.
    Hello {
        /// The sender's listening address.
        addr: NodeAddr,
    },
    /// `Connection refused:REASON` (peer -> peer).
    Refuse {
        /// Why.
        reason: RefuseReason,
    },
    /// `Liveness Request:TS:IP:PORT` (peer -> peer).
    LivenessRequest {
        /// The requester's timestamp, echoed in the reply.
        ts: Timestamp,
        /// The requester.
        addr: NodeAddr,
    },
    /// `Liveness Reply:TS:IP:PORT:MYIP:MYPORT` (peer -> peer).
    LivenessReply {
        /// The request's timestamp, echoed.
        ts: Timestamp,
        /// The requester, echoed.
        to: NodeAddr,
        /// The replier.
        from: NodeAddr,
    },
    /// `gmessage:TS:ORIGIN_IP:ORIGIN_PORT:BODY` (peer -> peer). Shared so that forwarding
    /// to many neighbours copies a pointer, not the text.
    Gossip(Arc<Gossip>),
    /// `forwarding` (peer -> peer, reference wire): the reference's answer to every gossip
    /// frame, duplicates included. It asks for nothing.
    Forwarding,
    /// `Dead Node:IP:PORT:TS:REPORTER_IP:REPORTER_PORT` (peer -> seed, seed -> peers).
    DeadNode(DeadNode),
}

impl Message {
    /// The message's kind, as named in errors and logs.
    pub const fn kind(&self) -> &'static str {
        match self {
            Message::Register { .. } => "register",
            Message::Registered => "registered",
            Message::RegistrationRefused { .. } => "registration refused",
            Message::PeerListRequest => "peer list request",
            Message::PeerList { .. } => "peer list",
            Message::Degree { .. } => "degree",
            Message::Hello { .. } => "hello",
            Message::Refuse { .. } => "refuse",
            Message::LivenessRequest { .. } => "liveness request",
            Message::LivenessReply { .. } => "liveness reply",
            Message::Gossip(_) => "gossip",
            Message::Forwarding => "forwarding",
            Message::DeadNode(_) => "dead node",
        }
    }

    /// The frame: the message's text and a terminating `\n`.
    pub fn encode(&self) -> String {
        format!("{self}\n")
    }
}

impl fmt::Display for Message {
    /// The message's text, without the newline.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Message::Register { addr } => write!(f, "register:{addr}"),
            Message::Registered => f.write_str("registered successfully"),
            Message::RegistrationRefused { reason } => {
                write!(f, "registration refused:{}", reason.as_str())
            }
            Message::PeerListRequest => f.write_str("peer list"),
            Message::PeerList { peers } => {
                f.write_str("peer list:")?;
                for (i, p) in peers.iter().enumerate() {
                    let sep = if i == 0 { "" } else { ":" };
                    write!(f, "{sep}{}", p.addr.hash_form())?;
                    if let Some(d) = p.degree {
                        write!(f, "#{d}")?;
                    }
                }
                Ok(())
            }
            Message::Degree { addr, degree } => write!(f, "degree:{addr}:{degree}"),
            Message::Hello { addr } => write!(f, "Connection with Peer:{addr}"),
            Message::Refuse { reason } => write!(f, "Connection refused:{}", reason.as_str()),
            Message::LivenessRequest { ts, addr } => write!(f, "Liveness Request:{ts}:{addr}"),
            Message::LivenessReply { ts, to, from } => {
                write!(f, "Liveness Reply:{ts}:{to}:{from}")
            }
            Message::Gossip(g) => {
                let Gossip {
                    ts, origin, body, ..
                } = &**g;
                // The fields of `identity()`, written without building it.
                write!(f, "gmessage:{ts}:{}:{}:{body}", origin.ip, origin.port)
            }
            Message::Forwarding => f.write_str("forwarding"),
            Message::DeadNode(d) => {
                write!(f, "Dead Node:{}:{}:{}", d.dead, d.ts, d.reporter)
            }
        }
    }
}

/// Why a frame did not decode. Each variant names what is wrong.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum WireError {
    /// The frame is longer than [`FRAME_BYTES_MAX`] before its newline.
    TooLong {
        /// Its length (or the length read before giving up).
        bytes: usize,
    },
    /// The frame is not UTF-8.
    NotUtf8 {
        /// Bytes that were valid before the first bad one.
        valid_up_to: usize,
    },
    /// A line break inside the frame.
    EmbeddedLineBreak,
    /// An empty line.
    Empty,
    /// The frame starts with no known message kind.
    UnknownKind {
        /// The start of the frame (at most 40 characters).
        head: String,
    },
    /// A field is missing.
    MissingField {
        /// Message kind.
        kind: &'static str,
        /// Field name.
        field: &'static str,
    },
    /// More fields than the message has.
    ExtraField {
        /// Message kind.
        kind: &'static str,
    },
    /// A field is present but wrong.
    BadField {
        /// Message kind.
        kind: &'static str,
        /// Field name.
        field: &'static str,
        /// The field's text (at most 40 characters).
        value: String,
        /// What is wrong with it.
        problem: String,
    },
}

/// At most 40 characters of `s`, for error messages about hostile input.
fn clip(s: &str) -> String {
    match s.char_indices().nth(40) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_owned(),
    }
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireError::TooLong { bytes } => {
                write!(
                    f,
                    "frame of {bytes} bytes is over the {FRAME_BYTES_MAX}-byte limit"
                )
            }
            WireError::NotUtf8 { valid_up_to } => {
                write!(f, "frame is not UTF-8 (bad byte after {valid_up_to} bytes)")
            }
            WireError::EmbeddedLineBreak => f.write_str("line break inside a frame"),
            WireError::Empty => f.write_str("empty frame"),
            WireError::UnknownKind { head } => write!(f, "unknown message kind in {head:?}"),
            WireError::MissingField { kind, field } => write!(f, "{kind}: missing field {field}"),
            WireError::ExtraField { kind } => write!(f, "{kind}: unexpected extra fields"),
            WireError::BadField {
                kind,
                field,
                value,
                problem,
            } => {
                write!(f, "{kind}: bad {field} {value:?}: {problem}")
            }
        }
    }
}

impl std::error::Error for WireError {}

/// Decodes one frame. A trailing `\n` or `\r\n` is removed first.
pub fn decode(frame: &[u8]) -> Result<Message, WireError> {
    let body = frame.strip_suffix(b"\n").unwrap_or(frame);
    let body = body.strip_suffix(b"\r").unwrap_or(body);
    if body.len() > FRAME_BYTES_MAX {
        return Err(WireError::TooLong { bytes: body.len() });
    }
    let text = core::str::from_utf8(body).map_err(|e| WireError::NotUtf8 {
        valid_up_to: e.valid_up_to(),
    })?;
    if text.contains(['\n', '\r']) {
        return Err(WireError::EmbeddedLineBreak);
    }
    decode_text(text)
}

/// The fields of one message, read left to right.
struct Fields<'a> {
    kind: &'static str,
    rest: Option<&'a str>,
}

impl<'a> Fields<'a> {
    fn new(kind: &'static str, rest: &'a str) -> Self {
        Fields {
            kind,
            rest: Some(rest),
        }
    }

    fn next(&mut self, field: &'static str) -> Result<&'a str, WireError> {
        let missing = WireError::MissingField {
            kind: self.kind,
            field,
        };
        let rest = self.rest.ok_or(missing)?;
        let (head, tail) = match rest.split_once(':') {
            Some((h, t)) => (h, Some(t)),
            None => (rest, None),
        };
        self.rest = tail;
        Ok(head)
    }

    /// Everything left, `:` included (the gossip body).
    fn remainder(&mut self, field: &'static str) -> Result<&'a str, WireError> {
        self.rest.take().ok_or(WireError::MissingField {
            kind: self.kind,
            field,
        })
    }

    fn bad(&self, field: &'static str, value: &str, problem: impl fmt::Display) -> WireError {
        WireError::BadField {
            kind: self.kind,
            field,
            value: clip(value),
            problem: problem.to_string(),
        }
    }

    fn addr(
        &mut self,
        ip_field: &'static str,
        port_field: &'static str,
    ) -> Result<NodeAddr, WireError> {
        let ip = self.next(ip_field)?;
        let ip = NodeAddr::parse_ip(ip).map_err(|e| self.bad(ip_field, ip, e))?;
        let port = self.next(port_field)?;
        let port = NodeAddr::parse_port(port).map_err(|e| self.bad(port_field, port, e))?;
        Ok(NodeAddr::new(ip, port))
    }

    fn ts(&mut self) -> Result<Timestamp, WireError> {
        let ts = self.next("timestamp")?;
        Timestamp::parse(ts).map_err(|e| self.bad("timestamp", ts, e))
    }

    fn end<T>(self, value: T) -> Result<T, WireError> {
        match self.rest {
            None => Ok(value),
            Some(_) => Err(WireError::ExtraField { kind: self.kind }),
        }
    }
}

fn decode_text(text: &str) -> Result<Message, WireError> {
    if text.is_empty() {
        return Err(WireError::Empty);
    }
    match text {
        "registered successfully" => return Ok(Message::Registered),
        "peer list" => return Ok(Message::PeerListRequest),
        "forwarding" => return Ok(Message::Forwarding),
        _ => {}
    }
    let (head, rest) = text
        .split_once(':')
        .ok_or_else(|| WireError::UnknownKind { head: clip(text) })?;
    match head {
        "register" => {
            let mut f = Fields::new("register", rest);
            let addr = f.addr("ip", "port")?;
            f.end(Message::Register { addr })
        }
        "peer list" => decode_peer_list(rest),
        "registration refused" => {
            let f = Fields::new("registration refused", rest);
            let reason = [
                RegisterRefusal::NotYourAddress,
                RegisterRefusal::OtherConnection,
                RegisterRefusal::OnePerConnection,
                RegisterRefusal::Unreachable,
                RegisterRefusal::Busy,
            ]
            .into_iter()
            .find(|r| r.as_str() == rest)
            .ok_or_else(|| {
                f.bad(
                    "reason",
                    rest,
                    "expected not your address, registered on another connection, one \
                     registration per connection, unreachable or busy",
                )
            })?;
            Ok(Message::RegistrationRefused { reason })
        }
        "degree" => {
            let mut f = Fields::new("degree", rest);
            let addr = f.addr("ip", "port")?;
            let d = f.next("degree")?;
            let degree = parse_degree(d).map_err(|e| f.bad("degree", d, e))?;
            f.end(Message::Degree { addr, degree })
        }
        "Connection with Peer" => {
            let mut f = Fields::new("hello", rest);
            let addr = f.addr("ip", "port")?;
            f.end(Message::Hello { addr })
        }
        "Connection refused" => {
            let f = Fields::new("refuse", rest);
            let reason = match rest {
                "full" => RefuseReason::Full,
                "duplicate" => RefuseReason::Duplicate,
                "self" => RefuseReason::SelfConnection,
                "busy" => RefuseReason::Busy,
                other => {
                    return Err(f.bad("reason", other, "expected full, duplicate, self or busy"));
                }
            };
            Ok(Message::Refuse { reason })
        }
        "Liveness Request" => {
            let mut f = Fields::new("liveness request", rest);
            let ts = f.ts()?;
            let addr = f.addr("ip", "port")?;
            f.end(Message::LivenessRequest { ts, addr })
        }
        "Liveness Reply" => {
            let mut f = Fields::new("liveness reply", rest);
            let ts = f.ts()?;
            let to = f.addr("requester ip", "requester port")?;
            let from = f.addr("replier ip", "replier port")?;
            f.end(Message::LivenessReply { ts, to, from })
        }
        "gmessage" => {
            let mut f = Fields::new("gossip", rest);
            let ts = f.ts()?;
            let origin = f.addr("origin ip", "origin port")?;
            let body = f.remainder("body")?.to_owned();
            Ok(Message::Gossip(Arc::new(Gossip::new(ts, origin, body))))
        }
        "Dead Node" => {
            let mut f = Fields::new("dead node", rest);
            let dead = f.addr("dead ip", "dead port")?;
            let ts = f.ts()?;
            let reporter = f.addr("reporter ip", "reporter port")?;
            f.end(Message::DeadNode(DeadNode { dead, ts, reporter }))
        }
        _ => Err(WireError::UnknownKind { head: clip(text) }),
    }
}

/// `IP#PORT` or `IP#PORT#DEGREE` entries separated by `:`; empty entries (a leading or
/// doubled `:`) are skipped, as the reference seeds write `peer list::IP#PORT`.
fn decode_peer_list(rest: &str) -> Result<Message, WireError> {
    let f = Fields::new("peer list", rest);
    let peers = rest
        .split(':')
        .filter(|e| !e.is_empty())
        .map(|e| {
            let (addr, degree) = match e.split('#').count() {
                3 => {
                    // Two `#`: the last field is the degree.
                    let (addr, d) = e.rsplit_once('#').unwrap_or((e, ""));
                    (
                        addr,
                        Some(parse_degree(d).map_err(|p| f.bad("degree", e, p))?),
                    )
                }
                _ => (e, None),
            };
            let addr = NodeAddr::parse_with(addr, '#').map_err(|err| match err {
                AddrError::MissingPort(_) => {
                    f.bad("entry", e, "expected IP#PORT or IP#PORT#DEGREE")
                }
                other => f.bad("entry", e, other),
            })?;
            Ok(ListedPeer { addr, degree })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Message::PeerList { peers })
}

/// A degree field: decimal, at most [`NEIGHBOURS_MAX`].
fn parse_degree(s: &str) -> Result<u32, String> {
    let digits = !s.is_empty() && s.len() <= 4 && s.bytes().all(|b| b.is_ascii_digit());
    match s.parse::<u32>() {
        Ok(d) if digits && d as usize <= NEIGHBOURS_MAX => Ok(d),
        _ => Err(format!(
            "expected a neighbour count from 0 to {NEIGHBOURS_MAX}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> NodeAddr {
        s.parse().unwrap()
    }

    #[test]
    fn reference_frames_decode() {
        let cases = [
            (
                "register:127.0.0.1:5000\n",
                Message::Register {
                    addr: a("127.0.0.1:5000"),
                },
            ),
            ("registered successfully\r\n", Message::Registered),
            ("peer list", Message::PeerListRequest),
            ("peer list:", Message::PeerList { peers: vec![] }),
            (
                "peer list::127.0.0.1#5000:127.0.0.1#5001",
                Message::PeerList {
                    peers: vec![
                        ListedPeer::plain(a("127.0.0.1:5000")),
                        ListedPeer::plain(a("127.0.0.1:5001")),
                    ],
                },
            ),
            (
                "peer list:127.0.0.1#5000#7:127.0.0.1#5001",
                Message::PeerList {
                    peers: vec![
                        ListedPeer {
                            addr: a("127.0.0.1:5000"),
                            degree: Some(7),
                        },
                        ListedPeer::plain(a("127.0.0.1:5001")),
                    ],
                },
            ),
            (
                "degree:127.0.0.1:5000:12",
                Message::Degree {
                    addr: a("127.0.0.1:5000"),
                    degree: 12,
                },
            ),
            (
                "Connection with Peer:10.0.0.2:6001",
                Message::Hello {
                    addr: a("10.0.0.2:6001"),
                },
            ),
            (
                "Connection refused:full",
                Message::Refuse {
                    reason: RefuseReason::Full,
                },
            ),
        ];
        for (frame, want) in cases {
            assert_eq!(decode(frame.as_bytes()), Ok(want), "{frame:?}");
        }
    }

    #[test]
    fn gossip_body_keeps_its_colons() {
        let m = decode(b"gmessage:1732406400.125:127.0.0.1:5000:hello: world").unwrap();
        let Message::Gossip(g) = &m else {
            panic!("not gossip: {m:?}")
        };
        assert_eq!(g.body, "hello: world");
        assert_eq!(g.identity(), "1732406400.125:127.0.0.1:5000:hello: world");
        assert_eq!(
            m.to_string(),
            "gmessage:1732406400.125:127.0.0.1:5000:hello: world"
        );
    }

    #[test]
    fn errors_name_the_field_and_the_problem() {
        let err = |s: &[u8]| decode(s).unwrap_err().to_string();
        assert!(
            err(b"register:1.2.3.999:5").contains("bad ip"),
            "{}",
            err(b"register:1.2.3.999:5")
        );
        assert!(err(b"register:1.2.3.4:70000").contains("bad port"));
        assert!(err(b"register:1.2.3.4").contains("missing field port"));
        assert!(err(b"register:1.2.3.4:5:6").contains("extra"));
        assert!(err(b"Liveness Request:abc:1.2.3.4:5").contains("bad timestamp"));
        assert!(err(b"\xff\xfe").contains("not UTF-8"));
        assert!(err(b"hello there").contains("unknown message kind"));
        assert!(err(b"Connection refused:tired").contains("bad reason"));
        assert!(err(b"peer list:1.2.3.4").contains("expected IP#PORT"));
        assert!(err(b"peer list:1.2.3.4#5#x").contains("bad degree"));
        assert!(err(b"peer list:1.2.3.4#5#1025").contains("0 to 1024"));
        assert!(err(b"peer list:1.2.3.4#5#6#7").contains("bad entry"));
        assert!(err(b"degree:1.2.3.4:5").contains("missing field degree"));
        assert!(err(b"degree:1.2.3.4:5:-1").contains("bad degree"));
        assert!(err(b"degree:1.2.3.4:5:99999").contains("bad degree"));
        assert!(err(b"").contains("empty"));
        assert!(err(b"a\nb").contains("line break"));
        let long = vec![b'x'; FRAME_BYTES_MAX + 1];
        assert!(err(&long).contains("over the"));
    }

    #[test]
    fn timestamps_of_virtual_time_are_valid_wire_timestamps() {
        let ts = Timestamp::at(Time(60_020_000), 0);
        assert_eq!(ts.as_str(), "60.02");
        assert_eq!(Timestamp::parse(&ts.as_str()), Ok(ts));
        assert!(Timestamp::parse("1.").is_err());
        assert!(Timestamp::parse(".5").is_err());
        assert!(Timestamp::parse("-1").is_err());
    }

    #[test]
    fn a_timestamp_is_its_text_whatever_it_is_held_as() {
        for text in [
            "0",
            "5",
            "60.02",
            "1732406400.125",
            "0.000001",
            "18446744073709",
        ] {
            let ts = Timestamp::parse(text).unwrap();
            assert!(ts.micros().is_some(), "{text} is canonical");
            assert_eq!(ts.to_string(), text);
        }
        for text in [
            "05",
            "5.0",
            "5.10",
            "1.1234567",
            "00",
            "99999999999999999999",
        ] {
            let ts = Timestamp::parse(text).unwrap();
            assert_eq!(ts.micros(), None, "{text} is kept as text");
            assert_eq!(ts.to_string(), text);
        }
        assert_eq!(
            Timestamp::parse("60.02"),
            Ok(Timestamp::at(Time(60_020_000), 0))
        );
        assert_ne!(
            Timestamp::parse("60.020"),
            Ok(Timestamp::at(Time(60_020_000), 0))
        );
        let (a, b) = (
            Timestamp::parse("10").unwrap(),
            Timestamp::parse("9.5").unwrap(),
        );
        assert!(a < b, "ordered as text, like the strings they are");
    }
}
