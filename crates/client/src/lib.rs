//! The tutorial's client as a library, so tests can drive it in-process.
//!
//! It mirrors `python/client.py` call for call: one IPv4 socket, one
//! `connect`, `Sending data...`, `sendall`, close. No retries and no socket
//! options, because either would show up in a capture as a difference.

use std::io::{Read, Write};
use std::net::{SocketAddr, SocketAddrV4};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpSocket;
use tutorial::endpoint::strerror;
use tutorial::AppError;

/// What the client prints once it is connected.
pub const SENDING_LINE: &str = "Sending data...\n";

/// Where the message comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageSource {
    /// Bytes given on the command line, unchanged.
    Inline(Vec<u8>),
    /// A file's bytes, unchanged; `-` is standard input. The path is any
    /// bytes, as the command line gave them (Python's surrogateescape).
    File(std::ffi::OsString),
}

impl MessageSource {
    /// The exact bytes to send. Read before connecting, as Python does, so
    /// an unreadable file never causes a connection.
    pub fn load(&self) -> Result<Vec<u8>, AppError> {
        let unreadable = |path: &std::ffi::OsStr, e: std::io::Error| AppError::MessageFile {
            path: tutorial::repr::py_str_of_os(path),
            reason: strerror(&e),
        };
        match self {
            MessageSource::Inline(bytes) => Ok(bytes.clone()),
            MessageSource::File(path) if path == "-" => {
                let mut data = Vec::new();
                std::io::stdin()
                    .lock()
                    .read_to_end(&mut data)
                    .map_err(|e| unreadable(path, e))?;
                Ok(data)
            }
            MessageSource::File(path) => std::fs::read(path).map_err(|e| unreadable(path, e)),
        }
    }
}

/// Connects once to `addr`, prints [`SENDING_LINE`] to `out`, sends
/// `message` whole and closes.
pub async fn send<W: Write>(
    addr: SocketAddrV4,
    message: &[u8],
    out: &mut W,
) -> Result<(), AppError> {
    let fail = |action, e: std::io::Error| AppError::from_socket(action, addr, &e);
    let socket = TcpSocket::new_v4().map_err(|e| fail("connect to", e))?;
    let mut stream = socket
        .connect(SocketAddr::V4(addr))
        .await
        .map_err(|e| fail("connect to", e))?;
    out.write_all(SENDING_LINE.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| AppError::Stdout(strerror(&e)))?;
    stream
        .write_all(message)
        .await
        .map_err(|e| fail("send to", e))?;
    // Dropping the stream is Python's close(): a FIN, no shutdown() first.
    drop(stream);
    Ok(())
}
