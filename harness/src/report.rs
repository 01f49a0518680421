//! Verdicts and the two reports: a terminal one for people and a JSON
//! summary for machines.

use std::fmt::Write as _;
use std::path::Path;

use crate::runner::PairingResult;
use crate::signature::{self, Difference, HANDSHAKE_LABELS, POLICIES};

/// A cell's grade.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Verdict {
    /// Every check passed and the wire matches the reference.
    Pass,
    /// It works, but the wire differs from the reference in the named fields.
    Differs,
    /// A check failed, or the run could not complete.
    Fail,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Differs => "DIFFERS",
            Verdict::Fail => "FAIL",
        }
    }
}

/// One graded pairing.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Cell {
    pub verdict: Verdict,
    #[serde(flatten)]
    pub result: PairingResult,
    pub display_filter: String,
    /// Against the reference pairing of the same scenario.
    pub differences: Vec<Difference>,
}

/// Grades results against the reference pairing's signature.
pub fn grade(results: Vec<PairingResult>, reference: &str) -> Vec<Cell> {
    let reference_sig = |scenario: &str| {
        results
            .iter()
            .find(|r| r.scenario == scenario && r.server == reference && r.client == reference)
            .filter(|r| r.passed_checks())
            .and_then(|r| r.signature.clone())
    };
    let sigs: Vec<_> = results.iter().map(|r| reference_sig(&r.scenario)).collect();
    results
        .into_iter()
        .zip(sigs)
        .map(|(result, reference_sig)| {
            let mut differences = match (&reference_sig, &result.signature) {
                (Some(reference), Some(actual)) => signature::compare(reference, actual),
                _ => Vec::new(),
            };
            let verdict = if !result.passed_checks() {
                Verdict::Fail
            } else if reference_sig.is_none() {
                differences.push(Difference {
                    segment: "conversation".into(),
                    field: "reference".into(),
                    reference: "(reference pairing failed)".into(),
                    actual: "-".into(),
                    frame: None,
                });
                Verdict::Differs
            } else if differences.is_empty() {
                Verdict::Pass
            } else {
                Verdict::Differs
            };
            Cell {
                verdict,
                display_filter: format!("tcp.port == {}", result.port),
                result,
                differences,
            }
        })
        .collect()
}

/// 0 when everything conforms, 1 otherwise.
pub fn exit_code(cells: &[Cell]) -> i32 {
    if cells.iter().all(|c| c.verdict == Verdict::Pass) {
        0
    } else {
        1
    }
}

fn table(rows: &[Vec<String>]) -> String {
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
pub fn render_scenario(scenario: &str, cells: &[&Cell], reference: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "== scenario {scenario}: servers (rows) × clients (columns); reference: {reference} × {reference}\n");
    let mut servers: Vec<&str> = Vec::new();
    let mut clients: Vec<&str> = Vec::new();
    for c in cells {
        if !servers.contains(&c.result.server.as_str()) {
            servers.push(&c.result.server);
        }
        if !clients.contains(&c.result.client.as_str()) {
            clients.push(&c.result.client);
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
                .find(|c| c.result.server == *server && c.result.client == *client);
            row.push(cell.map_or("-".to_string(), |c| c.verdict.as_str().to_string()));
        }
        rows.push(row);
    }
    out.push_str(&table(&rows));

    // Failed checks.
    for cell in cells.iter().filter(|c| c.verdict == Verdict::Fail) {
        let _ = writeln!(out, "\nFAIL {}:", cell.result.label());
        if let Some(error) = &cell.result.error {
            let _ = writeln!(out, "  run: {error}");
        }
        for check in cell.result.checks.iter().filter(|c| !c.passed) {
            let _ = writeln!(out, "  {}: {}", check.name, check.detail);
        }
    }

    // Handshake tables side by side.
    let with_sig: Vec<&&Cell> = cells
        .iter()
        .filter(|c| c.result.signature.is_some())
        .collect();
    if !with_sig.is_empty() {
        let _ = writeln!(
            out,
            "\nHandshake (Seq/Ack relative to each side's ISN, as Wireshark shows them):\n"
        );
        let mut rows = vec![["segment", "field"]
            .iter()
            .map(|s| s.to_string())
            .chain(
                with_sig
                    .iter()
                    .map(|c| format!("{}×{}", c.result.server, c.result.client)),
            )
            .collect::<Vec<_>>()];
        let fields = [
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
        for label in HANDSHAKE_LABELS {
            for (i, field) in fields.iter().enumerate() {
                let mut row = vec![
                    if i == 0 {
                        label.to_string()
                    } else {
                        String::new()
                    },
                    field.to_string(),
                ];
                for cell in &with_sig {
                    let sig = cell.result.signature.as_ref().expect("filtered");
                    let value = sig
                        .field(label, field)
                        .cloned()
                        .flatten()
                        .unwrap_or_else(|| "-".into());
                    let differs = cell
                        .differences
                        .iter()
                        .any(|d| d.segment == label && d.field == *field);
                    row.push(if differs { format!("{value} *") } else { value });
                }
                rows.push(row);
            }
        }
        out.push_str(&table(&rows));
        let _ = writeln!(out, "(* differs from the reference)");
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
                    cell.result.label(),
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
    out
}

/// Where the captures are, and how to look at each in Wireshark.
pub fn render_artifacts(cells: &[Cell], artifacts: &Path) -> String {
    let mut out = format!("\nArtifacts: {}\n", artifacts.display());
    for cell in cells {
        if let Some(file) = &cell.result.capture_file {
            let _ = writeln!(
                out,
                "  {:<28} {}  (Wireshark filter: {})",
                cell.result.label(),
                artifacts.join(file).display(),
                cell.display_filter
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

/// The JSON summary written next to the artifacts.
#[derive(serde::Serialize)]
pub struct Summary<'a> {
    pub schema: u32,
    pub reference: &'a str,
    pub artifacts: String,
    pub exit_code: i32,
    pub counts: Counts,
    pub cells: &'a [Cell],
}

#[derive(serde::Serialize, Default)]
pub struct Counts {
    pub pass: usize,
    pub differs: usize,
    pub fail: usize,
}

pub fn summary<'a>(cells: &'a [Cell], reference: &'a str, artifacts: &Path) -> Summary<'a> {
    let mut counts = Counts::default();
    for c in cells {
        match c.verdict {
            Verdict::Pass => counts.pass += 1,
            Verdict::Differs => counts.differs += 1,
            Verdict::Fail => counts.fail += 1,
        }
    }
    Summary {
        schema: 1,
        reference,
        artifacts: artifacts.display().to_string(),
        exit_code: exit_code(cells),
        counts,
        cells,
    }
}
