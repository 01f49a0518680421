//! A netlink socket to the kernel: how the harness asks it about a
//! namespace without starting a program (its TCP sockets through
//! sock_diag, its nf_tables tables through nfnetlink). Every wait is
//! bounded: a kernel that never answers (or an answer lost to a full
//! buffer) is an error after [`RECEIVE_TIMEOUT`], never a worker stuck in
//! `recv`.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

/// `struct nlmsghdr`: length, type, flags, sequence number, port id.
pub const HEADER_LEN: usize = 16;

/// How long a receive waits for the kernel.
pub const RECEIVE_TIMEOUT: Duration = Duration::from_secs(2);

/// A netlink socket of one protocol, in the namespace of the thread that
/// opened it.
pub struct Netlink {
    fd: OwnedFd,
    /// The protocol in words, for errors ("sock_diag").
    what: &'static str,
}

impl Netlink {
    pub fn open(protocol: libc::c_int, what: &'static str) -> io::Result<Netlink> {
        // SAFETY: socket() returns a new descriptor or -1.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
                protocol,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd was just created and is owned by nothing else.
        let socket = Netlink {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
            what,
        };
        let timeout = libc::timeval {
            tv_sec: RECEIVE_TIMEOUT.as_secs() as libc::time_t,
            tv_usec: 0,
        };
        // SAFETY: SO_RCVTIMEO takes a timeval of this size.
        let r = unsafe {
            libc::setsockopt(
                socket.fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&timeout as *const libc::timeval).cast(),
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(socket)
    }

    /// Sends one message: a header of `kind` and `flags`, then `payload`.
    pub fn send(&self, kind: u16, flags: u16, payload: &[u8]) -> io::Result<()> {
        let mut message = Vec::with_capacity(HEADER_LEN + payload.len());
        message.extend_from_slice(&((HEADER_LEN + payload.len()) as u32).to_ne_bytes());
        message.extend_from_slice(&kind.to_ne_bytes());
        message.extend_from_slice(&flags.to_ne_bytes());
        message.extend_from_slice(&1u32.to_ne_bytes());
        message.extend_from_slice(&0u32.to_ne_bytes());
        message.extend_from_slice(payload);
        // SAFETY: a buffer of the length given; the kernel is the peer
        // (an unbound netlink socket sends to it).
        let sent = unsafe {
            libc::send(
                self.fd.as_raw_fd(),
                message.as_ptr().cast(),
                message.len(),
                0,
            )
        };
        if sent < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Receives answers, calling `each` with every message's type and
    /// payload, until `each` returns false (the exchange is over).
    pub fn receive(&self, mut each: impl FnMut(u16, &[u8]) -> io::Result<bool>) -> io::Result<()> {
        let mut buffer = vec![0u8; 32 * 1024];
        loop {
            // SAFETY: reads into a buffer of the length given.
            let n = unsafe {
                libc::recv(
                    self.fd.as_raw_fd(),
                    buffer.as_mut_ptr().cast(),
                    buffer.len(),
                    0,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                if e.kind() == io::ErrorKind::WouldBlock {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("{} did not answer within {RECEIVE_TIMEOUT:?}", self.what),
                    ));
                }
                return Err(e);
            }
            let mut rest = &buffer[..n as usize];
            while rest.len() >= HEADER_LEN {
                let len = u32::from_ne_bytes(rest[0..4].try_into().expect("4 bytes")) as usize;
                let kind = u16::from_ne_bytes(rest[4..6].try_into().expect("2 bytes"));
                if len < HEADER_LEN || len > rest.len() {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("truncated {} message", self.what),
                    ));
                }
                if !each(kind, &rest[HEADER_LEN..len])? {
                    return Ok(());
                }
                // Messages are aligned to 4 bytes.
                rest = &rest[((len + 3) & !3).min(rest.len())..];
            }
        }
    }
}

/// The error an `NLMSG_ERROR` carries (a negative errno; 0 is an ACK).
pub fn error(payload: &[u8]) -> io::Error {
    let code = payload
        .get(0..4)
        .map(|b| i32::from_ne_bytes(b.try_into().expect("4 bytes")))
        .unwrap_or(-libc::EPROTO);
    io::Error::from_raw_os_error(-code)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A receive nothing answers ends with an error within its bound,
    /// never blocks for ever (no request is sent, so the kernel is
    /// silent).
    #[test]
    fn a_receive_the_kernel_never_answers_times_out() {
        let (done, wait) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let socket =
                Netlink::open(libc::NETLINK_SOCK_DIAG, "sock_diag").expect("a sock_diag socket");
            let _ = done.send(socket.receive(|_, _| Ok(true)));
        });
        let outcome = wait
            .recv_timeout(RECEIVE_TIMEOUT * 3)
            .expect("the receive returned within its bound");
        let error = outcome.expect_err("nothing was received");
        assert_eq!(error.kind(), io::ErrorKind::TimedOut, "{error}");
        assert!(
            error.to_string().contains("sock_diag did not answer"),
            "{error}"
        );
    }
}
