//! Adverse network conditions as data: a scenario's `[network]` table.
//!
//! A scenario may change the kernel's TCP settings in the cell's network
//! namespace (`sysctl`), the loopback's MTU (`mtu`), and lose segments on
//! purpose (`[[network.rule]]`). Every condition is deterministic: a rule
//! names which segments it drops by kind and position, never by chance,
//! so the same cell loses the same segment on every run, and a verdict
//! under loss is as stable as one without.
//!
//! This module only reads and validates; `exec::conditions` applies them
//! in a namespace and reads back what each rule did.

use std::collections::BTreeMap;

/// The most segments one rule may name by count. A larger budget is
/// `times = "all"`.
pub const MAX_TIMES: u32 = 1000;

/// The most clients a scenario may start against its one server: enough
/// to overflow any small backlog, few enough that a cell stays short.
pub const MAX_CLIENTS: u32 = 8;

/// A scenario's network conditions, validated.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Conditions {
    /// `net.*` keys and the values written to them, in the cell's
    /// namespace only.
    pub sysctl: Vec<(String, String)>,
    /// The loopback's MTU in the cell's namespace (65536 by default).
    pub mtu: Option<u32>,
    pub rules: Vec<Rule>,
    /// How many clients connect to the one server (1 by default). With
    /// more than one, the server is held still (SIGSTOP) from its ready
    /// line until every client's connect has settled, as a busy server
    /// would be, so its backlog fills the same way on every run; the
    /// clients start one after another, each once the last one's connect
    /// was queued or its SYN dropped (`exec::backlog`).
    pub clients: u32,
}

impl Default for Conditions {
    fn default() -> Self {
        Conditions {
            sysctl: Vec::new(),
            mtu: None,
            rules: Vec::new(),
            clients: 1,
        }
    }
}

impl Conditions {
    /// Whether the scenario runs on the kernel's defaults.
    pub fn is_empty(&self) -> bool {
        self.sysctl.is_empty() && self.mtu.is_none() && self.rules.is_empty() && self.clients == 1
    }

    /// Whether the server is held while several clients connect.
    pub fn holds_server(&self) -> bool {
        self.clients > 1
    }

    /// Roughly how long a cell under these conditions waits on timers:
    /// a lost SYN or SYN/ACK costs the kernel's initial retransmission
    /// timeout (1 s), a delay its length. For ordering, never for a
    /// verdict: cells that wait longest start first, so that no worker
    /// is left waiting on a timer at the end of a run.
    pub fn expected_wait_ms(&self) -> u64 {
        // A client whose SYN the full backlog dropped retries after 1 s.
        let backlog = if self.holds_server() { 1000 } else { 0 };
        backlog
            + self
                .rules
                .iter()
                .map(|r| match (r.action, r.segment, r.times) {
                    (Action::Drop, SegmentKind::Syn, Times::All) => 4000,
                    (Action::Drop, SegmentKind::Syn | SegmentKind::SynAck, _) => 1000,
                    (Action::Delay, _, _) => u64::from(r.delay_ms.unwrap_or(0)),
                    _ => 0,
                })
                .sum::<u64>()
    }

    /// One line for reports: "net.ipv4.tcp_timestamps=0; drop 1 SYN to server".
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = self
            .sysctl
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        parts.extend(self.mtu.map(|m| format!("lo mtu {m}")));
        if self.holds_server() {
            parts.push(format!(
                "{} clients, one after another, against the server held still",
                self.clients
            ));
        }
        parts.extend(self.rules.iter().map(Rule::describe));
        parts.join("; ")
    }
}

/// What a rule does to the segments it selects. `drop` and `duplicate`
/// are nftables' alone; the others go through the harness's NFQUEUE
/// verdict loop (`exec::impair`), which holds or replaces the segment.
/// Where each acts: `exec::conditions::Hook`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Lost after the capture saw it, as on a lossy link: the segment is
    /// in the capture and never reaches the receiver.
    Drop,
    /// Held for `delay_ms`, then delivered; segments behind it pass it.
    Delay,
    /// Copied as it leaves its sender: both cross the link, and the
    /// capture, one behind the other.
    Duplicate,
    /// Swapped with the next selected segment: the later one is delivered
    /// first. Acts on two segments, `nth` and the one after.
    Reorder,
    /// Replaced, as it leaves its sender, by a RST from that sender with
    /// the same sequence number: the receiver's connection is reset in
    /// the middle of it.
    Reset,
}

impl Action {
    /// The verb reports use.
    pub fn verb(self) -> &'static str {
        match self {
            Action::Drop => "drop",
            Action::Delay => "delay",
            Action::Duplicate => "duplicate",
            Action::Reorder => "swap",
            Action::Reset => "reset at",
        }
    }

    /// Segments one application of the rule acts on.
    pub fn segments_per_act(self) -> u32 {
        if self == Action::Reorder {
            2
        } else {
            1
        }
    }
}

/// The longest `delay_ms` a rule may ask for: every wait is bounded, and a
/// cell's programs wait at most 10 s.
pub const MAX_DELAY_MS: u32 = 5000;

/// Which way a selected segment travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Toward {
    ToServer,
    ToClient,
}

impl Toward {
    pub fn describe(self) -> &'static str {
        match self {
            Toward::ToServer => "to server",
            Toward::ToClient => "to client",
        }
    }
}

/// The kinds of segment a rule can select.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SegmentKind {
    /// SYN without ACK: a connection attempt.
    Syn,
    /// SYN with ACK: the server's answer.
    SynAck,
    /// A segment carrying data. nftables cannot subtract header lengths,
    /// so this is an IP packet longer than [`DATA_MIN_PACKET`] bytes: a
    /// bare ACK with every TCP option is never one, and neither is data of
    /// a few bytes (use `any` with `nth` for those).
    Data,
    /// Any segment with FIN set.
    Fin,
    /// Every segment that way, for selecting by index.
    Any,
}

/// The IP packet length above which a segment counts as data: an IPv6
/// header (40) and the longest TCP header (60) with nothing after them.
pub const DATA_MIN_PACKET: u32 = 100;

impl SegmentKind {
    fn describe(self) -> &'static str {
        match self {
            SegmentKind::Syn => "SYN",
            SegmentKind::SynAck => "SYN/ACK",
            SegmentKind::Data => "data segment",
            SegmentKind::Fin => "FIN",
            SegmentKind::Any => "segment",
        }
    }
}

/// How many selected segments a rule acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Times {
    Count(u32),
    /// Every one: a black hole for that kind.
    All,
}

/// One deterministic segment rule.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Rule {
    pub action: Action,
    pub toward: Toward,
    pub segment: SegmentKind,
    /// The first selected segment acted on, counting from 1: `nth = 3`
    /// with `times = 1` loses the third data segment and no other.
    pub nth: u32,
    pub times: Times,
    /// For `delay`: how long each selected segment is held.
    pub delay_ms: Option<u32>,
}

impl Rule {
    /// "drop 1 SYN to server", "drop every SYN to server", "drop data
    /// segment 30 to server".
    pub fn describe(&self) -> String {
        let what = self.segment.describe();
        let way = self.toward.describe();
        let verb = self.action.verb();
        let how = match self.delay_ms {
            Some(ms) if self.action == Action::Delay => format!(" by {ms} ms"),
            _ => String::new(),
        };
        if self.action == Action::Reorder {
            return format!(
                "swap the {} and {} {what}s {way}",
                ordinal(self.nth),
                ordinal(self.nth + 1)
            );
        }
        match (self.times, self.nth) {
            (Times::All, 1) => format!("{verb} every {what} {way}{how}"),
            (Times::All, n) => format!("{verb} every {what} {way} from the {}{how}", ordinal(n)),
            (Times::Count(1), 1) => format!("{verb} the first {what} {way}{how}"),
            (Times::Count(1), n) => format!("{verb} the {} {what} {way}{how}", ordinal(n)),
            (Times::Count(t), 1) => format!("{verb} the first {t} {what}s {way}{how}"),
            (Times::Count(t), n) => {
                format!("{verb} {t} {what}s {way} from the {}{how}", ordinal(n))
            }
        }
    }

    /// Segments the rule is to act on in a cell; `None` for every one.
    pub fn expected(&self) -> Option<u32> {
        match self.times {
            Times::All => None,
            Times::Count(n) => Some(n * self.action.segments_per_act()),
        }
    }

    /// Segments nftables is to select for the rule; `None` for every one
    /// from the nth. A reset selects every one from there (its loop holds
    /// the sender's retransmissions until its RST has landed), however
    /// many it acts on.
    pub fn selected(&self) -> Option<u32> {
        match self.action {
            Action::Reset => None,
            _ => self.expected(),
        }
    }
}

fn ordinal(n: u32) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

/// The `[network]` table as written.
#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawNetwork {
    #[serde(default)]
    sysctl: BTreeMap<String, toml::Value>,
    #[serde(default)]
    mtu: Option<i64>,
    #[serde(default, rename = "rule")]
    rules: Vec<RawRule>,
    #[serde(default)]
    clients: Option<i64>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    action: Action,
    direction: Toward,
    segment: SegmentKind,
    #[serde(default)]
    nth: Option<i64>,
    #[serde(default)]
    times: Option<toml::Value>,
    #[serde(default)]
    delay_ms: Option<i64>,
}

/// Validates a `[network]` table; the error names the key.
/// `sysctl_root` is where `net.*` keys live (`/proc/sys`), so a key this
/// kernel lacks is refused before anything runs.
pub(crate) fn validate(
    raw: RawNetwork,
    sysctl_root: &std::path::Path,
) -> Result<Conditions, (String, String)> {
    let mut sysctl = Vec::new();
    for (key, value) in raw.sysctl {
        let entry = format!("network.sysctl.\"{key}\"");
        if !key.starts_with("net.") || key.contains("..") || key.contains('/') {
            return Err((
                entry,
                "only per-namespace `net.*` keys can be set (e.g. \"net.ipv4.tcp_timestamps\")"
                    .into(),
            ));
        }
        let path = sysctl_root.join(key.replace('.', "/"));
        if !path.is_file() {
            return Err((
                entry,
                format!(
                    "this kernel has no such setting ({} does not exist); check the name with `sysctl -a | grep {}`",
                    path.display(),
                    key.rsplit('.').next().unwrap_or(&key)
                ),
            ));
        }
        let value = match value {
            toml::Value::Integer(n) => n.to_string(),
            toml::Value::String(s) if !s.contains('\n') => s,
            toml::Value::Boolean(b) => u8::from(b).to_string(),
            _ => {
                return Err((
                    entry,
                    "give a whole number or a string, as `sysctl -w` takes it".into(),
                ))
            }
        };
        sysctl.push((key, value));
    }
    let mtu = match raw.mtu {
        None => None,
        Some(m) if (68..=65535).contains(&m) => Some(m as u32),
        Some(m) => {
            return Err((
                "network.mtu".into(),
                format!("{m} is out of range; an MTU is 68 (IPv4's least) to 65535"),
            ))
        }
    };
    let clients = match raw.clients {
        None => 1,
        Some(n) if (1..=i64::from(MAX_CLIENTS)).contains(&n) => n as u32,
        Some(n) => {
            return Err((
                "network.clients".into(),
                format!("{n} is out of range; give 1 to {MAX_CLIENTS} clients"),
            ))
        }
    };
    let mut rules = Vec::new();
    for (i, r) in raw.rules.into_iter().enumerate() {
        let entry = format!("network.rule[{}]", i + 1);
        let nth = match r.nth {
            None => 1,
            Some(n) if (1..=i64::from(u32::MAX)).contains(&n) => n as u32,
            Some(n) => {
                return Err((
                    format!("{entry}.nth"),
                    format!("{n} must be 1 or more: the first selected segment is 1"),
                ))
            }
        };
        let times = match r.times {
            None => Times::Count(1),
            Some(toml::Value::String(s)) if s == "all" => Times::All,
            Some(toml::Value::Integer(n)) if (1..=i64::from(MAX_TIMES)).contains(&n) => {
                Times::Count(n as u32)
            }
            Some(other) => {
                return Err((
                    format!("{entry}.times"),
                    format!("{other} must be a count from 1 to {MAX_TIMES}, or \"all\""),
                ))
            }
        };
        let delay_ms = match (r.action, r.delay_ms) {
            (Action::Delay, Some(ms)) if (1..=i64::from(MAX_DELAY_MS)).contains(&ms) => {
                Some(ms as u32)
            }
            (Action::Delay, Some(ms)) => {
                return Err((
                    format!("{entry}.delay_ms"),
                    format!("{ms} must be from 1 to {MAX_DELAY_MS} milliseconds"),
                ))
            }
            (Action::Delay, None) => {
                return Err((
                    format!("{entry}.delay_ms"),
                    "action = \"delay\" needs delay_ms, how long to hold each segment".into(),
                ))
            }
            (_, Some(_)) => {
                return Err((
                    format!("{entry}.delay_ms"),
                    "delay_ms goes with action = \"delay\" only".into(),
                ))
            }
            (_, None) => None,
        };
        if matches!(r.action, Action::Reorder | Action::Reset) && times != Times::Count(1) {
            return Err((
                format!("{entry}.times"),
                "action = \"reorder\" swaps one pair and \"reset\" resets once; leave times out"
                    .into(),
            ));
        }
        rules.push(Rule {
            action: r.action,
            toward: r.direction,
            segment: r.segment,
            nth,
            times,
            delay_ms,
        });
    }
    Ok(Conditions {
        sysctl,
        mtu,
        rules,
        clients,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conditions(text: &str) -> Result<Conditions, (String, String)> {
        let raw: RawNetwork = toml::from_str(text).map_err(|e| ("toml".into(), e.to_string()))?;
        validate(raw, std::path::Path::new("/proc/sys"))
    }

    #[test]
    fn rules_default_to_the_first_segment_once() {
        let c =
            conditions("[[rule]]\naction = \"drop\"\ndirection = \"to-server\"\nsegment = \"syn\"")
                .unwrap();
        assert_eq!(c.rules[0].nth, 1);
        assert_eq!(c.rules[0].times, Times::Count(1));
        assert_eq!(c.describe(), "drop the first SYN to server");
    }

    #[test]
    fn descriptions_say_which_segments() {
        let c = conditions(
            "sysctl = { \"net.ipv4.tcp_syn_retries\" = 1 }\nmtu = 1280\n[[rule]]\naction = \"drop\"\ndirection = \"to-client\"\nsegment = \"syn-ack\"\ntimes = \"all\"\n[[rule]]\naction = \"drop\"\ndirection = \"to-server\"\nsegment = \"data\"\nnth = 3",
        )
        .unwrap();
        assert_eq!(
            c.describe(),
            "net.ipv4.tcp_syn_retries=1; lo mtu 1280; drop every SYN/ACK to client; drop the 3rd data segment to server"
        );
    }

    #[test]
    fn each_mistake_names_its_key() {
        let cases = [
            ("sysctl = { \"kernel.pid_max\" = 1 }", "network.sysctl.\"kernel.pid_max\"", "net.*"),
            (
                "sysctl = { \"net.ipv4.tcp_no_such_thing\" = 1 }",
                "network.sysctl.\"net.ipv4.tcp_no_such_thing\"",
                "no such setting",
            ),
            ("mtu = 67", "network.mtu", "68"),
            ("mtu = 65536", "network.mtu", "65535"),
            (
                "[[rule]]\naction = \"drop\"\ndirection = \"to-server\"\nsegment = \"syn\"\ntimes = 0",
                "network.rule[1].times",
                "\"all\"",
            ),
            (
                "[[rule]]\naction = \"drop\"\ndirection = \"to-server\"\nsegment = \"syn\"\nnth = 0",
                "network.rule[1].nth",
                "1 or more",
            ),
        ];
        for (text, entry, problem) in cases {
            let (e, p) = conditions(text).unwrap_err();
            assert_eq!(e, entry, "{p}");
            assert!(p.contains(problem), "{p}");
        }
        // An unknown kind is serde's to refuse, with the kinds listed.
        let (_, p) = conditions(
            "[[rule]]\naction = \"drop\"\ndirection = \"to-server\"\nsegment = \"syn-ak\"",
        )
        .unwrap_err();
        assert!(p.contains("syn-ack"), "{p}");
    }
}
