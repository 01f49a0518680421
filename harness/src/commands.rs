//! The small commands: `inspect`, `show`, `cli`, `completions`, `manpage`.

use harness::error::{Error, EXIT_OK};
use harness::report::inspect;
use harness::report::ladder::{Paint, Width};

use crate::cli::{self, Cli};

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
    let progress = |cell: &harness::cmdline::CaseCell| {
        if !quiet {
            eprintln!(
                "  {}/{} × {}: {}",
                cell.role,
                cell.case,
                cell.implementation,
                cell.verdict.as_str()
            );
        }
    };
    let outcome = harness::cmdline::run_command(&config, &progress)?;
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
