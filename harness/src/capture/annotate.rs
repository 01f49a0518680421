//! What each packet means in the conversation, in words: the comments the
//! annotated pcapng carries, and the labels of the ladder diagrams.
//!
//! The words follow the tutorials: "handshake 1/3: SYN" rather than flags
//! alone, so a capture explains itself when opened in Wireshark.

use std::collections::BTreeMap;

use wire::conversation::{Connection, Direction, Phase, Placed};

fn side(direction: Direction) -> &'static str {
    match direction {
        Direction::ClientToServer => "client",
        Direction::ServerToClient => "server",
    }
}

/// The comment for one segment of `conn`.
pub fn describe(conn: &Connection, p: &Placed) -> String {
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
            conn.segments
                .iter()
                .map(move |p| (p.segment.frame, describe(conn, p)))
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
    }
}
