//! Command-line handling shared by the Rust ports.

use std::process::ExitCode;

use crate::endpoint::{AppError, ErrorLine, EXIT_USAGE};

/// Parses arguments like `Parser::parse`, but a usage error is one line on
/// stderr with exit code 2, the same shape as the Python scripts' argparse.
pub fn parse_args<T: clap::Parser>(prog: &str) -> Result<T, ExitCode> {
    T::try_parse().map_err(|err| {
        use clap::error::ErrorKind;
        if matches!(
            err.kind(),
            ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
        ) {
            let _ = err.print();
            return ExitCode::SUCCESS;
        }
        // A command with subcommands run bare: the help, but as a usage error.
        if err.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
            let _ = err.print();
            return ExitCode::from(EXIT_USAGE as u8);
        }
        let rendered = err.to_string();
        let mut lines = rendered.lines();
        let first = lines.next().unwrap_or("invalid arguments");
        let mut first = first.strip_prefix("error: ").unwrap_or(first).to_string();
        // "…were not provided:" lists what is missing on the lines below:
        // on one line, so the message names it.
        if first.ends_with(':') {
            let listed: Vec<&str> = lines
                .take_while(|l| !l.trim().is_empty())
                .map(str::trim)
                .collect();
            first = format!("{first} {}", listed.join(", "));
        }
        eprintln!("{prog}: error: {first}; see --help");
        ExitCode::from(EXIT_USAGE as u8)
    })
}

/// Reports `err` on one line and turns it into the documented exit code.
pub fn exit_with(prog: &str, err: &AppError) -> ExitCode {
    eprintln!("{}", ErrorLine(prog, err));
    ExitCode::from(err.exit_code() as u8)
}

/// Exit code after Ctrl-C, as a shell reports a SIGINT death (128 + 2) and
/// as the Python scripts exit on KeyboardInterrupt.
pub const EXIT_INTERRUPTED: u8 = 130;
