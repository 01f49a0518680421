//! A scenario's network conditions applied in the calling thread's network
//! namespace, what each rule did read back afterwards, and the guard that
//! no condition outlives its cell.
//!
//! Segment rules are nftables rules in the `prerouting` hook, which on
//! loopback runs after the capture has seen the packet: a dropped segment
//! is in the capture (as a learner sees a lost segment in Wireshark) and
//! never reaches its receiver. Dropping in `output` instead would return
//! EPERM to the sender, which is not loss.
//!
//! Why every rule is exact: nftables has no "the first N packets" match
//! (`numgen` counts modulo, `quota` counts bytes, `limit` counts time).
//! A rule here adds each selected packet, keyed by a running number, to a
//! set of fixed size: the add succeeds for the first N packets and fails
//! after, and a failed add ends the rule. So `size N` is a budget of N
//! packets, exact and the same on every run. `nth` is a second budget of
//! packets let through first. The rule's counter sits after the budget,
//! so it counts the segments dropped and no other.

use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;
use std::time::Duration;

use crate::exec::impair::{
    self, Impairer, INJECTED_MARK, INJECTED_MASK, INJECTED_RST_MARK, QUEUE_BASE, RST_QUEUE,
};
use crate::exec::network;
use crate::exec::process::Child;
use crate::suite::conditions::{Action, Conditions, Rule, SegmentKind, Toward, DATA_MIN_PACKET};

/// The nftables table a cell's rules live in.
pub const TABLE: &str = "harness_conditions";

/// The file the rules are written to in the cell's folder (`nft -f` reads
/// it, and a user can load it by hand).
pub const RULES_FILE: &str = "conditions.nft";

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

/// Which of a scenario's rules act in a namespace: on the loopback every
/// rule acts in the cell's one namespace; on a veth pair a segment is
/// lost where it arrives, so rules toward the server act in the server's
/// namespace and rules toward the client in the client's.
pub type Here = fn(&Rule) -> bool;

/// Every rule: the loopback's one namespace.
pub const EVERY_RULE: Here = |_| true;
/// The rules toward the server: the server's end of a veth pair.
pub const TO_SERVER: Here = |r| r.toward == Toward::ToServer;
/// The rules toward the client: the client's end of a veth pair.
pub const TO_CLIENT: Here = |r| r.toward == Toward::ToClient;

/// The rules as an nftables script for `port`, the server's.
pub fn ruleset(rules: &[Rule], port: u16) -> String {
    ruleset_where(rules, port, EVERY_RULE)
}

/// The rules that act `here` as an nftables script for `port`; each keeps
/// its name and mark by its place among all the scenario's rules.
pub fn ruleset_where(rules: &[Rule], port: u16, here: Here) -> String {
    let mut sets = String::new();
    let mut chains = String::new();
    let mut jumps = String::new();
    for (i, rule) in rules.iter().enumerate().filter(|(_, r)| here(r)) {
        let name = format!("rule{}", i + 1);
        let way = match rule.toward {
            Toward::ToServer => format!("tcp dport {port}"),
            Toward::ToClient => format!("tcp sport {port}"),
        };
        let kind = match rule.segment {
            SegmentKind::Syn => " tcp flags & (syn | ack) == syn",
            SegmentKind::SynAck => " tcp flags & (syn | ack) == syn | ack",
            SegmentKind::Fin => " tcp flags & fin == fin",
            SegmentKind::Data => &format!(" meta length > {DATA_MIN_PACKET}"),
            SegmentKind::Any => "",
        };
        // What the harness's own loop sends is never selected again.
        let selected = format!("meta mark & {INJECTED_MASK:#x} != {INJECTED_MARK:#x} {way}{kind}");
        // A running number per rule: unique keys, so each add is a new
        // element until the set is full.
        let key = "numgen inc mod 2147483647";
        let mut body = String::new();
        if rule.nth > 1 {
            sets.push_str(&format!(
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
                sets.push_str(&format!(
                    "  set {name}_budget {{ typeof numgen inc mod 2147483647; size {n}; flags dynamic; }}\n"
                ));
                format!(" add @{name}_budget {{ {key} }}")
            }
        };
        // A queued rule marks its segments, and iptables' NFQUEUE target
        // queues them (see `queue_commands`).
        let verdict = match rule.action {
            Action::Drop => "drop".to_string(),
            _ => format!("meta mark set {:#x}", queue_mark(i)),
        };
        body.push_str(&format!(
            "    {selected}{budget} counter {verdict} comment \"{name}\"\n"
        ));
        chains.push_str(&format!("  chain {name} {{\n{body}  }}\n"));
        jumps.push_str(&format!("    jump {name}\n"));
    }
    format!(
        "# Written by the harness for one cell; `nft -f` loads it (on a veth pair,\n\
         # in the namespace its rules act in).\n\
         table inet {TABLE} {{\n{sets}{chains}  chain prerouting {{\n    type filter hook prerouting priority -200; policy accept;\n{jumps}  }}\n}}\n"
    )
}

/// The mark rule `i` puts on the segments it selects for the loop.
pub fn queue_mark(i: usize) -> u32 {
    QUEUE_MARK_BASE + i as u32
}

const QUEUE_MARK_BASE: u32 = 0x1712_0000;

/// The commands that queue each marked segment to its rule's NFQUEUE
/// queue. This kernel's nftables has no `queue` expression (nft_queue is
/// not built), but it has iptables' NFQUEUE target, which iptables-nft
/// adds to the `mangle` table's prerouting chain (priority -150, after
/// the rules' own chain at -200). No bypass: a segment whose loop is not
/// there is lost, and its rule then reads as not applied.
pub fn queue_commands(rules: &[Rule], here: Here) -> Vec<Vec<String>> {
    let mut queues: Vec<(u32, u16)> = rules
        .iter()
        .enumerate()
        .filter(|(_, rule)| here(rule) && impair::queued(rule))
        .map(|(i, _)| (queue_mark(i), QUEUE_BASE + i as u16))
        .collect();
    // A reset's own RST comes back to the loop.
    if rules.iter().any(|r| here(r) && r.action == Action::Reset) {
        queues.push((INJECTED_RST_MARK, RST_QUEUE));
    }
    let mut out = Vec::new();
    for (mark, queue) in queues {
        for tool in ["iptables", "ip6tables"] {
            out.push(
                [
                    tool,
                    "-w",
                    "-t",
                    "mangle",
                    "-A",
                    "PREROUTING",
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

/// The actions that send segments of their own (a copy, a RST). On a veth
/// pair such a segment, sent in the receiver's namespace, would reach it
/// through that namespace's own loopback and never cross the captured
/// link, so it would be missing from the capture: they run on the
/// loopback topology only.
pub fn injects(rule: &Rule) -> bool {
    matches!(rule.action, Action::Duplicate | Action::Reset)
}

/// Applies `conditions` in the calling thread's namespace, which must be
/// one made for this cell: nothing here is undone, the namespace goes.
/// With `client_netns` (a veth pair) the calling thread is in the
/// server's namespace: sysctls are set on both sides, the MTU on both
/// ends, and each rule where its segments arrive. The rules are written
/// into `dir`.
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
    let Some(client_netns) = client_netns else {
        sysctl("cell")?;
        if let Some(mtu) = conditions.mtu {
            network::set_loopback_mtu(mtu)
                .map_err(|e| format!("cannot set the loopback's MTU to {mtu}: {e}"))?;
        }
        let impairer = load(conditions, port, &dir.join(RULES_FILE), EVERY_RULE, None)?;
        return Ok(Active {
            impairer,
            client: None,
        });
    };
    if let Some(rule) = conditions.rules.iter().find(|r| injects(r)) {
        return Err(format!(
            "\"{}\" sends segments of its own, which on a veth pair would miss the capture; run this scenario without --topology veth",
            rule.describe()
        ));
    }
    sysctl("server")?;
    network::in_namespace(client_netns, || sysctl("client"))?;
    if let Some(mtu) = conditions.mtu {
        network::set_veth_mtu(mtu, client_netns)?;
    }
    let impairer = load(conditions, port, &dir.join(RULES_FILE), TO_SERVER, None)?;
    let client_file = dir.join(CLIENT_RULES_FILE);
    let client_impairer = network::in_namespace(client_netns, || {
        load(
            conditions,
            port,
            &client_file,
            TO_CLIENT,
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

/// The file the rules toward the client are written to on a veth pair
/// (loaded in the client's namespace).
pub const CLIENT_RULES_FILE: &str = "conditions-client.nft";

/// Starts the loop for the queued rules that act `here` (in the calling
/// thread's namespace, `netns` for the processes it starts), then loads
/// those rules from `file`.
fn load(
    conditions: &Conditions,
    port: u16,
    file: &Path,
    here: Here,
    netns: Option<BorrowedFd<'_>>,
) -> Result<Option<Impairer>, String> {
    // Bound before the rules exist, so no queued segment finds it absent.
    let impairer = Impairer::start(&conditions.rules, here)?;
    if conditions.rules.iter().any(here) {
        std::fs::write(file, ruleset_where(&conditions.rules, port, here))
            .map_err(|e| format!("cannot write {}: {e}", file.display()))?;
        nft(
            &["nft".to_string(), "-f".into(), file.display().to_string()],
            netns,
        )?;
        for command in queue_commands(&conditions.rules, here) {
            nft(&command, netns)?;
        }
    }
    Ok(impairer)
}

impl Active {
    /// What each rule did, once the cell is over: a dropping rule by its
    /// nftables counter, a queued one by what the loop did (a segment it
    /// was given but could not act on, such as half of a swap, is not
    /// counted). On a veth pair each side's rules are read where they act.
    pub fn finish(self, rules: &[Rule]) -> Result<Vec<Applied>, String> {
        let stop = |impairer: Option<Impairer>| match impairer {
            Some(impairer) => impairer.finish(),
            None => Ok(Vec::new()),
        };
        let mut acted = stop(self.impairer)?;
        if rules.is_empty() {
            return Ok(Vec::new());
        }
        let list = ["nft", "-j", "list", "table", "inet", TABLE].map(String::from);
        // On a veth pair a side without rules has no table.
        let mut counts = match &self.client {
            Some(_) if !rules.iter().any(TO_SERVER) => Vec::new(),
            _ => counters(&nft(&list, None)?)?,
        };
        if let Some(client) = self.client {
            let theirs = stop(client.impairer)?;
            acted.resize(acted.len().max(theirs.len()), 0);
            for (i, n) in theirs.into_iter().enumerate() {
                acted[i] += n;
            }
            if rules.iter().any(TO_CLIENT) {
                counts.extend(counters(&nft(&list, Some(client.netns.as_fd()))?)?);
            }
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
                        .find(|(name, _)| *name == format!("rule{}", i + 1))
                        .map_or(0, |(_, n)| *n)
                },
            })
            .collect())
    }
}

/// Each commented rule's counter in `nft -j list table` output.
fn counters(json: &str) -> Result<Vec<(String, u64)>, String> {
    let value: serde_json::Value =
        serde_json::from_str(json).map_err(|e| format!("nft's JSON could not be read: {e}"))?;
    let items = value["nftables"].as_array().cloned().unwrap_or_default();
    Ok(items
        .iter()
        .filter_map(|item| {
            let rule = item.get("rule")?;
            let name = rule["comment"].as_str()?.to_string();
            let packets = rule["expr"]
                .as_array()?
                .iter()
                .find_map(|e| e.get("counter")?.get("packets")?.as_u64())?;
            Some((name, packets))
        })
        .collect())
}

/// Runs `nft` (or iptables) with a bounded wait; its stdout, or why it
/// failed.
/// Runs an nftables or iptables command in the calling thread's
/// namespace, or in `netns`.
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
    table: bool,
}

impl Snapshot {
    /// The calling thread's namespace now. `keys` are the sysctls to look
    /// at; `rules` says whether any scenario of the run loads rules (only
    /// then is `nft` asked, which costs a process).
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
            table: rules
                && nft(
                    &["nft", "list", "table", "inet", TABLE].map(String::from),
                    None,
                )
                .is_ok(),
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
        if now.table && !self.table {
            out.push(format!("the nftables table inet {TABLE}"));
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
        let text = ruleset(&[rule(SegmentKind::Syn, 1, Times::Count(1))], 1712);
        assert!(text.contains("set rule1_budget { typeof numgen inc mod 2147483647; size 1;"));
        assert!(text.contains(
            "meta mark & 0xffff0000 != 0x17130000 tcp dport 1712 tcp flags & (syn | ack) == syn add @rule1_budget { numgen inc mod 2147483647 } counter drop"
        ));
        assert!(!text.contains("_pass"));
    }

    #[test]
    fn nth_lets_the_ones_before_through_and_all_has_no_budget() {
        let text = ruleset(&[rule(SegmentKind::Data, 3, Times::All)], 80);
        assert!(text.contains("set rule1_pass { typeof numgen inc mod 2147483647; size 2;"));
        assert!(text.contains("meta length > 100 add @rule1_pass"));
        assert!(text.contains("meta length > 100 counter drop"));
        assert!(!text.contains("_budget"));
    }

    #[test]
    fn a_queued_rule_goes_to_its_own_queue_with_a_budget_per_segment_acted_on() {
        let mut swap = rule(SegmentKind::Data, 2, Times::Count(1));
        swap.action = Action::Reorder;
        let text = ruleset(
            &[rule(SegmentKind::Syn, 1, Times::Count(1)), swap.clone()],
            1712,
        );
        assert!(text.contains("set rule2_budget { typeof numgen inc mod 2147483647; size 2;"));
        assert!(
            text.contains("counter meta mark set 0x17120001 comment \"rule2\""),
            "{text}"
        );
        let commands = queue_commands(
            &[rule(SegmentKind::Syn, 1, Times::Count(1)), swap],
            EVERY_RULE,
        );
        assert_eq!(commands.len(), 2, "rule 2 only, IPv4 and IPv6");
        assert_eq!(
            commands[0].join(" "),
            "iptables -w -t mangle -A PREROUTING -m mark --mark 0x17120001 -j NFQUEUE --queue-num 101"
        );
    }

    #[test]
    fn counters_are_read_by_the_rules_comment() {
        let json = r#"{"nftables": [{"metainfo": {}}, {"rule": {"comment": "rule1", "expr": [{"match": {}}, {"counter": {"packets": 2, "bytes": 120}}, {"drop": null}]}}]}"#;
        assert_eq!(counters(json).unwrap(), vec![("rule1".to_string(), 2)]);
        assert!(counters("not json").is_err());
    }
}
