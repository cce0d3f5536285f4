#![forbid(unsafe_code)]
//! sim-core
pub mod addr;
pub mod digest;
pub mod limits;
pub mod node;
pub mod peer;
pub mod report;
pub mod seed;
pub mod sim;
pub mod time;
pub mod topology;
pub mod wire;
