//! Every bound in gossipnet, in one place.
//!
//! Names end in their unit or qualifier (`frame_bytes_max`). Relations between limits are
//! checked at compile time so that a change to one cannot silently break another.

/// Longest frame, in bytes, before the terminating newline (DESIGN.md: 64 KiB).
pub const FRAME_BYTES_MAX: usize = 64 * 1024;

/// Longest textual `IP#PORT#DEGREE` entry of a peer list, plus its `:` separator
/// (`255.255.255.255#65535#1024:`).
pub const PEER_LIST_ENTRY_BYTES_MAX: usize = 27;

/// Most entries a seed puts in one `peer list` reply: whatever fits in a frame.
/// A seed that knows more peers answers with a random sample of this size.
pub const PEER_LIST_ENTRIES_MAX: usize =
    (FRAME_BYTES_MAX - "peer list:".len()) / PEER_LIST_ENTRY_BYTES_MAX;

/// Most peers a peer remembers as neighbour candidates (the union of its peer lists).
pub const KNOWN_PEERS_MAX: usize = 4 * PEER_LIST_ENTRIES_MAX;

/// Most seeds a `config.txt` may list.
pub const SEEDS_MAX: usize = 1024;

/// Upper bound on any peer's neighbour capacity, whatever the topology policy computes.
pub const NEIGHBOURS_MAX: usize = 1024;

/// Most connections a node keeps open at once (neighbours, seeds, handshakes in flight).
pub const CONNECTIONS_MAX: usize = NEIGHBOURS_MAX + SEEDS_MAX + HANDSHAKES_MAX;

/// Most connections a seed keeps open at once. A seed holds one connection per registered
/// peer for as long as the peer runs (dead-node notices travel on it), so this bounds the
/// peers a seed can register: with 3 seeds and majority registration, about
/// 3 × 131 072 / 2 peers, beyond the benchmark's 100 000. (It was [`CONNECTIONS_MAX`]
/// before, which silently capped a network at about 3 200 peers: later peers were refused
/// `busy` and stayed alone.)
pub const SEED_CONNECTIONS_MAX: usize = 1 << 17;

/// Most neighbour handshakes a peer has in flight at once.
pub const HANDSHAKES_MAX: usize = 64;

/// Most entries in a peer's seen-set of gossip digests; the oldest go first past this.
pub const SEEN_ENTRIES_MAX: usize = 1 << 20;

/// Most distinct messages whose digest a process keeps memoised.
pub const DIGEST_MEMO_ENTRIES_MAX: usize = 1 << 20;

/// Longest gossip body, in bytes.
pub const GOSSIP_BODY_BYTES_MAX: usize = 4096;

/// Most gossip messages one peer originates in a run (configuration is checked against it).
pub const GOSSIP_COUNT_MAX: u32 = 1_000_000;

/// Most consecutive missed liveness replies that can be configured.
pub const MISSES_MAX: u32 = 1000;

/// Most registration attempts a peer makes per seed before it gives up on that seed.
pub const SEED_ATTEMPTS_MAX: u32 = 8;

const _: () = assert!(PEER_LIST_ENTRIES_MAX * PEER_LIST_ENTRY_BYTES_MAX + 10 <= FRAME_BYTES_MAX);
const _: () = assert!(
    PEER_LIST_ENTRIES_MAX >= 1000,
    "a seed must list a real network"
);
const _: () = assert!(
    GOSSIP_BODY_BYTES_MAX + 64 < FRAME_BYTES_MAX,
    "a gossip frame must fit"
);
const _: () = assert!(HANDSHAKES_MAX <= NEIGHBOURS_MAX);
const _: () = assert!(
    NEIGHBOURS_MAX < 10_000,
    "a degree fits the 4 digits of a list entry"
);
