#![forbid(unsafe_code)]
//! Runs, sweeps and benchmarks over gossipnet's simulator. The `gossipnet` binary is a thin
//! layer over these functions; they may read the wall clock (sim-core never does), but only to
//! report how long things took.

pub mod bench;
pub mod campaign;
pub mod experiment;
pub mod fit;
pub mod flood;
pub mod graph;
pub mod plot;
pub mod pool;
pub mod replay;
pub mod run;
pub mod scenario;
pub mod sweep;
