//! Running pairings: capture, server, client, drain, save, analyse.
//!
//! The order is fixed: the capture is filtering before the server starts;
//! the client starts only after the server said it is ready; the capture is
//! drained until the teardown is seen. Whatever goes wrong (a timeout, a
//! crash, Ctrl-C), both programs are killed, the capture and the programs'
//! output are still saved, and the pairing is reported with the reason.

use std::net::TcpListener;
use std::path::{Path, PathBuf};

use std::time::{Duration, Instant};

use wire::dissect::LinkType;

use crate::calls::{strace, Recorded, Side};
use crate::capture::annotate;
use crate::capture::{self, CaptureConfig, CaptureError, Captured, LiveCapture, Window};
use crate::exec::backlog::{self, ListenCounters, Settled};
use crate::exec::network::{self, CellNetwork, Isolation, Topology, VethCell};
use crate::exec::process::{Child, Output, WaitError};
use crate::exec::timing::{StageTime, Stopwatch};
use crate::exec::Cancel;
use crate::suite::manifest::{self, Implementation, Manifest, ServerStdout, Substitutions};
use crate::suite::scenario::{Outcome, Scenario};
use crate::verdict::result::{analyse, CellRecord, PairingResult};

use super::artifacts::CellFolder;
use std::rc::Rc;

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

/// Where things are and how to run them.
#[derive(Debug, Clone)]
pub struct Environment {
    pub root: PathBuf,
    pub bin: PathBuf,
    pub isolation: Isolation,
    pub topology: Topology,
    pub capture: CaptureConfig,
    pub timeouts: Timeouts,
    /// Asks every wait to stop: Ctrl-C, SIGTERM.
    pub cancel: Cancel,
}

/// A free port on `host`, found by binding port 0 and letting go. Another
/// process could take it in between; the runner retries if the server then
/// fails to start.
fn free_port(host: &str) -> std::io::Result<u16> {
    let listener = TcpListener::bind((host, 0))?;
    listener.local_addr().map(|a| a.port())
}

/// One cell about to run: what it runs and where its artifacts go.
pub struct CellToRun<'a> {
    pub manifest: &'a Manifest,
    pub scenario: &'a Scenario,
    /// `None` in a scenario without a server (refused).
    pub server: Option<&'a Implementation>,
    pub client: &'a Implementation,
    /// The run's artifacts; the cell writes into its own folder below.
    pub artifacts_root: &'a Path,
}

/// Runs one pairing and writes its artifacts under `dir`. With no `server`
/// (a refused scenario) only the client runs, against a port nobody holds.
/// `source` says whether the cell opens a capture of its own or takes a
/// window of its worker's.
pub fn run_pairing(
    env: &Environment,
    cell: &CellToRun<'_>,
    network: &CellNetwork,
    source: CaptureSource,
    timings: Vec<StageTime>,
) -> Result<Finishing, CaptureError> {
    let mut watch = Stopwatch::start();
    let CellToRun {
        manifest,
        scenario,
        server,
        client,
        artifacts_root,
    } = *cell;
    let mut result = PairingResult::not_started(scenario, server, client, String::new());
    result.error = None;
    result.timings = timings;
    let placed = CellFolder::create(artifacts_root, &result.dir)
        .and_then(|folder| Ok((folder.place_message(&scenario.message)?, folder)));
    let (message_file, folder) = match placed {
        Ok(placed) => placed,
        Err(e) => {
            result.error = Some(e);
            return Ok(Finishing::Done(result));
        }
    };
    let dir = folder.dir.clone();

    let host = match network {
        CellNetwork::Veth(_) => VethCell::server_host(&scenario.host),
        _ => scenario.host.as_str(),
    };
    let client_netns = match network {
        CellNetwork::Veth(cell) => Some(std::os::fd::AsFd::as_fd(&cell.client_netns)),
        _ => None,
    };
    // In a namespace of its own a cell has the loopback to itself, so it
    // uses the scenario's port or the tutorial's.
    let fixed_port = scenario.port.or(env
        .isolation
        .per_cell_namespace()
        .then_some(tutorial::DEFAULT_PORT));
    // The scenario's network conditions, in the namespace made for this
    // cell (see `matrix::workers`), before anything of the cell runs.
    let mut conditions = None;
    if !scenario.conditions.is_empty() {
        let applied = match fixed_port {
            Some(port) => {
                crate::exec::conditions::apply(&scenario.conditions, port, &dir, client_netns)
            }
            None => Err("network conditions need a namespace of the cell's own".into()),
        };
        match applied {
            Ok(active) => conditions = Some(active),
            Err(e) => {
                result.error = Some(e);
                return Ok(Finishing::Done(result));
            }
        }
    }
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
    // A cell that ends early is still saved and analysed, with what it has.
    let finish_early = |result: PairingResult, capture: CellCapture, server_out| {
        PendingFinish {
            result,
            folder: folder.clone(),
            captured: capture.finish(),
            server_out,
            client_out: None,
            more_clients: Vec::new(),
            teardown_seen: false,
            server_stdout,
        }
        .finish(scenario)
    };

    let capture_config = match network {
        CellNetwork::Veth(_) => env
            .capture
            .for_message(scenario.message.len(), Some(network::VETH_SERVER_DEVICE)),
        _ => env.capture.for_message(scenario.message.len(), None),
    };
    // In a scenario that records socket calls, each program runs under
    // strace, which writes them beside its output.
    let traced = |who: &str, argv: Vec<String>| {
        if scenario.record_calls {
            strace::wrap(&argv, &folder.trace(who).0)
        } else {
            argv
        }
    };
    let server_argv = |port| {
        traced(
            "server",
            manifest::expand(
                server.and_then(|s| s.server.as_deref()).unwrap_or_default(),
                &substitutions(port),
            ),
        )
    };
    let how = ServerStart {
        server,
        fixed_port,
        host,
        capture_config: &capture_config,
        argv: &server_argv,
    };
    result.timings.push(watch.lap("cell folder and message"));
    let started = start_server(env, &how, source, &mut result)?;
    result
        .timings
        .push(watch.lap("server started, capture ready"));
    let (live, mut server_child, port) = match started {
        Started::Listening { live, server, port } => (live, server, port),
        Started::NoPort => return Ok(Finishing::Done(result)),
        Started::Failed { live, server_out } => {
            return Ok(Finishing::Done(finish_early(result, live, server_out)))
        }
    };

    let subs = substitutions(port);
    let client_argv = manifest::expand(client.client.as_deref().unwrap_or_default(), &subs);
    let stdin = client
        .stdin
        .as_deref()
        .map(|template| PathBuf::from(manifest::expand_one(template, &subs)));
    let mut errors = Vec::new();
    // With several clients the server is held still while they connect,
    // so its backlog fills the same way on every run (`exec::backlog`).
    let held = server_child
        .as_ref()
        .filter(|_| scenario.conditions.holds_server());
    if let Some(server) = held {
        if !server.stop(backlog::SETTLE_BOUND) {
            errors.push(format!(
                "the server did not stop within {} s of SIGSTOP, so it may have accepted a client before the backlog filled",
                backlog::SETTLE_BOUND.as_secs()
            ));
        }
    }
    let mut client_children = Vec::new();
    for index in 0..scenario.conditions.clients {
        // The first client is the one compared (and traced); the others
        // are there to fill the backlog, and are compared by their fate.
        let (name, argv) = match index {
            0 => (
                format!("{} client", client.name),
                traced("client", client_argv.clone()),
            ),
            n => (
                format!("{} client {}", client.name, n + 1),
                client_argv.clone(),
            ),
        };
        let before = match held.map(|_| ListenCounters::read()) {
            Some(Err(e)) => {
                errors.push(format!("cannot read the kernel's listen counters: {e}"));
                None
            }
            Some(Ok(counters)) => Some(counters),
            None => None,
        };
        let child = match Child::spawn_in(
            &name,
            &argv,
            Some(&env.root),
            stdin.as_deref(),
            client_netns,
        ) {
            Ok(c) => c,
            Err(e) if index == 0 => {
                result.error = Some(e.to_string());
                let server_out = server_child.as_mut().map(Child::kill);
                return Ok(Finishing::Done(finish_early(result, live, server_out)));
            }
            Err(e) => {
                errors.push(e.to_string());
                break;
            }
        };
        if let Some(before) = before {
            if backlog::wait_settled(&before, &child, &env.cancel) == Settled::TimedOut {
                errors.push(format!(
                    "{name} had neither connected nor been dropped after {} s, so the backlog did not fill as the scenario says",
                    backlog::SETTLE_BOUND.as_secs()
                ));
            }
        }
        client_children.push(child);
    }
    if let Some(server) = held {
        server.resume();
    }
    // One deadline for all of them: they run at once.
    let deadline = Instant::now() + env.timeouts.exit;
    let mut client_outs: Vec<Output> = client_children
        .iter_mut()
        .map(|child| {
            let left = deadline.saturating_duration_since(Instant::now());
            child
                .wait(left, &|| env.cancel.is_cancelled())
                .unwrap_or_else(|e| {
                    errors.push(e.to_string());
                    child.kill()
                })
        })
        .collect();
    let client_out = client_outs.remove(0);
    let more_clients = client_outs;
    result.timings.push(watch.lap("client run"));
    let server_out = server_child.as_mut().map(|child| {
        child
            .wait(env.timeouts.exit, &|| env.cancel.is_cancelled())
            .unwrap_or_else(|e| {
                errors.push(e.to_string());
                child.kill()
            })
    });
    result.timings.push(watch.lap("server exit"));

    let teardown_seen = capture::drain(
        live.live(),
        env.timeouts.drain,
        &|| env.cancel.is_cancelled(),
        scenario.outcome != Outcome::Unanswered,
    );
    result.timings.push(watch.lap("drain"));
    if let Some(active) = conditions {
        match active.finish(&scenario.conditions.rules) {
            Ok(applied) if applied.is_empty() => {}
            Ok(applied) => result.conditions = Some(applied),
            Err(e) => errors.push(format!("the network rules: {e}")),
        }
    }
    if !errors.is_empty() {
        result.error = Some(errors.join("; "));
    }
    // The cell's frames, cut from the capture now: a worker's capture goes
    // on to the next cell, a cell's own is closed by its thread.
    let captured = live.finish();
    result.timings.push(watch.lap("capture cut"));
    if env.cancel.is_cancelled() && result.error.is_none() {
        result.error = Some("interrupted".into());
    }
    // Saving and analysing are left to the caller, which runs them beside
    // the next cell: the programs are done and the capture is complete.
    Ok(Finishing::Pending(Box::new(PendingFinish {
        result,
        folder,
        captured,
        server_out,
        client_out: Some(client_out),
        more_clients,
        teardown_seen,
        server_stdout,
    })))
}

/// How starting a cell's server went.
enum Started {
    /// The server said it is ready (or the scenario has none), with the
    /// capture running.
    Listening {
        live: CellCapture,
        server: Option<Child>,
        port: u16,
    },
    /// No free port could be found; nothing ran.
    NoPort,
    /// The server could not be started or never became ready: the reason
    /// is in the result, and what there is gets saved.
    Failed {
        live: CellCapture,
        server_out: Option<Output>,
    },
}

/// What starting a cell's server needs to know.
struct ServerStart<'a> {
    /// `None` in a scenario without a server: only the capture starts.
    server: Option<&'a Implementation>,
    /// The scenario's port, or the tutorial's in a namespace of its own;
    /// `None` takes a free one.
    fixed_port: Option<u16>,
    host: &'a str,
    capture_config: &'a CaptureConfig,
    /// The server's command line for a port.
    argv: &'a dyn Fn(u16) -> Vec<String>,
}

/// Opens the cell's capture (or a window of its worker's) and starts its
/// server, waiting for the ready line. A free port can be taken by another
/// process before the server binds it; then the server exits early and a
/// new port is tried. A fixed port is the scenario's point, so it is never
/// swapped.
fn start_server(
    env: &Environment,
    how: &ServerStart<'_>,
    source: CaptureSource,
    result: &mut PairingResult,
) -> Result<Started, CaptureError> {
    const PORT_TRIES: usize = 3;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let port = match how.fixed_port {
            Some(port) => port,
            None => match free_port(how.host) {
                Ok(p) => p,
                Err(e) => {
                    result.error = Some(format!("cannot find a free port on {}: {e}", how.host));
                    return Ok(Started::NoPort);
                }
            },
        };
        result.port = port;
        // The socket is set up while the server starts; the client starts
        // only once both are ready.
        let starting = source.begin(how.capture_config, port)?;
        let Some(server) = how.server else {
            return Ok(Started::Listening {
                live: starting.ready()?,
                server: None,
                port,
            });
        };
        let name = format!("{} server", server.name);
        let mut child = match Child::spawn(&name, &(how.argv)(port), Some(&env.root), None) {
            Ok(c) => c,
            Err(e) => {
                result.error = Some(e.to_string());
                return Ok(Started::Failed {
                    live: starting.ready()?,
                    server_out: None,
                });
            }
        };
        let ready = server.ready.clone();
        let wait = child.wait_for_line(
            env.timeouts.ready,
            &|| env.cancel.is_cancelled(),
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
                Ok(live) => {
                    return Ok(Started::Listening {
                        live,
                        server: Some(child),
                        port,
                    })
                }
                Err(e) => {
                    let _ = child.kill();
                    return Err(e);
                }
            },
            Err(WaitError::ExitedEarly { .. })
                if attempt < PORT_TRIES && how.fixed_port.is_none() =>
            {
                let _ = child.kill();
                drop(starting);
            }
            Err(e) => {
                let output = child.kill();
                result.error = Some(e.to_string());
                return Ok(Started::Failed {
                    live: starting.ready()?,
                    server_out: Some(output),
                });
            }
        }
    }
}

/// Where a cell's capture comes from.
pub enum CaptureSource {
    /// A capture opened for the cell alone, on its port, and closed with it.
    Own,
    /// The worker's long-lived capture in its namespace (see
    /// `matrix::workers`): the cell takes the window of it from its start.
    Pooled(Rc<LiveCapture>),
}

impl CaptureSource {
    fn begin(&self, config: &CaptureConfig, port: u16) -> Result<Starting, CaptureError> {
        Ok(match self {
            CaptureSource::Own => {
                Starting::Own(LiveCapture::begin(config, &capture::port_filter(port))?)
            }
            CaptureSource::Pooled(live) => Starting::Ready(CellCapture {
                window: live.open_window()?,
                live: Capturing::Pooled(Rc::clone(live)),
            }),
        })
    }
}

/// A cell's capture on its way: its own still opening, or a window taken.
enum Starting {
    Own(crate::capture::StartingCapture),
    Ready(CellCapture),
}

impl Starting {
    fn ready(self) -> Result<CellCapture, CaptureError> {
        match self {
            Starting::Own(starting) => Ok(CellCapture {
                live: Capturing::Own(starting.ready()?),
                window: Window::whole(),
            }),
            Starting::Ready(capture) => Ok(capture),
        }
    }
}

/// The capture a cell's frames come from, and where its part begins.
pub struct CellCapture {
    live: Capturing,
    window: Window,
}

enum Capturing {
    Own(LiveCapture),
    Pooled(Rc<LiveCapture>),
}

impl CellCapture {
    fn live(&self) -> &LiveCapture {
        match &self.live {
            Capturing::Own(live) => live,
            Capturing::Pooled(live) => live,
        }
    }

    /// The cell's frames and counters; a capture of its own is then
    /// closed (by its thread, off this one's path).
    fn finish(self) -> Result<Captured, CaptureError> {
        self.live().close_window(self.window)
    }
}

/// A run cell, saved and analysed or about to be.
#[allow(clippy::large_enum_variant)] // moved once per cell; boxing gains nothing
pub enum Finishing {
    Done(PairingResult),
    Pending(Box<PendingFinish>),
}

/// Everything a cell left for [`PendingFinish::finish`] once its programs
/// have exited.
pub struct PendingFinish {
    result: PairingResult,
    folder: CellFolder,
    captured: Result<Captured, CaptureError>,
    server_out: Option<Output>,
    client_out: Option<Output>,
    /// The clients after the first, in the order they started (a scenario
    /// with `clients` > 1).
    more_clients: Vec<Output>,
    teardown_seen: bool,
    server_stdout: ServerStdout,
}

impl Finishing {
    /// The same cell with `error` added to its result.
    pub fn with_error(mut self, error: String) -> Finishing {
        let result = match &mut self {
            Finishing::Done(result) => result,
            Finishing::Pending(p) => &mut p.result,
        };
        result.add_error(error);
        self
    }

    /// Saves and analyses a pending cell of `scenario`.
    pub fn complete(self, scenario: &Scenario) -> PairingResult {
        match self {
            Finishing::Done(result) => result,
            Finishing::Pending(p) => p.finish(scenario),
        }
    }
}

impl PendingFinish {
    /// Stops the capture, saves every artifact, and analyses what was
    /// captured.
    fn finish(self, scenario: &Scenario) -> PairingResult {
        let PendingFinish {
            result: mut owned,
            folder,
            captured,
            server_out,
            client_out,
            more_clients,
            teardown_seen,
            server_stdout,
        } = self;
        let result = &mut owned;
        let mut watch = Stopwatch::start();
        // Every file not saved, one line each, reported once at the end.
        let mut unsaved = Vec::new();
        let more = more_clients
            .iter()
            .enumerate()
            .map(|(i, out)| (format!("client-{}", i + 2), Some(out)));
        let outputs = [
            ("server".to_string(), server_out.as_ref()),
            ("client".to_string(), client_out.as_ref()),
        ];
        for (who, out) in outputs.into_iter().chain(more) {
            if let Some(out) = out {
                unsaved.extend(folder.save_output(&who, out));
            }
        }
        if scenario.record_calls {
            read_calls(result, &folder, server_out.is_some(), client_out.is_some());
        }
        result.server_exit = server_out.as_ref().map(Output::status_text);
        result.client_exit = client_out.as_ref().map(Output::status_text);
        result.timings.push(watch.lap("save outputs"));

        let (frames, link, stats) = match captured {
            Ok(captured) => {
                result.stats = Some(captured.stats);
                (captured.frames, captured.link, Some(captured.stats))
            }
            Err(e) => {
                unsaved.push(e.to_string());
                (Vec::new(), LinkType::Ethernet, None)
            }
        };
        match folder.save_pcap(link, &frames) {
            Ok(name) => result.capture_file = Some(name),
            Err(e) => unsaved.push(e),
        }
        result.timings.push(watch.lap("save capture.pcap"));
        analyse(
            result,
            &CellRecord {
                link,
                frames: &frames,
                server: server_out.as_ref(),
                client: client_out.as_ref(),
                more_clients: &more_clients,
                stats,
                teardown_seen,
                server_stdout,
            },
            scenario,
        );
        result.timings.push(watch.lap("analysis"));
        // The annotated copy, written once the conversation is understood.
        let interface = annotate::annotated_interface(
            "lo".into(),
            format!("loopback of {}", result.id.description()),
            link,
            &frames,
            &result.connections,
        );
        let section = format!(
            "{} — captured by the tcp-conformance harness",
            result.id.description()
        );
        match folder.save_pcapng(&section, interface) {
            Ok(name) => result.pcapng_file = Some(name),
            Err(e) => unsaved.push(e),
        }
        result.timings.push(watch.lap("save capture.pcapng"));
        if !unsaved.is_empty() {
            result.add_error(format!("artifacts not saved: {}", unsaved.join("; ")));
        }
        owned
    }
}

/// Reads the socket calls strace recorded for the programs that ran. A
/// trace that cannot be read is the cell's error: a scenario that records
/// calls must never pass on the wire alone.
fn read_calls(result: &mut PairingResult, folder: &CellFolder, server_ran: bool, client_ran: bool) {
    let mut problems = Vec::new();
    for (who, ran) in [(Side::Server, server_ran), (Side::Client, client_ran)] {
        if !ran {
            continue;
        }
        let (path, trace_file) = folder.trace(who.name());
        let recorded = match std::fs::read_to_string(&path) {
            Ok(text) => Recorded {
                trace_file,
                calls: strace::parse(&text, result.port),
                error: None,
            },
            Err(e) => {
                let error = format!("socket calls not recorded: {trace_file}: {e}");
                problems.push(error.clone());
                Recorded {
                    trace_file,
                    calls: Vec::new(),
                    error: Some(error),
                }
            }
        };
        match who {
            Side::Server => result.calls.server = Some(recorded),
            Side::Client => result.calls.client = Some(recorded),
        }
    }
    if !problems.is_empty() {
        result.add_error(problems.join("; "));
    }
}
