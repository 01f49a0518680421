//! Probes what the integration tests need from this machine, so that a
//! test whose requirement is missing is compiled with `#[ignore = "why"]`:
//! `cargo test` then reports it *ignored*, with the reason and the remedy,
//! never passed. This is how cargo's own testsuite marks tests
//! (`#[cargo_test(requires = "...")]`), done with `cfg_attr`.
//!
//! Under CI (`CI=true`, or `HARNESS_REQUIRE_CAPTURE=1`) nothing is ignored:
//! a missing tool or privilege fails the tests that need it, so a CI machine
//! that lacks one cannot go green.
//!
//! Each probe becomes `cfg(missing_NAME)` when the requirement is absent.

use std::path::Path;

/// How to tell that a requirement is met.
type Probe = fn() -> bool;

/// Requirements by name, each with its probe.
const PROBES: &[(&str, Probe)] = &[
    ("capture", can_capture),
    ("root", is_root),
    ("setpriv", || on_path("setpriv")),
    ("tshark", || on_path("tshark")),
    ("tcpdump", || {
        on_path("tcpdump") || Path::new("/usr/sbin/tcpdump").exists()
    }),
    ("chromium", || {
        ["chromium", "chromium-browser", "google-chrome"]
            .iter()
            .any(|b| on_path(b))
    }),
    ("nc", || on_path("nc")),
    ("socat", || on_path("socat")),
    ("strace", || on_path("strace")),
    ("nft", || {
        on_path("nft") || Path::new("/usr/sbin/nft").exists()
    }),
    ("gnu_time", || Path::new("/usr/bin/time").exists()),
    // The reference programs are Python scripts.
    ("python3", || on_path("python3")),
];

fn main() {
    for (name, _) in PROBES {
        println!("cargo::rustc-check-cfg=cfg(missing_{name})");
    }
    // Another user (su, sudo) probes again; so does CI, and a new PATH.
    for var in ["CI", "HARNESS_REQUIRE_CAPTURE", "PATH", "USER", "SUDO_USER"] {
        println!("cargo::rerun-if-env-changed={var}");
    }
    // Installing a tool changes these directories: probe again then.
    for dir in ["/usr/bin", "/usr/local/bin"] {
        if Path::new(dir).is_dir() {
            println!("cargo::rerun-if-changed={dir}");
        }
    }
    println!("cargo::rerun-if-changed=build.rs");
    let required = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
        || std::env::var("HARNESS_REQUIRE_CAPTURE").is_ok_and(|v| v == "1");
    if required {
        return;
    }
    for (name, present) in PROBES {
        if !present() {
            println!("cargo::rustc-cfg=missing_{name}");
            println!("cargo::warning=tests that need {name} are ignored on this machine (under CI they would fail)");
        }
    }
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|dir| {
            std::fs::metadata(dir.join(program)).is_ok_and(|m| {
                use std::os::unix::fs::PermissionsExt;
                m.is_file() && m.permissions().mode() & 0o111 != 0
            })
        })
    })
}

/// A field of /proc/self/status, e.g. "Uid" or "CapEff".
fn status_field(name: &str) -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .map(|v| v.trim().to_string())
}

/// Whether every capability in `wanted` (by number) is effective. Root is
/// its capabilities: a uid of 0 without them can do no more than anyone.
fn has_capabilities(wanted: &[u32]) -> bool {
    status_field("CapEff")
        .and_then(|hex| u64::from_str_radix(&hex, 16).ok())
        .is_some_and(|caps| wanted.iter().all(|c| caps & (1 << c) != 0))
}

/// What the root-only tests do: mount a tmpfs and make network namespaces
/// (CAP_SYS_ADMIN), and become another user (CAP_SETUID, CAP_SETGID).
fn is_root() -> bool {
    const CAP_SETGID: u32 = 6;
    const CAP_SETUID: u32 = 7;
    const CAP_SYS_ADMIN: u32 = 21;
    has_capabilities(&[CAP_SETGID, CAP_SETUID, CAP_SYS_ADMIN])
}

/// Whether the harness can capture the way it does for this user: with
/// CAP_NET_RAW on the host, or else (`--isolation auto`) as root of a user
/// namespace of its own, on network namespaces it makes inside. So the
/// probe asks for what the harness uses, not only for the capability.
fn can_capture() -> bool {
    const CAP_NET_RAW: u32 = 13;
    has_capabilities(&[CAP_NET_RAW]) || user_namespace_allowed()
}

/// Whether this user may make a user namespace with a network namespace
/// inside (util-linux's `unshare`, as the harness's own `unshare(2)`).
fn user_namespace_allowed() -> bool {
    std::process::Command::new("unshare")
        .args(["--user", "--map-root-user", "--net", "true"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}
