//! The matrix on worker threads: each worker claims cells from one queue,
//! and (with a namespace per cell) has a helper thread make the next
//! cells' namespaces and captures while the current one runs.

use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::capture::{CaptureConfig, CaptureError, LiveCapture, StartingCapture};
use crate::exec::network::{self, Topology};
use crate::exec::port_lock;
use crate::exec::timing::{StageTime, Stopwatch};
use crate::suite::manifest::Manifest;
use crate::suite::plan::PlannedCell;
use crate::suite::scenario::Scenario;
use crate::verdict::result::PairingResult;

use super::cell::{
    capture_config, capture_filter, run_pairing, write_scenario_message, CellNetwork, CellToRun,
    Environment, Finishing,
};

/// How many cells a worker claims ahead of the one it runs, their network
/// and capture made while it runs. One: each prepared capture holds its
/// ring (2-4 MiB), and a second one ahead gained no time once captures
/// stopped waiting on immediate-mode rings (default suite, default --jobs:
/// peak RSS 62-68 MiB with two ahead, 49-56 MiB with one, wall no worse).
const PREPARED_AHEAD: usize = 1;

/// How long a pairing waits for another run to free a fixed port.
const PORT_LOCK_TIMEOUT: Duration = Duration::from_secs(120);

/// A cell's namespace and capture, made ahead on another thread while the
/// previous cell runs: creating a namespace and opening a packet socket
/// each wait on the kernel, and none of it depends on the previous cell.
struct Prepared {
    netns: std::os::fd::OwnedFd,
    capture: StartingCapture,
    /// The preparing thread's stages.
    timings: Vec<StageTime>,
}

/// A thread that makes namespaces and starts captures on request.
struct Preparer {
    jobs: std::sync::mpsc::Sender<(CaptureConfig, String)>,
    done: std::sync::mpsc::Receiver<Result<Prepared, String>>,
}

impl Preparer {
    fn spawn() -> Preparer {
        let (jobs, job_rx) = std::sync::mpsc::channel::<(CaptureConfig, String)>();
        let (done_tx, done) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for (config, filter) in job_rx {
                let mut watch = Stopwatch::start();
                let prepared = network::enter_fresh_network_namespace()
                    .and_then(|()| std::fs::File::open("/proc/thread-self/ns/net"))
                    .map_err(|e| format!("cannot create a network namespace for this cell: {e}"))
                    .and_then(|ns| {
                        let made = watch.lap("namespace (ahead)");
                        LiveCapture::begin(&config, &filter)
                            .map(|capture| Prepared {
                                netns: ns.into(),
                                capture,
                                timings: vec![made, watch.lap("capture open (ahead)")],
                            })
                            .map_err(|e| e.to_string())
                    });
                if done_tx.send(prepared).is_err() {
                    return;
                }
            }
        });
        Preparer { jobs, done }
    }

    fn request(&self, env: &Environment, scenario: &Scenario) {
        let port = scenario.port.unwrap_or(tutorial::DEFAULT_PORT);
        let _ = self
            .jobs
            .send((capture_config(env, scenario, false), capture_filter(port)));
    }

    /// The prepared cell, moved onto the calling thread.
    fn take(&self) -> Result<(CellNetwork, StartingCapture, Vec<StageTime>), String> {
        use std::os::fd::AsRawFd;
        let prepared = self
            .done
            .recv()
            .map_err(|_| "the preparing thread ended".to_string())??;
        // SAFETY: setns on a namespace descriptor we own; it affects only
        // the calling thread.
        if unsafe { libc::setns(prepared.netns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
            return Err(format!(
                "cannot enter the cell's network namespace: {}",
                std::io::Error::last_os_error()
            ));
        }
        Ok((CellNetwork::Namespace, prepared.capture, prepared.timings))
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
    let mut written = std::collections::BTreeSet::new();
    for &i in &runnable {
        let scenario = &scenarios[cells[i].scenario];
        if written.insert(cells[i].scenario) {
            let _ = write_scenario_message(&artifacts_root.join(&scenario.name), &scenario.message);
        }
    }
    let next = Mutex::new(0usize);
    let results: Mutex<Vec<Option<PairingResult>>> = Mutex::new(vec![None; cells.len()]);
    let fatal: Mutex<Option<CaptureError>> = Mutex::new(None);
    // Borrowed by every worker; the workers are moved closures so that each
    // can start its own scoped threads.
    {
        let (next, fatal, runnable, results) = (&next, &fatal, &runnable, &results);
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
                    // With a loopback of its own per cell, the next cell's
                    // namespace and capture are made while this one runs.
                    let preparer = (env.isolation.per_cell_namespace()
                        && env.topology == Topology::Loopback)
                        .then(Preparer::spawn);
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
                    // Cells claimed and, with a preparer, being prepared
                    // (PREPARED_AHEAD of them), since opening a capture
                    // waits on the kernel (an RCU grace period, ~7-20 ms
                    // here) about as long as a quick cell runs.
                    let mut upcoming = std::collections::VecDeque::new();
                    let claim_next = |upcoming: &mut std::collections::VecDeque<usize>| {
                        if let Some(i) = claim() {
                            if let Some(p) = &preparer {
                                p.request(env, &scenarios[cells[i].scenario]);
                            }
                            upcoming.push_back(i);
                        }
                    };
                    for _ in 0..PREPARED_AHEAD {
                        claim_next(&mut upcoming);
                    }
                    while let Some(index) = upcoming.pop_front() {
                        // Cells claimed ahead are not started once stopped:
                        // like the unclaimed ones, they did not run.
                        if env.cancel.is_cancelled() {
                            break;
                        }
                        let cell = &cells[index];
                        let scenario = &scenarios[cell.scenario];
                        let server = cell
                            .id
                            .server
                            .as_deref()
                            .and_then(|name| manifest.get(name));
                        let started = Instant::now();
                        let mut watch = Stopwatch::start();
                        // Taken even if the cell cannot run, so the preparer's
                        // answers stay in step with the cells.
                        let network = match &preparer {
                            Some(p) => p.take().map(|(network, capture, mut timings)| {
                                timings.push(watch.lap("wait for the prepared cell"));
                                (network, Some(capture), timings)
                            }),
                            None => prepare_network(env, scenario)
                                .map(|network| (network, None, vec![watch.lap("network")])),
                        };
                        claim_next(&mut upcoming);
                        let Some(client) = manifest.get(&cell.id.client) else {
                            continue;
                        };
                        let (outcome, network) = match network {
                            Ok((network, prestarted, timings)) => (
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
                                    prestarted,
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
