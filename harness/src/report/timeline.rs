//! The socket calls beside the wire: the server's calls, the segments and
//! the client's calls in one time order, three columns, as a learner would
//! draw the lesson: socket → bind → listen(1) → accept → recv(1024) on the
//! left, SYN, SYN/ACK, ACK in the middle, socket → connect → send → close
//! on the right.
//!
//! strace stamps each call and libpcap each frame from the same clock, so
//! the order is mostly the order things happened. A call is placed when
//! it returned, and never before the segment that let it return: the
//! kernel completes the handshake before a blocking `connect` or `accept`
//! returns, a `recv` returns after the data it reads, and the empty `recv`
//! is the peer's FIN. (The two stamps are taken by different parties, the
//! tracer when it sees the call end and the capture when the packet passes
//! its tap, so on a loopback a few microseconds can put a `connect` before
//! its own SYN; the segments that caused a call settle it.)

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

#[cfg(test)]
fn seconds(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// The rows of `conn`'s segments and `calls`, in time order. Empty when
/// no calls were recorded.
pub fn rows(conn: Option<&Connection>, calls: &CellCalls) -> Vec<Row> {
    if calls.is_empty() {
        return Vec::new();
    }
    // (when, in nanoseconds, tie-break order, row)
    let mut events: Vec<(i128, usize, Row)> = Vec::new();
    let row = |server: String, wire: String, client: String| Row {
        server,
        wire,
        client,
    };
    let anchors = conn.map(Anchors::of).unwrap_or_default();
    for (column, recorded) in [(0, &calls.server), (2, &calls.client)] {
        // What this side receives travels toward it.
        let toward = if column == 0 {
            Direction::ClientToServer
        } else {
            Direction::ServerToClient
        };
        for call in recorded.iter().flat_map(|r| &r.calls) {
            for (at, text) in placed(call, &anchors, toward) {
                let r = if column == 0 {
                    row(text, String::new(), String::new())
                } else {
                    row(String::new(), String::new(), text)
                };
                events.push((at, events.len(), r));
            }
        }
    }
    if let Some(conn) = conn {
        for (i, p) in conn.segments.iter().enumerate() {
            events.push((
                nanos(p.segment.timestamp),
                events.len(),
                row(String::new(), segment_text(conn, i), String::new()),
            ));
        }
    }
    events.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    events.into_iter().map(|(_, _, r)| r).collect()
}

/// When the segments that let calls return were captured.
#[derive(Debug, Default, Clone, Copy)]
struct Anchors {
    /// The handshake's third segment (the client's ACK).
    handshake_done: Option<i128>,
    /// The first data segment each way: [toward server, toward client].
    first_data: [Option<i128>; 2],
    /// The first FIN each way.
    fin: [Option<i128>; 2],
}

/// A capture's timestamp in nanoseconds: exact, where an `f64` of seconds
/// since 1970 cannot tell apart instants closer than a quarter of a
/// microsecond.
fn nanos(d: Duration) -> i128 {
    d.as_nanos() as i128
}

/// A call's stamp (seconds since 1970, as strace prints it) in
/// nanoseconds.
fn call_nanos(at: f64) -> i128 {
    (at * 1e9).round() as i128
}

impl Anchors {
    fn of(conn: &Connection) -> Anchors {
        let way = |d: Direction| usize::from(d == Direction::ServerToClient);
        let mut a = Anchors::default();
        for p in &conn.segments {
            let t = nanos(p.segment.timestamp);
            let f = p.segment.flags;
            if p.phase == wire::conversation::Phase::Handshake
                && p.direction == Direction::ClientToServer
                && !f.syn
            {
                a.handshake_done.get_or_insert(t);
            }
            if p.segment.payload_len > 0 {
                a.first_data[way(p.direction)].get_or_insert(t);
            }
            if f.fin {
                a.fin[way(p.direction)].get_or_insert(t);
            }
        }
        a
    }
}

/// Where a call goes in time, and its text: at its return, but not before
/// what let it return. A run of `recv`s that ended on the empty read is
/// two rows: the reads of data, and the read of the FIN.
fn placed(call: &crate::calls::Call, anchors: &Anchors, toward: Direction) -> Vec<(i128, String)> {
    use crate::calls::CallKind;
    let side = usize::from(toward == Direction::ServerToClient);
    // At its own stamp, or a nanosecond after what let it return.
    let not_before = |t: f64, anchor: Option<i128>| {
        let t = call_nanos(t);
        anchor.map_or(t, |a| t.max(a + 1))
    };
    let succeeded = !call.result.starts_with('-');
    match &call.kind {
        CallKind::Accept if succeeded => vec![(
            not_before(call.at, anchors.handshake_done),
            format!("{call}: after the handshake"),
        )],
        CallKind::Connect { .. } if succeeded && call.result == "0" => {
            vec![(
                not_before(call.at, anchors.handshake_done),
                call.to_string(),
            )]
        }
        CallKind::Recv { sizes } => {
            let eof = call.result.trim() == "0";
            let size: Vec<String> = sizes.iter().map(u64::to_string).collect();
            let eof_text = format!("recv({}) = 0: the FIN", size.join("/"));
            let last_at = call.last_at.max(call.at);
            match (eof, call.count) {
                (true, 1) => vec![(not_before(call.at, anchors.fin[side]), eof_text)],
                (true, n) => {
                    let reads = crate::calls::Call {
                        count: n - 1,
                        ..call.clone()
                    };
                    vec![
                        (
                            not_before(call.at, anchors.first_data[side]),
                            reads.to_string(),
                        ),
                        (not_before(last_at, anchors.fin[side]), eof_text),
                    ]
                }
                (false, _) => vec![(
                    not_before(call.at, anchors.first_data[side]),
                    call.to_string(),
                )],
            }
        }
        _ => vec![(call_nanos(call.at), call.to_string())],
    }
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

    /// The reviewer's trace: strace says connect returned 266 µs before the
    /// SYN's stamp, and the empty recv before the FIN. Each is placed after
    /// the segment that let it return: connect and accept after the
    /// handshake, the data recv after the data, the empty one after the
    /// FIN, with the words that say why.
    #[test]
    fn calls_are_never_placed_before_what_let_them_return() {
        let frames = fixtures::tutorial(LinkType::Ethernet);
        let conn = wire::conversation::build(&dissect_all(LinkType::Ethernet, &frames).0)
            .into_iter()
            .next()
            .unwrap();
        let syn = seconds(conn.segments[0].segment.timestamp);
        let early = syn - 0.000266;
        let fd = "4<TCP:[127.0.0.1:1712->127.0.0.1:50514]>";
        let server = format!(
            "1 {early} accept4(3<TCP:[127.0.0.1:1712]>, NULL, NULL, SOCK_CLOEXEC) = {fd} <0.0>\n\
             1 {early} recvfrom({fd}, \"\"..., 1024, 0, NULL, NULL) = 13 <0.0>\n\
             1 {early} recvfrom({fd}, \"\", 1024, 0, NULL, NULL) = 0 <0.0>\n"
        );
        let client = format!(
            "2 {early} connect(3<TCP:[2]>, {{sa_family=AF_INET, sin_port=htons(1712), sin_addr=inet_addr(\"127.0.0.1\")}}, 16) = 0 <0.0>\n"
        );
        let recorded = |text: &str| {
            Some(Recorded {
                trace_file: String::new(),
                calls: strace::parse(text, 1712),
                error: None,
            })
        };
        let calls = CellCalls {
            server: recorded(&server),
            client: recorded(&client),
        };
        let rows = rows(Some(&conn), &calls);
        let at = |want: &dyn Fn(&Row) -> bool| rows.iter().position(want).unwrap();
        let ack = at(&|r| r.wire == "ACK →");
        let data = at(&|r| r.wire.contains("Len=13"));
        let fin = at(&|r| r.wire.starts_with("FIN") && r.wire.ends_with('→'));
        let accept = at(&|r| r.server.starts_with("accept()"));
        let connect = at(&|r| r.client.starts_with("connect("));
        let read = at(&|r| r.server == "recv(1024)");
        let eof = at(&|r| r.server == "recv(1024) = 0: the FIN");
        assert!(ack < accept && ack < connect, "{rows:#?}");
        assert!(data < read && read < eof && fin < eof, "{rows:#?}");
        assert_eq!(rows[accept].server, "accept(): after the handshake");
    }
}
