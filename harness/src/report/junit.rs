//! JUnit XML, so any CI shows the matrix: one `testsuite` per scenario, one
//! `testcase` per pairing.
//!
//! A testcase fails when the cell needs a human: with a baseline, when its
//! verdict changed; without one, when it is FAIL or DIFFERS. UNSUPPORTED
//! and UNAVAILABLE cells are `skipped`, with the reason.

use std::fmt::Write as _;

use crate::verdict::baseline::Comparison;
use crate::verdict::grade::{Cell, Verdict};

pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // XML 1.0 cannot carry most control characters at all.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

enum Outcome {
    Passed,
    Failed { kind: &'static str, message: String },
    Skipped(String),
}

fn outcome(cell: &Cell, comparison: Option<&Comparison>) -> Outcome {
    if matches!(cell.verdict, Verdict::Unsupported | Verdict::Unavailable) {
        return Outcome::Skipped(format!(
            "{}: {}",
            cell.verdict.name(),
            cell.reason.as_deref().unwrap_or("")
        ));
    }
    if let Some(comparison) = comparison {
        let change = comparison.not_as_expected().find(|c| c.id == cell.id);
        return match change {
            Some(c) => Outcome::Failed {
                kind: "baseline",
                message: format!(
                    "expected {}, got {}",
                    c.expected
                        .as_deref()
                        .unwrap_or("(no entry in the baseline)"),
                    c.actual
                ),
            },
            None => Outcome::Passed,
        };
    }
    match cell.verdict {
        Verdict::Fail => Outcome::Failed {
            kind: "FAIL",
            message: cell.reason.clone().unwrap_or_else(|| "failed".into()),
        },
        Verdict::Differs => Outcome::Failed {
            kind: "DIFFERS",
            message: format!(
                "differs from the reference in {}",
                cell.differing_fields().join(", ")
            ),
        },
        _ => Outcome::Passed,
    }
}

/// What the cell's checks and differences say, for `system-out`.
fn details(cell: &Cell) -> String {
    let mut out = format!("verdict: {}\n", cell.verdict.name());
    if let Some(reason) = &cell.reason {
        let _ = writeln!(out, "reason: {reason}");
    }
    if let Some(run) = &cell.run {
        for check in &run.checks {
            let _ = writeln!(
                out,
                "{} {}: {}",
                if check.passed { "ok  " } else { "FAIL" },
                check.name,
                check.detail
            );
        }
        if let Some(file) = &run.pcapng_file {
            let _ = writeln!(out, "capture: {file}");
        }
    }
    for d in &cell.differences {
        let _ = writeln!(
            out,
            "differs: {} {}: reference {}, this pairing {}",
            d.segment, d.field, d.reference, d.actual
        );
    }
    out
}

pub fn render(cells: &[Cell], comparison: Option<&Comparison>) -> String {
    let mut scenarios: Vec<&str> = Vec::new();
    for c in cells {
        if !scenarios.contains(&c.id.scenario.as_str()) {
            scenarios.push(&c.id.scenario);
        }
    }
    let outcomes: Vec<Outcome> = cells.iter().map(|c| outcome(c, comparison)).collect();
    let count = |cells: &mut dyn Iterator<Item = &Outcome>| {
        let (mut failures, mut skipped, mut total) = (0, 0, 0);
        for o in cells {
            total += 1;
            match o {
                Outcome::Failed { .. } => failures += 1,
                Outcome::Skipped(_) => skipped += 1,
                Outcome::Passed => {}
            }
        }
        (total, failures, skipped)
    };
    let (total, failures, skipped) = count(&mut outcomes.iter());
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"tcp-conformance\" tests=\"{total}\" failures=\"{failures}\" skipped=\"{skipped}\" errors=\"0\">"
    );
    for scenario in scenarios {
        let members: Vec<(&Cell, &Outcome)> = cells
            .iter()
            .zip(&outcomes)
            .filter(|(c, _)| c.id.scenario == scenario)
            .collect();
        let (total, failures, skipped) = count(&mut members.iter().map(|(_, o)| *o));
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{total}\" failures=\"{failures}\" skipped=\"{skipped}\" errors=\"0\">",
            escape(scenario)
        );
        for (cell, outcome) in members {
            let time = cell.run.as_ref().map_or(0.0, |r| r.seconds);
            let _ = writeln!(
                out,
                "    <testcase classname=\"{}\" name=\"{}\" time=\"{time:.3}\">",
                escape(scenario),
                escape(&cell.id.label())
            );
            match outcome {
                Outcome::Passed => {}
                Outcome::Failed { kind, message } => {
                    let _ = writeln!(
                        out,
                        "      <failure type=\"{kind}\" message=\"{}\"/>",
                        escape(message)
                    );
                }
                Outcome::Skipped(reason) => {
                    let _ = writeln!(out, "      <skipped message=\"{}\"/>", escape(reason));
                }
            }
            let _ = writeln!(
                out,
                "      <system-out>{}</system-out>",
                escape(&details(cell))
            );
            let _ = writeln!(out, "    </testcase>");
        }
        let _ = writeln!(out, "  </testsuite>");
    }
    out.push_str("</testsuites>\n");
    out
}

/// `junit.xml`: one test case per cell, for CI systems.
pub struct Junit;

impl crate::report::model::Reporter for Junit {
    fn file_name(&self) -> &'static str {
        "junit.xml"
    }

    fn render(&self, run: &crate::report::model::RunView<'_>) -> String {
        render(run.cells(), run.comparison())
    }
}
