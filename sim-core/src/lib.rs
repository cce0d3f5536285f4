#![forbid(unsafe_code)]
//! gossipnet's protocol machines, deterministic simulator and run-folder writer.
//!
//! The seed and peer protocols are sans-IO state machines: they never touch a socket, a
//! clock or a thread. A driver feeds each machine [`node::Input`]s with the time they
//! happened at and does what its [`node::Output`]s ask. The simulator ([`sim::World`]) drives
//! them in virtual time; the `net-real` crate drives the same machines over TCP.
//!
//! The whole driving loop, here with one seed and a peer talking through a hand-made "network"
//! (a queue of frames):
//!
//! ```
//! use rand::SeedableRng;
//! use rand_chacha::ChaCha8Rng;
//! use sim_core::digest::DigestMemo;
//! use sim_core::node::{ConnId, Input, Node, Output};
//! use sim_core::peer::{PeerConfig, PeerNode};
//! use sim_core::seed::{Admission, SeedConfig, SeedNode};
//! use sim_core::time::Time;
//! use sim_core::wire::{decode, Message};
//!
//! let seed_addr = "127.0.0.1:8080".parse().unwrap();
//! let peer_addr = "127.0.0.1:5000".parse().unwrap();
//! // A seed that lists registrations at once (by default it first dials the address back).
//! let cfg = SeedConfig { admission: Admission::Trust, ..SeedConfig::default() };
//! let mut seed = SeedNode::new(seed_addr, cfg, ChaCha8Rng::seed_from_u64(1));
//! let mut peer = PeerNode::new(
//!     peer_addr,
//!     vec![seed_addr],
//!     PeerConfig::default(),
//!     ChaCha8Rng::seed_from_u64(2),
//!     DigestMemo::new(1),
//! );
//! let now = Time::ZERO;
//! seed.handle(now, Input::Start);
//! peer.handle(now, Input::Start);
//! let conn = ConnId::new(1);
//! let mut replies = Vec::new();
//! // Drain the peer: it asks to connect to the seed, then (once connected) writes frames.
//! while let Some(out) = peer.poll_output() {
//!     if let Output::Connect { addr } = out {
//!         assert_eq!(addr, seed_addr);
//!         seed.handle(now, Input::Connected { conn, remote: peer_addr, outbound: false });
//!         peer.handle(now, Input::Connected { conn, remote: seed_addr, outbound: true });
//!     }
//!     if let Output::Send { msg, .. } = out {
//!         // Over the "wire" as text, decoded on the other side.
//!         let msg = decode(msg.encode().as_bytes()).unwrap();
//!         seed.handle(now, Input::Received { conn, msg });
//!         while let Some(out) = seed.poll_output() {
//!             if let Output::Send { msg, .. } = out {
//!                 replies.push(msg.to_string());
//!             }
//!         }
//!     }
//! }
//! assert_eq!(replies, ["registered successfully", "peer list:127.0.0.1#5000"]);
//! ```

pub mod addr;
pub mod digest;
pub mod limits;
pub mod node;
pub mod packed;
pub mod peer;
pub mod prefetch;
pub mod refwire;
pub mod report;
pub mod rng;
pub mod seed;
pub mod sim;
pub mod time;
pub mod topology;
pub mod vecmap;
pub mod wire;
