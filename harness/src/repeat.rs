//! `--repeat N`: the same matrix N times, and any cell whose verdict is not
//! the same every time reported as flaky, with the runs that disagree.
//!
//! A flaky verdict is a bug in the suite (a timing-dependent field compared
//! exactly, a check that races the teardown) or in a program, and it would
//! make CI cry wolf; this is how one is found before it lands.

use std::collections::BTreeMap;

use crate::baseline::Expected;
use crate::report::Cell;

/// One cell whose verdict changed between repeats.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct FlakyCell {
    pub scenario: String,
    pub server: String,
    pub client: String,
    /// Each verdict seen (as the baseline writes it) and the runs, counted
    /// from 1, that gave it.
    pub verdicts: BTreeMap<String, Vec<usize>>,
}

/// What `summary.json` says about the repeats.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RepeatSummary {
    pub runs: usize,
    pub cells: usize,
    pub flaky: Vec<FlakyCell>,
}

/// The verdicts of every repeat so far.
#[derive(Debug, Clone, Default)]
pub struct Repeats {
    pub runs: usize,
    seen: BTreeMap<(String, String, String), BTreeMap<String, Vec<usize>>>,
}

impl Repeats {
    /// Records run number `run` (from 1); returns whether every cell got
    /// the verdict it got in the first run.
    pub fn record(&mut self, run: usize, cells: &[Cell]) -> bool {
        self.runs = self.runs.max(run);
        let mut same = true;
        for cell in cells {
            let key = (
                cell.scenario.clone(),
                cell.server.clone(),
                cell.client.clone(),
            );
            let verdict = Expected::of(cell).to_string();
            let entry = self.seen.entry(key).or_default();
            if !entry.is_empty() && !entry.contains_key(&verdict) {
                same = false;
            }
            entry.entry(verdict).or_default().push(run);
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
            .map(|((scenario, server, client), verdicts)| FlakyCell {
                scenario: scenario.clone(),
                server: server.clone(),
                client: client.clone(),
                verdicts: verdicts.clone(),
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
                .map(|(v, runs)| format!("{v} in runs {}", compact(runs)))
                .collect();
            out.push_str(&format!(
                "  {} {} server × {} client: {}\n",
                f.scenario,
                f.server,
                f.client,
                seen.join("; ")
            ));
        }
        out
    }
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
    use crate::report::Verdict;

    fn cell(verdict: Verdict) -> Cell {
        Cell {
            scenario: "hola".into(),
            server: "rust".into(),
            client: "rust".into(),
            verdict,
            reason: None,
            differences: Vec::new(),
            display_filter: None,
            merged_filter: None,
            run: None,
        }
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
