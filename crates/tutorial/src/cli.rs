//! Command-line handling shared by the Rust ports.

use std::process::ExitCode;

use crate::endpoint::{AppError, ErrorLine, EXIT_USAGE};

/// Parses arguments like `Parser::parse`, but a usage error is one line on
/// stderr with exit code 2, the same shape as the Python scripts' argparse.
pub fn parse_args<T: clap::Parser>(prog: &str) -> Result<T, ExitCode> {
    T::try_parse().map_err(|err| report(prog, err))
}

/// [`parse_args`] with the command-line rules of Python's argparse, for
/// the ports of the tutorial's scripts: a unique prefix of a long option
/// stands for it (`--por 1`), an ambiguous one is refused naming the
/// options it could match, and an option given twice takes its last value.
pub fn parse_args_like_argparse<T: clap::Parser>(prog: &str) -> Result<T, ExitCode> {
    let command = T::command().infer_long_args(true).args_override_self(true);
    // argparse adds --help first, then the options in their order.
    let longs: Vec<String> = std::iter::once("help".to_string())
        .chain(
            command
                .get_arguments()
                .filter_map(|a| a.get_long())
                .map(String::from),
        )
        .collect();
    let with_value: Vec<String> = command
        .get_arguments()
        .filter(|a| a.get_action().takes_values())
        .filter_map(|a| a.get_long())
        .map(String::from)
        .collect();
    let argv: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    if let Some(message) = ambiguous_option(&argv, &longs) {
        eprintln!("{prog}: error: {message}; see --help");
        return Err(ExitCode::from(EXIT_USAGE as u8));
    }
    command
        .try_get_matches()
        .and_then(|matches| T::from_arg_matches(&matches))
        .map_err(|err| match argparse_wording(&err, &argv, &with_value) {
            Some(message) => {
                eprintln!("{prog}: error: {message}; see --help");
                ExitCode::from(EXIT_USAGE as u8)
            }
            None => report(prog, err),
        })
}

/// argparse's words for the clap errors whose meaning it shares: an option
/// without its value, and two options of a mutually exclusive group.
fn argparse_wording(
    err: &clap::Error,
    argv: &[std::ffi::OsString],
    with_value: &[String],
) -> Option<String> {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    let option = |kind: ContextKind| match err.get(kind)? {
        // "--port <PORT>" → "--port"
        ContextValue::String(text) => text.split(' ').next().map(String::from),
        ContextValue::Strings(texts) => texts.first()?.split(' ').next().map(String::from),
        _ => None,
    };
    match err.kind() {
        ErrorKind::InvalidValue if err.to_string().contains("a value is required") => {
            Some(format!(
                "argument {}: expected one argument",
                option(ContextKind::InvalidArg)?
            ))
        }
        // argparse names the later option first.
        ErrorKind::ArgumentConflict => Some(format!(
            "argument {}: not allowed with argument {}",
            option(ContextKind::PriorArg)?,
            option(ContextKind::InvalidArg)?
        )),
        ErrorKind::UnknownArgument => Some(format!(
            "unrecognized arguments: {}",
            unrecognized(argv, with_value).join(" ")
        )),
        _ => None,
    }
}

/// What argparse calls unrecognized: every argument no option takes,
/// the `--` that ends the options included (argparse keeps it), read as
/// argparse reads them: an option (or a unique prefix of one) takes the
/// next argument as its value unless given as `--opt=value`.
fn unrecognized(argv: &[std::ffi::OsString], with_value: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut args = argv.iter().map(|a| a.to_string_lossy().into_owned());
    while let Some(arg) = args.next() {
        if arg == "--" {
            out.push(arg);
            out.extend(args.by_ref());
            break;
        }
        let known = arg.strip_prefix("--").and_then(|name| {
            let name = name.split('=').next().unwrap_or(name);
            let matches: Vec<&String> = with_value.iter().filter(|l| l.starts_with(name)).collect();
            (!name.is_empty() && (matches.len() == 1 || with_value.iter().any(|l| l == name)))
                .then_some(())
        });
        match known {
            Some(()) if !arg.contains('=') => {
                args.next();
            }
            Some(()) => {}
            None => out.push(arg),
        }
    }
    out
}

/// argparse's refusal of a prefix that matches several long options:
/// "ambiguous option: --mess could match --message, --message-file".
fn ambiguous_option(argv: &[std::ffi::OsString], longs: &[String]) -> Option<String> {
    for arg in argv {
        let arg = arg.to_string_lossy();
        if arg == "--" {
            return None;
        }
        let Some(name) = arg.strip_prefix("--") else {
            continue;
        };
        let name = name.split('=').next().unwrap_or(name);
        if name.is_empty() || longs.iter().any(|l| l == name) {
            continue;
        }
        let matches: Vec<String> = longs
            .iter()
            .filter(|l| l.starts_with(name))
            .map(|l| format!("--{l}"))
            .collect();
        if matches.len() > 1 {
            return Some(format!(
                "ambiguous option: {arg} could match {}",
                matches.join(", ")
            ));
        }
    }
    None
}

/// A clap error as one line and the documented exit code (help and
/// version are printed as they are, exit 0).
fn report(prog: &str, err: clap::Error) -> ExitCode {
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
}

/// Reports `err` on one line and turns it into the documented exit code.
pub fn exit_with(prog: &str, err: &AppError) -> ExitCode {
    eprintln!("{}", ErrorLine(prog, err));
    ExitCode::from(err.exit_code() as u8)
}

/// Exit code after Ctrl-C, as a shell reports a SIGINT death (128 + 2) and
/// as the Python scripts exit on KeyboardInterrupt.
pub const EXIT_INTERRUPTED: u8 = 130;

/// Ends the program with [`EXIT_INTERRUPTED`] (130) on Ctrl-C, at any
/// moment, with nothing on stderr: what the scripts' `except
/// KeyboardInterrupt: sys.exit(130)` does, from the first line of `main`
/// (Python installs its SIGINT handler before running the script). `_exit`
/// is what a signal handler may call.
///
/// Like Python, it leaves an ignored SIGINT ignored (a background job's),
/// and then returns `None`. Otherwise it returns the handler, for a
/// program that takes Ctrl-C over itself later (the server's graceful
/// stop) to unregister it.
pub fn exit_130_on_sigint() -> Option<signal_hook::SigId> {
    if sigint_ignored() {
        return None;
    }
    // SAFETY: the handler only calls the async-signal-safe _exit.
    unsafe {
        signal_hook::low_level::register(signal_hook::consts::SIGINT, || {
            signal_hook::low_level::exit(i32::from(EXIT_INTERRUPTED))
        })
    }
    .ok()
}

/// Whether SIGINT is ignored, as the parent left it.
fn sigint_ignored() -> bool {
    // SAFETY: reads the current action without changing it.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    let read = unsafe { libc::sigaction(libc::SIGINT, std::ptr::null(), &mut old) };
    read == 0 && old.sa_sigaction == libc::SIG_IGN
}
