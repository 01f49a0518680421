//! The JSON summary for machines: `summary.json`, its shape documented in
//! docs/summary-schema.md.

use std::collections::BTreeMap;

use crate::exec::network::{Isolation, Topology};
use crate::exec::timing::StageTime;
use crate::run::{RunOutcome, ShardRecord};
use crate::verdict::baseline::Comparison;
use crate::verdict::grade::{Cell, Counts};
use crate::verdict::repeat::RepeatSummary;

/// The JSON summary written next to the artifacts (schema in the README).
#[derive(serde::Serialize, schemars::JsonSchema)]
pub struct Summary<'a> {
    pub schema: u32,
    /// The harness's version: `harness merge` combines only shards of one.
    pub version: &'a str,
    /// Set when this run is one shard of a plan (`--shard K/N`).
    pub shard: Option<&'a ShardRecord>,
    pub reference: &'a str,
    /// How cells were kept apart.
    pub isolation: Isolation,
    /// How client and server were connected.
    pub topology: Topology,
    pub artifacts: String,
    pub exit_code: u8,
    pub counts: Counts,
    /// The comparison with the baseline file, when one was used.
    pub baseline: Option<&'a Comparison>,
    /// With --repeat: how many runs, and the cells whose verdict changed.
    pub repeats: Option<RepeatSummary>,
    /// Per scenario, the pcapng holding every pairing (relative to
    /// `artifacts`); a cell's `merged_filter` selects it there.
    pub merged: &'a BTreeMap<String, String>,
    /// The run's own stages (merging captures); each cell's are in its
    /// `timings`.
    pub timings: &'a [StageTime],
    pub cells: &'a [Cell],
}

impl<'a> Summary<'a> {
    pub fn of(outcome: &'a RunOutcome) -> Summary<'a> {
        Summary {
            schema: super::SUMMARY_SCHEMA,
            version: env!("CARGO_PKG_VERSION"),
            shard: outcome.shard.as_ref(),
            reference: &outcome.suite.manifest.reference,
            isolation: outcome.config.isolation,
            topology: outcome.config.topology,
            artifacts: outcome.config.artifacts.display().to_string(),
            exit_code: outcome.exit_code(),
            counts: Counts::of(&outcome.cells),
            baseline: outcome.comparison.as_ref(),
            repeats: (outcome.config.repeat > 1).then(|| outcome.repeats.summary()),
            merged: &outcome.merged,
            timings: &outcome.timings,
            cells: &outcome.cells,
        }
    }
}

/// `summary.json`: the run for machines (schema in docs/summary-schema.md).
pub struct Json;

impl crate::report::model::Reporter for Json {
    fn file_name(&self) -> &'static str {
        "summary.json"
    }

    fn render(&self, run: &crate::report::model::RunView<'_>) -> String {
        serde_json::to_string_pretty(&Summary::of(run.outcome))
            .unwrap_or_else(|e| format!("{{\"error\": \"cannot encode the summary: {e}\"}}"))
    }
}
