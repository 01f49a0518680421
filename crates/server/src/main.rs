//! `server [--host H] [--port P]`: see the crate docs and `python/server.py`.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use tutorial::cli::{exit_with, parse_args_like_argparse, EXIT_INTERRUPTED};
use tutorial::transcript::ready_line;
use tutorial::{parse_port, resolve_ipv4, AppError};

const PROG: &str = "server";

/// Listen on HOST:PORT, accept one client and print every chunk it sends.
///
/// Exit codes: 0 served one client, 1 runtime failure, 2 bad command line,
/// 130 interrupted.
#[derive(Parser)]
#[command(name = PROG)]
struct Args {
    /// IPv4 host name or address to bind
    #[arg(long, default_value = "localhost")]
    host: std::ffi::OsString,
    /// TCP port; 0 picks a free one
    #[arg(long, default_value_t = tutorial::DEFAULT_PORT.to_string(), allow_negative_numbers = true)]
    port: String,
}

fn main() -> ExitCode {
    // Ctrl-C before the server listens (even while its ready line waits
    // on a full stdout) ends it with 130, as the script does; once it
    // listens, the graceful stop below takes over.
    let early = tutorial::cli::exit_130_on_sigint();
    let args: Args = match parse_args_like_argparse(PROG) {
        Ok(args) => args,
        Err(code) => return code,
    };
    match serve(&args, early) {
        Ok(server::Outcome::Served) => ExitCode::SUCCESS,
        Ok(server::Outcome::Interrupted) => ExitCode::from(EXIT_INTERRUPTED),
        Err(err) => exit_with(PROG, &err),
    }
}

fn serve(args: &Args, early: Option<signal_hook::SigId>) -> Result<server::Outcome, AppError> {
    let port = parse_port(&args.port, 0)?;
    let addr = resolve_ipv4(&args.host, port)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| AppError::Runtime(e.to_string()))?;
    runtime.block_on(async {
        let listener = server::bind(addr)?;
        let bound = listener.local_addr().map(|a| a.port()).unwrap_or(port);
        let mut stdout = std::io::stdout().lock();
        stdout
            .write_all(ready_line(bound).as_bytes())
            .and_then(|()| stdout.flush())
            .map_err(|e| AppError::Stdout(e.to_string()))?;
        // Ctrl-C from here on stops the server gracefully. Registered now,
        // not at the first poll, so no Ctrl-C falls between the early
        // handler and this one; an ignored SIGINT (no early handler) stays
        // ignored, as in Python. A socket pair written by the signal
        // handler, not tokio::signal: tokio's panics when it cannot make
        // its own pair (too many open files), and a panic is no answer.
        let interrupt = match early {
            Some(id) => {
                let watched = watch_sigint()
                    .map_err(|e| AppError::Runtime(format!("cannot watch for Ctrl-C: {e}")))?;
                signal_hook::low_level::unregister(id);
                Some(watched)
            }
            None => None,
        };
        let shutdown = async move {
            match interrupt {
                Some(woken) => {
                    let _ = woken.readable().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        server::run(listener, &mut stdout, shutdown).await
    })
}

/// A socket that becomes readable on SIGINT: signal-hook writes a byte
/// into its pair from the handler.
fn watch_sigint() -> std::io::Result<tokio::net::UnixStream> {
    let (read, write) = std::os::unix::net::UnixStream::pair()?;
    read.set_nonblocking(true)?;
    signal_hook::low_level::pipe::register(signal_hook::consts::SIGINT, write)?;
    tokio::net::UnixStream::from_std(read)
}
