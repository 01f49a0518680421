//! The harness command line: bad input is one clear line and exit code 2.

use std::process::{Command, Output};

use crate::util::workspace_root;

fn harness(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_harness"))
        .current_dir(workspace_root())
        .args(args)
        .output()
        .expect("harness runs")
}

fn one_line_error(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line expected: {stderr}");
    stderr
}

#[test]
fn unknown_subcommand_is_a_usage_error() {
    let e = one_line_error(&harness(&["runn"]));
    assert!(e.contains("runn"), "{e}");
}

#[test]
fn missing_manifest_names_the_file_and_the_fix() {
    let e = one_line_error(&harness(&["run", "--manifest", "/nonexistent/m.toml"]));
    assert!(
        e.contains("/nonexistent/m.toml") && e.contains("--manifest"),
        "{e}"
    );
}

#[test]
fn malformed_manifest_names_file_entry_and_problem() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    let text = std::fs::read_to_string(workspace_root().join("tests/implementations.toml"))
        .unwrap()
        .replacen("\"{port}\"", "\"{prot}\"", 1);
    std::fs::write(&path, text).unwrap();
    let e = one_line_error(&harness(&["run", "--manifest", path.to_str().unwrap()]));
    assert!(
        e.contains("bad.toml") && e.contains("implementation 'python'") && e.contains("{prot}"),
        "{e}"
    );
}

#[test]
fn bad_timeout_and_jobs_are_usage_errors() {
    let e = one_line_error(&harness(&["run", "--drain-timeout=0"]));
    assert!(e.contains("drain-timeout"), "{e}");
    let e = one_line_error(&harness(&["run", "--jobs", "0"]));
    assert!(e.contains("--jobs"), "{e}");
}

#[test]
fn no_selected_client_names_the_choices() {
    let e = one_line_error(&harness(&["run", "--client", "nosuch*"]));
    assert!(e.contains("python") && e.contains("rust"), "{e}");
}

#[test]
fn policy_table_lists_every_policy() {
    let out = harness(&["policy"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "exact",
        "relative to ISN",
        "by meaning",
        "ignored",
        "wscale",
        "ip.id",
    ] {
        assert!(text.contains(needle), "{needle} missing from:\n{text}");
    }
}

/// What an unprivileged user needs to run the suite, copied into a fresh
/// directory that user can read: the three binaries, the Python scripts,
/// the manifest, scenarios and baseline. The checkout itself may sit under
/// a directory only its owner can enter (root's home is mode 700, and so is
/// every `mktemp -d`), and its permissions are never touched.
fn stage_for_nobody() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let stage = tempfile::Builder::new()
        .prefix("harness-nobody-")
        .tempdir_in("/tmp")
        .unwrap();
    let open = |path: &std::path::Path, mode: u32| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap()
    };
    let root = workspace_root();
    let bin = crate::util::bin_dir();
    for dir in ["bin", "python", "tests", "tests/scenarios", "artifacts"] {
        std::fs::create_dir_all(stage.path().join(dir)).unwrap();
        open(&stage.path().join(dir), 0o755);
    }
    open(stage.path(), 0o755);
    open(&stage.path().join("artifacts"), 0o777);
    let copy = |from: std::path::PathBuf, to: &str, mode: u32| {
        let to = stage.path().join(to);
        std::fs::copy(&from, &to).unwrap_or_else(|e| panic!("{}: {e}", from.display()));
        open(&to, mode);
    };
    copy(env!("CARGO_BIN_EXE_harness").into(), "bin/harness", 0o755);
    copy(bin.join("server"), "bin/server", 0o755);
    copy(bin.join("client"), "bin/client", 0o755);
    for script in ["server.py", "client.py"] {
        copy(
            root.join("python").join(script),
            &format!("python/{script}"),
            0o644,
        );
    }
    for file in ["implementations.toml", "baseline.toml"] {
        copy(
            root.join("tests").join(file),
            &format!("tests/{file}"),
            0o644,
        );
    }
    for entry in std::fs::read_dir(root.join("tests/scenarios")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        copy(path, &format!("tests/scenarios/{name}"), 0o644);
    }
    stage
}

/// Runs the harness as `nobody` with every capability dropped, from a
/// staged copy of what it needs (see [`stage_for_nobody`]). Its tests are
/// ignored without root and setpriv (build.rs), and fail under CI.
fn run_as_nobody(args: &[&str]) -> (Output, tempfile::TempDir) {
    let setpriv = "setpriv";
    crate::util::require_program(setpriv);
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "dropping privileges needs root"
    );
    let stage = stage_for_nobody();
    let out = Command::new(setpriv)
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            "--bounding-set=-all",
        ])
        .arg(stage.path().join("bin/harness"))
        .args(args)
        .arg("--artifacts")
        .arg(stage.path().join("artifacts/run"))
        .current_dir(stage.path())
        .output()
        .expect("setpriv runs");
    (out, stage)
}

/// Without CAP_NET_RAW on the host's loopback the harness stops with exit 2
/// and the remedy.
#[test]
#[cfg_attr(
    missing_python3,
    ignore = "needs python3: the reference programs are Python scripts"
)]
#[cfg_attr(missing_root, ignore = "needs root to run the harness as nobody")]
#[cfg_attr(missing_setpriv, ignore = "needs setpriv (util-linux)")]
fn without_capture_privilege_exit_2_with_the_remedy() {
    let (out, _stage) = run_as_nobody(&["run", "--isolation", "ports"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert!(
        stderr.contains("setcap cap_net_raw,cap_net_admin=eip") && stderr.contains("root"),
        "{stderr}"
    );
}

/// Unprivileged, the harness makes its own user namespace and captures on
/// per-cell network namespaces inside it: no root needed.
#[test]
#[cfg_attr(
    missing_python3,
    ignore = "needs python3: the reference programs are Python scripts"
)]
#[cfg_attr(missing_root, ignore = "needs root to run the harness as nobody")]
#[cfg_attr(missing_setpriv, ignore = "needs setpriv (util-linux)")]
fn unprivileged_runs_in_a_user_namespace() {
    let (out, dir) = run_as_nobody(&[
        "run",
        "--scenario",
        "hello",
        "--server",
        "python",
        "--client",
        "rust",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(
            "Isolation: a network namespace per cell, inside an unprivileged user namespace"
        ),
        "{stdout}"
    );
    assert!(dir
        .path()
        .join("artifacts/run/hello/python__rust/capture.pcap")
        .is_file());
}

#[test]
fn malformed_scenario_names_file_entry_and_problem() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("odd.toml"),
        "description = \"d\"\nhost = \"192.0.2.1\"\n",
    )
    .unwrap();
    let out = harness(&["run", "--scenarios", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let e = one_line_error(&out);
    assert!(
        e.contains("odd.toml: host: '192.0.2.1' is not a loopback address"),
        "{e}"
    );
}

#[test]
fn unknown_scenario_glob_names_the_scenarios() {
    let out = harness(&["run", "--scenario", "helo"]);
    assert_eq!(out.status.code(), Some(2));
    let e = one_line_error(&out);
    assert!(
        e.contains("no scenario matches --scenario helo") && e.contains("hello"),
        "{e}"
    );
}

#[test]
fn list_shows_implementations_scenarios_and_support() {
    let out = harness(&["run", "--list"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    for name in [
        "python", "rust", "nc", "socat", "hello", "hola", "refused", "ipv6", "large",
    ] {
        assert!(text.contains(name), "{name} missing from:\n{text}");
    }
    let ipv6 = text.lines().find(|l| l.starts_with("ipv6")).unwrap();
    assert!(ipv6.contains("python, rust"), "{ipv6}");
}

#[test]
fn unreadable_baseline_names_the_fix() {
    let out = harness(&["run", "--baseline", "/nonexistent/b.toml"]);
    assert_eq!(out.status.code(), Some(2));
    let e = one_line_error(&out);
    assert!(
        e.contains("/nonexistent/b.toml") && e.contains("--update-baseline"),
        "{e}"
    );
}

/// Outside any workspace, with the binary outside one too (an installed
/// harness): one line naming where it looked and the fix, exit 2.
#[test]
fn no_workspace_names_where_it_looked_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let exe = dir.path().join("harness");
    std::fs::copy(env!("CARGO_BIN_EXE_harness"), &exe).unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let out = Command::new(&exe)
        .current_dir(elsewhere.path())
        .args(["run", "--isolation", "ports"])
        .output()
        .expect("harness runs");
    let stderr = one_line_error(&out);
    assert!(
        stderr.contains(&elsewhere.path().display().to_string()) && stderr.contains("--root DIR"),
        "{stderr}"
    );
}

/// Shell completions and the man page come from the same command
/// definition as `--help`; a full stdout is one line and exit 2, not a
/// panic.
#[test]
fn completions_and_man_page_cover_every_command() {
    let bash = harness(&["completions", "bash"]);
    assert_eq!(bash.status.code(), Some(0));
    let script = String::from_utf8_lossy(&bash.stdout);
    for word in ["_harness()", "inspect", "--scenario", "--color"] {
        assert!(
            script.contains(word),
            "{word} missing from the bash completions"
        );
    }
    let man = harness(&["manpage"]);
    assert_eq!(man.status.code(), Some(0));
    let page = String::from_utf8_lossy(&man.stdout);
    assert!(
        page.contains(".TH harness 1") && page.contains("completions"),
        "{page}"
    );
    let full = Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(["completions", "zsh"])
        .stdout(std::fs::File::create("/dev/full").unwrap())
        .output()
        .expect("harness runs");
    let stderr = one_line_error(&full);
    assert!(stderr.contains("No space left on device"), "{stderr}");
    assert_eq!(
        one_line_error(&harness(&["completions", "tcsh"]))
            .lines()
            .count(),
        1
    );
}

/// A harness installed on its own (`cargo install --path harness` puts
/// only it in ~/.cargo/bin) finds the Rust programs in the workspace's
/// build; where they are nowhere, their cells are UNAVAILABLE with the
/// remedy, never FAIL.
#[test]
fn an_installed_harness_finds_the_rust_programs_or_says_how_to_get_them() {
    let _ = crate::util::bin_dir(); // server and client built in the workspace
    let installed = tempfile::tempdir().unwrap();
    let exe = installed.path().join("harness");
    std::fs::copy(env!("CARGO_BIN_EXE_harness"), &exe).unwrap();
    let list = |extra: &[&str]| {
        let out = Command::new(&exe)
            .current_dir(workspace_root())
            .args(["run", "--list"])
            .args(extra)
            .output()
            .expect("the installed harness runs");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let rust_status = |text: &str| {
        text.lines()
            .find(|l| l.starts_with("rust "))
            .unwrap_or_else(|| panic!("no rust row: {text}"))
            .to_string()
    };
    let found = list(&[]);
    assert!(rust_status(&found).contains("available"), "{found}");
    assert!(!rust_status(&found).contains("UNAVAILABLE"), "{found}");

    let empty = tempfile::tempdir().unwrap();
    let missing = list(&["--bin-dir", empty.path().to_str().unwrap()]);
    let row = rust_status(&missing);
    assert!(row.contains("UNAVAILABLE"), "{row}");
    assert!(row.contains("cargo install --path crates/server"), "{row}");
    assert!(row.contains("cargo install --path crates/client"), "{row}");
}

/// The planned cells say the same: a Rust cell whose program is missing
/// is UNAVAILABLE, not run, and the run exits 0 (the reference pairing
/// still runs, so this needs capture).
#[test]
#[cfg_attr(
    missing_python3,
    ignore = "needs python3: the reference programs are Python scripts"
)]
#[cfg_attr(
    missing_capture,
    ignore = "needs a capture: CAP_NET_RAW (run as root), or user namespaces, in which the harness captures"
)]
fn cells_of_a_missing_rust_program_are_unavailable_not_failed() {
    crate::util::require_capture();
    let empty = tempfile::tempdir().unwrap();
    let artifacts = tempfile::tempdir().unwrap();
    let (code, summary) = crate::util::harness_json(
        &[
            "run",
            "--scenario",
            "hello",
            "--server",
            "python",
            "--client",
            "rust",
            "--no-baseline",
            "--bin-dir",
            empty.path().to_str().unwrap(),
        ],
        artifacts.path(),
    );
    assert_eq!(code, 0, "{summary}");
    let cells = summary["cells"].as_array().unwrap();
    let rust = cells
        .iter()
        .find(|c| c["client"] == "rust")
        .expect("the python × rust cell");
    assert_eq!(rust["verdict"], "UNAVAILABLE", "{rust}");
    assert!(
        rust["reason"]
            .as_str()
            .unwrap()
            .contains("cargo install --path crates/client"),
        "{rust}"
    );
}

/// A folder that exists but cannot be written is an environment error
/// before any cell runs (exit 2, the right remedy, no report announced),
/// for `run` and `cli` alike; never a matrix of failed cells.
#[test]
fn an_unwritable_artifacts_folder_is_exit_2_before_any_cell() {
    // A read-only bind of a fresh folder would need a mount; a folder of
    // the user's own with its write bit off does the same for a non-root
    // user, and sysfs refuses even root.
    let dir = if unsafe { libc::geteuid() } == 0 {
        std::path::PathBuf::from("/sys/kernel")
    } else {
        let dir = tempfile::tempdir().unwrap().keep();
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o500))
            .unwrap();
        dir
    };
    let dir = dir.to_str().unwrap();
    for args in [
        vec![
            "run",
            "--scenario",
            "hello",
            "--server",
            "python",
            "--client",
            "python",
        ],
        vec!["cli"],
    ] {
        let mut args = args;
        args.extend(["--artifacts", dir]);
        let out = harness(&args);
        let e = one_line_error(&out);
        assert!(
            e.contains("cannot write into the artifacts directory"),
            "{e}"
        );
        assert!(
            e.contains("pass --artifacts DIR with a folder you can write"),
            "{e}"
        );
        assert!(!e.contains("free some space"), "{e}");
        assert!(
            out.stdout.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

/// `inspect` of something that cannot be read says what the system said
/// ("Is a directory"), not only that reading failed.
#[test]
fn inspect_of_a_directory_says_it_is_one() {
    let dir = tempfile::tempdir().unwrap();
    let e = one_line_error(&harness(&["inspect", dir.path().to_str().unwrap()]));
    assert!(e.contains("Is a directory"), "{e}");
}

/// A scenario of a gigabyte costs nothing to read: `--list` (and any
/// usage error) never builds its message. Measured by GNU time as the
/// harness's peak memory, which held the whole gigabyte before.
#[test]
#[cfg_attr(
    missing_gnu_time,
    ignore = "needs GNU time at /usr/bin/time: run make deps"
)]
fn a_gigabyte_scenario_is_listed_without_building_its_message() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("huge.toml"),
        "description = \"a gigabyte\"\n[message]\ngenerate = \"pattern\"\nsize = 1073741824\n",
    )
    .unwrap();
    let out = Command::new("/usr/bin/time")
        .args(["-f", "peak-kib %M"])
        .arg(env!("CARGO_BIN_EXE_harness"))
        .args(["run", "--list", "--scenarios", dir.path().to_str().unwrap()])
        .current_dir(workspace_root())
        .output()
        .expect("GNU time (make deps installs it)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let peak: u64 = stderr
        .lines()
        .find_map(|l| l.strip_prefix("peak-kib "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no peak in: {stderr}"));
    assert!(peak < 256 * 1024, "peak {peak} KiB: the message was built");
    assert!(String::from_utf8_lossy(&out.stdout).contains("huge"));
}
