//! Verdicts and the two reports: a terminal one for people and a JSON
//! summary for machines.

use std::fmt::Write as _;
use std::path::Path;

use crate::manifest::Manifest;
use crate::plan::{self, PlannedCell, Skip};
use crate::runner::PairingResult;
use crate::scenario::Scenario;
use crate::signature::{self, Difference, POLICIES};

/// A cell's grade, from best to worst; the last two mean "not run".
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Verdict {
    /// Every check passed and the wire matches the reference.
    Pass,
    /// It works, but the wire differs from the reference in the named fields.
    Differs,
    /// A check failed, or the run could not complete.
    Fail,
    /// An implementation does not declare what the scenario needs.
    Unsupported,
    /// A program an implementation needs is not installed.
    Unavailable,
}

impl Verdict {
    pub const ALL: [Verdict; 5] = [
        Verdict::Pass,
        Verdict::Differs,
        Verdict::Fail,
        Verdict::Unsupported,
        Verdict::Unavailable,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Differs => "DIFFERS",
            Verdict::Fail => "FAIL",
            Verdict::Unsupported => "UNSUPPORTED",
            Verdict::Unavailable => "UNAVAILABLE",
        }
    }

    pub fn parse(text: &str) -> Option<Verdict> {
        Verdict::ALL.into_iter().find(|v| v.as_str() == text)
    }
}

/// One graded cell: scenario × server × client.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Cell {
    pub scenario: String,
    pub server: String,
    pub client: String,
    pub verdict: Verdict,
    /// Why the cell was not run, or could not finish.
    pub reason: Option<String>,
    /// Against the reference pairing of the same scenario.
    pub differences: Vec<Difference>,
    pub display_filter: Option<String>,
    /// Selects this pairing in its scenario's merged pcapng.
    pub merged_filter: Option<String>,
    /// What running it produced; absent for cells that were not run.
    #[serde(flatten)]
    pub run: Option<PairingResult>,
}

impl Cell {
    pub fn label(&self) -> String {
        format!("{} server × {} client", self.server, self.client)
    }

    pub fn signature(&self) -> Option<&signature::Signature> {
        self.run.as_ref().and_then(|r| r.signature.as_ref())
    }

    /// The differing fields as `segment.field`, the form the baseline keeps.
    pub fn differing_fields(&self) -> Vec<String> {
        let mut fields: Vec<String> = self
            .differences
            .iter()
            .map(|d| format!("{}.{}", d.segment, d.field))
            .collect();
        fields.dedup();
        fields
    }
}

/// Grades every planned cell: skipped cells keep their reason; run cells
/// are checked, then compared with their scenario's reference pairing.
pub fn grade(
    manifest: &Manifest,
    scenarios: &[Scenario],
    planned: &[PlannedCell],
    results: Vec<Option<PairingResult>>,
) -> Vec<Cell> {
    let reference_sig = |scenario: &Scenario| -> Option<signature::Signature> {
        let reference = plan::reference_of(manifest, scenario);
        planned
            .iter()
            .zip(&results)
            .find(|(p, _)| {
                scenarios[p.scenario].name == scenario.name
                    && p.client == reference
                    && p.server.as_deref().is_none_or(|s| s == reference)
            })
            .and_then(|(_, r)| r.as_ref())
            .filter(|r| r.passed_checks())
            .and_then(|r| r.signature.clone())
    };
    let references: Vec<Option<signature::Signature>> =
        scenarios.iter().map(reference_sig).collect();
    planned
        .iter()
        .zip(results)
        .map(|(p, result)| {
            let scenario = &scenarios[p.scenario];
            let mut cell = Cell {
                scenario: scenario.name.clone(),
                server: p.server_name().to_string(),
                client: p.client.clone(),
                verdict: Verdict::Fail,
                reason: None,
                differences: Vec::new(),
                display_filter: None,
                merged_filter: None,
                run: None,
            };
            if let Some((skip, reason)) = &p.skip {
                cell.verdict = match skip {
                    Skip::Unsupported => Verdict::Unsupported,
                    Skip::Unavailable => Verdict::Unavailable,
                };
                cell.reason = Some(reason.clone());
                return cell;
            }
            let Some(result) = result else {
                cell.reason = Some("not run: the matrix was interrupted".into());
                return cell;
            };
            let reference = &references[p.scenario];
            if let (Some(reference), Some(actual)) = (reference, &result.signature) {
                cell.differences = signature::compare(reference, actual, &scenario.ignored);
            }
            cell.verdict = if !result.passed_checks() {
                cell.reason = result.error.clone().or_else(|| {
                    result
                        .checks
                        .iter()
                        .find(|c| !c.passed)
                        .map(|c| format!("{}: {}", c.name, c.detail))
                });
                Verdict::Fail
            } else if reference.is_none() {
                cell.reason = Some(format!(
                    "the reference pairing {0} × {0} failed, so the wire was not compared",
                    plan::reference_of(manifest, scenario)
                ));
                Verdict::Differs
            } else if cell.differences.is_empty() {
                Verdict::Pass
            } else {
                Verdict::Differs
            };
            cell.display_filter = Some(format!("tcp.port == {}", result.port));
            cell.merged_filter = Some(crate::runner::merged_filter(&cell.server, &cell.client));
            cell.run = Some(result);
            cell
        })
        .collect()
}

/// 0 when every cell that ran conforms, 1 otherwise (without a baseline).
pub fn exit_code(cells: &[Cell]) -> i32 {
    let conforms = |c: &Cell| {
        matches!(
            c.verdict,
            Verdict::Pass | Verdict::Unsupported | Verdict::Unavailable
        )
    };
    if cells.iter().all(conforms) {
        0
    } else {
        1
    }
}

/// Rows as aligned columns, the first row underlined as a header.
pub fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for (n, row) in rows.iter().enumerate() {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            let pad = widths[i] - cell.chars().count();
            line.push_str(cell);
            if i + 1 < row.len() {
                line.push_str(&" ".repeat(pad + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
        if n == 0 {
            let total: usize = widths.iter().sum::<usize>() + 2 * columns.saturating_sub(1);
            out.push_str(&"-".repeat(total));
            out.push('\n');
        }
    }
    out
}

/// The terminal report for one scenario's cells.
///
/// `shown` holds the wire tables already printed, by scenario: a table the
/// same as an earlier one is named rather than printed again.
pub fn render_scenario(
    scenario: &Scenario,
    cells: &[&Cell],
    reference: &str,
    shown: &mut Vec<(String, String)>,
) -> String {
    let mut out = String::new();
    let reference_server = if scenario.has_server() {
        reference
    } else {
        crate::runner::NO_SERVER
    };
    let _ = writeln!(
        out,
        "== scenario {}: {}\n   servers (rows) × clients (columns); reference: {reference_server} × {reference}\n",
        scenario.name, scenario.description
    );
    let mut servers: Vec<&str> = Vec::new();
    let mut clients: Vec<&str> = Vec::new();
    for c in cells {
        if !servers.contains(&c.server.as_str()) {
            servers.push(&c.server);
        }
        if !clients.contains(&c.client.as_str()) {
            clients.push(&c.client);
        }
    }
    let mut rows = vec![std::iter::once("server \\ client".to_string())
        .chain(clients.iter().map(|c| c.to_string()))
        .collect::<Vec<_>>()];
    for server in &servers {
        let mut row = vec![server.to_string()];
        for client in &clients {
            let cell = cells
                .iter()
                .find(|c| c.server == *server && c.client == *client);
            row.push(cell.map_or("-".to_string(), |c| c.verdict.as_str().to_string()));
        }
        rows.push(row);
    }
    out.push_str(&table(&rows));

    // Why cells failed or were not run.
    for cell in cells.iter().filter(|c| c.verdict == Verdict::Fail) {
        let _ = writeln!(out, "\nFAIL {}:", cell.label());
        let run = cell.run.as_ref();
        match run.and_then(|r| r.error.as_ref()).or(cell.reason.as_ref()) {
            Some(error) if run.is_none_or(|r| r.error.is_some()) => {
                let _ = writeln!(out, "  run: {error}");
            }
            _ => {}
        }
        for check in run.iter().flat_map(|r| &r.checks).filter(|c| !c.passed) {
            let _ = writeln!(out, "  {}: {}", check.name, check.detail);
        }
    }
    let not_run: Vec<&&Cell> = cells
        .iter()
        .filter(|c| matches!(c.verdict, Verdict::Unsupported | Verdict::Unavailable))
        .collect();
    if !not_run.is_empty() {
        let mut reasons: Vec<String> = not_run
            .iter()
            .map(|c| {
                format!(
                    "{}: {}",
                    c.verdict.as_str(),
                    c.reason.as_deref().unwrap_or("")
                )
            })
            .collect();
        reasons.sort();
        reasons.dedup();
        let _ = writeln!(out, "\nNot run ({} cells):", not_run.len());
        for reason in reasons {
            let _ = writeln!(out, "  {reason}");
        }
    }

    // The reference conversation as the tutorials draw it.
    let reference_cell = cells.iter().find(|c| {
        c.client == reference && (c.server == reference || c.server == crate::runner::NO_SERVER)
    });
    if let Some(conn) = reference_cell.and_then(|c| c.run.as_ref()).and_then(|r| {
        r.connections
            .iter()
            .find(|c| c.established() || c.refused())
    }) {
        const ROWS: usize = 12;
        let ladder = crate::ladder::render(conn);
        let lines: Vec<&str> = ladder.lines().collect();
        let _ = writeln!(
            out,
            "\nThe reference conversation, {reference_server} × {reference}:\n"
        );
        for line in lines.iter().take(ROWS + 1) {
            let _ = writeln!(out, "{line}");
        }
        if lines.len() > ROWS + 1 {
            let _ = writeln!(
                out,
                "  … {} more segments (harness inspect, or the HTML report, shows them all)",
                lines.len() - ROWS - 1
            );
        }
    }
    let wire = render_wire_table(cells, reference);
    match shown.iter().find(|(_, table)| *table == wire) {
        Some((earlier, _)) if !wire.is_empty() => {
            let _ = writeln!(out, "\nOn the wire: as in scenario {earlier} above.");
        }
        _ => {
            out.push_str(&wire);
            shown.push((scenario.name.clone(), wire));
        }
    }

    // Differences.
    let differing: Vec<&&Cell> = cells.iter().filter(|c| !c.differences.is_empty()).collect();
    if !differing.is_empty() {
        let _ = writeln!(out, "\nDifferences from {reference} × {reference}:\n");
        let mut rows = vec![[
            "pairing",
            "segment",
            "field",
            "reference",
            "this pairing",
            "frame",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>()];
        for cell in differing {
            for d in &cell.differences {
                rows.push(vec![
                    cell.label(),
                    d.segment.clone(),
                    d.field.clone(),
                    d.reference.clone(),
                    d.actual.clone(),
                    d.frame.map_or("-".into(), |f| f.to_string()),
                ]);
            }
        }
        out.push_str(&table(&rows));
    }
    if !scenario.ignored.is_empty() {
        let _ = writeln!(
            out,
            "\n(not compared in this scenario: {})",
            scenario
                .ignored
                .iter()
                .map(|i| match &i.segment {
                    Some(s) => format!("{s}.{}", i.field),
                    None => i.field.clone(),
                })
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    out
}

/// The fields shown for a signature, by segment; the streams' bytes are
/// left out (they are the `delivered` check's business, and a hash per
/// scenario would keep equal tables from being recognised).
fn signature_rows(sig: &signature::Signature) -> Vec<(&'static str, &'static str)> {
    const FIELDS: [&str; 12] = [
        "flags",
        "seq",
        "ack",
        "window",
        "len",
        "options",
        "mss",
        "wscale",
        "sack_perm",
        "ts",
        "ip.ttl",
        "ip.df",
    ];
    sig.handshake
        .iter()
        .flat_map(|seg| FIELDS.iter().map(move |f| (seg.label, *f)))
        .chain(
            sig.meaning
                .iter()
                .filter(|(f, _)| !f.ends_with(" bytes"))
                .map(|(f, _)| ("conversation", *f)),
        )
        .collect()
}

/// One signature's values for `rows`, `*` marking those in `differences`.
fn signature_column(
    rows: &[(&str, &str)],
    sig: &signature::Signature,
    differences: &[Difference],
) -> Vec<String> {
    rows.iter()
        .map(|(label, field)| {
            let value = sig
                .field(label, field)
                .cloned()
                .flatten()
                .unwrap_or_else(|| "-".into());
            if differences
                .iter()
                .any(|d| d.segment == *label && d.field == *field)
            {
                format!("{value} *")
            } else {
                value
            }
        })
        .collect()
}

/// segment | field | one column per signature.
fn rows_table(headers: &[String], rows: &[(&str, &str)], columns: &[Vec<String>]) -> String {
    let mut table_rows = vec![["segment", "field"]
        .iter()
        .map(|s| s.to_string())
        .chain(headers.iter().cloned())
        .collect::<Vec<_>>()];
    for (i, (label, field)) in rows.iter().enumerate() {
        let first_of_segment = i == 0 || rows[i - 1].0 != *label;
        table_rows.push(
            [
                if first_of_segment {
                    label.to_string()
                } else {
                    String::new()
                },
                field.to_string(),
            ]
            .into_iter()
            .chain(columns.iter().map(|values| values[i].clone()))
            .collect(),
        );
    }
    table(&table_rows)
}

/// Signatures side by side, one column each, `*` marking differences; for
/// `harness inspect` and `harness diff`.
pub fn signature_table(columns: &[(String, &signature::Signature, &[Difference])]) -> String {
    let Some((_, first, _)) = columns.first() else {
        return String::new();
    };
    let rows = signature_rows(first);
    let headers: Vec<String> = columns.iter().map(|(h, _, _)| h.clone()).collect();
    let values: Vec<Vec<String>> = columns
        .iter()
        .map(|(_, sig, diffs)| signature_column(&rows, sig, diffs))
        .collect();
    rows_table(&headers, &rows, &values)
}

/// The differences as a table: segment, field, A's value, B's value, frame.
pub fn differences_table(differences: &[Difference], a: &str, b: &str) -> String {
    let mut rows = vec![vec![
        "segment".to_string(),
        "field".into(),
        a.to_string(),
        b.to_string(),
        "frame".into(),
    ]];
    for d in differences {
        rows.push(vec![
            d.segment.clone(),
            d.field.clone(),
            d.reference.clone(),
            d.actual.clone(),
            d.frame.map_or("-".into(), |f| f.to_string()),
        ]);
    }
    table(&rows)
}

/// The compared segments field by field, one column per distinct
/// conversation: pairings that look the same on the wire share a column, so
/// sixteen identical pairings make one column, not sixteen.
fn render_wire_table(cells: &[&Cell], reference: &str) -> String {
    let is_reference = |c: &Cell| {
        c.client == reference && (c.server == reference || c.server == crate::runner::NO_SERVER)
    };
    let mut with_sig: Vec<(&Cell, &signature::Signature)> = cells
        .iter()
        .filter_map(|c| c.signature().map(|s| (*c, s)))
        .collect();
    // The reference first, so it is column #1.
    with_sig.sort_by_key(|(c, _)| !is_reference(c));
    let Some((_, first)) = with_sig.first() else {
        return String::new();
    };
    let rows = signature_rows(first);
    let column_of = |cell: &Cell, sig: &signature::Signature| -> Vec<String> {
        signature_column(&rows, sig, &cell.differences)
    };
    let mut columns: Vec<(Vec<String>, Vec<String>)> = Vec::new();
    for (cell, sig) in &with_sig {
        let values = column_of(cell, sig);
        let name = format!("{}×{}", cell.server, cell.client);
        match columns.iter_mut().find(|(v, _)| *v == values) {
            Some((_, names)) => names.push(name),
            None => columns.push((values, vec![name])),
        }
    }
    let mut out = String::from(
        "\nOn the wire (Seq/Ack relative to each side's ISN, as Wireshark shows them):\n\n",
    );
    let headers: Vec<String> = (1..=columns.len()).map(|n| format!("#{n}")).collect();
    let values: Vec<Vec<String>> = columns.iter().map(|(v, _)| v.clone()).collect();
    out.push_str(&rows_table(&headers, &rows, &values));
    for (n, (_, names)) in columns.iter().enumerate() {
        let who = if columns.len() == 1 {
            format!("all {} pairings", names.len())
        } else {
            names.join(", ")
        };
        let _ = writeln!(out, "#{}: {who}", n + 1);
    }
    if columns
        .iter()
        .any(|(v, _)| v.iter().any(|x| x.ends_with(" *")))
    {
        let _ = writeln!(out, "(* differs from the reference)");
    }
    out
}

/// Where the artifacts are, and the captures worth opening first: those of
/// cells that did not pass.
pub fn render_artifacts(
    cells: &[Cell],
    artifacts: &Path,
    merged: &std::collections::BTreeMap<String, String>,
) -> String {
    let mut out = format!(
        "\nArtifacts: {}\n  one folder per cell, SCENARIO/SERVER__CLIENT/: capture.pcapng (annotated: a comment on every packet), capture.pcap (as libpcap captured it), message.bin, and each program's .stdout, .stderr and .exit\n",
        artifacts.display()
    );
    if !merged.is_empty() {
        let _ = writeln!(
            out,
            "  every pairing of a scenario in one Wireshark window: SCENARIO/all-pairings.pcapng, one interface per pairing;\n  select one with the display filter frame.interface_name == \"SERVER__CLIENT\", e.g. {}",
            crate::runner::merged_filter("python", "rust")
        );
        for (scenario, file) in merged {
            let _ = writeln!(out, "    {scenario:<8} {}", artifacts.join(file).display());
        }
    }
    for cell in cells
        .iter()
        .filter(|c| matches!(c.verdict, Verdict::Fail | Verdict::Differs))
    {
        let Some(run) = &cell.run else {
            continue;
        };
        if let Some(file) = run.pcapng_file.as_ref().or(run.capture_file.as_ref()) {
            let _ = writeln!(
                out,
                "  {} {} {}: {}",
                cell.verdict.as_str(),
                cell.scenario,
                cell.label(),
                artifacts.join(file).display(),
            );
        }
    }
    out
}

/// The policy table, as the README documents it.
pub fn render_policy() -> String {
    let mut rows = vec![vec![
        "field".to_string(),
        "policy".to_string(),
        "why".to_string(),
    ]];
    for p in POLICIES {
        let policy = match p.policy {
            signature::Policy::Exact => "exact",
            signature::Policy::RelativeToIsn => "relative to ISN",
            signature::Policy::Meaning => "by meaning",
            signature::Policy::Ignored => "ignored",
        };
        rows.push(vec![
            p.field.to_string(),
            policy.to_string(),
            p.why.to_string(),
        ]);
    }
    table(&rows)
}

/// The JSON summary written next to the artifacts (schema in the README).
#[derive(serde::Serialize)]
pub struct Summary<'a> {
    pub schema: u32,
    pub reference: &'a str,
    /// How cells were kept apart.
    pub isolation: crate::isolation::Isolation,
    /// How client and server were connected.
    pub topology: crate::isolation::Topology,
    pub artifacts: String,
    pub exit_code: i32,
    pub counts: Counts,
    /// The comparison with the baseline file, when one was used.
    pub baseline: Option<&'a crate::baseline::Comparison>,
    /// With --repeat: how many runs, and the cells whose verdict changed.
    pub repeats: Option<crate::repeat::RepeatSummary>,
    /// Per scenario, the pcapng holding every pairing (relative to
    /// `artifacts`); a cell's `merged_filter` selects it there.
    pub merged: &'a std::collections::BTreeMap<String, String>,
    pub cells: &'a [Cell],
}

#[derive(serde::Serialize, Default)]
pub struct Counts {
    pub pass: usize,
    pub differs: usize,
    pub fail: usize,
    pub unsupported: usize,
    pub unavailable: usize,
}

impl Counts {
    pub fn of(cells: &[Cell]) -> Counts {
        let mut counts = Counts::default();
        for c in cells {
            *match c.verdict {
                Verdict::Pass => &mut counts.pass,
                Verdict::Differs => &mut counts.differs,
                Verdict::Fail => &mut counts.fail,
                Verdict::Unsupported => &mut counts.unsupported,
                Verdict::Unavailable => &mut counts.unavailable,
            } += 1;
        }
        counts
    }
}

impl std::fmt::Display for Counts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} PASS, {} DIFFERS, {} FAIL, {} UNSUPPORTED, {} UNAVAILABLE",
            self.pass, self.differs, self.fail, self.unsupported, self.unavailable
        )
    }
}
