//! The command line, resolved into one [`RunConfig`]: every default is
//! decided here, once (ripgrep's low-level/high-level arguments, in small).

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Parser, Subcommand};
use harness::capture::CaptureConfig;
use harness::error::Error;
use harness::exec::network::{self, Isolation, Topology};
use harness::matrix::Timeouts;
use harness::run::{BaselineMode, RunConfig};
use harness::suite::{Selection, Shard};

/// `--isolation`: how cells are kept apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum IsolationArg {
    /// The best this process may use: netns, else userns, else ports.
    Auto,
    /// A network namespace per cell (needs root or CAP_SYS_ADMIN).
    Netns,
    /// A user namespace for the whole run, then a network namespace per cell.
    Userns,
    /// The host's loopback, a free port per cell, fixed ports one at a time.
    Ports,
}

/// `--topology`: how a cell's client reaches its server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TopologyArg {
    /// Both on one loopback (the tutorials' setting).
    Loopback,
    /// Two namespaces joined by a veth pair with MTU 1500.
    Veth,
}

#[derive(Parser)]
#[command(name = "harness", version, about = "Run every server × client pairing under a loopback capture and compare the conversations on the wire.", long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// When to colour the output: auto (on a terminal, not with NO_COLOR, always with CLICOLOR_FORCE), always, never
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "auto",
        value_name = "WHEN"
    )]
    pub color: ColorArg,
    /// Print ladders and tables whole, however wide [default: fit the terminal, or 100 columns when not one]
    #[arg(long, global = true)]
    pub wide: bool,
}

/// `--color`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorArg {
    Auto,
    Always,
    Never,
}

impl From<ColorArg> for harness::report::ladder::ColorChoice {
    fn from(arg: ColorArg) -> Self {
        match arg {
            ColorArg::Auto => Self::Auto,
            ColorArg::Always => Self::Always,
            ColorArg::Never => Self::Never,
        }
    }
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the matrix and report verdicts (exit 0 as the baseline expects, 1 a change or failure, 2 usage/environment error, 130 interrupted).
    Run(Box<RunArgs>),
    /// Run the command-line cases (tests/cli) with the reference program and every implementation that declares its command line, and grade them (exit 0 as the baseline expects, 1 a change or failure, 2 usage/environment error).
    Cli(Box<CliArgs>),
    /// Print the field policy table: what is compared exactly, relative to the ISN, by meaning, or ignored.
    Policy,
    /// Explain any pcap or pcapng: its TCP connections, their compared fields and ladder diagrams; above 10 connections, a summary by handshake signature.
    Inspect {
        /// A capture file, e.g. one saved from Wireshark or tcpdump
        file: PathBuf,
        /// Show in full the connections with this port at either end
        #[arg(long, group = "chosen")]
        port: Option<u16>,
        /// Show in full connection N (numbered from 1 in order of first frame, as listed); repeatable
        #[arg(long, value_name = "N", group = "chosen", value_parser = clap::value_parser!(u64).range(1..))]
        connection: Vec<u64>,
        /// Show every connection in full, as each ends (summary last)
        #[arg(long, group = "chosen")]
        all: bool,
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
    /// Combine the artifacts of the shards of one run (`harness run --shard K/N`) into one: summary, JUnit, HTML report, merged captures, one baseline check and exit code, as `run` gives.
    Merge(MergeArgs),
    /// Print a shell completion script: `harness completions bash > /etc/bash_completion.d/harness`
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff): `harness manpage > harness.1 && man ./harness.1`
    Manpage,
}

#[derive(clap::Args)]
pub struct CliArgs {
    #[command(flatten)]
    pub suite: SuiteArgs,
    /// Directory of the case files, server.toml and client.toml [default: tests/cli in the workspace]
    #[arg(long, value_name = "DIR")]
    pub cases: Option<PathBuf>,
    /// Write the cases' verdicts into the baseline file (its cli/ tables) instead of comparing
    #[arg(long, conflicts_with = "no_baseline")]
    pub update_baseline: bool,
    /// Directory for {bin} in commands [default: as for run]
    #[arg(long, value_name = "DIR")]
    pub bin_dir: Option<PathBuf>,
    /// Only implementations whose name matches this glob (repeatable; the reference always runs)
    #[arg(long, value_name = "GLOB")]
    pub implementation: Vec<String>,
    /// Only cases whose name matches this glob (repeatable)
    #[arg(long = "case", value_name = "GLOB")]
    pub cases_selected: Vec<String>,
    /// Seconds to wait for a signal's moment, and for each program to exit
    #[arg(long, default_value = "10", value_name = "SECS")]
    pub wait: f64,
    /// Print the JSON outcome on stdout instead of the report
    #[arg(long)]
    pub json: bool,
    /// No line per case while they run, only the report
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// Where summary.json, junit.xml and report.html go [default: target/harness/cli-<time>-<pid>]
    #[arg(long, value_name = "DIR")]
    pub artifacts: Option<PathBuf>,
}

impl CliArgs {
    /// Where everything is, resolved as `run` resolves it.
    pub fn resolve(self) -> Result<harness::cmdline::Config, Error> {
        let run = RunArgs::try_parse_from(["run"]).map_err(|e| e.to_string())?;
        let config = RunArgs {
            suite: self.suite,
            update_baseline: self.update_baseline,
            bin_dir: self.bin_dir,
            ..run
        }
        .resolve(Isolation::Ports)?;
        let cases = self.cases.unwrap_or_else(|| config.root.join("tests/cli"));
        let artifacts = self
            .artifacts
            .unwrap_or_else(|| timestamped(&config.root, "cli"));
        Ok(harness::cmdline::Config {
            cases,
            artifacts,
            baseline: config.baseline,
            implementations: self.implementation,
            only: self.cases_selected,
            limits: harness::cmdline::runner::Limits {
                wait: seconds("wait", self.wait)?,
            },
            root: config.root,
            bin: config.bin,
            manifest: config.manifest,
        })
    }
}

#[derive(clap::Args)]
pub struct MergeArgs {
    /// The shards' artifacts folders, each holding the summary.json of one `harness run --shard K/N`
    #[arg(required = true, value_name = "DIR")]
    pub dirs: Vec<PathBuf>,
    /// Where the merged run goes [default: target/harness/merged-<time>-<pid>]
    #[arg(long, value_name = "DIR")]
    pub artifacts: Option<PathBuf>,
    #[command(flatten)]
    pub suite: SuiteArgs,
    /// Print the JSON summary on stdout instead of the terminal report
    #[arg(long)]
    pub json: bool,
}

/// Where the suite and its baseline are: the same for `run` and `merge`.
#[derive(clap::Args)]
pub struct SuiteArgs {
    /// Implementations manifest [default: tests/implementations.toml in the workspace]
    #[arg(long, value_name = "PATH")]
    pub manifest: Option<PathBuf>,
    /// Directory of scenario files [default: tests/scenarios in the workspace]
    #[arg(long, value_name = "DIR")]
    pub scenarios: Option<PathBuf>,
    /// Expected verdicts [default: tests/baseline.toml in the workspace, if it exists]
    #[arg(long, value_name = "PATH", conflicts_with = "no_baseline")]
    pub baseline: Option<PathBuf>,
    /// Grade without a baseline: exit 0 only if every cell that ran is PASS
    #[arg(long)]
    pub no_baseline: bool,
    /// Workspace root, for {root} in commands [default: found from the current directory]
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,
}

impl MergeArgs {
    /// The merged run's configuration: the workspace's suite and baseline,
    /// as `run` resolves them; what only running needs keeps its default.
    pub fn resolve(self) -> Result<RunConfig, Error> {
        let run = RunArgs::try_parse_from(["run"]).map_err(|e| e.to_string())?;
        let config = RunArgs {
            suite: self.suite,
            ..run
        }
        .resolve(Isolation::Ports)?;
        let artifacts = self
            .artifacts
            .unwrap_or_else(|| timestamped(&config.root, "merged"));
        Ok(RunConfig {
            artifacts,
            ..config
        })
    }
}

/// `RunArgs` alone, parsed from an argument list (for `merge`'s defaults).
#[derive(clap::Parser)]
struct RunOnly {
    #[command(flatten)]
    args: RunArgs,
}

impl RunArgs {
    fn try_parse_from<const N: usize>(argv: [&str; N]) -> Result<RunArgs, clap::Error> {
        <RunOnly as clap::Parser>::try_parse_from(argv).map(|r| r.args)
    }
}

#[derive(clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub suite: SuiteArgs,
    /// Write this run's verdicts into the baseline file instead of comparing
    #[arg(long, conflicts_with = "no_baseline")]
    pub update_baseline: bool,
    /// List the implementations and scenarios, with what each supports, and exit
    #[arg(long)]
    pub list: bool,
    /// Directory for {bin} in commands [default: the harness binary's directory, or the workspace's target/release or target/debug when the Rust server and client are not beside it]
    #[arg(long, value_name = "DIR")]
    pub bin_dir: Option<PathBuf>,
    /// Where captures and outputs go [default: target/harness/run-<time>-<pid>]
    #[arg(long, value_name = "DIR")]
    pub artifacts: Option<PathBuf>,
    /// Pairings run at the same time [default: number of cores]
    #[arg(long, short = 'j')]
    pub jobs: Option<usize>,
    /// Only servers whose name matches this glob (repeatable)
    #[arg(long, value_name = "GLOB")]
    pub server: Vec<String>,
    /// Only clients whose name matches this glob (repeatable)
    #[arg(long, value_name = "GLOB")]
    pub client: Vec<String>,
    /// Only scenarios whose name matches this glob (repeatable)
    #[arg(long, value_name = "GLOB")]
    pub scenario: Vec<String>,
    /// Seconds to wait for a server's ready line
    #[arg(long, default_value = "10", value_name = "SECS")]
    pub ready_timeout: f64,
    /// Seconds to wait for each program to exit
    #[arg(long, default_value = "10", value_name = "SECS")]
    pub exit_timeout: f64,
    /// Seconds to wait for the teardown to show in the capture
    #[arg(long, default_value = "2", value_name = "SECS")]
    pub drain_timeout: f64,
    /// Capture device
    #[arg(long, default_value = "lo")]
    pub device: String,
    /// Bytes kept of each packet; 128 keeps every header and drops the payload (bytes are then checked by length and in the server's output)
    #[arg(long, default_value = "65600", value_name = "BYTES")]
    pub snaplen: u32,
    /// How each cell's client reaches its server: one loopback, or two namespaces joined by a veth pair with MTU 1500 (needs netns or userns)
    #[arg(long, value_enum, default_value = "loopback")]
    pub topology: TopologyArg,
    /// How cells are kept apart: auto picks netns with root, else userns, else ports
    #[arg(long, value_enum, default_value = "auto")]
    pub isolation: IsolationArg,
    /// Print the JSON summary on stdout instead of the terminal report
    #[arg(long)]
    pub json: bool,
    /// Run the matrix N times and report any cell whose verdict changes as flaky
    #[arg(long, default_value = "1", value_name = "N")]
    pub repeat: usize,
    /// No progress while the matrix runs, only the report
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// Run only share K of N of the cells (plus the references they are compared with); combine the shards' artifacts with `harness merge`
    #[arg(long, value_name = "K/N", value_parser = Shard::parse, conflicts_with = "update_baseline")]
    pub shard: Option<Shard>,
}

impl RunArgs {
    /// Resolves the arguments into a [`RunConfig`] for `isolation`, which
    /// was chosen first, while the process had a single thread.
    pub fn resolve(self, isolation: Isolation) -> Result<RunConfig, Error> {
        let exe = std::env::current_exe()
            .map_err(|e| format!("cannot locate the harness binary: {e}"))?;
        let exe_dir = exe
            .parent()
            .map(Path::to_path_buf)
            .ok_or("the harness binary has no directory")?;
        let suite = self.suite;
        let root = match suite.root {
            Some(root) => root,
            None => workspace_root(&exe_dir)?,
        };
        let bin = self
            .bin_dir
            .unwrap_or_else(|| rust_programs(&exe_dir, &root));
        let manifest = suite
            .manifest
            .unwrap_or_else(|| root.join("tests/implementations.toml"));
        let scenarios = suite
            .scenarios
            .unwrap_or_else(|| root.join("tests/scenarios"));
        let default_baseline = root.join("tests/baseline.toml");
        let baseline = match (suite.baseline, suite.no_baseline, self.update_baseline) {
            (_, true, _) => BaselineMode::None,
            (Some(path), false, false) => BaselineMode::Compare(path),
            (Some(path), false, true) => BaselineMode::Update(path),
            (None, false, true) => BaselineMode::Update(default_baseline),
            (None, false, false) if default_baseline.is_file() => {
                BaselineMode::Compare(default_baseline)
            }
            (None, false, false) => BaselineMode::None,
        };
        let timeouts = Timeouts {
            ready: seconds("ready-timeout", self.ready_timeout)?,
            exit: seconds("exit-timeout", self.exit_timeout)?,
            drain: seconds("drain-timeout", self.drain_timeout)?,
        };
        let jobs = self
            .jobs
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
        if jobs == 0 {
            return Err("--jobs must be at least 1".into());
        }
        if !(64..=262_144).contains(&self.snaplen) {
            return Err(format!(
                "--snaplen {} is out of range; use 64 (headers only) to 262144",
                self.snaplen
            )
            .into());
        }
        let topology = match self.topology {
            TopologyArg::Loopback => Topology::Loopback,
            TopologyArg::Veth => Topology::Veth,
        };
        if topology == Topology::Veth && !isolation.per_cell_namespace() {
            return Err(
                "--topology veth needs network namespaces; run as root, or without --isolation ports"
                    .into(),
            );
        }
        if self.repeat == 0 {
            return Err("--repeat must be at least 1".into());
        }
        if self.repeat > 1 && self.update_baseline {
            return Err("--update-baseline records one run; drop --repeat".into());
        }
        let artifacts = self.artifacts.unwrap_or_else(|| timestamped(&root, "run"));
        Ok(RunConfig {
            root,
            bin,
            manifest,
            scenarios,
            baseline,
            artifacts,
            jobs,
            selection: Selection {
                servers: self.server,
                clients: self.client,
                scenarios: self.scenario,
            },
            timeouts,
            capture: CaptureConfig {
                device: self.device,
                snaplen: self.snaplen as i32,
                ..CaptureConfig::default()
            },
            isolation,
            topology,
            repeat: self.repeat,
            shard: self.shard,
        })
    }

    /// The isolation asked for, chosen against what this process may do.
    pub fn isolation(&self) -> Result<Isolation, Error> {
        let requested = match self.isolation {
            IsolationArg::Auto => network::Requested::Auto,
            IsolationArg::Netns => network::Requested::Netns,
            IsolationArg::Userns => network::Requested::Userns,
            IsolationArg::Ports => network::Requested::Ports,
        };
        Ok(network::choose(requested)?)
    }
}

/// A new folder under target/harness for a run's artifacts:
/// `PREFIX-<unix time>-<pid>`, never one of an earlier run.
fn timestamped(root: &Path, prefix: &str) -> PathBuf {
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    root.join("target/harness")
        .join(format!("{prefix}-{stamp}-{}", std::process::id()))
}

/// Where `{bin}` points by default: beside the harness when the Rust
/// `server` or `client` is there (a `cargo build`, or `cargo install` of
/// all three); else the workspace's own build, release first, when it has
/// them (a harness installed alone with `cargo install --path harness`);
/// else beside the harness, where their cells are then "unavailable" with
/// the remedy.
fn rust_programs(exe_dir: &Path, root: &Path) -> PathBuf {
    let has_programs = |dir: &Path| {
        ["server", "client"]
            .iter()
            .any(|p| harness::program::is_executable(&dir.join(p)))
    };
    if has_programs(exe_dir) {
        return exe_dir.to_path_buf();
    }
    let targets: Vec<PathBuf> = std::env::var_os("CARGO_TARGET_DIR")
        .filter(|d| !d.is_empty())
        .map(|d| root.join(d))
        .into_iter()
        .chain(std::iter::once(root.join("target")))
        .collect();
    targets
        .iter()
        .flat_map(|t| ["release", "debug"].map(|profile| t.join(profile)))
        .find(|dir| has_programs(dir))
        .unwrap_or_else(|| exe_dir.to_path_buf())
}

/// The workspace: from the current directory up, else from the binary's.
fn workspace_root(bin: &Path) -> Result<PathBuf, Error> {
    let cwd =
        std::env::current_dir().map_err(|e| format!("cannot read the current directory: {e}"))?;
    find_root(&cwd).or_else(|| find_root(bin)).ok_or_else(|| {
        format!(
            "cannot find the workspace (tests/implementations.toml) in {} or above, nor above the harness binary in {}; run from the workspace, or pass --root DIR",
            cwd.display(),
            bin.display()
        )
        .into()
    })
}

/// A capture named on the command line: a file, a cell's folder (its
/// annotated capture), or SCENARIO/SERVER__CLIENT inside a run's artifacts.
pub fn resolve_capture(name: &str, artifacts: Option<&Path>) -> Result<PathBuf, String> {
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
