//! `client [--host H] [--port P] [--message TEXT | --message-file PATH]`:
//! see the crate docs and `python/client.py`.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::process::ExitCode;

use clap::Parser;
use client::MessageSource;
use tutorial::cli::{exit_with, parse_args_like_argparse};
use tutorial::{parse_port, resolve_ipv4, AppError};

const PROG: &str = "client";

/// Connect to HOST:PORT, send one message and close.
///
/// Exit codes: 0 sent, 1 runtime failure, 2 bad command line, 130 interrupted.
#[derive(Parser)]
#[command(name = PROG)]
struct Args {
    /// IPv4 host name or address of the server
    #[arg(long, default_value = "localhost")]
    host: std::ffi::OsString,
    /// TCP port of the server
    #[arg(long, default_value_t = tutorial::DEFAULT_PORT.to_string(), allow_negative_numbers = true)]
    port: String,
    /// Text to send; bytes that are not UTF-8 are sent as given
    #[arg(long, default_value = "Hello server!", conflicts_with = "message_file")]
    message: OsString,
    /// Send the bytes of PATH unchanged; - reads standard input
    #[arg(long, value_name = "PATH")]
    message_file: Option<OsString>,
}

fn main() -> ExitCode {
    // Ctrl-C at any moment (reading `--message-file -`, connecting,
    // sending) ends the client with 130, as the script does.
    let _ = tutorial::cli::exit_130_on_sigint();
    let args: Args = match parse_args_like_argparse(PROG) {
        Ok(args) => args,
        Err(code) => return code,
    };
    match connect_and_send(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => exit_with(PROG, &err),
    }
}

fn connect_and_send(args: Args) -> Result<(), AppError> {
    let port = parse_port(&args.port, 1)?;
    let source = match args.message_file {
        Some(path) => MessageSource::File(path),
        None => MessageSource::Inline(args.message.into_vec()),
    };
    let message = source.load()?;
    let addr = resolve_ipv4(&args.host, port)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| AppError::Runtime(e.to_string()))?;
    let mut stdout = std::io::stdout().lock();
    runtime.block_on(client::send(addr, &message, &mut stdout))
}
