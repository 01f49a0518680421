//! A pairing's conversation reduced to what is compared, under the field
//! policies of [`crate::policy`], and the comparison of two of them.

use wire::conversation::{Connection, Direction, Phase};

use crate::policy::{Field, IgnoredField, CONVERSATION};
use wire::tcp_options::TcpOption;

/// A field's value in one pairing; `None` where it does not apply.
pub type Value = Option<String>;

/// What one handshake segment looks like under the policies.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct SegmentSignature {
    pub label: &'static str,
    /// Frame number, for pointing the user at it (not compared).
    pub frame: Option<usize>,
    pub fields: Vec<(Field, Value)>,
}

/// A segment signature as `summary.json` holds it, its label any string.
#[derive(serde::Deserialize)]
struct RawSegmentSignature {
    label: String,
    frame: Option<usize>,
    fields: Vec<(Field, Value)>,
}

impl<'de> serde::Deserialize<'de> for SegmentSignature {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<SegmentSignature, D::Error> {
        let raw = <RawSegmentSignature as serde::Deserialize>::deserialize(d)?;
        SegmentSignature::try_from(raw).map_err(serde::de::Error::custom)
    }
}

impl TryFrom<RawSegmentSignature> for SegmentSignature {
    type Error = String;
    /// The label read back as the same static the signature uses.
    fn try_from(raw: RawSegmentSignature) -> Result<SegmentSignature, String> {
        let label = ["SYN", "SYN/ACK", "ACK", "RST/ACK"]
            .into_iter()
            .find(|l| *l == raw.label)
            .ok_or_else(|| format!("unknown segment label {:?}", raw.label))?;
        Ok(SegmentSignature {
            label,
            frame: raw.frame,
            fields: raw.fields,
        })
    }
}

/// A pairing's conversation reduced to what is compared.
#[derive(
    Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct Signature {
    pub handshake: Vec<SegmentSignature>,
    /// Data and teardown, by meaning.
    pub meaning: Vec<(Field, Value)>,
}

impl Signature {
    pub fn field(&self, segment: &str, field: Field) -> Option<&Value> {
        let fields = if segment == CONVERSATION {
            &self.meaning
        } else {
            &self.handshake.iter().find(|s| s.label == segment)?.fields
        };
        fields.iter().find(|(f, _)| *f == field).map(|(_, v)| v)
    }
}

/// Which of a pairing's connections is compared with the reference, and
/// its index: the established one, or in a scenario that expects a refusal
/// the refused attempt (either first, falling back to the other). Extra
/// attempts are the `single attempt` check's business, never compared.
pub fn compared_connection<'a>(
    connections: impl Iterator<Item = &'a Connection> + Clone,
    refusal_expected: bool,
) -> Option<(usize, &'a Connection)> {
    let first =
        |wanted: fn(&Connection) -> bool| connections.clone().enumerate().find(|(_, c)| wanted(c));
    let (established, refused) = (first(Connection::established), first(Connection::refused));
    let chosen = if refusal_expected {
        refused.or(established)
    } else {
        established.or(refused)
    };
    // Neither: an attempt nobody answered (a black hole).
    chosen.or_else(|| connections.clone().enumerate().next())
}

/// The signature of a connection: its handshake, or for a refused attempt
/// its SYN and RST/ACK, field by field, and the rest by meaning.
pub fn signature(conn: &Connection) -> Signature {
    type Wanted = (&'static str, Direction, fn(&wire::dissect::Flags) -> bool);
    let handshake: &[Wanted] = &[
        ("SYN", Direction::ClientToServer, |f| f.syn && !f.ack),
        ("SYN/ACK", Direction::ServerToClient, |f| f.syn && f.ack),
        ("ACK", Direction::ClientToServer, |f| !f.syn && f.ack),
    ];
    let refused: &[Wanted] = &[
        ("SYN", Direction::ClientToServer, |f| f.syn && !f.ack),
        ("RST/ACK", Direction::ServerToClient, |f| f.rst),
    ];
    // Never answered (a black hole): only the SYN was ever sent.
    let unanswered = &handshake[..1];
    let (wanted, phase_matters) = if conn.refused() {
        (refused, false)
    } else if conn.established() {
        (handshake, true)
    } else {
        (unanswered, true)
    };
    let segments = wanted
        .iter()
        .map(|(label, direction, flags)| {
            let found = conn.segments.iter().find(|p| {
                (!phase_matters || p.phase == Phase::Handshake)
                    && p.direction == *direction
                    && flags(&p.segment.flags)
            });
            SegmentSignature {
                label,
                frame: found.map(|p| p.segment.frame),
                fields: match found {
                    Some(p) => segment_fields(p, *label == "SYN"),
                    None => vec![(Field::Flags, Some("(missing)".to_string()))],
                },
            }
        })
        .collect();
    Signature {
        handshake: segments,
        meaning: meaning(conn),
    }
}

fn segment_fields(p: &wire::conversation::Placed, is_syn: bool) -> Vec<(Field, Value)> {
    let s = &p.segment;
    let opts = s.options.to_vec();
    let kinds = opts
        .iter()
        .map(TcpOption::short_name)
        .collect::<Vec<_>>()
        .join(",");
    let mss = opts.iter().find_map(|o| match o {
        TcpOption::Mss { value } => Some(value.to_string()),
        _ => None,
    });
    let ws = opts.iter().find_map(|o| match o {
        TcpOption::WindowScale { shift } => Some(format!("{}", 1u64 << (*shift).min(30))),
        _ => None,
    });
    let ts = opts.iter().find_map(|o| match o {
        TcpOption::Timestamps { echo, .. } => Some(*echo),
        _ => None,
    });
    let yes_no = |b: bool| Some(if b { "yes" } else { "no" }.to_string());
    let mut fields = vec![
        (Field::Flags, Some(s.flags.to_string())),
        (Field::Seq, Some(p.rel_seq.to_string())),
        (Field::Ack, Some(p.rel_ack.to_string())),
        (Field::Window, Some(s.window.to_string())),
        (Field::Len, Some(s.payload_len.to_string())),
        (
            Field::Options,
            Some(if kinds.is_empty() {
                "-".to_string()
            } else {
                kinds
            }),
        ),
        (Field::Mss, mss),
        (Field::Wscale, ws),
        (
            Field::SackPerm,
            yes_no(opts.contains(&TcpOption::SackPermitted)),
        ),
        (Field::Ts, yes_no(ts.is_some())),
    ];
    if is_syn {
        fields.push((
            Field::TsEchoZero,
            ts.map(|echo| if echo == 0 { "yes" } else { "no" }.to_string()),
        ));
    }
    fields.extend([
        (Field::IpVersion, Some(s.ip.version.to_string())),
        (Field::IpTtl, Some(s.ip.ttl.to_string())),
        (Field::IpDf, yes_no(s.ip.df)),
        (Field::IpHdrLen, Some(s.ip.header_len.to_string())),
        (Field::TcpHdrLen, Some(s.header_len.to_string())),
    ]);
    fields
}

/// Bytes named compactly in tables: their length and digest.
pub fn describe_bytes(bytes: &[u8]) -> String {
    describe_digest(bytes.len() as u64, wire::conversation::digest(bytes))
}

fn describe_digest(len: u64, digest: u64) -> String {
    format!("{len} bytes #{digest:016x}")
}

/// A stream by content, or by length alone when a snaplen cut its payload
/// (what was captured then depends on segmentation, so it is not compared).
fn describe_stream(stream: &wire::conversation::Stream) -> String {
    if stream.uncaptured > 0 {
        format!("{} bytes (payload not captured)", stream.length)
    } else {
        // The digest covers the in-order bytes, kept or not.
        describe_digest(stream.prefix, stream.digest)
    }
}

fn meaning(conn: &Connection) -> Vec<(Field, Value)> {
    let side = |d: Direction| match d {
        Direction::ClientToServer => "client",
        Direction::ServerToClient => "server",
    };
    // One write becomes one segment only when it fits in one; the MSS the
    // server announced bounds the client's segments.
    let server_mss = conn
        .segments
        .iter()
        .find(|p| p.direction == Direction::ServerToClient && p.segment.flags.syn)
        .and_then(|p| {
            p.segment.options.iter().find_map(|o| match o {
                TcpOption::Mss { value } => Some(u32::from(value)),
                _ => None,
            })
        })
        .unwrap_or(536);
    let writes = if conn.client_stream.length <= u64::from(server_mss) {
        let mut starts: Vec<u32> = conn
            .segments
            .iter()
            .filter(|p| p.direction == Direction::ClientToServer && p.segment.payload_len > 0)
            .map(|p| p.rel_seq)
            .collect();
        starts.sort_unstable();
        starts.dedup();
        Some(starts.len().to_string())
    } else {
        None
    };
    let reset = if conn.close.resets.is_empty() {
        "none".to_string()
    } else {
        let mut sides: Vec<&str> = conn.close.resets.iter().map(|(_, d)| side(*d)).collect();
        sides.dedup();
        format!("from {}", sides.join(" and "))
    };
    vec![
        (
            Field::ClientToServerBytes,
            Some(describe_stream(&conn.client_stream)),
        ),
        (
            Field::ServerToClientBytes,
            Some(describe_stream(&conn.server_stream)),
        ),
        (Field::ClientToServerWrites, writes),
        (
            Field::ClosesFirst,
            Some(
                conn.close
                    .first_fin
                    .map_or("nobody".to_string(), |d| side(d).to_string()),
            ),
        ),
        (Field::Reset, Some(reset)),
        (Field::SynsSent, Some(conn.syn_count().to_string())),
    ]
}

/// One field that differs from the reference.
#[derive(
    Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct Difference {
    /// "SYN", "SYN/ACK", "ACK" or "conversation".
    pub segment: String,
    pub field: Field,
    pub reference: String,
    pub actual: String,
    /// The frame in this pairing's capture, where there is one.
    pub frame: Option<usize>,
    /// For a socket call: the pattern of the implementation's declaration
    /// that covers this one call (`"client.calls[socket(AF_INET6*]"`),
    /// which then names it in the baseline apart from the field's other
    /// differences.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub declared: Option<String>,
}

impl Difference {
    /// Its name in the baseline and in `known_differences`: `SYN.window`,
    /// `server.listen.backlog`, or with the pattern of the declaration
    /// that covers it, `client.calls[socket(AF_INET6*]`.
    pub fn key(&self) -> String {
        match &self.declared {
            Some(pattern) => format!("{}.{}[{pattern}]", self.segment, self.field),
            None => format!("{}.{}", self.segment, self.field),
        }
    }

    /// The call it names and its socket, without its place: `("socket
    /// 1", "socket(AF_INET6, …)")` of `call 1 (socket 1): socket(AF_INET6,
    /// …)`. The program's side when it made the call; for a call only the
    /// reference made, the call alone: the reference's socket numbers are
    /// not the program's, so `socket 1: *` never covers a call it left out.
    pub fn call_text(&self) -> (Option<&str>, &str) {
        let (side, own) = if self.actual != "-" {
            (&self.actual, true)
        } else {
            (&self.reference, false)
        };
        let Some((place, call)) = side.split_once(": ") else {
            return (None, side);
        };
        let socket = place
            .split_once('(')
            .and_then(|(_, s)| s.strip_suffix(')'))
            .filter(|_| own);
        (socket, call)
    }
}

/// Every field of `actual` that differs from `reference` under the policies.
/// A field that does not apply on either side (`None`) is compared only when
/// it is a presence (e.g. an option that one side sends and the other not).
/// Fields a scenario ignores (see [`IgnoredField`]) are left out.
pub fn compare(
    reference: &Signature,
    actual: &Signature,
    ignored: &[IgnoredField],
) -> Vec<Difference> {
    let mut out = Vec::new();
    let show = |v: &Value| v.clone().unwrap_or_else(|| "-".to_string());
    for (ref_seg, act_seg) in reference.handshake.iter().zip(&actual.handshake) {
        for (field, ref_value) in &ref_seg.fields {
            let act_value = act_seg
                .fields
                .iter()
                .find(|(f, _)| f == field)
                .map(|(_, v)| v.clone())
                .unwrap_or(None);
            if *ref_value != act_value {
                out.push(Difference {
                    segment: ref_seg.label.to_string(),
                    field: *field,
                    reference: show(ref_value),
                    actual: show(&act_value),
                    frame: act_seg.frame,
                    declared: None,
                });
            }
        }
        // Fields only the actual side has (e.g. a missing SYN on the reference side).
        for (field, act_value) in &act_seg.fields {
            if !ref_seg.fields.iter().any(|(f, _)| f == field) {
                out.push(Difference {
                    segment: ref_seg.label.to_string(),
                    field: *field,
                    reference: "-".into(),
                    actual: show(act_value),
                    frame: act_seg.frame,
                    declared: None,
                });
            }
        }
    }
    for (field, ref_value) in &reference.meaning {
        let act_value = actual
            .meaning
            .iter()
            .find(|(f, _)| f == field)
            .and_then(|(_, v)| v.clone());
        // Writes are compared only where both sides fit one segment.
        if *field == Field::ClientToServerWrites && (ref_value.is_none() || act_value.is_none()) {
            continue;
        }
        if *ref_value != act_value {
            out.push(Difference {
                segment: CONVERSATION.into(),
                field: *field,
                reference: show(ref_value),
                actual: show(&act_value),
                frame: None,
                declared: None,
            });
        }
    }
    out.retain(|d| !ignored.iter().any(|i| i.covers(&d.segment, d.field)));
    out
}

#[cfg(test)]
mod compared_tests {
    use super::*;
    use wire::dissect::{dissect_all, LinkType};
    use wire::fixtures;

    /// A refused attempt, then the tutorial's established connection on
    /// the same ports: what a client that tries `::1` first and then
    /// 127.0.0.1 leaves in a capture.
    fn two_attempts() -> Vec<Connection> {
        let mut frames = fixtures::refused_attempt(LinkType::Ethernet);
        frames.extend(fixtures::tutorial(LinkType::Ethernet));
        wire::conversation::build(&dissect_all(LinkType::Ethernet, &frames).0)
    }

    #[test]
    fn the_established_connection_is_compared_not_the_refused_attempt() {
        let connections = two_attempts();
        assert_eq!(connections.len(), 2);
        let (index, chosen) = compared_connection(connections.iter(), false).unwrap();
        assert_eq!(index, 1);
        assert!(chosen.established());
        // Where a refusal is the point, the refused attempt.
        let (index, chosen) = compared_connection(connections.iter(), true).unwrap();
        assert_eq!(index, 0);
        assert!(chosen.refused());
    }
}
