//! The tutorial's table: one row per handshake segment, the columns the
//! tutorials read off Wireshark's packet list (flags, Seq, Ack, window).
//!
//! Shown first for a pairing (terminal and HTML reports) and for each
//! connection `inspect` explains, before the ladder and the field table.
//! The window is given both ways, labelled: the raw 16-bit field the
//! segment carries, and the value Wireshark shows, which after the
//! handshake is the raw field times the sender's window scale (when both
//! SYNs offered window scaling; a SYN's own window is never scaled).

use std::fmt::Write as _;

use wire::conversation::{Connection, Direction, Phase, Placed};
use wire::tcp_options::TcpOption;

/// One row: a handshake segment as the tutorial reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub label: &'static str,
    pub frame: usize,
    pub flags: String,
    pub seq: u32,
    pub ack: Option<u32>,
    pub raw_window: u16,
    /// The window scale multiplier that applies to this segment (1 for a
    /// SYN, or when scaling was not agreed).
    pub scale: u64,
}

impl Row {
    /// The window as Wireshark's packet list shows it.
    pub fn window(&self) -> u64 {
        u64::from(self.raw_window) * self.scale
    }
}

/// The shift a side offered in its SYN, if it did.
fn offered_shift(p: &Placed) -> Option<u8> {
    p.segment.options.iter().find_map(|o| match o {
        TcpOption::WindowScale { shift } => Some(shift.min(14)),
        _ => None,
    })
}

/// The handshake's rows: the first SYN, SYN/ACK and third ACK that got
/// through (a retransmission is the same row); fewer for a refused or
/// unanswered attempt (SYN, then RST/ACK).
pub fn rows(conn: &Connection) -> Vec<Row> {
    let syn = conn
        .segments
        .iter()
        .find(|p| p.direction == Direction::ClientToServer && p.segment.flags.syn);
    let syn_ack = conn
        .segments
        .iter()
        .find(|p| p.direction == Direction::ServerToClient && p.segment.flags.syn);
    // Scaling applies only when both SYNs offered it (RFC 7323).
    let shifts = match (syn.and_then(offered_shift), syn_ack.and_then(offered_shift)) {
        (Some(c), Some(s)) => Some((c, s)),
        _ => None,
    };
    let third = conn.segments.iter().find(|p| {
        p.direction == Direction::ClientToServer
            && p.phase == Phase::Handshake
            && !p.segment.flags.syn
    });
    let reset = conn.segments.iter().find(|p| {
        p.direction == Direction::ServerToClient && p.segment.flags.rst && syn_ack.is_none()
    });
    let row = |label, p: &Placed| {
        let scale = match (p.segment.flags.syn, shifts) {
            (false, Some((client, server))) => {
                1u64 << if p.direction == Direction::ClientToServer {
                    client
                } else {
                    server
                }
            }
            _ => 1,
        };
        Row {
            label,
            frame: p.segment.frame,
            flags: p.segment.flags.to_string(),
            seq: p.rel_seq,
            ack: p.segment.flags.ack.then_some(p.rel_ack),
            raw_window: p.segment.window,
            scale,
        }
    };
    let mut out = Vec::new();
    out.extend(syn.map(|p| row("SYN", p)));
    out.extend(syn_ack.map(|p| row("SYN/ACK", p)));
    out.extend(third.map(|p| row("ACK", p)));
    out.extend(reset.map(|p| row("RST/ACK", p)));
    out
}

/// The rows as a text table. The window column says which is which: "64
/// × 1024 = 65536" where the scale applies, the raw value alone where it
/// does not.
pub fn render(conn: &Connection) -> String {
    let rows = rows(conn);
    if rows.is_empty() {
        return String::new();
    }
    let window = |r: &Row| match r.scale {
        1 => r.raw_window.to_string(),
        s => format!("{} × {s} = {}", r.raw_window, r.window()),
    };
    let table: Vec<[String; 6]> = std::iter::once([
        "segment".to_string(),
        "frame".into(),
        "flags".into(),
        "Seq".into(),
        "Ack".into(),
        "Win (raw field × scale = as Wireshark shows it)".into(),
    ])
    .chain(rows.iter().map(|r| {
        [
            r.label.to_string(),
            r.frame.to_string(),
            r.flags.clone(),
            r.seq.to_string(),
            r.ack.map_or_else(|| "-".into(), |a| a.to_string()),
            window(r),
        ]
    }))
    .collect();
    let widths: Vec<usize> = (0..6)
        .map(|i| {
            table
                .iter()
                .map(|r| r[i].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in &table {
        let mut line = String::from("  ");
        for (i, cell) in row.iter().enumerate() {
            // Numbers right-aligned, words left.
            let pad = widths[i] - cell.chars().count();
            if (1..=4).contains(&i) && i != 2 {
                line.push_str(&" ".repeat(pad));
                line.push_str(cell);
            } else {
                line.push_str(cell);
                if i < 5 {
                    line.push_str(&" ".repeat(pad));
                }
            }
            if i < 5 {
                line.push_str("  ");
            }
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use wire::dissect::{dissect_all, LinkType};
    use wire::fixtures;

    /// The tutorial's conversation: both SYNs offer a window scale (the
    /// fixture's client shift 7, the server's none by default), so only a
    /// connection where both do scales the third ACK.
    #[test]
    fn the_handshake_rows_give_both_windows() {
        let frames = fixtures::tutorial(LinkType::Ethernet);
        let conn = &wire::conversation::build(&dissect_all(LinkType::Ethernet, &frames).0)[0];
        let rows = rows(conn);
        let labels: Vec<&str> = rows.iter().map(|r| r.label).collect();
        assert_eq!(labels, ["SYN", "SYN/ACK", "ACK"]);
        assert_eq!((rows[0].seq, rows[0].ack), (0, None));
        assert_eq!((rows[1].seq, rows[1].ack), (0, Some(1)));
        assert_eq!((rows[2].seq, rows[2].ack), (1, Some(1)));
        // A SYN's window is never scaled.
        assert_eq!(rows[0].scale, 1);
        let text = render(conn);
        assert!(text.contains("Win (raw field × scale"), "{text}");
    }

    /// A real capture of Linux's loopback: both SYNs offer WS=1024, so the
    /// third ACK's raw 64 is Wireshark's 65536.
    #[test]
    fn a_real_loopback_handshake_scales_the_third_ack() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/captures/real-tcpdump-lo.pcap");
        let (link, frames) = crate::capture::read_file(&path).unwrap();
        let conn = &wire::conversation::build(&dissect_all(link, &frames).0)[0];
        let rows = rows(conn);
        assert_eq!(rows[2].label, "ACK");
        assert_eq!(rows[2].scale, 1024);
        assert_eq!(rows[2].window(), u64::from(rows[2].raw_window) * 1024);
        assert!(render(conn).contains(&format!(
            "{} × 1024 = {}",
            rows[2].raw_window,
            rows[2].window()
        )));
    }
}
