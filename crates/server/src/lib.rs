//! The tutorial's server as a library, so tests can drive it in-process.
//!
//! The binary is a thin wrapper: parse arguments, [`bind`], print the ready
//! line, [`run`]. Everything that shapes what goes on the wire is here, and
//! it deliberately mirrors `python/server.py` call for call.

use std::future::Future;
use std::io::Write;
use std::net::{SocketAddr, SocketAddrV4};

use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpSocket};
use tutorial::endpoint::strerror;
use tutorial::transcript::{chunk_block, RECV_SIZE};
use tutorial::AppError;

/// `socket(AF_INET)`, `bind`, `listen(1)`, as the Python server does.
///
/// Not `TcpListener::bind`: that sets SO_REUSEADDR and a backlog of 1024,
/// and the Python original does neither.
pub fn bind(addr: SocketAddrV4) -> Result<TcpListener, AppError> {
    let fail = |e: std::io::Error| AppError::from_socket("listen on", addr, &e);
    let socket = TcpSocket::new_v4().map_err(fail)?;
    socket.bind(SocketAddr::V4(addr)).map_err(fail)?;
    socket.listen(1).map_err(fail)
}

/// How the server's run ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The client closed and every chunk was printed.
    Served,
    /// `shutdown` completed first.
    Interrupted,
}

/// Accepts exactly one client and writes a transcript block to `out` for
/// every `recv(1024)` chunk until the client closes, then closes.
pub async fn run<W: Write>(
    listener: TcpListener,
    out: &mut W,
    shutdown: impl Future<Output = ()>,
) -> Result<Outcome, AppError> {
    tokio::select! {
        result = serve_one(listener, out) => result.map(|()| Outcome::Served),
        () = shutdown => Ok(Outcome::Interrupted),
    }
}

async fn serve_one<W: Write>(listener: TcpListener, out: &mut W) -> Result<(), AppError> {
    let local = listener.local_addr().ok();
    let (mut stream, peer) = listener.accept().await.map_err(|e| AppError::Socket {
        action: "accept on",
        addr: match local {
            Some(SocketAddr::V4(v4)) => v4,
            _ => SocketAddrV4::new([0, 0, 0, 0].into(), 0),
        },
        reason: strerror(&e),
    })?;
    // Python keeps the listening socket open until exit; so do we, by
    // holding `listener` until the client is done.
    let mut buf = vec![0u8; RECV_SIZE];
    loop {
        let n = stream.read(&mut buf).await.map_err(|e| AppError::Broken {
            peer,
            reason: strerror(&e),
        })?;
        if n == 0 {
            break;
        }
        out.write_all(chunk_block(&peer, &buf[..n]).as_bytes())
            .and_then(|()| out.flush())
            .map_err(|e| AppError::Stdout(strerror(&e)))?;
    }
    drop(stream);
    drop(listener);
    Ok(())
}
