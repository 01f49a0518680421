//! The field vocabulary: every TCP/IP field the harness knows, and how each
//! is compared with the reference.
//!
//! As in packetdrill, every field has an explicit policy: compared exactly,
//! relative to the ISN, by meaning, or ignored. The handshake is compared
//! segment by segment, field by field. Data and teardown are compared by
//! meaning only, because delayed ACKs, coalescing and recv chunking depend
//! on timing: comparing segment counts there would make verdicts flaky,
//! and a flaky verdict is a bug.
//!
//! [`Field`] is the one list. The signature, the scenario overrides, the
//! policy table, the terminal and HTML tables all take their fields from
//! it, so none can leave one out or spell one differently.

/// How a field is compared with the reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    /// Must be equal.
    Exact,
    /// Compared after subtracting the sender's (seq) or receiver's (ack) ISN.
    RelativeToIsn,
    /// Compared by meaning: the same bytes, the same closing side.
    Meaning,
    /// Never compared.
    Ignored,
}

impl Policy {
    pub fn describe(self) -> &'static str {
        match self {
            Policy::Exact => "exact",
            Policy::RelativeToIsn => "relative to ISN",
            Policy::Meaning => "by meaning",
            Policy::Ignored => "ignored",
        }
    }
}

macro_rules! fields {
    ($($variant:ident => $name:literal, $policy:ident, $why:literal;)*) => {
        crate::schema::named_enum! {
            /// Every field the harness names, in the order tables show them.
            pub enum Field ("field", "a compared field, as `harness policy` lists them") {
                $($variant => $name,)*
            }
        }

        impl Field {
            pub fn policy(self) -> Policy {
                match self {
                    $(Field::$variant => Policy::$policy,)*
                }
            }

            /// Why it is compared the way it is (`harness policy`, the README).
            pub fn why(self) -> &'static str {
                match self {
                    $(Field::$variant => $why,)*
                }
            }
        }
    };
}

fields! {
    Flags => "flags", Exact, "SYN, SYN/ACK, ACK is the handshake itself; ECN bits show here too";
    Seq => "seq", RelativeToIsn, "relative to the sender's ISN, as Wireshark shows it";
    Ack => "ack", RelativeToIsn, "relative to the receiver's ISN";
    Window => "window", Exact, "the raw 16-bit window value, as the tutorials read it";
    Len => "len", Exact, "payload length; data on a SYN (TFO) would show here";
    Options => "options", Exact, "option kinds in wire order, NOP and EOL included: order is a stack's signature";
    Mss => "mss", Exact, "maximum segment size value";
    Wscale => "wscale", Exact, "window scale multiplier; changes with the receive buffer";
    SackPerm => "sack_perm", Exact, "SACK permitted present";
    Ts => "ts", Exact, "timestamps option present (its values are ignored)";
    TsEchoZero => "ts_echo_zero", Exact, "a SYN echoes 0: nothing to echo yet";
    IpVersion => "ip.version", Exact, "IPv4 or IPv6";
    IpTtl => "ip.ttl", Exact, "TTL or hop limit: set per socket";
    IpDf => "ip.df", Exact, "Don't Fragment (path MTU discovery)";
    IpHdrLen => "ip.hdr_len", Exact, "IP options or extension headers";
    TcpHdrLen => "tcp.hdr_len", Exact, "TCP header with options";
    ClientToServerBytes => "client→server bytes", Meaning, "the reassembled stream, whatever the segmentation";
    ServerToClientBytes => "server→client bytes", Meaning, "the reassembled stream, whatever the segmentation";
    ClientToServerWrites => "client→server writes", Meaning, "data segments, only when the whole message fits in one segment (one write is then one segment); ignored otherwise, as coalescing depends on timing";
    ClosesFirst => "closes first", Meaning, "which side sends the first FIN";
    Reset => "reset", Meaning, "whether and from which side an RST ends the connection";
    ServerExit => "server exit", Meaning, "how the server ended (exit code or signal): 0 whenever all went well, and after a reset or a loss the reference's way of failing";
    ClientExit => "client exit", Meaning, "how the client ended: a refused, unanswered or reset connection must fail the way the reference fails";
    SynsSent => "SYNs sent", Meaning, "the connection attempt's SYN and its retransmissions until it was answered or abandoned: the kernel retransmits on a fixed schedule, so a lost SYN gives the same count on every run, and a client that gives up early sends fewer";
    OtherClients => "other clients", Meaning, "with several clients against one server (`clients` in [network]), each further client's fate: queued and then reset when the server closed without accepting it, or its SYN dropped by the full backlog and retried; with how it exited and what it printed";
    Isn => "isn", Ignored, "random by design (RFC 6528)";
    Ports => "ports", Ignored, "ephemeral";
    TsValues => "ts values", Ignored, "clock-derived and randomly offset";
    IpId => "ip.id", Ignored, "per-packet counter or random";
    Checksums => "checksums", Ignored, "offloaded on loopback, often not filled in";
    Timing => "timing", Ignored, "depends on scheduling";
    SegmentCounts => "segment counts (data, teardown)", Ignored, "delayed ACKs and coalescing depend on timing";
    Calls => "calls", Exact, "the calls on TCP sockets, in order: a call one side makes and the other does not (a shutdown, a close left to exit)";
    SocketFamily => "socket.family", Exact, "AF_INET or AF_INET6";
    SocketType => "socket.type", Exact, "SOCK_STREAM; SOCK_CLOEXEC and SOCK_NONBLOCK are left out";
    SocketProtocol => "socket.protocol", Exact, "0 is IPPROTO_TCP for a stream socket";
    Setsockopt => "setsockopt", Exact, "each option set, by level and name, with its value: an option only one side sets is named";
    BindAddress => "bind.address", Exact, "the address; the port the harness gave is written {port}";
    ListenBacklog => "listen.backlog", Exact, "the tutorial's listen(1): how many connections may wait";
    ConnectAddress => "connect.address", Exact, "the address; the port the harness gave is written {port}";
    RecvSize => "recv.size", Exact, "the size asked for, recv(1024) in the lesson; read, recvfrom and recvmsg are one call on a socket";
    SendBytes => "send.bytes", Meaning, "the bytes sent in a run of send calls; write, sendto and sendmsg are one call on a socket";
    ShutdownHow => "shutdown.how", Exact, "SHUT_RD, SHUT_WR or SHUT_RDWR";
    CallCounts => "call counts (recv, send)", Ignored, "how a stream is cut into calls depends on timing and buffers";
    CallFlags => "call flags", Ignored, "SOCK_CLOEXEC, SOCK_NONBLOCK, MSG_NOSIGNAL, accept4's flags: they change nothing on the wire or in the lesson";
    CallResults => "call results", Ignored, "a non-blocking connect returns EINPROGRESS, a blocking one 0; EAGAIN is a retry, dropped";
    OtherCalls => "other calls", Ignored, "polling (poll, epoll, select), fcntl, ioctl, getsockopt, getsockname, and calls on files, pipes, stdio and non-TCP sockets (nscd)";
}

impl Field {
    /// Compared at all (not ignored): what a scenario may turn off.
    pub fn compared() -> impl Iterator<Item = Field> {
        Field::ALL
            .iter()
            .copied()
            .filter(|f| f.policy() != Policy::Ignored)
    }

    /// A field of a handshake segment (compared segment by segment), as
    /// opposed to the conversation's meaning.
    pub fn is_per_segment(self) -> bool {
        !self.is_call() && matches!(self.policy(), Policy::Exact | Policy::RelativeToIsn)
    }

    /// A field of a program's socket calls (recorded with strace), the
    /// level below the wire.
    pub fn is_call(self) -> bool {
        self >= Field::Calls
    }

    /// A whole byte stream, named by its hash in tables.
    pub fn is_stream(self) -> bool {
        matches!(
            self,
            Field::ClientToServerBytes | Field::ServerToClientBytes
        )
    }
}

/// The handshake segment labels, in order.
pub const HANDSHAKE_LABELS: [&str; 3] = ["SYN", "SYN/ACK", "ACK"];

/// A refused attempt's segments: the client's SYN and the kernel's answer.
pub const REFUSED_LABELS: [&str; 2] = ["SYN", "RST/ACK"];

/// An unanswered attempt's segment: the client's SYN, lost every time.
pub const UNANSWERED_LABELS: [&str; 1] = ["SYN"];

/// The pseudo-segment that holds the fields compared by meaning.
pub const CONVERSATION: &str = "conversation";

/// Splits `SEGMENT.field` (`SYN.window`, `conversation.reset`,
/// `server.listen.backlog`) or a bare `field` into its parts, checking
/// that both exist and go together: a call field belongs to a program
/// (`server.`, `client.`), a wire field to a segment. For scenario
/// overrides and the manifest's known differences, so that a typo is an
/// error rather than an entry that silently matches nothing.
pub fn parse_field_key(key: &str) -> Result<(Option<String>, Field), String> {
    let labels =
        HANDSHAKE_LABELS
            .iter()
            .chain(&REFUSED_LABELS)
            .chain([&CONVERSATION, &"server", &"client"]);
    let mut split = (None, key);
    for label in labels {
        if let Some(field) = key.strip_prefix(label).and_then(|r| r.strip_prefix('.')) {
            split = (Some(label.to_string()), field);
            break;
        }
    }
    let (segment, name) = split;
    let Some(field) = Field::parse(name).filter(|f| f.policy() != Policy::Ignored) else {
        return Err(format!(
            "unknown field '{name}'; compared fields: {}",
            Field::compared()
                .map(Field::name)
                .collect::<Vec<_>>()
                .join(", ")
        ));
    };
    if segment
        .as_deref()
        .is_some_and(|s| (s == "server" || s == "client") != field.is_call())
    {
        return Err(format!(
            "'{key}' names no field: a socket-call field goes with server. or client., a wire field with a segment"
        ));
    }
    Ok((segment, field))
}

/// A field whose comparison a scenario turns off: `field` in every segment,
/// or only in `segment` (`SYN.window`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct IgnoredField {
    pub segment: Option<String>,
    pub field: Field,
}

impl IgnoredField {
    pub fn covers(&self, segment: &str, field: Field) -> bool {
        self.field == field && self.segment.as_deref().is_none_or(|s| s == segment)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_parse_back() {
        for f in Field::ALL {
            assert_eq!(Field::parse(f.name()), Some(*f));
        }
        let mut names: Vec<_> = Field::ALL.iter().map(|f| f.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Field::ALL.len());
    }
}
