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

use super::netlink::{self, Netlink};

const SOCK_DIAG_BY_FAMILY: u16 = 20;
const SOCK_DESTROY: u16 = 21;
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

/// A `NETLINK_SOCK_DIAG` socket, in the namespace of the thread that
/// opened it.
struct Diag(Netlink);

impl Diag {
    fn open() -> io::Result<Diag> {
        Netlink::open(libc::NETLINK_SOCK_DIAG, "sock_diag").map(Diag)
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
        let mut request = [0u8; REQUEST_LEN];
        request[0] = family;
        request[1] = libc::IPPROTO_TCP as u8;
        request[4..8].copy_from_slice(&states.to_ne_bytes());
        request[REQUEST_SOCKID].copy_from_slice(sockid);
        self.0.send(kind, flags, &request)
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
        self.0.receive(|kind, payload| match kind as i32 {
            libc::NLMSG_DONE => Ok(false),
            libc::NLMSG_ERROR => Err(netlink::error(payload)),
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
        self.0.receive(|kind, payload| {
            if kind as i32 == libc::NLMSG_ERROR {
                let e = netlink::error(payload);
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
