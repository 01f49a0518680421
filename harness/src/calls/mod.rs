//! The socket calls a program makes, the level below the wire: recorded
//! with strace, read into [`Call`]s, compared with the reference's in
//! `verdict::calls`.
//!
//! The first tutorial's quiz is the order of these calls: socket, bind,
//! listen, accept, recv on the server; socket, connect, send, close on the
//! client. None of them shows on the wire (a `listen(128)` and a
//! `listen(1)` send the same SYN/ACK), so a port that switched to
//! `TcpListener::bind` (SO_REUSEADDR, backlog 1024) would pass every wire
//! check. This level catches it.
//!
//! Only calls on TCP sockets are kept: strace's `-yy` names every
//! descriptor, so files, pipes, stdio and the AF_UNIX socket of nscd are
//! left out by what they are, not by guessing from descriptor numbers.
//! How the calls are compared is the policy's business (the call fields
//! of `policy.rs`); this module only says what was called.

pub mod strace;

use std::fmt;

/// Which socket a call is on, by what the program did with it.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// `listen` was called on it.
    Listener,
    /// Accepted, or connected (or meant to be): it carries the data.
    Connection,
    /// Opened and closed without binding, listening, connecting or
    /// carrying a byte: a probe (a JVM asks whether IPv6 works so). Told
    /// apart so that its calls line up with nothing of the reference's.
    Unused,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Listener => "listener",
            Role::Connection => "connection",
            Role::Unused => "unused",
        }
    }
}

/// One call, with the arguments the policy looks at, normalised: flags
/// that change nothing here are dropped (CLOEXEC, NONBLOCK, MSG_NOSIGNAL),
/// protocol 0 is written IPPROTO_TCP, and the port the harness gave the
/// server is written `{port}`, so two cells on different ports compare.
#[derive(
    Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(tag = "call", rename_all = "snake_case")]
pub enum CallKind {
    Socket {
        family: String,
        /// SOCK_STREAM etc., without SOCK_CLOEXEC and SOCK_NONBLOCK.
        #[serde(rename = "type")]
        kind: String,
        protocol: String,
    },
    Setsockopt {
        level: String,
        name: String,
        value: String,
    },
    Bind {
        address: String,
    },
    Listen {
        backlog: String,
    },
    /// accept or accept4; the peer's address is ephemeral and left out.
    Accept,
    Connect {
        address: String,
    },
    /// recv, recvfrom, recvmsg, read or readv: one kind on a socket.
    Recv {
        /// The sizes asked for, each once, in order: the lesson's 1024.
        /// (OpenBSD nc asks for what is left of its buffer: 16384, then
        /// 16371.)
        sizes: Vec<u64>,
    },
    /// send, sendto, sendmsg, write or writev.
    Send {
        /// Bytes the calls of this run sent, summed.
        bytes: u64,
    },
    Shutdown {
        how: String,
    },
    Close,
}

impl CallKind {
    /// The call's name as a learner reads it.
    pub fn name(&self) -> &'static str {
        match self {
            CallKind::Socket { .. } => "socket",
            CallKind::Setsockopt { .. } => "setsockopt",
            CallKind::Bind { .. } => "bind",
            CallKind::Listen { .. } => "listen",
            CallKind::Accept => "accept",
            CallKind::Connect { .. } => "connect",
            CallKind::Recv { .. } => "recv",
            CallKind::Send { .. } => "send",
            CallKind::Shutdown { .. } => "shutdown",
            CallKind::Close => "close",
        }
    }
}

/// A call on one of the program's TCP sockets, as the program made it
/// (runs of recv or send on one socket are one `Call` with a count:
/// how a stream is cut into calls depends on timing).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Call {
    #[serde(flatten)]
    pub kind: CallKind,
    /// Which socket: the program's first, second… TCP socket (from 1).
    pub socket: usize,
    pub role: Role,
    /// How many calls this is (more than 1 only for recv and send).
    pub count: usize,
    /// When the (first) call returned, in seconds since the epoch: the
    /// clock of the capture, so calls and segments can be lined up.
    pub at: f64,
    /// When the last call of a run returned (the empty `recv` that read
    /// the FIN, after the one that read the data); `at` for one call.
    #[serde(default)]
    pub last_at: f64,
    /// The result, as strace showed it ("0", "-1 ECONNREFUSED"): shown,
    /// never compared (a non-blocking connect returns EINPROGRESS).
    pub result: String,
}

impl fmt::Display for Call {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            CallKind::Socket {
                family,
                kind,
                protocol,
            } => write!(f, "socket({family}, {kind}, {protocol})")?,
            CallKind::Setsockopt { level, name, value } => {
                write!(f, "setsockopt({level}, {name}, {value})")?
            }
            CallKind::Bind { address } => write!(f, "bind({address})")?,
            CallKind::Listen { backlog } => write!(f, "listen({backlog})")?,
            CallKind::Accept => f.write_str("accept()")?,
            CallKind::Connect { address } => write!(f, "connect({address})")?,
            CallKind::Recv { sizes } => {
                let sizes: Vec<String> = sizes.iter().map(u64::to_string).collect();
                write!(f, "recv({})", sizes.join("/"))?
            }
            CallKind::Send { bytes } => write!(f, "send: {bytes} bytes")?,
            CallKind::Shutdown { how } => write!(f, "shutdown({how})")?,
            CallKind::Close => write!(f, "close({})", self.role.name())?,
        }
        if self.count > 1 {
            write!(f, " ×{}", self.count)?;
        }
        Ok(())
    }
}

/// Where a program's calls were recorded, and what they were: the calls,
/// or why there are none.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Recorded {
    /// The strace output, relative to the artifacts root.
    pub trace_file: String,
    pub calls: Vec<Call>,
    /// Why the trace could not be read, when it could not.
    pub error: Option<String>,
}

/// Both programs' calls in one cell.
#[derive(
    Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct CellCalls {
    pub server: Option<Recorded>,
    pub client: Option<Recorded>,
}

impl CellCalls {
    pub fn is_empty(&self) -> bool {
        self.server.is_none() && self.client.is_none()
    }

    /// The side named "server" or "client".
    pub fn side(&self, side: Side) -> Option<&Recorded> {
        match side {
            Side::Server => self.server.as_ref(),
            Side::Client => self.client.as_ref(),
        }
    }
}

/// The program a call was made by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Server,
    Client,
}

impl Side {
    pub const BOTH: [Side; 2] = [Side::Server, Side::Client];

    /// The name differences and the baseline use: `server.listen.backlog`.
    pub fn name(self) -> &'static str {
        match self {
            Side::Server => "server",
            Side::Client => "client",
        }
    }
}
