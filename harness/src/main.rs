//! `harness`: run every server × client pairing under a loopback capture
//! and report what differs on the wire. The work is the library's
//! ([`harness::run::run`]); this file parses, dispatches and prints.
//! Exit codes: see [`harness::error`] and the README.

mod cli;
mod commands;
mod progress;

use std::process::ExitCode;

use cli::{Cli, Command};
use harness::error::{Error, EXIT_CHANGED, EXIT_OK};
use harness::report::ladder::{Paint, Width};
use harness::report::{self, inspect};

fn main() -> ExitCode {
    // One malloc arena for every thread. Each capture and saving thread
    // would otherwise get an arena of its own, and the frames a thread
    // frees stay in its arena: 16 cells of a 1 MiB transfer held over
    // 60 MiB that no cell used any more. Set before any thread starts.
    // SAFETY: mallopt only changes the allocator's tuning.
    unsafe { libc::mallopt(libc::M_ARENA_MAX, 1) };
    // Buffers of 256 KiB and more (a cell's frames, streams and outputs
    // of a large message) mapped on their own and returned when freed.
    // Fixing the threshold turns off glibc's habit of raising it to the
    // largest buffer freed so far, after which such buffers come from the
    // heap and stay there: the run's memory would be its largest moment's.
    // SAFETY: as above.
    unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, 256 << 10) };
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
        Command::Run(args) => commands::run_matrix(*args, width),
        Command::Cli(args) => commands::command_line_cases(*args, width),
        Command::Merge(args) => commands::merge(args, width),
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
