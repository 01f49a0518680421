//! Child processes with bounded waits and no way to be left behind.
//!
//! Every pairing starts two programs. A harness that hangs on a server that
//! never gets ready, or leaves a server listening after a failed run, is
//! worse than no harness, so every wait here has a deadline, a [`Child`]
//! kills its process when dropped, and on Linux the kernel kills it too if
//! the harness itself dies (`PR_SET_PDEATHSIG`).

use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::ExitStatus;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::exec::spawn;

/// Why a wait ended without what it waited for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WaitError {
    #[error("{name} did not start: {reason}")]
    Spawn { name: String, reason: String },
    #[error("{name} printed no ready line within {}", fmt_duration(*.after))]
    NotReady { name: String, after: Duration },
    #[error("{name} exited before printing its ready line ({status})")]
    ExitedEarly { name: String, status: String },
    #[error("{name} did not exit within {}", fmt_duration(*.after))]
    Hung { name: String, after: Duration },
    #[error("interrupted")]
    Interrupted,
}

fn fmt_duration(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

pub use crate::suite::manifest::Pipe;

/// What a finished child left behind.
#[derive(Debug, Clone, Default)]
pub struct Output {
    /// `None` when the process had to be killed.
    pub exit_code: Option<i32>,
    /// The signal that ended it, if any.
    pub signal: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Output {
    /// "exit 0", "exit 1", "killed by signal 9".
    pub fn status_text(&self) -> String {
        match (self.exit_code, self.signal) {
            (Some(code), _) => format!("exit {code}"),
            (None, Some(sig)) => format!("killed by signal {sig}"),
            (None, None) => "not finished".to_string(),
        }
    }
}

/// A running program whose output is collected as it arrives.
pub struct Child {
    name: String,
    pid: libc::pid_t,
    /// Readable once the process has exited; `None` on old kernels.
    pidfd: Option<std::os::fd::OwnedFd>,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    lines: Receiver<(Pipe, String)>,
    /// Whether anyone still waits for a line. Once the ready line is seen
    /// (or the program is only waited for), the readers stop cutting the
    /// output into lines and only keep it: a server that prints megabytes
    /// after its ready line costs a copy, not a string per line.
    lines_wanted: Arc<AtomicBool>,
    /// While set, the collector leaves stdout unread.
    stdout_held: Arc<AtomicBool>,
    readers: Vec<JoinHandle<()>>,
    status: Option<ExitStatus>,
}

/// How to start a program beyond its command line: every way the harness
/// starts one (a cell's server and client, `ip`, `nft`, a command-line
/// case) is one of these.
#[derive(Default)]
pub struct Launch<'a> {
    pub cwd: Option<&'a Path>,
    /// Standard input; `None` is `/dev/null`.
    pub stdin: Option<std::fs::File>,
    pub stdout: spawn::StdoutTo,
    /// Variables set on top of the harness's environment.
    pub env: &'a [(std::ffi::OsString, std::ffi::OsString)],
    pub netns: Option<std::os::fd::BorrowedFd<'a>>,
    /// A stdout pipe the collector leaves unread until
    /// [`Child::release_stdout`]: a program writing to it blocks once the
    /// pipe is full.
    pub hold_stdout: Option<std::fs::File>,
}

impl Child {
    /// Starts `argv` with piped stdout and stderr, and `stdin` (a file) or
    /// nothing as its input.
    pub fn spawn(
        name: &str,
        argv: &[String],
        cwd: Option<&Path>,
        stdin: Option<&Path>,
    ) -> Result<Child, WaitError> {
        Child::spawn_in(name, argv, cwd, stdin, None)
    }

    /// [`Child::spawn`], in the network namespace `netns` (a descriptor of
    /// one) instead of the calling thread's.
    pub fn spawn_in(
        name: &str,
        argv: &[String],
        cwd: Option<&Path>,
        stdin: Option<&Path>,
        netns: Option<std::os::fd::BorrowedFd<'_>>,
    ) -> Result<Child, WaitError> {
        let stdin = stdin
            .map(|path| {
                std::fs::File::open(path).map_err(|e| WaitError::Spawn {
                    name: name.to_string(),
                    reason: format!("cannot open {} for stdin: {e}", path.display()),
                })
            })
            .transpose()?;
        let argv: Vec<std::ffi::OsString> = argv.iter().map(Into::into).collect();
        Child::launch(
            name,
            &argv,
            Launch {
                cwd,
                stdin,
                netns,
                ..Launch::default()
            },
        )
    }

    /// Starts `argv` as `how` says.
    pub fn launch(
        name: &str,
        argv: &[std::ffi::OsString],
        how: Launch<'_>,
    ) -> Result<Child, WaitError> {
        let spawn_err = |reason: String| WaitError::Spawn {
            name: name.to_string(),
            reason,
        };
        let program = argv
            .first()
            .ok_or_else(|| spawn_err("empty command line".into()))?;
        let spawned = spawn::spawn(spawn::Request {
            argv,
            cwd: how.cwd,
            stdin: how.stdin,
            stdout: how.stdout,
            env: how.env,
            netns: how.netns,
        })
        .map_err(|e| spawn_err(format!("{}: {e}", program.to_string_lossy())))?;

        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let (line_tx, lines) = mpsc::channel();
        let lines_wanted = Arc::new(AtomicBool::new(true));
        let stdout_held = Arc::new(AtomicBool::new(how.hold_stdout.is_some()));
        let readers = vec![collect(
            [
                (
                    spawned.stdout.or(how.hold_stdout),
                    Arc::clone(&stdout),
                    Pipe::Stdout,
                ),
                (Some(spawned.stderr), Arc::clone(&stderr), Pipe::Stderr),
            ],
            line_tx,
            Arc::clone(&lines_wanted),
            Arc::clone(&stdout_held),
        )];
        Ok(Child {
            name: name.to_string(),
            pid: spawned.pid,
            pidfd: spawned.pidfd,
            stdout,
            stderr,
            lines,
            lines_wanted,
            stdout_held,
            readers,
            status: None,
        })
    }

    /// The process id, for looking at the running program in /proc.
    pub fn pid(&self) -> libc::pid_t {
        self.pid
    }

    /// Sends `signal` to the program (not its group), unless it has
    /// already been reaped, when its pid may be another's.
    pub fn signal(&self, signal: libc::c_int) {
        if self.status.is_none() {
            // SAFETY: our unreaped child: its pid is still its own.
            unsafe { libc::kill(self.pid, signal) };
        }
    }

    /// Stops the program and everything it started (its process group: a
    /// wrapper script and the server it runs alike) with SIGSTOP, and waits
    /// up to `bound` until each of them has actually stopped: `kill`
    /// returns before the signal is acted on, and a server woken in
    /// `accept` by a connection takes it before it stops. False if they
    /// did not all stop in time (or the program was reaped).
    pub fn stop(&self, bound: Duration) -> bool {
        if self.status.is_some() {
            return false;
        }
        spawn::signal_group(self.pid, libc::SIGSTOP);
        let deadline = Instant::now() + bound;
        while Instant::now() < deadline {
            if spawn::group_stopped(self.pid) {
                return true;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        false
    }

    /// Lets a program stopped by [`Child::stop`] go on (SIGCONT to its
    /// group).
    pub fn resume(&self) {
        if self.status.is_none() {
            spawn::signal_group(self.pid, libc::SIGCONT);
        }
    }

    /// Whether the program has exited (it is not reaped by asking).
    pub fn has_exited(&self) -> bool {
        self.status.is_some() || spawn::has_exited(self.pid).unwrap_or(false)
    }

    /// Whether what the program has written to stdout so far passes `test`.
    pub fn stdout_holds(&self, test: impl Fn(&[u8]) -> bool) -> bool {
        self.stdout.lock().map(|b| test(&b)).unwrap_or(false)
    }

    /// Starts reading a stdout held by [`Launch::hold_stdout`].
    pub fn release_stdout(&self) {
        self.stdout_held.store(false, Ordering::Relaxed);
    }

    /// Waits for the first line on `pipe` for which `is_ready` returns a value.
    ///
    /// This is how a single-client server is known to be listening: it
    /// says so. Connecting to probe it would make the probe its one client.
    pub fn wait_for_line<T>(
        &mut self,
        timeout: Duration,
        cancelled: &dyn Fn() -> bool,
        pipe: Pipe,
        mut is_ready: impl FnMut(&str) -> Option<T>,
    ) -> Result<T, WaitError> {
        let deadline = Instant::now() + timeout;
        loop {
            if cancelled() {
                return Err(WaitError::Interrupted);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(WaitError::NotReady {
                    name: self.name.clone(),
                    after: timeout,
                });
            }
            match self.lines.recv_timeout(left.min(POLL_CANCEL)) {
                Ok((from, line)) => {
                    if from == pipe {
                        if let Some(value) = is_ready(&line) {
                            self.lines_wanted.store(false, Ordering::Relaxed);
                            return Ok(value);
                        }
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    // Both pipes closed: the process is gone or going.
                    // Only reaped: its output stays for whoever takes it.
                    let status = match self.reap(Duration::from_secs(1), cancelled) {
                        Ok(()) => self.status_now().status_text(),
                        Err(_) => "stdout closed".to_string(),
                    };
                    return Err(WaitError::ExitedEarly {
                        name: self.name.clone(),
                        status,
                    });
                }
            }
        }
    }

    /// Waits up to `timeout` for the process to exit on its own.
    pub fn wait(
        &mut self,
        timeout: Duration,
        cancelled: &dyn Fn() -> bool,
    ) -> Result<Output, WaitError> {
        self.lines_wanted.store(false, Ordering::Relaxed);
        self.reap(timeout, cancelled)?;
        Ok(self.output())
    }

    /// Waits up to `timeout` for the process to exit, and reaps it.
    fn reap(&mut self, timeout: Duration, cancelled: &dyn Fn() -> bool) -> Result<(), WaitError> {
        let deadline = Instant::now() + timeout;
        let mut pause = Duration::from_micros(200);
        while self.status.is_none() {
            if let Ok(true) = spawn::has_exited(self.pid) {
                // Whatever it started goes with it: a background job left
                // holding its stdout would keep the readers from finishing.
                self.kill_and_reap();
                break;
            }
            if cancelled() {
                return Err(WaitError::Interrupted);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(WaitError::Hung {
                    name: self.name.clone(),
                    after: timeout,
                });
            }
            match &self.pidfd {
                // Wakes at the exit itself; the cancellation flag is looked
                // at between slices.
                Some(pidfd) => {
                    spawn::wait_readable(pidfd, left.min(POLL_CANCEL));
                }
                // Short first, so a quick exit is seen at once; capped low,
                // as every millisecond here is added to every cell.
                None => {
                    std::thread::sleep(pause.min(left));
                    pause = (pause * 2).min(Duration::from_millis(2));
                }
            }
        }
        Ok(())
    }

    /// Kills the process if it still runs, reaps it, and returns what it left.
    pub fn kill(&mut self) -> Output {
        if self.status.is_none() {
            self.kill_and_reap();
        }
        self.output()
    }

    /// The exit status alone, output left in place.
    fn status_now(&self) -> Output {
        Output {
            exit_code: self.status.and_then(|s| s.code()),
            signal: self.status.and_then(|s| s.signal()),
            stdout: Vec::new(),
            stderr: Vec::new(),
        }
    }

    /// The exit status and the output, handed over (not copied: a server
    /// can print megabytes). Called once, by [`Child::wait`] or
    /// [`Child::kill`]; a second call would get the status and no output.
    fn output(&mut self) -> Output {
        // The pipes close when the process exits; join the readers so no
        // output written just before exit is lost (a held stdout is read
        // now, or its reader would wait for ever).
        self.release_stdout();
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        let status = self.status;
        let take = |buffer: &Mutex<Vec<u8>>| {
            buffer
                .lock()
                .map(|mut b| std::mem::take(&mut *b))
                .unwrap_or_default()
        };
        Output {
            exit_code: status.and_then(|s| s.code()),
            signal: status.and_then(|s| s.signal()),
            stdout: take(&self.stdout),
            stderr: take(&self.stderr),
        }
    }
}

impl Child {
    fn kill_and_reap(&mut self) {
        spawn::kill_group(self.pid);
        self.status = spawn::reap(self.pid).map(ExitStatus::from_raw);
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if self.status.is_none() {
            self.kill_and_reap();
        }
    }
}

/// How often a blocked wait looks at the cancellation flag.
const POLL_CANCEL: Duration = Duration::from_millis(50);

/// Where a pipe's bytes are kept, shared with the [`Child`].
type Sink = Arc<Mutex<Vec<u8>>>;

/// Reads a program's stdout and stderr to their ends, each into its sink,
/// on one thread that waits on both (two threads per program cost a
/// thread's start and stack each, for every program of every cell), and
/// sends each whole line to `lines` while `wanted` says a line is still
/// wanted.
///
/// While `stdout_held` is set, stdout is left unread (the caller's full
/// pipe), and the wait is cut into slices to look at the flag again.
fn collect(
    pipes: [(Option<std::fs::File>, Sink, Pipe); 2],
    lines: mpsc::Sender<(Pipe, String)>,
    wanted: Arc<AtomicBool>,
    stdout_held: Arc<AtomicBool>,
) -> JoinHandle<()> {
    use std::os::fd::AsRawFd;
    std::thread::spawn(move || {
        // A pipe holds 64 KiB: one read can take all a program wrote.
        let mut chunk = vec![0u8; 64 * 1024];
        let mut open =
            pipes.map(|(file, sink, pipe)| file.map(|file| (file, sink, pipe, Vec::new())));
        while open.iter().any(Option::is_some) {
            let held = stdout_held.load(Ordering::Relaxed);
            let mut pollfds: Vec<libc::pollfd> = open
                .iter()
                .map(|p| libc::pollfd {
                    // A closed or held slot is skipped by poll (negative fd).
                    fd: p
                        .as_ref()
                        .filter(|(_, _, pipe, _)| !(held && *pipe == Pipe::Stdout))
                        .map_or(-1, |(file, ..)| file.as_raw_fd()),
                    events: libc::POLLIN,
                    revents: 0,
                })
                .collect();
            // SAFETY: valid pollfds for the duration of the call; no
            // timeout but while stdout is held, as the pipes close when
            // the program's group is gone.
            let timeout = if held { 5 } else { -1 };
            let ready = unsafe { libc::poll(pollfds.as_mut_ptr(), pollfds.len() as _, timeout) };
            if ready < 0 {
                if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                break;
            }
            for (slot, polled) in open.iter_mut().zip(&pollfds) {
                if polled.revents == 0 {
                    continue;
                }
                let Some((file, sink, pipe, partial)) = slot.as_mut() else {
                    continue;
                };
                let n = match file.read(&mut chunk) {
                    Ok(0) | Err(_) => {
                        *slot = None;
                        continue;
                    }
                    Ok(n) => n,
                };
                if let Ok(mut all) = sink.lock() {
                    all.extend_from_slice(&chunk[..n]);
                }
                if !wanted.load(Ordering::Relaxed) {
                    *partial = Vec::new();
                    continue;
                }
                partial.extend_from_slice(&chunk[..n]);
                let mut start = 0;
                while let Some(end) = partial[start..].iter().position(|b| *b == b'\n') {
                    let line = &partial[start..=start + end];
                    let _ = lines.send((*pipe, String::from_utf8_lossy(line).into_owned()));
                    start += end + 1;
                }
                partial.drain(..start);
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn never() -> bool {
        false
    }

    fn sh(script: &str) -> Vec<String> {
        ["sh", "-c", script].iter().map(|s| s.to_string()).collect()
    }

    /// After the ready line the output is only kept, not cut into lines,
    /// and none of it is lost.
    #[test]
    fn output_after_the_ready_line_is_kept_whole_and_not_split() {
        let mut child =
            Child::spawn("seq", &sh("echo ready; seq 1000000"), None, None).expect("sh starts");
        child
            .wait_for_line(Duration::from_secs(10), &never, Pipe::Stdout, |l| {
                (l == "ready\n").then_some(())
            })
            .expect("ready line");
        let out = child.wait(Duration::from_secs(30), &never).expect("exits");
        assert_eq!(out.exit_code, Some(0));
        let text = String::from_utf8(out.stdout).unwrap();
        assert_eq!(text.lines().count(), 1_000_001);
        assert!(text.ends_with("\n999999\n1000000\n"));
        // Lines cut before the flag was seen are few: the million after
        // the ready line were kept as bytes only.
        let split = child.lines.try_iter().count();
        assert!(split < 500_000, "{split} lines were split after ready");
    }

    /// A program that exits before its ready line is reported with its
    /// status, and what it printed is still there for the caller to save.
    #[test]
    fn an_early_exit_keeps_its_output_for_the_caller() {
        let mut child = Child::spawn("sh", &sh("echo bye >&2; exit 4"), None, None).expect("sh");
        let err = child
            .wait_for_line(Duration::from_secs(10), &never, Pipe::Stdout, |_| Some(()))
            .expect_err("no ready line");
        assert_eq!(
            err,
            WaitError::ExitedEarly {
                name: "sh".into(),
                status: "exit 4".into()
            }
        );
        let out = child.kill();
        assert_eq!((out.exit_code, out.stderr), (Some(4), b"bye\n".to_vec()));
    }

    /// Lines still reach a waiter while it waits, from either pipe.
    #[test]
    fn a_ready_line_on_stderr_is_seen_after_stdout_chatter() {
        let script = sh("seq 5000; echo listening >&2; sleep 0.2");
        let mut child = Child::spawn("sh", &script, None, None).expect("sh starts");
        child
            .wait_for_line(Duration::from_secs(10), &never, Pipe::Stderr, |l| {
                l.starts_with("listening").then_some(())
            })
            .expect("ready line on stderr");
        let out = child.wait(Duration::from_secs(10), &never).expect("exits");
        assert_eq!(String::from_utf8(out.stdout).unwrap().lines().count(), 5000);
    }
}
