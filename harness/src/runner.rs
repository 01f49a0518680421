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

use crate::capture::{self, CaptureConfig, CaptureError, CaptureStats, LiveCapture};
use crate::checks::{self, Check, Evidence};
use crate::conversation::{self, Connection};
use crate::dissect::{self, DissectError, Frame, LinkType};
use crate::manifest::{self, Implementation, Manifest, Substitutions};
use crate::process::{Child, Output, WaitError};
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

/// One scenario: what the client sends.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: String,
    pub message: Vec<u8>,
}

impl Scenario {
    /// The tutorial's defaults.
    pub fn hello() -> Scenario {
        Scenario {
            name: "hello".into(),
            message: b"Hello server!".to_vec(),
        }
    }
}

/// Where things are and how to run them.
#[derive(Debug, Clone)]
pub struct Environment {
    pub root: PathBuf,
    pub bin: PathBuf,
    pub host: String,
    pub capture: CaptureConfig,
    pub timeouts: Timeouts,
}

/// What running one pairing produced, before any comparison.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PairingResult {
    pub scenario: String,
    pub server: String,
    pub client: String,
    pub port: u16,
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
    pub server_exit: Option<String>,
    pub client_exit: Option<String>,
}

impl PairingResult {
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

/// Runs one pairing and writes its artifacts under `dir`.
pub fn run_pairing(
    env: &Environment,
    manifest: &Manifest,
    scenario: &Scenario,
    server: &Implementation,
    client: &Implementation,
    artifacts_root: &Path,
) -> Result<PairingResult, CaptureError> {
    let rel_dir = format!("{}/{}__{}", scenario.name, server.name, client.name);
    let dir = artifacts_root.join(&rel_dir);
    let mut result = PairingResult {
        scenario: scenario.name.clone(),
        server: server.name.clone(),
        client: client.name.clone(),
        port: 0,
        dir: rel_dir,
        capture_file: None,
        error: None,
        checks: Vec::new(),
        stats: None,
        connections: Vec::new(),
        signature: None,
        link: None,
        server_exit: None,
        client_exit: None,
    };
    if let Err(e) = std::fs::create_dir_all(&dir) {
        result.error = Some(format!(
            "cannot create artifacts directory {}: {e}",
            dir.display()
        ));
        return Ok(result);
    }
    let message_file = dir.join("message.bin");
    if let Err(e) = std::fs::write(&message_file, &scenario.message) {
        result.error = Some(format!("cannot write {}: {e}", message_file.display()));
        return Ok(result);
    }

    let manifest_dir = manifest.path.parent().unwrap_or(Path::new("."));
    let substitutions = |port| Substitutions {
        root: &env.root,
        bin: &env.bin,
        manifest_dir,
        host: &env.host,
        port,
        message_file: &message_file,
    };

    const PORT_TRIES: usize = 3;
    let mut attempt = 0;
    let (live, mut server_child, port) = loop {
        attempt += 1;
        let port = match free_port(&env.host) {
            Ok(p) => p,
            Err(e) => {
                result.error = Some(format!("cannot find a free port on {}: {e}", env.host));
                return Ok(result);
            }
        };
        result.port = port;
        let live = LiveCapture::start(&env.capture, &format!("tcp port {port}"))?;
        let argv = manifest::expand(
            server.server.as_deref().unwrap_or_default(),
            &substitutions(port),
        );
        let mut child =
            match Child::spawn(&format!("{} server", server.name), &argv, Some(&env.root)) {
                Ok(c) => c,
                Err(e) => {
                    result.error = Some(e.to_string());
                    finish(&mut result, &dir, live, None, None, false, scenario, server);
                    return Ok(result);
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
            Ok(()) => break (live, child, port),
            Err(WaitError::ExitedEarly { .. })
                if attempt < PORT_TRIES
                    && TcpListener::bind((env.host.as_str(), port)).is_err() =>
            {
                // Someone took the port between our check and the server's bind.
                let _ = child.kill();
                drop(live);
                continue;
            }
            Err(e) => {
                let output = child.kill();
                result.error = Some(e.to_string());
                finish(
                    &mut result,
                    &dir,
                    live,
                    Some(output),
                    None,
                    false,
                    scenario,
                    server,
                );
                return Ok(result);
            }
        }
    };

    let argv = manifest::expand(
        client.client.as_deref().unwrap_or_default(),
        &substitutions(port),
    );
    let mut client_child =
        match Child::spawn(&format!("{} client", client.name), &argv, Some(&env.root)) {
            Ok(c) => c,
            Err(e) => {
                result.error = Some(e.to_string());
                let server_out = server_child.kill();
                finish(
                    &mut result,
                    &dir,
                    live,
                    Some(server_out),
                    None,
                    false,
                    scenario,
                    server,
                );
                return Ok(result);
            }
        };
    let client_out = client_child.wait(env.timeouts.exit, &interrupted);
    let server_out = server_child.wait(env.timeouts.exit, &interrupted);
    let mut errors = Vec::new();
    let client_out = client_out.unwrap_or_else(|e| {
        errors.push(e.to_string());
        client_child.kill()
    });
    let server_out = server_out.unwrap_or_else(|e| {
        errors.push(e.to_string());
        server_child.kill()
    });
    if !errors.is_empty() {
        result.error = Some(errors.join("; "));
    }

    // Drain until the conversation is over on the wire.
    let deadline = Instant::now() + env.timeouts.drain;
    let link = live.link();
    let mut teardown_seen = false;
    let mut quiet_since = (Instant::now(), 0usize);
    while Instant::now() < deadline && !interrupted() {
        let frames = live.snapshot();
        let (segments, _) = dissect::dissect_all(link, &frames);
        let connections = conversation::build(&segments);
        if !connections.is_empty() && connections.iter().all(|c| c.close.complete) {
            teardown_seen = true;
            break;
        }
        // No connection at all: nothing more will come once it is quiet.
        if connections.is_empty() {
            if frames.len() != quiet_since.1 {
                quiet_since = (Instant::now(), frames.len());
            } else if quiet_since.0.elapsed() > Duration::from_millis(50) {
                teardown_seen = true;
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    if interrupted() && result.error.is_none() {
        result.error = Some("interrupted".into());
    }
    finish(
        &mut result,
        &dir,
        live,
        Some(server_out),
        Some(client_out),
        teardown_seen,
        scenario,
        server,
    );
    Ok(result)
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
    server: &Implementation,
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
        Ok(captured) => (captured.frames, captured.link, Some(captured.stats)),
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
        server,
    );
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
    server: &Implementation,
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
        connections: &connections,
        server: server_out,
        client: client_out,
        server_transcript: server.transcript,
        stats,
        teardown_seen,
        malformed: &malformed,
    };
    result.checks = checks::run_all(&evidence);
    result.signature = connections
        .iter()
        .find(|c| c.established())
        .map(signature::signature);
    result.connections = connections;
    result.link = Some(link);
}

/// Runs `pairings` on up to `jobs` threads, calling `on_done` as each ends.
/// Results come back in the order of `pairings`.
pub fn run_matrix(
    env: &Environment,
    manifest: &Manifest,
    pairings: &[(Scenario, String, String)],
    artifacts_root: &Path,
    jobs: usize,
    on_done: &(dyn Fn(&PairingResult) + Sync),
) -> Result<Vec<PairingResult>, CaptureError> {
    let next = Mutex::new(0usize);
    let results: Mutex<Vec<Option<PairingResult>>> = Mutex::new(vec![None; pairings.len()]);
    let fatal: Mutex<Option<CaptureError>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1).min(pairings.len().max(1)) {
            scope.spawn(|| loop {
                let index = {
                    let mut n = next.lock().expect("queue lock");
                    if *n >= pairings.len() || fatal.lock().map(|f| f.is_some()).unwrap_or(true) {
                        return;
                    }
                    *n += 1;
                    *n - 1
                };
                let (scenario, server, client) = &pairings[index];
                let (Some(server), Some(client)) = (manifest.get(server), manifest.get(client))
                else {
                    continue;
                };
                match run_pairing(env, manifest, scenario, server, client, artifacts_root) {
                    Ok(result) => {
                        on_done(&result);
                        results.lock().expect("results lock")[index] = Some(result);
                    }
                    Err(e) => {
                        *fatal.lock().expect("fatal lock") = Some(e);
                        return;
                    }
                }
            });
        }
    });
    if let Some(e) = fatal.into_inner().expect("fatal lock") {
        return Err(e);
    }
    Ok(results
        .into_inner()
        .expect("results lock")
        .into_iter()
        .flatten()
        .collect())
}
