//! Fault tests: programs that never get ready, exit early, crash mid-stream
//! or hang; a child killed with SIGKILL; SIGINT and SIGTERM to the harness;
//! artifacts on a full or unwritable disk. Each fault must be reported with
//! its reason, the artifacts so far kept, and no process left behind.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::{bin_dir, manifest_with, require_capture, workspace_root};

/// A manifest with the reference plus the fault peers, each carrying
/// `marker` in its command line so the process table can be searched.
fn fault_manifest(dir: &Path, marker: &str) -> PathBuf {
    let mut text = String::new();
    for mode in ["never-ready", "exit-early", "crash", "stall"] {
        text.push_str(&format!(
            r#"
[[implementation]]
name = "server-{mode}"
language = "Python"
roles = ["server"]
server = ["python3", "{{root}}/harness/tests/fixtures/fault_peer.py", "--role", "server", "--mode", "{mode}", "--host", "{{host}}", "--port", "{{port}}", "--marker", "{marker}"]
ready = '^I am listening on port \d+$'
"#
        ));
    }
    // The tutorial's programs, unchanged, but carrying the marker: Python
    // keeps any `-X` option for the program and ignores it.
    text.push_str(&format!(
        r#"
[[implementation]]
name = "marked-python"
language = "Python"
roles = ["server", "client"]
server = ["python3", "-X", "marker={marker}", "{{root}}/python/server.py", "--host", "{{host}}", "--port", "{{port}}"]
client = ["python3", "-X", "marker={marker}", "{{root}}/python/client.py", "--host", "{{host}}", "--port", "{{port}}", "--message-file", "{{message_file}}"]
ready = '^I am listening on port \d+$'
stdout = "transcript"
"#
    ));
    text.push_str(&format!(
        r#"
[[implementation]]
name = "client-hang"
language = "Python"
roles = ["client"]
client = ["python3", "{{root}}/harness/tests/fixtures/fault_peer.py", "--role", "client", "--mode", "hang", "--host", "{{host}}", "--port", "{{port}}", "--message-file", "{{message_file}}", "--marker", "{marker}"]
"#
    ));
    manifest_with(dir, &text)
}

/// A marker unique to one test, found in the command lines of its peers.
fn marker(name: &str) -> String {
    format!("fault-{name}-{}", std::process::id())
}

/// The pids of live processes whose command line holds `marker`.
fn processes_with(marker: &str) -> Vec<u32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        // A zombie has exited; only its parent's wait is missing.
        let zombie = stat
            .rsplit(')')
            .next()
            .is_some_and(|s| s.trim_start().starts_with('Z'));
        if !zombie && String::from_utf8_lossy(&cmdline).contains(marker) {
            pids.push(pid);
        }
    }
    pids
}

fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until no process carrying `marker` is alive: processes die a
/// moment after the signal that kills them, so absence is polled for,
/// with a deadline, never checked once.
fn wait_until_gone(marker: &str) {
    wait_for(
        "no process of this test to be left",
        Duration::from_secs(10),
        || processes_with(marker).is_empty().then_some(()),
    );
}

/// Waits until a process carrying `marker` has written at least `bytes`
/// (its `/proc/PID/io` write count: what it printed, since sends on a
/// socket are not counted there), and returns its pid.
fn wait_until_printed(marker: &str, bytes: u64) -> u32 {
    wait_for(
        "the peer to print its line",
        Duration::from_secs(20),
        || {
            processes_with(marker).into_iter().find(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/io"))
                    .unwrap_or_default()
                    .lines()
                    .find_map(|l| l.strip_prefix("wchar: "))
                    .and_then(|n| n.trim().parse::<u64>().ok())
                    .is_some_and(|n| n >= bytes)
            })
        },
    )
}

/// How many sockets process `pid` holds open.
fn sockets_held(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .flatten()
        .filter(|fd| {
            std::fs::read_link(fd.path())
                .is_ok_and(|target| target.to_string_lossy().starts_with("socket:"))
        })
        .count()
}

/// Waits for a child's exit. The bound guards against a hang; it is not
/// a timing claim (a loaded machine may take long).
fn wait_for_exit(mut child: Child) -> Output {
    wait_for("the harness to exit", crate::util::WAIT, || {
        child.try_wait().expect("try_wait").map(|_| ())
    });
    child.wait_with_output().expect("the harness's output")
}

fn harness_command(args: &[&str], artifacts: &Path) -> Command {
    let _ = bin_dir();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_harness"));
    cmd.current_dir(workspace_root())
        .args(args)
        .args(["--json", "--no-baseline", "--artifacts"])
        .arg(artifacts);
    cmd
}

fn summary(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON summary ({e}); exit {:?}, stderr: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn cell<'a>(summary: &'a Value, server: &str, client: &str) -> &'a Value {
    summary["cells"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["server"] == server && c["client"] == client)
        .unwrap_or_else(|| panic!("no cell {server}×{client}: {summary:#}"))
}

/// Runs one fault cell to the end and checks what every fault must give.
fn run_fault(name: &str, server: &str, client: &str) -> (Value, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let marker = marker(name);
    let manifest = fault_manifest(dir.path(), &marker);
    let artifacts = dir.path().join("artifacts");
    let out = harness_command(
        &[
            "run",
            "--manifest",
            manifest.to_str().unwrap(),
            "--scenario",
            "hello",
            "--server",
            server,
            "--client",
            client,
            "--ready-timeout",
            "2",
            "--exit-timeout",
            "2",
        ],
        &artifacts,
    )
    .output()
    .expect("harness runs");
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = summary(&out);
    let c = cell(&summary, server, client).clone();
    assert_eq!(c["verdict"], "FAIL", "{c:#}");
    let folder = artifacts.join(c["dir"].as_str().unwrap());
    for file in [
        "capture.pcap",
        "capture.pcapng",
        "message.bin",
        "server.stderr",
        "server.exit",
    ] {
        assert!(
            folder.join(file).is_file(),
            "{file} missing in {}",
            folder.display()
        );
    }
    wait_until_gone(&marker);
    (c, dir)
}

#[test]
#[cfg_attr(
    missing_python3,
    ignore = "needs python3: the reference programs are Python scripts"
)]
#[cfg_attr(
    missing_capture,
    ignore = "needs a capture: CAP_NET_RAW (run as root), or user namespaces, in which the harness captures"
)]
fn a_server_that_never_gets_ready_times_out_with_the_reason() {
    require_capture();
    let (c, _dir) = run_fault("never-ready", "server-never-ready", "python");
    assert!(
        c["reason"]
            .as_str()
            .unwrap()
            .contains("printed no ready line within 2.0s"),
        "{c:#}"
    );
    assert_eq!(c["server_exit"], "killed by signal 9");
}

#[test]
#[cfg_attr(
    missing_python3,
    ignore = "needs python3: the reference programs are Python scripts"
)]
#[cfg_attr(
    missing_capture,
    ignore = "needs a capture: CAP_NET_RAW (run as root), or user namespaces, in which the harness captures"
)]
fn a_server_that_exits_early_is_reported_with_its_exit_code() {
    require_capture();
    let (c, dir) = run_fault("exit-early", "server-exit-early", "python");
    assert!(
        c["reason"]
            .as_str()
            .unwrap()
            .contains("exited before printing its ready line (exit 4)"),
        "{c:#}"
    );
    let stderr = std::fs::read_to_string(
        dir.path()
            .join("artifacts")
            .join(c["dir"].as_str().unwrap())
            .join("server.stderr"),
    )
    .unwrap();
    assert!(stderr.contains("exiting before ready"), "{stderr}");
}

#[test]
#[cfg_attr(
    missing_python3,
    ignore = "needs python3: the reference programs are Python scripts"
)]
#[cfg_attr(
    missing_capture,
    ignore = "needs a capture: CAP_NET_RAW (run as root), or user namespaces, in which the harness captures"
)]
fn a_server_that_crashes_mid_stream_fails_the_checks() {
    require_capture();
    let (c, _dir) = run_fault("crash", "server-crash", "python");
    assert_eq!(c["server_exit"], "killed by signal 6", "{c:#}");
    let failed: Vec<&str> = c["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["passed"] == false)
        .map(|k| k["name"].as_str().unwrap())
        .collect();
    assert!(failed.contains(&"exits"), "{failed:?}");
}

#[test]
#[cfg_attr(
    missing_python3,
    ignore = "needs python3: the reference programs are Python scripts"
)]
#[cfg_attr(
    missing_capture,
    ignore = "needs a capture: CAP_NET_RAW (run as root), or user namespaces, in which the harness captures"
)]
fn a_client_that_hangs_is_killed_after_the_exit_timeout() {
    require_capture();
    let (c, _dir) = run_fault("hang", "python", "client-hang");
    assert!(
        c["reason"]
            .as_str()
            .unwrap()
            .contains("client-hang client did not exit within 2.0s"),
        "{c:#}"
    );
    assert_eq!(c["client_exit"], "killed by signal 9");
}

/// Starts a harness whose cell blocks (a stalled server), and returns it
/// once the blocking peer is running.
fn start_blocked_harness(marker: &str, dir: &Path, server: &str, client: &str) -> Child {
    let manifest = fault_manifest(dir, marker);
    let child = harness_command(
        &[
            "run",
            "--manifest",
            manifest.to_str().unwrap(),
            "--scenario",
            "hello",
            "--server",
            server,
            "--client",
            client,
            "--exit-timeout",
            "30",
        ],
        &dir.join("artifacts"),
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("harness starts");
    wait_for("the stalled peer", Duration::from_secs(20), || {
        (!processes_with(marker).is_empty()).then_some(())
    });
    child
}

#[test]
#[cfg_attr(
    missing_python3,
    ignore = "needs python3: the reference programs are Python scripts"
)]
#[cfg_attr(
    missing_capture,
    ignore = "needs a capture: CAP_NET_RAW (run as root), or user namespaces, in which the harness captures"
)]
fn a_child_killed_with_sigkill_is_reported() {
    require_capture();
    let dir = tempfile::tempdir().unwrap();
    let marker = marker("kill9");
    let harness = start_blocked_harness(&marker, dir.path(), "server-stall", "python");
    // The reference pairing runs too; wait until the stalled server holds
    // its listener and the accepted connection (it sleeps from then on),
    // then kill it.
    let pid = wait_for(
        "the stalled server's accept",
        Duration::from_secs(20),
        || {
            processes_with(&marker)
                .into_iter()
                .find(|&pid| sockets_held(pid) >= 2)
        },
    );
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGKILL) }, 0);
    let out = wait_for_exit(harness);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = summary(&out);
    let c = cell(&summary, "server-stall", "python");
    assert_eq!(c["verdict"], "FAIL", "{c:#}");
    assert_eq!(c["server_exit"], "killed by signal 9", "{c:#}");
    wait_until_gone(&marker);
}

/// SIGKILL cannot be handled, so nothing in the harness can clean up: the
/// kernel must take its children down (the parent-death signal).
#[test]
#[cfg_attr(
    missing_python3,
    ignore = "needs python3: the reference programs are Python scripts"
)]
#[cfg_attr(
    missing_capture,
    ignore = "needs a capture: CAP_NET_RAW (run as root), or user namespaces, in which the harness captures"
)]
fn sigkill_to_the_harness_takes_its_children_with_it() {
    require_capture();
    let dir = tempfile::tempdir().unwrap();
    let marker = marker("harness-kill9");
    let mut harness = start_blocked_harness(&marker, dir.path(), "python", "client-hang");
    // Killed before it has printed, the client would die of the closed
    // pipe on its own; so wait until it has printed "Sending data...\n".
    wait_until_printed(&marker, "Sending data...\n".len() as u64);
    assert_eq!(unsafe { libc::kill(harness.id() as i32, libc::SIGKILL) }, 0);
    let _ = harness.wait();
    wait_until_gone(&marker);
}

fn signal_to_harness(signal: i32) {
    let dir = tempfile::tempdir().unwrap();
    let marker = marker(&format!("signal{signal}"));
    let harness = start_blocked_harness(&marker, dir.path(), "python", "client-hang");
    // Mid-cell: the client connected and printed, the capture running.
    wait_until_printed(&marker, "Sending data...\n".len() as u64);
    assert_eq!(unsafe { libc::kill(harness.id() as i32, signal) }, 0);
    let out = wait_for_exit(harness);
    // 128 + the signal: 130 for SIGINT, 143 for SIGTERM.
    assert_eq!(
        out.status.code(),
        Some(128 + signal),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = summary(&out);
    assert_eq!(summary["exit_code"], 128 + signal);
    let c = cell(&summary, "python", "client-hang");
    assert!(
        c["reason"].as_str().unwrap().contains("interrupted"),
        "{c:#}"
    );
    let folder = dir
        .path()
        .join("artifacts")
        .join(c["dir"].as_str().unwrap());
    assert!(folder.join("capture.pcap").is_file() && folder.join("client.stdout").is_file());
    assert!(dir.path().join("artifacts/summary.json").is_file());
    wait_until_gone(&marker);
}

#[test]
#[cfg_attr(
    missing_python3,
    ignore = "needs python3: the reference programs are Python scripts"
)]
#[cfg_attr(
    missing_capture,
    ignore = "needs a capture: CAP_NET_RAW (run as root), or user namespaces, in which the harness captures"
)]
fn sigint_stops_the_harness_cleanly() {
    require_capture();
    signal_to_harness(libc::SIGINT);
}

#[test]
#[cfg_attr(
    missing_python3,
    ignore = "needs python3: the reference programs are Python scripts"
)]
#[cfg_attr(
    missing_capture,
    ignore = "needs a capture: CAP_NET_RAW (run as root), or user namespaces, in which the harness captures"
)]
fn sigterm_stops_the_harness_cleanly() {
    require_capture();
    signal_to_harness(libc::SIGTERM);
}

/// Artifacts on a disk that fills up: one clear error, no panic, no
/// process left behind.
#[test]
#[cfg_attr(
    missing_python3,
    ignore = "needs python3: the reference programs are Python scripts"
)]
#[cfg_attr(
    missing_capture,
    ignore = "needs a capture: CAP_NET_RAW (run as root), or user namespaces, in which the harness captures"
)]
#[cfg_attr(missing_root, ignore = "needs root to mount a small tmpfs")]
fn a_full_disk_for_the_artifacts_is_reported() {
    require_capture();
    let dir = tempfile::tempdir().unwrap();
    let mount = Command::new("mount")
        // Room for the message (1 MiB) but not for the captures: the
        // programs run, and saving what they did fills the disk.
        .args(["-t", "tmpfs", "-o", "size=1200k", "tmpfs"])
        .arg(dir.path())
        .status()
        .expect("mount runs");
    assert!(mount.success(), "cannot mount a tmpfs");
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(self.0).status();
        }
    }
    let _unmount = Unmount(dir.path());
    let marker = marker("full");
    let manifest_dir = tempfile::tempdir().unwrap();
    let manifest = fault_manifest(manifest_dir.path(), &marker);
    // The marked programs as the reference: theirs is then the only cell,
    // and nothing else can take the disk's room first.
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        text.replacen("reference = \"python\"", "reference = \"marked-python\"", 1),
    )
    .unwrap();
    let out = harness_command(
        &[
            "run",
            "--manifest",
            manifest.to_str().unwrap(),
            "--scenario",
            "large",
            "--server",
            "marked-python",
            "--client",
            "marked-python",
        ],
        dir.path(),
    )
    .output()
    .expect("harness runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        matches!(out.status.code(), Some(1) | Some(2)),
        "exit {:?}: {stderr}",
        out.status.code()
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        stderr.contains("No space left on device") || stdout.contains("No space left on device"),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    // The marked programs did run (so the process table check below can
    // fail), and none of them is left.
    let summary = summary(&out);
    let marked = cell(&summary, "marked-python", "marked-python");
    assert!(
        marked["server_exit"].is_string() && marked["client_exit"].is_string(),
        "the marked programs never ran: {marked:#}"
    );
    wait_until_gone(&marker);
}

#[test]
fn an_unwritable_artifacts_directory_is_one_line_and_exit_2() {
    let out = harness_command(
        &["run", "--scenario", "hello"],
        Path::new("/proc/no-such-dir/artifacts"),
    )
    .output()
    .expect("harness runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("cannot create the artifacts directory") && stderr.contains("--artifacts"),
        "{stderr}"
    );
}
