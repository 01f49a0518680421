//! The matrix on worker threads: each worker claims cells from one queue
//! and (with network namespaces) runs them in a namespace and under a
//! capture it keeps while the cells leave nothing behind ([`Pool`]).

use std::collections::BTreeSet;
use std::path::Path;
use std::rc::Rc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::capture::{CaptureConfig, CaptureError, LiveCapture};
use crate::exec::network::{self, Topology};
use crate::exec::port_lock;
use crate::exec::sockets;
use crate::exec::timing::{StageTime, Stopwatch};
use crate::suite::manifest::Manifest;
use crate::suite::plan::PlannedCell;
use crate::suite::scenario::Scenario;
use crate::verdict::result::PairingResult;

use super::cell::{
    capture_config, capture_filter, run_pairing, write_scenario_message, CaptureSource,
    CellNetwork, CellToRun, Environment, Finishing,
};

/// How long a pairing waits for another run to free a fixed port.
const PORT_LOCK_TIMEOUT: Duration = Duration::from_secs(120);

/// A worker's network namespace and capture, kept from cell to cell.
///
/// Making a namespace per cell cost about 0.8 ms of the harness's CPU and
/// opening a packet socket about as much again (its ring allocated and
/// mapped, its filter compiled; closing it waits for an RCU grace period),
/// and the kernel tore each namespace down afterwards on a worker of its
/// own. A cell of the tutorial costs the programs a few tens of
/// milliseconds, so that was a tenth of the harness's own cost.
///
/// A namespace is used again only when the cell before left nothing in
/// it: its TIME_WAIT sockets are destroyed and no other socket (TCP in
/// any other state, UDP, raw) may remain (`exec::sockets`); otherwise the
/// worker moves to a fresh one. The capture goes on from cell to cell; each cell takes the
/// frames stamped from its start (`LiveCapture::open_window`), and with no
/// socket left nothing of an earlier cell can arrive after that.
struct Pool {
    config: CaptureConfig,
    filter: String,
    capture: Option<Rc<LiveCapture>>,
}

impl Pool {
    /// One ring for every cell of the run: the largest any of them needs,
    /// filtering the ports of all of them (each cell's namespace carries
    /// only its own traffic, so the union takes nothing more).
    fn for_cells(env: &Environment, scenarios: &[&Scenario]) -> Pool {
        let config = scenarios
            .iter()
            .map(|s| capture_config(env, s, false))
            .max_by_key(|c| c.buffer_size)
            .unwrap_or_else(|| env.capture.clone());
        let ports: BTreeSet<u16> = scenarios
            .iter()
            .map(|s| s.port.unwrap_or(tutorial::DEFAULT_PORT))
            .collect();
        let filter = ports
            .into_iter()
            .map(capture_filter)
            .collect::<Vec<_>>()
            .join(" or ");
        Pool {
            config,
            filter,
            capture: None,
        }
    }

    /// Puts the calling thread in a namespace fit for the next cell, with
    /// the capture running in it.
    fn next_cell(
        &mut self,
        watch: &mut Stopwatch,
    ) -> Result<(Rc<LiveCapture>, Vec<StageTime>), String> {
        let mut timings = Vec::new();
        let mut made = "namespace made";
        if let Some(capture) = &self.capture {
            match sockets::clear_time_wait() {
                Ok(left) if left.is_empty() => {
                    timings.push(watch.lap("namespace reused"));
                    return Ok((Rc::clone(capture), timings));
                }
                // Dropping the capture stops it; the namespace goes when
                // its last user (the capture's socket) has.
                _ => made = "namespace made (the cell before left sockets)",
            }
            self.capture = None;
        }
        network::enter_namespace_with_own_tcp_tables()
            .map_err(|e| format!("cannot create a network namespace for this cell: {e}"))?;
        timings.push(watch.lap(made));
        let capture =
            Rc::new(LiveCapture::start(&self.config, &self.filter).map_err(|e| e.to_string())?);
        timings.push(watch.lap("capture opened"));
        self.capture = Some(Rc::clone(&capture));
        Ok((capture, timings))
    }
}

/// Gives the calling thread the network its next cell runs on.
fn prepare_network(env: &Environment, scenario: &Scenario) -> Result<CellNetwork, String> {
    match (env.topology, env.isolation.per_cell_namespace()) {
        (Topology::Veth, _) => network::enter_veth_pair().map(CellNetwork::Veth),
        (Topology::Loopback, true) => network::enter_fresh_network_namespace()
            .map(|()| CellNetwork::Namespace)
            .map_err(|e| format!("cannot create a network namespace for this cell: {e}")),
        (Topology::Loopback, false) => scenario
            .port
            .map(|p| port_lock::lock(p, PORT_LOCK_TIMEOUT, &|| env.cancel.is_cancelled()))
            .transpose()
            .map(|lock| CellNetwork::Shared { _port_lock: lock }),
    }
}

/// Runs the runnable `cells` on up to `jobs` threads, calling `on_done` as
/// each ends. Results come back in the order of `cells`; skipped cells are
/// not run and have no result. Cells of a scenario with a fixed port run one
/// at a time, since only one server can hold the port.
pub fn run_matrix(
    env: &Environment,
    manifest: &Manifest,
    scenarios: &[Scenario],
    cells: &[PlannedCell],
    artifacts_root: &Path,
    jobs: usize,
    on_done: &(dyn Fn(&PairingResult) + Sync),
) -> Result<Vec<Option<PairingResult>>, CaptureError> {
    let runnable: Vec<usize> = (0..cells.len())
        .filter(|i| cells[*i].skip.is_none())
        .collect();
    // Each scenario's message once, for its cells to link to. A folder
    // that cannot be written fails each cell with the reason instead.
    let mut written = BTreeSet::new();
    for &i in &runnable {
        let scenario = &scenarios[cells[i].scenario];
        if written.insert(cells[i].scenario) {
            let _ = write_scenario_message(&artifacts_root.join(&scenario.name), &scenario.message);
        }
    }
    let run_scenarios: Vec<&Scenario> = written.iter().map(|&i| &scenarios[i]).collect();
    let next = Mutex::new(0usize);
    let results: Mutex<Vec<Option<PairingResult>>> = Mutex::new(vec![None; cells.len()]);
    let fatal: Mutex<Option<CaptureError>> = Mutex::new(None);
    // Borrowed by every worker; the workers are moved closures so that each
    // can start its own scoped threads.
    {
        let (next, fatal, runnable, results, run_scenarios) =
            (&next, &fatal, &runnable, &results, &run_scenarios);
        std::thread::scope(|scope| {
            for _ in 0..jobs.max(1).min(runnable.len().max(1)) {
                scope.spawn(move || {
                    // Next cell from the shared queue, or None when done.
                    let claim = || {
                        let mut n = next.lock().expect("queue lock");
                        let stop = fatal.lock().map(|f| f.is_some()).unwrap_or(true)
                            || env.cancel.is_cancelled();
                        if *n >= runnable.len() || stop {
                            return None;
                        }
                        *n += 1;
                        Some(runnable[*n - 1])
                    };
                    // With a loopback of its own per cell, a namespace and
                    // a capture kept from cell to cell while fit.
                    let mut pool = (env.isolation.per_cell_namespace()
                        && env.topology == Topology::Loopback)
                        .then(|| Pool::for_cells(env, run_scenarios));
                    let mut in_flight = None;
                    let record = |(index, seconds, handle): (
                        usize,
                        f64,
                        std::thread::ScopedJoinHandle<'_, PairingResult>,
                    )| {
                        match handle.join() {
                            Ok(mut result) => {
                                // The programs' and the capture's time, not the saving.
                                result.seconds = seconds;
                                on_done(&result);
                                results.lock().expect("results lock")[index] = Some(result);
                            }
                            Err(_) => {
                                *fatal.lock().expect("fatal lock") =
                                    Some(CaptureError::Thread("analysing a cell panicked".into()));
                            }
                        }
                    };
                    while let Some(index) = claim() {
                        let cell = &cells[index];
                        let scenario = &scenarios[cell.scenario];
                        let server = cell
                            .id
                            .server
                            .as_deref()
                            .and_then(|name| manifest.get(name));
                        let started = Instant::now();
                        let mut watch = Stopwatch::start();
                        let network = match &mut pool {
                            Some(pool) => pool.next_cell(&mut watch).map(|(capture, timings)| {
                                (
                                    CellNetwork::Namespace,
                                    CaptureSource::Pooled(capture),
                                    timings,
                                )
                            }),
                            None => prepare_network(env, scenario).map(|network| {
                                (network, CaptureSource::Own, vec![watch.lap("network")])
                            }),
                        };
                        let Some(client) = manifest.get(&cell.id.client) else {
                            continue;
                        };
                        let (outcome, network) = match network {
                            Ok((network, source, timings)) => (
                                run_pairing(
                                    env,
                                    &CellToRun {
                                        manifest,
                                        scenario,
                                        server,
                                        client,
                                        artifacts_root,
                                    },
                                    &network,
                                    source,
                                    timings,
                                ),
                                Some(network),
                            ),
                            Err(reason) => (
                                Ok(Finishing::Done(PairingResult::not_started(
                                    scenario, server, client, reason,
                                ))),
                                None,
                            ),
                        };
                        let seconds = started.elapsed().as_secs_f64();
                        match outcome {
                            Ok(finishing) => {
                                // Saved and analysed on a thread of its own,
                                // beside the next cell; one at a time.
                                // The network (a veth pair, a port's lock)
                                // lives until its capture has stopped.
                                let handle = scope.spawn(move || {
                                    let result = finishing.complete(scenario);
                                    drop(network);
                                    result
                                });
                                if let Some(previous) = in_flight.replace((index, seconds, handle))
                                {
                                    record(previous);
                                }
                            }
                            Err(e) => {
                                *fatal.lock().expect("fatal lock") = Some(e);
                                break;
                            }
                        }
                    }
                    if let Some(last) = in_flight.take() {
                        record(last);
                    }
                });
            }
        });
    }
    if let Some(e) = fatal.into_inner().expect("fatal lock") {
        return Err(e);
    }
    Ok(results.into_inner().expect("results lock"))
}
