//! A cell's graded verdict: its checks, then its wire against the
//! scenario's reference pairing.

use crate::calls::{CellCalls, Side};
use crate::suite::manifest::Manifest;
use crate::suite::pairing::PairingId;
use crate::suite::plan::{self, PlannedCell, Skip};
use crate::suite::scenario::Scenario;
use crate::verdict::calls;
use crate::verdict::result::PairingResult;
use crate::verdict::signature::{self, Difference};

crate::schema::named_enum! {
    /// A cell's grade, from best to worst; the last two mean "not run".
    ///
    /// Its names (`PASS`, …) live here alone: serde, the baseline file and
    /// every report go through [`Verdict::name`].
    pub enum Verdict ("verdict", "a graded verdict") {
        /// Every check passed and the wire matches the reference.
        Pass => "PASS",
        /// It works, but the wire differs from the reference in the named
        /// fields.
        Differs => "DIFFERS",
        /// A check failed, or the run could not complete.
        Fail => "FAIL",
        /// An implementation does not declare what the scenario needs.
        Unsupported => "UNSUPPORTED",
        /// A program an implementation needs is not installed.
        Unavailable => "UNAVAILABLE",
    }
}

/// A differing field that an implementation declares known, and why.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct KnownDifference {
    /// As the baseline names it: `server.setsockopt`.
    pub field: String,
    /// The implementation that declares it.
    pub implementation: String,
    pub reason: String,
}

/// One graded cell: scenario × server × client.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct Cell {
    #[serde(flatten)]
    pub id: PairingId,
    pub verdict: Verdict,
    /// Why the cell was not run, or could not finish.
    pub reason: Option<String>,
    /// Against the reference pairing of the same scenario.
    pub differences: Vec<Difference>,
    /// Of the differing fields, those an implementation declares as known
    /// and accepted (`known_differences` in the manifest), with why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub known: Vec<KnownDifference>,
    pub display_filter: Option<String>,
    /// Selects this pairing in its scenario's merged pcapng.
    pub merged_filter: Option<String>,
    /// What running it produced; absent for cells that were not run.
    #[serde(flatten)]
    pub run: Option<PairingResult>,
}

impl Cell {
    /// A graded cell with nothing but its name and verdict, for tests of
    /// what is done with verdicts.
    #[cfg(test)]
    pub(crate) fn graded(id: PairingId, verdict: Verdict) -> Cell {
        Cell {
            id,
            verdict,
            reason: None,
            differences: Vec::new(),
            known: Vec::new(),
            display_filter: None,
            merged_filter: None,
            run: None,
        }
    }

    pub fn signature(&self) -> Option<&signature::Signature> {
        self.run.as_ref().and_then(|r| r.signature.as_ref())
    }

    /// The differing fields as `segment.field`, the form the baseline
    /// keeps: each once, in the order they first differ.
    pub fn differing_fields(&self) -> Vec<String> {
        let mut fields: Vec<String> = Vec::new();
        for d in &self.differences {
            let key = d.key();
            if !fields.contains(&key) {
                fields.push(key);
            }
        }
        fields
    }
}

/// Grades every planned cell: skipped cells keep their reason; run cells
/// are checked, then compared with their scenario's reference pairing.
pub fn grade(
    manifest: &Manifest,
    scenarios: &[Scenario],
    planned: &[PlannedCell],
    results: Vec<Option<PairingResult>>,
) -> Vec<Cell> {
    // Each scenario's reference pairing, when it ran and passed its checks:
    // what the scenario's other cells are compared with.
    let reference_result = |scenario: &Scenario| -> Option<&PairingResult> {
        let reference = plan::reference_of(manifest, scenario);
        planned
            .iter()
            .zip(&results)
            .find(|(p, _)| {
                scenarios[p.scenario].name == scenario.name && p.id.is_reference(reference)
            })
            .and_then(|(_, r)| r.as_ref())
            .filter(|r| r.passed_checks())
    };
    let references: Vec<Option<signature::Signature>> = scenarios
        .iter()
        .map(|s| reference_result(s).and_then(|r| r.signature.clone()))
        .collect();
    // The reference programs' socket calls, in scenarios that record them.
    let reference_calls = |scenario: &Scenario| -> Option<CellCalls> {
        reference_result(scenario).map(|r| r.calls.clone())
    };
    let references_calls: Vec<Option<CellCalls>> = scenarios
        .iter()
        .map(|s| s.record_calls.then(|| reference_calls(s)).flatten())
        .collect();
    planned
        .iter()
        .zip(results)
        .map(|(p, result)| {
            let scenario = &scenarios[p.scenario];
            let mut cell = Cell {
                id: p.id.clone(),
                verdict: Verdict::Fail,
                reason: None,
                differences: Vec::new(),
                known: Vec::new(),
                display_filter: None,
                merged_filter: None,
                run: None,
            };
            if let Some((skip, reason)) = &p.skip {
                cell.verdict = match skip {
                    Skip::Unsupported => Verdict::Unsupported,
                    Skip::Unavailable => Verdict::Unavailable,
                };
                cell.reason = Some(reason.clone());
                return cell;
            }
            let Some(result) = result else {
                cell.reason = Some("not run: the matrix was interrupted".into());
                return cell;
            };
            let reference = &references[p.scenario];
            if let (Some(reference), Some(actual)) = (reference, &result.signature) {
                cell.differences = signature::compare(reference, actual, &scenario.ignored);
            }
            if let Some(reference_calls) = &references_calls[p.scenario] {
                for side in Side::BOTH {
                    if let (Some(expected), Some(actual)) =
                        (reference_calls.side(side), result.calls.side(side))
                    {
                        cell.differences.extend(calls::compare(
                            side,
                            &expected.calls,
                            &actual.calls,
                            &scenario.ignored,
                        ));
                    }
                }
            }
            // A declaration may cover single calls by a pattern; each
            // call it covers is named by it (see `Difference::key`).
            for d in &mut cell.differences {
                let implementation = match d.segment.as_str() {
                    "server" => cell.id.server.as_deref(),
                    "client" => Some(cell.id.client.as_str()),
                    _ => None,
                };
                d.declared = implementation
                    .and_then(|name| manifest.get(name))
                    .and_then(|i| i.call_pattern(&d.segment, d.field, d.call_text()));
            }
            cell.known = cell
                .differing_fields()
                .into_iter()
                .filter_map(|field| {
                    let (implementation, reason) = manifest.known_reason(
                        cell.id.server.as_deref(),
                        &cell.id.client,
                        &field,
                    )?;
                    Some(KnownDifference {
                        implementation: implementation.to_string(),
                        reason: reason.to_string(),
                        field,
                    })
                })
                .collect();
            cell.verdict = if !result.passed_checks() {
                cell.reason = result.error.clone().or_else(|| {
                    result
                        .checks
                        .iter()
                        .find(|c| !c.passed)
                        .map(|c| format!("{}: {}", c.name, c.detail))
                });
                Verdict::Fail
            } else if reference.is_none() {
                cell.reason = Some(format!(
                    "the reference pairing {0} × {0} failed, so the wire was not compared",
                    plan::reference_of(manifest, scenario)
                ));
                Verdict::Differs
            } else if cell.differences.is_empty() {
                Verdict::Pass
            } else {
                Verdict::Differs
            };
            cell.display_filter = Some(format!("tcp.port == {}", result.port));
            cell.merged_filter = Some(cell.id.merged_filter());
            cell.run = Some(result);
            cell
        })
        .collect()
}

/// Whether every cell that ran passed: how a run without a baseline is
/// judged (cells that could not run are not counted against it).
pub fn all_conform(cells: &[Cell]) -> bool {
    cells.iter().all(|c| {
        matches!(
            c.verdict,
            Verdict::Pass | Verdict::Unsupported | Verdict::Unavailable
        )
    })
}

#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema, Default)]
pub struct Counts {
    pub pass: usize,
    pub differs: usize,
    pub fail: usize,
    pub unsupported: usize,
    pub unavailable: usize,
}

impl Counts {
    pub fn of(cells: &[Cell]) -> Counts {
        Counts::of_verdicts(cells.iter().map(|c| c.verdict))
    }

    pub fn of_verdicts(verdicts: impl Iterator<Item = Verdict>) -> Counts {
        let mut counts = Counts::default();
        for verdict in verdicts {
            *match verdict {
                Verdict::Pass => &mut counts.pass,
                Verdict::Differs => &mut counts.differs,
                Verdict::Fail => &mut counts.fail,
                Verdict::Unsupported => &mut counts.unsupported,
                Verdict::Unavailable => &mut counts.unavailable,
            } += 1;
        }
        counts
    }
}

impl std::fmt::Display for Counts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} PASS, {} DIFFERS, {} FAIL, {} UNSUPPORTED, {} UNAVAILABLE",
            self.pass, self.differs, self.fail, self.unsupported, self.unavailable
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_serialize_by_their_one_name() {
        for &v in Verdict::ALL {
            let json = serde_json::to_string(&v).unwrap();
            assert_eq!(json, format!("\"{}\"", v.name()));
            assert_eq!(serde_json::from_str::<Verdict>(&json).unwrap(), v);
        }
        assert!(serde_json::from_str::<Verdict>("\"PASSED\"").is_err());
    }
}
