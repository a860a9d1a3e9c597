//! The `harmony-appliance` process: configuration, CLI, QUIC network, RPC, metrics and the
//! event loop that wires accel, hsm, state and consensus together.
// Unsafe code only where a module allows it and says why (FFI to blst, GMP, libc).
#![deny(unsafe_code)]

pub mod chain;
pub mod cmd;
pub mod committees;
pub mod config;
pub mod directory;
pub mod host;
pub mod lock;
pub mod logging;
pub mod metrics;
pub mod net;
pub mod node;
pub mod peers;
pub mod relay;
pub mod rpc;
pub mod systemd;
pub mod validate;
