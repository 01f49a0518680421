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
pub mod model;
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
pub use model::{Reporter, RunView};

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

/// Every report written into a run's artifacts, in the order written: a
/// new format is a [`Reporter`] in a file of its own, and a line here.
pub const REPORTERS: [&dyn Reporter; 3] = [&json::Json, &html::Html, &junit::Junit];

/// Writes every report of [`REPORTERS`] (summary.json, report.html,
/// junit.xml) into the run's artifacts, and points `latest` beside them at
/// this run. A file that cannot be written is listed in `errors`, never a
/// reason to lose the others.
pub fn write_all(run: &RunView<'_>) -> Written {
    let artifacts = &run.outcome.config.artifacts;
    let mut watch = Stopwatch::start();
    let mut errors = Vec::new();
    let mut timings = Vec::new();
    let mut json = String::new();
    for reporter in REPORTERS {
        let text = reporter.render(run);
        let path = artifacts.join(reporter.file_name());
        if let Err(e) = std::fs::write(&path, text.as_bytes()) {
            errors.push(format!("cannot write {}: {e}", path.display()));
        }
        timings.push(watch.lap(reporter.file_name()));
        if reporter.file_name() == "summary.json" {
            json = text;
        }
    }
    point_latest_at(artifacts);
    errors.extend(run.outcome.merge_errors.iter().cloned());
    Written {
        summary: artifacts.join("summary.json"),
        html: artifacts.join("report.html"),
        junit: artifacts.join("junit.xml"),
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
