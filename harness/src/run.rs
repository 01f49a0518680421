//! One whole run: plan the matrix, run it (and its repeats), grade every
//! cell and hold the grades against the baseline. No printing and no
//! report files: those are written from the [`RunOutcome`] by the caller,
//! so a test or another front end can drive a run in-process.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::capture::CaptureConfig;
use crate::error::{Error, EXIT_CHANGED, EXIT_INTERRUPTED, EXIT_OK};
use crate::exec::network::{Isolation, Topology};
use crate::exec::timing::{StageTime, Stopwatch};
use crate::exec::Cancel;
use crate::matrix::cell::{Environment, Timeouts};
use crate::matrix::merged::write_merged;
use crate::matrix::workers::run_matrix;
use crate::suite::manifest::{Locations, Manifest};
use crate::suite::plan::{self, PlannedCell, Selection, Shard};
use crate::suite::scenario::{self, Scenario};
use crate::verdict::baseline::{self, Baseline, Comparison};
use crate::verdict::grade::{self, Cell};
use crate::verdict::repeat::Repeats;
use crate::verdict::result::PairingResult;

pub use crate::verdict::baseline::BaselineMode;

/// Everything a run needs, resolved from the command line: every default
/// is decided before this is built, once.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// The workspace, for `{root}` in commands.
    pub root: PathBuf,
    /// Where the Rust programs are, for `{bin}` in commands.
    pub bin: PathBuf,
    pub manifest: PathBuf,
    pub scenarios: PathBuf,
    pub baseline: BaselineMode,
    /// Where captures and outputs go; created if missing.
    pub artifacts: PathBuf,
    pub jobs: usize,
    pub selection: Selection,
    pub timeouts: Timeouts,
    pub capture: CaptureConfig,
    pub isolation: Isolation,
    pub topology: Topology,
    /// How many times the matrix runs (1: once).
    pub repeat: usize,
    /// Only this share of the plan (`--shard K/N`).
    pub shard: Option<Shard>,
}

/// What a shard's summary records, so `harness merge` can tell shards of
/// one run from shards of different suites or plans.
#[derive(
    Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct ShardRecord {
    /// 1 to `count`.
    pub index: usize,
    pub count: usize,
    /// Digest of the manifest and every scenario file.
    pub suite: String,
    /// Digest of the whole plan (every cell of every shard), in order.
    pub plan: String,
}

/// A digest of the suite's files: the manifest and the scenario files,
/// by name and content.
pub fn suite_digest(manifest: &Path, scenarios: &Path) -> String {
    let mut bytes = std::fs::read(manifest).unwrap_or_default();
    let mut files: Vec<PathBuf> = std::fs::read_dir(scenarios)
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|f| f.extension().is_some_and(|e| e == "toml"));
    files.sort();
    for file in files {
        bytes.extend(
            file.file_name()
                .map_or(Vec::new(), |n| n.as_encoded_bytes().to_vec()),
        );
        bytes.push(0);
        bytes.extend(std::fs::read(&file).unwrap_or_default());
    }
    format!("{:016x}", wire::conversation::digest(&bytes))
}

fn plan_digest(planned: &[PlannedCell]) -> String {
    let ids: Vec<String> = planned.iter().map(|c| c.id.folder()).collect();
    format!(
        "{:016x}",
        wire::conversation::digest(ids.join("\n").as_bytes())
    )
}

/// The suite as loaded from its files.
pub struct Suite {
    pub manifest: Manifest,
    pub scenarios: Vec<Scenario>,
    /// Programs of the manifest that were a version manager's Python shim,
    /// with the interpreter run instead (see [`crate::exec::interpreter`]).
    pub interpreters: BTreeMap<String, PathBuf>,
}

impl Suite {
    pub fn load(manifest: &Path, scenarios: &Path) -> Result<Suite, Error> {
        let mut manifest = Manifest::load(manifest).map_err(|e| Error::usage(e.to_string()))?;
        let interpreters = crate::exec::interpreter::unshim(&mut manifest);
        Ok(Suite {
            manifest,
            scenarios: scenario::load_dir(scenarios).map_err(|e| Error::usage(e.to_string()))?,
            interpreters,
        })
    }
}

/// Told what happens while a run goes on (progress lines, a UI); every
/// method has a default that does nothing.
pub trait Observer: Sync {
    /// The plan is made and the first cell is about to start.
    fn started(&self, _run: &RunStart<'_>) {}
    /// One cell of the first run finished.
    fn cell_done(&self, _result: &PairingResult) {}
    /// The matrix of the first run has finished.
    fn matrix_done(&self) {}
    /// Repeat `run` of `of` finished; `same` when every verdict was run 1's.
    fn repeat_done(&self, _run: usize, _of: usize, _same: bool, _kept: &Path) {}
}

/// An observer that is told nothing.
pub struct Silent;
impl Observer for Silent {}

/// What a run is about to do.
pub struct RunStart<'a> {
    pub cells: usize,
    pub scenarios: usize,
    pub runnable: usize,
    pub workers: usize,
    pub isolation: Isolation,
    pub artifacts: &'a Path,
    /// Without a namespace per cell, a fixed port's TIME_WAIT can leak
    /// from one cell into the next.
    pub shared_fixed_ports: bool,
    /// Python shims run as the interpreter behind them.
    pub interpreters: &'a BTreeMap<String, PathBuf>,
}

/// Everything a run found, for the reports.
pub struct RunOutcome {
    pub suite: Suite,
    pub config: RunConfig,
    pub planned: Vec<PlannedCell>,
    pub cells: Vec<Cell>,
    /// Per scenario, its merged pcapng relative to the artifacts.
    pub merged: BTreeMap<String, String>,
    /// Merged captures that could not be written.
    pub merge_errors: Vec<String>,
    pub comparison: Option<Comparison>,
    /// Where the baseline was written, with `BaselineMode::Update`.
    pub baseline_written: Option<PathBuf>,
    pub repeats: Repeats,
    pub interrupted: bool,
    /// The signal that interrupted the run (SIGINT, SIGTERM), if one did.
    pub signal: Option<i32>,
    /// The run's own stages (each cell has its own in its result).
    pub timings: Vec<StageTime>,
    /// This run's share of a sharded plan, if it is one.
    pub shard: Option<ShardRecord>,
}

impl RunOutcome {
    /// The exit code the run ends with (the README's contract).
    pub fn exit_code(&self) -> u8 {
        if self.interrupted {
            // 130 for SIGINT, 143 for SIGTERM: 128 + the signal.
            return self
                .signal
                .and_then(|s| u8::try_from(128 + s).ok())
                .unwrap_or(EXIT_INTERRUPTED);
        }
        let conforms = if !self.repeats.flaky().is_empty() {
            false
        } else if let Some(c) = &self.comparison {
            c.conforms()
        } else if self.baseline_written.is_some() {
            true
        } else {
            grade::all_conform(&self.cells)
        };
        if conforms {
            EXIT_OK
        } else {
            EXIT_CHANGED
        }
    }

    /// The reference implementation of scenario `index`.
    pub fn reference_of<'a>(&'a self, scenario: &'a Scenario) -> &'a str {
        plan::reference_of(&self.suite.manifest, scenario)
    }

    /// The graded cells of one scenario, in plan order.
    pub fn cells_of(&self, scenario: usize) -> Vec<&Cell> {
        self.planned
            .iter()
            .zip(&self.cells)
            .filter(|(p, _)| p.scenario == scenario)
            .map(|(_, c)| c)
            .collect()
    }
}

/// Creates the artifacts folder and makes sure a file can be written in
/// it, before any cell runs: a folder that exists but cannot be written
/// (`/sys/kernel`, a read-only mount) is an environment error, exit 2,
/// not a matrix of failed cells. Its absolute path, which the reports
/// print and every relative path in them starts from.
pub fn create_artifacts(dir: &Path) -> Result<PathBuf, Error> {
    std::fs::create_dir_all(dir).map_err(|e| {
        Error::usage(format!(
            "cannot create the artifacts directory {}: {e}; {}",
            dir.display(),
            remedy(&e)
        ))
    })?;
    let probe = dir.join(format!(".harness-write-probe-{}", std::process::id()));
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&probe)
        .map_err(|e| {
            Error::usage(format!(
                "cannot write into the artifacts directory {}: {e}; {}",
                dir.display(),
                remedy(&e)
            ))
        })?;
    let _ = std::fs::remove_file(&probe);
    Ok(dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf()))
}

/// What to do about a file that could not be written: free space when the
/// disk is full, another folder otherwise.
pub fn remedy(e: &std::io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(libc::ENOSPC) | Some(libc::EDQUOT) => "free some space or pass --artifacts DIR",
        _ => "pass --artifacts DIR with a folder you can write",
    }
}

/// The baseline `mode` names, read before anything runs.
pub fn load_baseline(mode: &BaselineMode) -> Result<Option<Baseline>, Error> {
    Ok(match mode {
        BaselineMode::Compare(path) | BaselineMode::Update(path) if path.is_file() => {
            Some(Baseline::load(path).map_err(|e| Error::usage(e.to_string()))?)
        }
        BaselineMode::Compare(path) => {
            return Err(Error::usage(format!(
                "cannot read the baseline {}: no such file; create it with --update-baseline, or pass --no-baseline",
                path.display()
            )))
        }
        BaselineMode::Update(_) => Some(Baseline::default()),
        BaselineMode::None => None,
    })
}

/// Runs the suite as `config` says.
pub fn run(
    config: RunConfig,
    cancel: &Cancel,
    observer: &dyn Observer,
) -> Result<RunOutcome, Error> {
    let suite = Suite::load(&config.manifest, &config.scenarios)?;
    let baseline = load_baseline(&config.baseline)?;
    let locations = Locations {
        root: &config.root,
        bin: &config.bin,
        manifest_dir: suite.manifest.path.parent().unwrap_or(Path::new(".")),
    };
    let mut planned = plan::plan(
        &suite.manifest,
        &suite.scenarios,
        &config.selection,
        &locations,
    )?;
    let shard = config.shard.map(|shard| {
        let record = ShardRecord {
            index: shard.index,
            count: shard.count,
            suite: suite_digest(&config.manifest, &config.scenarios),
            plan: plan_digest(&planned),
        };
        let references: Vec<&str> = suite
            .scenarios
            .iter()
            .map(|s| plan::reference_of(&suite.manifest, s))
            .collect();
        planned = shard.take(std::mem::take(&mut planned), &references);
        record
    });
    let runnable = planned.iter().filter(|c| c.skip.is_none()).count();

    let artifacts = create_artifacts(&config.artifacts)?;

    let env = Environment {
        root: config.root.clone(),
        bin: config.bin.clone(),
        isolation: config.isolation,
        topology: config.topology,
        capture: config.capture.clone(),
        timeouts: config.timeouts,
        cancel: cancel.clone(),
    };
    observer.started(&RunStart {
        cells: planned.len(),
        scenarios: planned
            .iter()
            .map(|p| p.scenario)
            .collect::<BTreeSet<_>>()
            .len(),
        runnable,
        workers: config.jobs.min(runnable.max(1)),
        isolation: config.isolation,
        artifacts: &artifacts,
        shared_fixed_ports: !config.isolation.per_cell_namespace()
            && suite.scenarios.iter().any(|s| s.port.is_some()),
        interpreters: &suite.interpreters,
    });
    let run_once = |dir: &Path, on_done: &(dyn Fn(&PairingResult) + Sync)| {
        run_matrix(
            &env,
            &suite.manifest,
            &suite.scenarios,
            &planned,
            dir,
            config.jobs,
            on_done,
        )
        .map_err(|e| Error::usage(e.to_string()))
    };
    let results = run_once(&artifacts, &|r| observer.cell_done(r))?;
    observer.matrix_done();

    let cells = grade::grade(&suite.manifest, &suite.scenarios, &planned, results);

    // Further repeats, into artifacts/repeats/NNN; a repeat whose verdicts
    // are all the first run's is deleted, one that differs is kept.
    let mut repeats = Repeats::default();
    repeats.record(1, &cells);
    for run in 2..=config.repeat {
        if cancel.is_cancelled() {
            break;
        }
        let dir = artifacts.join("repeats").join(format!("{run:03}"));
        let results = run_once(&dir, &|_| {})?;
        let again = grade::grade(&suite.manifest, &suite.scenarios, &planned, results);
        let same = repeats.record(run, &again);
        if same {
            let _ = std::fs::remove_dir_all(&dir);
        }
        observer.repeat_done(run, config.repeat, same, &dir);
    }
    let _ = std::fs::remove_dir(artifacts.join("repeats"));

    let interrupted = cancel.is_cancelled();
    let config = RunConfig {
        artifacts,
        ..config
    };
    let mut outcome = conclude(suite, config, planned, cells, baseline, interrupted)?;
    outcome.repeats = repeats;
    outcome.signal = cancel.signal();
    outcome.shard = shard;
    Ok(outcome)
}

/// What every run ends with, whether its cells ran here or were merged
/// from shards: the merged pcapng of each scenario (written from the
/// cells' own capture files), then the baseline compared, or updated.
pub fn conclude(
    suite: Suite,
    config: RunConfig,
    planned: Vec<PlannedCell>,
    cells: Vec<Cell>,
    baseline: Option<Baseline>,
    interrupted: bool,
) -> Result<RunOutcome, Error> {
    let artifacts = &config.artifacts;
    let mut merged = BTreeMap::new();
    let mut merge_errors = Vec::new();
    let mut watch = Stopwatch::start();
    for scenario in &suite.scenarios {
        let ran: Vec<&PairingResult> = cells
            .iter()
            .filter(|c| c.id.scenario == scenario.name)
            .filter_map(|c| c.run.as_ref())
            .collect();
        if ran.is_empty() {
            continue;
        }
        match write_merged(&scenario.name, &ran, artifacts) {
            Ok(file) => {
                merged.insert(scenario.name.clone(), file);
            }
            Err(e) => merge_errors.push(format!(
                "cannot write the merged capture of {}: {e}",
                scenario.name
            )),
        }
    }
    let timings = vec![watch.lap("merged pcapng, every scenario")];
    let mut comparison = None;
    let mut baseline_written = None;
    let known = plan::all_pairings(&suite.manifest, &suite.scenarios);
    match (&config.baseline, baseline) {
        (BaselineMode::Update(path), Some(baseline)) => {
            if interrupted {
                return Err(Error::interrupted(
                    "interrupted: the baseline was not updated",
                ));
            }
            let reason = |table: &str, pairing: &str, field: &str| {
                crate::cmdline::baseline_reason(&suite.manifest, table, pairing, field)
            };
            let text = baseline.updated(&cells, &known).to_toml(&reason);
            std::fs::write(path, text).map_err(|e| {
                Error::usage(format!("cannot write the baseline {}: {e}", path.display()))
            })?;
            baseline_written = Some(path.clone());
        }
        (BaselineMode::Compare(path), Some(baseline)) => {
            comparison = Some(baseline::compare(&baseline, path, &cells, &known));
        }
        _ => {}
    }
    let mut repeats = Repeats::default();
    repeats.record(1, &cells);
    Ok(RunOutcome {
        suite,
        config,
        planned,
        cells,
        merged,
        merge_errors,
        comparison,
        baseline_written,
        repeats,
        interrupted,
        signal: None,
        timings,
        shard: None,
    })
}
