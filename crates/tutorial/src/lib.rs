//! The contract the tutorial's two Python programs define, in one place.
//!
//! The Rust ports must be indistinguishable from `python/server.py` and
//! `python/client.py` by their stdout and exit codes, and the harness must
//! read the servers' transcripts back. Keeping the Python formatting rules,
//! the transcript grammar and the error/exit-code contract here means the
//! server, the client and the harness cannot drift apart from each other.

/// The tutorial's port: where `server.py` listens and `client.py` connects.
pub const DEFAULT_PORT: u16 = 1712;

pub mod cli;
pub mod endpoint;
pub mod repr;
pub mod transcript;

pub use endpoint::{parse_port, resolve_ipv4, AppError, EXIT_FAILURE, EXIT_USAGE};
pub use repr::{py_addr_repr, py_bytes_repr};
