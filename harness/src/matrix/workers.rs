//! The matrix on worker threads: each worker claims cells from one queue
//! and (with network namespaces) runs them in a namespace and under a
//! capture it keeps while the cells leave nothing behind ([`Pool`]).

use std::collections::BTreeSet;
use std::path::Path;
use std::rc::Rc;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::capture::{CaptureConfig, CaptureError, LiveCapture};
use crate::exec::conditions::Snapshot;
use crate::exec::network::{self, Topology};
use crate::exec::port_lock;
use crate::exec::sockets;
use crate::exec::timing::{StageTime, Stopwatch};
use crate::suite::manifest::Manifest;
use crate::suite::plan::PlannedCell;
use crate::suite::scenario::Scenario;
use crate::verdict::result::PairingResult;

use super::artifacts::write_scenario_message;
use super::cell::{run_pairing, CaptureSource, CellToRun, Environment, Finishing};
use crate::exec::network::CellNetwork;

/// Workers for cells with network conditions, per job: they mostly wait
/// on retransmission timers. Measured on the default suite (2 cores,
/// farm-bench, interleaved): 4 against 3, wall 0.94x, peak RSS 52 against
/// 51 MiB; 5 against 4, wall 1.03x (the cells' own CPU is then the
/// limit), peak 61 MiB.
const TIMER_WORKERS_PER_JOB: usize = 4;

/// Set (to anything) only by the leak guard's negative control: cells with
/// network conditions then run in their worker's reused namespace, so the
/// guard must catch what they leave behind.
pub const LEAK_CONDITIONS_FOR_TEST: &str = "HARNESS_TEST_LEAK_CONDITIONS";

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
    /// The run's conditions guard: which sysctls any scenario sets and
    /// whether any loads rules; `None` when no scenario has conditions.
    guarded: Option<(Vec<String>, bool)>,
    /// The namespace as it was made, for the guard.
    snapshot: Option<Snapshot>,
}

impl Pool {
    /// One ring for every cell of the run: the largest any of them needs,
    /// filtering the ports of all of them (each cell's namespace carries
    /// only its own traffic, so the union takes nothing more).
    fn for_cells(env: &Environment, scenarios: &[&Scenario]) -> Pool {
        let config = scenarios
            .iter()
            .map(|s| env.capture.for_message(s.message.len(), None))
            .max_by_key(|c| c.buffer_size)
            .unwrap_or_else(|| env.capture.clone());
        let ports: BTreeSet<u16> = scenarios
            .iter()
            .map(|s| s.port.unwrap_or(tutorial::DEFAULT_PORT))
            .collect();
        let filter = ports
            .into_iter()
            .map(crate::capture::port_filter)
            .collect::<Vec<_>>()
            .join(" or ");
        let keys: BTreeSet<String> = scenarios
            .iter()
            .flat_map(|s| s.conditions.sysctl.iter().map(|(k, _)| k.clone()))
            .collect();
        let conditioned = scenarios.iter().any(|s| !s.conditions.is_empty());
        let rules = scenarios.iter().any(|s| !s.conditions.rules.is_empty());
        Pool {
            config,
            filter,
            capture: None,
            guarded: conditioned.then(|| (keys.into_iter().collect(), rules)),
            snapshot: None,
        }
    }

    /// Leaves the pool's namespace for good: the next cell makes a new
    /// one. For a cell with network conditions, which runs in a namespace
    /// made for it alone.
    fn retire(&mut self) {
        self.capture = None;
        self.snapshot = None;
    }

    /// The guard: whatever of an earlier cell's conditions is still in
    /// the namespace, in words (empty when none).
    fn leaks(&self) -> Vec<String> {
        match (&self.guarded, &self.snapshot) {
            (Some((keys, rules)), Some(made)) => made.leaks(&Snapshot::take(keys, *rules)),
            _ => Vec::new(),
        }
    }

    /// Puts the calling thread in a namespace fit for the next cell, with
    /// the capture running in it.
    /// A condition of an earlier cell found in the namespace is the
    /// cell's error (the harness failed to keep cells apart), and the
    /// cell then runs in a fresh namespace.
    fn next_cell(&mut self, watch: &mut Stopwatch) -> Result<PooledCell, String> {
        let mut timings = Vec::new();
        let mut made = "namespace made";
        let mut leaked = None;
        if let Some(capture) = &self.capture {
            let leaks = self.leaks();
            match sockets::clear_time_wait() {
                Ok(left) if left.is_empty() && leaks.is_empty() => {
                    timings.push(watch.lap("namespace reused"));
                    return Ok(PooledCell {
                        capture: Rc::clone(capture),
                        timings,
                        leaked: None,
                    });
                }
                _ if !leaks.is_empty() => {
                    leaked = Some(format!(
                        "the worker's namespace still held an earlier cell's network conditions: {}; this cell ran in a fresh one",
                        leaks.join(", ")
                    ));
                    made = "namespace made (the cell before left conditions)";
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
        self.snapshot = self
            .guarded
            .as_ref()
            .map(|(keys, rules)| Snapshot::take(keys, *rules));
        let capture =
            Rc::new(LiveCapture::start(&self.config, &self.filter).map_err(|e| e.to_string())?);
        timings.push(watch.lap("capture opened"));
        self.capture = Some(Rc::clone(&capture));
        Ok(PooledCell {
            capture,
            timings,
            leaked,
        })
    }
}

/// A cell's place in its worker's namespace: the capture to take a window
/// of, the time the namespace took, and what the leak guard found.
struct PooledCell {
    capture: Rc<LiveCapture>,
    timings: Vec<StageTime>,
    /// An earlier cell's conditions found in the namespace, in words.
    leaked: Option<String>,
}

/// Gives the calling thread the network its next cell runs on. A cell
/// with network conditions needs a loopback namespace of its own, which
/// it leaves for good afterwards.
fn prepare_network(env: &Environment, scenario: &Scenario) -> Result<CellNetwork, String> {
    if !scenario.conditions.is_empty() {
        return match (env.topology, env.isolation.per_cell_namespace()) {
            (Topology::Loopback, true) => network::enter_namespace_with_own_tcp_tables()
                .map(|()| CellNetwork::Namespace)
                .map_err(|e| format!("cannot create a network namespace for this cell: {e}")),
            // A veth pair is made for each cell anyway.
            (Topology::Veth, _) => network::enter_veth_pair().map(CellNetwork::Veth),
            (Topology::Loopback, false) => Err(format!(
                "scenario {} sets network conditions, which need a network namespace per cell; run as root, or allow user namespaces (--isolation userns)",
                scenario.name
            )),
        };
    }
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
    // Two lanes. Cells with network conditions mostly wait on the kernel's
    // retransmission timers (a lost SYN costs a second of nothing), so
    // they get workers of their own beside the `jobs` that run the rest:
    // a waiting cell holds no core, and the run's wall time is not the
    // sum of its timers.
    let leak_for_test = std::env::var_os(LEAK_CONDITIONS_FOR_TEST).is_some();
    // (The leak guard's negative control runs every cell in one lane, so
    // that cells follow each other in a worker's reused namespace.)
    let (conditioned, plain): (Vec<usize>, Vec<usize>) = runnable
        .iter()
        .partition(|&&i| !leak_for_test && !scenarios[cells[i].scenario].conditions.is_empty());
    // Longest wait first: a black hole's seconds start with the run, not
    // at its end.
    let mut conditioned = conditioned;
    conditioned.sort_by_key(|&i| {
        std::cmp::Reverse(scenarios[cells[i].scenario].conditions.expected_wait_ms())
    });
    let lanes = [plain, conditioned];
    let workers = [
        jobs.max(1).min(lanes[0].len()),
        (jobs.max(1) * TIMER_WORKERS_PER_JOB).min(lanes[1].len()),
    ];
    let nexts = [Mutex::new(0usize), Mutex::new(0usize)];
    let results: Mutex<Vec<Option<PairingResult>>> = Mutex::new(vec![None; cells.len()]);
    let fatal: Mutex<Option<CaptureError>> = Mutex::new(None);
    // Borrowed by every worker; the workers are moved closures so that each
    // can start its own scoped threads.
    {
        let (nexts, fatal, lanes, results, run_scenarios) =
            (&nexts, &fatal, &lanes, &results, &run_scenarios);
        let lane_of_worker = (0..workers[0]).map(|_| 0).chain((0..workers[1]).map(|_| 1));
        std::thread::scope(|scope| {
            for lane in lane_of_worker {
                scope.spawn(move || {
                    // Next cell from the worker's lane, or None when done.
                    // A worker of the plain lane whose lane is empty takes
                    // the conditioned lane's cells next: those mostly wait
                    // on timers, so once the CPU-bound cells are done,
                    // more of them at once is what shortens the run.
                    let claim = || {
                        let stop = fatal.lock().map(|f| f.is_some()).unwrap_or(true)
                            || env.cancel.is_cancelled();
                        if stop {
                            return None;
                        }
                        let lanes_in_turn: &[usize] = if lane == 0 { &[0, 1] } else { &[1] };
                        lanes_in_turn.iter().find_map(|&l| {
                            let mut n = nexts[l].lock().expect("queue lock");
                            (*n < lanes[l].len()).then(|| {
                                *n += 1;
                                lanes[l][*n - 1]
                            })
                        })
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
                        let conditioned = !scenario.conditions.is_empty();
                        let own_network = |watch: &mut Stopwatch| {
                            prepare_network(env, scenario).map(|network| {
                                (
                                    network,
                                    CaptureSource::Own,
                                    vec![watch.lap("network")],
                                    None,
                                )
                            })
                        };
                        let network = match &mut pool {
                            Some(pool) if !conditioned || leak_for_test => {
                                pool.next_cell(&mut watch).map(|cell| {
                                    (
                                        CellNetwork::Namespace,
                                        CaptureSource::Pooled(cell.capture),
                                        cell.timings,
                                        cell.leaked,
                                    )
                                })
                            }
                            Some(pool) => {
                                pool.retire();
                                own_network(&mut watch)
                            }
                            None => own_network(&mut watch),
                        };
                        let Some(client) = manifest.get(&cell.id.client) else {
                            continue;
                        };
                        let (outcome, network) = match network {
                            Ok((network, source, timings, leaked)) => (
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
                                )
                                .map(|finishing| match leaked {
                                    Some(leak) => finishing.with_error(leak),
                                    None => finishing,
                                }),
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
