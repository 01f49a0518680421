//! The rules every pairing must meet on its own, whatever the reference
//! does. Each check has a name and, when it fails, a message that says what
//! was expected, what was seen and where (frame numbers).

use tutorial::transcript::parse_transcript;

use crate::capture::CaptureStats;
use crate::exec::conditions::Applied;
use crate::exec::process::Output;
use crate::suite::manifest::ServerStdout;
use crate::suite::message::Message;
use crate::suite::scenario::Outcome;
use wire::conversation::{Connection, Direction, Phase};

/// One named check's outcome.
#[derive(
    Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct Check {
    pub name: CheckId,
    pub passed: bool,
    /// Why it failed, or a short confirmation of what passed.
    pub detail: String,
}

fn pass(name: CheckId, detail: impl Into<String>) -> Check {
    Check {
        name,
        passed: true,
        detail: detail.into(),
    }
}

fn fail(name: CheckId, detail: impl Into<String>) -> Check {
    Check {
        name,
        passed: false,
        detail: detail.into(),
    }
}

/// Everything the checks look at for one pairing.
pub struct Evidence<'a> {
    pub message: &'a Message,
    /// What the scenario expects: delivery, or a refused connection.
    pub outcome: Outcome,
    pub connections: &'a [Connection],
    pub server: Option<&'a Output>,
    pub client: Option<&'a Output>,
    /// The clients after the first, in the order they started (a scenario
    /// with `[network] clients` > 1).
    pub more_clients: &'a [Output],
    /// What the server's stdout holds (nothing is read when no server ran).
    pub server_stdout: ServerStdout,
    pub stats: Option<CaptureStats>,
    /// Whether the teardown was seen before the drain deadline.
    pub teardown_seen: bool,
    /// Frames that could not be dissected.
    pub malformed: &'a [wire::dissect::DissectError],
    /// What each of the scenario's segment rules did; `None` when it has
    /// none.
    pub conditions: Option<&'a [Applied]>,
}

crate::schema::named_enum! {
    /// Every check, by the name reports and summary.json give it.
    pub enum CheckId ("check", "a check's name") {
        Capture => "capture",
        Delivered => "delivered",
        Handshake => "handshake",
        SingleAttempt => "single attempt",
        OrderlyClose => "orderly close",
        Exits => "exits",
        Refused => "refused",
        Unanswered => "unanswered",
        ResetSeen => "reset",
        Conditions => "conditions applied",
        Backlog => "backlog overflowed",
    }
}

/// When a rule runs.
#[derive(Debug, Clone, Copy)]
enum When {
    /// In a scenario expecting one of these outcomes.
    Outcome(&'static [Outcome]),
    /// In a scenario with more than one client.
    SeveralClients,
    /// In a scenario with segment rules.
    Conditions,
}

use Outcome::{Delivered, Refused, Reset, Unanswered};

/// A check's rule: which check it gives, when it runs, and how.
type Rule = (CheckId, When, fn(&Evidence<'_>) -> Check);

/// Every rule, in the order a cell reports its checks. A new check is its
/// line in [`CheckId`], its function, and a row here. A check may have a
/// row per outcome when what it asks differs (`exits`).
const RULES: &[Rule] = &[
    (
        CheckId::Capture,
        When::Outcome(&[Delivered, Refused, Unanswered, Reset]),
        capture,
    ),
    (CheckId::Delivered, When::Outcome(&[Delivered]), |e| {
        delivered(e, established(e))
    }),
    (CheckId::Refused, When::Outcome(&[Refused]), |e| {
        refused(e.connections)
    }),
    (CheckId::Unanswered, When::Outcome(&[Unanswered]), |e| {
        unanswered(e.connections)
    }),
    (
        CheckId::Handshake,
        When::Outcome(&[Delivered, Reset]),
        |e| handshake(established(e)),
    ),
    (
        CheckId::SingleAttempt,
        When::Outcome(&[Delivered, Refused, Unanswered, Reset]),
        |e| single_attempt(e.connections, clients(e)),
    ),
    (CheckId::ResetSeen, When::Outcome(&[Reset]), |e| {
        reset_to_server(established(e))
    }),
    (CheckId::OrderlyClose, When::Outcome(&[Delivered]), |e| {
        orderly_close(established(e))
    }),
    (CheckId::Exits, When::Outcome(&[Delivered]), exits),
    (CheckId::Exits, When::Outcome(&[Refused, Unanswered]), |e| {
        client_fails(e.client)
    }),
    (CheckId::Exits, When::Outcome(&[Reset]), ended_on_their_own),
    (CheckId::Backlog, When::SeveralClients, |e| {
        backlog_overflowed(e.connections, clients(e))
    }),
    (CheckId::Conditions, When::Conditions, |e| {
        conditions_applied(e.conditions.unwrap_or_default())
    }),
];

/// The established connection the checks look at (the first client's).
fn established<'a>(e: &Evidence<'a>) -> Option<&'a Connection> {
    e.connections.iter().find(|c| c.established())
}

/// How many clients the scenario started.
fn clients(e: &Evidence<'_>) -> usize {
    1 + e.more_clients.len()
}

/// Every check that applies to `e`, in report order.
pub fn run_all(e: &Evidence<'_>) -> Vec<Check> {
    RULES
        .iter()
        .filter(|(_, when, _)| match when {
            When::Outcome(outcomes) => outcomes.contains(&e.outcome),
            When::SeveralClients => !e.more_clients.is_empty(),
            When::Conditions => e.conditions.is_some(),
        })
        .map(|(id, _, rule)| {
            let check = rule(e);
            debug_assert_eq!(check.name, *id, "a rule gives the check of its row");
            check
        })
        .collect()
}

/// The RST the scenario sends toward the server is in the capture.
fn reset_to_server(conn: Option<&Connection>) -> Check {
    let Some(conn) = conn else {
        return fail(CheckId::ResetSeen, "no connection was established");
    };
    match conn
        .close
        .resets
        .iter()
        .find(|(_, d)| *d == Direction::ClientToServer)
    {
        Some((frame, _)) => pass(
            CheckId::ResetSeen,
            format!("RST client→server in frame {frame}"),
        ),
        None => fail(
            CheckId::ResetSeen,
            "no RST toward the server was captured: the connection was never reset",
        ),
    }
}

/// After a reset, each program must notice and end by itself: how it ends
/// (its exit code) is compared with the reference's, not judged here.
fn ended_on_their_own(e: &Evidence<'_>) -> Check {
    let problems: Vec<String> = [("server", e.server), ("client", e.client)]
        .into_iter()
        .filter_map(|(who, out)| match out {
            Some(o) if o.exit_code.is_some() || o.signal.is_some() => None,
            _ => Some(format!("the {who} did not end on its own")),
        })
        .collect();
    if problems.is_empty() {
        let status = |o: Option<&Output>| o.map_or("-".into(), Output::status_text);
        pass(
            CheckId::Exits,
            format!(
                "server {}, client {} (compared with the reference's)",
                status(e.server),
                status(e.client)
            ),
        )
    } else {
        fail(CheckId::Exits, problems.join("; "))
    }
}

/// Every segment rule of the scenario acted on the segments it names: a
/// rule that matched nothing means the cell did not test what the
/// scenario says, whatever else passed.
fn conditions_applied(applied: &[Applied]) -> Check {
    let mut done = Vec::new();
    let mut problems = Vec::new();
    for a in applied {
        match a.expected {
            _ if a.matched == 0 => problems.push(format!(
                "\"{}\" matched nothing: the scenario did not test what it says",
                a.rule
            )),
            Some(n) if a.matched != u64::from(n) => problems.push(format!(
                "\"{}\" acted on {} segment(s), expected {n}",
                a.rule, a.matched
            )),
            _ => done.push(format!("{}: {} segment(s)", a.rule, a.matched)),
        }
    }
    if problems.is_empty() {
        pass(
            CheckId::Conditions,
            format!("as the scenario asked: {}", done.join("; ")),
        )
    } else {
        fail(CheckId::Conditions, problems.join("; "))
    }
}

/// A black hole: the client's SYNs (its first and its retransmissions)
/// went unanswered, neither SYN/ACK nor RST came back.
fn unanswered(connections: &[Connection]) -> Check {
    let Some(conn) = connections.first() else {
        return fail(
            CheckId::Unanswered,
            "no connection attempt (no SYN) was captured",
        );
    };
    match conn
        .segments
        .iter()
        .find(|p| p.direction == Direction::ServerToClient)
    {
        Some(p) => fail(
            CheckId::Unanswered,
            format!(
                "the SYN was answered by [{}] in frame {}; expected no answer",
                p.segment.flags, p.segment.frame
            ),
        ),
        None => pass(
            CheckId::Unanswered,
            format!("{} SYN(s) sent, none answered", conn.syn_count()),
        ),
    }
}

/// Nobody listens, so the kernel must answer the SYN with RST/ACK, and the
/// client must neither connect nor carry on as if it had.
fn refused(connections: &[Connection]) -> Check {
    let Some(conn) = connections.first() else {
        return fail(
            CheckId::Refused,
            "no connection attempt (no SYN) was captured",
        );
    };
    if conn.established() {
        return fail(
            CheckId::Refused,
            format!(
                "{} was answered by a SYN/ACK: something is listening",
                conn.label()
            ),
        );
    }
    let answer = conn
        .segments
        .iter()
        .find(|p| p.direction == Direction::ServerToClient);
    match answer {
        Some(p) if p.segment.flags.rst && p.segment.flags.ack => pass(
            CheckId::Refused,
            format!("SYN answered by RST/ACK in frame {}", p.segment.frame),
        ),
        Some(p) => fail(
            CheckId::Refused,
            format!(
                "the SYN was answered by [{}] in frame {}, expected RST/ACK",
                p.segment.flags, p.segment.frame
            ),
        ),
        None => fail(CheckId::Refused, "the SYN was never answered"),
    }
}

/// A refused client must say so with a non-zero exit, by itself.
fn client_fails(client: Option<&Output>) -> Check {
    match client {
        None => fail(CheckId::Exits, "the client did not run to the end"),
        Some(o) if o.exit_code == Some(0) => fail(
            CheckId::Exits,
            "the client exited 0 although its connection was refused",
        ),
        Some(o) if o.exit_code.is_none() => fail(
            CheckId::Exits,
            format!(
                "the client ended with {}; expected a non-zero exit",
                o.status_text()
            ),
        ),
        Some(o) => pass(
            CheckId::Exits,
            format!("the client ended with {}", o.status_text()),
        ),
    }
}

fn capture(e: &Evidence<'_>) -> Check {
    let mut problems = Vec::new();
    match e.stats {
        None => problems.push("no capture statistics (the capture did not finish)".to_string()),
        Some(s) if s.dropped > 0 || s.if_dropped > 0 => problems.push(format!(
            "libpcap dropped {} packets (interface: {}); the capture is incomplete",
            s.dropped, s.if_dropped
        )),
        Some(_) => {}
    }
    if !e.teardown_seen {
        problems.push(
            "the teardown (FIN from both sides, acknowledged, or an RST) was never seen".into(),
        );
    }
    if let Some(first) = e.malformed.first() {
        problems.push(format!(
            "{} malformed frame(s), first {first}",
            e.malformed.len()
        ));
    }
    if problems.is_empty() {
        let received = e.stats.map_or(0, |s| s.received);
        pass(
            CheckId::Capture,
            format!("libpcap counted {received} packets (loopback shows each twice, out and in), none dropped"),
        )
    } else {
        fail(
            CheckId::Capture,
            format!("run invalid: {}", problems.join("; ")),
        )
    }
}

fn delivered(e: &Evidence<'_>, conn: Option<&Connection>) -> Check {
    let Some(conn) = conn else {
        return fail(CheckId::Delivered, "no connection was established");
    };
    let stream = &conn.client_stream;
    if let Some((from, to)) = stream.gaps.first() {
        return fail(
            CheckId::Delivered,
            format!("client→server stream has a gap: bytes {from}..{to} never seen on the wire"),
        );
    }
    // With a headers-only snaplen the wire gives the length, and the
    // server's output the bytes.
    let cut = stream.uncaptured > 0;
    if cut && stream.length != e.message.len() as u64 {
        return fail(
            CheckId::Delivered,
            format!(
                "on the wire the client sent {} bytes, expected {} (payload not captured: --snaplen)",
                stream.length,
                e.message.len()
            ),
        );
    }
    // Compared by length and digest: a stream longer than a cell keeps is
    // not held whole, and its kept bytes locate the difference when they can.
    let same = stream.prefix == e.message.len() as u64 && stream.digest == e.message.digest();
    if !cut && !same {
        let kept = &stream.bytes;
        let at = e
            .message
            .first_difference(kept)
            .unwrap_or(kept.len().min(e.message.len()));
        let whole = kept.len() as u64 == stream.prefix;
        let where_ = if whole || at < kept.len() {
            format!("first difference at byte {at}")
        } else {
            format!(
                "the first {} bytes, all that a cell keeps, are the same; the digests differ",
                kept.len()
            )
        };
        return fail(
            CheckId::Delivered,
            format!(
                "on the wire the client sent {} bytes, expected {} ({where_})",
                stream.prefix,
                e.message.len(),
            ),
        );
    }
    let printed = match (e.server_stdout, e.server) {
        (ServerStdout::Unchecked, _) => None,
        (_, None) => return fail(CheckId::Delivered, "the server's output is missing"),
        (ServerStdout::Received, Some(server)) => Some(server.stdout.clone()),
        (ServerStdout::Transcript, Some(server)) => {
            // A transcript is ASCII: std's validation has a fast path for
            // that, the lossy decoder walks byte by byte.
            let text = std::str::from_utf8(&server.stdout)
                .map(std::borrow::Cow::Borrowed)
                .unwrap_or_else(|_| String::from_utf8_lossy(&server.stdout));
            match parse_transcript(&text) {
                Err(err) => {
                    return fail(
                        CheckId::Delivered,
                        format!("server transcript unreadable at {err}"),
                    )
                }
                Ok(t) => Some(t.received()),
            }
        }
    };
    if let Some(got) = printed {
        if let Some(at) = e.message.first_difference(&got) {
            return fail(
                CheckId::Delivered,
                format!(
                    "the server printed {} bytes, expected {} (first difference at byte {at})",
                    got.len(),
                    e.message.len(),
                ),
            );
        }
    }
    let wire = if cut {
        "on the wire by length (--snaplen cut the payload)"
    } else {
        "on the wire"
    };
    let how = match e.server_stdout {
        ServerStdout::Transcript => format!("{wire} and in the server's transcript"),
        ServerStdout::Received => format!("{wire} and on the server's stdout"),
        ServerStdout::Unchecked => wire.to_string(),
    };
    pass(
        CheckId::Delivered,
        format!("{} bytes {how}", e.message.len()),
    )
}

fn handshake(conn: Option<&Connection>) -> Check {
    let Some(conn) = conn else {
        return fail(
            CheckId::Handshake,
            "no SYN/ACK: the connection was never established",
        );
    };
    // Compared on the segments that got through: a copy of a handshake
    // segment already seen (same way, flags and sequence number) is its
    // retransmission after a loss, not a new step.
    let mut first: Vec<&wire::conversation::Placed> = Vec::new();
    for p in &conn.segments {
        let repeats = first.iter().any(|q| {
            q.direction == p.direction
                && q.segment.flags == p.segment.flags
                && q.rel_seq == p.rel_seq
                && q.segment.payload_len == p.segment.payload_len
        });
        if !repeats {
            first.push(p);
        }
        if first.len() == 3 {
            break;
        }
    }
    // (label, direction, syn, ack, rel seq, rel ack)
    let expected = [
        ("SYN", Direction::ClientToServer, true, false, 0, 0),
        ("SYN/ACK", Direction::ServerToClient, true, true, 0, 1),
        ("ACK", Direction::ClientToServer, false, true, 1, 1),
    ];
    for (i, (label, dir, syn, ack, seq, rel_ack)) in expected.iter().enumerate() {
        let Some(p) = first.get(i) else {
            return fail(
                CheckId::Handshake,
                format!(
                    "segment {} should be the {label}, but the connection has only {} segments",
                    i + 1,
                    first.len()
                ),
            );
        };
        let f = p.segment.flags;
        let shape_ok = p.direction == *dir
            && f.syn == *syn
            && f.ack == *ack
            && !f.fin
            && !f.rst
            && p.phase == Phase::Handshake;
        if !shape_ok {
            return fail(
                CheckId::Handshake,
                format!(
                    "segment {} (frame {}) should be the {label} {}, but is [{}] {}",
                    i + 1,
                    p.segment.frame,
                    dir.arrow(),
                    f,
                    p.direction.arrow()
                ),
            );
        }
        if p.rel_seq != *seq || p.rel_ack != *rel_ack {
            return fail(
                CheckId::Handshake,
                format!(
                    "{label} (frame {}) has Seq={} Ack={}, expected Seq={seq} Ack={rel_ack}",
                    p.segment.frame, p.rel_seq, p.rel_ack
                ),
            );
        }
    }
    pass(
        CheckId::Handshake,
        "SYN, SYN/ACK, ACK with Seq/Ack 0/0, 0/1, 1/1",
    )
}

/// One connection attempt per client. A SYN retransmitted (same
/// connection, same ISN) after a loss is the same attempt, named but not
/// counted again; a second connection from one client is a second attempt.
fn single_attempt(connections: &[Connection], clients: usize) -> Check {
    let attempts: Vec<String> = attempts(connections)
        .map(|c| match c.syn_count() {
            1 => format!("{} ({})", c.label(), outcome(c)),
            n => format!(
                "{} ({}; its SYN sent {n} times: retransmissions of one attempt)",
                c.label(),
                outcome(c)
            ),
        })
        .collect();
    let expected = match clients {
        1 => "1".to_string(),
        n => format!("{n}, one per client"),
    };
    match attempts.len() {
        n if n == clients => pass(CheckId::SingleAttempt, attempts.join("; ")),
        0 => fail(
            CheckId::SingleAttempt,
            "no connection attempt (no SYN) was captured",
        ),
        n => fail(
            CheckId::SingleAttempt,
            format!(
                "{n} connection attempts, expected {expected}: {}",
                attempts.join("; ")
            ),
        ),
    }
}

/// The connections that are attempts (a SYN was seen), in the order they
/// began: with several clients started one after another, client k's is
/// the k-th.
pub fn attempts(connections: &[Connection]) -> impl Iterator<Item = &Connection> {
    connections.iter().filter(|c| c.syn_count() > 0)
}

/// How an attempt was answered, in a word.
fn outcome(c: &Connection) -> &'static str {
    if c.refused() {
        "refused"
    } else if c.established() {
        "established"
    } else {
        "unanswered"
    }
}

/// How an attempt ended, as the meaning of a client's connection: how it
/// was answered, whether the server reset it, and how many SYNs it took.
pub fn fate(c: &Connection) -> String {
    let reset = c
        .close
        .resets
        .iter()
        .any(|(_, d)| *d == Direction::ServerToClient);
    let mut fate = outcome(c).to_string();
    if c.established() && reset {
        fate.push_str(", then reset by the server");
    }
    if c.syn_count() > 1 {
        fate.push_str(&format!(" after its SYN was sent {} times", c.syn_count()));
    }
    fate
}

/// With several clients against a server held still, the backlog must
/// overflow: some client's first SYN goes unanswered (the kernel drops a
/// SYN for a full accept queue) and is sent again. Otherwise the scenario
/// did not test what it says, or the server's backlog is larger than the
/// reference's.
fn backlog_overflowed(connections: &[Connection], clients: usize) -> Check {
    let dropped: Vec<String> = attempts(connections)
        .enumerate()
        .filter(|(_, c)| c.syn_count() > 1)
        .map(|(i, c)| format!("client {}: {}", i + 1, fate(c)))
        .collect();
    if dropped.is_empty() {
        fail(
            CheckId::Backlog,
            format!(
                "every client's first SYN was answered: the server queued all {clients} while it was held, so its backlog is larger than the scenario expects (listen(1) queues 2 on Linux)"
            ),
        )
    } else {
        pass(
            CheckId::Backlog,
            format!("the backlog was full: {}", dropped.join("; ")),
        )
    }
}

fn orderly_close(conn: Option<&Connection>) -> Check {
    let Some(conn) = conn else {
        return fail(CheckId::OrderlyClose, "no connection was established");
    };
    let close = &conn.close;
    if let Some((frame, dir)) = close.resets.first() {
        return fail(
            CheckId::OrderlyClose,
            format!(
                "RST {} in frame {frame}; an orderly close has a FIN from each side and no RST",
                dir.arrow()
            ),
        );
    }
    match (close.client_fin, close.server_fin) {
        (true, true) => pass(
            CheckId::OrderlyClose,
            format!(
                "FIN from both sides, {} first{}",
                if close.first_fin == Some(Direction::ClientToServer) {
                    "client"
                } else {
                    "server"
                },
                match close.late_resets.first() {
                    Some((frame, dir)) => format!(
                        "; the RST {} in frame {frame} came after the close was complete (a late duplicate answered), not compared",
                        dir.arrow()
                    ),
                    None => String::new(),
                }
            ),
        ),
        (false, _) => fail(CheckId::OrderlyClose, "the client never sent a FIN"),
        (_, false) => fail(CheckId::OrderlyClose, "the server never sent a FIN"),
    }
}

fn exits(e: &Evidence<'_>) -> Check {
    let describe = |who: &str, out: Option<&Output>| -> Option<String> {
        match out {
            None => Some(format!("the {who} did not run to the end")),
            Some(o) if o.exit_code == Some(0) => None,
            Some(o) => {
                let stderr = String::from_utf8_lossy(&o.stderr);
                let last = stderr
                    .lines()
                    .rev()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("");
                Some(format!(
                    "the {who} ended with {}{}",
                    o.status_text(),
                    if last.is_empty() {
                        String::new()
                    } else {
                        format!(": {last}")
                    }
                ))
            }
        }
    };
    let problems: Vec<String> = [describe("server", e.server), describe("client", e.client)]
        .into_iter()
        .flatten()
        .collect();
    if problems.is_empty() {
        pass(CheckId::Exits, "both exited 0")
    } else {
        fail(CheckId::Exits, problems.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wire::conversation::build;
    use wire::dissect::{dissect_all, LinkType};
    use wire::fixtures::{self, Spec};

    fn ok_output() -> Output {
        Output {
            exit_code: Some(0),
            signal: None,
            stdout: Vec::new(),
            stderr: Vec::new(),
        }
    }

    /// A delivered scenario's evidence in which both programs exited 0
    /// and the capture is whole.
    fn evidence<'a>(
        message: &'a Message,
        connections: &'a [Connection],
        out: &'a Output,
    ) -> Evidence<'a> {
        Evidence {
            message,
            connections,
            server: Some(out),
            client: Some(out),
            more_clients: &[],
            outcome: Outcome::Delivered,
            server_stdout: ServerStdout::Unchecked,
            stats: Some(CaptureStats::default()),
            teardown_seen: true,
            malformed: &[],
            conditions: None,
        }
    }

    fn check(frames: &[wire::dissect::Frame], name: CheckId) -> Check {
        let (segments, _) = dissect_all(LinkType::Ethernet, frames);
        let connections = build(&segments);
        let out = ok_output();
        let hello = Message::from(&b"Hello server!"[..]);
        let e = evidence(&hello, &connections, &out);
        run_all(&e)
            .into_iter()
            .find(|c| c.name == name)
            .expect("named check")
    }

    #[test]
    fn every_check_has_a_rule_and_every_outcome_its_checks() {
        for id in CheckId::ALL {
            assert!(RULES.iter().any(|(r, _, _)| r == id), "{id} has no rule");
        }
        for outcome in [Delivered, Refused, Unanswered, Reset] {
            let exits = RULES.iter().filter(|(id, when, _)| {
                *id == CheckId::Exits && matches!(when, When::Outcome(o) if o.contains(&outcome))
            });
            assert_eq!(exits.count(), 1, "{outcome:?}: one way to judge the exits");
        }
    }

    #[test]
    fn the_tutorial_conversation_passes_every_check() {
        let frames = fixtures::tutorial(LinkType::Ethernet);
        let delivered = RULES
            .iter()
            .filter(|(_, when, _)| matches!(when, When::Outcome(o) if o.contains(&Delivered)));
        for &(name, _, _) in delivered {
            let c = check(&frames, name);
            assert!(c.passed, "{name}: {}", c.detail);
        }
    }

    #[test]
    fn handshake_fails_when_the_third_segment_is_not_an_ack() {
        let mut frames = fixtures::tutorial(LinkType::Ethernet);
        frames.remove(2); // the ACK; the data segment takes its place
        frames.remove(2);
        let c = check(&frames, CheckId::Handshake);
        assert!(!c.passed);
        assert!(c.detail.contains("ACK"), "{}", c.detail);
    }

    /// A stream longer than what is kept is checked by length and digest:
    /// the same message passes, another fails and says where it can.
    #[test]
    fn delivered_compares_a_stream_longer_than_it_keeps_by_digest() {
        let (segments, _) =
            dissect_all(LinkType::Ethernet, &fixtures::tutorial(LinkType::Ethernet));
        let mut builder = wire::conversation::ConversationBuilder::with_retention(
            wire::conversation::Retention {
                stream_bytes: 5,
                ..wire::conversation::Retention::ALL
            },
        );
        for s in segments {
            builder.push(s);
        }
        let connections = builder.finish();
        assert_eq!(connections[0].client_stream.bytes, b"Hello");
        let out = ok_output();
        let delivered = |message: &[u8]| {
            let message = Message::from(message);
            delivered(&evidence(&message, &connections, &out), connections.first())
        };
        assert!(delivered(b"Hello server!").passed);
        let later = delivered(b"Hello server?");
        assert!(!later.passed);
        assert!(
            later
                .detail
                .contains("the first 5 bytes, all that a cell keeps, are the same"),
            "{}",
            later.detail
        );
        let early = delivered(b"Jello server!");
        assert!(
            early.detail.contains("first difference at byte 0"),
            "{}",
            early.detail
        );
    }

    #[test]
    fn delivered_fails_on_other_bytes() {
        let mut frames = fixtures::tutorial(LinkType::Ethernet);
        frames[3] = fixtures::frame(
            LinkType::Ethernet,
            &Spec {
                seq: fixtures::CLIENT_ISN.wrapping_add(1),
                ack: Some(fixtures::SERVER_ISN + 1),
                payload: b"Hello server?",
                ..Spec::default()
            },
        );
        let c = check(&frames, CheckId::Delivered);
        assert!(!c.passed);
        assert!(
            c.detail.contains("first difference at byte 12"),
            "{}",
            c.detail
        );
    }

    #[test]
    fn a_reset_after_the_close_is_complete_is_not_a_broken_close() {
        let mut frames = fixtures::tutorial(LinkType::Ethernet);
        // The server's kernel answering a late duplicate ACK, after the
        // last ACK of the teardown.
        frames.push(fixtures::frame(
            LinkType::Ethernet,
            &Spec {
                from_client: false,
                rst: true,
                seq: fixtures::SERVER_ISN + 2,
                ..Spec::default()
            },
        ));
        let c = check(&frames, CheckId::OrderlyClose);
        assert!(c.passed, "{}", c.detail);
        assert!(
            c.detail
                .contains("RST server→client in frame 9 came after the close"),
            "{}",
            c.detail
        );
    }

    #[test]
    fn orderly_close_fails_on_rst() {
        let mut frames = fixtures::tutorial(LinkType::Ethernet);
        frames.truncate(5);
        frames.push(fixtures::frame(
            LinkType::Ethernet,
            &Spec {
                rst: true,
                seq: fixtures::CLIENT_ISN.wrapping_add(14),
                ack: Some(fixtures::SERVER_ISN + 1),
                ..Spec::default()
            },
        ));
        let c = check(&frames, CheckId::OrderlyClose);
        assert!(!c.passed);
        assert!(
            c.detail.contains("RST client→server in frame 6"),
            "{}",
            c.detail
        );
    }

    /// A SYN lost and sent again (same connection, same ISN) is one
    /// attempt, and the handshake is judged on the copies that got
    /// through; a deleted SYN/ACK still fails it.
    #[test]
    fn a_retransmitted_syn_is_the_same_attempt_and_the_same_handshake() {
        let mut frames = fixtures::tutorial(LinkType::Ethernet);
        frames.insert(1, frames[0].clone());
        let attempt = check(&frames, CheckId::SingleAttempt);
        assert!(attempt.passed, "{}", attempt.detail);
        assert!(
            attempt.detail.contains("its SYN sent 2 times"),
            "{}",
            attempt.detail
        );
        let handshake = check(&frames, CheckId::Handshake);
        assert!(handshake.passed, "{}", handshake.detail);
        // Negative control: the SYN/ACK itself missing is still caught.
        frames.remove(2);
        assert!(!check(&frames, CheckId::Handshake).passed);
    }

    #[test]
    fn a_rule_that_matched_nothing_fails_the_cell() {
        let applied = |matched, expected| Applied {
            rule: "drop the first SYN to server".into(),
            expected,
            matched,
        };
        let ok = conditions_applied(&[applied(1, Some(1))]);
        assert!(ok.passed, "{}", ok.detail);
        assert!(ok
            .detail
            .contains("drop the first SYN to server: 1 segment(s)"));
        let nothing = conditions_applied(&[applied(0, Some(1))]);
        assert!(!nothing.passed);
        assert!(
            nothing.detail.contains("matched nothing"),
            "{}",
            nothing.detail
        );
        let none_of_all = conditions_applied(&[applied(0, None)]);
        assert!(!none_of_all.passed);
        let fewer = conditions_applied(&[applied(1, Some(2))]);
        assert!(
            !fewer.passed && fewer.detail.contains("expected 2"),
            "{}",
            fewer.detail
        );
    }

    #[test]
    fn single_attempt_names_the_extra_attempt() {
        let mut frames = vec![
            fixtures::frame(
                LinkType::Ethernet,
                &Spec {
                    syn: true,
                    seq: 9,
                    ..Spec::default()
                },
            ),
            fixtures::frame(
                LinkType::Ethernet,
                &Spec {
                    from_client: false,
                    rst: true,
                    ack: Some(10),
                    ..Spec::default()
                },
            ),
        ];
        // The same 4-tuple again after the refusal: a second attempt.
        frames.extend(fixtures::tutorial(LinkType::Ethernet));
        let c = check(&frames, CheckId::SingleAttempt);
        assert!(!c.passed);
        assert!(
            c.detail.contains("2 connection attempts") && c.detail.contains("refused"),
            "{}",
            c.detail
        );
    }

    #[test]
    fn capture_is_invalid_when_packets_were_dropped_or_teardown_unseen() {
        let frames = fixtures::tutorial(LinkType::Ethernet);
        let (segments, _) = dissect_all(LinkType::Ethernet, &frames);
        let connections = build(&segments);
        let out = ok_output();
        let mut e = Evidence {
            message: &Message::from(&b"Hello server!"[..]),
            connections: &connections,
            server: Some(&out),
            client: Some(&out),
            more_clients: &[],
            outcome: Outcome::Delivered,
            server_stdout: ServerStdout::Unchecked,
            stats: Some(CaptureStats {
                received: 8,
                dropped: 2,
                if_dropped: 0,
            }),
            teardown_seen: true,
            malformed: &[],
            conditions: None,
        };
        assert!(run_all(&e)[0].detail.contains("dropped 2"));
        e.stats = Some(CaptureStats::default());
        e.teardown_seen = false;
        let c = &run_all(&e)[0];
        assert!(!c.passed && c.detail.contains("teardown"), "{}", c.detail);
    }

    #[test]
    fn exits_fail_with_the_last_stderr_line() {
        let frames = fixtures::tutorial(LinkType::Ethernet);
        let (segments, _) = dissect_all(LinkType::Ethernet, &frames);
        let connections = build(&segments);
        let ok = ok_output();
        let bad = Output {
            exit_code: Some(1),
            signal: None,
            stdout: vec![],
            stderr: b"client: error: boom\n".to_vec(),
        };
        let e = Evidence {
            message: &Message::from(&b"Hello server!"[..]),
            connections: &connections,
            server: Some(&ok),
            client: Some(&bad),
            more_clients: &[],
            outcome: Outcome::Delivered,
            server_stdout: ServerStdout::Unchecked,
            stats: Some(CaptureStats::default()),
            teardown_seen: true,
            malformed: &[],
            conditions: None,
        };
        let c = run_all(&e)
            .into_iter()
            .find(|c| c.name == CheckId::Exits)
            .unwrap();
        assert!(
            !c.passed
                && c.detail
                    .contains("client ended with exit 1: client: error: boom"),
            "{}",
            c.detail
        );
    }

    /// With three clients, one connection is too few attempts, and a
    /// capture in which every SYN was answered did not overflow a backlog:
    /// both checks fail and say why.
    #[test]
    fn several_clients_need_an_attempt_each_and_a_dropped_syn() {
        let frames = fixtures::tutorial(LinkType::Ethernet);
        let (segments, _) = dissect_all(LinkType::Ethernet, &frames);
        let connections = build(&segments);
        let attempt = single_attempt(&connections, 3);
        assert!(!attempt.passed);
        assert!(
            attempt
                .detail
                .starts_with("1 connection attempts, expected 3, one per client"),
            "{}",
            attempt.detail
        );
        assert!(single_attempt(&connections, 1).passed);
        let backlog = backlog_overflowed(&connections, 3);
        assert!(!backlog.passed);
        assert!(
            backlog.detail.contains("the server queued all 3"),
            "{}",
            backlog.detail
        );
    }
}
