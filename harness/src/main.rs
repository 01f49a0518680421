//! `harness`: run every server × client pairing under a loopback capture
//! and report what differs on the wire. The work is the library's
//! ([`harness::run::run`]); this file parses, dispatches and prints.
//! Exit codes: see [`harness::error`] and the README.

mod cli;
mod commands;
mod progress;

use std::process::ExitCode;

use cli::{Cli, Command, RunArgs};
use harness::error::{Error, EXIT_CHANGED, EXIT_OK};
use harness::exec::Cancel;
use harness::report::ladder::{Paint, Width};
use harness::report::{self, inspect};
use harness::run::{self, Suite};
use progress::Progress;

fn main() -> ExitCode {
    // One malloc arena for every thread. Each capture and saving thread
    // would otherwise get an arena of its own, and the frames a thread
    // frees stay in its arena: 16 cells of a 1 MiB transfer held over
    // 60 MiB that no cell used any more. Set before any thread starts.
    // SAFETY: mallopt only changes the allocator's tuning.
    unsafe { libc::mallopt(libc::M_ARENA_MAX, 1) };
    // Parsed before anything else, and isolation chosen while the process
    // still has a single thread: a user namespace cannot be entered later.
    let cli: Cli = match tutorial::cli::parse_args("harness") {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    let width = Width::for_stdout(cli.wide);
    let outcome = match cli.command {
        Command::Policy => {
            print!("{}", report::render_policy());
            Ok(EXIT_OK)
        }
        Command::Inspect {
            file,
            port,
            connection,
            all,
        } => commands::inspect(&file, port, connection, all, width),
        Command::Diff { a, b, port } => inspect::load(&a, port)
            .and_then(|a| Ok((a, inspect::load(&b, port)?)))
            .and_then(|(a, b)| inspect::render_diff(&a, &b, port))
            .map(|(text, same)| {
                print!("{text}");
                if same {
                    EXIT_OK
                } else {
                    EXIT_CHANGED
                }
            })
            .map_err(|e| Error::usage(e.to_string())),
        Command::Show { a, b, artifacts } => commands::show(
            &a,
            &b,
            artifacts.as_deref(),
            Paint::for_stdout(cli.color.into()),
        ),
        Command::Run(args) => run_matrix(*args, width),
        Command::Cli(args) => commands::command_line_cases(*args, width),
        Command::Merge(args) => merge(args, width),
        Command::Completions { shell } => commands::completions(shell),
        Command::Manpage => commands::manpage(),
    };
    match outcome {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("harness: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn run_matrix(args: RunArgs, width: Width) -> Result<u8, Error> {
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
fn merge(args: cli::MergeArgs, width: Width) -> Result<u8, Error> {
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
    let written = report::write_all(outcome);
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
        print!("{}", report::render_run(outcome, &written, width));
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
