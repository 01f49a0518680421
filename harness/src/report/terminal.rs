//! Verdicts and the two reports: a terminal one for people and a JSON
//! summary for machines.

use std::fmt::Write as _;

use crate::report::ladder::Width;
use std::path::Path;

use crate::policy::{Field, CONVERSATION};
use crate::suite::scenario::Scenario;
use crate::verdict::grade::{Cell, Verdict};
use crate::verdict::signature::{self, Difference};

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
    reference_cell: Option<&Cell>,
    shown: &mut Vec<(String, String)>,
    width: Width,
) -> String {
    let mut out = String::new();
    let reference_server = if scenario.has_server() {
        reference
    } else {
        crate::suite::pairing::NO_SERVER
    };
    let _ = writeln!(
        out,
        "== scenario {}: {}\n   servers (rows) × clients (columns); reference: {reference_server} × {reference}\n",
        scenario.name, scenario.description
    );
    let (servers, clients) =
        crate::suite::pairing::servers_and_clients(cells.iter().map(|c| &c.id));
    let mut rows = vec![std::iter::once("server \\ client".to_string())
        .chain(clients.iter().map(|c| c.to_string()))
        .collect::<Vec<_>>()];
    for server in &servers {
        let mut row = vec![server.to_string()];
        for client in &clients {
            let cell = cells
                .iter()
                .find(|c| c.id.server_name() == *server && c.id.client == *client);
            row.push(cell.map_or("-".to_string(), |c| c.verdict.name().to_string()));
        }
        rows.push(row);
    }
    out.push_str(&table(&rows));

    // Why cells failed or were not run.
    for cell in cells.iter().filter(|c| c.verdict == Verdict::Fail) {
        let _ = writeln!(out, "\nFAIL {}:", cell.id.label());
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
                    c.verdict.name(),
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
    if let Some(conn) = reference_cell.and_then(|c| c.run.as_ref()).and_then(|r| {
        r.connections
            .iter()
            .find(|c| c.established() || c.refused())
    }) {
        const ROWS: usize = 12;
        let ladder = crate::report::ladder::render_fit(conn, width);
        let lines: Vec<&str> = ladder.lines().collect();
        let _ = writeln!(
            out,
            "\nThe reference's handshake as the tutorial reads it, {reference_server} × {reference}:\n"
        );
        out.push_str(&crate::report::tutorial::render(conn));
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
    // With several clients, what became of each of the others: queued and
    // reset, or dropped by the full backlog and retried.
    if scenario.conditions.clients > 1 {
        let attempts = reference_cell
            .and_then(|c| c.run.as_ref())
            .map(|r| crate::verdict::checks::attempts(&r.connections).collect::<Vec<_>>())
            .unwrap_or_default();
        for (i, conn) in attempts.iter().enumerate().skip(1) {
            let _ = writeln!(
                out,
                "\nClient {}'s connection ({}):\n",
                i + 1,
                crate::verdict::checks::fate(conn)
            );
            out.push_str(&crate::report::ladder::render_fit(conn, width));
        }
    }
    // Its socket calls beside the wire, where the scenario records them.
    if let Some(run) = reference_cell.and_then(|c| c.run.as_ref()) {
        let conn = run
            .connections
            .iter()
            .find(|c| c.established() || c.refused());
        let rows = crate::report::timeline::rows(conn, &run.calls);
        if !rows.is_empty() {
            const ROWS: usize = 24;
            let _ = writeln!(
                out,
                "\nThe reference's socket calls beside the wire, in the order they happened (strace):\n"
            );
            let text = crate::report::timeline::render(
                &rows,
                match width {
                    crate::report::ladder::Width::Columns(c) => c,
                    crate::report::ladder::Width::Unlimited => usize::MAX / 4,
                },
            );
            let lines: Vec<&str> = text.lines().collect();
            for line in lines.iter().take(ROWS + 1) {
                let _ = writeln!(out, "{line}");
            }
            if lines.len() > ROWS + 1 {
                let _ = writeln!(
                    out,
                    "  … {} more rows (the HTML report shows them all)",
                    lines.len() - ROWS - 1
                );
            }
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

    // Differences: in full where nobody declared them known; the known
    // ones by name, with their reasons once (the HTML report and
    // summary.json have them in full).
    let is_known = |cell: &Cell, d: &Difference| {
        let key = d.key();
        cell.known.iter().any(|k| k.field == key)
    };
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
    for cell in cells {
        for d in cell.differences.iter().filter(|d| !is_known(cell, d)) {
            rows.push(vec![
                cell.id.label(),
                d.segment.clone(),
                d.field.to_string(),
                d.reference.clone(),
                d.actual.clone(),
                d.frame.map_or("-".into(), |f| f.to_string()),
            ]);
        }
    }
    if rows.len() > 1 {
        let _ = writeln!(out, "\nDifferences from {reference} × {reference}:\n");
        out.push_str(&table(&rows));
    }
    let known_cells: Vec<&&Cell> = cells.iter().filter(|c| !c.known.is_empty()).collect();
    if !known_cells.is_empty() {
        let _ = writeln!(
            out,
            "\nKnown differences, declared by the implementations (known_differences in the manifest):"
        );
        for cell in &known_cells {
            let fields: Vec<&str> = cell.known.iter().map(|k| k.field.as_str()).collect();
            let _ = writeln!(out, "  {}: {}", cell.id.label(), fields.join(", "));
        }
        let mut reasons: Vec<String> = known_cells
            .iter()
            .flat_map(|c| &c.known)
            .map(|k| format!("  {} {}: {}", k.implementation, k.field, k.reason))
            .collect();
        reasons.sort();
        reasons.dedup();
        let _ = writeln!(out, "Why:");
        for line in reasons {
            let _ = writeln!(out, "{line}");
        }
    }
    // Where a pairing made several attempts, which one was compared.
    for cell in cells {
        if let Some(compared) = cell.run.as_ref().and_then(|r| r.compared.as_ref()) {
            let _ = writeln!(out, "\n{}: compared {compared}", cell.id.label());
        }
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
                    None => i.field.to_string(),
                })
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    out
}

/// The fields shown for a signature, by segment, in the order of
/// [`Field::ALL`]: every field the segment carries (the same list the HTML
/// report and the comparison use). The streams' bytes are left out (they
/// are the `delivered` check's business, and a hash per scenario would keep
/// equal tables from being recognised).
fn signature_rows(sig: &signature::Signature) -> Vec<(&'static str, Field)> {
    sig.handshake
        .iter()
        .flat_map(|seg| seg.fields.iter().map(move |(f, _)| (seg.label, *f)))
        .chain(
            sig.meaning
                .iter()
                .filter(|(f, _)| !f.is_stream())
                .map(|(f, _)| (CONVERSATION, *f)),
        )
        .collect()
}

/// One signature's values for `rows`, `*` marking those in `differences`.
fn signature_column(
    rows: &[(&str, Field)],
    sig: &signature::Signature,
    differences: &[Difference],
) -> Vec<String> {
    rows.iter()
        .map(|(label, field)| {
            let value = sig
                .field(label, *field)
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
fn rows_table(headers: &[String], rows: &[(&str, Field)], columns: &[Vec<String>]) -> String {
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
            d.field.to_string(),
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
    let is_reference = |c: &Cell| c.id.is_reference(reference);
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
        let name = format!("{}×{}", cell.id.server_name(), cell.id.client);
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
        "\nArtifacts: {}\n  one folder per cell, SCENARIO/SERVER__CLIENT/: capture.pcapng (annotated: a comment on every packet), capture.pcap (as libpcap captured it), message.bin (linked to the scenario's SCENARIO/message.bin), and each program's .stdout, .stderr and .exit\n",
        artifacts.display()
    );
    if !merged.is_empty() {
        let _ = writeln!(
            out,
            "  every pairing of a scenario in one Wireshark window: SCENARIO/all-pairings.pcapng, one interface per pairing;\n  select one with the display filter frame.interface_name == \"SERVER__CLIENT\", e.g. {}",
            crate::suite::pairing::PairingId::new("hello", Some("python"), "rust").merged_filter()
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
                cell.verdict.name(),
                cell.id.scenario,
                cell.id.label(),
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
    for field in Field::ALL {
        rows.push(vec![
            field.name().to_string(),
            field.policy().describe().to_string(),
            field.why().to_string(),
        ]);
    }
    table(&rows)
}

/// The whole terminal report of a run: each scenario's matrix and tables,
/// the counts, the baseline, the repeats and where the artifacts are.
pub fn render_run(view: &super::RunView<'_>, written: &super::Written, width: Width) -> String {
    let outcome = view.outcome;
    let mut out = String::new();
    // Said first: a capture that did not keep up explains the failures
    // below before anyone reads them as the programs'.
    if let Some(drops) = view.capture_drops() {
        let _ = writeln!(out, "Capture incomplete: {drops}.\n");
    }
    let mut shown = Vec::new();
    for (index, scenario) in outcome.suite.scenarios.iter().enumerate() {
        let cells = outcome.cells_of(index);
        if !cells.is_empty() {
            let _ = writeln!(
                out,
                "{}",
                render_scenario(
                    scenario,
                    &cells,
                    view.reference_name(index),
                    view.reference_in(index),
                    &mut shown,
                    width
                )
            );
        }
    }
    let _ = writeln!(
        out,
        "Verdicts: {}",
        crate::verdict::grade::Counts::of(&outcome.cells)
    );
    let _ = writeln!(out, "Isolation: {}", outcome.config.isolation.describe());
    if outcome.config.topology == crate::exec::network::Topology::Veth {
        let _ = writeln!(
            out,
            "Topology: client and server in two namespaces joined by a veth pair, MTU 1500"
        );
    }
    if let Some(c) = &outcome.comparison {
        out.push_str(&crate::verdict::baseline::render(c));
    }
    if outcome.config.repeat > 1 {
        out.push_str(&outcome.repeats.render());
    }
    out.push_str(&render_artifacts(
        &outcome.cells,
        &outcome.config.artifacts,
        &outcome.merged,
    ));
    let _ = writeln!(
        out,
        "  report:  {} (open it in a browser)",
        written.html.display()
    );
    let _ = writeln!(
        out,
        "  summary: {} (JSON), {} (JUnit XML)",
        written.summary.display(),
        written.junit.display()
    );
    out
}
