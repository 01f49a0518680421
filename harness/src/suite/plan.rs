//! Which cells a run has: every selected scenario × server × client, each
//! either to be run or graded without running (unsupported, unavailable).
//!
//! Planning is separate from running so that `--list` and the report show
//! exactly the same support the run used.

use crate::suite::manifest::{Implementation, Locations, Manifest};
use crate::suite::pairing::PairingId;
use crate::suite::scenario::Scenario;

/// Why a cell is not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Skip {
    /// An implementation does not declare what the scenario needs.
    Unsupported,
    /// A program an implementation needs is not installed.
    Unavailable,
}

/// One cell of the matrix, before it runs.
#[derive(Debug, Clone)]
pub struct PlannedCell {
    /// Index into the scenarios.
    pub scenario: usize,
    /// Which cell; its server is `None` where the scenario has none (refused).
    pub id: PairingId,
    /// Set when the cell is graded without running, with the reason.
    pub skip: Option<(Skip, String)>,
}

/// Globs choosing part of the matrix; empty means everything.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub servers: Vec<String>,
    pub clients: Vec<String>,
    pub scenarios: Vec<String>,
}

fn matches(patterns: &[glob::Pattern], name: &str) -> bool {
    patterns.is_empty() || patterns.iter().any(|p| p.matches(name))
}

fn compile(flag: &str, globs: &[String]) -> Result<Vec<glob::Pattern>, String> {
    globs
        .iter()
        .map(|g| {
            glob::Pattern::new(g).map_err(|e| format!("--{flag} '{g}' is not a valid glob: {e}"))
        })
        .collect()
}

/// The implementation whose server × client pairing is the reference in
/// `scenario`: the scenario's own choice, or the manifest's.
pub fn reference_of<'a>(manifest: &'a Manifest, scenario: &'a Scenario) -> &'a str {
    scenario.reference.as_deref().unwrap_or(&manifest.reference)
}

/// Why `implementation` cannot be used in `scenario` as its server
/// (`server` true) or client, if it cannot.
pub fn skip_reason(
    implementation: &Implementation,
    server: bool,
    scenario: &Scenario,
    at: &Locations<'_>,
) -> Option<(Skip, String)> {
    if let Some(reason) = implementation.missing_command(server, at) {
        return Some((Skip::Unavailable, reason));
    }
    let missing = implementation.missing_programs();
    if !missing.is_empty() {
        return Some((
            Skip::Unavailable,
            format!(
                "{} needs {}, which is not installed (run make deps)",
                implementation.name,
                missing.join(", ")
            ),
        ));
    }
    if scenario.record_calls {
        let missing: Vec<&str> = crate::calls::strace::PROGRAMS
            .into_iter()
            .filter(|p| !crate::suite::manifest::on_path(p))
            .collect();
        if !missing.is_empty() {
            return Some((
                Skip::Unavailable,
                format!(
                    "scenario {} records socket calls with strace, but {} {} not installed (run make deps)",
                    scenario.name,
                    missing.join(" and "),
                    if missing.len() == 1 { "is" } else { "are" }
                ),
            ));
        }
    }
    let rules = &scenario.conditions.rules;
    let queued = rules
        .iter()
        .any(|r| r.action != crate::suite::conditions::Action::Drop);
    let needed = [
        ("nft", !rules.is_empty()),
        ("iptables", queued),
        ("ip6tables", queued),
    ];
    if let Some((tool, _)) = needed
        .iter()
        .find(|(tool, needed)| *needed && crate::program::system_tool(tool).is_none())
    {
        return Some((
            Skip::Unavailable,
            format!(
                "scenario {} acts on segments with netfilter rules, but {tool} is not installed (run make deps)",
                scenario.name
            ),
        ));
    }
    implementation
        .unsupported_reason(
            &scenario.name,
            &scenario.requires,
            !scenario.conditions.is_empty(),
        )
        .map(|r| (Skip::Unsupported, r))
}

/// Every cell of the selection. A scenario's reference pairing is always
/// included, even when the globs leave it out, because every other cell of
/// the scenario is compared with it.
pub fn plan(
    manifest: &Manifest,
    scenarios: &[Scenario],
    selection: &Selection,
    at: &Locations<'_>,
) -> Result<Vec<PlannedCell>, String> {
    let server_globs = compile("server", &selection.servers)?;
    let client_globs = compile("client", &selection.clients)?;
    let scenario_globs = compile("scenario", &selection.scenarios)?;
    for scenario in scenarios {
        let reference = reference_of(manifest, scenario);
        let Some(implementation) = manifest.get(reference) else {
            return Err(format!(
                "scenario '{}': its reference '{reference}' is not in {}; name an implementation there",
                scenario.name,
                manifest.path.display()
            ));
        };
        if implementation.server.is_none() || implementation.client.is_none() {
            return Err(format!(
                "scenario '{}': its reference '{reference}' needs both a server and a client",
                scenario.name
            ));
        }
    }
    let chosen: Vec<(usize, &Scenario)> = scenarios
        .iter()
        .enumerate()
        .filter(|(_, s)| matches(&scenario_globs, &s.name))
        .collect();
    if chosen.is_empty() {
        return Err(format!(
            "no scenario matches --scenario {}; scenarios: {}",
            selection.scenarios.join(" "),
            scenarios
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let names = || {
        manifest
            .implementations
            .iter()
            .map(|i| i.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !manifest.servers().any(|i| matches(&server_globs, &i.name)) {
        return Err(format!(
            "no server matches --server {}; implementations: {}",
            selection.servers.join(" "),
            names()
        ));
    }
    if !manifest.clients().any(|i| matches(&client_globs, &i.name)) {
        return Err(format!(
            "no client matches --client {}; implementations: {}",
            selection.clients.join(" "),
            names()
        ));
    }

    let mut cells = Vec::new();
    for (index, scenario) in chosen {
        let reference = reference_of(manifest, scenario);
        let servers: Vec<Option<&Implementation>> = if scenario.has_server() {
            manifest.servers().map(Some).collect()
        } else {
            vec![None]
        };
        for server in servers {
            for client in manifest.clients() {
                let is_reference =
                    server.is_none_or(|s| s.name == reference) && client.name == reference;
                let selected = server.is_none_or(|s| matches(&server_globs, &s.name))
                    && matches(&client_globs, &client.name);
                if !(selected || is_reference) {
                    continue;
                }
                let skip = server
                    .and_then(|s| skip_reason(s, true, scenario, at))
                    .or_else(|| skip_reason(client, false, scenario, at));
                cells.push(PlannedCell {
                    scenario: index,
                    id: PairingId::new(
                        &scenario.name,
                        server.map(|s| s.name.as_str()),
                        &client.name,
                    ),
                    skip,
                });
            }
        }
    }
    Ok(cells)
}

/// Every cell the whole suite has, whatever is selected or installed: what
/// a baseline entry must name to be current.
pub fn all_pairings(
    manifest: &Manifest,
    scenarios: &[Scenario],
) -> std::collections::BTreeSet<PairingId> {
    let mut all = std::collections::BTreeSet::new();
    for scenario in scenarios {
        let servers: Vec<Option<&str>> = if scenario.has_server() {
            manifest.servers().map(|s| Some(s.name.as_str())).collect()
        } else {
            vec![None]
        };
        for server in servers {
            for client in manifest.clients() {
                all.insert(PairingId::new(&scenario.name, server, &client.name));
            }
        }
    }
    all
}

/// One of N shares of a plan, for running a matrix on several machines:
/// `harness run --shard K/N`, then `harness merge`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct Shard {
    /// 1 to `count`.
    pub index: usize,
    pub count: usize,
}

impl Shard {
    /// Parses `K/N`: 1 ≤ K ≤ N.
    pub fn parse(text: &str) -> Result<Shard, String> {
        let bad = || format!("--shard {text}: give K/N with 1 <= K <= N, e.g. --shard 2/3");
        let (k, n) = text.split_once('/').ok_or_else(bad)?;
        let (index, count) = (
            k.trim().parse::<usize>().map_err(|_| bad())?,
            n.trim().parse::<usize>().map_err(|_| bad())?,
        );
        if index == 0 || index > count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }

    /// This shard's cells of `planned`: every Nth cell of the plan, from
    /// the Kth, so each cell belongs to exactly one shard whatever the
    /// machine; plus, for every scenario with a cell here, its reference
    /// pairing, which every other cell of it is compared with (a reference
    /// cell so runs in more than one shard; `harness merge` keeps one).
    pub fn take(self, planned: Vec<PlannedCell>, references: &[&str]) -> Vec<PlannedCell> {
        let mine = |i: usize| i % self.count == self.index - 1;
        let scenarios: std::collections::BTreeSet<usize> = planned
            .iter()
            .enumerate()
            .filter(|(i, _)| mine(*i))
            .map(|(_, c)| c.scenario)
            .collect();
        planned
            .into_iter()
            .enumerate()
            .filter(|(i, c)| {
                mine(*i)
                    || (scenarios.contains(&c.scenario)
                        && c.id.is_reference(references[c.scenario]))
            })
            .map(|(_, c)| c)
            .collect()
    }
}

#[cfg(test)]
mod shard_tests {
    use super::*;

    fn cell(scenario: usize, server: &str, client: &str) -> PlannedCell {
        PlannedCell {
            scenario,
            id: PairingId::new(&format!("s{scenario}"), Some(server), client),
            skip: None,
        }
    }

    #[test]
    fn shards_split_the_plan_and_each_runs_its_scenarios_references() {
        let plan: Vec<PlannedCell> = (0..2)
            .flat_map(|s| {
                ["py", "rs"]
                    .iter()
                    .flat_map(move |a| ["py", "rs"].map(move |b| cell(s, a, b)))
            })
            .collect();
        let references = ["py", "py"];
        let mut union = Vec::new();
        for index in 1..=3 {
            let share = Shard { index, count: 3 }.take(plan.clone(), &references);
            for scenario in 0..2 {
                if share.iter().any(|c| c.scenario == scenario) {
                    assert!(
                        share
                            .iter()
                            .any(|c| c.scenario == scenario && c.id.is_reference("py")),
                        "shard {index} lacks scenario {scenario}'s reference"
                    );
                }
            }
            union.extend(share.into_iter().map(|c| c.id));
        }
        union.sort_by_key(|id| id.folder());
        union.dedup();
        assert_eq!(union.len(), plan.len(), "every cell in some shard");
    }

    #[test]
    fn bad_shards_are_refused_in_one_line() {
        for bad in ["0/3", "4/3", "x", "1/0", "3", "/3"] {
            let e = Shard::parse(bad).unwrap_err();
            assert!(e.contains("K/N") && !e.contains('\n'), "{bad}: {e}");
        }
        assert_eq!(Shard::parse("2/3"), Ok(Shard { index: 2, count: 3 }));
    }
}
