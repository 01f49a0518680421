//! What each packet means in the conversation, in words: the comments the
//! annotated pcapng carries, and the labels of the ladder diagrams.
//!
//! The words follow the tutorials: "handshake 1/3: SYN" rather than flags
//! alone, so a capture explains itself when opened in Wireshark.

use std::collections::{BTreeMap, HashMap};

use wire::conversation::{Connection, Direction, Phase, Placed};
use wire::seq::SeqNum;

fn side(direction: Direction) -> &'static str {
    match direction {
        Direction::ClientToServer => "client",
        Direction::ServerToClient => "server",
    }
}

/// What a segment is beside its place in the conversation: a loss, a
/// retransmission, a duplicate ACK. Read from the capture alone, by the
/// rules Wireshark's TCP analysis uses, so that `inspect` of any capture
/// says the same as a cell's report.
#[derive(Debug, Default)]
pub struct Notes(HashMap<usize, String>);

impl Notes {
    /// Every segment of `conn` worth a note, by frame; one pass.
    pub fn of(conn: &Connection) -> Notes {
        // A segment is identified by its way, where it starts, its length
        // and its SYN and FIN: a second one alike is its retransmission.
        type Key = (bool, u32, u32, bool, bool);
        let mut first: HashMap<Key, &Placed> = HashMap::new();
        // The highest acknowledgement each way has seen from the other
        // (relative, so 1 acknowledges a SYN).
        // Compared in sequence space (serial-number order), so a stream
        // past 4 GiB, whose relative numbers wrap, is still read right.
        let mut acked = [SeqNum(0); 2];
        // The last pure ACK each way, and how many times it was repeated.
        let mut last_ack: [Option<(u32, u16, usize, usize)>; 2] = [None, None];
        let mut notes = HashMap::new();
        let index = |d: Direction| usize::from(d == Direction::ServerToClient);
        for p in &conn.segments {
            let f = p.segment.flags;
            let way = index(p.direction);
            let other = 1 - way;
            let len = p.segment.payload_len;
            if f.ack && !f.rst && acked[other].is_before(SeqNum(p.rel_ack)) {
                acked[other] = SeqNum(p.rel_ack);
            }
            if len > 0 || f.syn || f.fin {
                let key = (way == 1, p.rel_seq, len, f.syn, f.fin);
                match first.get(&key) {
                    Some(earlier) => {
                        let after = p
                            .segment
                            .timestamp
                            .saturating_sub(earlier.segment.timestamp);
                        notes.insert(
                            p.segment.frame,
                            format!(
                                "retransmission of frame {} after {}",
                                earlier.segment.frame,
                                seconds(after)
                            ),
                        );
                        // Not acknowledged by the time it was sent again:
                        // the first copy never reached the receiver.
                        let end = SeqNum(p.rel_seq) + len + u32::from(f.syn) + u32::from(f.fin);
                        if acked[way].is_before(end) && !notes.contains_key(&earlier.segment.frame)
                        {
                            notes.insert(
                                earlier.segment.frame,
                                format!(
                                    "not received by the {}: never acknowledged, sent again in frame {}",
                                    side(match p.direction {
                                        Direction::ClientToServer => Direction::ServerToClient,
                                        Direction::ServerToClient => Direction::ClientToServer,
                                    }),
                                    p.segment.frame
                                ),
                            );
                        }
                    }
                    None => {
                        first.insert(key, p);
                    }
                }
                last_ack[way] = None;
            } else if f.ack && !f.rst {
                let this = (p.rel_ack, p.segment.window);
                match &mut last_ack[way] {
                    Some((ack, window, frame, repeats)) if (*ack, *window) == this => {
                        *repeats += 1;
                        notes.insert(
                            p.segment.frame,
                            format!("duplicate ACK #{repeats} of frame {frame}"),
                        );
                    }
                    slot => *slot = Some((this.0, this.1, p.segment.frame, 0)),
                }
            }
        }
        Notes(notes)
    }

    fn get(&self, frame: usize) -> Option<&str> {
        self.0.get(&frame).map(String::as_str)
    }
}

/// "1.02 s", "130 µs": as long as it needs to be read at a glance.
fn seconds(d: std::time::Duration) -> String {
    if d.as_millis() >= 100 {
        format!("{:.2} s", d.as_secs_f64())
    } else if d.as_micros() >= 1000 {
        format!("{:.1} ms", d.as_secs_f64() * 1e3)
    } else {
        format!("{} µs", d.as_micros())
    }
}

/// The comment for one segment of `conn`, with its note (see [`Notes`])
/// after a semicolon.
pub fn describe(conn: &Connection, notes: &Notes, p: &Placed) -> String {
    let what = what(conn, p);
    match notes.get(p.segment.frame) {
        Some(note) => format!("{what}; {note}"),
        None => what,
    }
}

/// What a segment does in the conversation.
fn what(conn: &Connection, p: &Placed) -> String {
    let f = p.segment.flags;
    let arrow = p.direction.arrow();
    let len = p.segment.payload_len;
    if f.rst {
        if conn
            .close
            .late_resets
            .iter()
            .any(|(frame, _)| *frame == p.segment.frame)
        {
            return format!(
                "after the close: RST from {} (answers a late duplicate)",
                side(p.direction)
            );
        }
        return if conn.refused() && p.direction == Direction::ServerToClient {
            "refused: RST/ACK (nobody listens on this port)".to_string()
        } else {
            format!("reset: RST from {}", side(p.direction))
        };
    }
    if f.syn && !f.ack {
        return if conn.refused() {
            "connection attempt: SYN".to_string()
        } else {
            "handshake 1/3: SYN".to_string()
        };
    }
    if f.syn && f.ack {
        return "handshake 2/3: SYN/ACK".to_string();
    }
    if f.fin {
        let data = if len > 0 {
            format!(" with {len} data bytes")
        } else {
            String::new()
        };
        return format!("teardown: FIN from {}{data}", side(p.direction));
    }
    if p.phase == Phase::Handshake {
        return "handshake 3/3: ACK".to_string();
    }
    if len > 0 {
        return format!("data: {len} bytes {arrow}");
    }
    match p.phase {
        Phase::Teardown => format!("teardown: ACK from {}", side(p.direction)),
        _ => format!(
            "ack: {} acknowledges {} bytes",
            side(p.direction),
            p.rel_ack.saturating_sub(1)
        ),
    }
}

/// Comments keyed by frame number (1-based, as Wireshark counts).
pub fn comments(connections: &[Connection]) -> BTreeMap<usize, String> {
    connections
        .iter()
        .flat_map(|conn| {
            let notes = Notes::of(conn);
            conn.segments
                .iter()
                .map(move |p| (p.segment.frame, describe(conn, &notes, p)))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// One pcapng interface of `frames`, each carrying its comment: the
/// per-cell annotated capture and the scenario's merged one alike.
pub fn annotated_interface<'a>(
    name: String,
    description: String,
    link: wire::dissect::LinkType,
    frames: &'a [wire::dissect::Frame],
    connections: &[Connection],
) -> wire::savefile::Interface<'a> {
    let mut comments = comments(connections);
    wire::savefile::Interface {
        name,
        description,
        link,
        frames: frames
            .iter()
            .enumerate()
            .map(|(i, f)| (f, comments.remove(&(i + 1))))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wire::conversation::build;
    use wire::dissect::{dissect_all, LinkType};
    use wire::fixtures;

    #[test]
    fn the_tutorial_conversation_in_words() {
        let frames = fixtures::tutorial(LinkType::Ethernet);
        let (segments, _) = dissect_all(LinkType::Ethernet, &frames);
        let comments = comments(&build(&segments));
        let words: Vec<&str> = comments.values().map(String::as_str).collect();
        assert_eq!(words[0], "handshake 1/3: SYN");
        assert_eq!(words[1], "handshake 2/3: SYN/ACK");
        assert_eq!(words[2], "handshake 3/3: ACK");
        assert_eq!(words[3], "data: 13 bytes client→server");
        assert!(words.contains(&"teardown: FIN from client"), "{words:?}");
        assert!(words.contains(&"teardown: FIN from server"), "{words:?}");
        assert!(
            !words.iter().any(|w| w.contains(';')),
            "no notes: {words:?}"
        );
    }

    /// A SYN sent again a second later: the first is lost, the second its
    /// retransmission. The same SYN with a SYN/ACK in between would be a
    /// retransmission only (nothing was lost).
    #[test]
    fn a_lost_syn_and_its_retransmission_are_named() {
        let mut frames = fixtures::tutorial(LinkType::Ethernet);
        let mut again = frames[0].clone();
        again.timestamp += std::time::Duration::from_millis(1020);
        for later in frames.iter_mut() {
            later.timestamp += std::time::Duration::from_millis(1020);
        }
        frames[0].timestamp -= std::time::Duration::from_millis(1020);
        frames.insert(1, again);
        let (segments, _) = dissect_all(LinkType::Ethernet, &frames);
        let comments = comments(&build(&segments));
        assert_eq!(
            comments[&1],
            "handshake 1/3: SYN; not received by the server: never acknowledged, sent again in frame 2"
        );
        assert_eq!(
            comments[&2],
            "handshake 1/3: SYN; retransmission of frame 1 after 1.02 s"
        );
        assert_eq!(comments[&3], "handshake 2/3: SYN/ACK");
    }
}
