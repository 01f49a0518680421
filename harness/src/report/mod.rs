//! What people and machines read: the terminal report ([`terminal`]), the
//! HTML report ([`html`]), JUnit XML ([`junit`]), ladder diagrams
//! ([`ladder`], drawn as SVG by [`svg`]), the socket calls beside the wire
//! ([`timeline`]) and the
//! `inspect`, `diff` and `show` commands ([`inspect`]).

pub(crate) mod cases;
pub(crate) mod escape;
pub(crate) mod html;
pub mod inspect;
pub(crate) mod json;
pub(crate) mod junit;
pub mod ladder;
pub(crate) mod list;
pub(crate) mod svg;
pub(crate) mod terminal;
pub(crate) mod timeline;
pub mod tutorial;

pub use cases::{render as render_cases, write_all as write_cases};
pub use json::Summary;
pub use list::render as render_list;
pub use terminal::{render_policy, render_run};

use std::path::{Path, PathBuf};

use crate::exec::timing::{StageTime, Stopwatch};
use crate::run::RunOutcome;
use crate::verdict::grade::Counts;

/// The version of summary.json's shape (docs/summary-schema.md); bumped
/// when a field is removed or changes meaning (new fields may appear).
pub const SUMMARY_SCHEMA: u32 = 6;

/// The JSON Schema of `summary.json` (draft 2020-12), generated from the
/// types that write it; committed as `docs/summary.schema.json`, which a
/// test keeps equal to this. Its title names [`SUMMARY_SCHEMA`].
pub fn summary_schema() -> String {
    // What is written, not what could be read back: `harness merge` reads
    // summaries too, and skips what it does not need.
    let mut schema = schemars::generate::SchemaSettings::default()
        .for_serialize()
        .into_generator()
        .into_root_schema_for::<json::Summary<'static>>();
    schema.insert(
        "title".into(),
        format!("harness summary.json, schema {SUMMARY_SCHEMA}").into(),
    );
    schema.insert(
        "description".into(),
        "What `harness run` writes to summary.json (and to stdout with --json): the run's counts, baseline comparison and timings, and every cell with its verdict, checks, differences and compared signature. docs/summary-schema.md explains the fields.".into(),
    );
    let mut text = serde_json::to_string_pretty(&schema).expect("a schema serializes");
    text.push('\n');
    text
}

/// Where a run's reports were written.
pub struct Written {
    pub summary: PathBuf,
    pub html: PathBuf,
    pub junit: PathBuf,
    /// The summary as written, for `--json`.
    pub json: String,
    /// Files that could not be written, each as one line.
    pub errors: Vec<String>,
    /// How long each file took to make and write.
    pub timings: Vec<StageTime>,
}

/// Writes summary.json, report.html and junit.xml into the run's artifacts,
/// and points `latest` beside them at this run. A file that cannot be
/// written is listed in `errors`, never a reason to lose the others.
pub fn write_all(outcome: &RunOutcome) -> Written {
    let artifacts = &outcome.config.artifacts;
    let mut watch = Stopwatch::start();
    let summary = json::Summary::of(outcome);
    let json = serde_json::to_string_pretty(&summary)
        .unwrap_or_else(|e| format!("{{\"error\": \"cannot encode the summary: {e}\"}}"));
    let mut errors = Vec::new();
    let mut write = |name: &str, bytes: &[u8]| {
        let path = artifacts.join(name);
        if let Err(e) = std::fs::write(&path, bytes) {
            errors.push(format!("cannot write {}: {e}", path.display()));
        }
        path
    };
    let summary_path = write("summary.json", json.as_bytes());
    let mut timings = vec![watch.lap("summary.json")];
    let references: Vec<String> = outcome
        .suite
        .scenarios
        .iter()
        .map(|s| outcome.reference_of(s).to_string())
        .collect();
    let html = html::render(&html::Run {
        scenarios: &outcome.suite.scenarios,
        cells: &outcome.cells,
        references: &references,
        counts: &Counts::of(&outcome.cells),
        isolation: outcome.config.isolation.describe(),
        comparison: outcome.comparison.as_ref(),
        merged: &outcome.merged,
        artifacts,
    });
    let html_path = write("report.html", html.as_bytes());
    timings.push(watch.lap("report.html"));
    let junit = junit::render(&outcome.cells, outcome.comparison.as_ref());
    let junit_path = write("junit.xml", junit.as_bytes());
    timings.push(watch.lap("junit.xml"));
    point_latest_at(artifacts);
    errors.extend(outcome.merge_errors.iter().cloned());
    Written {
        summary: summary_path,
        html: html_path,
        junit: junit_path,
        json,
        errors,
        timings,
    }
}

/// `latest`, beside the run's folder, made to point at it.
fn point_latest_at(artifacts: &Path) {
    if let Some(parent) = artifacts.parent() {
        let latest = parent.join("latest");
        let _ = std::fs::remove_file(&latest);
        #[cfg(unix)]
        let _ = std::os::unix::fs::symlink(artifacts, &latest);
    }
}
