//! Running one command-line case with one program, and what it did: its
//! exit status (or the signal that ended it), stdout, stderr, and what the
//! harness's peer received from it.
//!
//! Every wait is bounded: a moment that never comes, or a program that
//! outlives its signal, is killed with its process group after
//! [`Limits::wait`] and reported as such. Each program also gets a
//! parent-death signal, so none outlives a killed harness.

use std::ffi::OsString;
use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::cases::{Case, Moment, Role, Stdout};
use crate::exec::process::{Child, Launch};
use crate::exec::spawn::StdoutTo;

/// A program with the reference's command line: its argument vector
/// before the case's arguments.
#[derive(Debug, Clone)]
pub struct Program {
    /// The implementation's name.
    pub implementation: String,
    pub argv: Vec<String>,
    /// The name it calls itself in messages, when the manifest gives it
    /// (`command_line.client_prog`).
    pub prog: Option<String>,
}

impl Program {
    /// The name it calls itself in messages (`client.py`, `client`): the
    /// manifest's `command_line.ROLE_prog`, else the last word of its
    /// command without directories (a JVM's `-jar client.jar` is not what
    /// it prints, so such a port names itself).
    fn own_name(&self) -> &str {
        if let Some(prog) = &self.prog {
            return prog;
        }
        let last = self.argv.last().map(String::as_str).unwrap_or_default();
        last.rsplit('/').next().unwrap_or(last)
    }
}

/// What a program did with a case. In stdout and stderr the program's own
/// name is written `PROG`, the port the case gave `{port}` and the port the
/// harness connected from `{peer_port}`: they differ by run, not by
/// program.
#[derive(
    Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
pub struct Outcome {
    /// `exit N`, `killed by SIGINT`, or what went wrong running it.
    pub status: String,
    pub stdout: String,
    /// With the program's own name written `PROG`.
    pub stderr: String,
    /// What the peer at `{port}` received from a client, connection by
    /// connection ("13 bytes \"Hello server!\""), or "no connection";
    /// empty for a server case, which has no such peer.
    #[serde(default)]
    pub received: String,
    /// What went wrong running the case itself (a moment that never came,
    /// a program still running after the bounded wait): the cell fails
    /// whatever the reference did.
    pub problem: Option<String>,
}

/// How long the harness waits for a moment, and for an exit.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub wait: Duration,
}

/// Bytes of each connection the recording peer keeps for the comparison;
/// the rest is counted.
const RECEIVED_KEPT: usize = 4096;

/// What the recording peer received, per connection in accept order: the
/// first bytes and the count.
type Received = Arc<Mutex<Vec<(Vec<u8>, u64)>>>;

/// `{port}` of a client case: a peer made for the one run, which accepts
/// every connection, reads each to its end and keeps what it received.
/// The bytes are compared with the reference's: a client that sends other
/// bytes (a message decoded and encoded again), or writes its stdout into
/// its own connection (fd 1 closed, the socket took it), differs even when
/// its exit and output do not.
struct RecordingPeer {
    port: u16,
    received: Received,
    /// Connections still being read.
    open: Arc<std::sync::atomic::AtomicUsize>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl RecordingPeer {
    fn start() -> std::io::Result<RecordingPeer> {
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        let listener = TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let port = listener.local_addr()?.port();
        let received: Received = Arc::default();
        let open = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (got, still_open, stopping) = (received.clone(), open.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !stopping.load(Ordering::Relaxed) {
                let Ok((stream, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(1));
                    continue;
                };
                let index = {
                    let mut all = got.lock().unwrap_or_else(|e| e.into_inner());
                    all.push((Vec::new(), 0));
                    all.len() - 1
                };
                still_open.fetch_add(1, Ordering::SeqCst);
                let (got, still_open, stopping) =
                    (got.clone(), still_open.clone(), stopping.clone());
                std::thread::spawn(move || {
                    use std::io::Read;
                    let _ = stream.set_nonblocking(false);
                    let _ = stream.set_read_timeout(Some(Duration::from_millis(50)));
                    let mut buffer = [0u8; 16 * 1024];
                    let mut stream = stream;
                    loop {
                        match stream.read(&mut buffer) {
                            Ok(0) => break,
                            Ok(n) => {
                                let mut all = got.lock().unwrap_or_else(|e| e.into_inner());
                                let (kept, total) = &mut all[index];
                                let room = RECEIVED_KEPT.saturating_sub(kept.len());
                                kept.extend_from_slice(&buffer[..n.min(room)]);
                                *total += n as u64;
                            }
                            Err(e)
                                if matches!(
                                    e.kind(),
                                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                                ) && !stopping.load(Ordering::Relaxed) => {}
                            Err(_) => break,
                        }
                    }
                    still_open.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        Ok(RecordingPeer {
            port,
            received,
            open,
            stop,
            thread,
        })
    }

    /// What it received, once every connection has ended (the program has
    /// exited, so each ends with its FIN or RST) or `bound` has passed.
    fn finish(self, bound: Duration) -> String {
        use std::sync::atomic::Ordering;
        let deadline = Instant::now() + bound;
        // A connection the kernel completed may still be in the backlog:
        // a moment for the accept loop to take it.
        std::thread::sleep(Duration::from_millis(5));
        while self.open.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
        let all = self.received.lock().unwrap_or_else(|e| e.into_inner());
        describe_received(&all)
    }
}

/// "13 bytes \"Hello server!\"", each connection's, or "no connection".
fn describe_received(connections: &[(Vec<u8>, u64)]) -> String {
    if connections.is_empty() {
        return "no connection".into();
    }
    const SHOWN: usize = 64;
    let one = |(kept, total): &(Vec<u8>, u64)| {
        let shown: String = kept
            .iter()
            .take(SHOWN)
            .flat_map(|b| std::ascii::escape_default(*b))
            .map(char::from)
            .collect();
        let more = if *total as usize > SHOWN { "…" } else { "" };
        // Past what is shown, the kept bytes still tell two runs apart.
        let digest = if *total as usize > SHOWN {
            format!(" #{:016x}", wire::conversation::digest(kept))
        } else {
            String::new()
        };
        format!("{total} bytes \"{shown}{more}\"{digest}")
    };
    let parts: Vec<String> = connections.iter().map(one).collect();
    match parts.len() {
        1 => parts[0].clone(),
        n => format!("{n} connections: {}", parts.join("; ")),
    }
}

/// The peers and files the cases' placeholders name, made once for a run.
pub struct Fixtures {
    /// `{stalled_port}`: accepts and never reads, so a big send blocks.
    stalled_port: u16,
    stalled: Arc<Mutex<Vec<TcpStream>>>,
    /// `{big_file}`: 64 MiB, more than any loopback socket buffers.
    big_file: PathBuf,
    _dir: tempfile::TempDir,
    root: PathBuf,
}

/// 64 MiB: larger than what the kernel buffers on both ends of a loopback
/// connection (tcp_wmem and tcp_rmem allow a few MiB each).
const BIG_FILE: usize = 64 << 20;

/// Queued at the stalled peer: the client, which has 64 MiB to send, is
/// then mid-transfer. (A peer that never reads keeps its receive buffer at
/// its initial size, 128 KiB here: autotuning grows it only as it is
/// read.)
const MID_TRANSFER_QUEUED: i32 = 16 << 10;

impl Fixtures {
    pub fn new(root: &Path) -> std::io::Result<Fixtures> {
        let stalled = TcpListener::bind("127.0.0.1:0")?;
        let stalled_port = stalled.local_addr()?.port();
        let held: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let holder = held.clone();
        std::thread::spawn(move || {
            for stream in stalled.incoming().flatten() {
                holder
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(stream);
            }
        });
        let dir = tempfile::tempdir()?;
        let big_file = dir.path().join("big.bin");
        // Written a chunk at a time: held whole, it was 64 MiB of the
        // harness's memory for as long as the fixtures lived.
        let mut file = std::io::BufWriter::new(std::fs::File::create(&big_file)?);
        let chunk = [b'x'; 64 * 1024];
        for _ in 0..BIG_FILE / chunk.len() {
            file.write_all(&chunk)?;
        }
        file.flush()?;
        Ok(Fixtures {
            stalled_port,
            stalled: held,
            big_file,
            _dir: dir,
            root: root.to_path_buf(),
        })
    }

    /// The most bytes queued at the stalled peer on one connection.
    fn stalled_queued(&self) -> i32 {
        let held = self.stalled.lock().unwrap_or_else(|e| e.into_inner());
        held.iter()
            .map(|s| {
                let mut queued: libc::c_int = 0;
                // SAFETY: FIONREAD writes one int.
                unsafe { libc::ioctl(s.as_raw_fd(), libc::FIONREAD, &mut queued) };
                queued
            })
            .max()
            .unwrap_or(0)
    }

    fn release_stalled(&self) {
        self.stalled
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
    }
}

/// `text` with each `{byte:XX}` written as the raw byte 0xXX: how a case
/// (TOML, so UTF-8) gives an argument that is not UTF-8.
pub fn with_bytes(text: &str) -> std::ffi::OsString {
    use std::os::unix::ffi::OsStringExt;
    let mut out = Vec::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("{byte:") {
        let after = &rest[at + "{byte:".len()..];
        let byte = after
            .get(..3)
            .filter(|t| t.ends_with('}'))
            .and_then(|t| u8::from_str_radix(&t[..2], 16).ok());
        match byte {
            Some(b) => {
                out.extend_from_slice(&rest.as_bytes()[..at]);
                out.push(b);
                rest = &after[3..];
            }
            None => {
                out.extend_from_slice(&rest.as_bytes()[..at + 1]);
                rest = &rest[at + 1..];
            }
        }
    }
    out.extend_from_slice(rest.as_bytes());
    std::ffi::OsString::from_vec(out)
}

/// A pipe whose read end is closed: writing to it fails with EPIPE (or
/// SIGPIPE, which the program starts with at its default, as from a shell).
fn broken_pipe() -> std::io::Result<OwnedFd> {
    let (read, write) = pipe_pair()?;
    drop(read);
    Ok(write)
}

/// A free port on 127.0.0.1 for a server case's `{port}`.
fn free_port() -> std::io::Result<u16> {
    TcpListener::bind("127.0.0.1:0")?
        .local_addr()
        .map(|a| a.port())
}

/// Which way a program waits on a descriptor.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Waiting {
    /// To read it: `read(fd)`, or an event loop watching it for EPOLLIN.
    Read,
    /// To write it: `write(fd)`, or an event loop watching it for EPOLLOUT.
    Write,
}

/// Whether `pid` waits on descriptor `fd`: blocked in `read`/`write` on
/// it (the script, the Rust port), or asleep in `epoll_wait` with an epoll
/// instance that watches it that way (an event loop: Node's libuv, the
/// JVM's NIO, Python's asyncio). A moment is a state of the program, not
/// one syscall.
fn waiting_on(pid: u32, fd: u32, way: Waiting) -> bool {
    let syscall = match way {
        Waiting::Read => libc::SYS_read,
        Waiting::Write => libc::SYS_write,
    };
    blocked_in(pid, syscall, fd) || (in_event_wait(pid) && epoll_watches(pid, fd, way))
}

/// Whether a thread of `pid` sleeps in `epoll_wait` (or `epoll_pwait`,
/// `epoll_pwait2`).
fn in_event_wait(pid: u32) -> bool {
    const EPOLL_PWAIT2: libc::c_long = 441;
    let waits = [libc::SYS_epoll_wait, libc::SYS_epoll_pwait, EPOLL_PWAIT2];
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.flatten().any(|t| {
        std::fs::read_to_string(t.path().join("syscall")).is_ok_and(|s| {
            s.split_whitespace()
                .next()
                .and_then(|n| n.parse::<libc::c_long>().ok())
                .is_some_and(|n| waits.contains(&n))
        })
    })
}

/// Whether one of `pid`'s epoll instances watches `fd` for `way`, as its
/// fdinfo lists it (`tfd: 0 events: 19 …`, the events in hex).
fn epoll_watches(pid: u32, fd: u32, way: Waiting) -> bool {
    let wanted = match way {
        Waiting::Read => libc::EPOLLIN as u32,
        Waiting::Write => libc::EPOLLOUT as u32,
    };
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten()
        .filter(|e| {
            std::fs::read_link(e.path())
                .is_ok_and(|t| t.to_string_lossy() == "anon_inode:[eventpoll]")
        })
        .any(|e| {
            let info = format!("/proc/{pid}/fdinfo/{}", e.file_name().to_string_lossy());
            std::fs::read_to_string(info).is_ok_and(|text| {
                text.lines().any(|line| {
                    let mut words = line.split_whitespace();
                    let watched = words.next() == Some("tfd:")
                        && words.next().and_then(|n| n.parse::<u32>().ok()) == Some(fd);
                    let events = words
                        .skip_while(|w| *w != "events:")
                        .nth(1)
                        .and_then(|h| u32::from_str_radix(h, 16).ok());
                    watched && events.is_some_and(|e| e & wanted != 0)
                })
            })
        })
}

/// Whether a thread of `pid` is blocked in `syscall` on descriptor `fd`,
/// as /proc shows it: the call's number, then its first argument.
fn blocked_in(pid: u32, syscall: libc::c_long, fd: u32) -> bool {
    let prefix = format!("{syscall} {fd:#x} ");
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return false;
    };
    tasks.flatten().any(|t| {
        std::fs::read_to_string(t.path().join("syscall")).is_ok_and(|s| s.starts_with(&prefix))
    })
}

/// What stands for stdout at `before-ready`.
pub const NOT_COMPARED_BEFORE_READY: &str =
    "(not compared: whether the blocked ready line gets out before the signal lands is a race)";

/// A pipe whose buffer is full: writing to it blocks until its read end
/// is read. For `before-ready`.
fn full_pipe() -> std::io::Result<(OwnedFd, OwnedFd, usize)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: both were just opened and are owned here.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let mut filled = 0;
    let chunk = [b'.'; 4096];
    loop {
        // SAFETY: writes from a live buffer.
        let n = unsafe { libc::write(write.as_raw_fd(), chunk.as_ptr().cast(), chunk.len()) };
        if n <= 0 {
            break;
        }
        filled += n as usize;
    }
    // Blocking again, both ends: the program's writes must wait, and the
    // harness's reader must wait for them rather than stop at an empty
    // pipe (which would close it under the program: EPIPE).
    for end in [&read, &write] {
        // SAFETY: F_SETFL on an owned descriptor.
        unsafe { libc::fcntl(end.as_raw_fd(), libc::F_SETFL, 0) };
    }
    Ok((read, write, filled))
}

fn signal_name(signal: i32) -> String {
    super::cases::SIGNALS
        .iter()
        .find(|(_, n)| *n == signal)
        .map_or_else(
            || format!("signal {signal}"),
            |(name, _)| format!("SIG{name}"),
        )
}

/// Waits until `ready()` or the deadline; whether it came.
fn wait_for(deadline: Instant, mut ready: impl FnMut() -> bool) -> bool {
    while Instant::now() < deadline {
        if ready() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    ready()
}

/// Runs `case` with `program`; never panics, never waits unbounded.
///
/// The program is started like every other the harness starts
/// (`exec::process`): its own process group, a parent-death signal, no
/// descriptor of the harness's but 0, 1 and 2, and a group that is killed
/// only while its leader is unreaped.
pub fn run(
    program: &Program,
    role: Role,
    case: &Case,
    fixtures: &Fixtures,
    limits: Limits,
) -> Outcome {
    let failed = |problem: String| Outcome {
        status: "not run".into(),
        stdout: String::new(),
        stderr: String::new(),
        received: String::new(),
        problem: Some(problem),
    };
    let mut peer = None;
    let port = match role {
        Role::Server => match free_port() {
            Ok(port) => port,
            Err(e) => return failed(format!("cannot find a free port on 127.0.0.1: {e}")),
        },
        Role::Client => match RecordingPeer::start() {
            Ok(recording) => peer.insert(recording).port,
            Err(e) => return failed(format!("cannot listen on 127.0.0.1 for the client: {e}")),
        },
    };
    let argv: Vec<OsString> = program
        .argv
        .iter()
        .map(OsString::from)
        .chain(case.args.iter().map(|a| {
            with_bytes(
                &a.replace("{port}", &port.to_string())
                    .replace("{stalled_port}", &fixtures.stalled_port.to_string())
                    .replace("{big_file}", &fixtures.big_file.display().to_string()),
            )
        }))
        .collect();
    if program.argv.is_empty() {
        return failed("no command".into());
    }
    let moment = case.signal.map(|(_, _, m)| m);
    let env: Vec<(OsString, OsString)> = case
        .env
        .iter()
        .map(|(k, v)| (OsString::from(k), OsString::from(v)))
        .collect();
    // Standard input: the case's text, or a pipe held open while the
    // program reads it, or nothing.
    let mut stdin_writer = None;
    let stdin = match (&case.stdin, moment) {
        (Some(_), _) | (None, Some(Moment::ReadingStdin)) => match pipe_pair() {
            Ok((read, write)) => {
                stdin_writer = Some(std::fs::File::from(write));
                Some(std::fs::File::from(read))
            }
            Err(e) => return failed(format!("cannot make a pipe for stdin: {e}")),
        },
        _ => None,
    };
    let mut launch = Launch {
        cwd: Some(&fixtures.root),
        stdin,
        env: &env,
        ..Launch::default()
    };
    let mut filler = 0;
    match (case.stdout, moment) {
        (_, Some(Moment::BeforeReady)) => match full_pipe() {
            Ok((read, write, filled)) => {
                launch.stdout = StdoutTo::File(std::fs::File::from(write));
                launch.hold_stdout = Some(std::fs::File::from(read));
                filler = filled;
            }
            Err(e) => return failed(format!("cannot make a full pipe: {e}")),
        },
        (Stdout::Pipe, _) => {}
        (Stdout::Full, _) => match std::fs::OpenOptions::new().write(true).open("/dev/full") {
            Ok(full) => launch.stdout = StdoutTo::File(full),
            Err(e) => return failed(format!("cannot open /dev/full: {e}")),
        },
        (Stdout::Closed, _) => launch.stdout = StdoutTo::Closed,
        (Stdout::Broken, _) => match broken_pipe() {
            Ok(write) => launch.stdout = StdoutTo::File(std::fs::File::from(write)),
            Err(e) => return failed(format!("cannot make a broken pipe: {e}")),
        },
    }
    let mut child = match Child::launch(&program.implementation, &argv, launch) {
        Ok(c) => c,
        Err(e) => return failed(e.to_string()),
    };
    if let Some(text) = &case.stdin {
        // Written whole, then closed: the program reads to its end.
        if let Some(mut pipe) = stdin_writer.take() {
            let _ = pipe.write_all(text.as_bytes());
        }
    }
    let pid = child.pid() as u32;
    let deadline = Instant::now() + limits.wait;
    let mut problem = None;
    let mut connection = None;
    let mut peer_port = None;
    let line_printed = |c: &Child| c.stdout_holds(|b| b.contains(&b'\n'));
    if let Some((signal, name, moment)) = case.signal {
        let came = match moment {
            Moment::BeforeReady => wait_for(deadline, || waiting_on(pid, 1, Waiting::Write)),
            Moment::Listening => wait_for(deadline, || line_printed(&child)),
            Moment::ReadingStdin => wait_for(deadline, || waiting_on(pid, 0, Waiting::Read)),
            Moment::MidTransfer => match role {
                Role::Client => wait_for(deadline, || {
                    fixtures.stalled_queued() >= MID_TRANSFER_QUEUED
                }),
                Role::Server => {
                    wait_for(deadline, || line_printed(&child))
                        && match TcpStream::connect(("127.0.0.1", port)) {
                            Ok(mut s) => {
                                peer_port = s.local_addr().ok().map(|a| a.port());
                                let _ = s.write_all(b"Hello server!");
                                connection = Some(s);
                                wait_for(deadline, || {
                                    child.stdout_holds(|b| {
                                        b.windows(8).any(|w| w == b"MESSAGE:")
                                            && b.ends_with(b"\n\n")
                                    })
                                })
                            }
                            Err(_) => false,
                        }
                }
            },
        };
        if came {
            child.signal(signal);
        } else {
            problem = Some(format!(
                "the moment never came within {:?}; killed (sending SIG{name} was moot)",
                limits.wait
            ));
        }
    }
    // The filled pipe is read from now on: the program may go on writing.
    child.release_stdout();
    let output = if problem.is_some() {
        child.kill()
    } else {
        match child.wait(limits.wait, &|| false) {
            Ok(output) => output,
            Err(_) => {
                problem = Some(format!(
                    "still running {:?} after {}; killed with its process group",
                    limits.wait,
                    if case.signal.is_some() {
                        "the signal"
                    } else {
                        "it started"
                    }
                ));
                child.kill()
            }
        }
    };
    drop(stdin_writer);
    drop(connection);
    fixtures.release_stalled();
    let received = peer
        .map(|p| p.finish(Duration::from_secs(1)))
        .unwrap_or_default();
    let status_text = match (output.exit_code, output.signal) {
        _ if problem.is_some() && output.exit_code.is_none() => "killed by the harness".into(),
        (Some(code), _) => format!("exit {code}"),
        (None, Some(signal)) => format!("killed by {}", signal_name(signal)),
        _ => "ended somehow".into(),
    };
    // What differs by run, not by program: its name, the port it was
    // given, the port the harness connected from.
    let own = program.own_name();
    let mut numbers = vec![(port, "{port}")];
    if let Some(peer) = peer_port {
        numbers.push((peer, "{peer_port}"));
    }
    let normalise = |text: &str| {
        let mut text = text
            .replace(&format!("{own}: "), "PROG: ")
            .replace(&format!("usage: {own} "), "usage: PROG ");
        for (number, name) in &numbers {
            if let Ok(word) = regex::Regex::new(&format!(r"\b{number}\b")) {
                text = word.replace_all(&text, *name).into_owned();
            }
        }
        text
    };
    // At before-ready the pipe is drained once the signal is sent; whether
    // the blocked ready line gets out before the signal lands is the
    // kernel's race, so that stdout is not compared (flaky is broken).
    let stdout = if moment == Some(Moment::BeforeReady) {
        NOT_COMPARED_BEFORE_READY.to_string()
    } else {
        normalise(&String::from_utf8_lossy(
            &output.stdout[filler.min(output.stdout.len())..],
        ))
    };
    Outcome {
        status: status_text,
        problem,
        received,
        stdout,
        stderr: normalise(&String::from_utf8_lossy(&output.stderr)),
    }
}

/// A pipe, both ends close-on-exec (the program gets its end as 0 or 1).
fn pipe_pair() -> std::io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: both were just opened and are owned here.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStrExt;

    #[test]
    fn byte_escapes_become_raw_bytes() {
        assert_eq!(with_bytes("msg{byte:ff}").as_bytes(), b"msg\xff");
        assert_eq!(with_bytes("{byte:e9}{byte:00}x").as_bytes(), b"\xe9\x00x");
        // Anything else is left as written.
        assert_eq!(
            with_bytes("{byte:zz} {byte:f} {port}").as_bytes(),
            b"{byte:zz} {byte:f} {port}"
        );
    }
}
