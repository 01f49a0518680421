//! The command-line cases' report (`harness cli`): per case file, a
//! matrix of cases × implementations, then every cell that does not
//! answer as the reference, with what differs, then the counts and the
//! baseline.

use std::fmt::Write as _;

use crate::cmdline::{CaseCell, CasesOutcome};
use crate::report::ladder::Width;
use crate::report::terminal::table;
use crate::verdict::grade::Verdict;

/// The first line where two texts differ, shown both ways.
fn first_difference(reference: &str, actual: &str) -> String {
    let a: Vec<&str> = reference.lines().collect();
    let b: Vec<&str> = actual.lines().collect();
    let at = (0..a.len().max(b.len()))
        .find(|&i| a.get(i) != b.get(i))
        .unwrap_or(0);
    format!(
        "line {}: reference {:?}, this one {:?}",
        at + 1,
        a.get(at).copied().unwrap_or("(none)"),
        b.get(at).copied().unwrap_or("(none)")
    )
}

fn cut(text: &str, width: Width) -> String {
    match width {
        Width::Columns(c) if text.chars().count() > c => {
            let mut s: String = text.chars().take(c.saturating_sub(1)).collect();
            s.push('…');
            s
        }
        _ => text.to_string(),
    }
}

fn explain(cell: &CaseCell, width: Width, out: &mut String) {
    let _ = writeln!(
        out,
        "\n{} {}/{} × {}: {}",
        cell.verdict.as_str(),
        cell.role,
        cell.case,
        cell.implementation,
        cell.why
    );
    if let Some(reason) = &cell.reason {
        let _ = writeln!(out, "  {}", cut(reason, width));
    }
    if let Some(problem) = cell
        .outcome
        .problem
        .as_ref()
        .filter(|p| cell.reason.as_ref() != Some(*p))
    {
        let _ = writeln!(out, "  {}", cut(problem, width));
    }
    let Some(reference) = &cell.reference else {
        return;
    };
    for field in &cell.differing {
        let line = match field.as_str() {
            "exit" => format!(
                "exit: reference {}, this one {}",
                reference.status, cell.outcome.status
            ),
            "stdout" => format!(
                "stdout: {}",
                first_difference(&reference.stdout, &cell.outcome.stdout)
            ),
            _ => format!(
                "stderr: {}",
                first_difference(&reference.stderr, &cell.outcome.stderr)
            ),
        };
        let _ = writeln!(out, "  {}", cut(&line, width));
    }
}

/// The case files' roles, in the order their cells ran.
fn roles(outcome: &CasesOutcome) -> Vec<&str> {
    let mut roles: Vec<&str> = outcome.cells.iter().map(|c| c.role.as_str()).collect();
    roles.dedup();
    roles
}

/// One case file's cells, its implementations (the reference first) and
/// its cases, in the order they ran: the matrix both reports draw.
fn of_role<'a>(
    outcome: &'a CasesOutcome,
    role: &str,
) -> (Vec<&'a CaseCell>, Vec<&'a str>, Vec<&'a CaseCell>) {
    let cells: Vec<&CaseCell> = outcome.cells.iter().filter(|c| c.role == role).collect();
    let mut implementations: Vec<&str> = Vec::new();
    let mut cases: Vec<&CaseCell> = Vec::new();
    for c in &cells {
        if !implementations.contains(&c.implementation.as_str()) {
            implementations.push(&c.implementation);
        }
        if !cases.iter().any(|k| k.case == c.case) {
            cases.push(c);
        }
    }
    (cells, implementations, cases)
}

/// The whole report.
pub fn render(outcome: &CasesOutcome, width: Width) -> String {
    let mut out = String::new();
    for role in roles(outcome) {
        let (cells, implementations, cases) = of_role(outcome, role);
        let _ = writeln!(
            out,
            "== command line: the {role} (tests/cli/{role}.toml); reference: {}\n",
            implementations.first().copied().unwrap_or("-")
        );
        let mut rows = vec![std::iter::once("case \\ implementation".to_string())
            .chain(implementations.iter().map(|i| i.to_string()))
            .collect::<Vec<_>>()];
        for case in &cases {
            let mut row = vec![case.case.to_string()];
            for implementation in &implementations {
                let verdict = cells
                    .iter()
                    .find(|c| c.case == case.case && c.implementation == *implementation)
                    .map_or("-", |c| c.verdict.as_str());
                row.push(verdict.to_string());
            }
            rows.push(row);
        }
        out.push_str(&table(&rows));
        for cell in cells.iter().filter(|c| c.verdict != Verdict::Pass) {
            explain(cell, width, &mut out);
        }
        out.push('\n');
    }
    let _ = writeln!(out, "Verdicts: {}", outcome.counts);
    if let Some(comparison) = &outcome.baseline {
        out.push_str(&crate::verdict::baseline::render(comparison));
    }
    out
}

/// Whether a cell needs a human: with a baseline, its verdict changed;
/// without one, it is FAIL. The message says why.
fn needs_a_look(cell: &CaseCell, outcome: &CasesOutcome) -> Option<String> {
    match &outcome.baseline {
        Some(comparison) => comparison
            .changes
            .iter()
            .find(|c| c.id.scenario == cell.table() && c.id.baseline_key() == cell.key())
            .map(|c| {
                format!(
                    "expected {}, got {}",
                    c.expected
                        .as_deref()
                        .unwrap_or("(no entry in the baseline)"),
                    c.actual
                )
            }),
        None => (cell.verdict == Verdict::Fail)
            .then(|| cell.reason.clone().unwrap_or_else(|| "FAIL".into())),
    }
}

/// JUnit XML: one `testsuite` per case file, one `testcase` per case ×
/// implementation, failed when it needs a look.
pub fn render_junit(outcome: &CasesOutcome) -> String {
    use crate::report::junit::escape;
    let mut out = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"harness cli\">\n",
    );
    for role in roles(outcome) {
        let cells: Vec<&CaseCell> = outcome.cells.iter().filter(|c| c.role == role).collect();
        let failures = cells
            .iter()
            .filter(|c| needs_a_look(c, outcome).is_some())
            .count();
        let _ = writeln!(
            out,
            "  <testsuite name=\"cli/{role}\" tests=\"{}\" failures=\"{failures}\">",
            cells.len()
        );
        for cell in cells {
            let _ = write!(
                out,
                "    <testcase classname=\"cli/{}\" name=\"{}\">",
                escape(role),
                escape(&cell.key())
            );
            if let Some(message) = needs_a_look(cell, outcome) {
                let _ = write!(
                    out,
                    "<failure type=\"{}\" message=\"{}\"/>",
                    if outcome.baseline.is_some() {
                        "baseline"
                    } else {
                        "verdict"
                    },
                    escape(&message)
                );
            }
            let _ = writeln!(
                out,
                "<system-out>{}: {} ({})</system-out></testcase>",
                cell.verdict.as_str(),
                escape(&cell.why),
                escape(&cell.outcome.status)
            );
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

/// A page of its own: the matrix per case file, every cell not PASS open
/// with the reference's outcome beside its own.
pub fn render_html(outcome: &CasesOutcome) -> String {
    use crate::report::html::esc;
    let mut out = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>harness cli</title>\n<style>body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px;text-align:left;vertical-align:top}.PASS{background:#d4f4d4}.DIFFERS{background:#fff2c0}.FAIL{background:#f8c8c8}pre{margin:0;white-space:pre-wrap;max-width:60em}</style></head><body>\n<h1>The command-line cases</h1>\n",
    );
    let _ = writeln!(out, "<p>Verdicts: {}</p>", esc(&outcome.counts.to_string()));
    if let Some(comparison) = &outcome.baseline {
        let _ = writeln!(
            out,
            "<p>Baseline {}: {} as expected, {} changed.</p>",
            esc(&comparison.file),
            comparison.matched,
            comparison.changes.len() + comparison.stale.len()
        );
    }
    for role in roles(outcome) {
        let (cells, implementations, cases) = of_role(outcome, role);
        let _ = writeln!(
            out,
            "<h2>The {role} (tests/cli/{role}.toml)</h2>\n<table><tr><th>case</th><th>why</th>"
        );
        for i in &implementations {
            let _ = write!(out, "<th>{}</th>", esc(i));
        }
        out.push_str("</tr>\n");
        for case in &cases {
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td>",
                esc(&case.case),
                esc(&case.why)
            );
            for i in &implementations {
                match cells
                    .iter()
                    .find(|c| c.case == case.case && c.implementation == *i)
                {
                    // The reference's own cells have nothing to compare.
                    Some(c) if c.reference.is_none() => {
                        let _ = write!(out, "<td class=\"{0}\">{0}</td>", c.verdict.as_str());
                    }
                    Some(c) => {
                        let _ = write!(
                            out,
                            "<td class=\"{0}\"><a href=\"#{1}\">{0}</a></td>",
                            c.verdict.as_str(),
                            esc(&format!("{role}/{}/{i}", case.case))
                        );
                    }
                    None => out.push_str("<td>-</td>"),
                }
            }
            out.push_str("</tr>\n");
        }
        out.push_str("</table>\n");
        for cell in &cells {
            let Some(reference) = &cell.reference else {
                continue;
            };
            let _ = writeln!(
                out,
                "<details id=\"{}\"{}><summary class=\"{}\">{} {} × {}</summary>",
                esc(&format!("{role}/{}/{}", cell.case, cell.implementation)),
                if cell.verdict == Verdict::Pass {
                    ""
                } else {
                    " open"
                },
                cell.verdict.as_str(),
                cell.verdict.as_str(),
                esc(&cell.case),
                esc(&cell.implementation)
            );
            if let Some(reason) = &cell.reason {
                let _ = writeln!(out, "<p>{}</p>", esc(reason));
            }
            let _ = writeln!(
                out,
                "<table><tr><th></th><th>reference</th><th>{}</th></tr>",
                esc(&cell.implementation)
            );
            for (field, a, b) in [
                ("exit", &reference.status, &cell.outcome.status),
                ("stdout", &reference.stdout, &cell.outcome.stdout),
                ("stderr", &reference.stderr, &cell.outcome.stderr),
            ] {
                let mark = if cell.differing.iter().any(|d| d == field) {
                    " class=\"FAIL\""
                } else {
                    ""
                };
                let _ = writeln!(
                    out,
                    "<tr{mark}><td>{field}</td><td><pre>{}</pre></td><td><pre>{}</pre></td></tr>",
                    esc(a),
                    esc(b)
                );
            }
            out.push_str("</table></details>\n");
        }
    }
    out.push_str("</body></html>\n");
    out
}

/// Writes `summary.json`, `junit.xml` and `report.html` into `dir`; the
/// paths written.
pub fn write_all(
    outcome: &CasesOutcome,
    dir: &std::path::Path,
) -> std::io::Result<Vec<std::path::PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let json = serde_json::to_string_pretty(outcome).map_err(std::io::Error::other)? + "\n";
    let mut written = Vec::new();
    for (name, text) in [
        ("summary.json", json),
        ("junit.xml", render_junit(outcome)),
        ("report.html", render_html(outcome)),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, text)?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_differing_line_is_named() {
        assert_eq!(
            first_difference("a\nb\n", "a\nc\n"),
            "line 2: reference \"b\", this one \"c\""
        );
        assert_eq!(
            first_difference("a\n", "a\nmore\n"),
            "line 2: reference \"(none)\", this one \"more\""
        );
    }
}
