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

/// Why a text is not a Python `int()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntError {
    NotANumber,
    /// A number, but beyond any port (Python's ints have no limit).
    OutOfRange,
}

/// The first code point of each run of ten Unicode decimal digits (general
/// category Nd, Unicode 14.0, the tables of Python 3.11): `int()` reads
/// any of them, `'１７１２'` as 1712. A test holds this list to Python's
/// `unicodedata` on the machine.
pub const DECIMAL_ZEROS: [u32; 66] = [
    0x30, 0x660, 0x6F0, 0x7C0, 0x966, 0x9E6, 0xA66, 0xAE6, 0xB66, 0xBE6, 0xC66, 0xCE6, 0xD66,
    0xDE6, 0xE50, 0xED0, 0xF20, 0x1040, 0x1090, 0x17E0, 0x1810, 0x1946, 0x19D0, 0x1A80, 0x1A90,
    0x1B50, 0x1BB0, 0x1C40, 0x1C50, 0xA620, 0xA8D0, 0xA900, 0xA9D0, 0xA9F0, 0xAA50, 0xABF0, 0xFF10,
    0x104A0, 0x10D30, 0x11066, 0x110F0, 0x11136, 0x111D0, 0x112F0, 0x11450, 0x114D0, 0x11650,
    0x116C0, 0x11730, 0x118E0, 0x11950, 0x11C50, 0x11D50, 0x11DA0, 0x16A60, 0x16AC0, 0x16B50,
    0x1D7CE, 0x1D7D8, 0x1D7E2, 0x1D7EC, 0x1D7F6, 0x1E140, 0x1E2F0, 0x1E950, 0x1FBF0,
];

/// The value of a Unicode decimal digit, as Python's `unicodedata.decimal`.
pub fn decimal_value(c: char) -> Option<u32> {
    let cp = u32::from(c);
    let zero = DECIMAL_ZEROS.partition_point(|z| *z <= cp).checked_sub(1)?;
    let value = cp - DECIMAL_ZEROS[zero];
    (value < 10).then_some(value)
}

/// Python's `int(value.strip(), 10)`: surrounding whitespace (as
/// `str.isspace` has it, which adds the four ASCII separators 0x1C-0x1F to
/// Rust's), one optional sign, then decimal digits of any script, with
/// single underscores between digits.
pub fn python_int(value: &str) -> Result<i128, IntError> {
    let text = value.trim_matches(|c: char| c.is_whitespace() || ('\x1c'..='\x1f').contains(&c));
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
    {
        return Err(IntError::NotANumber);
    }
    let mut number: i128 = 0;
    let mut overflow = false;
    for c in digits.chars().filter(|c| *c != '_') {
        let digit = decimal_value(c).ok_or(IntError::NotANumber)?;
        match number
            .checked_mul(10)
            .and_then(|n| n.checked_add(i128::from(digit)))
        {
            Some(n) => number = n,
            None => overflow = true,
        }
    }
    if overflow {
        return Err(IntError::OutOfRange);
    }
    Ok(if negative { -number } else { number })
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
    let port = python_int(value).map_err(|e| match e {
        IntError::OutOfRange => invalid("out of range"),
        IntError::NotANumber => invalid("not a number"),
    })?;
    if port < i128::from(min) || port > 65535 {
        return Err(invalid("out of range"));
    }
    Ok(port as u16)
}

/// The first IPv4 address for `host`, as `getaddrinfo(host, port, AF_INET)`
/// would give Python's `bind`/`connect`.
///
/// A host that is not UTF-8 (the command line gives bytes) resolves to
/// nothing, as in Python, whose IDNA codec refuses the surrogates
/// `surrogateescape` made of it; it is named as Python names it
/// (`h\udcfest`).
pub fn resolve_ipv4(
    host: impl AsRef<std::ffi::OsStr>,
    port: u16,
) -> Result<SocketAddrV4, AppError> {
    let host = host.as_ref();
    let unresolved = || AppError::Unresolved(crate::repr::py_str_of_os(host));
    let host = host.to_str().ok_or_else(unresolved)?;
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
