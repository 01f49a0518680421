//! The baseline: the verdict every cell is expected to get, checked in.
//!
//! Some differences are known and accepted (a third-party peer closing
//! differently, say); they are written down here so that they do not fail
//! CI, while any change, better or worse, does. A verdict that got better
//! still fails the run: the baseline is then out of date and should be
//! regenerated (`make baseline`) in the same commit, so the history shows
//! when the wire behaviour changed.
//!
//! The file is TOML, one table per scenario, one key per pairing:
//!
//! ```toml
//! [hello]
//! "python × python" = "PASS"
//! "python × nc" = "DIFFERS: conversation.closes first"
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;

use crate::suite::declaration::{self, DeclarationError};
use crate::suite::pairing::PairingId;
use crate::verdict::grade::{Cell, Verdict};

/// What the baseline is used for in a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BaselineMode {
    /// Grade without one: exit 0 only if every cell that ran is PASS.
    None,
    /// Compare every cell with the verdicts in this file.
    Compare(std::path::PathBuf),
    /// Write this run's verdicts into this file instead of comparing.
    Update(std::path::PathBuf),
}

/// Whether a baseline table holds command-line cases (`cli/server`,
/// `cli/client`, written by `harness cli`) rather than a scenario's cells.
pub fn is_command_line_table(name: &str) -> bool {
    name.starts_with("cli/")
}

/// One expected cell: the verdict and, for DIFFERS, the differing fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    pub verdict: Verdict,
    pub fields: Vec<String>,
}

impl Expected {
    pub fn of(cell: &Cell) -> Expected {
        Expected {
            verdict: cell.verdict,
            fields: if cell.verdict == Verdict::Differs {
                cell.differing_fields()
            } else {
                Vec::new()
            },
        }
    }

    fn parse(text: &str) -> Option<Expected> {
        let (verdict, fields) = match text.split_once(':') {
            Some((v, f)) => (
                v.trim(),
                f.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect(),
            ),
            None => (text.trim(), Vec::new()),
        };
        Some(Expected {
            verdict: Verdict::parse(verdict)?,
            fields,
        })
    }
}

impl std::fmt::Display for Expected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.verdict.name())?;
        if !self.fields.is_empty() {
            write!(f, ": {}", self.fields.join(", "))?;
        }
        Ok(())
    }
}

/// The whole file: scenario → pairing → expected.
#[derive(Debug, Clone, Default)]
pub struct Baseline {
    pub entries: BTreeMap<String, BTreeMap<String, Expected>>,
}

impl Baseline {
    pub fn load(path: &Path) -> Result<Baseline, DeclarationError> {
        let text = declaration::read(path, "--baseline PATH, or --no-baseline")?;
        Baseline::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<Baseline, DeclarationError> {
        let raw: BTreeMap<String, BTreeMap<String, String>> = declaration::parse_toml(path, text)?;
        let mut entries = BTreeMap::new();
        for (scenario, cells) in raw {
            let mut parsed = BTreeMap::new();
            for (pairing, value) in cells {
                let entry = format!("[{scenario}] \"{pairing}\"");
                if pairing.split(" × ").count() != 2 {
                    return Err(DeclarationError::new(
                        path,
                        entry,
                        "a pairing is written \"SERVER × CLIENT\"",
                    ));
                }
                let expected = Expected::parse(&value).ok_or_else(|| {
                    DeclarationError::new(
                        path,
                        &entry,
                        format!(
                            "'{value}' is not a verdict; write one of {} (DIFFERS may list fields after a colon)",
                            Verdict::names()
                        ),
                    )
                })?;
                parsed.insert(pairing, expected);
            }
            entries.insert(scenario, parsed);
        }
        Ok(Baseline { entries })
    }

    fn get(&self, cell: &Cell) -> Option<&Expected> {
        self.entries
            .get(&cell.id.scenario)?
            .get(&cell.id.baseline_key())
    }

    /// This run's cells written over the old entries; entries of cells that
    /// did not run this time (other scenarios, a narrower selection, a peer
    /// that is not installed here) are kept as they were, and entries of
    /// cells the suite no longer has (not in `known`) are dropped.
    pub fn updated(&self, cells: &[Cell], known: &BTreeSet<PairingId>) -> Baseline {
        let mut next = self.clone();
        let keys = known_keys(known);
        for (scenario, pairings) in &mut next.entries {
            // The command-line tables are `harness cli`'s to update.
            if is_command_line_table(scenario) {
                continue;
            }
            pairings.retain(|key, _| keys.contains(&(scenario.clone(), key.clone())));
        }
        next.entries.retain(|_, pairings| !pairings.is_empty());
        for cell in cells {
            if cell.verdict == Verdict::Unavailable && self.get(cell).is_some() {
                continue;
            }
            next.entries
                .entry(cell.id.scenario.clone())
                .or_default()
                .insert(cell.id.baseline_key(), Expected::of(cell));
        }
        next
    }

    /// The file's text; above each DIFFERS entry, a comment with the
    /// reason of each field, as `reason(table, pairing key, field)` gives
    /// it (the implementation's `known_differences` in the manifest), so
    /// the file says why a difference is accepted
    /// and a reader need not look it up.
    pub fn to_toml(&self, reason: &dyn Fn(&str, &str, &str) -> Option<String>) -> String {
        let mut out = String::from(
            "# The expected verdict of every cell: scenario × server × client.\n\
             # `harness run` compares each run with this file; any change, better or\n\
             # worse, fails the run. After a deliberate change, regenerate it with\n\
             # `make baseline` and commit it with the change. DIFFERS lists the\n\
             # differing fields as SEGMENT.field; see `harness policy`. The cli/\n\
             # tables are the command-line cases' (`harness cli`), CASE × IMPLEMENTATION.\n",
        );
        for (scenario, cells) in &self.entries {
            // A scenario's name is a bare key; `cli/client` must be quoted.
            if scenario
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            {
                let _ = write!(out, "\n[{scenario}]\n");
            } else {
                let _ = write!(out, "\n[\"{scenario}\"]\n");
            }
            for (pairing, expected) in cells {
                for field in &expected.fields {
                    let why = reason(scenario, pairing, field).unwrap_or_else(|| {
                        "no reason declared: add it to known_differences in the manifest".into()
                    });
                    let _ = writeln!(out, "# {field}: {why}");
                }
                let _ = writeln!(out, "\"{pairing}\" = \"{expected}\"");
            }
        }
        out
    }
}

/// A cell whose verdict is not the baseline's.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub struct Change {
    #[serde(flatten)]
    pub id: PairingId,
    /// `None` when the baseline has no entry for the cell.
    pub expected: Option<String>,
    pub actual: String,
}

impl std::fmt::Display for Change {
    /// "hello python server × rust client: expected PASS, got FAIL"
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A command-line cell: "cli/client por-prefix × rust".
        let label = if is_command_line_table(&self.id.scenario) {
            self.id.baseline_key()
        } else {
            self.id.label()
        };
        write!(
            f,
            "{} {}: expected {}, got {}",
            self.id.scenario,
            label,
            self.expected.as_deref().unwrap_or("(no entry)"),
            self.actual
        )
    }
}

/// How a run compares with the baseline.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub struct Comparison {
    pub file: String,
    /// Cells whose verdict is the baseline's.
    pub matched: usize,
    /// Cells whose verdict changed from the baseline's entry.
    pub changes: Vec<Change>,
    /// Cells the baseline has no entry for: a new implementation's, a new
    /// scenario's or case's. Not changes: they conform as a run without a
    /// baseline does, when they PASS.
    #[serde(default)]
    pub new: Vec<Change>,
    /// Cells the baseline expects to run but whose peer is not installed
    /// here: reported, not failed.
    pub unavailable: Vec<String>,
    /// Entries for cells the suite no longer has (a scenario file or an
    /// implementation removed), as `scenario: SERVER × CLIENT`: a failure,
    /// until `--update-baseline` drops them.
    pub stale: Vec<String>,
}

impl Comparison {
    pub fn conforms(&self) -> bool {
        self.changes.is_empty()
            && self.stale.is_empty()
            && self.new.iter().all(|c| c.actual == "PASS")
    }

    /// The cells that need a look: every change, and the new cells that
    /// do not PASS.
    pub fn not_as_expected(&self) -> impl Iterator<Item = &Change> {
        self.changes
            .iter()
            .chain(self.new.iter().filter(|c| c.actual != "PASS"))
    }

    /// Sorts each cell not as expected into `changes` or `new`.
    pub fn add(&mut self, change: Change) {
        if change.expected.is_none() {
            self.new.push(change);
        } else {
            self.changes.push(change);
        }
    }
}

/// `(scenario, baseline key)` of every cell the suite has.
fn known_keys(known: &BTreeSet<PairingId>) -> BTreeSet<(String, String)> {
    known
        .iter()
        .map(|id| (id.scenario.clone(), id.baseline_key()))
        .collect()
}

/// Compares a run's `cells` with `baseline`; `known` is every cell the
/// whole suite has, selected or not, to tell a stale entry from one this
/// run merely did not select.
pub fn compare(
    baseline: &Baseline,
    file: &Path,
    cells: &[Cell],
    known: &BTreeSet<PairingId>,
) -> Comparison {
    let keys = known_keys(known);
    let mut comparison = Comparison {
        file: file.display().to_string(),
        matched: 0,
        changes: Vec::new(),
        new: Vec::new(),
        unavailable: Vec::new(),
        stale: Vec::new(),
    };
    for (scenario, pairings) in &baseline.entries {
        if is_command_line_table(scenario) {
            continue;
        }
        for key in pairings.keys() {
            if !keys.contains(&(scenario.clone(), key.clone())) {
                comparison.stale.push(format!("{scenario}: {key}"));
            }
        }
    }
    for cell in cells {
        let actual = Expected::of(cell);
        let expected = baseline.get(cell);
        if expected == Some(&actual) {
            comparison.matched += 1;
        } else if cell.verdict == Verdict::Unavailable {
            comparison
                .unavailable
                .push(format!("{} {}", cell.id.scenario, cell.id.label()));
        } else {
            comparison.add(Change {
                id: cell.id.clone(),
                expected: expected.map(Expected::to_string),
                actual: actual.to_string(),
            });
        }
    }
    comparison
}

/// The comparison for people. Cells the baseline has no entry for (a new
/// implementation's first run) are not changes: they are counted by
/// verdict, the ones that do not PASS listed, with how to record them.
pub fn render(comparison: &Comparison) -> String {
    let mut out = String::new();
    let changed = comparison.changes.len() + comparison.stale.len();
    if changed == 0 {
        let _ = writeln!(
            out,
            "\nBaseline {}: {}.",
            comparison.file,
            match (comparison.matched, comparison.new.len()) {
                (m, 0) => format!("all {m} cells as expected"),
                (m, _) => format!("{m} cells as expected, none changed"),
            }
        );
    } else {
        let _ = writeln!(
            out,
            "\nBaseline {}: {} cells as expected, {changed} CHANGED:",
            comparison.file, comparison.matched,
        );
        for c in &comparison.changes {
            let _ = writeln!(out, "  {c}");
        }
        for s in &comparison.stale {
            let _ = writeln!(
                out,
                "  {s}: in the baseline, but the suite no longer has this cell"
            );
        }
        let _ = writeln!(
            out,
            "  If the change is intended, regenerate the baseline with `make baseline` and commit it."
        );
    }
    if !comparison.new.is_empty() {
        let mut counts: Vec<(String, usize)> = Vec::new();
        for c in &comparison.new {
            let verdict = c.actual.split(':').next().unwrap_or_default().to_string();
            match counts.iter_mut().find(|(v, _)| *v == verdict) {
                Some((_, n)) => *n += 1,
                None => counts.push((verdict, 1)),
            }
        }
        counts.sort_by_key(|(v, _)| ["PASS", "DIFFERS", "FAIL"].iter().position(|x| x == v));
        let _ = writeln!(
            out,
            "\nNew: {} cells the baseline has no entry for (a new implementation, scenario or case): {}.",
            comparison.new.len(),
            counts
                .iter()
                .map(|(v, n)| format!("{n} {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        const LISTED: usize = 20;
        let not_passing: Vec<&Change> = comparison
            .new
            .iter()
            .filter(|c| c.actual != "PASS")
            .collect();
        for c in not_passing.iter().take(LISTED) {
            let label = if is_command_line_table(&c.id.scenario) {
                c.id.baseline_key()
            } else {
                c.id.label()
            };
            let _ = writeln!(out, "  {} {label}: {}", c.id.scenario, c.actual);
        }
        if not_passing.len() > LISTED {
            let _ = writeln!(
                out,
                "  … and {} more (summary.json lists them all)",
                not_passing.len() - LISTED
            );
        }
        out.push_str(
            "  Record them once their verdicts are right: `make baseline` for this repository's\n  \
             baseline; for a manifest of your own, a baseline of your own beside it:\n  \
             --manifest COPY --baseline COPY-baseline.toml --update-baseline, then\n  \
             --baseline COPY-baseline.toml on each run.\n",
        );
    }
    if !comparison.unavailable.is_empty() {
        let _ = writeln!(
            out,
            "  Not compared, unavailable here ({}): {}",
            comparison.unavailable.len(),
            comparison.unavailable.join("; ")
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(verdict: Verdict, fields: &[&str]) -> Cell {
        Cell {
            differences: fields
                .iter()
                .map(|f| {
                    let (segment, field) = f.split_once('.').unwrap();
                    crate::verdict::signature::Difference {
                        segment: segment.into(),
                        field: crate::policy::Field::parse(field).unwrap(),
                        reference: "a".into(),
                        actual: "b".into(),
                        frame: None,
                        declared: None,
                    }
                })
                .collect(),
            ..Cell::graded(PairingId::new("hello", Some("python"), "nc"), verdict)
        }
    }

    /// The cells of a small suite: hello and hola, python × nc and socat.
    fn known() -> BTreeSet<PairingId> {
        ["hello", "hola"]
            .into_iter()
            .flat_map(|s| {
                ["nc", "socat"]
                    .into_iter()
                    .map(move |c| PairingId::new(s, Some("python"), c))
            })
            .collect()
    }

    const FILE: &str = "[hello]\n\"python × nc\" = \"DIFFERS: conversation.closes first\"\n";

    #[test]
    fn the_same_verdict_and_fields_match() {
        let b = Baseline::parse(Path::new("b.toml"), FILE).unwrap();
        let c = compare(
            &b,
            Path::new("b.toml"),
            &[cell(Verdict::Differs, &["conversation.closes first"])],
            &known(),
        );
        assert!(c.conforms() && c.matched == 1, "{c:?}");
    }

    #[test]
    fn a_change_in_either_direction_is_caught() {
        let b = Baseline::parse(Path::new("b.toml"), FILE).unwrap();
        for changed in [
            cell(Verdict::Pass, &[]),
            cell(Verdict::Fail, &[]),
            cell(
                Verdict::Differs,
                &["conversation.closes first", "SYN.window"],
            ),
        ] {
            let c = compare(&b, Path::new("b.toml"), &[changed], &known());
            assert_eq!(c.changes.len(), 1, "{c:?}");
            assert_eq!(
                c.changes[0].expected.as_deref(),
                Some("DIFFERS: conversation.closes first")
            );
        }
        let unknown = Cell {
            id: PairingId::new("hello", Some("python"), "socat"),
            ..cell(Verdict::Pass, &[])
        };
        // A cell the baseline does not know is new, not a change: it
        // conforms when it PASSes, and not otherwise.
        let c = compare(
            &b,
            Path::new("b.toml"),
            std::slice::from_ref(&unknown),
            &known(),
        );
        assert!(c.changes.is_empty() && c.new.len() == 1, "{c:?}");
        assert_eq!(c.new[0].expected, None);
        assert!(c.conforms());
        assert!(render(&c).contains("New: 1 cells the baseline has no entry for"));
        let failing = Cell {
            verdict: Verdict::Fail,
            ..unknown
        };
        let c = compare(&b, Path::new("b.toml"), &[failing], &known());
        assert!(!c.conforms());
        assert_eq!(c.not_as_expected().count(), 1);
    }

    #[test]
    fn unavailable_is_reported_not_failed() {
        let b = Baseline::parse(Path::new("b.toml"), FILE).unwrap();
        let c = compare(
            &b,
            Path::new("b.toml"),
            &[cell(Verdict::Unavailable, &[])],
            &known(),
        );
        assert!(c.conforms() && c.unavailable.len() == 1, "{c:?}");
    }

    #[test]
    fn update_round_trips_and_keeps_what_did_not_run() {
        let b = Baseline::parse(Path::new("b.toml"), FILE).unwrap();
        let mut other = cell(Verdict::Pass, &[]);
        other.id.scenario = "hola".into();
        let next = b.updated(&[other, cell(Verdict::Unavailable, &[])], &known());
        let again = Baseline::parse(Path::new("b.toml"), &next.to_toml(&|_, _, _| None)).unwrap();
        assert_eq!(
            again.entries["hello"]["python × nc"].verdict,
            Verdict::Differs
        );
        assert_eq!(again.entries["hola"]["python × nc"].verdict, Verdict::Pass);
    }

    /// A scenario file or an implementation removed leaves entries behind:
    /// they fail the comparison until --update-baseline drops them.
    #[test]
    fn an_entry_for_a_cell_the_suite_no_longer_has_fails_until_updated() {
        let text = format!("{FILE}\n[gone]\n\"python × nc\" = \"PASS\"\n");
        let b = Baseline::parse(Path::new("b.toml"), &text).unwrap();
        let cells = [cell(Verdict::Differs, &["conversation.closes first"])];
        let c = compare(&b, Path::new("b.toml"), &cells, &known());
        assert_eq!(c.stale, ["gone: python × nc"]);
        assert!(!c.conforms());
        assert!(render(&c)
            .contains("gone: python × nc: in the baseline, but the suite no longer has this cell"));
        let next = b.updated(&cells, &known());
        assert!(!next.entries.contains_key("gone"), "{:?}", next.entries);
        let c = compare(&next, Path::new("b.toml"), &cells, &known());
        assert!(c.conforms(), "{c:?}");
    }

    #[test]
    fn mistakes_are_named() {
        let e = Baseline::parse(Path::new("b.toml"), "[hello]\n\"python × nc\" = \"OK\"\n")
            .unwrap_err();
        assert!(
            e.to_string().contains("[hello] \"python × nc\"")
                && e.problem.contains("not a verdict"),
            "{e}"
        );
        let e = Baseline::parse(Path::new("b.toml"), "[hello]\n\"python nc\" = \"PASS\"\n")
            .unwrap_err();
        assert!(e.problem.contains("SERVER × CLIENT"), "{e}");
    }
}
