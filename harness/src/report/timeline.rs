//! The socket calls beside the wire: the server's calls, the segments and
//! the client's calls in one time order, three columns, as a learner would
//! draw the lesson: socket → bind → listen(1) → accept → recv(1024) on the
//! left, SYN, SYN/ACK, ACK in the middle, socket → connect → send → close
//! on the right.
//!
//! strace stamps each call and libpcap each frame from the same clock, so
//! the order is the order things happened. A call is placed when it
//! returned: a blocking `accept` returns after the handshake's ACK, a
//! `recv` after the data it reads, which is what the lesson shows.

use std::time::Duration;

use wire::conversation::{Connection, Direction};

use crate::calls::CellCalls;

/// One row: exactly one of the three columns is filled.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub server: String,
    pub wire: String,
    pub client: String,
}

/// A segment as the timeline shows it: `SYN →`, `← SYN, ACK`, `PSH, ACK
/// Len=13 →`.
fn segment_text(conn: &Connection, index: usize) -> String {
    let p = &conn.segments[index];
    let flags = p.segment.flags.to_string();
    let len = if p.segment.payload_len > 0 {
        format!(" Len={}", p.segment.payload_len)
    } else {
        String::new()
    };
    match p.direction {
        Direction::ClientToServer => format!("{flags}{len} →"),
        Direction::ServerToClient => format!("← {flags}{len}"),
    }
}

fn seconds(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// The rows of `conn`'s segments and `calls`, in time order. Empty when
/// no calls were recorded.
pub fn rows(conn: Option<&Connection>, calls: &CellCalls) -> Vec<Row> {
    if calls.is_empty() {
        return Vec::new();
    }
    // (when, tie-break order, row)
    let mut events: Vec<(f64, usize, Row)> = Vec::new();
    let row = |server: String, wire: String, client: String| Row {
        server,
        wire,
        client,
    };
    for (column, recorded) in [(0, &calls.server), (2, &calls.client)] {
        for call in recorded.iter().flat_map(|r| &r.calls) {
            let text = call.to_string();
            let r = if column == 0 {
                row(text, String::new(), String::new())
            } else {
                row(String::new(), String::new(), text)
            };
            events.push((call.at, events.len(), r));
        }
    }
    if let Some(conn) = conn {
        for (i, p) in conn.segments.iter().enumerate() {
            events.push((
                seconds(p.segment.timestamp),
                events.len(),
                row(String::new(), segment_text(conn, i), String::new()),
            ));
        }
    }
    events.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    events.into_iter().map(|(_, _, r)| r).collect()
}

/// Cuts `text` to `width` characters, with `…` where it was cut.
fn fit(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(width.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// The rows as text, in three columns that fit `width` characters.
pub fn render(rows: &[Row], width: usize) -> String {
    let widest = |f: fn(&Row) -> &str, header: &str| {
        rows.iter()
            .map(|r| f(r).chars().count())
            .chain(std::iter::once(header.chars().count()))
            .max()
            .unwrap_or(0)
    };
    let gap = 2;
    let mut server_w = widest(|r| &r.server, "server calls");
    let mut wire_w = widest(|r| &r.wire, "on the wire");
    let client_w = widest(|r| &r.client, "client calls");
    // Narrow terminals: the side columns give way first, the wire last.
    let budget = width.saturating_sub(2 * gap);
    while server_w + wire_w + client_w > budget && server_w > 16 {
        server_w -= 1;
    }
    while server_w + wire_w + client_w > budget && wire_w > 12 {
        wire_w -= 1;
    }
    let line = |a: &str, b: &str, c: &str| {
        let text = format!(
            "{:<server_w$}{:gap$}{:<wire_w$}{:gap$}{}",
            fit(a, server_w),
            "",
            fit(b, wire_w),
            "",
            c
        );
        fit(text.trim_end(), width.max(40))
    };
    let mut out = line("server calls", "on the wire", "client calls");
    out.push('\n');
    for r in rows {
        out.push_str(&line(&r.server, &r.wire, &r.client));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calls::{strace, Recorded};
    use wire::dissect::{dissect_all, LinkType};
    use wire::fixtures;

    #[test]
    fn calls_and_segments_interleave_by_time() {
        let frames = fixtures::tutorial(LinkType::Ethernet);
        let conn = wire::conversation::build(&dissect_all(LinkType::Ethernet, &frames).0)
            .into_iter()
            .next()
            .unwrap();
        let first = seconds(conn.segments[0].segment.timestamp);
        let last = seconds(conn.segments.last().unwrap().segment.timestamp);
        // listen before the SYN; close after the last segment.
        let server = format!(
            "1 {} listen(3<TCP:[127.0.0.1:1712]>, 1) = 0 <0.0>\n1 {} close(3<TCP:[127.0.0.1:1712]>) = 0 <0.0>\n",
            first - 1.0,
            last + 1.0
        );
        let calls = CellCalls {
            server: Some(Recorded {
                trace_file: String::new(),
                calls: strace::parse(&server, 1712),
                error: None,
            }),
            client: None,
        };
        let rows = rows(Some(&conn), &calls);
        assert_eq!(rows.first().unwrap().server, "listen(1)");
        assert_eq!(rows[1].wire, "SYN →");
        assert_eq!(rows[2].wire, "← SYN, ACK");
        assert_eq!(rows.last().unwrap().server, "close(listener)");
        assert_eq!(rows.len(), conn.segments.len() + 2);
        let text = render(&rows, 100);
        assert!(text.starts_with("server calls"), "{text}");
        assert!(text.lines().all(|l| l.chars().count() <= 100), "{text}");
        // No calls recorded: no timeline.
        assert!(super::rows(Some(&conn), &CellCalls::default()).is_empty());
    }
}
