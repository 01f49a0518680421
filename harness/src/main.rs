//! `harness`: run every server × client pairing under a loopback capture
//! and report what differs on the wire. See the README for the exit codes.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::Duration;

use clap::{Parser, Subcommand};
use harness::capture::CaptureConfig;
use harness::manifest::{self, Manifest};
use harness::report;
use harness::runner::{self, Environment, Scenario, Timeouts, INTERRUPTED};

/// Exit codes: 0 everything conforms, 1 something differs or failed,
/// 2 usage or environment error, 130 interrupted.
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
    /// Run the matrix and report verdicts (exit 0 all pass, 1 anything differs or fails, 2 usage/environment error).
    Run(RunArgs),
    /// Print the field policy table: what is compared exactly, relative to the ISN, by meaning, or ignored.
    Policy,
}

#[derive(clap::Args)]
struct RunArgs {
    /// Implementations manifest [default: tests/implementations.toml in the workspace]
    #[arg(long, value_name = "PATH")]
    manifest: Option<PathBuf>,
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
    /// Print the JSON summary on stdout instead of the terminal report
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
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
        Command::Run(args) => match run(args) {
            Ok(code) => ExitCode::from(code),
            Err(message) => {
                eprintln!("harness: {message}");
                ExitCode::from(EXIT_USAGE)
            }
        },
    }
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

fn glob_matches(patterns: &[String], name: &str) -> Result<bool, String> {
    if patterns.is_empty() {
        return Ok(true);
    }
    for p in patterns {
        let pattern = glob::Pattern::new(p).map_err(|e| format!("invalid glob '{p}': {e}"))?;
        if pattern.matches(name) {
            return Ok(true);
        }
    }
    Ok(false)
}

fn run(args: RunArgs) -> Result<u8, String> {
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

    // Selection; implementations whose required programs are missing are skipped.
    let mut skipped = Vec::new();
    let mut available = |i: &manifest::Implementation| {
        let missing: Vec<&String> = i
            .requires
            .iter()
            .filter(|p| !manifest::on_path(p))
            .collect();
        if missing.is_empty() {
            true
        } else {
            skipped.push(format!(
                "{} (missing {})",
                i.name,
                missing
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            false
        }
    };
    let mut servers = Vec::new();
    for i in manifest.servers() {
        if glob_matches(&args.server, &i.name)? && available(i) {
            servers.push(i.name.clone());
        }
    }
    let mut clients = Vec::new();
    for i in manifest.clients() {
        if glob_matches(&args.client, &i.name)? && available(i) {
            clients.push(i.name.clone());
        }
    }
    if servers.is_empty() || clients.is_empty() {
        return Err(format!(
            "no {} matches the selection; names in {}: {}",
            if servers.is_empty() {
                "server"
            } else {
                "client"
            },
            manifest.path.display(),
            manifest
                .implementations
                .iter()
                .map(|i| i.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    // The reference pairing always runs: every other cell is compared with it.
    let reference = manifest.reference.clone();
    let scenario = Scenario::hello();
    let mut pairings = vec![(scenario.clone(), reference.clone(), reference.clone())];
    for s in &servers {
        for c in &clients {
            if !(s == &reference && c == &reference) {
                pairings.push((scenario.clone(), s.clone(), c.clone()));
            }
        }
    }

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
        host: "127.0.0.1".into(),
        capture: CaptureConfig {
            device: args.device,
            ..CaptureConfig::default()
        },
        timeouts,
    };
    let quiet = args.json;
    let progress = |r: &runner::PairingResult| {
        if !quiet {
            let state = if r.passed_checks() { "done" } else { "FAILED" };
            eprintln!("  {} / {}: {state}", r.scenario, r.label());
        }
    };
    if !quiet {
        eprintln!(
            "harness: {} pairings, {} at a time, artifacts in {}",
            pairings.len(),
            jobs.min(pairings.len()),
            artifacts.display()
        );
        for s in &skipped {
            eprintln!("harness: skipping {s}");
        }
    }
    let results = runner::run_matrix(&env, &manifest, &pairings, &artifacts, jobs, &progress)
        .map_err(|e| e.to_string())?;
    let cells = report::grade(results, &reference);
    let summary = report::summary(&cells, &reference, &artifacts);
    let json = serde_json::to_string_pretty(&summary)
        .map_err(|e| format!("cannot encode the summary: {e}"))?;
    let summary_path = artifacts.join("summary.json");
    std::fs::write(&summary_path, &json)
        .map_err(|e| format!("cannot write {}: {e}", summary_path.display()))?;
    if quiet {
        println!("{json}");
    } else {
        let cell_refs: Vec<&report::Cell> = cells.iter().collect();
        print!(
            "{}",
            report::render_scenario(&scenario.name, &cell_refs, &reference)
        );
        print!("{}", report::render_artifacts(&cells, &artifacts));
        println!("  summary: {}", summary_path.display());
    }
    if let Some(parent) = artifacts.parent() {
        let latest = parent.join("latest");
        let _ = std::fs::remove_file(&latest);
        #[cfg(unix)]
        let _ = std::os::unix::fs::symlink(&artifacts, &latest);
    }
    if INTERRUPTED.load(Ordering::SeqCst) {
        return Ok(EXIT_INTERRUPTED);
    }
    Ok(report::exit_code(&cells) as u8)
}
