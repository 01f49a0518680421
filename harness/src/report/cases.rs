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
/// The first line where two outputs differ: its number, and both lines.
fn first_difference<'a>(reference: &'a str, actual: &'a str) -> (usize, &'a str, &'a str) {
    let a: Vec<&str> = reference.lines().collect();
    let b: Vec<&str> = actual.lines().collect();
    let at = (0..a.len().max(b.len()))
        .find(|&i| a.get(i) != b.get(i))
        .unwrap_or(0);
    (
        at + 1,
        a.get(at).copied().unwrap_or("(none)"),
        b.get(at).copied().unwrap_or("(none)"),
    )
}

/// Two differing values, each on a line of its own (`{:?}`-quoted), cut to
/// `width` around where they first differ: a long shared beginning is
/// elided, so the part that differs is never the part cut off.
fn both_values(label: &str, reference: &str, actual: &str, width: Width) -> String {
    let (a, b) = (format!("{reference:?}"), format!("{actual:?}"));
    const INDENT: &str = "    reference: ";
    let room = match width {
        Width::Columns(c) => c.saturating_sub(INDENT.len()).max(20),
        Width::Unlimited => usize::MAX,
    };
    let shared = a.chars().zip(b.chars()).take_while(|(x, y)| x == y).count();
    // Keep a little of the shared part before the difference for context.
    let skip = if a.chars().count().max(b.chars().count()) > room {
        shared.saturating_sub(room / 4)
    } else {
        0
    };
    let show = |text: &str| {
        let tail: String = text.chars().skip(skip).collect();
        let tail = if skip > 0 { format!("…{tail}") } else { tail };
        match width {
            Width::Columns(_) if tail.chars().count() > room => {
                let mut s: String = tail.chars().take(room.saturating_sub(1)).collect();
                s.push('…');
                s
            }
            _ => tail,
        }
    };
    format!(
        "  {label}\n{INDENT}{}\n    this one:  {}\n",
        show(&a),
        show(&b)
    )
}

/// `text` in lines of at most `width` columns, indented by two, broken
/// between words.
fn wrap(text: &str, width: Width) -> String {
    let columns = match width {
        Width::Columns(c) => c.saturating_sub(2).max(20),
        Width::Unlimited => return format!("  {text}\n"),
    };
    let mut out = String::new();
    let mut line = String::new();
    for word in text.split(' ') {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > columns {
            out.push_str(&format!("  {line}\n"));
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        out.push_str(&format!("  {line}\n"));
    }
    out
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
        cell.verdict.name(),
        cell.role,
        cell.case,
        cell.implementation,
        cell.why
    );
    // Reasons are words: wrapped, never cut.
    if let Some(reason) = &cell.reason {
        out.push_str(&wrap(reason, width));
    }
    if let Some(problem) = cell
        .outcome
        .problem
        .as_ref()
        .filter(|p| cell.reason.as_ref() != Some(*p))
    {
        out.push_str(&wrap(problem, width));
    }
    let Some(reference) = &cell.reference else {
        return;
    };
    for field in &cell.differing {
        let (reference_text, actual_text) = match field.as_str() {
            "exit" => {
                let line = format!(
                    "exit: reference {}, this one {}",
                    reference.status, cell.outcome.status
                );
                let _ = writeln!(out, "  {}", cut(&line, width));
                continue;
            }
            "stdout" => (&reference.stdout, &cell.outcome.stdout),
            "received" => {
                let text = both_values(
                    "received by the peer:",
                    &reference.received,
                    &cell.outcome.received,
                    width,
                );
                out.push_str(&text);
                continue;
            }
            _ => (&reference.stderr, &cell.outcome.stderr),
        };
        let (line, a, b) = first_difference(reference_text, actual_text);
        out.push_str(&both_values(&format!("{field}, line {line}:"), a, b, width));
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
                    .map_or("-", |c| c.verdict.name());
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
            .not_as_expected()
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
                cell.verdict.name(),
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
    use crate::report::escape::esc;
    let mut out = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>harness cli</title>\n<style>body{font-family:sans-serif;margin:1.5em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px;text-align:left;vertical-align:top}.PASS{background:#d4f4d4}.DIFFERS{background:#fff2c0}.FAIL{background:#f8c8c8}pre{margin:0;white-space:pre-wrap;max-width:60em}</style></head><body>\n<h1>The command-line cases</h1>\n",
    );
    let _ = writeln!(out, "<p>Verdicts: {}</p>", esc(&outcome.counts.to_string()));
    if let Some(comparison) = &outcome.baseline {
        let _ = writeln!(
            out,
            "<p>Baseline {}: {} as expected, {} changed, {} new.</p>",
            esc(&comparison.file),
            comparison.matched,
            comparison.changes.len() + comparison.stale.len(),
            comparison.new.len()
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
                        let _ = write!(out, "<td class=\"{0}\">{0}</td>", c.verdict.name());
                    }
                    Some(c) => {
                        let _ = write!(
                            out,
                            "<td class=\"{0}\"><a href=\"#{1}\">{0}</a></td>",
                            c.verdict.name(),
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
                cell.verdict.name(),
                cell.verdict.name(),
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
                ("received", &reference.received, &cell.outcome.received),
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
        assert_eq!(first_difference("a\nb\n", "a\nc\n"), (2, "b", "c"));
        assert_eq!(first_difference("a\n", "a\nmore\n"), (2, "(none)", "more"));
    }

    /// Two long values that share a long beginning are shown from near
    /// where they differ, each on its own line, within the width: the
    /// port's value is never the part cut off.
    #[test]
    fn long_values_are_shown_where_they_differ() {
        let shared =
            "PROG: error: invalid port 'x': not a number; use a whole number from 1 to 65535 and ";
        let (a, b) = (format!("{shared}this one"), format!("{shared}that other"));
        let text = both_values("stderr, line 1:", &a, &b, Width::Columns(60));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines.iter().all(|l| l.chars().count() <= 60), "{text}");
        assert!(
            lines[1].contains("this one") && lines[2].contains("that other"),
            "{text}"
        );
        assert!(lines[1].contains('…'), "{text}");
    }
}
