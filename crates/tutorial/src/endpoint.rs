//! Where the programs listen or connect, and how they fail.
//!
//! Both Python scripts create `socket(AF_INET, SOCK_STREAM)`, so a host name
//! is resolved to IPv4 only and the first address is used: no fallback to
//! `::1`, no second attempt. The ports must do the same, or a capture would
//! show an extra connection attempt the reference never makes.

use std::fmt;
use std::io;
use std::net::{SocketAddrV4, ToSocketAddrs};

/// Exit code for a runtime failure (refused, in use, unresolvable, unreadable).
/// Python's own exit code for an uncaught exception, kept for parity.
pub const EXIT_FAILURE: i32 = 1;
/// Exit code for a bad command line, as Python's argparse uses.
pub const EXIT_USAGE: i32 = 2;

/// A failure the user can fix, with a one-line message naming the fix.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("invalid port '{value}': {reason}; use a whole number from {min} to 65535")]
    InvalidPort {
        value: String,
        reason: String,
        min: u16,
    },
    #[error("host '{0}' does not resolve to an IPv4 address: check --host, or use 127.0.0.1")]
    Unresolved(String),
    #[error("connection refused by {0}: no server is listening there; start the server first or check --host/--port")]
    Refused(SocketAddrV4),
    #[error("port {} is already in use on {}: stop the other program or choose another --port", .0.port(), .0.ip())]
    AddrInUse(SocketAddrV4),
    #[error("cannot read message file '{path}': {reason}; check --message-file")]
    MessageFile { path: String, reason: String },
    #[error("cannot {action} {addr}: {reason}")]
    Socket {
        action: &'static str,
        addr: SocketAddrV4,
        reason: String,
    },
    #[error("connection from {peer} broke: {reason}")]
    Broken {
        peer: std::net::SocketAddr,
        reason: String,
    },
    #[error("cannot start the async runtime: {0}")]
    Runtime(String),
    #[error("cannot write to stdout: {0}")]
    Stdout(String),
}

impl AppError {
    pub fn exit_code(&self) -> i32 {
        match self {
            AppError::InvalidPort { .. } => EXIT_USAGE,
            _ => EXIT_FAILURE,
        }
    }

    /// Classifies a socket error the way the Python scripts do.
    pub fn from_socket(action: &'static str, addr: SocketAddrV4, err: &io::Error) -> Self {
        match err.kind() {
            io::ErrorKind::ConnectionRefused => AppError::Refused(addr),
            io::ErrorKind::AddrInUse => AppError::AddrInUse(addr),
            _ => AppError::Socket {
                action,
                addr,
                reason: strerror(err),
            },
        }
    }
}

/// The C library's text for an error, without Rust's " (os error N)" suffix,
/// so both languages word the same failure alike.
pub fn strerror(err: &io::Error) -> String {
    let text = err.to_string();
    match text.rfind(" (os error ") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

/// Parses a port the way both programs' `--port` does. The server accepts
/// 0 (an ephemeral port, announced in its ready line); a client cannot
/// connect to port 0, so it passes `min = 1`.
pub fn parse_port(value: &str, min: u16) -> Result<u16, AppError> {
    let invalid = |reason: &str| AppError::InvalidPort {
        value: value.to_string(),
        reason: reason.to_string(),
        min,
    };
    // Like Python's int(): a sign is allowed, and a number too large for any
    // integer type is "out of range", not "not a number".
    let port: i128 = value.trim().parse().map_err(|e: std::num::ParseIntError| {
        use std::num::IntErrorKind::{NegOverflow, PosOverflow};
        match e.kind() {
            PosOverflow | NegOverflow => invalid("out of range"),
            _ => invalid("not a number"),
        }
    })?;
    if port < i128::from(min) || port > 65535 {
        return Err(invalid("out of range"));
    }
    Ok(port as u16)
}

/// The first IPv4 address for `host`, as `getaddrinfo(host, port, AF_INET)`
/// would give Python's `bind`/`connect`.
pub fn resolve_ipv4(host: &str, port: u16) -> Result<SocketAddrV4, AppError> {
    let unresolved = || AppError::Unresolved(host.to_string());
    (host, port)
        .to_socket_addrs()
        .map_err(|_| unresolved())?
        .find_map(|a| match a {
            std::net::SocketAddr::V4(v4) => Some(v4),
            std::net::SocketAddr::V6(_) => None,
        })
        .ok_or_else(unresolved)
}

/// Prints `prog: error: …` on one line, the same shape as the Python scripts.
pub struct ErrorLine<'a>(pub &'a str, pub &'a AppError);

impl fmt::Display for ErrorLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: error: {}", self.0, self.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports() {
        assert_eq!(parse_port("1712", 1).unwrap(), 1712);
        assert_eq!(parse_port("0", 0).unwrap(), 0);
        assert!(parse_port("0", 1).is_err());
        assert!(parse_port("65536", 0).is_err());
        assert!(parse_port("-1", 0)
            .unwrap_err()
            .to_string()
            .contains("out of range"));
        assert!(parse_port("99999999999999999999999999999999999999999", 0)
            .unwrap_err()
            .to_string()
            .contains("out of range"));
        assert!(parse_port("http", 0).is_err());
        assert_eq!(parse_port("x", 1).unwrap_err().exit_code(), EXIT_USAGE);
    }

    #[test]
    fn localhost_is_ipv4_only() {
        let addr = resolve_ipv4("localhost", 1712).unwrap();
        assert!(addr.ip().is_loopback());
    }

    #[test]
    fn unresolvable_host() {
        let e = resolve_ipv4("no-such-host.invalid", 1).unwrap_err();
        assert!(matches!(e, AppError::Unresolved(_)));
        assert_eq!(e.exit_code(), EXIT_FAILURE);
    }
}
