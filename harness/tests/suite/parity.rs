//! The four programs cannot be told apart by stdout and exit codes.
//!
//! For every payload, each of the four pairings must deliver it, and for the
//! same client and payload the Python and Rust servers must print the same
//! transcript once the peer port is normalized. Above one recv buffer, chunk
//! boundaries depend on timing, so only the reassembled bytes are compared.

use tutorial::transcript::{parse_transcript, RECV_SIZE};

use crate::assert_same;
use crate::util::{exchange, normalize_ports, LANGS};

fn check_payload(payload: &[u8]) {
    for client in LANGS {
        let mut transcripts = Vec::new();
        for server in LANGS {
            let pairing = format!("{server:?} server × {client:?} client");
            let run = exchange(server, client, payload);
            assert_eq!(
                run.client.exit_code,
                Some(0),
                "{pairing}: client {:?}",
                run.client
            );
            assert_eq!(
                run.server.exit_code,
                Some(0),
                "{pairing}: server {:?}",
                run.server
            );
            let client_out = String::from_utf8_lossy(&run.client.stdout).into_owned();
            assert_same!(
                "client stdout",
                client_out,
                "expected",
                "Sending data...\n".to_string()
            );
            let transcript = parse_transcript(&String::from_utf8_lossy(&run.server.stdout))
                .unwrap_or_else(|e| panic!("{pairing}: transcript {e}"));
            assert!(
                transcript.received() == payload,
                "{pairing}: received {} bytes, sent {}",
                transcript.received().len(),
                payload.len()
            );
            transcripts.push((server, normalize_ports(&run.server.stdout)));
        }
        if payload.len() <= RECV_SIZE {
            let (python, rust) = (&transcripts[0], &transcripts[1]);
            assert_same!(
                format!("{:?} server", python.0),
                python.1,
                format!("{:?} server", rust.0),
                rust.1
            );
        }
    }
}

#[test]
#[cfg_attr(
    missing_python3,
    ignore = "needs python3: the reference programs are Python scripts"
)]
fn default_message() {
    check_payload(b"Hello server!");
}

#[test]
#[cfg_attr(
    missing_python3,
    ignore = "needs python3: the reference programs are Python scripts"
)]
fn tutorial_variant_message() {
    check_payload(b"Hola server, are you bored?");
}

#[test]
#[cfg_attr(
    missing_python3,
    ignore = "needs python3: the reference programs are Python scripts"
)]
fn nothing_at_all() {
    check_payload(b"");
}

#[test]
#[cfg_attr(
    missing_python3,
    ignore = "needs python3: the reference programs are Python scripts"
)]
fn utf8_text() {
    check_payload("Grüße, 服务器! ☕ — naïve façade".as_bytes());
}

#[test]
#[cfg_attr(
    missing_python3,
    ignore = "needs python3: the reference programs are Python scripts"
)]
fn all_byte_values() {
    let all: Vec<u8> = (0..=255).collect();
    check_payload(&all);
}

#[test]
#[cfg_attr(
    missing_python3,
    ignore = "needs python3: the reference programs are Python scripts"
)]
fn quotes_and_backslashes() {
    check_payload(b"it's");
    check_payload(b"say \"hi\"");
    check_payload(b"both ' and \" and \\ and \\'");
}

#[test]
#[cfg_attr(
    missing_python3,
    ignore = "needs python3: the reference programs are Python scripts"
)]
fn one_mebibyte() {
    let big: Vec<u8> = (0..1 << 20)
        .map(|i: u32| (i.wrapping_mul(2654435761) >> 24) as u8)
        .collect();
    check_payload(&big);
}

#[test]
#[cfg_attr(
    missing_python3,
    ignore = "needs python3: the reference programs are Python scripts"
)]
fn inline_message_reaches_the_same_bytes() {
    // --message is the tutorial's own way to change the text; every
    // pairing must deliver exactly its bytes.
    for server in LANGS {
        for client in LANGS {
            let (mut srv, port) = crate::util::start_server(server);
            let port = port.to_string();
            let out = crate::util::run_to_end(
                "client",
                &client.client_argv(&[
                    "--host",
                    "127.0.0.1",
                    "--port",
                    &port,
                    "--message",
                    "Hola server, are you bored?",
                ]),
            );
            assert_eq!(out.exit_code, Some(0));
            let served = srv
                .wait(crate::util::WAIT, &|| false)
                .expect("server exits");
            let t = parse_transcript(&String::from_utf8_lossy(&served.stdout)).expect("transcript");
            assert_eq!(t.received(), b"Hola server, are you bored?");
        }
    }
}

/// Every bad input gets the same exit code, the same (empty) stdout and the
/// same one-line message, apart from the program's name, in both languages.
#[test]
#[cfg_attr(
    missing_python3,
    ignore = "needs python3: the reference programs are Python scripts"
)]
fn errors_are_alike_in_both_languages() {
    use crate::util::run_to_end;
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let taken_port = taken.local_addr().unwrap().port().to_string();
    let free_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string();
    let cases: Vec<(&str, Vec<&str>, i32)> = vec![
        ("server", vec!["--port", "http"], 2),
        ("server", vec!["--port", "65536"], 2),
        ("server", vec!["--port", "-1"], 2),
        (
            "server",
            vec!["--host", "127.0.0.1", "--port", &taken_port],
            1,
        ),
        (
            "server",
            vec!["--host", "no-such-host.invalid", "--port", "0"],
            1,
        ),
        ("client", vec!["--port", "0"], 2),
        (
            "client",
            vec!["--host", "127.0.0.1", "--port", &free_port],
            1,
        ),
        ("client", vec!["--host", "no-such-host.invalid"], 1),
        ("client", vec!["--message-file", "/nonexistent/message"], 1),
    ];
    for (role, args, code) in cases {
        let mut seen = Vec::new();
        for lang in LANGS {
            let argv = if role == "server" {
                lang.server_argv(&args)
            } else {
                lang.client_argv(&args)
            };
            let out = run_to_end(role, &argv);
            assert_eq!(
                out.exit_code,
                Some(code),
                "{lang:?} {role} {args:?}: {out:?}"
            );
            assert!(
                out.stdout.is_empty(),
                "{lang:?} {role} {args:?} printed {:?}",
                String::from_utf8_lossy(&out.stdout)
            );
            let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
            assert_eq!(
                stderr.lines().count(),
                1,
                "{lang:?} {role} {args:?}: {stderr}"
            );
            // "server.py: error: …" and "server: error: …" say the same thing.
            seen.push(stderr.replacen(".py:", ":", 1));
        }
        assert_same!("Python", seen[0], "Rust", seen[1]);
    }
    drop(taken);
}

/// `harness cli`: the command-line cases of `tests/cli/client.toml` and
/// `server.toml` (odd argument vectors, stdin, a closed or full stdout,
/// signals at named moments), each Rust program against its Python
/// original, graded and held to the baseline's `cli/` tables.
#[test]
#[cfg_attr(
    missing_python3,
    ignore = "needs python3: the reference programs are Python scripts"
)]
fn command_line_cases_match_the_reference_programs() {
    let _ = crate::util::bin_dir();
    let artifacts = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_harness"))
        .current_dir(crate::util::workspace_root())
        .args(["cli", "--json", "--artifacts"])
        .arg(artifacts.path())
        .output()
        .expect("harness runs");
    // Its reports, for people and for CI: the same cells in each.
    let junit = std::fs::read_to_string(artifacts.path().join("junit.xml")).expect("junit.xml");
    let html = std::fs::read_to_string(artifacts.path().join("report.html")).expect("report.html");
    let saved: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(artifacts.path().join("summary.json")).expect("summary.json"),
    )
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let outcome: serde_json::Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    let not_as_expected: Vec<&serde_json::Value> = outcome["baseline"]["changes"]
        .as_array()
        .expect("compared with the baseline")
        .iter()
        .collect();
    assert!(
        out.status.code() == Some(0) && not_as_expected.is_empty(),
        "{}",
        serde_json::to_string_pretty(&not_as_expected).unwrap()
    );
    let cells = outcome["cells"].as_array().unwrap();
    assert_eq!(saved["cells"].as_array().unwrap().len(), cells.len());
    assert_eq!(junit.matches("<testcase ").count(), cells.len());
    assert!(!junit.contains("<failure"), "{junit}");
    assert!(
        html.contains("id=\"client/help/rust\""),
        "a DIFFERS cell has its details"
    );
    // Both programs, and every case of both files, with the Rust port.
    for role in ["server", "client"] {
        assert!(cells
            .iter()
            .any(|c| c["role"] == role && c["implementation"] == "rust"));
    }
    // The signals at their moments: the port dies or exits as the script.
    let cell = |role: &str, case: &str| {
        cells
            .iter()
            .find(|c| c["role"] == role && c["case"] == case && c["implementation"] == "rust")
            .unwrap_or_else(|| panic!("no cell {role}/{case}"))
    };
    for (role, case, status) in [
        ("server", "sigint-before-ready", "exit 130"),
        ("server", "sigint-listening", "exit 130"),
        ("server", "sigterm-listening", "killed by SIGTERM"),
        ("server", "sigint-mid-transfer", "exit 130"),
        ("client", "sigint-reading-stdin", "exit 130"),
        ("client", "sigint-mid-transfer", "exit 130"),
        ("client", "sigterm-mid-transfer", "killed by SIGTERM"),
    ] {
        let c = cell(role, case);
        assert_eq!(c["verdict"], "PASS", "{c}");
        assert_eq!(c["outcome"]["status"], status, "{c}");
    }
    // mid-transfer really is: the server printed the chunk it got.
    let c = cell("server", "sigint-mid-transfer");
    assert!(
        c["outcome"]["stdout"]
            .as_str()
            .unwrap()
            .contains("FROM: ('127.0.0.1', {peer_port})"),
        "{c}"
    );
}

/// The negative controls of the command-line level, added through a
/// manifest: the reference script with SIGINT left at its default (every
/// SIGINT case FAIL, with `exit` named), and one that ignores SIGTERM
/// (killed after the bounded wait, reported, and nothing left running).
#[test]
#[cfg_attr(
    missing_python3,
    ignore = "needs python3: the reference programs are Python scripts"
)]
fn command_line_deviations_are_caught_and_a_deaf_program_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let extra = r#"
[[implementation]]
name = "deviant-sigint"
language = "Python"
roles = []
command_line = { server = ["python3", "{root}/harness/tests/fixtures/deviant_cli.py", "sigint-default", "{root}/python/server.py"], client = ["python3", "{root}/harness/tests/fixtures/deviant_cli.py", "sigint-default", "{root}/python/client.py"] }

[[implementation]]
name = "deviant-deaf"
language = "Python"
roles = []
command_line = { server = ["python3", "{root}/harness/tests/fixtures/deviant_cli.py", "ignore-term", "{root}/python/server.py"] }
"#;
    let manifest = crate::util::manifest_with(dir.path(), extra);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_harness"))
        .current_dir(crate::util::workspace_root())
        .args([
            "cli",
            "--json",
            "--no-baseline",
            "--wait",
            "2",
            "--manifest",
        ])
        .arg(&manifest)
        .args(["--implementation", "deviant-*", "--case", "sig*"])
        .output()
        .expect("harness runs");
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let outcome: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let cells = outcome["cells"].as_array().unwrap();
    let find = |implementation: &str, role: &str, case: &str| {
        cells
            .iter()
            .find(|c| {
                c["implementation"] == implementation && c["role"] == role && c["case"] == case
            })
            .unwrap_or_else(|| panic!("no cell {implementation} {role}/{case}"))
    };
    for (role, case) in [
        ("server", "sigint-before-ready"),
        ("server", "sigint-listening"),
        ("server", "sigint-mid-transfer"),
        ("client", "sigint-reading-stdin"),
        ("client", "sigint-mid-transfer"),
    ] {
        let c = find("deviant-sigint", role, case);
        assert_eq!(c["verdict"], "FAIL", "{c}");
        assert_eq!(c["differing"][0], "exit", "{c}");
        assert_eq!(c["outcome"]["status"], "killed by SIGINT", "{c}");
    }
    // SIGTERM cases it answers as the script does.
    assert_eq!(
        find("deviant-sigint", "server", "sigterm-listening")["verdict"],
        "PASS"
    );
    let c = find("deviant-deaf", "server", "sigterm-listening");
    assert_eq!(c["verdict"], "FAIL", "{c}");
    assert!(
        c["outcome"]["problem"]
            .as_str()
            .unwrap()
            .contains("after the signal; killed with its process group"),
        "{c}"
    );
    // Nothing it started is left running.
    let left = std::process::Command::new("pgrep")
        .args(["-f", "deviant_cli.py ignore-term"])
        .output()
        .expect("pgrep");
    assert!(
        left.stdout.is_empty(),
        "left running: {}",
        String::from_utf8_lossy(&left.stdout)
    );
}

/// A mistake in a case file is one line naming the file, the case and
/// the key, with exit code 2, before anything runs.
#[test]
#[cfg_attr(
    missing_python3,
    ignore = "needs python3: the reference programs are Python scripts"
)]
fn a_broken_case_file_is_one_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    for (text, expected) in [
        ("[[case]]\nname = \"a\"\nwhy = \"w\"\nargs = [\"x\"]\ncolour = 1\n", "client.toml: case 'a': colour: unknown key"),
        ("[[case]]\nname = \"a\"\nwhy = \"w\"\nargs = \"--port 1\"\n", "client.toml: case 'a': args: must be a list of strings"),
        ("[[case]]\nname = \"a\"\nwhy = \"w\"\nargs = []\nsignal = \"INT\"\nmoment = \"later\"\n", "client.toml: case 'a': moment: unknown moment 'later' for the client"),
    ] {
        std::fs::write(dir.path().join("client.toml"), text).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_harness"))
            .current_dir(crate::util::workspace_root())
            .args(["cli", "--no-baseline", "--cases"])
            .arg(dir.path())
            .output()
            .expect("harness runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains(expected), "{stderr}");
    }
}

/// Ctrl-C while the client reads `--message-file -`: both exit 130 with
/// nothing on stderr, as the script's `except KeyboardInterrupt` does; and
/// where SIGINT is ignored (a shell's background job), both go on. The
/// signal is sent once the kernel shows the client blocked reading fd 0,
/// so the moment is the same every run.
#[test]
#[cfg_attr(
    missing_python3,
    ignore = "needs python3: the reference programs are Python scripts"
)]
fn sigint_while_reading_stdin_is_exit_130_like_the_script() {
    use std::os::unix::process::CommandExt;
    let root = crate::util::workspace_root();
    let programs: [Vec<String>; 2] = [
        vec![
            "python3".into(),
            root.join("python/client.py").display().to_string(),
        ],
        vec![crate::util::bin_dir().join("client").display().to_string()],
    ];
    // "read(0, …)" in /proc/PID/syscall: the read syscall's number, then
    // its first argument, fd 0.
    let reading = format!("{} 0x0 ", libc::SYS_read);
    let blocked_reading_stdin = |pid: u32| {
        std::fs::read_to_string(format!("/proc/{pid}/syscall"))
            .is_ok_and(|s| s.starts_with(&reading))
    };
    let mut outcomes = Vec::new();
    for program in &programs {
        for ignored in [false, true] {
            let mut command = std::process::Command::new(&program[0]);
            command
                .args(&program[1..])
                .args(["--message-file", "-", "--host", "127.0.0.1", "--port", "1"])
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            // SAFETY: only async-signal-safe calls between fork and exec.
            unsafe {
                command.pre_exec(move || {
                    let action = if ignored {
                        libc::SIG_IGN
                    } else {
                        libc::SIG_DFL
                    };
                    libc::signal(libc::SIGINT, action);
                    Ok(())
                });
            }
            let mut child = command.spawn().expect("the client runs");
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while !blocked_reading_stdin(child.id()) {
                assert!(
                    std::time::Instant::now() < deadline,
                    "{program:?} never read stdin"
                );
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            // SAFETY: signals our own child.
            unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
            drop(child.stdin.take()); // end of input, for the ignored case
            let out = child.wait_with_output().expect("the client ends");
            let stderr = String::from_utf8_lossy(&out.stderr).replace("client.py: ", "client: ");
            outcomes.push((ignored, out.status.code(), stderr));
        }
    }
    let (python, rust) = outcomes.split_at(2);
    assert_eq!(python[0].1, Some(130), "{python:?}");
    assert_eq!(rust, python);
}

/// `--message-file` paths the command line gives as bytes, and files that
/// cannot be sent: a path that is not UTF-8 (there and missing), a
/// directory, an empty file. Both clients answer alike, stderr included
/// (Python writes undecodable bytes as `\udcXX`; so does the port).
#[test]
#[cfg_attr(
    missing_python3,
    ignore = "needs python3: the reference programs are Python scripts"
)]
fn odd_message_files_are_answered_like_the_script() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let there = dir.path().join(OsStr::from_bytes(b"msg\xff"));
    std::fs::write(&there, b"Hello server!").unwrap();
    let empty = dir.path().join("empty");
    std::fs::write(&empty, b"").unwrap();
    let missing = dir.path().join(OsStr::from_bytes(b"nope\xfe\xc3"));
    let root = crate::util::workspace_root();
    let run = |program: &[std::ffi::OsString], path: &std::path::Path| {
        let out = std::process::Command::new(&program[0])
            .args(&program[1..])
            .args(["--host", "127.0.0.1", "--port", "1", "--message-file"])
            .arg(path)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("the client runs");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).replace("client.py: ", "client: "),
        )
    };
    let python = vec![
        "python3".into(),
        root.join("python/client.py").into_os_string(),
    ];
    let rust = vec![crate::util::bin_dir().join("client").into_os_string()];
    for path in [
        there.as_path(),
        missing.as_path(),
        dir.path(),
        empty.as_path(),
    ] {
        assert_eq!(run(&rust, path), run(&python, path), "{}", path.display());
    }
    // The missing one names its bytes the way Python does.
    assert!(run(&rust, &missing).2.contains("nope\\udcfe\\udcc3"));
}

/// `harness cli --json` with `extra` implementations added through a
/// manifest copy, restricted to `implementations` and `cases` (globs).
fn cli_with(extra: &str, implementations: &[&str], cases: &[&str]) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let manifest = crate::util::manifest_with(dir.path(), extra);
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_harness"));
    command
        .current_dir(crate::util::workspace_root())
        .args(["cli", "--json", "--no-baseline", "--manifest"])
        .arg(&manifest);
    for i in implementations {
        command.args(["--implementation", i]);
    }
    for c in cases {
        command.args(["--case", c]);
    }
    let out = command.output().expect("harness runs");
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn cli_cell<'a>(
    outcome: &'a serde_json::Value,
    implementation: &str,
    role: &str,
    case: &str,
) -> &'a serde_json::Value {
    outcome["cells"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["implementation"] == implementation && c["role"] == role && c["case"] == case)
        .unwrap_or_else(|| panic!("no cell {implementation} {role}/{case}: {outcome}"))
}

/// Known differences are the implementation's: a port whose --help is
/// argparse's (here the reference scripts under another name) PASSes the
/// help cases, while the Rust port's declared difference stays DIFFERS with
/// its reason; a declaration that no longer holds is FAIL, saying to remove
/// it from that implementation's entry.
#[test]
#[cfg_attr(
    missing_python3,
    ignore = "needs python3: the reference programs are Python scripts"
)]
fn command_line_differences_are_declared_per_implementation() {
    let extra = r#"
[[implementation]]
name = "argparse-port"
language = "Python"
roles = []
command_line = { server = ["python3", "{root}/python/server.py"], client = ["python3", "{root}/python/client.py"] }

[[implementation]]
name = "stale-port"
language = "Python"
roles = []
command_line = { client = ["python3", "{root}/python/client.py"] }
[implementation.known_differences]
"cli.client.help" = "once had a help of its own"
"#;
    let outcome = cli_with(extra, &["argparse-port", "stale-port", "rust"], &["help"]);
    for role in ["client", "server"] {
        assert_eq!(
            cli_cell(&outcome, "argparse-port", role, "help")["verdict"],
            "PASS"
        );
        let rust = cli_cell(&outcome, "rust", role, "help");
        assert_eq!(rust["verdict"], "DIFFERS", "{rust}");
        assert!(rust["reason"].as_str().unwrap().contains("clap"), "{rust}");
    }
    let stale = cli_cell(&outcome, "stale-port", "client", "help");
    assert_eq!(stale["verdict"], "FAIL", "{stale}");
    assert!(
        stale["reason"]
            .as_str()
            .unwrap()
            .contains("remove its entry from this implementation's known_differences"),
        "{stale}"
    );
}

/// What the peer received is compared: a client that re-encodes an
/// argument that is not UTF-8 (as Node and the JVM decode argv) sends
/// other bytes, and one whose printf goes to descriptor 1 sends "Sending
/// data..." into its own connection when stdout is closed. Both print and
/// exit as the reference does; both are FAIL on `received`.
#[test]
#[cfg_attr(
    missing_python3,
    ignore = "needs python3: the reference programs are Python scripts"
)]
fn command_line_cases_compare_what_the_peer_received() {
    let extra = r#"
[[implementation]]
name = "reencoding"
language = "Python"
roles = []
command_line = { client = ["python3", "{root}/harness/tests/fixtures/deviant_cli.py", "replace-argv", "{root}/python/client.py"] }

[[implementation]]
name = "printf-fd1"
language = "Python"
roles = []
command_line = { client = ["python3", "{root}/harness/tests/fixtures/deviant_cli.py", "print-to-fd1", "{root}/python/client.py"] }
"#;
    let outcome = cli_with(
        extra,
        &["reencoding", "printf-fd1"],
        &["message-not-utf8", "stdout-closed"],
    );
    let reference = cli_cell(&outcome, "python", "client", "message-not-utf8");
    assert_eq!(reference["outcome"]["received"], "4 bytes \"caf\\xe9\"");
    for (implementation, case, sent) in [
        (
            "reencoding",
            "message-not-utf8",
            "6 bytes \"caf\\xef\\xbf\\xbd\"",
        ),
        (
            "printf-fd1",
            "stdout-closed",
            "29 bytes \"Sending data...\\nHello server!\"",
        ),
    ] {
        let cell = cli_cell(&outcome, implementation, "client", case);
        assert_eq!(cell["verdict"], "FAIL", "{cell}");
        assert_eq!(cell["differing"], serde_json::json!(["received"]), "{cell}");
        assert_eq!(cell["outcome"]["received"], sent, "{cell}");
    }
    // The same programs on a case where nothing differs: PASS.
    assert_eq!(
        cli_cell(&outcome, "printf-fd1", "client", "message-not-utf8")["verdict"],
        "PASS"
    );
}

/// `PROG` is the program's own name in its messages: by default the last
/// word of its command without directories, which for a wrapper (a shell
/// script, a JVM's `-jar`) is not what it prints (here the last word is
/// the workspace's folder, handed to the wrapper). Such a port names itself
/// with `command_line.client_prog`; without it, its usage errors differ in
/// stderr alone.
#[test]
#[cfg_attr(
    missing_python3,
    ignore = "needs python3: the reference programs are Python scripts"
)]
fn a_port_names_the_program_its_messages_name() {
    let wrapper = |name: &str, prog: &str| {
        format!(
            r#"
[[implementation]]
name = "{name}"
language = "Python"
roles = []
command_line = {{ client = ["sh", "-c", "root=$1; shift; exec python3 \"$root/python/client.py\" \"$@\"", "wrapped", "{{root}}"]{prog} }}
"#
        )
    };
    let extra = wrapper("unnamed", "") + &wrapper("named", ", client_prog = \"client.py\"");
    let outcome = cli_with(&extra, &["unnamed", "named"], &["port-huge"]);
    let unnamed = cli_cell(&outcome, "unnamed", "client", "port-huge");
    assert_eq!(unnamed["verdict"], "FAIL", "{unnamed}");
    assert_eq!(
        unnamed["differing"],
        serde_json::json!(["stderr"]),
        "{unnamed}"
    );
    assert_eq!(
        cli_cell(&outcome, "named", "client", "port-huge")["verdict"],
        "PASS"
    );
}

/// A moment is a state of the program, not one syscall: a port built on
/// an event loop (Node's libuv, the JVM's NIO) waits for stdin and for a
/// full stdout in epoll_wait, never blocked in read(0) or write(1). Here
/// the script itself, run so: every signal case at reading-stdin and
/// before-ready reaches its moment and answers as the script does.
#[test]
#[cfg_attr(
    missing_python3,
    ignore = "needs python3: the reference programs are Python scripts"
)]
fn moments_are_read_from_an_event_loop_too() {
    let extra = r#"
[[implementation]]
name = "event-loop"
language = "Python"
roles = []
command_line = { server = ["python3", "{root}/harness/tests/fixtures/deviant_cli.py", "event-loop", "{root}/python/server.py"], client = ["python3", "{root}/harness/tests/fixtures/deviant_cli.py", "event-loop", "{root}/python/client.py"] }
"#;
    let outcome = cli_with(
        extra,
        &["event-loop"],
        &["*-reading-stdin", "*-before-ready"],
    );
    for (role, case) in [
        ("client", "sigint-reading-stdin"),
        ("client", "sigterm-reading-stdin"),
        ("server", "sigint-before-ready"),
        ("server", "sigterm-before-ready"),
    ] {
        let cell = cli_cell(&outcome, "event-loop", role, case);
        assert_eq!(cell["verdict"], "PASS", "{cell}");
    }
}
