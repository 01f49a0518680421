//! The command-line level: each case of `tests/cli/` run with the
//! reference program and with every implementation that declares the
//! reference's command line (`command_line` in the manifest), and graded
//! as the wire's cells are: PASS when it answers as the reference does,
//! DIFFERS when it differs as the case declares on purpose, FAIL
//! otherwise; then checked against the baseline (tables `cli/server`,
//! `cli/client`).
//!
//! Compared: the exit status (or the signal that ended the program),
//! stdout, stderr with the program's own name written `PROG`, and for a
//! client the bytes the harness's peer received from it.

pub mod cases;
pub mod runner;

use std::path::Path;

use crate::error::{Error, EXIT_CHANGED, EXIT_OK};
use crate::suite::manifest::{self, Manifest, Substitutions};
use crate::verdict::baseline::{self, Baseline, Expected};
use crate::verdict::grade::Verdict;
use cases::{CaseFile, Role};
use runner::{Fixtures, Limits, Outcome, Program};

/// One graded cell: a case × an implementation.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub struct CaseCell {
    /// `server` or `client`: which program the case is for.
    pub role: String,
    pub case: String,
    pub why: String,
    pub implementation: String,
    pub verdict: Verdict,
    /// Which of `exit`, `stdout`, `stderr`, `received` differ from the
    /// reference.
    pub differing: Vec<String>,
    /// Why it is FAIL or DIFFERS.
    pub reason: Option<String>,
    pub outcome: Outcome,
    /// The reference program's outcome (absent in its own cells).
    pub reference: Option<Outcome>,
}

impl CaseCell {
    /// The baseline's table for this cell's role.
    pub fn table(&self) -> String {
        format!("cli/{}", self.role)
    }

    /// The baseline's key: `CASE × IMPLEMENTATION`.
    pub fn key(&self) -> String {
        format!("{} × {}", self.case, self.implementation)
    }

    pub fn expected(&self) -> Expected {
        Expected {
            verdict: self.verdict,
            fields: if self.verdict == Verdict::Differs {
                self.differing.clone()
            } else {
                Vec::new()
            },
        }
    }
}

/// Which fields of two outcomes differ, by name.
fn differing(reference: &Outcome, actual: &Outcome) -> Vec<String> {
    let mut out = Vec::new();
    if reference.status != actual.status {
        out.push("exit".to_string());
    }
    if reference.stdout != actual.stdout {
        out.push("stdout".to_string());
    }
    if reference.stderr != actual.stderr {
        out.push("stderr".to_string());
    }
    if reference.received != actual.received {
        out.push("received".to_string());
    }
    out
}

/// The verdict of `actual` against the reference's outcome for `case`.
/// A case that could not be run as written (its moment never came, a
/// program outlived the wait) fails, whatever both did.
/// `known` is the implementation's declaration for this case (its
/// manifest entry's `known_differences."cli.ROLE.CASE"`), if any.
pub fn grade(
    known: Option<&str>,
    reference: &Outcome,
    actual: &Outcome,
) -> (Verdict, Vec<String>, Option<String>) {
    let fields = differing(reference, actual);
    if let Some(problem) = &actual.problem {
        return (Verdict::Fail, fields, Some(problem.clone()));
    }
    if let Some(problem) = &reference.problem {
        return (
            Verdict::Fail,
            fields,
            Some(format!(
                "the reference could not be run as the case says: {problem}"
            )),
        );
    }
    match (known, fields.is_empty()) {
        (None, true) => (Verdict::Pass, fields, None),
        (None, false) => {
            let reason = format!("differs from the reference in {}", fields.join(", "));
            (Verdict::Fail, fields, Some(reason))
        }
        (Some(known), true) => (
            Verdict::Fail,
            fields,
            Some(format!(
                "the known difference is gone (\"{known}\"): remove its entry from this implementation's known_differences in the manifest"
            )),
        ),
        (Some(known), false) if fields.iter().any(|f| f == "exit") => (
            Verdict::Fail,
            fields,
            Some(format!(
                "a known difference must keep the exit status, and this one does not (\"{known}\")"
            )),
        ),
        (Some(known), false) => (Verdict::Differs, fields, Some(known.to_string())),
    }
}

/// The programs that take part for `role`: the reference first, then every
/// other implementation that declares the reference's command line and
/// whose name matches `selected` (all when empty).
pub fn programs(
    manifest: &Manifest,
    role: Role,
    root: &Path,
    bin: &Path,
    selected: &[glob::Pattern],
) -> Vec<Program> {
    let manifest_dir = manifest.path.parent().unwrap_or(Path::new("."));
    let subs = Substitutions {
        root,
        bin,
        manifest_dir,
        host: "127.0.0.1",
        port: 0,
        message_file: Path::new(""),
    };
    let mut out: Vec<Program> = manifest
        .implementations
        .iter()
        .filter_map(|i| {
            let (template, prog) = match role {
                Role::Server => (i.command_line.server.as_ref(), &i.command_line.server_prog),
                Role::Client => (i.command_line.client.as_ref(), &i.command_line.client_prog),
            };
            let template = template?;
            let chosen = i.name == manifest.reference
                || selected.is_empty()
                || selected.iter().any(|g| g.matches(&i.name));
            chosen.then(|| Program {
                implementation: i.name.clone(),
                argv: manifest::expand(template, &subs),
                prog: prog.clone(),
            })
        })
        .collect();
    out.sort_by_key(|p| p.implementation != manifest.reference);
    out
}

/// Runs every case of `files` with every program, the reference first,
/// and grades each; `progress` is told each cell as it is graded.
pub fn run_all(
    manifest: &Manifest,
    files: &[CaseFile],
    programs_of: &dyn Fn(Role) -> Vec<Program>,
    cases: &[glob::Pattern],
    fixtures: &Fixtures,
    limits: Limits,
    progress: &dyn Fn(&CaseCell),
) -> Result<Vec<CaseCell>, String> {
    let mut cells = Vec::new();
    for file in files {
        let programs = programs_of(file.role);
        let Some(reference) = programs
            .first()
            .filter(|p| p.implementation == manifest.reference)
        else {
            return Err(format!(
                "the reference implementation '{}' declares no command_line.{} in {}; the cases of {} have nothing to be compared with",
                manifest.reference,
                file.role.name(),
                manifest.path.display(),
                file.path.display()
            ));
        };
        for case in &file.cases {
            if !cases.is_empty() && !cases.iter().any(|g| g.matches(&case.name)) {
                continue;
            }
            let expected = runner::run(reference, file.role, case, fixtures, limits);
            for program in &programs {
                let is_reference = program.implementation == reference.implementation;
                let outcome = if is_reference {
                    expected.clone()
                } else {
                    runner::run(program, file.role, case, fixtures, limits)
                };
                let (verdict, differing, reason) = if is_reference {
                    match &outcome.problem {
                        Some(problem) => (Verdict::Fail, Vec::new(), Some(problem.clone())),
                        None => (Verdict::Pass, Vec::new(), None),
                    }
                } else {
                    let known = manifest
                        .get(&program.implementation)
                        .and_then(|i| i.known_cli(file.role.name(), &case.name));
                    grade(known, &expected, &outcome)
                };
                let cell = CaseCell {
                    role: file.role.name().to_string(),
                    case: case.name.clone(),
                    why: case.why.clone(),
                    implementation: program.implementation.clone(),
                    verdict,
                    differing,
                    reason,
                    outcome,
                    reference: (!is_reference).then(|| expected.clone()),
                };
                progress(&cell);
                cells.push(cell);
            }
        }
    }
    Ok(cells)
}

/// The run's cells against the baseline's `cli/…` tables: each cell not
/// as expected is a change; entries of cases or implementations no longer
/// in the suite are stale (only where every case and implementation ran).
pub fn compare(
    baseline: &Baseline,
    file: &Path,
    cells: &[CaseCell],
    complete: bool,
) -> baseline::Comparison {
    let mut comparison = baseline::Comparison {
        file: file.display().to_string(),
        matched: 0,
        changes: Vec::new(),
        new: Vec::new(),
        unavailable: Vec::new(),
        stale: Vec::new(),
    };
    for cell in cells {
        let expected = baseline
            .entries
            .get(&cell.table())
            .and_then(|t| t.get(&cell.key()));
        let actual = cell.expected();
        if expected == Some(&actual) {
            comparison.matched += 1;
        } else {
            comparison.add(baseline::Change {
                id: crate::suite::pairing::PairingId::new(
                    &cell.table(),
                    Some(&cell.case),
                    &cell.implementation,
                ),
                expected: expected.map(Expected::to_string),
                actual: actual.to_string(),
            });
        }
    }
    if complete {
        for (table, entries) in &baseline.entries {
            if !baseline::is_command_line_table(table) {
                continue;
            }
            for key in entries.keys() {
                if !cells.iter().any(|c| &c.table() == table && &c.key() == key) {
                    comparison.stale.push(format!("{table}: {key}"));
                }
            }
        }
    }
    comparison
}

/// Why the cell `pairing` (`CASE × IMPLEMENTATION`) of the baseline's
/// `table` (`cli/client`) is accepted to differ: the implementation's
/// declaration in the manifest.
pub fn known_reason(manifest: &Manifest, table: &str, pairing: &str) -> Option<String> {
    let role = table.strip_prefix("cli/")?;
    let (case, implementation) = pairing.split_once(" × ")?;
    manifest
        .get(implementation)?
        .known_cli(role, case)
        .map(|why| format!("{why} ({implementation})"))
}

/// Why an entry of the baseline is accepted to differ, for the comment
/// `to_toml` writes above it: the implementation's `known_differences` in
/// the manifest (`cli.ROLE.CASE` for a command-line cell, a wire or call
/// field otherwise), with who declares it.
/// Both `harness run` and `harness cli` rewrite the whole file, so both
/// give every reason.
pub fn baseline_reason(
    manifest: &Manifest,
    table: &str,
    pairing: &str,
    field: &str,
) -> Option<String> {
    if baseline::is_command_line_table(table) {
        return known_reason(manifest, table, pairing);
    }
    let (server, client) = pairing.split_once(" × ")?;
    let server = (server != crate::suite::pairing::NO_SERVER).then_some(server);
    manifest
        .known_reason(server, client, field)
        .map(|(name, why)| format!("{why} ({name})"))
}

/// The baseline with its `cli/…` tables replaced by `cells`' verdicts.
pub fn updated(baseline: &Baseline, cells: &[CaseCell]) -> Baseline {
    let mut next = baseline.clone();
    next.entries
        .retain(|table, _| !baseline::is_command_line_table(table));
    for cell in cells {
        next.entries
            .entry(cell.table())
            .or_default()
            .insert(cell.key(), cell.expected());
    }
    next
}

/// Where `harness cli` finds everything, resolved from its command line.
#[derive(Debug, Clone)]
pub struct Config {
    pub root: std::path::PathBuf,
    pub bin: std::path::PathBuf,
    pub manifest: std::path::PathBuf,
    /// The case files' folder (`tests/cli`).
    pub cases: std::path::PathBuf,
    /// Where the reports are written.
    pub artifacts: std::path::PathBuf,
    pub baseline: baseline::BaselineMode,
    /// Globs of the implementations to try (the reference always runs).
    pub implementations: Vec<String>,
    /// Globs of the cases to run.
    pub only: Vec<String>,
    pub limits: Limits,
}

/// What `harness cli` did: every cell, the baseline's verdict on them, and
/// the exit code.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub struct CasesOutcome {
    pub cells: Vec<CaseCell>,
    pub counts: crate::verdict::grade::Counts,
    pub baseline: Option<baseline::Comparison>,
    /// Where `--update-baseline` wrote the verdicts.
    pub baseline_written: Option<String>,
    pub exit_code: u8,
}

fn compile(flag: &str, globs: &[String]) -> Result<Vec<glob::Pattern>, Error> {
    globs
        .iter()
        .map(|g| {
            glob::Pattern::new(g)
                .map_err(|e| Error::usage(format!("--{flag} '{g}' is not a valid glob: {e}")))
        })
        .collect()
}

/// `harness cli`: loads the manifest and the case files (a mistake in
/// either is one line, exit 2), runs every case, grades it and checks or
/// updates the baseline.
pub fn run_command(config: &Config, progress: &dyn Fn(&CaseCell)) -> Result<CasesOutcome, Error> {
    let mut manifest = Manifest::load(&config.manifest).map_err(|e| Error::usage(e.to_string()))?;
    // A Python shim's start-up is most of a command-line case's time.
    crate::exec::interpreter::unshim(&mut manifest);
    let files = CaseFile::load_dir(&config.cases).map_err(|e| Error::usage(e.to_string()))?;
    let implementations = compile("implementation", &config.implementations)?;
    let only = compile("case", &config.only)?;
    let baseline_file = match &config.baseline {
        baseline::BaselineMode::None => None,
        baseline::BaselineMode::Compare(path) => {
            Some(Baseline::load(path).map_err(|e| Error::usage(e.to_string()))?)
        }
        baseline::BaselineMode::Update(path) if path.exists() => {
            Some(Baseline::load(path).map_err(|e| Error::usage(e.to_string()))?)
        }
        baseline::BaselineMode::Update(_) => Some(Baseline::default()),
    };
    let fixtures = Fixtures::new(&config.root)
        .map_err(|e| Error::usage(format!("cannot set up the cases' peers and files: {e}")))?;
    let programs_of = |role| programs(&manifest, role, &config.root, &config.bin, &implementations);
    let cells = run_all(
        &manifest,
        &files,
        &programs_of,
        &only,
        &fixtures,
        config.limits,
        progress,
    )
    .map_err(Error::usage)?;
    let counts = crate::verdict::grade::Counts::of_verdicts(cells.iter().map(|c| c.verdict));
    let complete = implementations.is_empty() && only.is_empty();
    let mut outcome = CasesOutcome {
        exit_code: EXIT_OK,
        counts,
        baseline: None,
        baseline_written: None,
        cells,
    };
    match (&config.baseline, baseline_file) {
        (baseline::BaselineMode::Update(path), Some(old)) => {
            let next = updated(&old, &outcome.cells);
            let text = next.to_toml(&|table, pairing, field| {
                baseline_reason(&manifest, table, pairing, field)
            });
            std::fs::write(path, text).map_err(|e| {
                Error::usage(format!("cannot write the baseline {}: {e}", path.display()))
            })?;
            outcome.baseline_written = Some(path.display().to_string());
        }
        (baseline::BaselineMode::Compare(path), Some(file)) => {
            let comparison = compare(&file, path, &outcome.cells, complete);
            if !comparison.conforms() {
                outcome.exit_code = EXIT_CHANGED;
            }
            outcome.baseline = Some(comparison);
        }
        _ => {
            if outcome.cells.iter().any(|c| c.verdict == Verdict::Fail) {
                outcome.exit_code = EXIT_CHANGED;
            }
        }
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(status: &str, stdout: &str) -> Outcome {
        Outcome {
            status: status.into(),
            stdout: stdout.into(),
            stderr: String::new(),
            received: String::new(),
            problem: None,
        }
    }

    #[test]
    fn every_verdict_is_reachable_and_says_why() {
        let reference = outcome("exit 130", "a");
        assert_eq!(grade(None, &reference, &reference).0, Verdict::Pass);
        let (v, fields, reason) = grade(None, &reference, &outcome("killed by SIGINT", "a"));
        assert_eq!((v, fields), (Verdict::Fail, vec!["exit".to_string()]));
        assert!(reason.unwrap().contains("exit"));
        let (v, fields, _) = grade(Some("on purpose"), &reference, &outcome("exit 130", "b"));
        assert_eq!((v, fields), (Verdict::Differs, vec!["stdout".to_string()]));
        // A known difference that went away is noticed.
        let (v, _, reason) = grade(Some("on purpose"), &reference, &reference);
        assert_eq!(v, Verdict::Fail);
        assert!(reason.unwrap().contains("gone"));
        // And one may not change the exit status.
        let (v, _, _) = grade(Some("on purpose"), &reference, &outcome("exit 1", "b"));
        assert_eq!(v, Verdict::Fail);
        // What the peer received is compared too.
        let sent_other = Outcome {
            received: "4 bytes \"caf?\"".into(),
            ..reference.clone()
        };
        let (v, fields, _) = grade(None, &reference, &sent_other);
        assert_eq!((v, fields), (Verdict::Fail, vec!["received".to_string()]));
        // A case that could not be run fails, even when both "agree".
        let stuck = Outcome {
            problem: Some("the moment never came".into()),
            ..reference.clone()
        };
        let (v, _, reason) = grade(None, &stuck, &stuck);
        assert_eq!(v, Verdict::Fail);
        assert!(reason.unwrap().contains("moment never came"));
    }
}
