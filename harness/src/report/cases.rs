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

/// The whole report.
pub fn render(outcome: &CasesOutcome, width: Width) -> String {
    let mut out = String::new();
    let mut roles: Vec<&str> = outcome.cells.iter().map(|c| c.role.as_str()).collect();
    roles.dedup();
    for role in roles {
        let cells: Vec<&CaseCell> = outcome.cells.iter().filter(|c| c.role == role).collect();
        let mut implementations: Vec<&str> = Vec::new();
        let mut cases: Vec<&str> = Vec::new();
        for c in &cells {
            if !implementations.contains(&c.implementation.as_str()) {
                implementations.push(&c.implementation);
            }
            if !cases.contains(&c.case.as_str()) {
                cases.push(&c.case);
            }
        }
        let _ = writeln!(
            out,
            "== command line: the {role} (tests/cli/{role}.toml); reference: {}\n",
            implementations.first().copied().unwrap_or("-")
        );
        let mut rows = vec![std::iter::once("case \\ implementation".to_string())
            .chain(implementations.iter().map(|i| i.to_string()))
            .collect::<Vec<_>>()];
        for case in &cases {
            let mut row = vec![case.to_string()];
            for implementation in &implementations {
                let verdict = cells
                    .iter()
                    .find(|c| c.case == *case && c.implementation == *implementation)
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
