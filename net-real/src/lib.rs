#![forbid(unsafe_code)]
//! gossipnet's real backend: the sans-IO machines of `sim-core` over `std::net` TCP.
//!
//! A [`Runtime`] holds what the nodes of one process share (a monotonic clock with the UNIX
//! time of its epoch, the recorder that writes the run folder, the digest memo). Each node
//! started with [`Runtime::spawn_seed`] or [`Runtime::spawn_peer`] is driven by one of the
//! runtime's event loops, one thread per core over non-blocking sockets (DESIGN.md, "The real
//! backend").
//!
//! ```no_run
//! use net_real::{Listen, Runtime, RuntimeOptions};
//! use sim_core::peer::PeerConfig;
//! use sim_core::seed::SeedConfig;
//! use sim_core::sim::{peer_rng, seed_rng};
//!
//! let rt = Runtime::new(RuntimeOptions::default());
//! let seed = rt.spawn_seed(Listen::loopback(0), SeedConfig::default(), seed_rng(1, 0)).unwrap();
//! let peer = rt
//!     .spawn_peer(Listen::loopback(0), vec![seed.addr()], PeerConfig::default(), peer_rng(1, 0))
//!     .unwrap();
//! peer.shutdown();
//! seed.shutdown();
//! let recorder = rt.take_recorder();
//! println!("{} log lines", recorder.log.len());
//! ```

pub mod app;
pub mod config;
mod driver;
pub mod fds;
pub mod frame;
pub mod lab;
mod runtime;
pub mod stats;

pub use config::{ConfigError, parse_config, read_config, resolve};
pub use driver::IoLimits;
pub use runtime::{Clock, Console, Happening, Listen, NodeHandle, Runtime, RuntimeOptions};
pub use stats::DriverFigures;
