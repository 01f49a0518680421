//! Each command's work: `run` (and `--list`), `merge`, `inspect`, `show`,
//! `cli`, `completions`, `manpage`; main.rs only parses and dispatches.

use harness::error::{Error, EXIT_OK};
use harness::exec::Cancel;
use harness::report::ladder::{Paint, Width};
use harness::report::{self, inspect};
use harness::run::{self, Suite};

use crate::cli::{self, Cli, RunArgs};
use crate::progress::Progress;

/// `harness completions SHELL`.
pub fn completions(shell: clap_complete::Shell) -> Result<u8, Error> {
    let mut script = Vec::new();
    let mut command = <Cli as clap::CommandFactory>::command();
    clap_complete::generate(shell, &mut command, "harness", &mut script);
    print_all(&script, "the completion script")
}

/// `harness inspect FILE [--port P | --connection N... | --all]`,
/// written as it is read.
pub fn inspect(
    file: &std::path::Path,
    port: Option<u16>,
    connections: Vec<u64>,
    all: bool,
    width: Width,
) -> Result<u8, Error> {
    use harness::verdict::survey::Selection;
    let selection = match (port, connections.is_empty(), all) {
        (Some(p), _, _) => Selection::Port(p),
        (None, false, _) => Selection::Numbers(
            connections
                .into_iter()
                .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
                .collect(),
        ),
        (None, true, true) => Selection::All,
        (None, true, false) => Selection::Auto,
    };
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout().lock());
    match inspect::inspect(file, &selection, width, &mut out) {
        Ok(()) => Ok(EXIT_OK),
        Err(inspect::InspectInterrupted::Write(e))
            if e.kind() == std::io::ErrorKind::BrokenPipe =>
        {
            Ok(EXIT_OK)
        }
        Err(e) => Err(Error::usage(e.to_string())),
    }
}

/// `harness cli`: the command-line cases, a line per cell as it is graded
/// (on stderr), then the report (or JSON) on stdout.
pub fn command_line_cases(args: cli::CliArgs, width: Width) -> Result<u8, Error> {
    let (json, quiet) = (args.json, args.quiet || args.json);
    let config = args.resolve()?;
    harness::run::create_artifacts(&config.artifacts)?;
    // On a terminal one line, rewritten in place (the report and its
    // paths stay on screen); in a log a line per cell.
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let graded = std::cell::Cell::new(0usize);
    let progress = |cell: &harness::cmdline::CaseCell| {
        if quiet {
            return;
        }
        graded.set(graded.get() + 1);
        let line = format!(
            "{}/{} × {}: {}",
            cell.role,
            cell.case,
            cell.implementation,
            cell.verdict.name()
        );
        if terminal {
            eprint!("\r\x1b[2K[{}] {line}", graded.get());
        } else {
            eprintln!("  {line}");
        }
    };
    let outcome = harness::cmdline::run_command(&config, &progress)?;
    if terminal && !quiet && graded.get() > 0 {
        eprintln!();
    }
    if let Some(path) = &outcome.baseline_written {
        eprintln!("harness: baseline written to {path}");
    }
    // The reports are written whatever happens to stdout; a folder that
    // cannot be written is an environment error, reported after it.
    let written = harness::report::write_cases(&outcome, &config.artifacts);
    let mut text = if json {
        serde_json::to_string_pretty(&outcome).map_err(|e| Error::usage(e.to_string()))? + "\n"
    } else {
        harness::report::render_cases(&outcome, width)
    };
    if !json {
        if let Ok(paths) = &written {
            text.push_str(&format!("\nArtifacts: {}\n", config.artifacts.display()));
            for path in paths {
                text.push_str(&format!("  {}\n", path.display()));
            }
        }
    }
    print_all(text.as_bytes(), "the report")?;
    written.map_err(|e| {
        Error::usage(format!(
            "cannot write the reports into {}: {e}; pass --artifacts DIR",
            config.artifacts.display()
        ))
    })?;
    Ok(outcome.exit_code)
}

/// `harness manpage`.
pub fn manpage() -> Result<u8, Error> {
    let mut page = Vec::new();
    clap_mangen::Man::new(<Cli as clap::CommandFactory>::command())
        .render(&mut page)
        .map_err(|e| Error::usage(format!("cannot render the man page: {e}")))?;
    print_all(&page, "the man page")
}

/// Writes `bytes` to stdout: a reader that stopped early (`| head`) is
/// not an error; a full or closed stdout is one line and exit 2, never a
/// panic (the generators would panic on a write error, so they write to
/// memory first).
pub fn print_all(bytes: &[u8], what: &str) -> Result<u8, Error> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => Ok(EXIT_OK),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(EXIT_OK),
        Err(e) => Err(Error::usage(format!(
            "cannot write {what} to stdout: {e}; redirect it to a file"
        ))),
    }
}

pub fn show(
    a: &str,
    b: &str,
    artifacts: Option<&std::path::Path>,
    paint: Paint,
) -> Result<u8, Error> {
    let load = |name: &str| {
        let path = cli::resolve_capture(name, artifacts)?;
        inspect::load(&path, None).map_err(|e| Error::usage(e.to_string()))
    };
    let text = inspect::render_show(&load(a)?, &load(b)?, paint)
        .map_err(|e| Error::usage(e.to_string()))?;
    print!("{text}");
    Ok(EXIT_OK)
}

/// `harness run`: the matrix, or its plan with --list.
pub fn run_matrix(args: RunArgs, width: Width) -> Result<u8, Error> {
    let isolation = args.isolation()?;
    let (list, json, quiet) = (args.list, args.json, args.json || args.quiet);
    let config = args.resolve(isolation)?;
    if list {
        let suite = Suite::load(&config.manifest, &config.scenarios)?;
        let at = harness::suite::manifest::Locations {
            root: &config.root,
            bin: &config.bin,
            manifest_dir: config
                .manifest
                .parent()
                .unwrap_or(std::path::Path::new(".")),
        };
        print!(
            "{}",
            report::render_list(&suite.manifest, &suite.scenarios, &at)
        );
        return Ok(EXIT_OK);
    }
    let cancel = Cancel::new();
    // SIGINT, SIGTERM and SIGHUP cancel the run: every wait ends, the programs are
    // killed, what there is gets reported, and the exit code names the
    // signal (130, 143, 129).
    if let Ok(mut signals) =
        signal_hook::iterator::Signals::new([libc::SIGINT, libc::SIGTERM, libc::SIGHUP])
    {
        let on_signal = cancel.clone();
        std::thread::spawn(move || {
            for signal in signals.forever() {
                on_signal.cancel_by_signal(signal);
            }
        });
    }
    let progress = Progress::new(quiet);
    let outcome = run::run(config, &cancel, &progress)?;
    report_outcome(&outcome, json, width)
}

/// `harness merge DIR...`: the shards' artifacts as one run, reported as
/// `run` reports.
pub fn merge(args: cli::MergeArgs, width: Width) -> Result<u8, Error> {
    let json = args.json;
    let dirs = args.dirs.clone();
    let config = args.resolve()?;
    let outcome = harness::merge::merge(&dirs, config)?;
    report_outcome(&outcome, json, width)
}

/// Writes the reports of a run and prints one; its exit code.
fn report_outcome(
    outcome: &harness::run::RunOutcome,
    json: bool,
    width: Width,
) -> Result<u8, Error> {
    if let Some(path) = &outcome.baseline_written {
        eprintln!("harness: baseline written to {}", path.display());
    }
    // The report goes to stdout whatever happens to the files; a file that
    // cannot be written is an environment error reported after it.
    let view = report::RunView::of(outcome);
    let written = report::write_all(&view);
    // For `make bench`: what writing each report cost.
    if std::env::var_os("HARNESS_TIMINGS").is_some() {
        for t in &written.timings {
            eprintln!(
                "harness: timing: {}: {:.2} ms wall, {:.2} ms CPU",
                t.stage, t.wall_ms, t.cpu_ms
            );
        }
    }
    if json {
        println!("{}", written.json);
    } else {
        print!("{}", report::render_run(&view, &written, width));
    }
    if std::env::var_os("HARNESS_TIMINGS").is_some() {
        // The harness's own CPU, every thread of it, none of its children's:
        // the part of a run's cost that is the harness's and no program's.
        let own = harness::exec::timing::process_cpu();
        eprintln!(
            "harness: timing: own process, every thread: {:.2} ms user, {:.2} ms sys",
            own.user.as_secs_f64() * 1e3,
            own.sys.as_secs_f64() * 1e3
        );
    }
    let code = outcome.exit_code();
    if outcome.interrupted {
        return Ok(code);
    }
    if !written.errors.is_empty() {
        let full = written.errors.iter().any(|e| e.contains("No space left"));
        return Err(Error::usage(format!(
            "{}; {}",
            written.errors.join("; "),
            if full {
                "free some space or pass --artifacts DIR"
            } else {
                "pass --artifacts DIR with a folder you can write"
            }
        )));
    }
    Ok(code)
}
