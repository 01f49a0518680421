//! `harness`: run every server × client pairing under a loopback capture
//! and report what differs on the wire. See the README for the exit codes.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::Duration;

use clap::{Parser, Subcommand};
use harness::baseline::{self, Baseline};
use harness::capture::CaptureConfig;
use harness::inspect;
use harness::manifest::Manifest;
use harness::plan::{self, PlannedCell, Selection};
use harness::report::{self, Cell};
use harness::runner::{self, Environment, Timeouts, INTERRUPTED};
use harness::scenario::{self, Scenario};

/// Exit codes: 0 everything conforms (matches the baseline, or without one
/// every cell passed), 1 a cell changed, differs or failed, 2 usage or
/// environment error, 130 interrupted.
const EXIT_USAGE: u8 = 2;
const EXIT_INTERRUPTED: u8 = 130;

#[derive(Parser)]
#[command(name = "harness", version, about = "Run every server × client pairing under a loopback capture and compare the conversations on the wire.", long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the matrix and report verdicts (exit 0 as the baseline expects, 1 a change or failure, 2 usage/environment error, 130 interrupted).
    Run(Box<RunArgs>),
    /// Print the field policy table: what is compared exactly, relative to the ISN, by meaning, or ignored.
    Policy,
    /// Explain any pcap or pcapng: its TCP connections, their compared fields and ladder diagrams.
    Inspect {
        /// A capture file, e.g. one saved from Wireshark or tcpdump
        file: PathBuf,
        /// Only the connection(s) with this port at either end
        #[arg(long)]
        port: Option<u16>,
    },
    /// Compare the handshakes of two captures under the matrix's field policies (exit 0 same, 1 different).
    Diff {
        a: PathBuf,
        b: PathBuf,
        /// Compare the connection on this port in both files [default: the first established or refused one]
        #[arg(long)]
        port: Option<u16>,
    },
    /// Two pairings' ladder diagrams side by side, differing fields highlighted. Each is a capture file, a cell folder, or SCENARIO/SERVER__CLIENT in the latest run.
    Show {
        a: String,
        b: String,
        /// The run to look in for SCENARIO/SERVER__CLIENT [default: target/harness/latest]
        #[arg(long, value_name = "DIR")]
        artifacts: Option<PathBuf>,
    },
}

#[derive(clap::Args)]
struct RunArgs {
    /// Implementations manifest [default: tests/implementations.toml in the workspace]
    #[arg(long, value_name = "PATH")]
    manifest: Option<PathBuf>,
    /// Directory of scenario files [default: tests/scenarios in the workspace]
    #[arg(long, value_name = "DIR")]
    scenarios: Option<PathBuf>,
    /// Expected verdicts [default: tests/baseline.toml in the workspace, if it exists]
    #[arg(long, value_name = "PATH", conflicts_with = "no_baseline")]
    baseline: Option<PathBuf>,
    /// Grade without a baseline: exit 0 only if every cell that ran is PASS
    #[arg(long)]
    no_baseline: bool,
    /// Write this run's verdicts into the baseline file instead of comparing
    #[arg(long, conflicts_with = "no_baseline")]
    update_baseline: bool,
    /// List the implementations and scenarios, with what each supports, and exit
    #[arg(long)]
    list: bool,
    /// Workspace root, for {root} in commands [default: found from the current directory]
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,
    /// Directory for {bin} in commands [default: the harness binary's directory]
    #[arg(long, value_name = "DIR")]
    bin_dir: Option<PathBuf>,
    /// Where captures and outputs go [default: target/harness/run-<time>-<pid>]
    #[arg(long, value_name = "DIR")]
    artifacts: Option<PathBuf>,
    /// Pairings run at the same time [default: number of cores]
    #[arg(long, short = 'j')]
    jobs: Option<usize>,
    /// Only servers whose name matches this glob (repeatable)
    #[arg(long, value_name = "GLOB")]
    server: Vec<String>,
    /// Only clients whose name matches this glob (repeatable)
    #[arg(long, value_name = "GLOB")]
    client: Vec<String>,
    /// Only scenarios whose name matches this glob (repeatable)
    #[arg(long, value_name = "GLOB")]
    scenario: Vec<String>,
    /// Seconds to wait for a server's ready line
    #[arg(long, default_value = "10", value_name = "SECS")]
    ready_timeout: f64,
    /// Seconds to wait for each program to exit
    #[arg(long, default_value = "10", value_name = "SECS")]
    exit_timeout: f64,
    /// Seconds to wait for the teardown to show in the capture
    #[arg(long, default_value = "2", value_name = "SECS")]
    drain_timeout: f64,
    /// Capture device
    #[arg(long, default_value = "lo")]
    device: String,
    /// Bytes kept of each packet; 128 keeps every header and drops the payload (bytes are then checked by length and in the server's output)
    #[arg(long, default_value = "65600", value_name = "BYTES")]
    snaplen: u32,
    /// How each cell's client reaches its server: one loopback, or two namespaces joined by a veth pair with MTU 1500 (needs netns or userns)
    #[arg(long, value_enum, default_value = "loopback")]
    topology: harness::isolation::Topology,
    /// How cells are kept apart: auto picks netns with root, else userns, else ports
    #[arg(long, value_enum, default_value = "auto")]
    isolation: harness::isolation::Requested,
    /// Print the JSON summary on stdout instead of the terminal report
    #[arg(long)]
    json: bool,
    /// Run the matrix N times and report any cell whose verdict changes as flaky
    #[arg(long, default_value = "1", value_name = "N")]
    repeat: usize,
    /// No progress while the matrix runs, only the report
    #[arg(long, short = 'q')]
    quiet: bool,
}

fn main() -> ExitCode {
    // Parsed before anything else, and isolation chosen while the process
    // still has a single thread: a user namespace cannot be entered later.
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            use clap::error::ErrorKind;
            if matches!(
                err.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                let _ = err.print();
                return if err.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                    ExitCode::from(EXIT_USAGE)
                } else {
                    ExitCode::SUCCESS
                };
            }
            let text = err.to_string();
            let first = text.lines().next().unwrap_or("invalid arguments");
            eprintln!(
                "harness: {}; see harness --help",
                first.strip_prefix("error: ").unwrap_or(first)
            );
            return ExitCode::from(EXIT_USAGE);
        }
    };
    match cli.command {
        Command::Policy => {
            print!("{}", report::render_policy());
            ExitCode::SUCCESS
        }
        Command::Inspect { file, port } => {
            match inspect::load(&file).and_then(|c| inspect::render_inspect(&c, port)) {
                Ok(text) => {
                    print!("{text}");
                    ExitCode::SUCCESS
                }
                Err(e) => usage_error(&e.to_string()),
            }
        }
        Command::Diff { a, b, port } => {
            let loaded = inspect::load(&a).and_then(|a| Ok((a, inspect::load(&b)?)));
            match loaded.and_then(|(a, b)| inspect::render_diff(&a, &b, port)) {
                Ok((text, same)) => {
                    print!("{text}");
                    if same {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::from(1)
                    }
                }
                Err(e) => usage_error(&e.to_string()),
            }
        }
        Command::Show { a, b, artifacts } => {
            let resolve = |name: &str| resolve_capture(name, artifacts.as_deref());
            let shown = resolve(&a)
                .and_then(|a| Ok((a, resolve(&b)?)))
                .and_then(|(a, b)| {
                    let (a, b) = (inspect::load(&a), inspect::load(&b));
                    let (a, b) = (a.map_err(|e| e.to_string())?, b.map_err(|e| e.to_string())?);
                    inspect::render_show(&a, &b, harness::ladder::Paint::for_stdout())
                        .map_err(|e| e.to_string())
                });
            match shown {
                Ok(text) => {
                    print!("{text}");
                    ExitCode::SUCCESS
                }
                Err(e) => usage_error(&e),
            }
        }
        Command::Run(args) => match harness::isolation::choose(args.isolation)
            .and_then(|isolation| run(*args, isolation))
        {
            Ok(code) => ExitCode::from(code),
            Err(message) => {
                eprintln!("harness: {message}");
                ExitCode::from(EXIT_USAGE)
            }
        },
    }
}

/// Progress while the matrix runs, on stderr: one line rewritten in place
/// on a terminal, one line per finished cell otherwise (a CI log), nothing
/// with --quiet or --json.
struct Progress {
    total: usize,
    finished: std::sync::atomic::AtomicUsize,
    quiet: bool,
    terminal: bool,
}

impl Progress {
    fn new(total: usize, quiet: bool) -> Progress {
        use std::io::IsTerminal;
        Progress {
            total,
            finished: std::sync::atomic::AtomicUsize::new(0),
            quiet,
            terminal: std::io::stderr().is_terminal(),
        }
    }

    fn done(&self, r: &runner::PairingResult) {
        let n = self.finished.fetch_add(1, Ordering::SeqCst) + 1;
        if self.quiet {
            return;
        }
        let state = if r.passed_checks() { "ok" } else { "FAILED" };
        let line = format!(
            "[{n}/{}] {} / {}: {state}",
            self.total,
            r.scenario,
            r.label()
        );
        if self.terminal {
            eprint!("\r\x1b[2K{line}");
        } else {
            eprintln!("  {line}");
        }
    }

    fn finish(&self) {
        if self.terminal && !self.quiet && self.finished.load(Ordering::SeqCst) > 0 {
            eprintln!();
        }
    }
}

fn usage_error(message: &str) -> ExitCode {
    eprintln!("harness: {message}");
    ExitCode::from(EXIT_USAGE)
}

/// A capture named on the command line: a file, a cell's folder (its
/// annotated capture), or SCENARIO/SERVER__CLIENT inside a run's artifacts.
fn resolve_capture(name: &str, artifacts: Option<&Path>) -> Result<PathBuf, String> {
    let in_dir = |dir: &Path| {
        ["capture.pcapng", "capture.pcap"]
            .iter()
            .map(|f| dir.join(f))
            .find(|p| p.is_file())
    };
    let given = Path::new(name);
    if given.is_file() {
        return Ok(given.to_path_buf());
    }
    if given.is_dir() {
        return in_dir(given)
            .ok_or_else(|| format!("{name} holds no capture.pcapng or capture.pcap"));
    }
    let run = match artifacts {
        Some(dir) => dir.to_path_buf(),
        None => {
            let cwd = std::env::current_dir()
                .map_err(|e| format!("cannot read the current directory: {e}"))?;
            find_root(&cwd)
                .ok_or("cannot find the workspace for target/harness/latest; pass --artifacts DIR")?
                .join("target/harness/latest")
        }
    };
    in_dir(&run.join(name)).ok_or_else(|| {
        format!(
            "'{name}' is not a capture file, a cell folder, or SCENARIO/SERVER__CLIENT in {}; e.g. hello/python__rust",
            run.display()
        )
    })
}

/// The nearest ancestor of `start` holding the default manifest.
fn find_root(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .find(|dir| dir.join("tests/implementations.toml").is_file())
        .map(Path::to_path_buf)
}

fn seconds(name: &str, value: f64) -> Result<Duration, String> {
    Duration::try_from_secs_f64(value)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| format!("--{name} must be a positive number of seconds, got {value}"))
}

/// The implementations and scenarios, with what each supports: the rows
/// and columns of the matrix before anything runs.
fn render_list(manifest: &Manifest, scenarios: &[Scenario]) -> String {
    let mut rows = vec![
        ["implementation", "language", "roles", "features", "status"]
            .map(String::from)
            .to_vec(),
    ];
    for i in &manifest.implementations {
        let roles: Vec<&str> = [
            ("server", i.server.is_some()),
            ("client", i.client.is_some()),
        ]
        .into_iter()
        .filter_map(|(r, has)| has.then_some(r))
        .collect();
        let missing = i.missing_programs();
        let mut status = if missing.is_empty() {
            "available".to_string()
        } else {
            format!("UNAVAILABLE: missing {}", missing.join(", "))
        };
        if i.name == manifest.reference {
            status.push_str(", the reference");
        }
        let features: Vec<&str> = i.features.iter().map(String::as_str).collect();
        rows.push(vec![
            i.name.clone(),
            i.language.clone(),
            roles.join(", "),
            if features.is_empty() {
                "-".into()
            } else {
                features.join(", ")
            },
            status,
        ]);
    }
    let mut out = format!(
        "Implementations ({}):\n\n{}",
        manifest.path.display(),
        report::table(&rows)
    );
    let mut rows = vec![[
        "scenario",
        "sends",
        "on",
        "expects",
        "reference",
        "unsupported by",
        "description",
    ]
    .map(String::from)
    .to_vec()];
    for s in scenarios {
        let unsupported: Vec<&str> = manifest
            .implementations
            .iter()
            .filter(|i| i.unsupported_reason(&s.name, &s.requires).is_some())
            .map(|i| i.name.as_str())
            .collect();
        rows.push(vec![
            s.name.clone(),
            format!("{} bytes", s.message.len()),
            match s.port {
                Some(p) => format!("{} port {p}", s.host),
                None => s.host.clone(),
            },
            format!("{:?}", s.outcome).to_lowercase(),
            plan::reference_of(manifest, s).to_string(),
            if unsupported.is_empty() {
                "-".into()
            } else {
                unsupported.join(", ")
            },
            s.description.clone(),
        ]);
    }
    out.push_str("\nScenarios:\n\n");
    out.push_str(&report::table(&rows));
    out
}

fn run(args: RunArgs, isolation: harness::isolation::Isolation) -> Result<u8, String> {
    let exe =
        std::env::current_exe().map_err(|e| format!("cannot locate the harness binary: {e}"))?;
    let bin = match args.bin_dir {
        Some(dir) => dir,
        None => exe
            .parent()
            .map(Path::to_path_buf)
            .ok_or("the harness binary has no directory")?,
    };
    let cwd =
        std::env::current_dir().map_err(|e| format!("cannot read the current directory: {e}"))?;
    let root = match args.root {
        Some(root) => root,
        None => find_root(&cwd).or_else(|| find_root(&bin)).ok_or(
            "cannot find tests/implementations.toml in the current directory or above; run from the workspace, or pass --root DIR and --manifest PATH",
        )?,
    };
    let manifest_path = args
        .manifest
        .unwrap_or_else(|| root.join("tests/implementations.toml"));
    let manifest = Manifest::load(&manifest_path).map_err(|e| e.to_string())?;
    let scenarios_dir = args
        .scenarios
        .unwrap_or_else(|| root.join("tests/scenarios"));
    let scenarios = scenario::load_dir(&scenarios_dir).map_err(|e| e.to_string())?;
    if args.list {
        print!("{}", render_list(&manifest, &scenarios));
        return Ok(0);
    }
    let baseline_path = match (&args.baseline, args.no_baseline) {
        (_, true) => None,
        (Some(path), false) => Some(path.clone()),
        (None, false) => {
            let default = root.join("tests/baseline.toml");
            (default.is_file() || args.update_baseline).then_some(default)
        }
    };
    let baseline = match &baseline_path {
        Some(path) if path.is_file() => Baseline::load(path).map_err(|e| e.to_string())?,
        Some(path) if !args.update_baseline => {
            return Err(format!(
                "cannot read the baseline {}: no such file; create it with --update-baseline, or pass --no-baseline",
                path.display()
            ))
        }
        _ => Baseline::default(),
    };
    let timeouts = Timeouts {
        ready: seconds("ready-timeout", args.ready_timeout)?,
        exit: seconds("exit-timeout", args.exit_timeout)?,
        drain: seconds("drain-timeout", args.drain_timeout)?,
    };
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    if jobs == 0 {
        return Err("--jobs must be at least 1".into());
    }
    if !(64..=262_144).contains(&args.snaplen) {
        return Err(format!(
            "--snaplen {} is out of range; use 64 (headers only) to 262144",
            args.snaplen
        ));
    }
    if args.topology == harness::isolation::Topology::Veth && !isolation.per_cell_namespace() {
        return Err(
            "--topology veth needs network namespaces; run as root, or without --isolation ports"
                .into(),
        );
    }
    if args.repeat == 0 {
        return Err("--repeat must be at least 1".into());
    }
    if args.repeat > 1 && args.update_baseline {
        return Err("--update-baseline records one run; drop --repeat".into());
    }
    let selection = Selection {
        servers: args.server,
        clients: args.client,
        scenarios: args.scenario,
    };
    let planned: Vec<PlannedCell> = plan::plan(&manifest, &scenarios, &selection)?;
    let runnable = planned.iter().filter(|c| c.skip.is_none()).count();

    let artifacts = match args.artifacts {
        Some(dir) => dir,
        None => {
            let stamp = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            root.join("target/harness")
                .join(format!("run-{stamp}-{}", std::process::id()))
        }
    };
    std::fs::create_dir_all(&artifacts).map_err(|e| {
        format!(
            "cannot create the artifacts directory {}: {e}; pass --artifacts DIR",
            artifacts.display()
        )
    })?;
    let artifacts = artifacts.canonicalize().unwrap_or(artifacts);

    let _ = ctrlc::set_handler(|| INTERRUPTED.store(true, Ordering::SeqCst));
    let env = Environment {
        root: root.clone(),
        bin,
        isolation,
        topology: args.topology,
        capture: CaptureConfig {
            device: args.device,
            snaplen: args.snaplen as i32,
            ..CaptureConfig::default()
        },
        timeouts,
    };
    let quiet = args.json || args.quiet;
    let progress = Progress::new(runnable, quiet);
    let on_done = |r: &runner::PairingResult| progress.done(r);
    if !quiet {
        eprintln!(
            "harness: {} cells in {} scenarios, {runnable} to run, {} at a time; isolation: {}; artifacts in {}",
            planned.len(),
            planned
                .iter()
                .map(|p| p.scenario)
                .collect::<std::collections::BTreeSet<_>>()
                .len(),
            jobs.min(runnable.max(1)),
            isolation.describe(),
            artifacts.display()
        );
        if !isolation.per_cell_namespace() && scenarios.iter().any(|s| s.port.is_some()) {
            eprintln!("harness: warning: without network namespaces, fixed-port scenarios share the host's loopback; a TIME_WAIT left by an earlier cell can change a later SYN (run as root for --isolation netns)");
        }
    }
    let results = runner::run_matrix(
        &env, &manifest, &scenarios, &planned, &artifacts, jobs, &on_done,
    )
    .map_err(|e| e.to_string())?;
    progress.finish();
    // One pcapng per scenario with every pairing on its own interface.
    let mut merged = std::collections::BTreeMap::new();
    let mut merged_errors = Vec::new();
    for (index, scenario) in scenarios.iter().enumerate() {
        let ran: Vec<&runner::PairingResult> = planned
            .iter()
            .zip(&results)
            .filter(|(p, _)| p.scenario == index)
            .filter_map(|(_, r)| r.as_ref())
            .collect();
        if ran.is_empty() {
            continue;
        }
        match runner::write_merged(&scenario.name, &ran, &artifacts) {
            Ok(file) => {
                merged.insert(scenario.name.clone(), file);
            }
            Err(e) => merged_errors.push(format!(
                "cannot write the merged capture of {}: {e}",
                scenario.name
            )),
        }
    }
    let cells = report::grade(&manifest, &scenarios, &planned, results);

    // Further repeats, into artifacts/repeats/NNN; a repeat whose verdicts
    // are all the first run's is deleted, one that differs is kept.
    let mut repeats = harness::repeat::Repeats::default();
    repeats.record(1, &cells);
    for run in 2..=args.repeat {
        if INTERRUPTED.load(Ordering::SeqCst) {
            break;
        }
        let dir = artifacts.join("repeats").join(format!("{run:03}"));
        let results = runner::run_matrix(
            &env,
            &manifest,
            &scenarios,
            &planned,
            &dir,
            jobs,
            &|_: &runner::PairingResult| {},
        )
        .map_err(|e| e.to_string())?;
        let again = report::grade(&manifest, &scenarios, &planned, results);
        let same = repeats.record(run, &again);
        if same {
            let _ = std::fs::remove_dir_all(&dir);
        }
        if !quiet {
            eprintln!(
                "harness: repeat {run}/{}: {}",
                args.repeat,
                if same {
                    "every verdict as in run 1".to_string()
                } else {
                    format!("verdicts differ from run 1; kept in {}", dir.display())
                }
            );
        }
    }
    let _ = std::fs::remove_dir(artifacts.join("repeats"));

    let interrupted = INTERRUPTED.load(Ordering::SeqCst);
    let mut comparison = None;
    if let Some(path) = &baseline_path {
        if args.update_baseline {
            if interrupted {
                return Err("interrupted: the baseline was not updated".into());
            }
            let text = baseline.updated(&cells).to_toml();
            std::fs::write(path, text)
                .map_err(|e| format!("cannot write the baseline {}: {e}", path.display()))?;
            eprintln!("harness: baseline written to {}", path.display());
        } else {
            comparison = Some(baseline::compare(&baseline, path, &cells));
        }
    }
    let code = match &comparison {
        _ if !repeats.flaky().is_empty() => 1,
        Some(c) => i32::from(!c.conforms()),
        None if args.update_baseline => 0,
        None => report::exit_code(&cells),
    };
    let summary = report::Summary {
        schema: 2,
        reference: &manifest.reference,
        isolation,
        topology: args.topology,
        artifacts: artifacts.display().to_string(),
        exit_code: if interrupted {
            i32::from(EXIT_INTERRUPTED)
        } else {
            code
        },
        counts: report::Counts::of(&cells),
        baseline: comparison.as_ref(),
        repeats: (args.repeat > 1).then(|| repeats.summary()),
        merged: &merged,
        cells: &cells,
    };
    let json = serde_json::to_string_pretty(&summary)
        .map_err(|e| format!("cannot encode the summary: {e}"))?;
    // The report goes to stdout whatever happens to the files; a file that
    // cannot be written is an environment error reported after it.
    let mut write_errors = Vec::new();
    let mut write = |path: &Path, bytes: &[u8]| {
        if let Err(e) = std::fs::write(path, bytes) {
            write_errors.push(format!("cannot write {}: {e}", path.display()));
        }
    };
    let summary_path = artifacts.join("summary.json");
    write(&summary_path, json.as_bytes());
    let references: Vec<String> = scenarios
        .iter()
        .map(|s| plan::reference_of(&manifest, s).to_string())
        .collect();
    let html_path = artifacts.join("report.html");
    let html = harness::html::render(&harness::html::Run {
        scenarios: &scenarios,
        cells: &cells,
        references: &references,
        counts: &summary.counts,
        isolation: isolation.describe(),
        comparison: comparison.as_ref(),
        merged: &merged,
        artifacts: &artifacts,
    });
    write(&html_path, html.as_bytes());
    let junit_path = artifacts.join("junit.xml");
    write(
        &junit_path,
        harness::junit::render(&cells, comparison.as_ref()).as_bytes(),
    );
    if args.json {
        println!("{json}");
    } else {
        let mut shown = Vec::new();
        for (index, scenario) in scenarios.iter().enumerate() {
            let cell_refs: Vec<&Cell> = planned
                .iter()
                .zip(&cells)
                .filter(|(p, _)| p.scenario == index)
                .map(|(_, c)| c)
                .collect();
            if !cell_refs.is_empty() {
                println!(
                    "{}",
                    report::render_scenario(
                        scenario,
                        &cell_refs,
                        plan::reference_of(&manifest, scenario),
                        &mut shown
                    )
                );
            }
        }
        println!("Verdicts: {}", summary.counts);
        println!("Isolation: {}", isolation.describe());
        if args.topology == harness::isolation::Topology::Veth {
            println!(
                "Topology: client and server in two namespaces joined by a veth pair, MTU 1500"
            );
        }
        if let Some(c) = &comparison {
            print!("{}", baseline::render(c));
        }
        if args.repeat > 1 {
            print!("{}", repeats.render());
        }
        print!("{}", report::render_artifacts(&cells, &artifacts, &merged));
        println!("  report:  {} (open it in a browser)", html_path.display());
        println!(
            "  summary: {} (JSON), {} (JUnit XML)",
            summary_path.display(),
            junit_path.display()
        );
    }
    if let Some(parent) = artifacts.parent() {
        let latest = parent.join("latest");
        let _ = std::fs::remove_file(&latest);
        #[cfg(unix)]
        let _ = std::os::unix::fs::symlink(&artifacts, &latest);
    }
    if interrupted {
        return Ok(EXIT_INTERRUPTED);
    }
    write_errors.extend(merged_errors);
    if !write_errors.is_empty() {
        return Err(format!(
            "{}; free some space or pass --artifacts DIR",
            write_errors.join("; ")
        ));
    }
    Ok(code as u8)
}
