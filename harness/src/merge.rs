//! `harness merge DIR...`: the artifacts of the shards of one run
//! (`harness run --shard K/N` on several machines) combined into one run,
//! as if it had run in one place: one summary.json, one junit.xml, one
//! report.html, a merged pcapng per scenario, one baseline check, one exit
//! code.
//!
//! Every cell is read back from its shard: its verdict, checks and
//! differences from the shard's summary.json (graded where it ran, against
//! the reference that ran beside it), its files copied into the merged
//! artifacts, and its connections rebuilt from its capture for the
//! ladders. Shards of different suites, plans or versions, the same shard
//! twice, and a missing shard are refused, each in one line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::exec::network::{Isolation, Topology};
use crate::run::{self, RunConfig, RunOutcome, ShardRecord, Suite};
use crate::suite::plan::PlannedCell;
use crate::verdict::grade::Cell;

/// One shard's artifacts, read.
struct ShardRun {
    dir: PathBuf,
    record: ShardRecord,
    version: String,
    isolation: Option<Isolation>,
    topology: Option<Topology>,
    cells: Vec<Cell>,
}

fn read_shard(dir: &Path) -> Result<ShardRun, Error> {
    let path = dir.join("summary.json");
    let text = std::fs::read_to_string(&path).map_err(|e| {
        Error::usage(format!(
            "{}: {e}; give the artifacts folders of `harness run --shard K/N` runs",
            path.display()
        ))
    })?;
    let bad = |what: String| Error::usage(format!("{}: {what}", path.display()));
    let mut summary: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| bad(format!("not JSON ({e})")))?;
    if summary["schema"] != crate::report::SUMMARY_SCHEMA {
        return Err(bad(format!(
            "schema {} is not this harness's {}; merge with the harness that ran the shards",
            summary["schema"],
            crate::report::SUMMARY_SCHEMA
        )));
    }
    let record: ShardRecord = serde_json::from_value(summary["shard"].take()).map_err(|_| {
        bad("not the summary of a shard; run each share with `harness run --shard K/N`".into())
    })?;
    let mut cells: Vec<Cell> = serde_json::from_value(summary["cells"].take())
        .map_err(|e| bad(format!("its cells cannot be read ({e})")))?;
    for cell in &mut cells {
        if let Some(run) = &mut cell.run {
            run.id = cell.id.clone();
        }
    }
    Ok(ShardRun {
        dir: dir.to_path_buf(),
        record,
        version: summary["version"].as_str().unwrap_or_default().to_string(),
        isolation: serde_json::from_value(summary["isolation"].take()).ok(),
        topology: serde_json::from_value(summary["topology"].take()).ok(),
        cells,
    })
}

/// Copies a cell's folder from a shard into the merged artifacts.
fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// Merges the shards in `dirs` into `config.artifacts`, compared with
/// `config.baseline`.
pub fn merge(dirs: &[PathBuf], config: RunConfig) -> Result<RunOutcome, Error> {
    if dirs.is_empty() {
        return Err(Error::usage(
            "harness merge needs the artifacts folders of the shards: harness merge DIR...",
        ));
    }
    let shards = dirs
        .iter()
        .map(|d| read_shard(d))
        .collect::<Result<Vec<_>, _>>()?;
    let first = &shards[0];
    for shard in &shards[1..] {
        let differs = |what: &str| {
            Error::usage(format!(
                "{} and {} are shards of different runs ({what} differs); merge the shards of one `harness run --shard K/N`",
                first.dir.display(),
                shard.dir.display()
            ))
        };
        if shard.version != first.version {
            return Err(differs("the harness version"));
        }
        if shard.record.suite != first.record.suite {
            return Err(differs("the suite"));
        }
        if shard.record.count != first.record.count || shard.record.plan != first.record.plan {
            return Err(differs("the plan"));
        }
    }
    let count = first.record.count;
    let mut seen: BTreeMap<usize, &Path> = BTreeMap::new();
    for shard in &shards {
        if let Some(other) = seen.insert(shard.record.index, &shard.dir) {
            return Err(Error::usage(format!(
                "shard {}/{count} is given twice ({} and {}); give each shard once",
                shard.record.index,
                other.display(),
                shard.dir.display()
            )));
        }
    }
    if let Some(missing) = (1..=count).find(|i| !seen.contains_key(i)) {
        return Err(Error::usage(format!(
            "shard {missing}/{count} is missing; give all {count} shards' artifacts folders"
        )));
    }
    let here = run::suite_digest(&config.manifest, &config.scenarios);
    if here != first.record.suite {
        return Err(Error::usage(format!(
            "the shards ran another suite than {} and {}; merge in a checkout of the commit they ran",
            config.manifest.display(),
            config.scenarios.display()
        )));
    }
    let suite = Suite::load(&config.manifest, &config.scenarios)?;
    let baseline = run::load_baseline(&config.baseline)?;
    let artifacts = run::create_artifacts(&config.artifacts)?;

    // Each cell once: a reference pairing ran in every shard that needed
    // it; the lowest shard's copy is kept.
    let mut shards = shards;
    shards.sort_by_key(|s| s.record.index);
    let mut cells: BTreeMap<String, (Cell, PathBuf)> = BTreeMap::new();
    for shard in &shards {
        for cell in &shard.cells {
            cells
                .entry(cell.id.folder())
                .or_insert_with(|| (cell.clone(), shard.dir.clone()));
        }
    }
    let mut merged: Vec<Cell> = Vec::with_capacity(cells.len());
    for (_, (mut cell, from)) in cells {
        if let Some(run) = &mut cell.run {
            copy_dir(&from.join(&run.dir), &artifacts.join(&run.dir)).map_err(|e| {
                Error::usage(format!(
                    "cannot copy {} into {}: {e}",
                    from.join(&run.dir).display(),
                    artifacts.display()
                ))
            })?;
            if let Some(file) = &run.capture_file {
                run.connections =
                    crate::verdict::result::connections_from_file(&artifacts.join(file), run.port);
            }
        }
        merged.push(cell);
    }
    // Plan order: scenarios as the suite lists them, then servers and
    // clients as the manifest does.
    let scenarios: Vec<&str> = suite.scenarios.iter().map(|s| s.name.as_str()).collect();
    let servers: Vec<&str> = suite.manifest.servers().map(|i| i.name.as_str()).collect();
    let clients: Vec<&str> = suite.manifest.clients().map(|i| i.name.as_str()).collect();
    let at = |names: &[&str], name: &str| names.iter().position(|n| *n == name);
    let order = |c: &Cell| {
        (
            at(&scenarios, &c.id.scenario),
            c.id.server.as_deref().and_then(|s| at(&servers, s)),
            at(&clients, &c.id.client),
        )
    };
    merged.sort_by_key(order);
    let planned: Vec<PlannedCell> = merged
        .iter()
        .map(|c| PlannedCell {
            scenario: suite
                .scenarios
                .iter()
                .position(|s| s.name == c.id.scenario)
                .unwrap_or(0),
            id: c.id.clone(),
            skip: None,
        })
        .collect();
    let config = RunConfig {
        artifacts,
        shard: None,
        isolation: shards[0].isolation.unwrap_or(config.isolation),
        topology: shards[0].topology.unwrap_or(config.topology),
        ..config
    };
    run::conclude(suite, config, planned, merged, baseline, false)
}
