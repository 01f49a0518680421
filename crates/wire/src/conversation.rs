//! From segments to conversations: connections, relative numbers, streams
//! and phases.
//!
//! A connection is keyed by its 4-tuple and oriented by its first SYN, so
//! "client" is whoever opened it. Sequence and acknowledgement numbers are
//! made relative to each side's ISN, as Wireshark shows them by default.
//! Each direction's payload is reassembled by sequence number, so
//! retransmissions and overlaps do not change the stream, and gaps are
//! reported rather than papered over.

use std::collections::BTreeMap;
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
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stream {
    /// In-order bytes from relative seq 1 up to the first gap.
    pub bytes: Vec<u8>,
    /// Byte ranges `[start, end)` (offsets into the stream) never seen.
    pub gaps: Vec<(u32, u32)>,
    /// Payload bytes that were sent more than once.
    pub retransmitted: u32,
    /// Payload bytes that lay beyond the snapshot length and were not captured.
    pub uncaptured: u32,
    /// Distinct payload bytes in sequence space, captured or not: the
    /// stream's length even when a snaplen cut the payload.
    pub length: u64,
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
    pub segments: Vec<Placed>,
    pub client_stream: Stream,
    pub server_stream: Stream,
    pub close: Close,
    /// No SYN opened it in the capture: the capture started after the
    /// handshake, and the client was told from the server by the ports.
    pub joined_mid_stream: bool,
}

impl Connection {
    /// SYN segments the client sent (more than one means it retried).
    pub fn syn_count(&self) -> usize {
        self.segments
            .iter()
            .filter(|p| {
                p.direction == Direction::ClientToServer
                    && p.segment.flags.syn
                    && !p.segment.flags.ack
            })
            .count()
    }

    /// Refused: the server answered the SYN with a RST and never a SYN/ACK.
    pub fn refused(&self) -> bool {
        self.server_isn.is_none()
            && self
                .segments
                .iter()
                .any(|p| p.direction == Direction::ServerToClient && p.segment.flags.rst)
    }

    /// Opened: a SYN/ACK came back.
    pub fn established(&self) -> bool {
        self.server_isn.is_some()
    }

    /// Frees every payload byte: the segments' and the reassembled
    /// streams'. Lengths, numbers, flags, options and gaps stay, which is
    /// all a ladder, a comment or a report needs once the bytes have been
    /// checked and hashed; a run of many large cells then holds headers,
    /// not transfers.
    pub fn drop_payloads(&mut self) {
        for p in &mut self.segments {
            p.segment.payload = Vec::new();
        }
        self.segments.shrink_to_fit();
        self.client_stream.bytes = Vec::new();
        self.server_stream.bytes = Vec::new();
    }

    pub fn label(&self) -> String {
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

/// Connections built segment by segment, as a capture delivers them: each
/// segment is placed once, never rescanned, so a caller can feed a live
/// capture or a file of any length without holding its frames.
#[derive(Debug, Default)]
pub struct ConversationBuilder {
    connections: Vec<Connection>,
    /// Key: (client, server) once oriented. A later SYN on the same 4-tuple
    /// after a completed close is a new connection (port reuse).
    open: BTreeMap<(SocketAddr, SocketAddr), usize>,
    /// The connection the previous segment went to.
    last: Option<usize>,
    /// Segments still expected, as a hint for the first connection's room.
    expected: usize,
}

impl ConversationBuilder {
    /// A builder that expects about `segments` segments in all.
    pub fn with_capacity(segments: usize) -> ConversationBuilder {
        ConversationBuilder {
            expected: segments,
            ..ConversationBuilder::default()
        }
    }

    /// Places one segment in its connection, opening a new one when needed.
    pub fn push(&mut self, segment: Segment) {
        let forward = (segment.src, segment.dst);
        let backward = (segment.dst, segment.src);
        let fresh_syn = segment.flags.syn && !segment.flags.ack;
        let connections = &mut self.connections;
        // Consecutive segments nearly always belong to the same connection.
        let same_as_last = self.last.filter(|&i: &usize| {
            let c: &Connection = &connections[i];
            (c.client, c.server) == forward || (c.client, c.server) == backward
        });
        let existing = same_as_last.or_else(|| {
            self.open
                .get(&forward)
                .or_else(|| self.open.get(&backward))
                .copied()
        });
        let index = match existing {
            Some(i) if !(fresh_syn && connections[i].close.complete) => i,
            _ => {
                // Orient by the SYN; without one (the capture joined
                // mid-stream), by the ports (see `server_side_of`).
                let joined_mid_stream = !segment.flags.syn;
                let (client, server) = if segment.flags.syn && segment.flags.ack {
                    backward
                } else if segment.flags.syn || !server_side_of(forward.0, forward.1) {
                    forward
                } else {
                    backward
                };
                connections.push(Connection {
                    client,
                    server,
                    client_isn: None,
                    server_isn: None,
                    client_base: None,
                    server_base: None,
                    progress: Progress::default(),
                    // Most captures are one connection: room for the rest
                    // of them up front, not a copy at every doubling.
                    segments: Vec::with_capacity(std::mem::take(&mut self.expected)),
                    client_stream: Stream::default(),
                    server_stream: Stream::default(),
                    close: Close::default(),
                    joined_mid_stream,
                });
                let i = connections.len() - 1;
                self.open.insert((client, server), i);
                i
            }
        };
        self.expected = self.expected.saturating_sub(1);
        place(&mut connections[index], segment);
        self.last = Some(index);
    }

    /// The connections so far, their close state up to date (their streams
    /// are reassembled by [`ConversationBuilder::finish`]).
    pub fn connections(&self) -> &[Connection] {
        &self.connections
    }

    /// The connections, each with its streams reassembled.
    pub fn finish(mut self) -> Vec<Connection> {
        for connection in &mut self.connections {
            connection.client_stream = reassemble(connection, Direction::ClientToServer);
            connection.server_stream = reassemble(connection, Direction::ServerToClient);
        }
        self.connections
    }
}

fn place(conn: &mut Connection, segment: Segment) {
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
            conn.server_base,
        ),
        Direction::ServerToClient => (
            &mut conn.server_isn,
            &mut conn.server_base,
            conn.client_base,
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
        // Without the peer's SYN there is nothing to count from: the raw value.
        peer_base.map_or(segment.ack.0, |base| segment.ack - base)
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
    conn.close.complete =
        !conn.close.resets.is_empty() || (progress.client_fin_acked && progress.server_fin_acked);
    conn.segments.push(Placed {
        direction,
        phase,
        rel_seq,
        rel_ack,
        segment,
    });
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

fn reassemble(conn: &Connection, direction: Direction) -> Stream {
    // Offsets are relative seq minus 1: the first data byte follows the SYN.
    let mut pieces: Vec<(u32, &[u8], u32)> = conn
        .segments
        .iter()
        .filter(|p| p.direction == direction && p.segment.payload_len > 0)
        .map(|p| {
            // Data starts one past the SYN, which occupies relative seq 0.
            let offset = (p.rel_seq + u32::from(p.segment.flags.syn)).wrapping_sub(1);
            (offset, p.segment.payload.as_slice(), p.segment.payload_len)
        })
        .collect();
    pieces.sort_by_key(|(offset, _, _)| *offset);
    let mut stream = Stream::default();
    let mut end: u32 = 0;
    let mut sent: u64 = 0;
    for (offset, captured, len) in pieces {
        sent += u64::from(len);
        // Saturating: a malformed capture can claim anything.
        stream.uncaptured = stream
            .uncaptured
            .saturating_add(len.saturating_sub(captured.len() as u32));
        if offset > end {
            stream.gaps.push((end, offset));
        }
        let piece_end = offset.saturating_add(len);
        if piece_end > end {
            let skip = end.saturating_sub(offset) as usize;
            // Only a stream captured whole is kept byte for byte.
            if stream.gaps.is_empty() && stream.uncaptured == 0 && skip <= captured.len() {
                stream.bytes.extend_from_slice(&captured[skip..]);
            }
            end = piece_end;
        }
    }
    let missing: u64 = stream.gaps.iter().map(|(a, b)| u64::from(b - a)).sum();
    let unique = u64::from(end).saturating_sub(missing);
    stream.retransmitted = sent.saturating_sub(unique) as u32;
    stream.length = unique;
    stream
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dissect::{dissect_all, LinkType};
    use crate::fixtures::{self, Spec, CLIENT_ISN, SERVER_ISN};

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
        let base = CLIENT_ISN.wrapping_add(1);
        // "Hello " again, then "lo server!" overlapping it, out of order.
        let extra = [
            Spec {
                seq: base.wrapping_add(3),
                ack: Some(SERVER_ISN + 1),
                payload: b"lo server!",
                ..Spec::default()
            },
            Spec {
                seq: base,
                ack: Some(SERVER_ISN + 1),
                payload: b"Hello ",
                ..Spec::default()
            },
        ];
        for (i, spec) in extra.iter().enumerate() {
            frames.insert(4 + i, fixtures::frame(LinkType::Ethernet, spec));
        }
        let c = &connections(&frames)[0];
        assert_eq!(c.client_stream.bytes, b"Hello server!");
        assert_eq!(c.client_stream.retransmitted, 16);
        assert!(c.client_stream.gaps.is_empty());
    }

    #[test]
    fn a_missing_segment_is_a_gap() {
        let base = CLIENT_ISN.wrapping_add(1);
        let mut frames = fixtures::tutorial(LinkType::Ethernet);
        frames[3] = fixtures::frame(
            LinkType::Ethernet,
            &Spec {
                seq: base.wrapping_add(6),
                ack: Some(SERVER_ISN + 1),
                payload: b"server!",
                ..Spec::default()
            },
        );
        let c = &connections(&frames)[0];
        assert_eq!(c.client_stream.gaps, [(0, 6)]);
        assert!(c.client_stream.bytes.is_empty());
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

    #[test]
    fn without_a_well_known_port_the_ephemeral_side_is_the_client() {
        let a = |p| SocketAddr::from(([127, 0, 0, 1], p));
        assert!(server_side_of(a(1712), a(45000)));
        assert!(!server_side_of(a(45000), a(1712)));
        assert!(server_side_of(a(443), a(2000)));
        assert!(server_side_of(a(2000), a(3000)), "the lower port at last");
    }
}
