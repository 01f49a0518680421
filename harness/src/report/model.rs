//! One view of a finished run, built once, that every report renders: the
//! cells with their scenario's reference cell, whether each changed from
//! the baseline, and the programs' saved output. Reports read this and
//! nothing else: none looks a reference up again, and none reads a file
//! while it renders.
//!
//! A report written into the run's artifacts is a [`Reporter`]: a file
//! name and a function of the view. A new format is one file that
//! implements it, and a line in `report::REPORTERS`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use crate::capture::CaptureStats;
use crate::run::RunOutcome;
use crate::suite::scenario::Scenario;
use crate::verdict::baseline::Comparison;
use crate::verdict::grade::{Cell, Counts};

/// The programs' output files a report shows, in this order.
pub const OUTPUT_FILES: [&str; 4] = [
    "server.stdout",
    "server.stderr",
    "client.stdout",
    "client.stderr",
];

/// How much of each output file a report shows.
const OUTPUT_SHOWN: usize = 4096;

/// A finished run as the reports see it.
pub struct RunView<'a> {
    pub outcome: &'a RunOutcome,
    /// Per scenario (by index), its reference cell, when it is in the run.
    references: Vec<Option<&'a Cell>>,
    /// Per cell (by its folder), the output files that are not empty,
    /// each cut at 4 KiB with the whole size said.
    outputs: BTreeMap<String, Vec<(&'static str, String)>>,
    pub counts: Counts,
}

impl<'a> RunView<'a> {
    /// The view of `outcome`, reading each cell's output files once.
    pub fn of(outcome: &'a RunOutcome) -> RunView<'a> {
        let references = outcome
            .suite
            .scenarios
            .iter()
            .map(|s| {
                let reference = outcome.reference_of(s);
                outcome
                    .cells
                    .iter()
                    .find(|c| c.id.scenario == s.name && c.id.is_reference(reference))
            })
            .collect();
        let outputs = outcome
            .cells
            .iter()
            .filter_map(|cell| {
                let run = cell.run.as_ref()?;
                let files: Vec<(&'static str, String)> = OUTPUT_FILES
                    .into_iter()
                    .filter_map(|name| {
                        let text = output_file(&outcome.config.artifacts, &run.dir, name)?;
                        (!text.is_empty()).then_some((name, text))
                    })
                    .collect();
                Some((cell.id.folder(), files))
            })
            .collect();
        RunView {
            outcome,
            references,
            outputs,
            counts: Counts::of(&outcome.cells),
        }
    }

    pub fn scenarios(&self) -> &'a [Scenario] {
        &self.outcome.suite.scenarios
    }

    pub fn cells(&self) -> &'a [Cell] {
        &self.outcome.cells
    }

    /// The reference implementation of scenario `index`.
    pub fn reference_name(&self, index: usize) -> &'a str {
        self.outcome
            .reference_of(&self.outcome.suite.scenarios[index])
    }

    /// The reference cell of scenario `index`, when it is in the run.
    pub fn reference_in(&self, index: usize) -> Option<&'a Cell> {
        self.references.get(index).copied().flatten()
    }

    /// The reference cell of `cell`'s scenario.
    pub fn reference_of(&self, cell: &Cell) -> Option<&'a Cell> {
        let index = self
            .scenarios()
            .iter()
            .position(|s| s.name == cell.id.scenario)?;
        self.reference_in(index)
    }

    /// Whether `cell`'s verdict is not the one the baseline expects.
    pub fn changed(&self, cell: &Cell) -> bool {
        self.comparison()
            .is_some_and(|c| c.not_as_expected().any(|ch| ch.id == cell.id))
    }

    pub fn comparison(&self) -> Option<&'a Comparison> {
        self.outcome.comparison.as_ref()
    }

    /// The cell's programs' output, the files that are not empty.
    pub fn outputs(&self, cell: &Cell) -> &[(&'static str, String)] {
        self.outputs
            .get(&cell.id.folder())
            .map_or(&[], Vec::as_slice)
    }

    /// How cells were kept apart, in words.
    pub fn isolation(&self) -> &'static str {
        self.outcome.config.isolation.describe()
    }

    /// What libpcap dropped over the run, when it dropped anything: a
    /// capture that did not keep up makes its cells fail on the harness's
    /// account, not the programs', and the reports say so first.
    pub fn capture_drops(&self) -> Option<CaptureDrops> {
        CaptureDrops::over(self.cells().iter().filter_map(|c| c.run.as_ref()?.stats))
    }

    /// Each scenario's merged capture, by scenario name.
    pub fn merged(&self) -> &'a BTreeMap<String, String> {
        &self.outcome.merged
    }
}

/// Frames libpcap dropped, over the cells where it dropped any.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CaptureDrops {
    pub cells: usize,
    pub dropped: u64,
    pub received: u64,
}

impl CaptureDrops {
    /// What the captures with these counters dropped, if any did.
    fn over(stats: impl Iterator<Item = CaptureStats>) -> Option<CaptureDrops> {
        let mut drops = CaptureDrops::default();
        for stats in stats {
            let lost = u64::from(stats.dropped) + u64::from(stats.if_dropped);
            if lost > 0 {
                drops.cells += 1;
                drops.dropped += lost;
                drops.received += u64::from(stats.received);
            }
        }
        (drops.cells > 0).then_some(drops)
    }
}

impl std::fmt::Display for CaptureDrops {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the capture dropped {} of {} frames in {} cell{}: this machine did not keep up with the traffic, so {} on the harness's account, not the programs'; run again with --snaplen 128 (headers only: every check holds, a stream's bytes are counted rather than compared) or --jobs 1",
            self.dropped,
            self.received + self.dropped,
            self.cells,
            if self.cells == 1 { "" } else { "s" },
            if self.cells == 1 { "that cell fails" } else { "those cells fail" },
        )
    }
}

/// A program's saved output, at most [`OUTPUT_SHOWN`] bytes of it.
fn output_file(artifacts: &Path, dir: &str, name: &str) -> Option<String> {
    let bytes = std::fs::read(artifacts.join(dir).join(name)).ok()?;
    let shown = &bytes[..bytes.len().min(OUTPUT_SHOWN)];
    let mut text = String::from_utf8_lossy(shown).into_owned();
    if bytes.len() > shown.len() {
        let _ = write!(text, "\n… ({} bytes in all)", bytes.len());
    }
    Some(text)
}

/// A report written into the run's artifacts.
pub trait Reporter: Sync {
    /// The file it is written to, in the run's artifacts folder.
    fn file_name(&self) -> &'static str;
    /// The file's contents.
    fn render(&self, run: &RunView<'_>) -> String;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(received: u32, dropped: u32, if_dropped: u32) -> CaptureStats {
        CaptureStats {
            received,
            dropped,
            if_dropped,
        }
    }

    /// Only the captures that dropped count, and the words name the
    /// figure and the remedy.
    #[test]
    fn drops_are_counted_over_the_cells_that_had_them_and_say_the_remedy() {
        assert_eq!(CaptureDrops::over([stats(10, 0, 0)].into_iter()), None);
        let drops =
            CaptureDrops::over([stats(10, 0, 0), stats(900, 100, 0), stats(50, 0, 5)].into_iter())
                .unwrap();
        assert_eq!(
            drops,
            CaptureDrops {
                cells: 2,
                dropped: 105,
                received: 950
            }
        );
        let words = drops.to_string();
        assert!(words.contains("105 of 1055 frames in 2 cells"), "{words}");
        assert!(words.contains("--snaplen 128"), "{words}");
    }
}
