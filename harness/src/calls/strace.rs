//! Recording a program's socket calls with strace, and reading its output.
//!
//! The program is started as `strace [options] -o FILE -- PROGRAM ARGS…`.
//! strace follows threads and children (`-f`), stops the program only at
//! the calls asked for (`--seccomp-bpf`: an unlisted call costs nothing),
//! names each descriptor (`-yy`: `3<TCP:[127.0.0.1:1712]>`), prints no
//! buffer contents (`-s 0`), and stamps each call with the time it was made
//! and how long it took (`-ttt -T`), on the clock the capture uses. It
//! exits as the program did, with its code or its signal, so the cell's
//! exit checks see the program, not strace.
//!
//! `read`, `write` and `close` are traced too: OpenBSD nc and socat read
//! and write their sockets. They are kept only on TCP descriptors.

use std::collections::HashMap;
use std::path::Path;

use super::{Call, CallKind, Role};

/// The calls strace stops at. Polling (`poll`, `epoll_*`, `select`),
/// `fcntl`, `ioctl`, `getsockopt`, `getsockname`, `getpeername` are not
/// among them: the policy ignores them, so they are not recorded at all.
pub const TRACED: &[&str] = &[
    "socket",
    "setsockopt",
    "bind",
    "listen",
    "accept",
    "accept4",
    "connect",
    "recvfrom",
    "recvmsg",
    "read",
    "readv",
    "sendto",
    "sendmsg",
    "write",
    "writev",
    "shutdown",
    "close",
];

/// The programs recording needs, looked up on PATH: strace, and setpriv
/// (util-linux), which gives the traced program a parent-death signal.
/// A program under strace is strace's child, not the harness's: if the
/// harness is killed, strace dies with it (its own parent-death signal)
/// and its tracees would be detached and live on, orphans, without one.
pub const PROGRAMS: [&str; 2] = ["strace", "setpriv"];

/// `argv` run under strace, its output written to `trace_file`.
pub fn wrap(argv: &[String], trace_file: &Path) -> Vec<String> {
    let mut wrapped: Vec<String> = [
        "strace",
        "-f",
        "-qq",
        "--seccomp-bpf",
        "-yy",
        "-s",
        "0",
        "-ttt",
        "-T",
        "-e",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    wrapped.push(format!("trace={}", TRACED.join(",")));
    wrapped.push("-o".into());
    wrapped.push(trace_file.to_string_lossy().into_owned());
    for word in ["--", "setpriv", "--pdeathsig", "KILL", "--"] {
        wrapped.push(word.into());
    }
    wrapped.extend(argv.iter().cloned());
    wrapped
}

/// One complete call as strace printed it: name, arguments, result, and
/// when it returned.
#[derive(Debug, PartialEq)]
struct Line<'a> {
    name: &'a str,
    args: Vec<&'a str>,
    result: &'a str,
    at: f64,
}

/// Splits `a, {b, c}, [d], "e,f"` at the commas outside brackets and quotes.
fn split_args(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut quoted = false;
    let mut escaped = false;
    let mut start = 0;
    for (i, c) in text.char_indices() {
        if quoted {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => quoted = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => quoted = true,
            '{' | '[' | '(' => depth += 1,
            '}' | ']' | ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(text[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    let last = text[start..].trim();
    if !last.is_empty() || !out.is_empty() {
        out.push(last);
    }
    out
}

/// `NAME(ARGS) = RESULT <DURATION>` into its parts; the time it returned
/// is `started` plus the duration.
fn parse_call(text: &str, started: f64) -> Option<Line<'_>> {
    let open = text.find('(')?;
    let name = &text[..open];
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return None;
    }
    // strace pads short calls: `close(3)   = 0`.
    let equals = text.rfind(" = ")?;
    let close = text[..equals].trim_end().strip_suffix(')')?.len();
    if close < open + 1 {
        return None;
    }
    let args = split_args(&text[open + 1..close]);
    let mut result = text[equals + 3..].trim();
    let mut at = started;
    if let Some(open_duration) = result.rfind(" <") {
        if let Some(seconds) = result[open_duration + 2..]
            .strip_suffix('>')
            .and_then(|d| d.parse::<f64>().ok())
        {
            at += seconds;
            result = result[..open_duration].trim_end();
        }
    }
    Some(Line {
        name,
        args,
        result,
        at,
    })
}

/// A descriptor argument or result as `-yy` prints it: `3<TCP:[…]>`.
/// Returns the number and whether it is a TCP socket.
fn descriptor(text: &str) -> Option<(i64, bool)> {
    let digits: &str = &text[..text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len())];
    let fd = digits.parse().ok()?;
    let tcp =
        text[digits.len()..].starts_with("<TCP:") || text[digits.len()..].starts_with("<TCPv6:");
    Some((fd, tcp))
}

/// `{sa_family=AF_INET, sin_port=htons(1712), sin_addr=inet_addr("127.0.0.1")}`
/// as `127.0.0.1:{port}`; the port the harness gave is written `{port}`.
fn address(text: &str, port: u16) -> String {
    let after = |key: &str, end: char| {
        text.find(key).map(|i| {
            let rest = &text[i + key.len()..];
            &rest[..rest.find(end).unwrap_or(rest.len())]
        })
    };
    let shown_port = after("port=htons(", ')').map(|p| {
        if p.parse::<u16>().ok() == Some(port) {
            "{port}".to_string()
        } else {
            p.to_string()
        }
    });
    let v4 = after("inet_addr(\"", '"');
    let v6 = after("inet_pton(AF_INET6, \"", '"');
    match (v4, v6, shown_port) {
        (Some(a), _, Some(p)) => format!("{a}:{p}"),
        (_, Some(a), Some(p)) => format!("[{a}]:{p}"),
        _ => text.to_string(),
    }
}

/// The sum of `iov_len=N` in a vector argument (readv, recvmsg).
fn iov_total(text: &str) -> u64 {
    text.match_indices("iov_len=")
        .filter_map(|(i, key)| {
            let rest = &text[i + key.len()..];
            rest[..rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len())]
                .parse::<u64>()
                .ok()
        })
        .sum()
}

/// `SOCK_STREAM|SOCK_CLOEXEC|SOCK_NONBLOCK` without the flags the policy
/// ignores.
fn socket_type(text: &str) -> String {
    let kept: Vec<&str> = text
        .split('|')
        .filter(|f| !matches!(*f, "SOCK_CLOEXEC" | "SOCK_NONBLOCK"))
        .collect();
    kept.join("|")
}

/// Protocol 0 of a stream socket is TCP: strace prints it `IPPROTO_IP`.
fn protocol(text: &str, kind: &str) -> String {
    match text {
        "IPPROTO_IP" | "0" if kind == "SOCK_STREAM" => "IPPROTO_TCP".into(),
        other => other.to_string(),
    }
}

fn would_block(result: &str) -> bool {
    result.starts_with("-1 EAGAIN") || result.starts_with("-1 EWOULDBLOCK")
}

/// The calls in strace's output `text` that were made on TCP sockets, in
/// the order they returned; `port` is the server's port in this cell.
pub fn parse(text: &str, port: u16) -> Vec<Call> {
    let mut reader = Reader::default();
    // A call interrupted by another thread's is printed in two parts.
    let mut pending: HashMap<&str, (f64, String)> = HashMap::new();
    for raw in text.lines() {
        // strace pads short pids: `1729  1796014851.128870 socket(…`.
        let Some((pid, after_pid)) = raw.trim_start().split_once(' ') else {
            continue;
        };
        let Some((stamp, rest)) = after_pid.trim_start().split_once(' ') else {
            continue;
        };
        let Ok(stamp) = stamp.parse::<f64>() else {
            continue;
        };
        if let Some(head) = rest.strip_suffix("<unfinished ...>") {
            pending.insert(pid, (stamp, head.trim_end().to_string()));
            continue;
        }
        if let Some(resumed) = rest.strip_prefix("<... ") {
            let Some((_, tail)) = resumed.split_once("resumed>") else {
                continue;
            };
            let Some((started, head)) = pending.remove(pid) else {
                continue;
            };
            let joined = format!("{head}{tail}");
            // The resumed line's own stamp is when the wait ended; the
            // duration strace prints counts from the start.
            if let Some(line) = parse_call(&joined, started) {
                reader.take(&line, port);
            }
            continue;
        }
        if let Some(line) = parse_call(rest, stamp) {
            reader.take(&line, port);
        }
    }
    reader.finish()
}

/// The program's TCP sockets as its calls create and close them.
#[derive(Default)]
struct Reader {
    /// Open descriptor → socket number (from 0).
    open: HashMap<i64, usize>,
    /// Per socket number: whether `listen` was called on it.
    listening: Vec<bool>,
    calls: Vec<Call>,
}

impl Reader {
    fn new_socket(&mut self, fd: i64) -> usize {
        self.listening.push(false);
        let index = self.listening.len() - 1;
        self.open.insert(fd, index);
        index
    }

    fn push(&mut self, kind: CallKind, socket: usize, line: &Line<'_>) {
        let result = line.result.to_string();
        if let Some(last) = self.calls.last_mut() {
            if last.socket == socket + 1 {
                match (&mut last.kind, &kind) {
                    (CallKind::Recv { sizes: a }, CallKind::Recv { sizes: b }) => {
                        for size in b {
                            if !a.contains(size) {
                                a.push(*size);
                            }
                        }
                        last.count += 1;
                        last.result = result;
                        last.last_at = line.at;
                        return;
                    }
                    (CallKind::Send { bytes: a }, CallKind::Send { bytes: b }) => {
                        *a += b;
                        last.count += 1;
                        last.result = result;
                        last.last_at = line.at;
                        return;
                    }
                    _ => {}
                }
            }
        }
        self.calls.push(Call {
            kind,
            socket: socket + 1,
            role: Role::Connection,
            count: 1,
            at: line.at,
            last_at: line.at,
            result,
        });
    }

    fn take(&mut self, line: &Line<'_>, port: u16) {
        let arg = |i: usize| line.args.get(i).copied().unwrap_or("");
        if line.name == "socket" {
            let Some((fd, true)) = descriptor(line.result) else {
                return;
            };
            let kind = socket_type(arg(1));
            let call = CallKind::Socket {
                family: arg(0).to_string(),
                protocol: protocol(arg(2), &kind),
                kind,
            };
            let index = self.new_socket(fd);
            self.push(call, index, line);
            return;
        }
        let Some((fd, true)) = descriptor(arg(0)) else {
            return;
        };
        // A socket made before the trace began (inherited): numbered now.
        let socket = match self.open.get(&fd) {
            Some(&s) => s,
            None => self.new_socket(fd),
        };
        let bytes_result = || line.result.parse::<u64>().unwrap_or(0);
        let kind = match line.name {
            "setsockopt" => CallKind::Setsockopt {
                level: arg(1).to_string(),
                name: arg(2).to_string(),
                value: arg(3)
                    .strip_prefix('[')
                    .and_then(|v| v.strip_suffix(']'))
                    .unwrap_or(arg(3))
                    .to_string(),
            },
            "bind" => CallKind::Bind {
                address: address(arg(1), port),
            },
            "listen" => {
                self.listening[socket] = true;
                CallKind::Listen {
                    backlog: arg(1).to_string(),
                }
            }
            "connect" => CallKind::Connect {
                address: address(arg(1), port),
            },
            "accept" | "accept4" => {
                if would_block(line.result) {
                    return;
                }
                self.push(CallKind::Accept, socket, line);
                if let Some((new_fd, true)) = descriptor(line.result) {
                    self.new_socket(new_fd);
                }
                return;
            }
            "recvfrom" | "read" => CallKind::Recv {
                sizes: vec![arg(2).parse().unwrap_or(0)],
            },
            "recvmsg" | "readv" => CallKind::Recv {
                sizes: vec![iov_total(arg(1))],
            },
            "sendto" | "sendmsg" | "write" | "writev" => CallKind::Send {
                bytes: bytes_result(),
            },
            "shutdown" => CallKind::Shutdown {
                how: arg(1).to_string(),
            },
            "close" => {
                self.open.remove(&fd);
                CallKind::Close
            }
            _ => return,
        };
        if matches!(kind, CallKind::Recv { .. } | CallKind::Send { .. }) && would_block(line.result)
        {
            return;
        }
        self.push(kind, socket, line);
    }

    fn finish(mut self) -> Vec<Call> {
        // A socket that never did more than exist is a probe.
        let mut used = vec![false; self.listening.len()];
        for call in &self.calls {
            if !matches!(
                call.kind,
                CallKind::Socket { .. } | CallKind::Setsockopt { .. } | CallKind::Close
            ) {
                used[call.socket - 1] = true;
            }
        }
        for call in &mut self.calls {
            if self.listening[call.socket - 1] {
                call.role = Role::Listener;
            } else if !used[call.socket - 1] {
                call.role = Role::Unused;
            }
        }
        self.calls
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// python/server.py under strace 6.1 on this project's machine
    /// (`-f -qq --seccomp-bpf -yy -s 0 -ttt -T`), port 17999, with the
    /// lines on files and stdout it also printed.
    const PYTHON_SERVER: &str = r#"23592 1764480000.100000 read(3</root/.pyenv/versions/3.11.7/lib/python3.11/__pycache__/stringprep.cpython-311.pyc>, ""..., 26552) = 26551 <0.000010>
23592 1764480000.100100 close(3</root/.pyenv/versions/3.11.7/lib/python3.11/__pycache__/stringprep.cpython-311.pyc>) = 0 <0.000005>
23592 1764480000.200000 socket(AF_INET, SOCK_STREAM|SOCK_CLOEXEC, IPPROTO_IP) = 3<TCP:[2508779]> <0.000020>
23592 1764480000.200100 bind(3<TCP:[2508779]>, {sa_family=AF_INET, sin_port=htons(17999), sin_addr=inet_addr("127.0.0.1")}, 16) = 0 <0.000010>
23592 1764480000.200200 listen(3<TCP:[127.0.0.1:17999]>, 1) = 0 <0.000010>
23592 1764480000.200300 write(1</tmp/bash_jobs.0/c8b8ea9f8d11/stdout>, ""..., 28) = 28 <0.000010>
23592 1764480000.200400 accept4(3<TCP:[127.0.0.1:17999]>, {sa_family=AF_INET, sin_port=htons(56394), sin_addr=inet_addr("127.0.0.1")}, [16], SOCK_CLOEXEC) = 4<TCP:[127.0.0.1:17999->127.0.0.1:56394]> <0.300000>
23592 1764480000.500500 recvfrom(4<TCP:[127.0.0.1:17999->127.0.0.1:56394]>, ""..., 1024, 0, NULL, NULL) = 13 <0.000010>
23592 1764480000.500600 write(1</tmp/bash_jobs.0/c8b8ea9f8d11/stdout>, ""..., 27) = 27 <0.000010>
23592 1764480000.500700 recvfrom(4<TCP:[127.0.0.1:17999->127.0.0.1:56394]>, "", 1024, 0, NULL, NULL) = 0 <0.000100>
23592 1764480000.500900 close(4<TCP:[127.0.0.1:17999->127.0.0.1:56394]>) = 0 <0.000010>
23592 1764480000.501000 close(3<TCP:[127.0.0.1:17999]>)   = 0 <0.000010>
"#;

    #[test]
    fn the_python_servers_calls_are_the_lesson() {
        let calls = parse(PYTHON_SERVER, 17999);
        let shown: Vec<String> = calls.iter().map(|c| c.to_string()).collect();
        assert_eq!(
            shown,
            [
                "socket(AF_INET, SOCK_STREAM, IPPROTO_TCP)",
                "bind(127.0.0.1:{port})",
                "listen(1)",
                "accept()",
                "recv(1024) ×2",
                "close(connection)",
                "close(listener)",
            ]
        );
        assert_eq!(calls[0].role, Role::Listener);
        assert_eq!(calls[4].socket, 2);
        // accept returned when it was answered, 0.3 s after it was called.
        assert!(
            (calls[3].at - 1764480000.5004).abs() < 1e-6,
            "{}",
            calls[3].at
        );
    }

    #[test]
    fn flags_protocol_zero_and_would_block_are_normalised_away() {
        // The Rust client (tokio): non-blocking, MSG_NOSIGNAL, EINPROGRESS.
        let text = r#"23705 1.0 socket(AF_INET, SOCK_STREAM|SOCK_CLOEXEC|SOCK_NONBLOCK, IPPROTO_TCP) = 9<TCP:[2509230]> <0.000010>
23705 1.1 connect(9<TCP:[2509230]>, {sa_family=AF_INET, sin_port=htons(1712), sin_addr=inet_addr("127.0.0.1")}, 16) = -1 EINPROGRESS (Operation now in progress) <0.000050>
23705 1.2 recvfrom(9<TCP:[127.0.0.1:52418->127.0.0.1:1712]>, 0x7ffd, 1024, 0, NULL, NULL) = -1 EAGAIN (Resource temporarily unavailable) <0.000005>
23705 1.3 sendto(9<TCP:[127.0.0.1:52418->127.0.0.1:1712]>, ""..., 13, MSG_NOSIGNAL, NULL, 0) = 13 <0.000010>
23705 1.4 close(9<TCP:[127.0.0.1:52418->127.0.0.1:1712]>) = 0 <0.000010>
"#;
        let shown: Vec<String> = parse(text, 1712).iter().map(|c| c.to_string()).collect();
        assert_eq!(
            shown,
            [
                "socket(AF_INET, SOCK_STREAM, IPPROTO_TCP)",
                "connect(127.0.0.1:{port})",
                "send: 13 bytes",
                "close(connection)",
            ]
        );
    }

    #[test]
    fn a_call_split_by_another_thread_is_joined() {
        let text = r#"7  2.0 recvfrom(4<TCP:[127.0.0.1:1712->127.0.0.1:5]>,  <unfinished ...>
8  2.1 write(1<pipe:[5]>, ""..., 3) = 3 <0.000001>
7  2.5 <... recvfrom resumed>""..., 1024, 0, NULL, NULL) = 13 <0.500000>
"#;
        let calls = parse(text, 1712);
        assert_eq!(calls.len(), 1);
        assert_eq!(calls[0].to_string(), "recv(1024)");
        assert_eq!(calls[0].result, "13");
        assert!((calls[0].at - 2.5).abs() < 1e-9);
        // A run of calls is placed where its first returned.
        let run = "1 1.0 read(4<TCP:[1]>, \"\"..., 16384) = 3 <0.5>\n1 3.0 read(4<TCP:[1]>, \"\", 16371) = 0 <0.0>\n";
        let calls = parse(run, 1712);
        assert_eq!(calls[0].to_string(), "recv(16384/16371) ×2");
        assert!((calls[0].at - 1.5).abs() < 1e-9);
    }

    #[test]
    fn other_descriptors_and_sockets_are_left_out() {
        // OpenBSD nc's client asks nscd over AF_UNIX first; socat's server
        // reads with read(); an IPv6 bind.
        let text = r#"1 1.0 socket(AF_UNIX, SOCK_STREAM|SOCK_CLOEXEC|SOCK_NONBLOCK, 0) = 3<UNIX-STREAM:[2509251]> <0.000010>
1 1.1 close(3<UNIX-STREAM:[2509251]>) = 0 <0.000010>
1 1.2 socket(AF_INET6, SOCK_STREAM, IPPROTO_TCP) = 5<TCPv6:[2509267]> <0.000010>
1 1.3 setsockopt(5<TCPv6:[2509267]>, SOL_SOCKET, SO_REUSEADDR, [1], 4) = 0 <0.000010>
1 1.4 bind(5<TCPv6:[2509267]>, {sa_family=AF_INET6, sin6_port=htons(1712), sin6_flowinfo=htonl(0), inet_pton(AF_INET6, "::1", &sin6_addr), sin6_scope_id=0}, 28) = 0 <0.000010>
1 1.5 listen(5<TCPv6:[[::1]:1712]>, 5) = 0 <0.000010>
1 1.6 accept(5<TCPv6:[[::1]:1712]>, {sa_family=AF_INET6, sin6_port=htons(4000), sin6_flowinfo=htonl(0), inet_pton(AF_INET6, "::1", &sin6_addr), sin6_scope_id=0}, [28]) = 6<TCPv6:[[::1]:1712->[::1]:4000]> <0.000010>
1 1.7 read(6<TCPv6:[[::1]:1712->[::1]:4000]>, ""..., 8192) = 3 <0.000010>
1 1.8 read(0</dev/null>, "", 8192) = 0 <0.000010>
1 1.9 read(6<TCPv6:[[::1]:1712->[::1]:4000]>, "", 8192) = 0 <0.000010>
1 2.0 shutdown(6<TCPv6:[[::1]:1712->[::1]:4000]>, SHUT_RDWR) = 0 <0.000010>
"#;
        let shown: Vec<String> = parse(text, 1712).iter().map(|c| c.to_string()).collect();
        assert_eq!(
            shown,
            [
                "socket(AF_INET6, SOCK_STREAM, IPPROTO_TCP)",
                "setsockopt(SOL_SOCKET, SO_REUSEADDR, 1)",
                "bind([::1]:{port})",
                "listen(5)",
                "accept()",
                "recv(8192) ×2",
                "shutdown(SHUT_RDWR)",
            ]
        );
    }

    #[test]
    fn garbage_lines_are_skipped_not_fatal() {
        let text = "\n+++ exited with 0 +++\n12 x y\n12 1.0 --- SIGINT {si_signo=SIGINT} ---\n12 1.0 close(\n12 1.0 ) = \n";
        assert!(parse(text, 1).is_empty());
    }

    #[test]
    fn the_benchmarks_bare_loop_traces_as_the_harness_does() {
        // bench/bare_loop.py runs the same programs under the same strace,
        // so that `make bench` counts recording as shared work; it must
        // not drift from this file's command line.
        let bare = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../bench/bare_loop.py"
        ))
        .expect("bench/bare_loop.py");
        let wrapped = wrap(&[], Path::new("F"));
        let options = &wrapped[..wrapped.len() - 7];
        assert!(options.last().is_some_and(|o| o.starts_with("trace=")));
        let quoted: Vec<String> = options
            .iter()
            .filter(|o| !o.starts_with("trace="))
            .map(|o| format!("\"{o}\""))
            .collect();
        for q in &quoted {
            assert!(bare.contains(q.as_str()), "bench/bare_loop.py lacks {q}");
        }
        assert!(
            bare.contains(r#"["--", "setpriv", "--pdeathsig", "KILL", "--"]"#),
            "bench/bare_loop.py runs the program without setpriv"
        );
        let calls: String = bare
            .split("\"trace=")
            .nth(1)
            .expect("a trace= list")
            .split(']')
            .next()
            .unwrap()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == ',' || *c == '_')
            .collect();
        assert_eq!(
            calls,
            TRACED.join(","),
            "bench/bare_loop.py traces other calls"
        );
    }

    #[test]
    fn arguments_split_outside_brackets_and_quotes() {
        assert_eq!(
            split_args(r#"3, {a=1, b=[2, 3]}, "x,\"y", 4"#),
            vec!["3", "{a=1, b=[2, 3]}", r#""x,\"y""#, "4"]
        );
    }
}
