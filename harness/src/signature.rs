//! What is compared between pairings, and how: the field policy table.
//!
//! As in packetdrill, every TCP/IP field has an explicit policy. The
//! handshake is compared segment by segment, field by field. Data and
//! teardown are compared by meaning only, because delayed ACKs, coalescing
//! and recv chunking depend on timing: comparing segment counts there would
//! make verdicts flaky, and a flaky verdict is a bug.

use crate::conversation::{Connection, Direction, Phase};
use crate::tcp_options::TcpOption;

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

/// One row of the policy table (also printed by `harness policy` and in the README).
pub struct FieldPolicy {
    pub field: &'static str,
    pub policy: Policy,
    pub why: &'static str,
}

pub const POLICIES: &[FieldPolicy] = &[
    FieldPolicy { field: "flags", policy: Policy::Exact, why: "SYN, SYN/ACK, ACK is the handshake itself; ECN bits show here too" },
    FieldPolicy { field: "len", policy: Policy::Exact, why: "payload length; data on a SYN (TFO) would show here" },
    FieldPolicy { field: "window", policy: Policy::Exact, why: "the raw 16-bit window value, as the tutorials read it" },
    FieldPolicy { field: "options", policy: Policy::Exact, why: "option kinds in wire order, NOP and EOL included: order is a stack's signature" },
    FieldPolicy { field: "mss", policy: Policy::Exact, why: "maximum segment size value" },
    FieldPolicy { field: "wscale", policy: Policy::Exact, why: "window scale multiplier; changes with the receive buffer" },
    FieldPolicy { field: "sack_perm", policy: Policy::Exact, why: "SACK permitted present" },
    FieldPolicy { field: "ts", policy: Policy::Exact, why: "timestamps option present (its values are ignored)" },
    FieldPolicy { field: "ts_echo_zero", policy: Policy::Exact, why: "a SYN echoes 0: nothing to echo yet" },
    FieldPolicy { field: "ip.version", policy: Policy::Exact, why: "IPv4 or IPv6" },
    FieldPolicy { field: "ip.ttl", policy: Policy::Exact, why: "TTL or hop limit: set per socket" },
    FieldPolicy { field: "ip.df", policy: Policy::Exact, why: "Don't Fragment (path MTU discovery)" },
    FieldPolicy { field: "ip.hdr_len", policy: Policy::Exact, why: "IP options or extension headers" },
    FieldPolicy { field: "tcp.hdr_len", policy: Policy::Exact, why: "TCP header with options" },
    FieldPolicy { field: "seq", policy: Policy::RelativeToIsn, why: "relative to the sender's ISN, as Wireshark shows it" },
    FieldPolicy { field: "ack", policy: Policy::RelativeToIsn, why: "relative to the receiver's ISN" },
    FieldPolicy { field: "client→server bytes", policy: Policy::Meaning, why: "the reassembled stream, whatever the segmentation" },
    FieldPolicy { field: "server→client bytes", policy: Policy::Meaning, why: "the reassembled stream, whatever the segmentation" },
    FieldPolicy { field: "client→server writes", policy: Policy::Meaning, why: "data segments, only when the whole message fits in one segment (one write is then one segment); ignored otherwise, as coalescing depends on timing" },
    FieldPolicy { field: "closes first", policy: Policy::Meaning, why: "which side sends the first FIN" },
    FieldPolicy { field: "reset", policy: Policy::Meaning, why: "whether and from which side an RST ends the connection" },
    FieldPolicy { field: "isn", policy: Policy::Ignored, why: "random by design (RFC 6528)" },
    FieldPolicy { field: "ports", policy: Policy::Ignored, why: "ephemeral" },
    FieldPolicy { field: "ts values", policy: Policy::Ignored, why: "clock-derived and randomly offset" },
    FieldPolicy { field: "ip.id", policy: Policy::Ignored, why: "per-packet counter or random" },
    FieldPolicy { field: "checksums", policy: Policy::Ignored, why: "offloaded on loopback, often not filled in" },
    FieldPolicy { field: "timing", policy: Policy::Ignored, why: "depends on scheduling" },
    FieldPolicy { field: "segment counts (data, teardown)", policy: Policy::Ignored, why: "delayed ACKs and coalescing depend on timing" },
];

/// The handshake segment labels, in order.
pub const HANDSHAKE_LABELS: [&str; 3] = ["SYN", "SYN/ACK", "ACK"];

/// A refused attempt's segments: the client's SYN and the kernel's answer.
pub const REFUSED_LABELS: [&str; 2] = ["SYN", "RST/ACK"];

/// The names of the fields that are compared (not ignored), for checking a
/// scenario's overrides.
pub fn compared_fields() -> Vec<&'static str> {
    POLICIES
        .iter()
        .filter(|p| p.policy != Policy::Ignored)
        .map(|p| p.field)
        .collect()
}

/// A field's value in one pairing; `None` where it does not apply.
pub type Value = Option<String>;

/// What one handshake segment looks like under the policies.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SegmentSignature {
    pub label: &'static str,
    /// Frame number, for pointing the user at it (not compared).
    pub frame: Option<usize>,
    pub fields: Vec<(&'static str, Value)>,
}

/// A pairing's conversation reduced to what is compared.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Signature {
    pub handshake: Vec<SegmentSignature>,
    /// Data and teardown, by meaning.
    pub meaning: Vec<(&'static str, Value)>,
}

impl Signature {
    pub fn field(&self, segment: &str, field: &str) -> Option<&Value> {
        let fields = if segment == "conversation" {
            &self.meaning
        } else {
            &self.handshake.iter().find(|s| s.label == segment)?.fields
        };
        fields.iter().find(|(f, _)| *f == field).map(|(_, v)| v)
    }
}

/// The signature of a connection: its handshake, or for a refused attempt
/// its SYN and RST/ACK, field by field, and the rest by meaning.
pub fn signature(conn: &Connection) -> Signature {
    type Wanted = (&'static str, Direction, fn(&crate::dissect::Flags) -> bool);
    let handshake: &[Wanted] = &[
        ("SYN", Direction::ClientToServer, |f| f.syn && !f.ack),
        ("SYN/ACK", Direction::ServerToClient, |f| f.syn && f.ack),
        ("ACK", Direction::ClientToServer, |f| !f.syn && f.ack),
    ];
    let refused: &[Wanted] = &[
        ("SYN", Direction::ClientToServer, |f| f.syn && !f.ack),
        ("RST/ACK", Direction::ServerToClient, |f| f.rst),
    ];
    let (wanted, phase_matters) = if conn.refused() {
        (refused, false)
    } else {
        (handshake, true)
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
                    None => vec![("flags", Some("(missing)".to_string()))],
                },
            }
        })
        .collect();
    Signature {
        handshake: segments,
        meaning: meaning(conn),
    }
}

fn segment_fields(p: &crate::conversation::Placed, is_syn: bool) -> Vec<(&'static str, Value)> {
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
        ("flags", Some(s.flags.to_string())),
        ("seq", Some(p.rel_seq.to_string())),
        ("ack", Some(p.rel_ack.to_string())),
        ("window", Some(s.window.to_string())),
        ("len", Some(s.payload_len.to_string())),
        (
            "options",
            Some(if kinds.is_empty() {
                "-".to_string()
            } else {
                kinds
            }),
        ),
        ("mss", mss),
        ("wscale", ws),
        (
            "sack_perm",
            yes_no(opts.contains(&TcpOption::SackPermitted)),
        ),
        ("ts", yes_no(ts.is_some())),
    ];
    if is_syn {
        fields.push((
            "ts_echo_zero",
            ts.map(|echo| if echo == 0 { "yes" } else { "no" }.to_string()),
        ));
    }
    fields.extend([
        ("ip.version", Some(s.ip.version.to_string())),
        ("ip.ttl", Some(s.ip.ttl.to_string())),
        ("ip.df", yes_no(s.ip.df)),
        ("ip.hdr_len", Some(s.ip.header_len.to_string())),
        ("tcp.hdr_len", Some(s.header_len.to_string())),
    ]);
    fields
}

/// FNV-1a, to name a byte stream compactly in tables (not for security).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

pub fn describe_bytes(bytes: &[u8]) -> String {
    format!("{} bytes #{:016x}", bytes.len(), fnv1a(bytes))
}

/// A stream by content, or by length alone when a snaplen cut its payload
/// (what was captured then depends on segmentation, so it is not compared).
fn describe_stream(stream: &crate::conversation::Stream) -> String {
    if stream.uncaptured > 0 {
        format!("{} bytes (payload not captured)", stream.length)
    } else {
        describe_bytes(&stream.bytes)
    }
}

fn meaning(conn: &Connection) -> Vec<(&'static str, Value)> {
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
            "client→server bytes",
            Some(describe_stream(&conn.client_stream)),
        ),
        (
            "server→client bytes",
            Some(describe_stream(&conn.server_stream)),
        ),
        ("client→server writes", writes),
        (
            "closes first",
            Some(
                conn.close
                    .first_fin
                    .map_or("nobody".to_string(), |d| side(d).to_string()),
            ),
        ),
        ("reset", Some(reset)),
    ]
}

/// One field that differs from the reference.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Difference {
    /// "SYN", "SYN/ACK", "ACK" or "conversation".
    pub segment: String,
    pub field: String,
    pub reference: String,
    pub actual: String,
    /// The frame in this pairing's capture, where there is one.
    pub frame: Option<usize>,
}

/// Every field of `actual` that differs from `reference` under the policies.
/// A field that does not apply on either side (`None`) is compared only when
/// it is a presence (e.g. an option that one side sends and the other not).
/// Fields a scenario ignores (see [`crate::scenario::IgnoredField`]) are left out.
pub fn compare(
    reference: &Signature,
    actual: &Signature,
    ignored: &[crate::scenario::IgnoredField],
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
                    field: field.to_string(),
                    reference: show(ref_value),
                    actual: show(&act_value),
                    frame: act_seg.frame,
                });
            }
        }
        // Fields only the actual side has (e.g. a missing SYN on the reference side).
        for (field, act_value) in &act_seg.fields {
            if !ref_seg.fields.iter().any(|(f, _)| f == field) {
                out.push(Difference {
                    segment: ref_seg.label.to_string(),
                    field: field.to_string(),
                    reference: "-".into(),
                    actual: show(act_value),
                    frame: act_seg.frame,
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
        if *field == "client→server writes" && (ref_value.is_none() || act_value.is_none()) {
            continue;
        }
        if *ref_value != act_value {
            out.push(Difference {
                segment: "conversation".into(),
                field: field.to_string(),
                reference: show(ref_value),
                actual: show(&act_value),
                frame: None,
            });
        }
    }
    out.retain(|d| !ignored.iter().any(|i| i.covers(&d.segment, &d.field)));
    out
}
