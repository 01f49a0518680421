//! The server's stdout: a ready line, then one block per `recv(1024)` chunk.
//!
//! ```text
//! I am listening on port 1712
//! FROM: ('127.0.0.1', 50514)
//! MESSAGE: b'Hello server!'
//!
//! ```
//!
//! The trailing space after the address is the tutorial's own
//! `print("FROM:", addr, "")`-style quirk; it is part of the contract.

use std::net::SocketAddr;

use crate::repr::{parse_py_bytes_repr, py_addr_repr, py_bytes_repr};

/// How many bytes the reference server asks for per `recv()` call.
pub const RECV_SIZE: usize = 1024;

/// The line that tells a parent process the server is accepting.
///
/// Parents must wait for this line rather than probe the port: the server
/// accepts exactly one client, so a probe would be taken as that client.
pub fn ready_line(port: u16) -> String {
    format!("I am listening on port {port}\n")
}

/// The port announced by a ready line, if `line` is one.
pub fn parse_ready_line(line: &str) -> Option<u16> {
    line.trim_end_matches(['\r', '\n'])
        .strip_prefix("I am listening on port ")?
        .parse()
        .ok()
}

/// The block the server prints for one received chunk.
pub fn chunk_block(peer: &SocketAddr, data: &[u8]) -> String {
    format!(
        "FROM: {} \nMESSAGE: {}\n\n",
        py_addr_repr(peer),
        py_bytes_repr(data)
    )
}

/// What a server transcript says it received.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Transcript {
    pub port: Option<u16>,
    /// One entry per recv chunk: the peer as printed, and the bytes.
    pub chunks: Vec<(String, Vec<u8>)>,
}

impl Transcript {
    /// All received bytes in order. Chunk boundaries depend on timing, so
    /// comparisons should use this rather than the chunks.
    pub fn received(&self) -> Vec<u8> {
        self.chunks
            .iter()
            .flat_map(|(_, d)| d.iter().copied())
            .collect()
    }
}

/// Why a transcript could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("line {line}: {problem}")]
pub struct TranscriptError {
    pub line: usize,
    pub problem: String,
}

/// Reads a reference-format transcript back.
pub fn parse_transcript(text: &str) -> Result<Transcript, TranscriptError> {
    let mut out = Transcript::default();
    let lines: Vec<&str> = text.split('\n').collect();
    let err = |line: usize, problem: &str| TranscriptError {
        line: line + 1,
        problem: problem.to_string(),
    };
    let mut i = 0;
    if let Some(port) = lines.first().and_then(|l| parse_ready_line(l)) {
        out.port = Some(port);
        i = 1;
    }
    while i < lines.len() {
        if lines[i].is_empty() && i + 1 == lines.len() {
            break;
        }
        let from = lines[i]
            .strip_prefix("FROM: ")
            .and_then(|l| l.strip_suffix(' '))
            .ok_or_else(|| err(i, "expected `FROM: <address> `"))?;
        let message = lines
            .get(i + 1)
            .and_then(|l| l.strip_prefix("MESSAGE: "))
            .ok_or_else(|| err(i + 1, "expected `MESSAGE: b'...'`"))?;
        let data = parse_py_bytes_repr(message)
            .ok_or_else(|| err(i + 1, "MESSAGE is not a Python bytes literal"))?;
        if lines.get(i + 2) != Some(&"") {
            return Err(err(i + 2, "expected an empty line after MESSAGE"));
        }
        out.chunks.push((from.to_string(), data));
        i += 3;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let peer: SocketAddr = "127.0.0.1:50514".parse().unwrap();
        let text = format!(
            "{}{}{}",
            ready_line(1712),
            chunk_block(&peer, b"Hello "),
            chunk_block(&peer, b"server!\n'\"")
        );
        let t = parse_transcript(&text).unwrap();
        assert_eq!(t.port, Some(1712));
        assert_eq!(t.chunks.len(), 2);
        assert_eq!(t.chunks[0].0, "('127.0.0.1', 50514)");
        assert_eq!(t.received(), b"Hello server!\n'\"");
    }

    #[test]
    fn exact_block_format() {
        let peer: SocketAddr = "127.0.0.1:50514".parse().unwrap();
        assert_eq!(
            chunk_block(&peer, b"Hello server!"),
            "FROM: ('127.0.0.1', 50514) \nMESSAGE: b'Hello server!'\n\n"
        );
    }

    #[test]
    fn rejects_missing_trailing_space() {
        let e = parse_transcript("FROM: ('127.0.0.1', 1)\nMESSAGE: b''\n\n").unwrap_err();
        assert_eq!(e.line, 1);
    }

    #[test]
    fn rejects_truncated_block() {
        assert!(parse_transcript("FROM: ('127.0.0.1', 1) \n").is_err());
    }
}
