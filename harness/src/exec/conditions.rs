//! A scenario's network conditions applied in the calling thread's network
//! namespace, what each rule did read back afterwards, and the guard that
//! no condition outlives its cell.
//!
//! Each rule acts where a real network would do what it asks (see
//! [`Hook`]): a lost, delayed or swapped segment in the receiver's
//! `prerouting` hook, which runs after the capture has seen the packet (a
//! dropped segment is in the capture, as a learner sees a lost segment in
//! Wireshark, and never reaches its receiver; dropping in `output`
//! instead would return EPERM to the sender, which is not loss); a copy
//! or a RST where the segment leaves its sender, so that what the harness
//! adds crosses the link the capture watches, on a veth pair as on the
//! loopback.
//!
//! Why every rule is exact: nftables has no "the first N packets" match
//! (`numgen` counts modulo, `quota` counts bytes, `limit` counts time).
//! A rule here adds each selected packet, keyed by a running number, to a
//! set of fixed size: the add succeeds for the first N packets and fails
//! after, and a failed add ends the rule. So `size N` is a budget of N
//! packets, exact and the same on every run. `nth` is a second budget of
//! packets let through first. The rule's counter sits after the budget,
//! so it counts the segments acted on and no other.

use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::exec::impair::{
    self, Impairer, Landing, Queues, INJECTED_MARK, INJECTED_MASK, INJECTED_RST_MARK, QUEUE_BASE,
    RST_QUEUE,
};
use crate::exec::network::{self, VETH_CLIENT_DEVICE, VETH_SERVER_DEVICE};
use crate::exec::nf_tables;
use crate::exec::process::Child;
use crate::suite::conditions::{Action, Conditions, Rule, SegmentKind, Toward, DATA_MIN_PACKET};

/// The nftables tables a cell's rules live in (one `inet`, one `netdev`
/// for the copies, each only where needed).
pub const TABLE: &str = "harness_conditions";

/// The file the rules are written to in the cell's folder (`nft -f` reads
/// it, and a user can load it by hand).
pub const RULES_FILE: &str = "conditions.nft";

/// The file the client's share of the rules is written to on a veth pair
/// (loaded in the client's namespace).
pub const CLIENT_RULES_FILE: &str = "conditions-client.nft";

/// What one rule did in one cell.
#[derive(
    Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct Applied {
    /// The rule in words: "drop the first SYN to server".
    pub rule: String,
    /// The segments it was to act on; `None` for every one (`times = "all"`).
    pub expected: Option<u32>,
    /// The segments it acted on, by its nftables counter.
    pub matched: u64,
}

/// Where a rule acts, by what it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    /// The receiver's `prerouting`: after the capture, before the
    /// receiver's stack. Loss, delay and swaps happen on the way, so the
    /// segment is seen leaving and its fate is the receiver's.
    Prerouting,
    /// The sender's `output`: a reset's segment is replaced by its RST
    /// before it leaves, so the RST crosses the link (and the capture) in
    /// its place, and the segment itself is never seen.
    Output,
    /// The sender's device, as the frame leaves (nftables' `netdev`
    /// `egress` hook and its `dup`): the copy leaves right behind the
    /// original and crosses the same link, whole (a GSO packet is copied
    /// as the one frame the capture shows).
    Egress,
}

impl Hook {
    pub fn of(action: Action) -> Hook {
        match action {
            Action::Drop | Action::Delay | Action::Reorder => Hook::Prerouting,
            Action::Reset => Hook::Output,
            Action::Duplicate => Hook::Egress,
        }
    }
}

/// Whose namespace a share of the rules is loaded in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The loopback's one namespace, both ends: every rule.
    Loopback,
    /// The server's end of a veth pair.
    Server,
    /// The client's end of a veth pair.
    Client,
}

impl Side {
    /// The device frames leave this namespace by.
    fn device(self) -> &'static str {
        match self {
            Side::Loopback => "lo",
            Side::Server => VETH_SERVER_DEVICE,
            Side::Client => VETH_CLIENT_DEVICE,
        }
    }

    /// Whether `rule`'s segments arrive in this namespace.
    fn receives(self, rule: &Rule) -> bool {
        matches!(
            (self, rule.toward),
            (Side::Loopback, _)
                | (Side::Server, Toward::ToServer)
                | (Side::Client, Toward::ToClient)
        )
    }

    /// Whether they leave from it.
    fn sends(self, rule: &Rule) -> bool {
        self == Side::Loopback || !self.receives(rule)
    }

    /// The hook `rule` acts in here; `None` where it acts in the other
    /// namespace.
    pub fn hook(self, rule: &Rule) -> Option<Hook> {
        let hook = Hook::of(rule.action);
        let here = match hook {
            Hook::Prerouting => self.receives(rule),
            Hook::Output | Hook::Egress => self.sends(rule),
        };
        here.then_some(hook)
    }

    /// Whether a reset's RST lands here: the loop here lets it through to
    /// the receiver, and says so to the loop that sent it.
    pub fn lands(self, rule: &Rule) -> bool {
        rule.action == Action::Reset && self.receives(rule)
    }

    /// What the loop here listens to.
    fn queues(self, rules: &[Rule]) -> Queues {
        Queues {
            rules: (0..rules.len())
                .filter(|&i| self.hook(&rules[i]).is_some() && impair::queued(&rules[i]))
                .collect(),
            rst: rules.iter().any(|r| self.lands(r)),
        }
    }

    /// Whether anything of `rules` is loaded here.
    fn has_any(self, rules: &[Rule]) -> bool {
        rules
            .iter()
            .any(|r| self.hook(r).is_some() || self.lands(r))
    }
}

/// Bytes in front of the IP header in a frame the `egress` hook sees (the
/// Ethernet header, on lo as on a veth): `meta length` counts them there.
const LINK_HEADER: u32 = 14;

/// The share of `rules` that acts on `side`, as an nftables script for
/// `port`; each rule keeps its name and mark by its place among all the
/// scenario's rules.
pub fn ruleset_for(rules: &[Rule], port: u16, side: Side) -> String {
    #[derive(Default)]
    struct Table {
        sets: String,
        chains: String,
    }
    let (mut inet, mut netdev) = (Table::default(), Table::default());
    let (mut prerouting, mut output, mut egress) = (String::new(), String::new(), String::new());
    let way = |toward: Toward| match toward {
        Toward::ToServer => format!("tcp dport {port}"),
        Toward::ToClient => format!("tcp sport {port}"),
    };
    for (i, rule) in rules.iter().enumerate() {
        let Some(hook) = side.hook(rule) else {
            continue;
        };
        let name = format!("rule{}", i + 1);
        let way = way(rule.toward);
        let data_length = match hook {
            Hook::Egress => DATA_MIN_PACKET + LINK_HEADER,
            _ => DATA_MIN_PACKET,
        };
        let kind = match rule.segment {
            SegmentKind::Syn => " tcp flags & (syn | ack) == syn",
            SegmentKind::SynAck => " tcp flags & (syn | ack) == syn | ack",
            SegmentKind::Fin => " tcp flags & fin == fin",
            SegmentKind::Data => &format!(" meta length > {data_length}"),
            SegmentKind::Any => "",
        };
        // What the harness itself sends (a copy, a RST) is never selected
        // again.
        let selected = format!("meta mark & {INJECTED_MASK:#x} != {INJECTED_MARK:#x} {way}{kind}");
        // A running number per rule: unique keys, so each add is a new
        // element until the set is full.
        let key = "numgen inc mod 2147483647";
        let table = if hook == Hook::Egress {
            &mut netdev
        } else {
            &mut inet
        };
        let mut body = String::new();
        if rule.nth > 1 {
            table.sets.push_str(&format!(
                "  set {name}_pass {{ typeof numgen inc mod 2147483647; size {}; flags dynamic; }}\n",
                rule.nth - 1
            ));
            body.push_str(&format!(
                "    {selected} add @{name}_pass {{ {key} }} return\n"
            ));
        }
        let budget = match rule.selected() {
            None => String::new(),
            Some(n) => {
                table.sets.push_str(&format!(
                    "  set {name}_budget {{ typeof numgen inc mod 2147483647; size {n}; flags dynamic; }}\n"
                ));
                format!(" add @{name}_budget {{ {key} }}")
            }
        };
        let verdict = match rule.action {
            Action::Drop => "drop".to_string(),
            // The copy is made with the mark that keeps every rule off
            // it (it enters this hook again as it leaves); the original
            // leaves unmarked.
            Action::Duplicate => format!(
                "meta mark set {INJECTED_MARK:#x} dup to \"{}\" meta mark set 0",
                side.device()
            ),
            // A queued rule marks its segments, and iptables' NFQUEUE
            // target queues them (see `queue_commands`).
            _ => format!("meta mark set {:#x}", queue_mark(i)),
        };
        body.push_str(&format!(
            "    {selected}{budget} counter {verdict} comment \"{name}\"\n"
        ));
        table
            .chains
            .push_str(&format!("  chain {name} {{\n{body}  }}\n"));
        match hook {
            Hook::Prerouting => &mut prerouting,
            Hook::Output => &mut output,
            Hook::Egress => &mut egress,
        }
        .push_str(&format!("    jump {name}\n"));
    }
    // A reset's RST is queued where it lands, to be let through by the
    // loop there. On a veth pair the sender's mark does not survive the
    // crossing, so every RST that way is marked here; the loop knows its
    // own by the sequence number.
    let mut landing: Vec<String> = rules
        .iter()
        .filter(|r| side.lands(r))
        .map(|r| way(r.toward))
        .collect();
    landing.dedup();
    for way in landing {
        prerouting.push_str(&format!(
            "    {way} tcp flags & rst == rst meta mark set {INJECTED_RST_MARK:#x}\n"
        ));
    }
    let mut out = String::from(
        "# Written by the harness for one cell; `nft -f` loads it (on a veth pair,\n\
         # in the namespace its rules act in).\n",
    );
    let base = |name: &str, how: &str, jumps: &str| {
        if jumps.is_empty() {
            String::new()
        } else {
            format!("  chain {name} {{\n    type filter hook {how}; policy accept;\n{jumps}  }}\n")
        }
    };
    if !(prerouting.is_empty() && output.is_empty()) {
        out.push_str(&format!(
            "table inet {TABLE} {{\n{}{}{}{}}}\n",
            inet.sets,
            inet.chains,
            base("prerouting", "prerouting priority -200", &prerouting),
            base("output", "output priority -200", &output),
        ));
    }
    if !egress.is_empty() {
        out.push_str(&format!(
            "table netdev {TABLE} {{\n{}{}{}}}\n",
            netdev.sets,
            netdev.chains,
            base(
                "egress",
                &format!("egress device \"{}\" priority 0", side.device()),
                &egress
            ),
        ));
    }
    out
}

/// The mark rule `i` puts on the segments it selects for the loop.
pub fn queue_mark(i: usize) -> u32 {
    QUEUE_MARK_BASE + i as u32
}

const QUEUE_MARK_BASE: u32 = 0x1712_0000;

/// The commands that queue each marked segment to its rule's NFQUEUE
/// queue, in the chain of the rule's hook. This kernel's nftables has no
/// `queue` expression (nft_queue is not built), but it has iptables'
/// NFQUEUE target, which iptables-nft adds to the `mangle` table's
/// chains (priority -150, after the rules' own chains at -200). No
/// bypass: a segment whose loop is not there is lost, and its rule then
/// reads as not applied.
pub fn queue_commands(rules: &[Rule], side: Side) -> Vec<Vec<String>> {
    let mut queues: Vec<(u32, u16, &str)> = rules
        .iter()
        .enumerate()
        .filter(|(_, rule)| impair::queued(rule))
        .filter_map(|(i, rule)| {
            let chain = match side.hook(rule)? {
                Hook::Prerouting => "PREROUTING",
                Hook::Output => "OUTPUT",
                Hook::Egress => return None,
            };
            Some((queue_mark(i), QUEUE_BASE + i as u16, chain))
        })
        .collect();
    // A reset's own RST comes back to the loop where it lands.
    if rules.iter().any(|r| side.lands(r)) {
        queues.push((INJECTED_RST_MARK, RST_QUEUE, "PREROUTING"));
    }
    let mut out = Vec::new();
    for (mark, queue, chain) in queues {
        for tool in ["iptables", "ip6tables"] {
            out.push(
                [
                    tool,
                    "-w",
                    "-t",
                    "mangle",
                    "-A",
                    chain,
                    "-m",
                    "mark",
                    "--mark",
                    &format!("{mark:#x}"),
                    "-j",
                    "NFQUEUE",
                    "--queue-num",
                    &queue.to_string(),
                ]
                .map(String::from)
                .to_vec(),
            );
        }
    }
    out
}
/// Conditions in force in a cell: the verdict loops, where a rule needs
/// one, and the client's namespace on a veth pair.
pub struct Active {
    impairer: Option<Impairer>,
    client: Option<ClientSide>,
}

/// The client's end of a veth pair: its namespace, and its loop.
struct ClientSide {
    netns: std::os::fd::OwnedFd,
    impairer: Option<Impairer>,
}

/// Applies `conditions` in the calling thread's namespace, which must be
/// one made for this cell: nothing here is undone, the namespace goes.
/// With `client_netns` (a veth pair) the calling thread is in the
/// server's namespace: sysctls are set on both sides, the MTU on both
/// ends, and each rule where it acts ([`Side::hook`]). The rules are
/// written into `dir`.
pub fn apply(
    conditions: &Conditions,
    port: u16,
    dir: &Path,
    client_netns: Option<BorrowedFd<'_>>,
) -> Result<Active, String> {
    let sysctl = |side: &str| -> Result<(), String> {
        for (key, value) in &conditions.sysctl {
            let path = Path::new("/proc/sys").join(key.replace('.', "/"));
            std::fs::write(&path, value).map_err(|e| {
                format!("cannot set {key} = {value} in the {side}'s namespace: {e}")
            })?;
        }
        Ok(())
    };
    // A reset's RST, between the loop that sends it and the one where it
    // lands (one loop on the loopback, two on a veth pair).
    let landing = Arc::new(Landing::default());
    let side = match client_netns {
        None => {
            sysctl("cell")?;
            if let Some(mtu) = conditions.mtu {
                network::set_loopback_mtu(mtu)
                    .map_err(|e| format!("cannot set the loopback's MTU to {mtu}: {e}"))?;
            }
            Side::Loopback
        }
        Some(client_netns) => {
            sysctl("server")?;
            network::in_namespace(client_netns, || sysctl("client"))?;
            if let Some(mtu) = conditions.mtu {
                network::set_veth_mtu(mtu, client_netns)?;
            }
            Side::Server
        }
    };
    let impairer = load(
        conditions,
        port,
        &dir.join(RULES_FILE),
        side,
        &landing,
        None,
    )?;
    let Some(client_netns) = client_netns else {
        return Ok(Active {
            impairer,
            client: None,
        });
    };
    let client_file = dir.join(CLIENT_RULES_FILE);
    let client_impairer = network::in_namespace(client_netns, || {
        load(
            conditions,
            port,
            &client_file,
            Side::Client,
            &landing,
            Some(client_netns),
        )
    })?;
    let netns = client_netns
        .try_clone_to_owned()
        .map_err(|e| format!("cannot hold the client's namespace: {e}"))?;
    Ok(Active {
        impairer,
        client: Some(ClientSide {
            netns,
            impairer: client_impairer,
        }),
    })
}

/// Starts the loop for the queued rules that act on `side` (in the
/// calling thread's namespace, `netns` for the processes it starts), then
/// loads those rules from `file`.
fn load(
    conditions: &Conditions,
    port: u16,
    file: &Path,
    side: Side,
    landing: &Arc<Landing>,
    netns: Option<BorrowedFd<'_>>,
) -> Result<Option<Impairer>, String> {
    // Bound before the rules exist, so no queued segment finds it absent.
    let impairer = Impairer::start(
        &conditions.rules,
        side.queues(&conditions.rules),
        Arc::clone(landing),
    )?;
    if side.has_any(&conditions.rules) {
        std::fs::write(file, ruleset_for(&conditions.rules, port, side))
            .map_err(|e| format!("cannot write {}: {e}", file.display()))?;
        nft(
            &["nft".to_string(), "-f".into(), file.display().to_string()],
            netns,
        )?;
        for command in queue_commands(&conditions.rules, side) {
            nft(&command, netns)?;
        }
    }
    Ok(impairer)
}

impl Active {
    /// What each rule did, once the cell is over: a rule nftables carries
    /// out by its counter, a queued one by what the loop did (a segment
    /// it was given but could not act on, such as half of a swap, is not
    /// counted). On a veth pair each side's share is read where it acts.
    pub fn finish(self, rules: &[Rule]) -> Result<Vec<Applied>, String> {
        let stop = |impairer: Option<Impairer>| match impairer {
            Some(impairer) => impairer.finish(),
            None => Ok(Vec::new()),
        };
        let mut acted = stop(self.impairer)?;
        if rules.is_empty() {
            return Ok(Vec::new());
        }
        let mut counts = counters(&nft(&LIST_RULESET.map(String::from), None)?)?;
        if let Some(client) = self.client {
            let theirs = stop(client.impairer)?;
            acted.resize(acted.len().max(theirs.len()), 0);
            for (i, n) in theirs.into_iter().enumerate() {
                acted[i] += n;
            }
            counts.extend(counters(&nft(
                &LIST_RULESET.map(String::from),
                Some(client.netns.as_fd()),
            )?)?);
        }
        Ok(rules
            .iter()
            .enumerate()
            .map(|(i, rule)| Applied {
                rule: rule.describe(),
                expected: rule.expected(),
                matched: if impair::queued(rule) {
                    acted.get(i).copied().unwrap_or(0)
                } else {
                    counts
                        .iter()
                        .filter(|(name, _)| *name == format!("rule{}", i + 1))
                        .map(|(_, n)| *n)
                        .sum()
                },
            })
            .collect())
    }
}

/// Every table of the namespace, as JSON: the rules' counters are read
/// from it.
const LIST_RULESET: [&str; 4] = ["nft", "-j", "list", "ruleset"];

/// Each commented rule's counter in the harness's tables, from
/// `nft -j list ruleset` output.
fn counters(json: &str) -> Result<Vec<(String, u64)>, String> {
    let value: serde_json::Value =
        serde_json::from_str(json).map_err(|e| format!("nft's JSON could not be read: {e}"))?;
    let items = value["nftables"].as_array().cloned().unwrap_or_default();
    Ok(items
        .iter()
        .filter_map(|item| {
            let rule = item.get("rule")?;
            if rule["table"].as_str()? != TABLE {
                return None;
            }
            let name = rule["comment"].as_str()?.to_string();
            let packets = rule["expr"]
                .as_array()?
                .iter()
                .find_map(|e| e.get("counter")?.get("packets")?.as_u64())?;
            Some((name, packets))
        })
        .collect())
}

/// Runs an nftables or iptables command in the calling thread's
/// namespace, or in `netns`, with a bounded wait: its stdout, or why it
/// failed.
fn nft(argv: &[String], netns: Option<BorrowedFd<'_>>) -> Result<String, String> {
    let mut argv = argv.to_vec();
    if let Some(found) = crate::program::system_tool(&argv[0]) {
        argv[0] = found.display().to_string();
    }
    let mut child = Child::spawn_in("nft", &argv, None, None, netns)
        .map_err(|e| format!("{e}; install nftables and iptables (make deps)"))?;
    let out = child
        .wait(Duration::from_secs(5), &|| false)
        .map_err(|e| e.to_string())?;
    if out.exit_code == Some(0) {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "`{}` failed: {}",
            argv.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// What a namespace looks like where it matters to the conditions of a
/// run: the values of the sysctls any scenario sets, the loopback's MTU,
/// and whether the rules' table is there. Taken when a worker makes a
/// namespace, compared before each cell that reuses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    sysctl: Vec<(String, String)>,
    mtu: Option<u32>,
    /// The nf_tables tables, by family and name.
    tables: Vec<(&'static str, String)>,
}

impl Snapshot {
    /// The calling thread's namespace now. `keys` are the sysctls to look
    /// at; `rules` says whether any scenario of the run loads rules (only
    /// then are the tables asked for).
    pub fn take(keys: &[String], rules: bool) -> Snapshot {
        Snapshot {
            sysctl: keys
                .iter()
                .map(|k| {
                    let path = Path::new("/proc/sys").join(k.replace('.', "/"));
                    let value = std::fs::read_to_string(path).unwrap_or_default();
                    (
                        k.clone(),
                        value.split_whitespace().collect::<Vec<_>>().join(" "),
                    )
                })
                .collect(),
            mtu: network::loopback_mtu().ok(),
            tables: if rules {
                nf_tables::tables().unwrap_or_default()
            } else {
                Vec::new()
            },
        }
    }

    /// What differs in `now` from this snapshot, in words; empty when
    /// nothing does.
    pub fn leaks(&self, now: &Snapshot) -> Vec<String> {
        let mut out = Vec::new();
        for ((key, was), (_, is)) in self.sysctl.iter().zip(&now.sysctl) {
            if was != is {
                out.push(format!("{key} = {is} (was {was})"));
            }
        }
        if self.mtu != now.mtu {
            out.push(format!(
                "lo mtu {} (was {})",
                now.mtu.map_or("?".into(), |m| m.to_string()),
                self.mtu.map_or("?".into(), |m| m.to_string())
            ));
        }
        for (family, name) in &now.tables {
            if !self.tables.iter().any(|(f, n)| f == family && n == name) {
                out.push(format!("the nftables table {family} {name}"));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suite::conditions::Times;

    fn rule(segment: SegmentKind, nth: u32, times: Times) -> Rule {
        Rule {
            action: Action::Drop,
            toward: Toward::ToServer,
            segment,
            nth,
            times,
            delay_ms: None,
        }
    }

    #[test]
    fn a_budget_is_a_set_of_that_size_and_the_counter_follows_it() {
        let text = ruleset_for(
            &[rule(SegmentKind::Syn, 1, Times::Count(1))],
            1712,
            Side::Loopback,
        );
        assert!(text.contains("set rule1_budget { typeof numgen inc mod 2147483647; size 1;"));
        assert!(text.contains(
            "meta mark & 0xffff0000 != 0x17130000 tcp dport 1712 tcp flags & (syn | ack) == syn add @rule1_budget { numgen inc mod 2147483647 } counter drop"
        ));
        assert!(!text.contains("_pass"));
    }

    #[test]
    fn nth_lets_the_ones_before_through_and_all_has_no_budget() {
        let text = ruleset_for(
            &[rule(SegmentKind::Data, 3, Times::All)],
            80,
            Side::Loopback,
        );
        assert!(text.contains("set rule1_pass { typeof numgen inc mod 2147483647; size 2;"));
        assert!(text.contains("meta length > 100 add @rule1_pass"));
        assert!(text.contains("meta length > 100 counter drop"));
        assert!(!text.contains("_budget"));
    }

    #[test]
    fn a_queued_rule_goes_to_its_own_queue_with_a_budget_per_segment_acted_on() {
        let mut swap = rule(SegmentKind::Data, 2, Times::Count(1));
        swap.action = Action::Reorder;
        let text = ruleset_for(
            &[rule(SegmentKind::Syn, 1, Times::Count(1)), swap.clone()],
            1712,
            Side::Loopback,
        );
        assert!(text.contains("set rule2_budget { typeof numgen inc mod 2147483647; size 2;"));
        assert!(
            text.contains("counter meta mark set 0x17120001 comment \"rule2\""),
            "{text}"
        );
        let commands = queue_commands(
            &[rule(SegmentKind::Syn, 1, Times::Count(1)), swap],
            Side::Loopback,
        );
        assert_eq!(commands.len(), 2, "rule 2 only, IPv4 and IPv6");
        assert_eq!(
            commands[0].join(" "),
            "iptables -w -t mangle -A PREROUTING -m mark --mark 0x17120001 -j NFQUEUE --queue-num 101"
        );
    }

    #[test]
    fn counters_are_read_by_the_rules_comment_in_the_harness_tables_only() {
        let json = r#"{"nftables": [{"metainfo": {}}, {"rule": {"table": "harness_conditions", "comment": "rule1", "expr": [{"match": {}}, {"counter": {"packets": 2, "bytes": 120}}, {"drop": null}]}}, {"rule": {"table": "someone_else", "comment": "rule1", "expr": [{"counter": {"packets": 9, "bytes": 1}}]}}]}"#;
        assert_eq!(counters(json).unwrap(), vec![("rule1".to_string(), 2)]);
        assert!(counters("not json").is_err());
    }

    /// A loss acts where the segment arrives; a copy and a RST where it
    /// leaves, so that they cross the captured link; a RST is let through
    /// where it lands.
    #[test]
    fn each_rule_acts_where_a_network_would_and_a_reset_lands_at_the_receiver() {
        let mut drop = rule(SegmentKind::Syn, 1, Times::Count(1));
        drop.toward = Toward::ToClient;
        let mut copy = rule(SegmentKind::Data, 1, Times::Count(1));
        copy.action = Action::Duplicate;
        let mut reset = rule(SegmentKind::Data, 2, Times::Count(1));
        reset.action = Action::Reset;
        let rules = [drop.clone(), copy.clone(), reset.clone()];
        assert_eq!(Side::Client.hook(&drop), Some(Hook::Prerouting));
        assert_eq!(Side::Server.hook(&drop), None);
        assert_eq!(Side::Client.hook(&copy), Some(Hook::Egress));
        assert_eq!(Side::Server.hook(&copy), None);
        assert_eq!(Side::Client.hook(&reset), Some(Hook::Output));
        assert!(Side::Server.lands(&reset) && !Side::Client.lands(&reset));
        for hook in [Hook::Prerouting, Hook::Egress, Hook::Output] {
            assert!(rules.iter().any(|r| Side::Loopback.hook(r) == Some(hook)));
        }

        let client = ruleset_for(&rules, 1712, Side::Client);
        assert!(
            client.contains("table netdev harness_conditions {"),
            "{client}"
        );
        assert!(
            client.contains("type filter hook egress device \"veth-c\" priority 0;"),
            "{client}"
        );
        assert!(
            client.contains("tcp dport 1712 meta length > 114 add @rule2_budget { numgen inc mod 2147483647 } counter meta mark set 0x17130000 dup to \"veth-c\" meta mark set 0 comment \"rule2\""),
            "{client}"
        );
        assert!(client.contains("type filter hook output priority -200;"));
        assert!(
            !client.contains("rst == rst"),
            "the RST lands at the server"
        );
        let server = ruleset_for(&rules, 1712, Side::Server);
        assert!(
            server.contains("tcp dport 1712 tcp flags & rst == rst meta mark set 0x17130001"),
            "{server}"
        );
        assert!(!server.contains("rule2") && !server.contains("rule3"));
        assert_eq!(
            Side::Client.queues(&rules),
            Queues {
                rules: vec![2],
                rst: false
            }
        );
        assert_eq!(
            Side::Server.queues(&rules),
            Queues {
                rules: vec![],
                rst: true
            }
        );
        assert_eq!(
            queue_commands(&rules, Side::Client)[0].join(" "),
            "iptables -w -t mangle -A OUTPUT -m mark --mark 0x17120002 -j NFQUEUE --queue-num 102"
        );
        assert_eq!(
            queue_commands(&rules, Side::Server)[0].join(" "),
            "iptables -w -t mangle -A PREROUTING -m mark --mark 0x17130001 -j NFQUEUE --queue-num 99"
        );
    }
}
