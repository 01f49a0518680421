//! From segments to conversations: connections, relative numbers, streams
//! and phases.
//!
//! A connection is keyed by its 4-tuple and oriented by its first SYN, so
//! "client" is whoever opened it. Sequence and acknowledgement numbers are
//! made relative to each side's ISN, as Wireshark shows them by default.
//! Each direction's payload is reassembled by sequence number, so
//! retransmissions and overlaps do not change the stream, and gaps are
//! reported rather than papered over.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::net::SocketAddr;

use crate::dissect::Segment;
use crate::seq::SeqNum;

/// Which way a segment travels within its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    ClientToServer,
    ServerToClient,
}

impl Direction {
    pub fn arrow(self) -> &'static str {
        match self {
            Direction::ClientToServer => "client→server",
            Direction::ServerToClient => "server→client",
        }
    }
}

/// Where in the conversation a segment belongs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Handshake,
    Data,
    Teardown,
}

/// A segment placed in its connection.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Placed {
    pub direction: Direction,
    pub phase: Phase,
    /// Relative to the sender's ISN (0 for the SYN).
    pub rel_seq: u32,
    /// Relative to the receiver's ISN; 0 when the ACK flag is not set.
    pub rel_ack: u32,
    pub segment: Segment,
}

/// One direction's reassembled bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stream {
    /// In-order bytes from relative seq 1 up to the first gap, or up to
    /// [`Retention::stream_bytes`] when that is smaller.
    pub bytes: Vec<u8>,
    /// [`digest`] of every in-order byte up to the first gap, kept or
    /// not: a long stream is compared by this and its length, not held.
    pub digest: u64,
    /// Byte ranges `[start, end)` (offsets into the stream, 64-bit:
    /// unwrapped from the 32-bit sequence space) never seen.
    pub gaps: Vec<(u64, u64)>,
    /// Payload bytes that were sent more than once, including bytes sent
    /// again from before the first captured segment of a connection the
    /// capture joined mid-stream.
    pub retransmitted: u64,
    /// Payload bytes that lay beyond the snapshot length and were not captured.
    pub uncaptured: u64,
    /// Distinct payload bytes in sequence space, captured or not: the
    /// stream's length even when a snaplen cut the payload.
    pub length: u64,
    /// In-order bytes up to the first gap: what `digest` covers.
    pub prefix: u64,
}

impl Default for Stream {
    fn default() -> Stream {
        Stream {
            bytes: Vec::new(),
            prefix: 0,
            digest: digest(&[]),
            gaps: Vec::new(),
            retransmitted: 0,
            uncaptured: 0,
            length: 0,
        }
    }
}

impl Stream {
    /// Every byte was captured, in order, with no gap: the digest then
    /// names the whole stream.
    pub fn is_whole(&self) -> bool {
        self.gaps.is_empty() && self.uncaptured == 0
    }
}

/// Names a byte stream compactly (XXH3, 64 bits; not for security). A
/// stream's digest is computed as its bytes arrive and equals this of all
/// of them: tens of gigabytes a second, where a byte-at-a-time hash made
/// hashing half the cost of reading a 1 GiB capture.
pub fn digest(bytes: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(bytes)
}

/// The digest being computed as a stream's bytes arrive.
#[derive(Clone, Default)]
struct Hasher(xxhash_rust::xxh3::Xxh3Default);

impl std::fmt::Debug for Hasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Hasher({:016x})", self.0.digest())
    }
}

/// How much of each connection a builder holds. The matrix holds all of
/// it (its messages are checked byte for byte); `inspect` bounds it, so a
/// capture of any size is read in memory that grows with the connections
/// still open, never with the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Payload bytes kept per stream; the rest is hashed into the digest.
    pub stream_bytes: usize,
    /// Segments kept per connection: the first `head_segments`…
    pub head_segments: usize,
    /// …and the last `tail_segments`; those between are counted in
    /// [`Connection::elided`].
    pub tail_segments: usize,
    /// Out-of-order payload bytes held per stream while waiting for a
    /// gap to fill; past it the gap is declared.
    pub held_bytes: usize,
}

impl Retention {
    /// Everything, as a cell's analysis needs.
    pub const ALL: Retention = Retention {
        stream_bytes: usize::MAX,
        head_segments: usize::MAX,
        tail_segments: 0,
        held_bytes: usize::MAX,
    };
}

impl Default for Retention {
    fn default() -> Retention {
        Retention::ALL
    }
}

/// Segments left out of [`Connection::segments`] by a [`Retention`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elided {
    /// Index in `segments` before which they were.
    pub at: usize,
    pub count: usize,
}

/// How a connection ended, in terms the comparison uses.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Close {
    /// The side whose FIN came first, if any.
    pub first_fin: Option<Direction>,
    pub client_fin: bool,
    pub server_fin: bool,
    /// Frames of RST segments that ended or broke the connection, with
    /// their direction.
    pub resets: Vec<(usize, Direction)>,
    /// RSTs that came after both FINs were acknowledged: a kernel answering
    /// a late duplicate segment for a socket that is already gone. All data
    /// was acknowledged by then, so the close was orderly; whether one shows
    /// up depends on delayed-ACK timing, so it is kept apart, never compared.
    pub late_resets: Vec<(usize, Direction)>,
    /// Both FINs were sent and acknowledged, or an RST was seen: nothing
    /// more is expected on the wire.
    pub complete: bool,
}

/// What `place` needs to know about the segments placed so far.
#[derive(Debug, Clone, Default)]
struct Progress {
    /// Whether the client has sent anything but its SYN.
    client_sent_after_syn: bool,
    /// Relative seq just past each side's first FIN.
    client_fin_end: Option<u32>,
    server_fin_end: Option<u32>,
    client_fin_acked: bool,
    server_fin_acked: bool,
}

/// One TCP connection (or connection attempt).
#[derive(Debug, Clone)]
pub struct Connection {
    pub client: SocketAddr,
    pub server: SocketAddr,
    /// From the client's SYN, if it was captured.
    pub client_isn: Option<SeqNum>,
    /// From the server's SYN/ACK, if there was one.
    pub server_isn: Option<SeqNum>,
    /// What relative numbers are counted from: the ISN, or without a SYN
    /// the first seq seen minus one.
    client_base: Option<SeqNum>,
    server_base: Option<SeqNum>,
    /// Kept as segments are placed, so placing one never rescans the others
    /// (a 1 GiB transfer has tens of thousands).
    progress: Progress,
    /// The segments, payload taken out (it is in the streams); under a
    /// bounded [`Retention`], the first and last of them.
    pub segments: Vec<Placed>,
    /// Segments not kept in `segments`, and where they were.
    pub elided: Option<Elided>,
    /// The last segments under a bounded retention, appended to
    /// `segments` when the streams are finished.
    tail: std::collections::VecDeque<Placed>,
    pub client_stream: Stream,
    pub server_stream: Stream,
    client_reassembly: Reassembly,
    server_reassembly: Reassembly,
    /// SYNs (without ACK) the client sent, retries included.
    syns: usize,
    /// SYNs (without ACK) the side taken for the server sent: in a
    /// connection joined mid-stream, the sign that it is the client.
    server_syns: usize,
    retention: Retention,
    /// Frame of the last segment placed.
    pub last_frame: usize,
    pub close: Close,
    /// No SYN opened it in the capture: the capture started after the
    /// handshake, and the client was told from the server by the ports.
    pub joined_mid_stream: bool,
    /// The tunnels its first segment came through, in words ("VXLAN 10.0.0.1
    /// → 10.0.0.2, VNI 42"); `None` when none.
    pub tunnel: Option<String>,
}

impl Connection {
    /// SYN segments the client sent (more than one means it retried).
    pub fn syn_count(&self) -> usize {
        self.syns
    }

    /// Refused: the server answered the SYN with a RST and never a SYN/ACK.
    pub fn refused(&self) -> bool {
        self.server_isn.is_none()
            && self
                .close
                .resets
                .iter()
                .chain(&self.close.late_resets)
                .any(|(_, d)| *d == Direction::ServerToClient)
    }

    /// Segments placed, kept or elided.
    pub fn segment_count(&self) -> usize {
        self.segments.len() + self.tail.len() + self.elided.map_or(0, |e| e.count)
    }

    /// The frames of the first and last segments.
    pub fn frame_span(&self) -> (usize, usize) {
        let first = self.segments.first().map_or(0, |p| p.segment.frame);
        (first, self.last_frame)
    }

    /// Opened: a SYN/ACK came back.
    pub fn established(&self) -> bool {
        self.server_isn.is_some()
    }

    /// Whether `syn` is this attempt's SYN sent again after it was reset
    /// before it opened: the same client, the same ISN.
    fn is_retried_by(&self, syn: &Segment) -> bool {
        !self.established()
            && !self.close.resets.is_empty()
            && syn.src == self.client
            && self.client_isn == Some(syn.seq)
    }

    /// Frees every payload byte: the segments' and the reassembled
    /// streams'. Lengths, numbers, flags, options and gaps stay, which is
    /// all a ladder, a comment or a report needs once the bytes have been
    /// checked and hashed; a run of many large cells then holds headers,
    /// not transfers.
    pub fn drop_payloads(&mut self) {
        self.segments.shrink_to_fit();
        self.client_stream.bytes = Vec::new();
        self.server_stream.bytes = Vec::new();
    }

    /// Ends the connection: a connection joined mid-stream whose "server"
    /// sent a SYN later, or whose "client" turned out to listen (it
    /// answered a SYN elsewhere in the capture), is turned round, and the
    /// streams are finished.
    fn finish(&mut self, listeners: &HashSet<SocketAddr>) {
        let server_opened = self.server_syns > 0 && self.syns == 0;
        let client_listens = listeners.contains(&self.client) && !listeners.contains(&self.server);
        if self.joined_mid_stream && (server_opened || client_listens) {
            self.reorient();
        }
        self.finish_streams();
    }

    /// Swaps client and server, and every record kept by side.
    fn reorient(&mut self) {
        use std::mem::swap;
        swap(&mut self.client, &mut self.server);
        swap(&mut self.client_isn, &mut self.server_isn);
        swap(&mut self.client_base, &mut self.server_base);
        swap(&mut self.client_stream, &mut self.server_stream);
        swap(&mut self.client_reassembly, &mut self.server_reassembly);
        swap(&mut self.syns, &mut self.server_syns);
        let flip = |d: &mut Direction| {
            *d = match d {
                Direction::ClientToServer => Direction::ServerToClient,
                Direction::ServerToClient => Direction::ClientToServer,
            }
        };
        for p in self.segments.iter_mut().chain(self.tail.iter_mut()) {
            flip(&mut p.direction);
        }
        let close = &mut self.close;
        if let Some(d) = close.first_fin.as_mut() {
            flip(d);
        }
        swap(&mut close.client_fin, &mut close.server_fin);
        for (_, d) in close.resets.iter_mut().chain(close.late_resets.iter_mut()) {
            flip(d);
        }
        let progress = &mut self.progress;
        swap(&mut progress.client_fin_end, &mut progress.server_fin_end);
        swap(
            &mut progress.client_fin_acked,
            &mut progress.server_fin_acked,
        );
    }

    /// Ends both streams: pieces still waiting for a gap to fill are
    /// placed after it, and lengths and retransmissions are counted.
    fn finish_streams(&mut self) {
        let retention = self.retention;
        self.client_reassembly
            .finish(&mut self.client_stream, &retention);
        self.server_reassembly
            .finish(&mut self.server_stream, &retention);
        self.segments.extend(self.tail.drain(..));
    }

    /// "client → server", and the tunnels it came through when it did:
    /// "10.0.0.1:80 → … (inside VXLAN 192.0.2.1 → 192.0.2.2, VNI 42)".
    pub fn label(&self) -> String {
        match &self.tunnel {
            Some(tunnel) => format!("{} (inside {tunnel})", self.endpoints()),
            None => self.endpoints(),
        }
    }

    /// "client → server", without the tunnels.
    pub fn endpoints(&self) -> String {
        format!("{} → {}", self.client, self.server)
    }
}

/// For a connection seen without its SYN: whether `src` is the server's
/// end, judged as tools do when the handshake is missing: a well-known
/// port (below 1024) against one that is not; then a port outside Linux's
/// ephemeral range (32768-60999) against one inside it; then the lower
/// port. Never the well-known port as the client.
fn server_side_of(src: SocketAddr, dst: SocketAddr) -> bool {
    let (s, d) = (src.port(), dst.port());
    let well_known = |p: u16| p < 1024;
    let ephemeral = |p: u16| (32768..=60999).contains(&p);
    if well_known(s) != well_known(d) {
        return well_known(s);
    }
    if ephemeral(s) != ephemeral(d) {
        return !ephemeral(s);
    }
    s < d
}

/// Groups segments into connections, in order of their first segment.
pub fn build(segments: &[Segment]) -> Vec<Connection> {
    build_owned(segments.to_vec())
}

/// [`build`], taking the segments instead of copying them.
pub fn build_owned(segments: Vec<Segment>) -> Vec<Connection> {
    let mut builder = ConversationBuilder::with_capacity(segments.len());
    for segment in segments {
        builder.push(segment);
    }
    builder.finish()
}

type Tuple = (SocketAddr, SocketAddr);

/// How many retired connections' 4-tuples are remembered, so a straggler
/// (a late duplicate ACK or RST) is not taken for a new connection.
const RETIRED_REMEMBERED: usize = 65_536;

/// Connections built segment by segment, as a capture delivers them: each
/// segment is placed once, never rescanned, so a caller can feed a live
/// capture or a file of any length without holding its frames.
#[derive(Debug, Default)]
pub struct ConversationBuilder {
    /// The connections not yet taken out, by number (1 for the first
    /// connection seen).
    connections: BTreeMap<usize, Connection>,
    numbered: usize,
    /// Key: (client, server) once oriented. A later SYN on the same 4-tuple
    /// after a completed close is a new connection (port reuse).
    open: HashMap<Tuple, usize>,
    /// The connection the previous segment went to.
    last: Option<usize>,
    /// Segments still expected, as a hint for the first connection's room.
    expected: usize,
    retention: Retention,
    /// Connections taken out by [`ConversationBuilder::take_finished`],
    /// oldest first, bounded.
    retired: HashMap<Tuple, usize>,
    retired_order: VecDeque<Tuple>,
    late_segments: usize,
    /// Ends that answered a SYN with a SYN/ACK: servers, for orienting a
    /// connection joined mid-stream (bounded: a hint, not a record).
    listeners: HashSet<SocketAddr>,
}

/// Listening ends remembered for orienting connections joined mid-stream.
const LISTENERS_REMEMBERED: usize = 4096;

impl ConversationBuilder {
    /// A builder that expects about `segments` segments in all.
    pub fn with_capacity(segments: usize) -> ConversationBuilder {
        ConversationBuilder {
            expected: segments,
            ..ConversationBuilder::default()
        }
    }

    /// A builder that holds at most `retention` of each connection.
    pub fn with_retention(retention: Retention) -> ConversationBuilder {
        ConversationBuilder {
            retention,
            ..ConversationBuilder::default()
        }
    }

    /// Places one segment in its connection, opening a new one when needed.
    pub fn push(&mut self, mut segment: Segment) {
        let payload = std::mem::take(&mut segment.payload);
        self.push_with_payload(segment, &payload);
    }

    /// [`ConversationBuilder::push`] for a segment whose payload is given
    /// beside it, as a view of the frame it was read from
    /// ([`crate::dissect::Dissector::dissect_view`]): bytes in order are
    /// hashed and kept from that view; only bytes that arrive ahead of a
    /// gap are copied, to wait for it.
    pub fn push_with_payload(&mut self, segment: Segment, payload: &[u8]) {
        let forward = (segment.src, segment.dst);
        let backward = (segment.dst, segment.src);
        let fresh_syn = segment.flags.syn && !segment.flags.ack;
        let connections = &mut self.connections;
        // Consecutive segments nearly always belong to the same connection.
        let same_as_last = self.last.filter(|i| {
            connections.get(i).is_some_and(|c: &Connection| {
                (c.client, c.server) == forward || (c.client, c.server) == backward
            })
        });
        let existing = same_as_last.or_else(|| {
            self.open
                .get(&forward)
                .or_else(|| self.open.get(&backward))
                .copied()
        });
        let number = match existing {
            // A SYN retried with the same ISN after the attempt was
            // refused (as a Windows client retries) is the same attempt,
            // as tshark has it: one stream, its SYN sent again.
            Some(i) if fresh_syn && connections[&i].is_retried_by(&segment) => {
                if let Some(c) = connections.get_mut(&i) {
                    c.close = Close::default();
                }
                i
            }
            Some(i) if !(fresh_syn && connections[&i].close.complete) => i,
            _ => {
                if !fresh_syn
                    && (self.retired.contains_key(&forward) || self.retired.contains_key(&backward))
                {
                    // A straggler of a connection already over and taken out.
                    self.late_segments += 1;
                    return;
                }
                // Orient by the SYN; without one (the capture joined
                // mid-stream), by an end seen listening, then by the ports
                // (see `server_side_of`).
                let joined_mid_stream = !segment.flags.syn;
                let (client, server) = if segment.flags.syn && segment.flags.ack {
                    backward
                } else if segment.flags.syn {
                    forward
                } else if self.listeners.contains(&forward.1) != self.listeners.contains(&forward.0)
                {
                    if self.listeners.contains(&forward.1) {
                        forward
                    } else {
                        backward
                    }
                } else if server_side_of(forward.0, forward.1) {
                    backward
                } else {
                    forward
                };
                self.numbered += 1;
                let room = std::mem::take(&mut self.expected).min(self.retention.head_segments);
                connections.insert(
                    self.numbered,
                    Connection {
                        client,
                        server,
                        client_isn: None,
                        server_isn: None,
                        client_base: None,
                        server_base: None,
                        progress: Progress::default(),
                        // Most captures are one connection: room for the rest
                        // of them up front, not a copy at every doubling.
                        segments: Vec::with_capacity(room),
                        elided: None,
                        tail: VecDeque::new(),
                        client_stream: Stream::default(),
                        server_stream: Stream::default(),
                        client_reassembly: Reassembly::default(),
                        server_reassembly: Reassembly::default(),
                        syns: 0,
                        server_syns: 0,
                        retention: self.retention,
                        last_frame: 0,
                        close: Close::default(),
                        joined_mid_stream,
                        tunnel: segment.tunnel.clone(),
                    },
                );
                self.open.insert((client, server), self.numbered);
                self.numbered
            }
        };
        self.expected = self.expected.saturating_sub(1);
        if segment.flags.syn && segment.flags.ack && self.listeners.len() < LISTENERS_REMEMBERED {
            self.listeners.insert(segment.src);
        }
        if let Some(connection) = connections.get_mut(&number) {
            place(connection, segment, payload);
        }
        self.last = Some(number);
    }

    /// The connections not yet taken out, their close state up to date
    /// (their streams are finished by [`ConversationBuilder::finish`]).
    pub fn connections(&self) -> impl Iterator<Item = &Connection> {
        self.connections.values()
    }

    /// Segments that came after their connection was taken out, and were
    /// dropped rather than opening a connection of their own.
    pub fn late_segments(&self) -> usize {
        self.late_segments
    }

    /// Takes out, streams finished, every connection that is over (both
    /// FINs acknowledged, or reset) and whose last segment is at least
    /// `quiet` frames before `frame`: what a reader of a long capture
    /// hands on and forgets, so memory follows the open connections.
    pub fn take_finished(&mut self, frame: usize, quiet: usize) -> Vec<(usize, Connection)> {
        let over: Vec<usize> = self
            .connections
            .iter()
            .filter(|(_, c)| c.close.complete && frame.saturating_sub(c.last_frame) >= quiet)
            .map(|(n, _)| *n)
            .collect();
        over.into_iter()
            .filter_map(|n| {
                let mut c = self.connections.remove(&n)?;
                let tuple = (c.client, c.server);
                if self.open.get(&tuple) == Some(&n) {
                    self.open.remove(&tuple);
                }
                if self.retired.insert(tuple, n).is_none() {
                    self.retired_order.push_back(tuple);
                }
                if self.retired_order.len() > RETIRED_REMEMBERED {
                    if let Some(old) = self.retired_order.pop_front() {
                        self.retired.remove(&old);
                    }
                }
                c.finish(&self.listeners);
                Some((n, c))
            })
            .collect()
    }

    /// The connections, each with its streams reassembled.
    pub fn finish(self) -> Vec<Connection> {
        self.finish_numbered().into_iter().map(|(_, c)| c).collect()
    }

    /// [`ConversationBuilder::finish`], each connection with its number.
    pub fn finish_numbered(self) -> Vec<(usize, Connection)> {
        let listeners = self.listeners;
        self.connections
            .into_iter()
            .map(|(n, mut c)| {
                c.finish(&listeners);
                (n, c)
            })
            .collect()
    }
}

fn place(conn: &mut Connection, segment: Segment, payload: &[u8]) {
    let direction = if segment.src == conn.client {
        Direction::ClientToServer
    } else {
        Direction::ServerToClient
    };
    let flags = segment.flags;
    let (own_isn, own_base, peer_base) = match direction {
        Direction::ClientToServer => (
            &mut conn.client_isn,
            &mut conn.client_base,
            &mut conn.server_base,
        ),
        Direction::ServerToClient => (
            &mut conn.server_isn,
            &mut conn.server_base,
            &mut conn.client_base,
        ),
    };
    if flags.syn && own_isn.is_none() {
        *own_isn = Some(segment.seq);
        *own_base = Some(segment.seq);
    }
    // Without a SYN, the first seq seen stands in for ISN + 1.
    let own = *own_base.get_or_insert(segment.seq - 1);
    let rel_seq = segment.seq - own;
    let rel_ack = if flags.ack {
        // Before anything from the peer (a capture joined mid-stream), the
        // first ACK stands in for the peer's ISN + 1, as in Wireshark.
        segment.ack - *peer_base.get_or_insert(segment.ack - 1)
    } else {
        0
    };

    let phase = if flags.fin
        || flags.rst
        || conn.close.client_fin
        || conn.close.server_fin
        || !conn.close.resets.is_empty()
    {
        Phase::Teardown
    } else if flags.syn || handshake_ack(conn, direction, &segment, rel_ack) {
        Phase::Handshake
    } else {
        Phase::Data
    };

    if flags.fin {
        conn.close.first_fin.get_or_insert(direction);
        match direction {
            Direction::ClientToServer => conn.close.client_fin = true,
            Direction::ServerToClient => conn.close.server_fin = true,
        }
    }
    if flags.rst {
        let finished = conn.close.complete && conn.close.resets.is_empty();
        if finished {
            conn.close.late_resets.push((segment.frame, direction));
        } else {
            conn.close.resets.push((segment.frame, direction));
        }
    }
    let progress = &mut conn.progress;
    if flags.fin {
        let fin_end = rel_seq.wrapping_add(segment.seq_len());
        match direction {
            Direction::ClientToServer => progress.client_fin_end.get_or_insert(fin_end),
            Direction::ServerToClient => progress.server_fin_end.get_or_insert(fin_end),
        };
    }
    // A FIN is acknowledged by the peer's ACK of the sequence number just
    // past it.
    if flags.ack {
        match direction {
            Direction::ServerToClient if progress.client_fin_end == Some(rel_ack) => {
                progress.client_fin_acked = true
            }
            Direction::ClientToServer if progress.server_fin_end == Some(rel_ack) => {
                progress.server_fin_acked = true
            }
            _ => {}
        }
    }
    if direction == Direction::ClientToServer && !flags.syn {
        progress.client_sent_after_syn = true;
    }
    if flags.syn && !flags.ack {
        match direction {
            Direction::ClientToServer => conn.syns += 1,
            Direction::ServerToClient => conn.server_syns += 1,
        }
    }
    conn.close.complete =
        !conn.close.resets.is_empty() || (progress.client_fin_acked && progress.server_fin_acked);
    conn.last_frame = segment.frame;
    if segment.payload_len > 0 {
        // Data starts one past the SYN, which occupies relative seq 0:
        // the stream's byte 0 is at ISN + 1 (or the first seq seen).
        let first_data = segment.seq + u32::from(flags.syn);
        let (reassembly, stream) = match direction {
            Direction::ClientToServer => (&mut conn.client_reassembly, &mut conn.client_stream),
            Direction::ServerToClient => (&mut conn.server_reassembly, &mut conn.server_stream),
        };
        let offset = reassembly.offset_of(own + 1, first_data);
        reassembly.push(
            stream,
            &conn.retention,
            offset,
            payload,
            segment.payload_len,
        );
    }
    let placed = Placed {
        direction,
        phase,
        rel_seq,
        rel_ack,
        segment,
    };
    let retention = &conn.retention;
    if conn.segments.len() < retention.head_segments {
        conn.segments.push(placed);
    } else {
        conn.tail.push_back(placed);
        if conn.tail.len() > retention.tail_segments {
            conn.tail.pop_front();
            let at = conn.segments.len();
            conn.elided.get_or_insert(Elided { at, count: 0 }).count += 1;
        }
    }
}

/// The third segment of the handshake: the client's first ACK of the
/// server's SYN, before anything else from the client.
fn handshake_ack(conn: &Connection, direction: Direction, segment: &Segment, rel_ack: u32) -> bool {
    direction == Direction::ClientToServer
        && segment.flags.ack
        && rel_ack == 1
        && conn.server_isn.is_some()
        && !conn.progress.client_sent_after_syn
}

/// One direction's bytes being put in order as segments arrive.
///
/// Offsets are 64-bit positions in the stream (0 is the first data byte,
/// one past the SYN), unwrapped from the 32-bit sequence space: a stream
/// past 4 GiB keeps counting up, and a sequence number is placed in the
/// 2³² window nearest the stream's end, by serial-number arithmetic, as
/// Wireshark does. Bytes before offset 0 (a connection the capture joined
/// mid-stream, whose sender retransmits what it sent before the capture
/// began) are counted as retransmitted, never as a gap of 4 GiB.
#[derive(Debug, Clone, Default)]
struct Reassembly {
    /// Offset just past the in-order bytes (and past any gap declared).
    end: u64,
    /// Payload bytes sent in all, retransmissions included.
    sent: u64,
    /// Pieces beyond `end`, waiting for the gap before them to fill:
    /// offset → (captured bytes, length on the wire).
    held: BTreeMap<u64, (Vec<u8>, u32)>,
    held_bytes: usize,
    hasher: Hasher,
}

impl Reassembly {
    /// The stream offset of the byte at `seq`, where byte 0 is at
    /// `origin`: the offset nearest the stream's end whose low 32 bits
    /// are `seq - origin`. Negative for bytes before the stream's start.
    fn offset_of(&self, origin: SeqNum, seq: SeqNum) -> i64 {
        let end_seq = origin + self.end as u32;
        // Serial-number distance from the end, within ±2³¹.
        let ahead = (seq - end_seq) as i32;
        self.end as i64 + i64::from(ahead)
    }

    fn push(
        &mut self,
        stream: &mut Stream,
        retention: &Retention,
        offset: i64,
        captured: &[u8],
        len: u32,
    ) {
        self.sent += u64::from(len);
        // Saturating: a malformed capture can claim anything.
        stream.uncaptured = stream
            .uncaptured
            .saturating_add(u64::from(len.saturating_sub(captured.len() as u32)));
        // Bytes before the stream's start were sent before the capture
        // began: this is their retransmission. Only what lies from 0 on is
        // placed; the rest is in `sent` and so counts as retransmitted.
        let (offset, captured, len) = match u64::try_from(offset) {
            Ok(offset) => (offset, captured, len),
            Err(_) => {
                let before = offset.unsigned_abs();
                if before >= u64::from(len) {
                    return;
                }
                let skip = before as usize;
                let kept = captured.get(skip..).unwrap_or_default();
                (0, kept, len - before as u32)
            }
        };
        if offset <= self.end {
            self.apply(stream, retention, offset, captured, len);
        } else {
            // The longest piece at an offset is the one worth keeping;
            // only a piece that must wait for a gap is copied.
            let replaced = match self.held.get(&offset) {
                Some((_, held_len)) if *held_len >= len => return,
                _ => self.held.insert(offset, (captured.to_vec(), len)),
            };
            self.held_bytes += self.held[&offset].0.len();
            self.held_bytes -= replaced.map_or(0, |(bytes, _)| bytes.len());
            // Too much waiting: the lowest gap is declared.
            while self.held_bytes > retention.held_bytes {
                let Some((offset, (bytes, len))) = self.held.pop_first() else {
                    break;
                };
                self.held_bytes -= bytes.len();
                self.apply(stream, retention, offset, &bytes, len);
            }
        }
        // Pieces the new bytes reached are in order now.
        while let Some(entry) = self.held.first_entry() {
            if *entry.key() > self.end {
                break;
            }
            let (offset, (bytes, len)) = entry.remove_entry();
            self.held_bytes -= bytes.len();
            self.apply(stream, retention, offset, &bytes, len);
        }
    }

    /// Adds a piece at or past `end`, a gap before it if past.
    fn apply(
        &mut self,
        stream: &mut Stream,
        retention: &Retention,
        offset: u64,
        captured: &[u8],
        len: u32,
    ) {
        if offset > self.end {
            stream.gaps.push((self.end, offset));
        }
        let piece_end = offset + u64::from(len);
        if piece_end > self.end {
            let skip = self.end.saturating_sub(offset) as usize;
            // Only a stream captured whole is kept and hashed byte for byte.
            if stream.is_whole() && skip <= captured.len() {
                let new = &captured[skip..];
                self.hasher.0.update(new);
                stream.prefix += new.len() as u64;
                let room = retention.stream_bytes.saturating_sub(stream.bytes.len());
                stream.bytes.extend_from_slice(&new[..new.len().min(room)]);
            }
            self.end = piece_end;
        }
    }

    /// The stream's end: what still waits goes after its gap.
    fn finish(&mut self, stream: &mut Stream, retention: &Retention) {
        while let Some((offset, (bytes, len))) = self.held.pop_first() {
            self.apply(stream, retention, offset, &bytes, len);
        }
        self.held_bytes = 0;
        stream.digest = self.hasher.0.digest();
        let missing: u64 = stream.gaps.iter().map(|(a, b)| b - a).sum();
        let unique = self.end.saturating_sub(missing);
        stream.retransmitted = self.sent.saturating_sub(unique);
        stream.length = unique;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::{dissect_all, LinkType};
    use crate::fixtures::{self, Spec, CLIENT_ISN, SERVER_ISN};

    /// A client data segment of the tutorial's connection carrying
    /// `payload` at stream offset `offset` (0 is the first byte after the
    /// SYN), acknowledging the server's SYN.
    fn client_data(offset: u32, payload: &[u8]) -> crate::dissect::Frame {
        fixtures::frame(
            LinkType::Ethernet,
            &Spec {
                seq: CLIENT_ISN.wrapping_add(1).wrapping_add(offset),
                ack: Some(SERVER_ISN + 1),
                payload,
                ..Spec::default()
            },
        )
    }

    fn connections(frames: &[crate::dissect::Frame]) -> Vec<Connection> {
        let (segments, errors) = dissect_all(LinkType::Ethernet, frames);
        assert!(errors.is_empty());
        build(&segments)
    }

    #[test]
    fn tutorial_conversation_is_modelled() {
        let conns = connections(&fixtures::tutorial(LinkType::Ethernet));
        assert_eq!(conns.len(), 1);
        let c = &conns[0];
        assert_eq!(c.client.port(), 50514);
        let rel: Vec<(u32, u32)> = c.segments.iter().map(|p| (p.rel_seq, p.rel_ack)).collect();
        assert_eq!(
            rel,
            [
                (0, 0),
                (0, 1),
                (1, 1),
                (1, 1),
                (1, 14),
                (14, 1),
                (1, 15),
                (15, 2)
            ]
        );
        let phases: Vec<Phase> = c.segments.iter().map(|p| p.phase).collect();
        use Phase::*;
        assert_eq!(
            phases,
            [Handshake, Handshake, Handshake, Data, Data, Teardown, Teardown, Teardown]
        );
        assert_eq!(c.client_stream.bytes, b"Hello server!");
        assert!(c.server_stream.bytes.is_empty());
        assert_eq!(c.close.first_fin, Some(Direction::ClientToServer));
        assert!(c.close.complete);
        assert_eq!(c.syn_count(), 1);
    }

    #[test]
    fn retransmissions_and_overlaps_do_not_change_the_stream() {
        let mut frames = fixtures::tutorial(LinkType::Ethernet);
        // "Hello " again, then "lo server!" overlapping it, out of order.
        frames.splice(
            4..4,
            [client_data(3, b"lo server!"), client_data(0, b"Hello ")],
        );
        let c = &connections(&frames)[0];
        assert_eq!(c.client_stream.bytes, b"Hello server!");
        assert_eq!(c.client_stream.retransmitted, 16);
        assert!(c.client_stream.gaps.is_empty());
    }

    #[test]
    fn a_missing_segment_is_a_gap() {
        let mut frames = fixtures::tutorial(LinkType::Ethernet);
        frames[3] = client_data(6, b"server!");
        let c = &connections(&frames)[0];
        assert_eq!(c.client_stream.gaps, [(0, 6)]);
        assert!(c.client_stream.bytes.is_empty());
    }

    /// A stream whose sequence numbers wrap past 2³² between two pieces,
    /// which arrive out of order: one stream, no gap.
    #[test]
    fn a_stream_across_the_wrap_of_sequence_space_is_whole() {
        let isn = u32::MAX - 4;
        let data = |offset: u32, payload: &[u8]| {
            fixtures::frame(
                LinkType::Ethernet,
                &Spec {
                    seq: isn.wrapping_add(1).wrapping_add(offset),
                    ack: Some(SERVER_ISN + 1),
                    payload,
                    ..Spec::default()
                },
            )
        };
        let frames = [
            fixtures::frame(
                LinkType::Ethernet,
                &Spec {
                    seq: isn,
                    syn: true,
                    ..Spec::default()
                },
            ),
            fixtures::frame(
                LinkType::Ethernet,
                &Spec {
                    from_client: false,
                    seq: SERVER_ISN,
                    ack: Some(isn.wrapping_add(1)),
                    syn: true,
                    ..Spec::default()
                },
            ),
            data(10, b"0123456789"),
            data(0, b"abcdefghij"),
        ];
        let c = &connections(&frames)[0];
        assert!(
            c.client_stream.gaps.is_empty(),
            "{:?}",
            c.client_stream.gaps
        );
        assert_eq!(c.client_stream.bytes, b"abcdefghij0123456789");
        assert_eq!(c.client_stream.length, 20);
        assert_eq!(c.client_stream.retransmitted, 0);
    }

    /// A capture that joined mid-stream, where the sender retransmits bytes
    /// it sent before the first captured segment: those bytes are
    /// retransmitted, not a gap of nearly 4 GiB. 40 bytes sent, 20 of them
    /// in the stream from where the capture began.
    #[test]
    fn a_retransmission_from_before_a_mid_stream_capture_is_not_a_gap() {
        let start = 5_000u32;
        let data = |seq: u32, payload: &[u8]| {
            fixtures::frame(
                LinkType::Ethernet,
                &Spec {
                    seq,
                    ack: Some(SERVER_ISN + 1),
                    payload,
                    ..Spec::default()
                },
            )
        };
        let frames = [
            data(start, b"KLMNOPQRSTUVWXYZ0123"),
            data(start - 10, b"ABCDEFGHIJKLMNOPQRST"),
        ];
        let c = &connections(&frames)[0];
        assert!(c.joined_mid_stream);
        let stream = &c.client_stream;
        assert!(stream.gaps.is_empty(), "{:?}", stream.gaps);
        assert_eq!(stream.length, 20);
        assert_eq!(stream.retransmitted, 20);
        assert_eq!(stream.bytes, b"KLMNOPQRSTUVWXYZ0123");
    }

    /// A headers-only capture of a 5 GiB transfer: the sequence space
    /// wraps more than once, and the length, the retransmitted and the
    /// uncaptured counts are 64-bit, never saturated at 4 GiB.
    #[test]
    fn a_stream_past_four_gigabytes_keeps_counting() {
        const SEGMENT: u32 = 65_000;
        let payload = vec![0u8; SEGMENT as usize];
        let mut cut = fixtures::frame(
            LinkType::Ethernet,
            &Spec {
                seq: CLIENT_ISN + 1,
                ack: Some(SERVER_ISN + 1),
                payload: &payload,
                ..Spec::default()
            },
        );
        cut.data.truncate(cut.data.len() - payload.len());
        let (template, errors) = dissect_all(LinkType::Ethernet, &[cut]);
        assert!(errors.is_empty(), "{errors:?}");
        let template = &template[0];
        assert_eq!(template.payload_len, SEGMENT);
        let frames = fixtures::tutorial(LinkType::Ethernet);
        let (handshake, _) = dissect_all(LinkType::Ethernet, &frames[..3]);
        let mut builder = ConversationBuilder::default();
        for segment in handshake {
            builder.push(segment);
        }
        let total: u64 = 5 << 30;
        let count = total.div_ceil(u64::from(SEGMENT));
        for i in 0..count {
            let mut segment = template.clone();
            segment.seq = SeqNum(CLIENT_ISN + 1) + (i * u64::from(SEGMENT)) as u32;
            segment.frame = 4 + i as usize;
            builder.push(segment.clone());
            // Every 1000th segment sent twice: 1000 × 65,000 bytes again.
            if i % 1000 == 999 {
                builder.push(segment);
            }
        }
        let c = &builder.finish()[0];
        let stream = &c.client_stream;
        assert!(stream.gaps.is_empty(), "{:?}", &stream.gaps[..1]);
        assert_eq!(stream.length, count * u64::from(SEGMENT));
        assert!(stream.length > total);
        assert_eq!(stream.retransmitted, (count / 1000) * u64::from(SEGMENT));
        assert_eq!(
            stream.uncaptured,
            (count + count / 1000) * u64::from(SEGMENT)
        );
    }

    /// A SYN retried with the same ISN after a RST (as Windows retries a
    /// refused connect) is the same attempt, as tshark counts streams; a
    /// SYN with another ISN is a new one.
    #[test]
    fn a_syn_retried_after_a_reset_with_the_same_isn_is_one_attempt() {
        let refused = fixtures::refused_attempt(LinkType::Ethernet);
        let twice: Vec<_> = refused.iter().chain(&refused).cloned().collect();
        let conns = connections(&twice);
        assert_eq!(conns.len(), 1);
        assert_eq!(conns[0].syn_count(), 2);
        assert!(conns[0].refused());
        // Retried, then answered.
        let mut answered = refused.clone();
        answered.push(refused[0].clone());
        answered.push(fixtures::frame(
            LinkType::Ethernet,
            &Spec {
                from_client: false,
                syn: true,
                seq: 900,
                ack: Some(6),
                ..Spec::default()
            },
        ));
        let conns = connections(&answered);
        assert_eq!(conns.len(), 1);
        assert!(conns[0].established() && !conns[0].refused());
        // Another ISN: another attempt.
        let mut other = refused.clone();
        other.push(fixtures::frame(
            LinkType::Ethernet,
            &Spec {
                syn: true,
                seq: 77,
                ..Spec::default()
            },
        ));
        assert_eq!(connections(&other).len(), 2);
    }

    #[test]
    fn refused_attempt_is_its_own_connection() {
        let frames = fixtures::refused_attempt(LinkType::Ethernet);
        let c = &connections(&frames)[0];
        assert!(c.refused());
        assert!(!c.established());
        assert!(c.close.complete);
    }

    /// A capture that starts after the handshake, with the server's
    /// segment first: the well-known port is still the server, and the
    /// connection says it was joined mid-stream.
    #[test]
    fn a_connection_joined_mid_stream_is_oriented_by_its_ports() {
        let frames = fixtures::tutorial(LinkType::Ethernet);
        // Drop the handshake and the client's data: the server's ACK first.
        let (segments, _) = dissect_all(LinkType::Ethernet, &frames[4..]);
        let mut moved: Vec<_> = segments
            .into_iter()
            .map(|mut s| {
                // The tutorial's ports, the server's made well-known.
                for end in [&mut s.src, &mut s.dst] {
                    if end.port() == 1712 {
                        end.set_port(80);
                    }
                }
                s
            })
            .collect();
        assert_eq!(moved[0].src.port(), 80, "the server speaks first");
        let connections = build(&std::mem::take(&mut moved));
        assert_eq!(connections.len(), 1);
        assert_eq!(connections[0].server.port(), 80);
        assert!(connections[0].joined_mid_stream);
        assert!(!build(&dissect_all(LinkType::Ethernet, &frames).0)[0].joined_mid_stream);
    }

    /// Both ports ephemeral, the server's the higher: the port rule alone
    /// would take the client for the server, but the server answered a SYN
    /// elsewhere in the capture, before or after.
    #[test]
    fn an_end_seen_listening_is_the_server_of_a_connection_joined_mid_stream() {
        let frames = fixtures::tutorial(LinkType::Ethernet);
        let (all, _) = dissect_all(LinkType::Ethernet, &frames);
        let moved = |s: &Segment, client_port: u16| {
            let mut s = s.clone();
            for end in [&mut s.src, &mut s.dst] {
                end.set_port(if end.port() == 1712 {
                    50000
                } else {
                    client_port
                });
            }
            s
        };
        // A full connection from port 40000 to the listener on 50000, and
        // a mid-stream one from 40001 (data on, handshake missing).
        let full: Vec<Segment> = all.iter().map(|s| moved(s, 40000)).collect();
        let joined: Vec<Segment> = all[3..].iter().map(|s| moved(s, 40001)).collect();
        for segments in [
            [full.clone(), joined.clone()].concat(),
            [joined.clone(), full.clone()].concat(),
        ] {
            let connections = build(&segments);
            let mid = connections.iter().find(|c| c.joined_mid_stream).unwrap();
            assert_eq!(mid.server.port(), 50000, "{}", mid.label());
            assert_eq!(mid.client_stream.bytes, b"Hello server!");
            assert_eq!(mid.close.first_fin, Some(Direction::ClientToServer));
        }
        // Without the full connection, the port rule: the lower port.
        let alone = build(&joined);
        assert_eq!(alone[0].server.port(), 40001);
        // …unless the side taken for the server sends a SYN later on.
        let mut reopened: Vec<Segment> = joined[..2].to_vec();
        reopened.push(moved(&all[0], 40001));
        let turned = build(&reopened);
        assert_eq!(turned.len(), 1);
        assert_eq!(turned[0].server.port(), 50000, "{}", turned[0].label());
        assert_eq!(turned[0].syn_count(), 1);
    }

    /// The tutorial's exchange `n` times, each from a port of its own.
    fn many_exchanges(n: u16) -> Vec<Segment> {
        let (one, _) = dissect_all(LinkType::Ethernet, &fixtures::tutorial(LinkType::Ethernet));
        let mut frame = 0;
        (0..n)
            .flat_map(|i| {
                one.iter()
                    .map(|s| {
                        let mut s = s.clone();
                        for end in [&mut s.src, &mut s.dst] {
                            if end.port() != 1712 {
                                end.set_port(40000 + i);
                            }
                        }
                        s
                    })
                    .collect::<Vec<_>>()
            })
            .map(|mut s| {
                frame += 1;
                s.frame = frame;
                s
            })
            .collect()
    }

    /// Connections over and quiet are handed on and forgotten, so what is
    /// held follows the connections still open; a straggler of one taken
    /// out is counted, not taken for a new connection.
    #[test]
    fn finished_connections_are_taken_out_and_stragglers_counted() {
        let segments = many_exchanges(100);
        let mut builder = ConversationBuilder::with_retention(Retention::ALL);
        let mut taken = Vec::new();
        let mut most_held = 0;
        for s in segments.iter().cloned() {
            let frame = s.frame;
            builder.push(s);
            taken.extend(builder.take_finished(frame, 16));
            most_held = most_held.max(builder.connections().count());
        }
        assert!(most_held <= 4, "held {most_held} at once");
        // A late duplicate of the first connection's last ACK.
        builder.push(segments[7].clone());
        assert_eq!(builder.late_segments(), 1);
        taken.extend(builder.finish_numbered());
        let numbers: Vec<usize> = taken.iter().map(|(n, _)| *n).collect();
        assert_eq!(numbers, (1..=100).collect::<Vec<_>>());
        assert!(taken
            .iter()
            .all(|(_, c)| c.client_stream.bytes == b"Hello server!"));
    }

    /// Under a bounded retention a long stream keeps its first bytes and
    /// its digest of all of them, and a long connection its first and
    /// last segments with the middle counted.
    #[test]
    fn a_bounded_retention_keeps_the_ends_and_the_digest() {
        let chunk = b"0123456789abcdef";
        let mut frames = fixtures::tutorial(LinkType::Ethernet);
        frames.splice(4..4, (0..100u32).map(|i| client_data(13 + 16 * i, chunk)));
        let (segments, _) = dissect_all(LinkType::Ethernet, &frames);
        let whole = build(&segments).remove(0);
        let retention = Retention {
            stream_bytes: 32,
            head_segments: 10,
            tail_segments: 5,
            held_bytes: 1024,
        };
        let mut builder = ConversationBuilder::with_retention(retention);
        for s in segments {
            builder.push(s);
        }
        let bounded = builder.finish().remove(0);
        assert_eq!(bounded.client_stream.bytes, whole.client_stream.bytes[..32]);
        assert_eq!(
            bounded.client_stream.digest,
            digest(&whole.client_stream.bytes)
        );
        assert_eq!(bounded.client_stream.digest, whole.client_stream.digest);
        assert_eq!(bounded.client_stream.length, 13 + 1600);
        assert_eq!(bounded.segments.len(), 15);
        assert_eq!(bounded.elided, Some(Elided { at: 10, count: 93 }));
        assert_eq!(bounded.segment_count(), whole.segments.len());
        assert_eq!(
            bounded.segments.last().map(|p| p.segment.frame),
            whole.segments.last().map(|p| p.segment.frame)
        );
    }

    /// Pieces out of order wait for the gap before them; past the held
    /// limit, the gap is declared.
    #[test]
    fn out_of_order_pieces_wait_for_their_gap_within_the_limit() {
        let mut frames = fixtures::tutorial(LinkType::Ethernet);
        frames.swap(3, 4); // the server's ACK of the data before the data
                           // "server!" first, then "Hello ".
        frames[4] = client_data(6, b"server!");
        frames.insert(5, client_data(0, b"Hello "));
        let (segments, _) = dissect_all(LinkType::Ethernet, &frames);
        let waits = build(&segments).remove(0);
        assert_eq!(waits.client_stream.bytes, b"Hello server!");
        assert!(waits.client_stream.gaps.is_empty());
        let mut builder = ConversationBuilder::with_retention(Retention {
            held_bytes: 4,
            ..Retention::ALL
        });
        for s in segments {
            builder.push(s);
        }
        let declared = builder.finish().remove(0);
        assert_eq!(declared.client_stream.gaps, [(0, 6)]);
    }

    #[test]
    fn without_a_well_known_port_the_ephemeral_side_is_the_client() {
        let a = |p| SocketAddr::from(([127, 0, 0, 1], p));
        assert!(server_side_of(a(1712), a(45000)));
        assert!(!server_side_of(a(45000), a(1712)));
        assert!(server_side_of(a(443), a(2000)));
        assert!(server_side_of(a(2000), a(3000)), "the lower port at last");
    }
}
