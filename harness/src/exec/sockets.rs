//! The sockets of this thread's network namespace: counted
//! (`/proc/net/sockstat`), listed and the TIME_WAIT ones closed through
//! the kernel's socket diagnostics (`NETLINK_SOCK_DIAG`, what `ss` and
//! `ss -K` use).
//!
//! A worker reuses its namespace from cell to cell only when nothing of
//! the earlier cell is left in it. After a clean exchange the one thing
//! left is the active closer's TIME_WAIT socket, which for 60 s would
//! answer (or, with `tcp_tw_reuse`, be reused by) a later connection on
//! the same 4-tuple: the next SYN could then carry the old connection's
//! sequence space, or the connect fail outright. So the TIME_WAIT sockets
//! are destroyed (`SOCK_DESTROY`, which the kernel allows for TIME_WAIT
//! with CAP_NET_ADMIN), and any other socket that remains (a listener, an
//! orphan still closing, an open connection, a UDP socket) makes the
//! namespace unfit:
//! the worker takes a fresh one. A kernel without `SOCK_DESTROY`
//! (`CONFIG_INET_DIAG_DESTROY`) leaves its TIME_WAIT sockets in place, so
//! there every cell gets a fresh namespace, as before the reuse.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const SOCK_DIAG_BY_FAMILY: u16 = 20;
const SOCK_DESTROY: u16 = 21;
/// `struct nlmsghdr`.
const HEADER_LEN: usize = 16;
/// `struct inet_diag_req_v2`.
const REQUEST_LEN: usize = 56;
/// `struct inet_diag_msg`, the part read here.
const MESSAGE_LEN: usize = 72;
/// `struct inet_diag_sockid` in a request (after family, protocol, ext,
/// pad and the states mask) and in a message (after family, state, timer
/// and retrans).
const REQUEST_SOCKID: std::ops::Range<usize> = 8..56;
const MESSAGE_SOCKID: std::ops::Range<usize> = 4..52;
const TCP_TIME_WAIT: u8 = 6;

/// A socket still in the namespace after its TIME_WAIT ones were
/// cleared: a TCP one by its state and ports, or [`Leftover::OTHER`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leftover {
    /// `AF_INET` or `AF_INET6`.
    pub family: u8,
    /// The kernel's TCP state number (1 ESTABLISHED … 10 LISTEN, 11 CLOSING).
    pub state: u8,
    pub local_port: u16,
    pub remote_port: u16,
}

impl Leftover {
    /// A UDP or raw socket, known from the counts only.
    pub const OTHER: Leftover = Leftover {
        family: 0,
        state: 0,
        local_port: 0,
        remote_port: 0,
    };
}

impl std::fmt::Display for Leftover {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if *self == Leftover::OTHER {
            return write!(f, "a UDP or raw socket");
        }
        const STATES: [&str; 13] = [
            "?",
            "ESTABLISHED",
            "SYN_SENT",
            "SYN_RECV",
            "FIN_WAIT1",
            "FIN_WAIT2",
            "TIME_WAIT",
            "CLOSE",
            "CLOSE_WAIT",
            "LAST_ACK",
            "LISTEN",
            "CLOSING",
            "NEW_SYN_RECV",
        ];
        let state = STATES.get(self.state as usize).copied().unwrap_or("?");
        write!(
            f,
            "{state} {}:{}",
            self.local_port,
            if self.remote_port == 0 {
                "*".to_string()
            } else {
                self.remote_port.to_string()
            }
        )
    }
}

/// One socket as the dump gave it: enough to name it back to the kernel.
struct Listed {
    family: u8,
    state: u8,
    sockid: [u8; 48],
}

impl Listed {
    fn leftover(&self) -> Leftover {
        // inet_diag_sockid starts with the ports, in network byte order.
        let port = |at: usize| u16::from_be_bytes([self.sockid[at], self.sockid[at + 1]]);
        Leftover {
            family: self.family,
            state: self.state,
            local_port: port(0),
            remote_port: port(2),
        }
    }
}

/// What the kernel counts in use in the calling thread's namespace
/// (`/proc/net/sockstat` and `sockstat6`, which are per namespace for
/// these fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct InUse {
    /// TCP, UDP, UDP-Lite and raw sockets, IPv4 and IPv6, TIME_WAIT aside.
    pub sockets: u32,
    /// TCP sockets in TIME_WAIT.
    pub time_wait: u32,
}

/// Reads [`InUse`]: two small files, against a walk of the kernel's
/// tables for a dump.
pub fn in_use() -> io::Result<InUse> {
    let mut counts = InUse::default();
    for file in [
        "/proc/thread-self/net/sockstat",
        "/proc/thread-self/net/sockstat6",
    ] {
        for line in std::fs::read_to_string(file)?.lines() {
            let Some((protocol, fields)) = line.split_once(": ") else {
                continue;
            };
            // "sockets: used" counts every family (the capture's packet
            // socket too), FRAG counts reassembly queues: neither is a
            // socket a cell could have left.
            if matches!(protocol, "sockets" | "FRAG" | "FRAG6") {
                continue;
            }
            let mut words = fields.split_whitespace();
            while let (Some(key), Some(value)) = (words.next(), words.next()) {
                let value: u32 = value.parse().unwrap_or(0);
                match key {
                    "inuse" => counts.sockets += value,
                    "tw" => counts.time_wait += value,
                    _ => {}
                }
            }
        }
    }
    Ok(counts)
}

/// Destroys every TCP socket in TIME_WAIT in the calling thread's network
/// namespace and returns the sockets that remain (none: the namespace
/// holds nothing of an earlier cell). A TIME_WAIT socket the kernel would
/// not destroy is returned too, and a UDP or raw socket as
/// [`Leftover::OTHER`].
///
/// The counts are read first: after a clean cell they show one TIME_WAIT
/// and nothing else, so the kernel's tables are walked only for TIME_WAIT
/// sockets (the listening table, global and large, is skipped), and in
/// full only when something is left to be named.
pub fn clear_time_wait() -> io::Result<Vec<Leftover>> {
    let mut counts = in_use()?;
    if counts.time_wait > 0 {
        let diag = Diag::open()?;
        for family in [libc::AF_INET as u8, libc::AF_INET6 as u8] {
            for socket in diag.dump(family, 1 << TCP_TIME_WAIT)? {
                let _ = diag.destroy(&socket);
            }
        }
        counts = in_use()?;
    }
    if counts == InUse::default() {
        return Ok(Vec::new());
    }
    let mut left = list()?;
    if left.is_empty() {
        left.push(Leftover::OTHER);
    }
    Ok(left)
}

/// The TCP sockets of the calling thread's namespace, by (family, state).
pub fn list() -> io::Result<Vec<Leftover>> {
    let diag = Diag::open()?;
    let mut all = Vec::new();
    for family in [libc::AF_INET as u8, libc::AF_INET6 as u8] {
        all.extend(diag.dump(family, u32::MAX)?.iter().map(Listed::leftover));
    }
    Ok(all)
}

/// How long one receive from sock_diag may wait.
const RECEIVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// A `NETLINK_SOCK_DIAG` socket, in the namespace of the thread that
/// opened it.
struct Diag {
    fd: OwnedFd,
}

impl Diag {
    fn open() -> io::Result<Diag> {
        // SAFETY: socket() returns a new descriptor or -1.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
                libc::NETLINK_SOCK_DIAG,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: fd was just created and is owned by nothing else.
        let diag = Diag {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        };
        // Every wait is bounded: a kernel that never answers (or an
        // answer lost to a full buffer) is an error after this long, not
        // a worker stuck in recv for ever.
        let timeout = libc::timeval {
            tv_sec: RECEIVE_TIMEOUT.as_secs() as libc::time_t,
            tv_usec: 0,
        };
        // SAFETY: SO_RCVTIMEO takes a timeval of this size.
        let r = unsafe {
            libc::setsockopt(
                diag.fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&timeout as *const libc::timeval).cast(),
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            )
        };
        if r != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(diag)
    }

    /// Sends one request: a header and an `inet_diag_req_v2`.
    fn send(
        &self,
        kind: u16,
        flags: u16,
        family: u8,
        states: u32,
        sockid: &[u8; 48],
    ) -> io::Result<()> {
        let mut message = [0u8; HEADER_LEN + REQUEST_LEN];
        message[0..4].copy_from_slice(&((HEADER_LEN + REQUEST_LEN) as u32).to_ne_bytes());
        message[4..6].copy_from_slice(&kind.to_ne_bytes());
        message[6..8].copy_from_slice(&flags.to_ne_bytes());
        message[8..12].copy_from_slice(&1u32.to_ne_bytes());
        let request = &mut message[HEADER_LEN..];
        request[0] = family;
        request[1] = libc::IPPROTO_TCP as u8;
        request[4..8].copy_from_slice(&states.to_ne_bytes());
        request[REQUEST_SOCKID].copy_from_slice(sockid);
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
    fn receive(&self, mut each: impl FnMut(u16, &[u8]) -> io::Result<bool>) -> io::Result<()> {
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
                        format!("sock_diag did not answer within {RECEIVE_TIMEOUT:?}"),
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
                        "truncated sock_diag message",
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

    /// Every TCP socket of `family` in one of `states` (a mask of
    /// `1 << state`).
    fn dump(&self, family: u8, states: u32) -> io::Result<Vec<Listed>> {
        self.send(
            SOCK_DIAG_BY_FAMILY,
            (libc::NLM_F_REQUEST | libc::NLM_F_DUMP) as u16,
            family,
            states,
            &[0; 48],
        )?;
        let mut sockets = Vec::new();
        self.receive(|kind, payload| match kind as i32 {
            libc::NLMSG_DONE => Ok(false),
            libc::NLMSG_ERROR => Err(netlink_error(payload)),
            _ if kind == SOCK_DIAG_BY_FAMILY && payload.len() >= MESSAGE_LEN => {
                sockets.push(Listed {
                    family: payload[0],
                    state: payload[1],
                    sockid: payload[MESSAGE_SOCKID].try_into().expect("48 bytes"),
                });
                Ok(true)
            }
            _ => Ok(true),
        })?;
        Ok(sockets)
    }

    /// Asks the kernel to destroy one socket, named by its full identity
    /// (addresses, ports, interface and cookie, so never another one).
    fn destroy(&self, socket: &Listed) -> io::Result<()> {
        self.send(
            SOCK_DESTROY,
            (libc::NLM_F_REQUEST | libc::NLM_F_ACK) as u16,
            socket.family,
            1 << socket.state,
            &socket.sockid,
        )?;
        let mut outcome = Ok(());
        self.receive(|kind, payload| {
            if kind as i32 == libc::NLMSG_ERROR {
                let e = netlink_error(payload);
                if e.raw_os_error() != Some(0) {
                    outcome = Err(e);
                }
                return Ok(false);
            }
            Ok(true)
        })?;
        outcome
    }
}

/// The error an `NLMSG_ERROR` carries (a negative errno; 0 is an ACK).
fn netlink_error(payload: &[u8]) -> io::Error {
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
            let diag = Diag::open().expect("a sock_diag socket");
            let _ = done.send(diag.receive(|_, _| Ok(true)));
        });
        let outcome = wait
            .recv_timeout(RECEIVE_TIMEOUT * 3)
            .expect("the receive returned within its bound");
        let error = outcome.expect_err("nothing was received");
        assert_eq!(error.kind(), io::ErrorKind::TimedOut, "{error}");
        assert!(error.to_string().contains("did not answer"), "{error}");
    }
}
