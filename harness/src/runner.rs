//! Running pairings: capture, server, client, drain, save, analyse.
//!
//! The order is fixed: the capture is filtering before the server starts;
//! the client starts only after the server said it is ready; the capture is
//! drained until the teardown is seen. Whatever goes wrong (a timeout, a
//! crash, Ctrl-C), both programs are killed, the capture and the programs'
//! output are still saved, and the pairing is reported with the reason.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::annotate;
use crate::capture::{
    self, CaptureConfig, CaptureError, CaptureStats, LiveCapture, StartingCapture,
};
use crate::checks::{self, Check, Evidence};
use crate::conversation::{self, Connection};
use crate::dissect::{self, DissectError, Frame, LinkType};
use crate::isolation::{self, Isolation, Topology, VethCell};
use crate::manifest::{self, Implementation, Manifest, ServerStdout, Substitutions};
use crate::plan::PlannedCell;
use crate::port_lock;
use crate::savefile;

/// How many cells a worker claims ahead of the one it runs.
const PREPARED_AHEAD: usize = 2;

/// How long a pairing waits for another run to free a fixed port.
const PORT_LOCK_TIMEOUT: Duration = Duration::from_secs(120);
use crate::process::{Child, Output, WaitError};
use crate::scenario::Scenario;
use crate::signature::{self, Signature};

/// Set by the Ctrl-C handler; every wait looks at it.
pub static INTERRUPTED: AtomicBool = AtomicBool::new(false);

fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Every bounded wait, each changeable by a flag.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Timeouts {
    /// For the server's ready line.
    pub ready: Duration,
    /// For each program to exit once the client has started.
    pub exit: Duration,
    /// For the teardown to appear in the capture once both have exited.
    pub drain: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            ready: Duration::from_secs(10),
            exit: Duration::from_secs(10),
            drain: Duration::from_secs(2),
        }
    }
}

/// The tutorial's port, used by every cell that has a network namespace of
/// its own and no port set by its scenario.
pub const TUTORIAL_PORT: u16 = 1712;

pub use crate::manifest::NO_SERVER;

/// Where things are and how to run them.
#[derive(Debug, Clone)]
pub struct Environment {
    pub root: PathBuf,
    pub bin: PathBuf,
    pub isolation: Isolation,
    pub topology: Topology,
    pub capture: CaptureConfig,
    pub timeouts: Timeouts,
}

/// What running one pairing produced, before any comparison.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PairingResult {
    #[serde(skip)]
    pub scenario: String,
    #[serde(skip)]
    pub server: String,
    #[serde(skip)]
    pub client: String,
    pub port: u16,
    /// Wall-clock time the cell took.
    pub seconds: f64,
    /// Relative to the artifacts root.
    pub dir: String,
    pub capture_file: Option<String>,
    /// Why the run could not complete, if it did not.
    pub error: Option<String>,
    pub checks: Vec<Check>,
    pub stats: Option<CaptureStats>,
    #[serde(skip)]
    pub connections: Vec<Connection>,
    pub signature: Option<Signature>,
    #[serde(skip)]
    pub link: Option<LinkType>,
    /// Every captured frame, for the scenario's merged pcapng.
    #[serde(skip)]
    pub frames: Vec<Frame>,
    /// The annotated pcapng, relative to the artifacts root.
    pub pcapng_file: Option<String>,
    pub server_exit: Option<String>,
    pub client_exit: Option<String>,
}

impl PairingResult {
    /// A pairing that could not start, with the reason.
    fn not_started(
        scenario: &Scenario,
        server: Option<&Implementation>,
        client: &Implementation,
        reason: String,
    ) -> PairingResult {
        let server = server.map_or(NO_SERVER, |s| s.name.as_str()).to_string();
        PairingResult {
            scenario: scenario.name.clone(),
            dir: format!("{}/{}__{}", scenario.name, server, client.name),
            server,
            client: client.name.clone(),
            port: scenario.port.unwrap_or(0),
            seconds: 0.0,
            capture_file: None,
            error: Some(reason),
            checks: Vec::new(),
            stats: None,
            connections: Vec::new(),
            signature: None,
            link: None,
            frames: Vec::new(),
            pcapng_file: None,
            server_exit: None,
            client_exit: None,
        }
    }

    pub fn passed_checks(&self) -> bool {
        self.error.is_none() && self.checks.iter().all(|c| c.passed)
    }

    pub fn label(&self) -> String {
        format!("{} server × {} client", self.server, self.client)
    }
}

/// A free port on `host`, found by binding port 0 and letting go. Another
/// process could take it in between; the runner retries if the server then
/// fails to start.
fn free_port(host: &str) -> std::io::Result<u16> {
    let listener = TcpListener::bind((host, 0))?;
    listener.local_addr().map(|a| a.port())
}

#[allow(clippy::too_many_arguments)]
/// Runs one pairing and writes its artifacts under `dir`. With no `server`
/// (a refused scenario) only the client runs, against a port nobody holds.
pub fn run_pairing(
    env: &Environment,
    manifest: &Manifest,
    scenario: &Scenario,
    server: Option<&Implementation>,
    client: &Implementation,
    artifacts_root: &Path,
    network: &CellNetwork,
    prestarted: Option<StartingCapture>,
) -> Result<Finishing, CaptureError> {
    let mut result = PairingResult::not_started(scenario, server, client, String::new());
    result.error = None;
    let dir = artifacts_root.join(&result.dir);
    if let Err(e) = std::fs::create_dir_all(&dir) {
        result.error = Some(format!(
            "cannot create artifacts directory {}: {e}",
            dir.display()
        ));
        return Ok(Finishing::Done(result));
    }
    let message_file = dir.join("message.bin");
    if let Err(e) = std::fs::write(&message_file, &scenario.message) {
        result.error = Some(format!("cannot write {}: {e}", message_file.display()));
        return Ok(Finishing::Done(result));
    }

    let host = match network {
        CellNetwork::Veth(_) => VethCell::server_host(&scenario.host),
        _ => scenario.host.as_str(),
    };
    let client_netns = match network {
        CellNetwork::Veth(cell) => Some(std::os::fd::AsRawFd::as_raw_fd(&cell.client_netns)),
        _ => None,
    };
    // In a namespace of its own a cell has the loopback to itself, so it
    // uses the scenario's port or the tutorial's.
    let fixed_port = scenario
        .port
        .or(env.isolation.per_cell_namespace().then_some(TUTORIAL_PORT));
    let manifest_dir = manifest.path.parent().unwrap_or(Path::new("."));
    let substitutions = |port| Substitutions {
        root: &env.root,
        bin: &env.bin,
        manifest_dir,
        host,
        port,
        message_file: &message_file,
    };
    let server_stdout = server.map_or(ServerStdout::Unchecked, |s| s.stdout);
    let finish = |result: &mut PairingResult, live, server_out, client_out, teardown_seen| {
        finish(
            result,
            &dir,
            live,
            server_out,
            client_out,
            teardown_seen,
            scenario,
            server_stdout,
        )
    };

    let capture_config = capture_config(env, scenario, matches!(network, CellNetwork::Veth(_)));
    let mut prestarted = prestarted;
    // A free port can be taken by another process before the server binds
    // it; then the server exits early and a new port is tried. A fixed port
    // is the scenario's point, so it is never swapped.
    const PORT_TRIES: usize = 3;
    let mut attempt = 0;
    let (live, mut server_child, port) = loop {
        attempt += 1;
        let port = match fixed_port {
            Some(port) => port,
            None => match free_port(host) {
                Ok(p) => p,
                Err(e) => {
                    result.error = Some(format!("cannot find a free port on {host}: {e}"));
                    return Ok(Finishing::Done(result));
                }
            },
        };
        result.port = port;
        // The socket is set up while the server starts; the client starts
        // only once both are ready.
        let starting = match prestarted.take() {
            Some(starting) => starting,
            None => LiveCapture::begin(&capture_config, &capture_filter(port))?,
        };
        let Some(server) = server else {
            break (starting.ready()?, None, port);
        };
        let argv = manifest::expand(
            server.server.as_deref().unwrap_or_default(),
            &substitutions(port),
        );
        let name = format!("{} server", server.name);
        let mut child = match Child::spawn(&name, &argv, Some(&env.root), None) {
            Ok(c) => c,
            Err(e) => {
                result.error = Some(e.to_string());
                finish(&mut result, starting.ready()?, None, None, false);
                return Ok(Finishing::Done(result));
            }
        };
        let ready = server.ready.clone();
        let wait = child.wait_for_line(
            env.timeouts.ready,
            &interrupted,
            server.ready_stream,
            |line| {
                let line = line.trim_end_matches(['\n', '\r']);
                ready
                    .as_ref()
                    .is_some_and(|r| r.is_match(line))
                    .then_some(())
            },
        );
        match wait {
            Ok(()) => match starting.ready() {
                Ok(live) => break (live, Some(child), port),
                Err(e) => {
                    let _ = child.kill();
                    return Err(e);
                }
            },
            Err(WaitError::ExitedEarly { .. }) if attempt < PORT_TRIES && fixed_port.is_none() => {
                let _ = child.kill();
                drop(starting);
                continue;
            }
            Err(e) => {
                let output = child.kill();
                result.error = Some(e.to_string());
                finish(&mut result, starting.ready()?, Some(output), None, false);
                return Ok(Finishing::Done(result));
            }
        }
    };

    let subs = substitutions(port);
    let argv = manifest::expand(client.client.as_deref().unwrap_or_default(), &subs);
    let stdin = client
        .stdin
        .as_deref()
        .map(|template| PathBuf::from(manifest::expand_one(template, &subs)));
    let name = format!("{} client", client.name);
    let mut client_child = match Child::spawn_in(
        &name,
        &argv,
        Some(&env.root),
        stdin.as_deref(),
        client_netns,
    ) {
        Ok(c) => c,
        Err(e) => {
            result.error = Some(e.to_string());
            let server_out = server_child.as_mut().map(Child::kill);
            finish(&mut result, live, server_out, None, false);
            return Ok(Finishing::Done(result));
        }
    };
    let mut errors = Vec::new();
    let client_out = client_child
        .wait(env.timeouts.exit, &interrupted)
        .unwrap_or_else(|e| {
            errors.push(e.to_string());
            client_child.kill()
        });
    let server_out = server_child.as_mut().map(|child| {
        child
            .wait(env.timeouts.exit, &interrupted)
            .unwrap_or_else(|e| {
                errors.push(e.to_string());
                child.kill()
            })
    });
    if !errors.is_empty() {
        result.error = Some(errors.join("; "));
    }

    let teardown_seen = drain(&live, env.timeouts.drain);
    if interrupted() && result.error.is_none() {
        result.error = Some("interrupted".into());
    }
    // Saving and analysing are left to the caller, which runs them beside
    // the next cell: the programs are done and the capture is complete.
    Ok(Finishing::Pending(Box::new(PendingFinish {
        result,
        dir,
        live,
        server_out,
        client_out: Some(client_out),
        teardown_seen,
        server_stdout,
    })))
}

/// A run cell, saved and analysed or about to be.
#[allow(clippy::large_enum_variant)] // moved once per cell; boxing gains nothing
pub enum Finishing {
    Done(PairingResult),
    Pending(Box<PendingFinish>),
}

/// Everything a cell left for [`finish`] once its programs have exited.
pub struct PendingFinish {
    result: PairingResult,
    dir: PathBuf,
    live: LiveCapture,
    server_out: Option<Output>,
    client_out: Option<Output>,
    teardown_seen: bool,
    server_stdout: ServerStdout,
}

impl Finishing {
    /// Saves and analyses a pending cell of `scenario`.
    pub fn complete(self, scenario: &Scenario) -> PairingResult {
        match self {
            Finishing::Done(result) => result,
            Finishing::Pending(p) => {
                let mut p = *p;
                finish(
                    &mut p.result,
                    &p.dir,
                    p.live,
                    p.server_out,
                    p.client_out,
                    p.teardown_seen,
                    scenario,
                    p.server_stdout,
                );
                p.result
            }
        }
    }
}

/// Waits until the capture shows every connection over (both FINs
/// acknowledged, or an RST), or `timeout`. Both programs have exited by now,
/// so only the kernel's last segments can still be on their way.
fn drain(live: &LiveCapture, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let link = live.link();
    let mut quiet_since = (Instant::now(), 0usize);
    while Instant::now() < deadline && !interrupted() {
        let frames = live.snapshot();
        let (segments, _) = dissect::dissect_all(link, &frames);
        let connections = conversation::build(&segments);
        if !connections.is_empty() && connections.iter().all(|c| c.close.complete) {
            return true;
        }
        // No connection at all: nothing more will come once it is quiet.
        if connections.is_empty() {
            if frames.len() != quiet_since.1 {
                quiet_since = (Instant::now(), frames.len());
            } else if quiet_since.0.elapsed() > Duration::from_millis(50) {
                return true;
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    false
}

/// Stops the capture, saves every artifact, and analyses what was captured.
#[allow(clippy::too_many_arguments)]
fn finish(
    result: &mut PairingResult,
    dir: &Path,
    live: LiveCapture,
    server_out: Option<Output>,
    client_out: Option<Output>,
    teardown_seen: bool,
    scenario: &Scenario,
    server_stdout: ServerStdout,
) {
    let mut save_errors = Vec::new();
    for (who, out) in [("server", &server_out), ("client", &client_out)] {
        if let Some(out) = out {
            let writes = [
                (format!("{who}.stdout"), out.stdout.clone()),
                (format!("{who}.stderr"), out.stderr.clone()),
                (
                    format!("{who}.exit"),
                    format!("{}\n", out.status_text()).into_bytes(),
                ),
            ];
            for (name, bytes) in writes {
                if let Err(e) = std::fs::write(dir.join(&name), bytes) {
                    save_errors.push(format!("{name}: {e}"));
                }
            }
        }
    }
    result.server_exit = server_out.as_ref().map(Output::status_text);
    result.client_exit = client_out.as_ref().map(Output::status_text);

    let (frames, link, stats) = match live.stop() {
        Ok(captured) => {
            result.stats = Some(captured.stats);
            (captured.frames, captured.link, Some(captured.stats))
        }
        Err(e) => {
            save_errors.push(e.to_string());
            (Vec::new(), LinkType::Ethernet, None)
        }
    };
    let capture_path = dir.join("capture.pcap");
    match capture::save_pcap(&capture_path, link, &frames) {
        Ok(()) => result.capture_file = Some(format!("{}/capture.pcap", result.dir)),
        Err(e) => save_errors.push(e.to_string()),
    }
    if !save_errors.is_empty() {
        let joined = format!("artifacts not saved: {}", save_errors.join("; "));
        result.error = Some(match result.error.take() {
            Some(e) => format!("{e}; {joined}"),
            None => joined,
        });
    }
    analyse(
        result,
        link,
        &frames,
        server_out.as_ref(),
        client_out.as_ref(),
        stats,
        teardown_seen,
        scenario,
        server_stdout,
    );
    // The annotated copy, written once the conversation is understood.
    let comments = annotate::comments(&result.connections);
    let interface = savefile::Interface {
        name: "lo".into(),
        description: format!("loopback of {}", cell_description(result)),
        link,
        frames: frames
            .iter()
            .enumerate()
            .map(|(i, f)| (f, comments.get(&(i + 1)).cloned()))
            .collect(),
    };
    let section = format!(
        "{} — captured by the tcp-conformance harness",
        cell_description(result)
    );
    let path = dir.join("capture.pcapng");
    match savefile::write_atomically(&path, &savefile::pcapng_bytes(&section, &[interface])) {
        Ok(()) => result.pcapng_file = Some(format!("{}/capture.pcapng", result.dir)),
        Err(e) => {
            let message = format!("artifacts not saved: {}: {e}", path.display());
            result.error = Some(match result.error.take() {
                Some(earlier) => format!("{earlier}; {message}"),
                None => message,
            });
        }
    }
    result.frames = frames;
}

/// "scenario hello: python server × rust client", for file comments.
pub fn cell_description(result: &PairingResult) -> String {
    format!(
        "scenario {}: {} server × {} client",
        result.scenario, result.server, result.client
    )
}

/// Writes one pcapng per scenario with every pairing on its own interface,
/// named like the pairing's folder (`python__rust`), so one Wireshark
/// window shows them all and `frame.interface_name == "python__rust"`
/// selects one. Returns the file, relative to `artifacts_root`.
pub fn write_merged(
    scenario: &str,
    results: &[&PairingResult],
    artifacts_root: &Path,
) -> std::io::Result<String> {
    let interfaces: Vec<savefile::Interface<'_>> = results
        .iter()
        .filter_map(|r| {
            let link = r.link?;
            let comments = annotate::comments(&r.connections);
            Some(savefile::Interface {
                name: format!("{}__{}", r.server, r.client),
                description: cell_description(r),
                link,
                frames: r
                    .frames
                    .iter()
                    .enumerate()
                    .map(|(i, f)| (f, comments.get(&(i + 1)).cloned()))
                    .collect(),
            })
        })
        .collect();
    let relative = format!("{scenario}/all-pairings.pcapng");
    let section = format!(
        "scenario {scenario}: every pairing, one interface each — captured by the tcp-conformance harness"
    );
    savefile::write_atomically(
        &artifacts_root.join(&relative),
        &savefile::pcapng_bytes(&section, &interfaces),
    )?;
    Ok(relative)
}

/// The Wireshark display filter that selects one pairing in the merged file.
pub fn merged_filter(server: &str, client: &str) -> String {
    format!("frame.interface_name == \"{server}__{client}\"")
}

#[allow(clippy::too_many_arguments)]
fn analyse(
    result: &mut PairingResult,
    link: LinkType,
    frames: &[Frame],
    server_out: Option<&Output>,
    client_out: Option<&Output>,
    stats: Option<CaptureStats>,
    teardown_seen: bool,
    scenario: &Scenario,
    server_stdout: ServerStdout,
) {
    let (segments, malformed): (Vec<_>, Vec<DissectError>) = dissect::dissect_all(link, frames);
    // Only this pairing's port: a stray packet that slipped in before the
    // filter was installed must not become a connection.
    let port = result.port;
    let segments: Vec<_> = segments
        .into_iter()
        .filter(|s| s.src.port() == port || s.dst.port() == port)
        .collect();
    let connections = conversation::build(&segments);
    let evidence = Evidence {
        message: &scenario.message,
        outcome: scenario.outcome,
        connections: &connections,
        server: server_out,
        client: client_out,
        server_stdout,
        stats,
        teardown_seen,
        malformed: &malformed,
    };
    result.checks = checks::run_all(&evidence);
    result.signature = connections
        .iter()
        .find(|c| c.established() || c.refused())
        .map(signature::signature);
    result.connections = connections;
    result.link = Some(link);
}

/// What the capture of a cell of `scenario` looks like.
///
/// Room in the kernel for a burst of frames: in immediate mode libpcap
/// gives every frame a slot of the snapshot length, so the ring holds
/// buffer / snaplen frames. Loopback sends few big frames, a veth with MTU
/// 1500 many small ones. A bigger ring costs set-up time, so it grows only
/// with the message, and for the veth topology.
fn capture_config(env: &Environment, scenario: &Scenario, veth: bool) -> CaptureConfig {
    // Writes can be small (socat writes 8 KiB at a time), so the frame
    // count is not bounded by the message over the MSS: the ring gets
    // room for many more frames than the message needs at full size. Its
    // set-up cost is paid on the preparing thread, beside the previous cell.
    let buffer_size = if veth {
        64 << 20
    } else {
        (scenario.message.len().saturating_mul(32)).clamp(4 << 20, 64 << 20)
    };
    CaptureConfig {
        buffer_size: buffer_size as i32,
        device: if veth {
            isolation::VETH_SERVER_DEVICE.to_string()
        } else {
            env.capture.device.clone()
        },
        ..env.capture.clone()
    }
}

fn capture_filter(port: u16) -> String {
    format!("tcp port {port}")
}

/// A cell's namespace and capture, made ahead on another thread while the
/// previous cell runs: creating a namespace and opening a packet socket
/// each wait on the kernel, and none of it depends on the previous cell.
struct Prepared {
    netns: std::os::fd::OwnedFd,
    capture: StartingCapture,
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
                let prepared = isolation::enter_fresh_network_namespace()
                    .and_then(|()| std::fs::File::open("/proc/thread-self/ns/net"))
                    .map_err(|e| format!("cannot create a network namespace for this cell: {e}"))
                    .and_then(|ns| {
                        LiveCapture::begin(&config, &filter)
                            .map(|capture| Prepared {
                                netns: ns.into(),
                                capture,
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
        let port = scenario.port.unwrap_or(TUTORIAL_PORT);
        let _ = self
            .jobs
            .send((capture_config(env, scenario, false), capture_filter(port)));
    }

    /// The prepared cell, moved onto the calling thread.
    fn take(&self) -> Result<(CellNetwork, StartingCapture), String> {
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
        Ok((CellNetwork::Namespace, prepared.capture))
    }
}

/// The network a cell runs on, held for the whole cell.
pub enum CellNetwork {
    /// The host's loopback; on a fixed port, with its machine-wide lock.
    Shared(Option<port_lock::PortLock>),
    /// A fresh namespace, the calling thread's, with its own loopback.
    Namespace,
    /// Two namespaces joined by a veth pair; the thread is in the server's.
    Veth(VethCell),
}

/// Gives the calling thread the network its next cell runs on.
fn prepare_network(env: &Environment, scenario: &Scenario) -> Result<CellNetwork, String> {
    match (env.topology, env.isolation.per_cell_namespace()) {
        (Topology::Veth, _) => isolation::enter_veth_pair().map(CellNetwork::Veth),
        (Topology::Loopback, true) => isolation::enter_fresh_network_namespace()
            .map(|()| CellNetwork::Namespace)
            .map_err(|e| format!("cannot create a network namespace for this cell: {e}")),
        (Topology::Loopback, false) => scenario
            .port
            .map(|p| port_lock::lock(p, PORT_LOCK_TIMEOUT, &interrupted))
            .transpose()
            .map(CellNetwork::Shared),
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
                        let stop =
                            fatal.lock().map(|f| f.is_some()).unwrap_or(true) || interrupted();
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
                    // Cells claimed and, with a preparer, being prepared: two
                    // ahead, since opening a capture waits on the kernel
                    // (an RCU grace period, ~7-20 ms here) about as long as
                    // a quick cell runs.
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
                        if interrupted() {
                            break;
                        }
                        let cell = &cells[index];
                        let scenario = &scenarios[cell.scenario];
                        let server = cell.server.as_deref().and_then(|name| manifest.get(name));
                        let started = Instant::now();
                        // Taken even if the cell cannot run, so the preparer's
                        // answers stay in step with the cells.
                        let network = match &preparer {
                            Some(p) => p.take().map(|(network, capture)| (network, Some(capture))),
                            None => prepare_network(env, scenario).map(|network| (network, None)),
                        };
                        claim_next(&mut upcoming);
                        let Some(client) = manifest.get(&cell.client) else {
                            continue;
                        };
                        let (outcome, network) = match network {
                            Ok((network, prestarted)) => (
                                run_pairing(
                                    env,
                                    manifest,
                                    scenario,
                                    server,
                                    client,
                                    artifacts_root,
                                    &network,
                                    prestarted,
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
