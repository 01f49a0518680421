//! `--repeat N`: the same matrix N times, and any cell whose verdict is not
//! the same every time reported as flaky, with the runs that disagree.
//!
//! A flaky verdict is a bug in the suite (a timing-dependent field compared
//! exactly, a check that races the teardown) or in a program, and it would
//! make CI cry wolf; this is how one is found before it lands.

use std::collections::BTreeMap;

use crate::suite::pairing::PairingId;
use crate::verdict::baseline::Expected;
use crate::verdict::grade::Cell;

/// One cell whose verdict changed between repeats.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, schemars::JsonSchema)]
pub struct FlakyCell {
    #[serde(flatten)]
    pub id: PairingId,
    /// Each verdict seen (as the baseline writes it) and the runs, counted
    /// from 1, that gave it.
    pub verdicts: BTreeMap<String, Vec<usize>>,
    /// Why, for each verdict: the reason its first run gave (a failed
    /// check, a difference), so a flake that shows once in 200 runs can be
    /// understood from the report alone.
    pub reasons: BTreeMap<String, String>,
}

/// What `summary.json` says about the repeats.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub struct RepeatSummary {
    pub runs: usize,
    pub cells: usize,
    pub flaky: Vec<FlakyCell>,
}

/// The verdicts of every repeat so far.
#[derive(Debug, Clone, Default)]
pub struct Repeats {
    pub runs: usize,
    /// Per cell: its verdict in run 1, the one every later run is held to.
    first: BTreeMap<PairingId, String>,
    /// Per cell: each verdict seen and the runs that gave it.
    seen: BTreeMap<PairingId, BTreeMap<String, Vec<usize>>>,
    /// Per cell: each verdict's reason, from the first run that gave it.
    reasons: BTreeMap<PairingId, BTreeMap<String, String>>,
}

impl Repeats {
    /// Records run number `run` (from 1); returns whether every cell got
    /// the verdict it got in the first run. A verdict seen in some earlier
    /// run but not in run 1 is a difference too: run 1 is what is kept and
    /// reported, so only a run equal to it may be thrown away.
    pub fn record(&mut self, run: usize, cells: &[Cell]) -> bool {
        self.runs = self.runs.max(run);
        let mut same = true;
        for cell in cells {
            let verdict = Expected::of(cell).to_string();
            let first = self
                .first
                .entry(cell.id.clone())
                .or_insert_with(|| verdict.clone());
            if *first != verdict {
                same = false;
            }
            if let Some(reason) = why(cell) {
                self.reasons
                    .entry(cell.id.clone())
                    .or_default()
                    .entry(verdict.clone())
                    .or_insert(reason);
            }
            self.seen
                .entry(cell.id.clone())
                .or_default()
                .entry(verdict)
                .or_default()
                .push(run);
        }
        same
    }

    pub fn summary(&self) -> RepeatSummary {
        RepeatSummary {
            runs: self.runs,
            cells: self.seen.len(),
            flaky: self.flaky(),
        }
    }

    pub fn flaky(&self) -> Vec<FlakyCell> {
        self.seen
            .iter()
            .filter(|(_, verdicts)| verdicts.len() > 1)
            .map(|(id, verdicts)| FlakyCell {
                id: id.clone(),
                verdicts: verdicts.clone(),
                reasons: self.reasons.get(id).cloned().unwrap_or_default(),
            })
            .collect()
    }

    pub fn render(&self) -> String {
        let flaky = self.flaky();
        if flaky.is_empty() {
            return format!(
                "\nRepeats: {} runs of {} cells, every verdict the same in every run.\n",
                self.runs,
                self.seen.len()
            );
        }
        let mut out = format!(
            "\nRepeats: {} runs of {} cells; {} FLAKY:\n",
            self.runs,
            self.seen.len(),
            flaky.len()
        );
        for f in &flaky {
            let seen: Vec<String> = f
                .verdicts
                .iter()
                .map(|(v, runs)| match f.reasons.get(v) {
                    Some(why) => format!("{v} in runs {} ({why})", compact(runs)),
                    None => format!("{v} in runs {}", compact(runs)),
                })
                .collect();
            out.push_str(&format!(
                "  {} {}: {}\n",
                f.id.scenario,
                f.id.label(),
                seen.join("; ")
            ));
        }
        out
    }
}

/// Why a cell got its verdict, in a line: its reason, or the fields that
/// differ.
fn why(cell: &Cell) -> Option<String> {
    cell.reason.clone().or_else(|| {
        (!cell.differences.is_empty()).then(|| {
            let fields: Vec<String> = cell
                .differences
                .iter()
                .map(|d| format!("{}.{}: {} ≠ {}", d.segment, d.field, d.actual, d.reference))
                .collect();
            fields.join("; ")
        })
    })
}

/// "1-3, 5, 7-9"
fn compact(runs: &[usize]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < runs.len() {
        let start = runs[i];
        let mut end = start;
        while i + 1 < runs.len() && runs[i + 1] == end + 1 {
            i += 1;
            end = runs[i];
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}-{end}")
        });
        i += 1;
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::grade::Verdict;

    fn cell(verdict: Verdict) -> Cell {
        Cell::graded(PairingId::new("hola", Some("rust"), "rust"), verdict)
    }

    #[test]
    fn a_verdict_that_changes_is_flaky_with_its_runs() {
        let mut r = Repeats::default();
        assert!(r.record(1, &[cell(Verdict::Pass)]));
        assert!(r.record(2, &[cell(Verdict::Pass)]));
        assert!(!r.record(3, &[cell(Verdict::Fail)]));
        assert!(r.record(4, &[cell(Verdict::Pass)]));
        let flaky = r.flaky();
        assert_eq!(flaky.len(), 1);
        assert_eq!(flaky[0].verdicts["PASS"], [1, 2, 4]);
        assert_eq!(flaky[0].verdicts["FAIL"], [3]);
        assert!(r.render().contains("PASS in runs 1-2, 4"), "{}", r.render());
    }

    /// PASS, FAIL, FAIL: run 3 repeats run 2's verdict but not run 1's, so
    /// it is not "the same" (its artifacts must be kept).
    #[test]
    fn a_run_is_the_same_only_if_it_equals_run_1() {
        let mut r = Repeats::default();
        assert!(r.record(1, &[cell(Verdict::Pass)]));
        assert!(!r.record(2, &[cell(Verdict::Fail)]));
        assert!(!r.record(3, &[cell(Verdict::Fail)]));
        assert!(r.record(4, &[cell(Verdict::Pass)]));
    }

    #[test]
    fn steady_verdicts_are_not_flaky() {
        let mut r = Repeats::default();
        for run in 1..=5 {
            assert!(r.record(run, &[cell(Verdict::Differs)]));
        }
        assert!(r.flaky().is_empty());
        assert!(r
            .render()
            .contains("5 runs of 1 cells, every verdict the same"));
    }
}
